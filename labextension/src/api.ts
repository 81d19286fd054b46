/** Calls to the server extension's REST API under /containerize/. */

import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { JobEvent } from './events.generated';
import { NotebookParameter } from './params';
import { ScheduleRecord } from './schedules';
import { JobRecord, parseSse } from './state';
import { SweepComparison } from './sweeps';

export interface EngineStatus {
  reachable: boolean;
  version: string;
  gpu_runtime: boolean;
  gpus: string[];
  driver_cuda: string | null;
  error: string;
}

export interface Preview {
  dockerfile: string;
  files: string[];
  content_hash: string;
  image_tag: string;
  base_image: string;
  lock: string;
  warnings: string[];
  /** Data the notebook reads, mounted read-only where it reads it (none with "no_auto_mount"). */
  mounts: PreviewMount[];
  /** The notebook's own code copied into the image (paths relative to its folder). */
  local_code: PreviewReference[];
}

export interface PreviewReference {
  path: string;
  /** Why it was taken: "read by cell 4", "imported by cell 2", "%run in cell 3". */
  why: string;
}

export interface PreviewMount extends PreviewReference {
  /** Where it appears in the job, e.g. /work/data. */
  target: string;
}

export interface NotebookParameters {
  has_cell: boolean;
  parameters: NotebookParameter[];
}

/** What `DELETE /containerize/jobs/<id>?outputs=1` answers (paths relative to the root). */
export interface RemovedJob {
  id: string;
  folder_removed: string | null;
  folder_kept: string | null;
}

/** A REST error with the server's one-sentence message. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number
  ) {
    super(message);
  }
}

/** What an error says to the user: the server's sentence for a REST error, else the error's message. */
export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

const settings = (): ServerConnection.ISettings => ServerConnection.makeSettings();

function url(path: string, query?: Record<string, string>): string {
  const base = URLExt.join(settings().baseUrl, 'containerize', path);
  return query ? base + URLExt.objectToQueryString(query) : base;
}

export async function request<T>(path: string, init: RequestInit = {}, query?: Record<string, string>): Promise<T> {
  const s = settings();
  const response = await ServerConnection.makeRequest(url(path, query), init, s);
  const text = await response.text();
  let data: any = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { error: text };
    }
  }
  if (!response.ok) {
    throw new ApiError((data && (data.error || data.message)) || response.statusText, response.status);
  }
  return data as T;
}

const post = (body: unknown): RequestInit => ({ method: 'POST', body: JSON.stringify(body) });

export const api = {
  engine: () => request<EngineStatus>('engine'),
  jobs: (limit = 30) => request<{ jobs: JobRecord[] }>('jobs', {}, { limit: String(limit) }),
  job: (id: string) => request<JobRecord>(`jobs/${id}`),
  /** One job, or with a `sweep` option the jobs of the sweep. */
  create: (path: string, options: Record<string, unknown>) =>
    request<JobRecord | { jobs: JobRecord[] }>('jobs', post({ path, options })),
  cancel: (id: string) => request<JobRecord>(`jobs/${id}/cancel`, post({})),
  rerun: (id: string) => request<JobRecord>(`jobs/${id}/rerun`, post({})),
  /** Forget a job; `outputs`: also remove its own output folder (`<stem>.jc-jobs/<id>/`; a --output folder stays). */
  remove: (id: string, outputs = false) =>
    request<RemovedJob | null>(`jobs/${id}`, { method: 'DELETE' }, outputs ? { outputs: '1' } : undefined),
  preview: (path: string, options: Record<string, unknown>) => request<Preview>('preview', post({ path, options })),
  parameters: (path: string) => request<NotebookParameters>('notebook-parameters', {}, { path }),
  /** A sweep's jobs compared (rows best first, the best run, a Vega-Lite spec); `metric`: '' for the default. */
  sweep: (id: string, metric = '') =>
    request<SweepComparison>(`sweeps/${encodeURIComponent(id)}`, {}, metric ? { metric } : undefined),
  /** The schedules, each with its next run and its last run's status. */
  schedules: () => request<{ schedules: ScheduleRecord[] }>('schedules'),
  /** Pause (it starts no run until resumed) or resume (from its next time after now); answers the schedule. */
  pauseSchedule: (id: string, pause: boolean) =>
    request<ScheduleRecord>(`schedules/${encodeURIComponent(id)}/${pause ? 'pause' : 'resume'}`, post({})),
  /** Remove a schedule (the jobs it started stay). */
  unschedule: (id: string) => request<null>(`schedules/${encodeURIComponent(id)}`, { method: 'DELETE' })
};

/**
 * Follow a job's event stream (server-sent events over fetch, so the token
 * header authenticates it). Resumes after `after`; resolves when the job ends
 * or `signal` aborts; reconnects on network errors.
 */
export async function followEvents(
  id: string,
  after: number,
  onEvent: (seq: number, event: JobEvent) => void,
  signal: AbortSignal
): Promise<string | null> {
  let last = after;
  for (let attempt = 0; !signal.aborted; attempt++) {
    try {
      const s = settings();
      const response = await ServerConnection.makeRequest(url(`jobs/${id}/events`, { after: String(last) }), { signal }, s);
      if (response.status === 404) {
        return 'deleted';
      }
      if (!response.ok || !response.body) {
        throw new Error(`events: HTTP ${response.status}`);
      }
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) {
          break;
        }
        buffer += decoder.decode(value, { stream: true });
        const parsed = parseSse(buffer);
        buffer = parsed.rest;
        for (const m of parsed.messages) {
          if (m.event === 'end') {
            return (JSON.parse(m.data) as { status: string }).status;
          }
          if (m.id !== null) {
            last = m.id;
            onEvent(m.id, JSON.parse(m.data) as JobEvent);
          }
        }
      }
      attempt = 0;
    } catch (e) {
      if (signal.aborted) {
        return null;
      }
    }
    await new Promise(resolve => setTimeout(resolve, Math.min(10000, 500 * 2 ** attempt)));
  }
  return null;
}
