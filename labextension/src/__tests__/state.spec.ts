import { JobEvent, JobEventOf, JobEventType } from '../events.generated';
import {
  applyEvent,
  deleteChoices,
  deleteQuestion,
  emptyForm,
  emptyJobs,
  formToOptions,
  fraction,
  gpuChoices,
  isJobOutput,
  jobActions,
  KernelMetadataGuard,
  jobsReducer,
  MAX_LOG_LINES,
  newlyFinished,
  parseLastOptions,
  parseSse,
  rememberOptions,
  saveAction,
  viewFromRecord
} from '../state';
import { paramField } from '../params';
import { record } from './support';

/** An event of `type` with some of its fields: names and types are checked against the generated types. */
const ev = <T extends JobEventType>(type: T, fields: Partial<Omit<JobEventOf<T>, 'type' | 'time'>> = {}): JobEvent =>
  ({ type, time: 1, ...fields }) as unknown as JobEvent;

describe('applyEvent', () => {
  it('follows a job through build and run to success', () => {
    let v = viewFromRecord(record());
    const events: JobEvent[] = [
      ev('StatusChanged', { status: 'building' }),
      ev('BuildStarted', { tag: 't', total_steps: 4 }),
      ev('BuildStep', { index: 1, total: 4, instruction: 'FROM python' }),
      ev('LayerCached', { index: 1 }),
      ev('BuildStep', { index: 3, total: 4, instruction: 'RUN pip install' }),
      ev('BuildFinished', { image_id: 'sha', tag: 't', cached: false, steps_run: 4 }),
      ev('StatusChanged', { status: 'running' }),
      ev('NotebookStarted', { total_cells: 3 }),
      ev('CellStarted', { index: 0, total: 3, source_first_line: 'import x' }),
      ev('CellFinished', { index: 0, total: 3, duration: 0.1 }),
      ev('Log', { text: 'hello\nworld\n', stream: 'stdout' }),
      ev('CellStarted', { index: 1, total: 3, source_first_line: 'fit()' }),
      ev('MetricLogged', { name: 'accuracy', value: 0.9 }),
      ev('Finished', { status: 'succeeded', exit_code: 0 })
    ];
    const seen: string[] = [];
    events.forEach((e, i) => {
      v = applyEvent(v, i + 1, e);
      seen.push(`${v.status}:${v.build.done}/${v.build.total}:${v.run.done}/${v.run.total}`);
    });
    expect(seen[1]).toBe('building:0/4:0/0');
    expect(seen[4]).toBe('building:2/4:0/0');
    expect(seen[5]).toBe('building:4/4:0/0');
    expect(seen[9]).toBe('running:4/4:1/3');
    expect(v.status).toBe('succeeded');
    expect(fraction(v.run)).toBe(1);
    expect(v.metrics).toEqual({ accuracy: 0.9 });
    expect(v.logs.filter(l => l.stream === 'stdout').map(l => l.text)).toEqual(['hello', 'world']);
    expect(v.build.cachedSteps).toBe(1);
    expect(v.lastSeq).toBe(events.length);
    expect(v.seenRunning).toBe(true);
  });

  it('keeps what the job mounted and the names of its environment, never their values', () => {
    const v = viewFromRecord(
      record({
        spec: {
          volumes: [
            { source: '/home/u/nb/data', target: '/work/data', read_only: true },
            { source: 'cache', target: '/cache' }
          ],
          env: { WANDB_API_KEY: 'secret-value', SEED: '1' }
        }
      })
    );
    expect(v.volumes).toEqual(['/home/u/nb/data → /work/data (read-only)', 'cache → /cache']);
    expect(v.envNames).toEqual(['SEED', 'WANDB_API_KEY']);
    expect(JSON.stringify(v)).not.toContain('secret-value');
  });

  it('starts the run again under its own heading when a lost run is retried', () => {
    let v = viewFromRecord(record());
    const events: JobEvent[] = [
      ev('NotebookStarted', { total_cells: 3 }),
      ev('CellStarted', { index: 0, total: 3, source_first_line: 'import x' }),
      ev('CellFinished', { index: 0, total: 3, duration: 0.1 }),
      ev('Retrying', { attempt: 2, attempts: 3, reason: 'the container was killed from outside (exit code 137)', delay: 10 })
    ];
    events.forEach((e, i) => (v = applyEvent(v, i + 1, e)));
    expect(v.attempt).toBe('attempt 2 of 3');
    expect(v.run).toEqual({ done: 0, total: 0, cell: '' });
    // The same heading as the CLI's `logs` (jupyter_containerize/progress.py retry_heading).
    expect(v.logs[v.logs.length - 1]).toEqual({
      text: '── attempt 2 of 3 (the one before ended: the container was killed from outside (exit code 137); after 10 s) ──',
      stream: 'stderr'
    });
  });

  it('ignores replayed events after a reconnect', () => {
    let v = viewFromRecord(record());
    v = applyEvent(v, 1, ev('Log', { text: 'once' }));
    const again = applyEvent(v, 1, ev('Log', { text: 'once' }));
    expect(again).toBe(v);
    expect(v.logs).toHaveLength(1);
  });

  it('keeps the failure message and the progress it reached', () => {
    let v = viewFromRecord(record({ status: 'running' }));
    v = applyEvent(v, 1, ev('CellStarted', { index: 1, total: 4, source_first_line: '1/0' }));
    v = applyEvent(v, 2, ev('Finished', { status: 'failed', error: 'cell 2 raised ZeroDivisionError', failing_cell: 1 }));
    expect(v.status).toBe('failed');
    expect(v.error).toContain('ZeroDivisionError');
    expect(v.run.done).toBe(1);
  });

  it('caps the log', () => {
    let v = viewFromRecord(record());
    for (let i = 1; i <= MAX_LOG_LINES + 50; i++) {
      v = applyEvent(v, i, ev('BuildLog', { line: `line ${i}` }));
    }
    expect(v.logs).toHaveLength(MAX_LOG_LINES);
    expect(v.logs[v.logs.length - 1].text).toBe(`line ${MAX_LOG_LINES + 50}`);
  });

  it('passes unknown events through without change but advances the sequence', () => {
    const v = viewFromRecord(record());
    const next = applyEvent(v, 1, { type: 'SomethingNew', time: 1, x: 1 } as unknown as JobEvent);
    expect(next.status).toBe(v.status);
    expect(next.lastSeq).toBe(1);
  });
});

describe('jobsReducer', () => {
  it('orders jobs newest first, merges records and removes', () => {
    let s = jobsReducer(emptyJobs, { kind: 'records', records: [record({ id: 'a', created: 1 }), record({ id: 'b', created: 2 })] });
    expect(s.order).toEqual(['b', 'a']);
    s = jobsReducer(s, { kind: 'event', id: 'a', seq: 1, event: ev('StatusChanged', { status: 'running' }) });
    expect(s.jobs.a.status).toBe('running');
    s = jobsReducer(s, { kind: 'record', record: record({ id: 'a', created: 1, status: 'running', metrics: { m: 1 } }) });
    expect(s.jobs.a.metrics).toEqual({ m: 1 });
    expect(s.jobs.a.lastSeq).toBe(1);
    s = jobsReducer(s, { kind: 'removed', id: 'b' });
    expect(s.order).toEqual(['a']);
  });

  it('does not let a stale record undo a finished stream', () => {
    let s = jobsReducer(emptyJobs, { kind: 'records', records: [record({ id: 'a', status: 'running' })] });
    s = jobsReducer(s, { kind: 'event', id: 'a', seq: 1, event: ev('Finished', { status: 'succeeded' }) });
    s = jobsReducer(s, { kind: 'records', records: [record({ id: 'a', status: 'running' })] });
    expect(s.jobs.a.status).toBe('succeeded');
  });

  it('ignores events for unknown jobs', () => {
    expect(jobsReducer(emptyJobs, { kind: 'event', id: 'x', seq: 1, event: ev('Log') })).toBe(emptyJobs);
  });

  it('reports jobs that finished while watched, once', () => {
    const s1 = jobsReducer(emptyJobs, { kind: 'records', records: [record({ id: 'a', status: 'running' })] });
    const s2 = jobsReducer(s1, { kind: 'event', id: 'a', seq: 1, event: ev('Finished', { status: 'succeeded' }) });
    expect(newlyFinished(s1, s2).map(j => j.id)).toEqual(['a']);
    expect(newlyFinished(s2, s2)).toEqual([]);
    // A job first seen already finished (history) never notifies.
    const old = jobsReducer(emptyJobs, { kind: 'records', records: [record({ id: 'z', status: 'failed', done: true })] });
    expect(old.jobs.z.seenRunning).toBe(false);
  });
});

describe('formToOptions', () => {
  it('maps the form onto the CLI option names', () => {
    const options = formToOptions(
      {
        ...emptyForm,
        gpus: 'all',
        volumes: [
          { source: './data', target: '/data', readOnly: true },
          { source: '', target: '/ignored', readOnly: false }
        ],
        env: [{ key: 'SEED', value: '42' }, { key: ' ', value: 'x' }],
        parameters: { n_estimators: '50', seed: '0', name: 'run a' },
        baseImage: 'python:3.11.7-slim-bookworm',
        backend: 'slurm'
      },
      [
        { name: 'n_estimators', value: '30', type: 'int' },
        { name: 'seed', value: '0', type: 'int' },
        { name: 'name', value: "'x'", type: 'str' }
      ].map(paramField)
    );
    expect(options).toEqual({
      gpus: 'all',
      volume: ['./data:/data:ro'],
      env: ['SEED=42'],
      parameters: { n_estimators: 50, name: "'run a'" },
      base_image: 'python:3.11.7-slim-bookworm',
      backend: 'slurm'
    });
  });

  it('sends nothing for an untouched form', () => {
    expect(formToOptions(emptyForm)).toEqual({});
  });
});

describe('gpuChoices', () => {
  it('offers GPUs only with a GPU runtime', () => {
    expect(gpuChoices(null)).toEqual([{ value: '', label: 'No GPU' }]);
    expect(gpuChoices({ gpu_runtime: false, gpus: ['A100'] })).toHaveLength(1);
    const c = gpuChoices({ gpu_runtime: true, gpus: ['A100', 'A100'] });
    expect(c.map(x => x.value)).toEqual(['', 'all', 'device=0', 'device=1']);
  });
});

describe('parseSse', () => {
  it('splits complete messages and keeps the rest', () => {
    const { messages, rest } = parseSse('id: 1\ndata: {"a":1}\n\n: keep-alive\n\nevent: end\ndata: {"status":"succeeded"}\n\nid: 2\nda');
    expect(messages).toEqual([
      { id: 1, event: 'message', data: '{"a":1}' },
      { id: null, event: 'end', data: '{"status":"succeeded"}' }
    ]);
    expect(rest).toBe('id: 2\nda');
  });
});

describe('job card actions', () => {
  it('offers cancel while a job goes on, re-run and delete once it ended, open when there is an output', () => {
    expect(jobActions(viewFromRecord(record({ status: 'queued' })))).toEqual(['log', 'cancel']);
    expect(jobActions(viewFromRecord(record({ status: 'building' })))).toEqual(['log', 'cancel']);
    expect(jobActions(viewFromRecord(record({ status: 'running', output_notebook: 'nb/.jc-jobs/abc/out.ipynb' }))))
      .toEqual(['log', 'cancel', 'open']);
    expect(jobActions(viewFromRecord(record({ status: 'failed', done: true })))).toEqual(['log', 'rerun', 'delete']);
    expect(jobActions(viewFromRecord(record({ status: 'succeeded', done: true, output_notebook: 'o.ipynb' }))))
      .toEqual(['log', 'rerun', 'open', 'delete']);
    expect(jobActions(viewFromRecord(record({ status: 'cancelled', done: true })))).toEqual(['log', 'rerun', 'delete']);
  });

  it('a re-run adds a new job on top and keeps the one it came from', () => {
    let s = jobsReducer(emptyJobs, { kind: 'records', records: [record({ id: 'a', created: 1, status: 'succeeded',
      parameters: { lr: 0.1 } })] });
    s = jobsReducer(s, { kind: 'record', record: record({ id: 'b', created: 2, status: 'queued', parameters: { lr: 0.1 } }) });
    expect(s.order).toEqual(['b', 'a']);
    expect(s.jobs.a.status).toBe('succeeded');
    expect(s.jobs.b.parameters).toEqual({ lr: 0.1 });
    expect(jobActions(s.jobs.b)).toEqual(['log', 'cancel']);
  });

  it('the record a cancel answers with keeps the progress the stream reached', () => {
    let s = jobsReducer(emptyJobs, { kind: 'records', records: [record({ id: 'a', status: 'running' })] });
    s = jobsReducer(s, { kind: 'event', id: 'a', seq: 1, event: ev('CellStarted', { index: 1, total: 4 }) });
    s = jobsReducer(s, { kind: 'record', record: record({ id: 'a', status: 'cancelled', done: true }) });
    expect(s.jobs.a.status).toBe('cancelled');
    expect(s.jobs.a.run.total).toBe(4);
    expect(jobActions(s.jobs.a)).toEqual(['log', 'rerun', 'delete']);
  });
});

describe('a job name', () => {
  it('is sent trimmed as the name option, and not at all when empty', () => {
    expect(formToOptions({ ...emptyForm, name: '  lr study ' })).toEqual({ name: 'lr study' });
    expect(formToOptions({ ...emptyForm, name: '   ' })).toEqual({});
  });

  it('comes from the record, with the sweep it belongs to', () => {
    const view = viewFromRecord(record({ name: 'study lr=0.1', sweep_id: 'sweep-1' }));
    expect([view.name, view.sweepId]).toEqual(['study lr=0.1', 'sweep-1']);
    expect(viewFromRecord(record({ name: 'renamed' }), view).name).toBe('renamed');
  });
});

describe('delete', () => {
  it('offers the outputs only where the job has its own folder', () => {
    const own = viewFromRecord(record({ status: 'succeeded', done: true, output_dir: '/root/nb/quickstart.jc-jobs/abc',
      own_output_folder: 'nb/quickstart.jc-jobs/abc' }));
    expect(deleteChoices(own)).toEqual([
      { label: 'Delete job and its outputs', outputs: true },
      { label: 'Delete job', outputs: false }
    ]);
    expect(deleteQuestion(own)).toContain('Its outputs are in nb/quickstart.jc-jobs/abc/');

    const chosen = viewFromRecord(record({ status: 'succeeded', done: true, output_dir: '/data/runs', own_output_folder: null }));
    expect(deleteChoices(chosen)).toEqual([{ label: 'Delete job', outputs: false }]);
    expect(deleteQuestion(chosen)).toContain('Its outputs in /data/runs stay');

    const none = viewFromRecord(record({ status: 'failed', done: true, name: 'lr study' }));
    expect(deleteChoices(none)).toEqual([{ label: 'Delete job', outputs: false }]);
    expect(deleteQuestion(none)).toBe('Job abc of lr study (quickstart.ipynb) goes from the list, with its log.');
  });

  it('a record without the field keeps what the card knew', () => {
    const first = viewFromRecord(record({ own_output_folder: 'nb/quickstart.jc-jobs/abc' }));
    expect(viewFromRecord(record({}), first).ownOutputFolder).toBe('nb/quickstart.jc-jobs/abc');
    expect(viewFromRecord(record({ own_output_folder: null }), first).ownOutputFolder).toBeNull();
  });
});

describe('unsaved work before a run', () => {
  it('saves an open notebook with changes, asks when it cannot be written', () => {
    expect(saveAction({ open: false, dirty: false, writable: true })).toBe('none');
    expect(saveAction({ open: true, dirty: false, writable: false })).toBe('none');
    expect(saveAction({ open: true, dirty: true, writable: true })).toBe('save');
    expect(saveAction({ open: true, dirty: true, writable: false })).toBe('ask');
  });
});

describe('run again with last settings', () => {
  it('remembers the newest options per notebook, the oldest notebooks forgotten', () => {
    let last = rememberOptions({}, 'a.ipynb', { gpus: 'all' });
    last = rememberOptions(last, 'b.ipynb', {});
    last = rememberOptions(last, 'a.ipynb', { parameters: { n: 3 } });
    expect(last).toEqual({ 'b.ipynb': {}, 'a.ipynb': { parameters: { n: 3 } } });
    expect(Object.keys(last)).toEqual(['b.ipynb', 'a.ipynb']);
    expect(Object.keys(rememberOptions(last, 'c.ipynb', {}, 2))).toEqual(['a.ipynb', 'c.ipynb']);
  });

  it('reads back what it stored, and nothing from anything else', () => {
    const last = rememberOptions({}, 'a.ipynb', { env: ['A=1'] });
    expect(parseLastOptions(JSON.stringify(last))).toEqual(last);
    expect(parseLastOptions(null)).toEqual({});
    expect(parseLastOptions('not json')).toEqual({});
    expect(parseLastOptions('[1]')).toEqual({});
    expect(parseLastOptions('{"a.ipynb": 3, "b.ipynb": {"gpus": "all"}}')).toEqual({ 'b.ipynb': { gpus: 'all' } });
  });
});

describe('output notebooks', () => {
  it('are the notebooks of a job folder', () => {
    expect(isJobOutput('nb/quickstart.jc-jobs/abc/quickstart.ipynb')).toBe(true);
    expect(isJobOutput('nb/quickstart.ipynb')).toBe(false);
  });

  it('stay unchanged when the kernel alone writes its metadata, and changed after any other change', () => {
    const guard = new KernelMetadataGuard();
    guard.metadata('kernelspec');
    expect(guard.dirty(true)).toBe(true); // the kernel's write on open: set back
    guard.metadata('language_info');
    expect(guard.dirty(true)).toBe(true);
    expect(guard.dirty(true)).toBe(false); // a cell edit afterwards: changed
    guard.metadata('tags');
    expect(guard.dirty(true)).toBe(false); // the user's metadata
    guard.metadata('kernelspec'); // while already changed: no turn to undo …
    expect(guard.dirty(false)).toBe(false); // … and a save forgets it
    expect(guard.dirty(true)).toBe(false);
  });
});

describe('build progress that speaks', () => {
  it('names the step as the text view does and counts packages on a bar', () => {
    let v = viewFromRecord(record({ status: 'building' }));
    v = applyEvent(v, 1, ev('BuildStep', { index: 5, total: 9, instruction: 'RUN --mount=type=bind uv pip …', label: 'install 38 packages (uv)' }));
    expect(v.build.instruction).toBe('install 38 packages (uv)');
    expect(v.logs[v.logs.length - 1].text).toBe('step 5/9: install 38 packages (uv)');
    v = applyEvent(v, 2, ev('PackagesProgress', { phase: 'resolved', count: 38 }));
    v = applyEvent(v, 3, ev('PackagesProgress', { phase: 'added', count: 1, detail: 'a==1' }));
    v = applyEvent(v, 4, ev('PackagesProgress', { phase: 'added', count: 1, detail: 'b==1' }));
    expect(v.build.packages).toBe('2/38 packages');
    v = applyEvent(v, 5, ev('PackagesProgress', { phase: 'installed', count: 38 }));
    expect(v.build.packages).toBe('38/38 packages');
    v = applyEvent(v, 6, ev('BuildStep', { index: 6, total: 9, instruction: 'RUN …', label: 'precompile sklearn', cached: true }));
    expect(v.build.packages).toBe('');
    expect(v.logs[v.logs.length - 1].text).toBe('step 6/9: precompile sklearn (cached)');
    v = applyEvent(v, 7, ev('PackagesProgress', { phase: 'precompiled', count: 1, detail: 'sklearn (3.1 s)' }));
    expect(v.build.packages).toBe('precompiled sklearn (3.1 s)');
  });

  it('says an environment was reused', () => {
    const v = applyEvent(viewFromRecord(record()), 1, ev('BuildFinished', { cached: true, steps_run: 0, tag: 't', image_id: 'i' }));
    expect(v.build.instruction).toBe('environment reused: 0 build steps');
  });
});
