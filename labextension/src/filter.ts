/**
 * The job list's filter box: `failed`, `quickstart`, `status:failed nb:train`, `sweep:3f2a`, `name:"lr study"`.
 *
 * Each word must match (case-insensitive substring). A bare word matches the notebook, the status, the
 * sweep id, the job's name or its id; `status:`, `notebook:` (or `nb:`), `sweep:`, `name:` and `id:` match
 * that field only. Plain functions (jest-tested).
 */

import { JobsState, JobView } from './state';

export type JobField = 'status' | 'notebook' | 'sweep' | 'name' | 'id';

export interface FilterTerm {
  /** The field a `field:` prefix names; null: any field. */
  field: JobField | null;
  /** Lower case. */
  text: string;
}

const FIELDS = new Map<string, JobField>([
  ['status', 'status'],
  ['notebook', 'notebook'],
  ['nb', 'notebook'],
  ['sweep', 'sweep'],
  ['name', 'name'],
  ['id', 'id'],
  ['job', 'id']
]);

/** The filter text as terms; a prefix that names no field is part of the word (`lr:0.1`), an empty one no term. */
export function parseFilter(text: string): FilterTerm[] {
  const terms: FilterTerm[] = [];
  for (const token of text.match(/(?:[^\s"]+|"[^"]*"?)+/g) ?? []) {
    const prefixed = /^([A-Za-z]+):(.*)$/s.exec(token);
    const field = prefixed ? FIELDS.get(prefixed[1].toLowerCase()) : undefined;
    const value = (field && prefixed ? prefixed[2] : token).replace(/"/g, '').toLowerCase();
    if (value) {
      terms.push({ field: field ?? null, text: value });
    }
  }
  return terms;
}

function values(job: JobView, field: JobField): string[] {
  switch (field) {
    case 'status':
      return [job.status];
    case 'notebook':
      return [job.notebookName, job.path ?? ''];
    case 'sweep':
      return [job.sweepId];
    case 'name':
      return [job.name];
    case 'id':
      return [job.id];
  }
}

const ANY: JobField[] = ['notebook', 'status', 'sweep', 'name', 'id'];

export function matchesFilter(job: JobView, terms: FilterTerm[]): boolean {
  return terms.every(term =>
    (term.field ? [term.field] : ANY).some(field => values(job, field).some(v => v.toLowerCase().includes(term.text)))
  );
}

/** The jobs the filter keeps, in the same order (the state itself when the filter is empty). */
export function filterJobs(state: JobsState, text: string): JobsState {
  const terms = parseFilter(text);
  if (terms.length === 0) {
    return state;
  }
  const order = state.order.filter(id => state.jobs[id] && matchesFilter(state.jobs[id], terms));
  return { order, jobs: Object.fromEntries(order.map(id => [id, state.jobs[id]])) };
}
