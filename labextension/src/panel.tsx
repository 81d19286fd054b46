/** The "Containers" sidebar: options form, Dockerfile preview, Build & Run, live job list, schedules. */

import { Dialog, showDialog } from '@jupyterlab/apputils';
import { ReactWidget } from '@jupyterlab/ui-components';
import { Signal } from '@lumino/signaling';
import * as React from 'react';

import { api, EngineStatus, errorMessage, NotebookParameters, Preview } from './api';
import { OptionsForm } from './form';
import { IJobsHost, JobList, useJobs } from './jobs';
import { paramField, refreshedTexts } from './params';
import { ReferencesView } from './references';
import { ScheduleList, useSchedules } from './schedulelist';
import { baseName, emptyForm, FormState, formToOptions, LastOptions, parseLastOptions, rememberOptions } from './state';

/**
 * What became of the notebook's unsaved changes before a run: none, saved, left unsaved (the user
 * chose to run the version on disk), or the user cancelled the run.
 */
export type SaveOutcome = 'clean' | 'saved' | 'unsaved' | 'cancelled';

/** What the panel needs of JupyterLab: the job list's needs, and saving a notebook before its run. */
export interface IPanelHost extends IJobsHost {
  /** Save the notebook's open editor when it has unsaved changes (a job runs the file on disk); ask when it cannot. */
  saveBeforeRun?(path: string): Promise<SaveOutcome>;
}

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

function PanelView({ panel, host }: { panel: ContainersPanel; host: IPanelHost }): JSX.Element {
  const [path, setPath] = React.useState<string | null>(panel.path);
  const [engine, setEngine] = React.useState<EngineStatus | null>(null);
  const [params, setParams] = React.useState<NotebookParameters | null>(null);
  const [form, setForm] = React.useState<FormState>(emptyForm);
  const [preview, setPreview] = React.useState<Preview | null>(null);
  const [busy, setBusy] = React.useState<'' | 'preview' | 'run'>('');
  const [error, setError] = React.useState('');
  const [note, setNote] = React.useState('');
  const [schedules, reloadSchedules, scheduleAction] = useSchedules(setError, confirmRemoval);
  const [jobs, dispatch] = useJobs(host, reloadSchedules);
  const [expanded, setExpanded] = React.useState<string | null>(null);

  useSignal(panel.pathChanged, setPath);
  const pathRef = React.useRef(path);
  pathRef.current = path;
  const paramsRef = React.useRef(params);
  paramsRef.current = params;

  React.useEffect(() => {
    api.engine().then(setEngine, e => setEngine({ reachable: false, error: errorMessage(e) } as EngineStatus));
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
      e => setError(errorMessage(e))
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
        setError(errorMessage(e));
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
      setError(errorMessage(e));
    } finally {
      setBusy('');
    }
  };

  const reachable = !!engine?.reachable;
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
      <section className="jc-Section jc-Schedules">
        <h3>Schedules</h3>
        <ScheduleList state={schedules} act={scheduleAction} />
      </section>
      <section className="jc-Section jc-Jobs">
        <h3>Jobs</h3>
        <JobList jobs={jobs} dispatch={dispatch} host={host} setError={setError} expanded={expanded} setExpanded={setExpanded} />
      </section>
    </div>
  );
}

/** Before a schedule is removed: Enter keeps it. */
async function confirmRemoval(question: string): Promise<boolean> {
  const answer = await showDialog({
    title: 'Remove this schedule?',
    body: question,
    buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Remove schedule' })],
    defaultButton: 0
  });
  return answer.button.accept;
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

