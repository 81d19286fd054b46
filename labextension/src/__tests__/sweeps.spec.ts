import { emptyJobs, JobRecord, jobsReducer, JobsState, JobView } from '../state';
import {
  comparisonTable,
  formatValue,
  groupJobs,
  MIN_PLOT_WIDTH,
  plotBundle,
  summaryText,
  SweepComparison,
  sweepName,
  sweepSummary,
  sweepVersion,
  VEGA_LITE_MIME
} from '../sweeps';
import { record } from './support';

/** A finished job of train.ipynb (the sweeps' notebook). */
function job(id: string, created: number, over: Partial<JobRecord> = {}): JobRecord {
  return record({ id, created, notebook: '/root/train.ipynb', path: 'train.ipynb', status: 'succeeded', done: true, ...over });
}

function state(records: JobRecord[]): JobsState {
  return jobsReducer(emptyJobs, { kind: 'records', records });
}

function comparison(over: Partial<SweepComparison> = {}): SweepComparison {
  return {
    sweep_id: 'sweep-1',
    metric: 'accuracy',
    direction: 'maximize',
    direction_inferred: true,
    parameters: ['lr', 'seed'],
    varying: ['lr'],
    fixed: { seed: 0 },
    metrics: ['loss', 'accuracy'],
    best: 'b',
    summary: 'sweep sweep-1: 3 jobs',
    rows: [
      { job_id: 'b', name: 'study lr=0.01', status: 'succeeded', parameters: { lr: 0.01, seed: 0 },
        metrics: { accuracy: 0.9, loss: 0.25 }, value: 0.9, rank: 1, best: true, build_seconds: 3, run_seconds: 9.6,
        duration: 12.6 },
      { job_id: 'a', name: 'study lr=0.1', status: 'succeeded', parameters: { lr: 0.1, seed: 0 },
        metrics: { accuracy: 0.8, loss: 1 / 3 }, value: 0.8, rank: 2, best: false, build_seconds: 3, run_seconds: 70,
        duration: 73 },
      { job_id: 'c', name: 'study lr=1', status: 'failed', parameters: { lr: 1, seed: 0 }, metrics: {}, value: null,
        rank: null, best: false, build_seconds: null, run_seconds: null, duration: null }
    ],
    vega_lite: { $schema: 'https://vega.github.io/schema/vega-lite/v5.json', width: 320, title: { text: 'accuracy by lr' } },
    ...over
  };
}

describe('groupJobs', () => {
  it('puts a sweep where its newest job is, its own jobs oldest first', () => {
    const s = state([
      job('solo-old', 1),
      job('s1', 2, { sweep_id: 'sweep-1' }),
      job('s2', 3, { sweep_id: 'sweep-1' }),
      job('solo-mid', 4),
      job('t1', 5, { sweep_id: 'sweep-2' }),
      job('s3', 6, { sweep_id: 'sweep-1' })
    ]);
    expect(groupJobs(s)).toEqual([
      { kind: 'sweep', sweepId: 'sweep-1', ids: ['s1', 's2', 's3'] },
      { kind: 'sweep', sweepId: 'sweep-2', ids: ['t1'] },
      { kind: 'job', id: 'solo-mid' },
      { kind: 'job', id: 'solo-old' }
    ]);
  });

  it('keeps records of an older server (no sweep_id, no name) as single jobs', () => {
    const older = job('x', 1);
    delete older.sweep_id;
    delete older.name;
    const s = state([older]);
    expect(groupJobs(s)).toEqual([{ kind: 'job', id: 'x' }]);
    expect(s.jobs.x.name).toBe('');
  });
});

describe('a sweep header', () => {
  const jobs = (records: JobRecord[]): JobView[] => {
    const s = state(records);
    return s.order.map(id => s.jobs[id]);
  };

  it('names the sweep without the swept values and counts its jobs by status', () => {
    const views = jobs([
      job('a', 1, { name: 'lr study lr=0.1 opt=adam', parameters: { lr: 0.1, opt: 'adam' } }),
      job('b', 2, { name: 'lr study lr=0.01 opt=adam', parameters: { lr: 0.01, opt: 'adam' }, status: 'running', done: false })
    ]);
    expect(sweepName(views)).toBe('lr study');
    const summary = sweepSummary(views);
    expect(summary.total).toBe(2);
    expect(summary.done).toBe(1);
    expect(summaryText(summary)).toBe('2 jobs · 1 running · 1 succeeded');
  });

  it('keeps words that are not the swept values, and has no name when the jobs have none', () => {
    expect(sweepName(jobs([job('a', 1, { name: 'alpha=1 beta', parameters: { lr: 1 } })]))).toBe('alpha=1 beta');
    expect(sweepName(jobs([job('a', 1, { name: 'run x=1', parameters: { lr: 1 } })]))).toBe('run x=1');
    expect(sweepName(jobs([job('a', 1)]))).toBe('');
  });

  it('has a version that changes with any status', () => {
    const before = jobs([job('a', 1, { status: 'running', done: false }), job('b', 2)]);
    const after = jobs([job('a', 1), job('b', 2)]);
    expect(sweepVersion(before)).not.toEqual(sweepVersion(after));
    expect(sweepVersion(after)).toEqual(sweepVersion(jobs([job('a', 1), job('b', 2)])));
  });
});

describe('comparisonTable', () => {
  it('marks the best run and lists rank, name, the varying parameters and the metrics, compared first', () => {
    const table = comparisonTable(comparison());
    expect(table.columns).toEqual(['', 'rank', 'job', 'name', 'status', 'lr', 'accuracy', 'loss', 'duration']);
    expect(table.rows.map(r => r.jobId)).toEqual(['b', 'a', 'c']);
    expect(table.rows.map(r => r.best)).toEqual([true, false, false]);
    expect(table.rows[0].cells).toEqual(['★', '1', 'b', 'study lr=0.01', 'succeeded', '0.01', '0.9', '0.25', '13s']);
    expect(table.rows[1].cells.slice(-2)).toEqual(['0.333333', '1m 13s']);
    expect(table.rows[2].cells).toEqual(['', '–', 'c', 'study lr=1', 'failed', '1', '–', '–', '–']);
  });

  it('shows every parameter when none varies, and no name column when no job has one', () => {
    const c = comparison({ varying: [], rows: comparison().rows.map(r => ({ ...r, name: '' })) });
    expect(comparisonTable(c).columns).toEqual(['', 'rank', 'job', 'status', 'lr', 'seed', 'accuracy', 'loss', 'duration']);
  });
});

describe('formatValue', () => {
  it('writes values as the Python side does', () => {
    expect(formatValue(0.1)).toBe('0.1');
    expect(formatValue(2 / 3)).toBe('0.666667');
    expect(formatValue(64)).toBe('64');
    expect(formatValue('adam')).toBe('adam');
    expect(formatValue([64, 64])).toBe('[64,64]');
    expect(formatValue(null)).toBe('');
  });
});

describe('plotBundle', () => {
  it('hands the spec to the Vega renderer as SVG, fitted to the panel', () => {
    const bundle = plotBundle(comparison(), 210.4);
    expect(bundle).not.toBeNull();
    const spec = bundle?.data[VEGA_LITE_MIME] as Record<string, unknown>;
    expect(spec.width).toBe(210);
    expect(spec.$schema).toContain('vega-lite/v5');
    expect(bundle?.data['text/plain']).toBe('Vega-Lite plot: accuracy by lr (best: job b)');
    expect(bundle?.metadata).toEqual({ [VEGA_LITE_MIME]: { embed_options: { renderer: 'svg', actions: false } } });
    expect(spec.title).toEqual({ text: 'accuracy by lr' });
    expect(spec.config).toEqual({ legend: { orient: 'bottom', direction: 'horizontal' } });
    expect(comparison().vega_lite?.width).toBe(320); // the server's spec is not changed
    expect((plotBundle(comparison(), 20)?.data[VEGA_LITE_MIME] as Record<string, unknown>).width).toBe(MIN_PLOT_WIDTH);
  });

  it('is null when there is nothing to plot', () => {
    expect(plotBundle(comparison({ vega_lite: null }), 300)).toBeNull();
  });
});
