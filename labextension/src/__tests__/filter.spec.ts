import { filterJobs, matchesFilter, parseFilter } from '../filter';
import { emptyJobs, jobsReducer, JobsState, viewFromRecord } from '../state';
import { groupJobs } from '../sweeps';
import { record } from './support';

const state: JobsState = jobsReducer(emptyJobs, {
  kind: 'records',
  records: [
    record({ id: 'a1', created: 1, path: 'nb/quickstart.ipynb', status: 'succeeded', done: true }),
    record({ id: 'b2', created: 2, path: 'train.ipynb', notebook: '/root/train.ipynb', status: 'failed', done: true, name: 'Big Run' }),
    record({ id: 'c3', created: 3, path: 'train.ipynb', notebook: '/root/train.ipynb', status: 'running', sweep_id: 'sw9f', name: 'study lr=0.1' }),
    record({ id: 'd4', created: 4, path: 'train.ipynb', notebook: '/root/train.ipynb', status: 'failed', sweep_id: 'sw9f', name: 'study lr=0.3' })
  ]
});

const kept = (text: string): string[] => filterJobs(state, text).order;

describe('the job filter', () => {
  it('keeps everything, as the same state, when empty', () => {
    expect(filterJobs(state, '')).toBe(state);
    expect(filterJobs(state, '   ')).toBe(state);
    expect(filterJobs(state, 'status:')).toBe(state); // a prefix still being typed
  });

  it('matches a word in the notebook, status, sweep, name or id, ignoring case, newest first', () => {
    expect(kept('QUICK')).toEqual(['a1']);
    expect(kept('nb/')).toEqual(['a1']); // the notebook's folder
    expect(kept('failed')).toEqual(['d4', 'b2']);
    expect(kept('SW9')).toEqual(['d4', 'c3']);
    expect(kept('big')).toEqual(['b2']);
    expect(kept('c3')).toEqual(['c3']);
    expect(kept('nothing-like-it')).toEqual([]);
  });

  it('needs every word to match', () => {
    expect(kept('train failed')).toEqual(['d4', 'b2']);
    expect(kept('study failed')).toEqual(['d4']);
  });

  it('reads field prefixes and quoted words', () => {
    expect(kept('status:run')).toEqual(['c3']);
    expect(kept('status:a1')).toEqual([]); // the id is not a status
    expect(kept('nb:quick')).toEqual(['a1']);
    expect(kept('notebook:train status:failed')).toEqual(['d4', 'b2']);
    expect(kept('sweep:sw9f')).toEqual(['d4', 'c3']);
    expect(kept('name:"lr=0.3"')).toEqual(['d4']);
    expect(kept('"big run"')).toEqual(['b2']);
    expect(kept('id:B2')).toEqual(['b2']);
    expect(parseFilter('Status:Failed "Big Run" lr:0.1 name:"a b')).toEqual([
      { field: 'status', text: 'failed' },
      { field: null, text: 'big run' },
      { field: null, text: 'lr:0.1' }, // no such field: the whole word
      { field: 'name', text: 'a b' }
    ]);
  });

  it('keeps a sweep grouped with only its matching jobs', () => {
    const items = groupJobs(filterJobs(state, 'lr=0.1'));
    expect(items).toEqual([{ kind: 'sweep', sweepId: 'sw9f', ids: ['c3'] }]);
  });

  it('matches a single view', () => {
    const view = viewFromRecord(record({ name: 'Nightly' }));
    expect(matchesFilter(view, parseFilter('night queued'))).toBe(true);
    expect(matchesFilter(view, parseFilter('night failed'))).toBe(false);
  });
});
