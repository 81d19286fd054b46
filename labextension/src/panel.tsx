/** The "Containers" sidebar: options form, Dockerfile preview, Build & Run, live job list. */

import { Dialog, Notification, showDialog } from '@jupyterlab/apputils';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { ReactWidget } from '@jupyterlab/ui-components';
import { Signal } from '@lumino/signaling';
import * as React from 'react';

import { api, ApiError, EngineStatus, followEvents, NotebookParameters, Preview } from './api';
import { CompareView } from './compare';
import { ParamField, paramField, refreshedTexts } from './params';
import { ReferencesView } from './references';
import {
  baseName,
  deleteChoices,
  deleteQuestion,
  emptyForm,
  emptyJobs,
  EnvRow,
  FormState,
  formToOptions,
  fraction,
  gpuChoices,
  isDone,
  JobAction,
  jobActions,
  JobRecord,
  JobsAction,
  jobsReducer,
  JobsState,
  JobView,
  LastOptions,
  newlyFinished,
  parseLastOptions,
  rememberOptions,
  VolumeRow
} from './state';
import { groupJobs, summaryText, sweepName, sweepSummary, sweepVersion } from './sweeps';

/**
 * What became of the notebook's unsaved changes before a run: none, saved, left unsaved (the user
 * chose to run the version on disk), or the user cancelled the run.
 */
export type SaveOutcome = 'clean' | 'saved' | 'unsaved' | 'cancelled';

export interface IPanelHost {
  /** Open a file in JupyterLab (the output notebook). */
  open(path: string): void;
  /** Save the notebook's open editor when it has unsaved changes (a job runs the file on disk); ask when it cannot. */
  saveBeforeRun?(path: string): Promise<SaveOutcome>;
  /** JupyterLab's renderers: the sweep comparison's plot is drawn by its Vega renderer. */
  rendermime?: IRenderMimeRegistry | null;
}

const LIST_REFRESH_MS = 4000;
const LAST_OPTIONS_KEY = 'jupyter-containerize:last-options';

/** The Lumino widget around the React view; other parts of the extension talk to it. */
export class ContainersPanel extends ReactWidget {
  readonly pathChanged = new Signal<this, string | null>(this);
  readonly runRequested = new Signal<this, string>(this);
  readonly runAgainRequested = new Signal<this, string>(this);
  /** A notebook was saved (its parameters cell may have changed). */
  readonly notebookSaved = new Signal<this, string>(this);
  /** The options last used for a notebook changed ("Run again with last settings" becomes possible). */
  readonly lastOptionsChanged = new Signal<this, string>(this);
  private _path: string | null = null;
  private _last: LastOptions = readLastOptions();

  constructor(private readonly host: IPanelHost) {
    super();
    this.id = 'jupyter-containerize-panel';
    this.addClass('jc-Panel');
    this.title.caption = 'Containers';
  }

  get path(): string | null {
    return this._path;
  }

  set path(path: string | null) {
    if (path !== this._path) {
      this._path = path;
      this.pathChanged.emit(path);
    }
  }

  /** Build & Run the given notebook with the form's current options (toolbar, palette, file browser). */
  run(path: string): void {
    this.path = path;
    this.runRequested.emit(path);
  }

  /** Run the notebook again with the options last used from this panel for it. */
  runAgain(path: string): void {
    this.path = path;
    this.runAgainRequested.emit(path);
  }

  /** The options last used from this panel for a notebook, or null when none was run from it yet. */
  lastOptions(path: string): Record<string, unknown> | null {
    return this._last[path] ?? null;
  }

  /** Remember the options a job of `path` was started with (kept across reloads in the browser's storage). */
  remember(path: string, options: Record<string, unknown>): void {
    this._last = rememberOptions(this._last, path, options);
    try {
      window.localStorage.setItem(LAST_OPTIONS_KEY, JSON.stringify(this._last));
    } catch {
      /* no storage: remembered for this page only */
    }
    this.lastOptionsChanged.emit(path);
  }

  render(): JSX.Element {
    return <PanelView panel={this} host={this.host} />;
  }
}

function readLastOptions(): LastOptions {
  try {
    return parseLastOptions(window.localStorage.getItem(LAST_OPTIONS_KEY));
  } catch {
    return {};
  }
}

function useSignal<T>(signal: Signal<ContainersPanel, T>, cb: (value: T) => void): void {
  const ref = React.useRef(cb);
  ref.current = cb;
  React.useEffect(() => {
    const slot = (_: ContainersPanel, v: T) => ref.current(v);
    signal.connect(slot);
    return () => {
      signal.disconnect(slot);
    };
  }, [signal]);
}

function message(e: unknown): string {
  return e instanceof ApiError || e instanceof Error ? e.message : String(e);
}

function PanelView({ panel, host }: { panel: ContainersPanel; host: IPanelHost }): JSX.Element {
  const [path, setPath] = React.useState<string | null>(panel.path);
  const [engine, setEngine] = React.useState<EngineStatus | null>(null);
  const [params, setParams] = React.useState<NotebookParameters | null>(null);
  const [form, setForm] = React.useState<FormState>(emptyForm);
  const [preview, setPreview] = React.useState<Preview | null>(null);
  const [busy, setBusy] = React.useState<'' | 'preview' | 'run'>('');
  const [error, setError] = React.useState('');
  const [note, setNote] = React.useState('');
  const [jobs, dispatch] = useJobs(host);
  const [expanded, setExpanded] = React.useState<string | null>(null);

  useSignal(panel.pathChanged, setPath);
  const pathRef = React.useRef(path);
  pathRef.current = path;
  const paramsRef = React.useRef(params);
  paramsRef.current = params;

  React.useEffect(() => {
    api.engine().then(setEngine, e => setEngine({ reachable: false, error: message(e) } as EngineStatus));
  }, []);

  const fields = React.useMemo(() => (params?.parameters ?? []).map(paramField), [params]);

  /** Read the parameters cell; `refresh`: after a save, keeping the values typed into the form. */
  const loadParams = React.useCallback((target: string, refresh: boolean) => {
    api.parameters(target).then(
      p => {
        if (pathRef.current !== target) {
          return; // another notebook since
        }
        const before = refresh ? (paramsRef.current?.parameters ?? []).map(paramField) : [];
        setParams(p);
        setForm(f => ({ ...f, parameters: refreshedTexts(before, p.parameters.map(paramField), refresh ? f.parameters : {}) }));
      },
      e => setError(message(e))
    );
  }, []);

  React.useEffect(() => {
    setPreview(null);
    setError('');
    setNote('');
    setParams(null);
    if (path) {
      loadParams(path, false);
    }
  }, [path, loadParams]);
  useSignal(panel.notebookSaved, saved => saved === pathRef.current && loadParams(saved, true));

  const run = React.useCallback(
    async (target: string | null, again = false) => {
      if (!target) {
        return;
      }
      const options = again ? panel.lastOptions(target) : target === path ? formToOptions(form, fields) : {};
      if (!options) {
        setError(`No job of ${baseName(target)} was started from this panel yet: set its options here and use Build & Run.`);
        return;
      }
      setBusy('run');
      setError('');
      setNote('');
      try {
        const saved = host.saveBeforeRun ? await host.saveBeforeRun(target) : 'clean';
        if (saved === 'cancelled') {
          return;
        }
        if (saved === 'saved') {
          setNote(`Saved ${baseName(target)} first: the job runs what you see.`);
        } else if (saved === 'unsaved') {
          setNote(`The job runs ${baseName(target)} as saved on disk, without its unsaved changes.`);
        }
        const created = await api.create(target, options);
        panel.remember(target, options);
        if ('jobs' in created) {
          dispatch({ kind: 'records', records: created.jobs });
        } else {
          dispatch({ kind: 'record', record: created });
          setExpanded(created.id);
        }
      } catch (e) {
        setError(message(e));
      } finally {
        setBusy('');
      }
    },
    [path, form, fields, dispatch, host, panel]
  );
  useSignal(panel.runRequested, p => void run(p));
  useSignal(panel.runAgainRequested, p => void run(p, true));

  const doPreview = async () => {
    if (!path) {
      return;
    }
    setBusy('preview');
    setError('');
    try {
      setPreview(await api.preview(path, formToOptions(form, fields)));
    } catch (e) {
      setError(message(e));
    } finally {
      setBusy('');
    }
  };

  const reachable = !!engine?.reachable;
  const items = groupJobs(jobs);
  const card = (job: JobView) => (
    <JobItem
      key={job.id}
      job={job}
      expanded={expanded === job.id}
      toggle={() => setExpanded(expanded === job.id ? null : job.id)}
      host={host}
      dispatch={dispatch}
      setError={setError}
    />
  );
  return (
    <div className="jc-Panel-body">
      <header className="jc-Header">
        <h2>Containers</h2>
        <EngineBadge engine={engine} />
      </header>
      {engine && !reachable && (
        <div className="jc-Banner jc-Banner-warn" role="status">
          <strong>No container engine is reachable.</strong> Jobs cannot run here, but you can still preview and
          download the Dockerfile. {engine.error && <span className="jc-Muted">({engine.error})</span>}
        </div>
      )}
      <section className="jc-Section">
        <div className="jc-Notebook" title={path ?? ''}>
          {path ? <>Notebook: <code>{path}</code></> : 'Open a notebook to run it as a container job.'}
        </div>
        {path && (
          <OptionsForm form={form} setForm={setForm} engine={engine} params={params} fields={fields} />
        )}
        {error && (
          <div className="jc-Banner jc-Banner-error" role="alert">
            {error}
          </div>
        )}
        {note && (
          <div className="jc-Banner jc-Banner-note" role="status">
            {note}
          </div>
        )}
        <div className="jc-Actions">
          <button className="jp-Button jp-mod-styled jp-mod-reject" disabled={!path || !!busy} onClick={doPreview}>
            {busy === 'preview' ? 'Rendering…' : 'Preview Dockerfile'}
          </button>
          <button
            className="jp-Button jp-mod-styled jp-mod-accept jc-Run"
            disabled={!path || !reachable || !!busy}
            onClick={() => run(path)}
            title={reachable ? 'Build the image and run the notebook in it' : 'No container engine is reachable'}
          >
            {busy === 'run' ? 'Starting…' : 'Build & Run'}
          </button>
        </div>
        {preview && <PreviewView preview={preview} onClose={() => setPreview(null)} />}
      </section>
      <section className="jc-Section jc-Jobs">
        <h3>Jobs</h3>
        {items.length === 0 && <div className="jc-Muted">No jobs yet.</div>}
        {items.map(item =>
          item.kind === 'job' ? (
            card(jobs.jobs[item.id])
          ) : (
            <SweepGroup
              key={item.sweepId}
              sweepId={item.sweepId}
              jobs={item.ids.map(id => jobs.jobs[id])}
              rendermime={host.rendermime ?? null}
              card={card}
            />
          )
        )}
      </section>
    </div>
  );
}

/** The job list: refreshed from the store, each unfinished job followed over its event stream. */
function useJobs(host: IPanelHost): [JobsState, (a: JobsAction) => void] {
  const [state, setState] = React.useState<JobsState>(emptyJobs);
  const stateRef = React.useRef(state);
  const streams = React.useRef(new Map<string, AbortController>());

  const dispatch = React.useCallback((action: JobsAction) => {
    const before = stateRef.current;
    const after = jobsReducer(before, action);
    if (after === before) {
      return;
    }
    stateRef.current = after;
    setState(after);
    for (const job of newlyFinished(before, after)) {
      notify(job, host);
    }
  }, [host]);

  React.useEffect(() => {
    let stopped = false;
    const follow = (id: string, after: number) => {
      if (streams.current.has(id)) {
        return;
      }
      const controller = new AbortController();
      streams.current.set(id, controller);
      void followEvents(id, after, (seq, event) => dispatch({ kind: 'event', id, seq, event }), controller.signal)
        .then(async end => {
          if (end === 'deleted') {
            dispatch({ kind: 'removed', id });
          } else if (end) {
            dispatch({ kind: 'record', record: await api.job(id) });
          }
        })
        .catch(() => undefined)
        .finally(() => streams.current.delete(id));
    };
    const refresh = async () => {
      try {
        const { jobs } = await api.jobs(30);
        if (stopped) {
          return;
        }
        const known = new Set(jobs.map(j => j.id));
        for (const id of stateRef.current.order) {
          if (!known.has(id)) {
            dispatch({ kind: 'removed', id });
          }
        }
        dispatch({ kind: 'records', records: jobs });
        for (const job of jobs) {
          const view = stateRef.current.jobs[job.id];
          // Finished jobs are replayed once (for progress and logs); running ones are followed live.
          if (view && (!job.done || view.lastSeq === 0)) {
            follow(job.id, view.lastSeq);
          }
        }
      } catch {
        /* the next refresh retries */
      }
    };
    void refresh();
    const timer = setInterval(refresh, LIST_REFRESH_MS);
    return () => {
      stopped = true;
      clearInterval(timer);
      streams.current.forEach(c => c.abort());
      streams.current.clear();
    };
  }, [dispatch]);

  return [state, dispatch];
}

/** A sweep's jobs under one header, with a Compare button that shows their comparison (table and plot). */
function SweepGroup(props: {
  sweepId: string;
  jobs: JobView[];
  rendermime: IRenderMimeRegistry | null;
  card: (job: JobView) => JSX.Element;
}): JSX.Element {
  const { sweepId, jobs, rendermime, card } = props;
  const [comparing, setComparing] = React.useState(false);
  const name = sweepName(jobs);
  return (
    <div className="jc-Sweep" data-sweep-id={sweepId}>
      <div className="jc-SweepTitle" title={`sweep ${sweepId}`}>
        {name && <strong>{name} </strong>}
        <span className="jc-Muted">sweep</span> <code>{sweepId}</code>
      </div>
      <div className="jc-SweepHead">
        <span className="jc-Muted jc-SweepSummary">{summaryText(sweepSummary(jobs))}</span>
        <button
          className="jp-Button jp-mod-styled jc-CompareButton"
          data-action="compare"
          onClick={() => setComparing(!comparing)}
          title="The jobs side by side: a table with the best run marked, and a plot of the metric"
        >
          {comparing ? 'Hide comparison' : 'Compare'}
        </button>
      </div>
      {comparing && (
        <CompareView
          sweepId={sweepId}
          version={sweepVersion(jobs)}
          rendermime={rendermime}
          onClose={() => setComparing(false)}
        />
      )}
      {jobs.map(card)}
    </div>
  );
}

function notify(job: JobView, host: IPanelHost): void {
  const name = job.name ? `${job.name}, ${job.notebookName}` : job.notebookName;
  const actions = job.outputNotebook
    ? [{ label: 'Open output', callback: () => host.open(job.outputNotebook as string) }]
    : [];
  if (job.status === 'succeeded') {
    Notification.success(`Container job ${job.id} (${name}) succeeded.`, { autoClose: 8000, actions });
  } else if (job.status === 'cancelled') {
    Notification.info(`Container job ${job.id} (${name}) was cancelled.`, { autoClose: 5000 });
  } else {
    Notification.error(`Container job ${job.id} (${name}) failed: ${job.error || 'see its log'}`, {
      autoClose: false,
      actions
    });
  }
}

function EngineBadge({ engine }: { engine: EngineStatus | null }): JSX.Element {
  if (!engine) {
    return <span className="jc-Badge">checking engine…</span>;
  }
  if (!engine.reachable) {
    return <span className="jc-Badge jc-Badge-off">no engine</span>;
  }
  const gpus = engine.gpu_runtime ? `, ${engine.gpus.length} GPU${engine.gpus.length === 1 ? '' : 's'}` : '';
  return (
    <span className="jc-Badge jc-Badge-on" title={`Docker ${engine.version}`}>
      Docker {engine.version.split('+')[0]}
      {gpus}
    </span>
  );
}

function OptionsForm(props: {
  form: FormState;
  setForm: React.Dispatch<React.SetStateAction<FormState>>;
  engine: EngineStatus | null;
  params: NotebookParameters | null;
  fields: ParamField[];
}): JSX.Element {
  const { form, setForm, engine, params, fields } = props;
  const set = <K extends keyof FormState>(key: K, value: FormState[K]) => setForm(f => ({ ...f, [key]: value }));
  const choices = gpuChoices(engine);
  return (
    <div className="jc-Form">
      <label className="jc-Row">
        <span className="jc-Label">Name</span>
        <input
          className="jp-mod-styled jc-Input"
          name="job-name"
          value={form.name}
          placeholder="optional, shown on the job's card"
          onChange={e => set('name', e.target.value)}
        />
      </label>
      <fieldset>
        <legend>Parameters</legend>
        {!params && <div className="jc-Muted">reading the notebook…</div>}
        {params && !params.has_cell && (
          <div className="jc-Muted">No cell is tagged “parameters”; tag one to set values per job.</div>
        )}
        {params &&
          fields.map(f => (
            <ParamInput
              key={f.name}
              field={f}
              text={form.parameters[f.name] ?? f.initial}
              update={text => setForm(x => ({ ...x, parameters: { ...x.parameters, [f.name]: text } }))}
            />
          ))}
      </fieldset>
      <fieldset>
        <legend>Resources</legend>
        <label className="jc-Row">
          <span className="jc-Label">GPUs</span>
          <select
            className="jp-mod-styled jc-Input"
            name="gpus"
            value={form.gpus}
            onChange={e => set('gpus', e.target.value)}
          >
            {choices.map(c => (
              <option key={c.value} value={c.value}>
                {c.label}
              </option>
            ))}
          </select>
        </label>
        <label className="jc-Row">
          <span className="jc-Label">Base image</span>
          <input
            className="jp-mod-styled jc-Input"
            name="base-image"
            value={form.baseImage}
            placeholder="python:X.Y.Z-slim-bookworm (default)"
            onChange={e => set('baseImage', e.target.value)}
          />
        </label>
        <label className="jc-Row">
          <span className="jc-Label">Backend</span>
          <select
            className="jp-mod-styled jc-Input"
            name="backend"
            value={form.backend}
            onChange={e => set('backend', e.target.value)}
          >
            <option value="docker">Docker (this machine)</option>
            <option value="slurm">Slurm</option>
            <option value="kubernetes">Kubernetes</option>
          </select>
        </label>
      </fieldset>
      <RowsEditor<VolumeRow>
        legend="Volumes"
        head={
          <label
            className="jc-Check"
            title="Mount the files and folders the notebook reads, read-only, where it reads them (off: --no-auto-mount)"
          >
            <input
              type="checkbox"
              name="auto-mount"
              checked={form.autoMount}
              onChange={e => set('autoMount', e.target.checked)}
            />
            Mount the data the notebook reads
          </label>
        }
        rows={form.volumes}
        setRows={rows => set('volumes', rows)}
        empty={{ source: '', target: '', readOnly: true }}
        render={(row, update) => (
          <>
            <input
              className="jp-mod-styled jc-Input"
              placeholder="./data"
              value={row.source}
              onChange={e => update({ ...row, source: e.target.value })}
            />
            <input
              className="jp-mod-styled jc-Input"
              placeholder="/data"
              value={row.target}
              onChange={e => update({ ...row, target: e.target.value })}
            />
            <label className="jc-Check" title="read-only">
              <input type="checkbox" checked={row.readOnly} onChange={e => update({ ...row, readOnly: e.target.checked })} />
              ro
            </label>
          </>
        )}
      />
      <RowsEditor<EnvRow>
        legend="Environment"
        rows={form.env}
        setRows={rows => set('env', rows)}
        empty={{ key: '', value: '' }}
        render={(row, update) => (
          <>
            <input
              className="jp-mod-styled jc-Input"
              placeholder="NAME"
              value={row.key}
              onChange={e => update({ ...row, key: e.target.value })}
            />
            <input
              className="jp-mod-styled jc-Input"
              placeholder="value"
              value={row.value}
              onChange={e => update({ ...row, value: e.target.value })}
            />
          </>
        )}
      />
    </div>
  );
}

/** One parameter: a number input for an int or a float, a checkbox for a bool, text for the rest. */
function ParamInput(props: { field: ParamField; text: string; update: (text: string) => void }): JSX.Element {
  const { field: f, text, update } = props;
  const type = f.type === 'NoneType' ? 'None' : f.type;
  const title = `${type} (default ${f.source})`;
  if (f.kind === 'bool') {
    return (
      <label className="jc-Row jc-ParamCheck" title={title}>
        <input
          type="checkbox"
          name={`param-${f.name}`}
          checked={text === 'True'}
          onChange={e => update(e.target.checked ? 'True' : 'False')}
        />
        <span className="jc-Label">{f.name}</span>
        <span className="jc-Type">bool</span>
      </label>
    );
  }
  const number = f.kind === 'int' || f.kind === 'float';
  return (
    <label className="jc-Row" title={title}>
      <span className="jc-Label">
        {f.name} <span className="jc-Type">{type}</span>
      </span>
      <input
        className="jp-mod-styled jc-Input"
        name={`param-${f.name}`}
        type={number ? 'number' : 'text'}
        step={f.kind === 'int' ? 1 : f.kind === 'float' ? 'any' : undefined}
        value={text}
        placeholder={f.kind === 'str' ? '(empty text)' : f.source /* empty: the default */}
        onChange={e => update(e.target.value)}
      />
    </label>
  );
}

function RowsEditor<T>(props: {
  legend: string;
  /** Shown above the rows (a switch that belongs to the same topic). */
  head?: JSX.Element;
  rows: T[];
  setRows: (rows: T[]) => void;
  empty: T;
  render: (row: T, update: (row: T) => void) => JSX.Element;
}): JSX.Element {
  const { legend, head, rows, setRows, empty, render } = props;
  return (
    <fieldset>
      <legend>{legend}</legend>
      {head}
      {rows.map((row, i) => (
        <div className="jc-Row jc-EditRow" key={i}>
          {render(row, r => setRows(rows.map((x, j) => (j === i ? r : x))))}
          <button
            className="jp-Button jc-Icon"
            title="Remove"
            onClick={() => setRows(rows.filter((_, j) => j !== i))}
          >
            ×
          </button>
        </div>
      ))}
      <button className="jp-Button jc-Add" onClick={() => setRows([...rows, { ...empty }])}>
        + Add
      </button>
    </fieldset>
  );
}

function PreviewView({ preview, onClose }: { preview: Preview; onClose: () => void }): JSX.Element {
  const download = () => {
    const blob = new Blob([preview.dockerfile], { type: 'text/plain' });
    const a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    a.download = 'Dockerfile';
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  };
  return (
    <div className="jc-Preview">
      <div className="jc-PreviewHead">
        <strong>Dockerfile</strong> <code title={preview.content_hash}>{preview.image_tag}</code>
        <span className="jc-Spacer" />
        <button className="jp-Button jc-Link" onClick={download}>
          Download
        </button>
        <button className="jp-Button jc-Link" onClick={onClose}>
          Close
        </button>
      </div>
      <pre className="jc-Code jc-Dockerfile">{preview.dockerfile}</pre>
      <ReferencesView preview={preview} />
      {preview.warnings.length > 0 && (
        // What the capture noticed on this machine (pip configuration…): notes, not errors.
        <details className="jc-Notes">
          <summary>Notes ({preview.warnings.length})</summary>
          <ul>
            {preview.warnings.map(w => (
              <li key={w}>{w}</li>
            ))}
          </ul>
        </details>
      )}
      <details>
        <summary>Build context ({preview.files.length} files)</summary>
        <ul className="jc-Files">
          {preview.files.map(f => (
            <li key={f}>{f}</li>
          ))}
        </ul>
      </details>
      {preview.lock && (
        <details>
          <summary>Locked requirements</summary>
          <pre className="jc-Code">{preview.lock}</pre>
        </details>
      )}
    </div>
  );
}

function Bar({ label, value, detail }: { label: string; value: number | null; detail: string }): JSX.Element {
  const pct = value === null ? 0 : Math.round(value * 100);
  return (
    <div className="jc-Progress" data-label={label}>
      <span className="jc-ProgressLabel">{label}</span>
      <div
        className="jc-Bar"
        role="progressbar"
        aria-label={label}
        aria-valuenow={pct}
        aria-valuemin={0}
        aria-valuemax={100}
      >
        <div className="jc-BarFill" style={{ width: `${pct}%` }} />
      </div>
      <span className="jc-ProgressDetail" title={detail}>
        {detail}
      </span>
    </div>
  );
}

function JobItem(props: {
  job: JobView;
  expanded: boolean;
  toggle: () => void;
  host: IPanelHost;
  dispatch: (a: JobsAction) => void;
  setError: (e: string) => void;
}): JSX.Element {
  const { job, expanded, toggle, host, dispatch, setError } = props;
  const act = async (fn: () => Promise<unknown>) => {
    try {
      await fn();
    } catch (e) {
      setError(message(e));
    }
  };
  const record = (fn: () => Promise<JobRecord>) => act(async () => dispatch({ kind: 'record', record: await fn() }));
  const actions: Record<JobAction, { label: string; run: () => unknown }> = {
    log: { label: expanded ? 'Hide log' : 'Log', run: toggle },
    cancel: { label: 'Cancel', run: () => record(() => api.cancel(job.id)) },
    rerun: { label: 'Re-run', run: () => record(() => api.rerun(job.id)) },
    open: { label: 'Open output', run: () => host.open(job.outputNotebook as string) },
    delete: {
      label: 'Delete',
      run: () =>
        act(async () => {
          const choices = deleteChoices(job);
          const answer = await showDialog({
            title: 'Delete this job?',
            body: deleteQuestion(job),
            buttons: [Dialog.cancelButton(), ...choices.map(c => Dialog.warnButton({ label: c.label }))],
            defaultButton: choices.length // "Delete job": Enter never removes files
          });
          const choice = answer.button.accept ? choices.find(c => c.label === answer.button.label) : undefined;
          if (!choice) {
            return;
          }
          const removed = await api.remove(job.id, choice.outputs);
          dispatch({ kind: 'removed', id: job.id });
          if (removed?.folder_removed) {
            Notification.info(`Deleted job ${job.id} and its outputs (${removed.folder_removed}).`, { autoClose: 5000 });
          }
        })
    }
  };
  const logRef = React.useRef<HTMLPreElement>(null);
  React.useEffect(() => {
    if (logRef.current) {
      logRef.current.scrollTop = logRef.current.scrollHeight;
    }
  }, [job.logs.length, expanded]);
  const steps = `${job.build.done}/${job.build.total}${job.build.cachedSteps ? ` (${job.build.cachedSteps} cached)` : ''}`;
  const building = job.status === 'building' && job.build.instruction; // what the step does, as the text view says
  const buildDetail = !job.build.total
    ? job.build.instruction
    : building
      ? `${steps}: ${job.build.instruction}${job.build.packages ? ` · ${job.build.packages}` : ''}`
      : steps;
  const runDetail = job.run.total ? `cell ${Math.min(job.run.done + (isDone(job) ? 0 : 1), job.run.total)}/${job.run.total}` : '';
  const params = Object.entries(job.parameters);
  const metrics = Object.entries(job.metrics).filter(([, v]) => typeof v === 'number' || typeof v === 'string');
  return (
    <div className={`jc-Job jc-Job-${job.status}`} data-job-id={job.id} data-status={job.status}>
      <div className="jc-JobHead" onClick={toggle}>
        <span className={`jc-Status jc-Status-${job.status}`}>{job.status}</span>
        <span className="jc-JobName" title={`${job.path ?? job.notebookName} · job ${job.id}`}>
          {job.name || baseName(job.notebookName)}
        </span>
      </div>
      <div className="jc-Muted jc-JobMeta">
        job <code className="jc-JobId">{job.id}</code>
        {job.name && <> · {baseName(job.notebookName)}</>} ·{' '}
        <span className="jc-JobTime">{new Date(job.created * 1000).toLocaleTimeString()}</span>
      </div>
      <Bar label="build" value={fraction(job.build)} detail={buildDetail} />
      <Bar label="run" value={fraction(job.run)} detail={runDetail} />
      {params.length > 0 && (
        <div className="jc-Kv">
          {params.map(([k, v]) => (
            <span key={k}>
              {k}={JSON.stringify(v)}
            </span>
          ))}
        </div>
      )}
      {metrics.length > 0 && (
        <div className="jc-Kv jc-Metrics">
          {metrics.map(([k, v]) => (
            <span key={k}>
              {k}: {typeof v === 'number' ? Number(v.toPrecision(4)) : String(v)}
            </span>
          ))}
        </div>
      )}
      {job.error && job.status !== 'succeeded' && <div className="jc-JobError">{job.error}</div>}
      <div className="jc-JobActions">
        {jobActions(job).map(action => (
          <button
            key={action}
            className={`jp-Button jc-Link${action === 'open' ? ' jc-OpenOutput' : ''}`}
            data-action={action}
            onClick={() => void actions[action].run()}
          >
            {actions[action].label}
          </button>
        ))}
      </div>
      {expanded && (
        <pre className="jc-Code jc-Log" ref={logRef}>
          {job.logs.length === 0 ? 'No output yet.' : job.logs.map((l, i) => (
            <div key={i} className={`jc-Log-${l.stream}`}>
              {l.text}
            </div>
          ))}
        </pre>
      )}
    </div>
  );
}
