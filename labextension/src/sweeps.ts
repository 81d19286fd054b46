/**
 * Sweeps in the sidebar: the job list grouped by sweep, and the comparison that
 * `GET /containerize/sweeps/<id>` answers (jupyter_containerize/comparison.py ranks the
 * runs and writes the Vega-Lite spec; this module only lays them out).
 *
 * Plain functions with no JupyterLab imports, unit-tested with jest.
 */

import { formatDuration, isDone, JobsState, JobView } from './state';

export const VEGA_LITE_MIME = 'application/vnd.vegalite.v5+json';
export const MIN_PLOT_WIDTH = 120;

/** One job of a compared sweep (comparison.py's Row.to_dict). */
export interface ComparisonRow {
  job_id: string;
  name: string;
  status: string;
  parameters: Record<string, unknown>;
  metrics: Record<string, unknown>;
  /** The compared metric, when the job is ranked. */
  value: number | null;
  /** 1 is the best run; null: not ranked (not succeeded, or no number for the metric). */
  rank: number | null;
  best: boolean;
  build_seconds: number | null;
  run_seconds: number | null;
  duration: number | null;
}

/** `GET /containerize/sweeps/<id>` (comparison.py's Comparison.to_dict). */
export interface SweepComparison {
  sweep_id: string;
  metric: string | null;
  direction: 'maximize' | 'minimize';
  direction_inferred: boolean;
  parameters: string[];
  varying: string[];
  fixed: Record<string, unknown>;
  metrics: string[];
  best: string | null;
  summary: string;
  /** Best first, then the jobs that are not ranked. */
  rows: ComparisonRow[];
  vega_lite: Record<string, unknown> | null;
}

export type JobListItem = { kind: 'job'; id: string } | { kind: 'sweep'; sweepId: string; ids: string[] };

/**
 * The job list with the jobs of each sweep under one entry, placed where its newest job is.
 * `state.order` is newest first; a sweep's own jobs are listed oldest first (the order they were submitted).
 */
export function groupJobs(state: JobsState): JobListItem[] {
  const items: JobListItem[] = [];
  const sweeps = new Map<string, string[]>();
  for (const id of state.order) {
    const sweepId = state.jobs[id]?.sweepId ?? '';
    if (!sweepId) {
      items.push({ kind: 'job', id });
      continue;
    }
    const ids = sweeps.get(sweepId);
    if (ids) {
      ids.unshift(id);
    } else {
      const fresh = [id];
      sweeps.set(sweepId, fresh);
      items.push({ kind: 'sweep', sweepId, ids: fresh });
    }
  }
  return items;
}

export interface SweepSummary {
  total: number;
  done: number;
  /** Jobs per status, in the order the statuses first appear. */
  counts: Record<string, number>;
}

export function sweepSummary(jobs: JobView[]): SweepSummary {
  const counts: Record<string, number> = {};
  for (const job of jobs) {
    counts[job.status] = (counts[job.status] ?? 0) + 1;
  }
  return { total: jobs.length, done: jobs.filter(isDone).length, counts };
}

/** `2 jobs · 1 succeeded · 1 running`. */
export function summaryText(summary: SweepSummary): string {
  const parts = Object.entries(summary.counts).map(([status, n]) => `${n} ${status}`);
  return [`${summary.total} job${summary.total === 1 ? '' : 's'}`, ...parts].join(' · ');
}

/** The sweep's own name: a job's name without the swept values at its end (`study lr=0.1` -> `study`); '' when none. */
export function sweepName(jobs: JobView[]): string {
  for (const job of jobs) {
    if (!job.name) {
      continue;
    }
    const words = job.name.split(' ');
    while (words.length > 1 && /^[A-Za-z_][A-Za-z0-9_]*=/.test(words[words.length - 1])) {
      const key = words[words.length - 1].split('=')[0];
      if (!(key in job.parameters)) {
        break;
      }
      words.pop();
    }
    return words.join(' ');
  }
  return '';
}

/** A key that changes whenever a job of the sweep changes state: the comparison is fetched again then. */
export function sweepVersion(jobs: JobView[]): string {
  return jobs.map(j => `${j.id}:${j.status}`).join(',');
}

/** A value as the comparison's text and HTML tables write it: numbers to 6 significant digits, strings bare. */
export function formatValue(value: unknown): string {
  if (value === null || value === undefined) {
    return '';
  }
  if (typeof value === 'number') {
    return Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(6)));
  }
  if (typeof value === 'string') {
    return value;
  }
  return JSON.stringify(value);
}

export interface TableRow {
  jobId: string;
  best: boolean;
  cells: string[];
}

export interface ComparisonTable {
  columns: string[];
  rows: TableRow[];
}

/**
 * The comparison as a table, in the server's order (best first): a mark for the best run, rank, job,
 * name (when a job has one), status, the varying parameters (all when none varies), the metrics
 * (the compared one first) and the build + run duration.
 */
export function comparisonTable(c: SweepComparison): ComparisonTable {
  const params = c.varying.length ? c.varying : c.parameters;
  const metrics = [...(c.metric ? [c.metric] : []), ...c.metrics.filter(m => m !== c.metric)];
  const names = c.rows.some(r => r.name);
  const columns = ['', 'rank', 'job', ...(names ? ['name'] : []), 'status', ...params, ...metrics, 'duration'];
  const cell = (values: Record<string, unknown>, key: string) => (key in values ? formatValue(values[key]) : '–');
  const rows = c.rows.map(r => ({
    jobId: r.job_id,
    best: r.best,
    cells: [
      r.best ? '★' : '',
      r.rank === null ? '–' : String(r.rank),
      r.job_id,
      ...(names ? [r.name] : []),
      r.status,
      ...params.map(p => cell(r.parameters, p)),
      ...metrics.map(m => cell(r.metrics, m)),
      r.duration === null ? '–' : formatDuration(r.duration)
    ]
  }));
  return { columns, rows };
}

export interface MimeBundle {
  data: Record<string, unknown>;
  metadata: Record<string, unknown>;
}

/**
 * The plot as a bundle for JupyterLab's Vega renderer (drawn as SVG, without the actions menu),
 * fitted to a narrow panel: its drawing `width` pixels wide, the legend below it, the title without
 * the subtitle (the summary above the table says the same). Null when there is nothing to plot yet.
 */
export function plotBundle(c: SweepComparison, width: number): MimeBundle | null {
  if (!c.vega_lite) {
    return null;
  }
  const title = (c.vega_lite.title as { text?: string } | undefined)?.text ?? c.metric ?? 'sweep';
  const config = (c.vega_lite.config as Record<string, unknown> | undefined) ?? {};
  const spec = {
    ...c.vega_lite,
    width: Math.max(MIN_PLOT_WIDTH, Math.round(width)),
    title: { text: title },
    config: { ...config, legend: { orient: 'bottom', direction: 'horizontal' } }
  };
  const best = c.rows.find(r => r.best);
  return {
    data: { [VEGA_LITE_MIME]: spec, 'text/plain': `Vega-Lite plot: ${title}${best ? ` (best: job ${best.job_id})` : ''}` },
    metadata: { [VEGA_LITE_MIME]: { embed_options: { renderer: 'svg', actions: false } } }
  };
}
