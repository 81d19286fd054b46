/**
 * The panel's state logic: job records + ordered events -> job view state.
 *
 * Plain functions with no JupyterLab imports, so they are unit-tested with jest.
 * The server streams the same typed events that the CLI and the widgets render
 * (jupyter_containerize/events.py); this module only folds them. Their types are
 * generated from the Python definitions (events.generated.ts), never written here.
 */

import { JobEvent, TERMINAL_STATUSES } from './events.generated';
import { changedParameters, ParamField } from './params';

/** A job as `GET /containerize/jobs/<id>` returns it (the fields the panel uses). */
export interface JobRecord {
  id: string;
  notebook: string;
  path: string | null;
  status: string;
  created: number;
  done: boolean;
  parameters: Record<string, unknown>;
  metrics: Record<string, unknown>;
  error: string;
  image_tag: string;
  output_notebook: string | null;
  output_paths: string[];
  duration: number | null;
  backend: string;
  /** The user's name for the job (`--name`; a sweep's jobs: `NAME lr=0.1`); '' or absent when none. */
  name?: string;
  /** The sweep the job belongs to; '' or absent when none. */
  sweep_id?: string;
  /** The folder the job wrote its outputs to (absolute; '' when none). */
  output_dir?: string;
  /** Its own output folder (`<stem>.jc-jobs/<id>`, relative to the root), which a delete with outputs removes; null when none. */
  own_output_folder?: string | null;
  /** The run's options as the job store keeps them (JobSpec.to_dict); the parts the card shows. */
  spec?: { volumes?: { source: string; target: string; read_only?: boolean }[]; env?: Record<string, string> };
}

export interface Progress {
  done: number;
  total: number;
}

export interface LogLine {
  text: string;
  stream: 'stdout' | 'stderr' | 'build';
}

export interface JobView {
  id: string;
  name: string;
  sweepId: string;
  path: string | null;
  notebookName: string;
  status: string;
  created: number;
  parameters: Record<string, unknown>;
  metrics: Record<string, unknown>;
  error: string;
  outputNotebook: string | null;
  /** The job's own output folder (relative to the root): "Delete job and its outputs" removes it. */
  ownOutputFolder: string | null;
  /** Where the job wrote its outputs (absolute; '' when unknown). */
  outputDir: string;
  build: Progress & { cachedSteps: number; instruction: string; packages: string; added: number; resolved: number };
  run: Progress & { cell: string };
  logs: LogLine[];
  lastSeq: number;
  /** What the job mounted: "SOURCE → TARGET (read-only)". */
  volumes: string[];
  /** The names of the environment variables it was given (their values are not shown: they may be secrets). */
  envNames: string[];
  /** "attempt 2 of 3" once a run was lost and retried (--retries); '' before. */
  attempt: string;
  /** True once this client saw the job unfinished: only those notify when they end. */
  seenRunning: boolean;
}

export const MAX_LOG_LINES = 400;

export function viewFromRecord(record: JobRecord, previous?: JobView): JobView {
  const base: JobView = previous ?? {
    id: record.id,
    name: record.name ?? '',
    sweepId: record.sweep_id ?? '',
    path: record.path,
    notebookName: baseName(record.path ?? record.notebook),
    status: record.status,
    created: record.created,
    parameters: {},
    metrics: {},
    error: '',
    outputNotebook: null,
    ownOutputFolder: null,
    outputDir: '',
    build: { done: 0, total: 0, cachedSteps: 0, instruction: '', packages: '', added: 0, resolved: 0 },
    run: { done: 0, total: 0, cell: '' },
    logs: [],
    lastSeq: 0,
    volumes: [],
    envNames: [],
    attempt: '',
    seenRunning: false
  };
  // The stream is the fresher source for the status; records catch up with it.
  const status =
    previous && TERMINAL_STATUSES.has(previous.status) && !TERMINAL_STATUSES.has(record.status)
      ? previous.status
      : record.status;
  return {
    ...base,
    name: record.name ?? base.name,
    sweepId: record.sweep_id ?? base.sweepId,
    path: record.path,
    status,
    parameters: record.parameters ?? {},
    metrics: { ...base.metrics, ...(record.metrics ?? {}) },
    error: record.error || base.error,
    outputNotebook: record.output_notebook ?? base.outputNotebook,
    ownOutputFolder: record.own_output_folder !== undefined ? record.own_output_folder : base.ownOutputFolder,
    outputDir: record.output_dir ?? base.outputDir,
    volumes: (record.spec?.volumes ?? []).map(v => `${v.source} → ${v.target}${v.read_only ? ' (read-only)' : ''}`),
    envNames: Object.keys(record.spec?.env ?? {}).sort(),
    seenRunning: base.seenRunning || !TERMINAL_STATUSES.has(status)
  };
}

function pushLog(logs: LogLine[], line: LogLine): LogLine[] {
  const next = logs.length >= MAX_LOG_LINES ? logs.slice(logs.length - MAX_LOG_LINES + 1) : logs.slice();
  next.push(line);
  return next;
}

/** uv's counters as the text view shows them: "12/38 packages" while installing, a precompiled package by name. */
function packagesProgress(build: JobView['build'], phase: string, count: number, detail: string): JobView['build'] {
  const next = { ...build };
  if (phase === 'resolved') {
    next.resolved = count;
  } else if (phase === 'added') {
    next.added = build.added + count;
  } else if (phase === 'installed') {
    next.added = count;
  } else if (phase === 'precompiled') {
    next.packages = `precompiled ${detail}`;
    return next;
  }
  next.packages = next.resolved ? `${Math.min(next.added, next.resolved)}/${next.resolved} packages` : '';
  return next;
}

function num(value: unknown, fallback = 0): number {
  return typeof value === 'number' && isFinite(value) ? value : fallback;
}

function str(value: unknown): string {
  return typeof value === 'string' ? value : value === undefined || value === null ? '' : String(value);
}

/** Fold one event into a job view. Events at or below `lastSeq` are ignored (replays after a reconnect). */
export function applyEvent(view: JobView, seq: number, event: JobEvent): JobView {
  if (seq <= view.lastSeq) {
    return view;
  }
  const v: JobView = { ...view, lastSeq: seq };
  switch (event.type) {
    case 'StatusChanged': {
      const status = str(event.status);
      return { ...v, status, seenRunning: v.seenRunning || !TERMINAL_STATUSES.has(status) };
    }
    case 'BuildStarted':
      return { ...v, build: { ...v.build, total: num(event.total_steps, v.build.total) } };
    case 'BuildStep':
      return {
        ...v,
        build: {
          ...v.build,
          done: Math.max(v.build.done, num(event.index) - 1),
          total: num(event.total, v.build.total),
          instruction: str(event.label) || str(event.instruction), // what the step does, as the text view says
          packages: '',
          added: 0,
          resolved: 0
        },
        logs: pushLog(v.logs, {
          text: `step ${num(event.index)}/${num(event.total)}: ${str(event.label) || str(event.instruction)}${event.cached ? ' (cached)' : ''}`,
          stream: 'build'
        })
      };
    case 'LayerCached':
      return { ...v, build: { ...v.build, cachedSteps: v.build.cachedSteps + 1, done: Math.max(v.build.done, num(event.index)) } };
    case 'PackagesProgress':
      return { ...v, build: packagesProgress(v.build, str(event.phase), num(event.count), str(event.detail)) };
    case 'BuildLog':
      return { ...v, logs: pushLog(v.logs, { text: str(event.line), stream: 'build' }) };
    case 'BuildFinished': {
      const total = v.build.total || num(event.steps_run, 1) || 1;
      return {
        ...v,
        build: { ...v.build, total, done: total, instruction: event.cached ? 'environment reused: 0 build steps' : 'done' }
      };
    }
    case 'PushProgress':
      return { ...v, logs: pushLog(v.logs, { text: `push ${str(event.reference)}: ${str(event.detail)}`, stream: 'build' }) };
    case 'RunStarted':
      return { ...v, status: TERMINAL_STATUSES.has(v.status) ? v.status : 'running' };
    case 'NotebookStarted':
      return { ...v, run: { ...v.run, total: num(event.total_cells, v.run.total) } };
    case 'CellStarted':
      return {
        ...v,
        run: { done: Math.max(v.run.done, num(event.index)), total: num(event.total, v.run.total), cell: str(event.source_first_line) }
      };
    case 'CellFinished': {
      // A cell that raised is not done (as in the widget and text views: jupyter_containerize/progress.py).
      const done = event.ok === false ? v.run.done : Math.max(v.run.done, num(event.index) + 1);
      return { ...v, run: { ...v.run, done, total: num(event.total, v.run.total) } };
    }
    case 'Log': {
      const stream = event.stream === 'stderr' ? 'stderr' : 'stdout';
      const lines = str(event.text).replace(/\n$/, '').split('\n');
      let logs = v.logs;
      for (const text of lines) {
        logs = pushLog(logs, { text, stream });
      }
      return { ...v, logs };
    }
    case 'MetricLogged':
      return { ...v, metrics: { ...v.metrics, [str(event.name)]: event.value } };
    case 'Retrying': {
      // A new attempt runs the notebook again: its own section of the log (the heading of progress.py's retry_heading).
      const waited = num(event.delay) ? `; after ${Math.round(num(event.delay))} s` : '';
      const heading = `── attempt ${num(event.attempt)} of ${num(event.attempts)} (the one before ended: ${str(event.reason)}${waited}) ──`;
      return {
        ...v,
        attempt: `attempt ${num(event.attempt)} of ${num(event.attempts)}`,
        run: { done: 0, total: 0, cell: '' },
        logs: pushLog(v.logs, { text: heading, stream: 'stderr' })
      };
    }
    case 'Finished': {
      const status = str(event.status) || v.status;
      const ok = status === 'succeeded';
      return {
        ...v,
        status,
        error: str(event.error) || v.error,
        run: ok && v.run.total ? { ...v.run, done: v.run.total } : v.run,
        build: ok && v.build.total ? { ...v.build, done: v.build.total } : v.build
      };
    }
    default:
      return v;
  }
}

export function isDone(view: JobView): boolean {
  return TERMINAL_STATUSES.has(view.status);
}

/** What a job card offers, in order: a job still going can be cancelled; a finished one re-run or deleted. */
export type JobAction = 'log' | 'cancel' | 'rerun' | 'open' | 'delete';

export function jobActions(view: JobView): JobAction[] {
  const done = isDone(view);
  const actions: JobAction[] = ['log', done ? 'rerun' : 'cancel'];
  if (view.outputNotebook) {
    actions.push('open');
  }
  if (done) {
    actions.push('delete');
  }
  return actions;
}

/** A choice the Delete dialog offers: the job alone, or with its own output folder. */
export interface DeleteChoice {
  label: string;
  outputs: boolean;
}

/** "Delete job and its outputs" only where the job has its own output folder (a --output folder is the user's). */
export function deleteChoices(view: JobView): DeleteChoice[] {
  const choices: DeleteChoice[] = [];
  if (view.ownOutputFolder) {
    choices.push({ label: 'Delete job and its outputs', outputs: true });
  }
  choices.push({ label: 'Delete job', outputs: false });
  return choices;
}

/** What the Delete dialog says: what goes with each choice and what stays. */
export function deleteQuestion(view: JobView): string {
  const what = view.name ? `${view.name} (${view.notebookName})` : view.notebookName;
  const head = `Job ${view.id} of ${what} goes from the list, with its log.`;
  if (view.ownOutputFolder) {
    return `${head} Its outputs are in ${view.ownOutputFolder}/: "Delete job and its outputs" removes that folder too.`;
  }
  if (view.outputDir) {
    return `${head} Its outputs in ${view.outputDir} stay (a folder chosen for the job).`;
  }
  return head;
}

/** 0..1, or null when there is nothing to show yet. */
export function fraction(p: Progress): number | null {
  if (!p.total) {
    return null;
  }
  return Math.min(1, Math.max(0, p.done / p.total));
}

// -- the job list -------------------------------------------------------------------------------

export interface JobsState {
  order: string[];
  jobs: Record<string, JobView>;
}

export const emptyJobs: JobsState = { order: [], jobs: {} };

export type JobsAction =
  | { kind: 'records'; records: JobRecord[]; replace?: boolean }
  | { kind: 'record'; record: JobRecord }
  | { kind: 'event'; id: string; seq: number; event: JobEvent }
  | { kind: 'removed'; id: string };

export function jobsReducer(state: JobsState, action: JobsAction): JobsState {
  switch (action.kind) {
    case 'records': {
      const jobs: Record<string, JobView> = action.replace ? {} : { ...state.jobs };
      for (const r of action.records) {
        jobs[r.id] = viewFromRecord(r, state.jobs[r.id]);
      }
      return { jobs, order: sortOrder(jobs) };
    }
    case 'record': {
      const jobs = { ...state.jobs, [action.record.id]: viewFromRecord(action.record, state.jobs[action.record.id]) };
      return { jobs, order: sortOrder(jobs) };
    }
    case 'event': {
      const view = state.jobs[action.id];
      if (!view) {
        return state;
      }
      const next = applyEvent(view, action.seq, action.event);
      return next === view ? state : { ...state, jobs: { ...state.jobs, [action.id]: next } };
    }
    case 'removed': {
      if (!state.jobs[action.id]) {
        return state;
      }
      const jobs = { ...state.jobs };
      delete jobs[action.id];
      return { jobs, order: state.order.filter(id => id !== action.id) };
    }
  }
}

function sortOrder(jobs: Record<string, JobView>): string[] {
  return Object.values(jobs)
    .sort((a, b) => b.created - a.created)
    .map(j => j.id);
}

/** Jobs that finished between two states and that this client watched running: notify about these. */
export function newlyFinished(before: JobsState, after: JobsState): JobView[] {
  const out: JobView[] = [];
  for (const id of after.order) {
    const prev = before.jobs[id];
    const next = after.jobs[id];
    if (prev && next && !isDone(prev) && isDone(next) && next.seenRunning) {
      out.push(next);
    }
  }
  return out;
}

// -- the options form -----------------------------------------------------------------------------

export interface VolumeRow {
  source: string;
  target: string;
  readOnly: boolean;
}

export interface EnvRow {
  key: string;
  value: string;
}

export interface FormState {
  gpus: string;
  volumes: VolumeRow[];
  env: EnvRow[];
  /** Parameter name -> the field's text (see params.ts: a number, True/False, a string's value, or source text). */
  parameters: Record<string, string>;
  baseImage: string;
  backend: string;
  /** Mount the data the notebook reads, read-only, where it reads it (off: `--no-auto-mount`). */
  autoMount: boolean;
  /** A name for the job (`--name`), shown on its card. */
  name: string;
}

export const emptyForm: FormState = {
  gpus: '',
  volumes: [],
  env: [],
  parameters: {},
  baseImage: '',
  backend: 'docker',
  autoMount: true,
  name: ''
};

/**
 * The REST options for a form: the server turns them into the CLI's flags
 * (`gpus` -> `--gpus`, `volume` -> `-v`, …). Only parameters that differ from
 * the notebook's defaults are sent (typed: see params.ts), so the job records what was overridden.
 */
export function formToOptions(form: FormState, fields: ParamField[] = []): Record<string, unknown> {
  const options: Record<string, unknown> = {};
  if (form.gpus.trim()) {
    options.gpus = form.gpus.trim();
  }
  const volumes = form.volumes
    .filter(v => v.source.trim() && v.target.trim())
    .map(v => `${v.source.trim()}:${v.target.trim()}${v.readOnly ? ':ro' : ''}`);
  if (volumes.length) {
    options.volume = volumes;
  }
  const env = form.env.filter(e => e.key.trim()).map(e => `${e.key.trim()}=${e.value}`);
  if (env.length) {
    options.env = env;
  }
  const params = changedParameters(fields, form.parameters);
  if (Object.keys(params).length) {
    options.parameters = params;
  }
  if (form.baseImage.trim()) {
    options.base_image = form.baseImage.trim();
  }
  if (form.backend && form.backend !== 'docker') {
    options.backend = form.backend;
  }
  if (!form.autoMount) {
    options.no_auto_mount = true;
  }
  if (form.name.trim()) {
    options.name = form.name.trim();
  }
  return options;
}

/** GPU choices for the selector, from the engine status. */
export function gpuChoices(engine: { gpu_runtime?: boolean; gpus?: string[] } | null): { value: string; label: string }[] {
  const choices = [{ value: '', label: 'No GPU' }];
  if (!engine || !engine.gpu_runtime) {
    return choices;
  }
  const gpus = engine.gpus ?? [];
  choices.push({ value: 'all', label: gpus.length ? `All GPUs (${gpus.length})` : 'All GPUs' });
  gpus.forEach((name, i) => choices.push({ value: `device=${i}`, label: `GPU ${i}: ${name}` }));
  return choices;
}

// -- unsaved work -------------------------------------------------------------------------------------

/** What the notebook's open editor (if any) says before a run. */
export interface EditorState {
  /** The notebook is open in JupyterLab. */
  open: boolean;
  /** It has unsaved changes. */
  dirty: boolean;
  /** JupyterLab can write it (false: a read-only file). */
  writable: boolean;
}

/** Before a run: nothing to do, save the notebook (the job runs the file on disk), or ask (it cannot be saved). */
export function saveAction(state: EditorState): 'none' | 'save' | 'ask' {
  if (!state.open || !state.dirty) {
    return 'none';
  }
  return state.writable ? 'save' : 'ask';
}

// -- output notebooks --------------------------------------------------------------------------------------

/** Whether a notebook is a job's output (`<stem>.jc-jobs/<id>/…`): a result to read, not one to run again. */
export function isJobOutput(path: string): boolean {
  return path.includes('.jc-jobs/');
}

/**
 * When a kernel starts, JupyterLab writes its name and language into the notebook's metadata
 * (kernelspec, language_info); an output notebook recorded the job's, so that write alone would
 * mark it as changed the moment it opens. This tells when a notebook just turned "changed" by
 * that write only, so it can be kept unchanged; any other change keeps it changed.
 */
export class KernelMetadataGuard {
  private _kernelWrote = false;

  /** The notebook's metadata changed at `key`. */
  metadata(key: string): void {
    this._kernelWrote = key === 'kernelspec' || key === 'language_info';
  }

  /** The notebook's changed flag turned `dirty`: whether to set it back (the change was the kernel's write). */
  dirty(dirty: boolean): boolean {
    const reset = dirty && this._kernelWrote;
    this._kernelWrote = false;
    return reset;
  }
}

// -- "Run again with last settings" -------------------------------------------------------------------

/** The options last used from the sidebar, per notebook path (the newest last). */
export type LastOptions = Record<string, Record<string, unknown>>;

export const MAX_REMEMBERED = 50;

/** `last` with `options` as the newest for `path`; the oldest notebooks are forgotten past `max`. */
export function rememberOptions(
  last: LastOptions,
  path: string,
  options: Record<string, unknown>,
  max = MAX_REMEMBERED
): LastOptions {
  const entries = Object.entries(last).filter(([p]) => p !== path);
  entries.push([path, options]);
  return Object.fromEntries(entries.slice(Math.max(0, entries.length - max)));
}

/** Remembered options read back (localStorage text); anything unreadable is none. */
export function parseLastOptions(text: string | null): LastOptions {
  if (!text) {
    return {};
  }
  try {
    const data: unknown = JSON.parse(text);
    if (!data || typeof data !== 'object' || Array.isArray(data)) {
      return {};
    }
    const out: LastOptions = {};
    for (const [path, options] of Object.entries(data as Record<string, unknown>)) {
      if (options && typeof options === 'object' && !Array.isArray(options)) {
        out[path] = options as Record<string, unknown>;
      }
    }
    return out;
  } catch {
    return {};
  }
}

// -- server-sent events -----------------------------------------------------------------------------

export interface SseMessage {
  id: number | null;
  event: string;
  data: string;
}

/** Split an SSE buffer into complete messages and the unfinished rest. */
export function parseSse(buffer: string): { messages: SseMessage[]; rest: string } {
  const normalized = buffer.replace(/\r\n/g, '\n');
  const blocks = normalized.split('\n\n');
  const rest = blocks.pop() ?? '';
  const messages: SseMessage[] = [];
  for (const block of blocks) {
    let id: number | null = null;
    let event = 'message';
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (!line || line.startsWith(':')) {
        continue;
      }
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'id') {
        id = Number(value);
      } else if (field === 'event') {
        event = value;
      } else if (field === 'data') {
        data.push(value);
      }
    }
    if (data.length || event !== 'message') {
      messages.push({ id, event, data: data.join('\n') });
    }
  }
  return { messages, rest };
}

export function baseName(path: string): string {
  const parts = path.split('/');
  return parts[parts.length - 1] || path;
}

export function formatDuration(seconds: number | null): string {
  if (seconds === null || !isFinite(seconds)) {
    return '';
  }
  const s = Math.round(seconds);
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m ${s % 60}s`;
}
