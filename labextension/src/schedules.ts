/**
 * The sidebar's schedule list: `GET /containerize/schedules` records -> what each row says and offers.
 *
 * Plain functions with no JupyterLab imports (jest-tested); the view is schedulelist.tsx.
 */

import { baseName } from './state';

/** A schedule as `GET /containerize/schedules` lists it (jupyter_containerize/server/views.py schedule_json). */
export interface ScheduleRecord {
  id: string;
  /** The notebook's absolute path; `path` is relative to the server root (null outside it). */
  notebook: string;
  path: string | null;
  cron: string;
  /** The zone the cron rule is read in (an IANA name, UTC by default). */
  tz: string;
  /** The occurrence it runs next, epoch seconds. */
  next_run: number;
  /** The next run as a wall-clock time of the rule's zone: `2025-01-02 03:00 UTC`. */
  next_run_text: string;
  paused: boolean;
  name?: string;
  /** The occurrence it ran last (epoch seconds), null before any run. */
  last_run: number | null;
  last_run_text?: string;
  last_job_id: string;
  /** Why the last occurrence started no job ('' when it did). */
  last_error: string;
  /** The last run's job status; `not started`, `removed`, or '' before any run. */
  last_status: string;
  parameters?: Record<string, unknown>;
}

// -- the list ------------------------------------------------------------------------------------

export interface SchedulesState {
  /** False until the first list arrived ("no schedules" is said only then). */
  loaded: boolean;
  schedules: ScheduleRecord[];
}

export const emptySchedules: SchedulesState = { loaded: false, schedules: [] };

export type SchedulesAction =
  | { kind: 'loaded'; schedules: ScheduleRecord[] }
  | { kind: 'updated'; schedule: ScheduleRecord }
  | { kind: 'removed'; id: string };

/** Soonest next run first; paused ones after the rest (they run at no time), each kind by id for a stable order. */
function sorted(schedules: ScheduleRecord[]): ScheduleRecord[] {
  return [...schedules].sort(
    (a, b) => Number(a.paused) - Number(b.paused) || a.next_run - b.next_run || a.id.localeCompare(b.id)
  );
}

export function schedulesReducer(state: SchedulesState, action: SchedulesAction): SchedulesState {
  switch (action.kind) {
    case 'loaded':
      return { loaded: true, schedules: sorted(action.schedules) };
    case 'updated': {
      // The answer of a pause or resume: it replaces the row (a schedule removed meanwhile stays removed).
      if (!state.schedules.some(s => s.id === action.schedule.id)) {
        return state;
      }
      return { ...state, schedules: sorted(state.schedules.map(s => (s.id === action.schedule.id ? action.schedule : s))) };
    }
    case 'removed':
      return state.schedules.some(s => s.id === action.id)
        ? { ...state, schedules: state.schedules.filter(s => s.id !== action.id) }
        : state;
  }
}

// -- one row -------------------------------------------------------------------------------------

export type ScheduleAction = 'pause' | 'resume' | 'remove';

/** A running schedule can be paused, a paused one resumed; either can be removed. */
export function scheduleActions(schedule: ScheduleRecord): ScheduleAction[] {
  return [schedule.paused ? 'resume' : 'pause', 'remove'];
}

/** How times are written: the browser's zone and language unless given (tests fix both). */
export interface TimeFormat {
  timeZone?: string;
  locale?: string;
}

const DAY_MS = 24 * 3600 * 1000;

function dayNumber(t: Date, timeZone?: string): number {
  // The calendar day in the zone, as days since the epoch: "today" and "tomorrow" are the zone's.
  const [y, m, d] = new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' })
    .format(t)
    .split('-')
    .map(Number);
  return Math.round(Date.UTC(y, m - 1, d) / DAY_MS);
}

/** `in 40 s`, `in 12 min`, `in 5 h`, `in 3 d`; `due now` for a time past (the scheduler is about to run it). */
export function relativeTime(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s <= 0) {
    return 'due now';
  }
  if (s < 60) {
    return `in ${s} s`;
  }
  if (s < 3600) {
    return `in ${Math.round(s / 60)} min`;
  }
  if (s < 48 * 3600) {
    return `in ${Math.round(s / 3600)} h`;
  }
  return `in ${Math.round(s / 86400)} d`;
}

/**
 * An epoch time as the reader's wall clock: `today 03:00`, `tomorrow 03:00`, `Wed 03:00` within the
 * week, else `Wed 8 Jan 03:00` (with the year when it is not this year's).
 */
export function localTime(epochSeconds: number, now: Date, format: TimeFormat = {}): string {
  const { timeZone, locale } = format;
  const t = new Date(epochSeconds * 1000);
  const clock = new Intl.DateTimeFormat(locale, { timeZone, hour: '2-digit', minute: '2-digit' }).format(t);
  const days = dayNumber(t, timeZone) - dayNumber(now, timeZone);
  if (days === 0) {
    return `today ${clock}`;
  }
  if (days === 1) {
    return `tomorrow ${clock}`;
  }
  if (days === -1) {
    return `yesterday ${clock}`;
  }
  const year = (d: Date) => new Intl.DateTimeFormat('en', { timeZone, year: 'numeric' }).format(d);
  const weekday = new Intl.DateTimeFormat(locale, { timeZone, weekday: 'short' }).format(t);
  if (days > 1 && days < 7) {
    return `${weekday} ${clock}`;
  }
  const date = new Intl.DateTimeFormat(locale, {
    timeZone,
    day: 'numeric',
    month: 'short',
    year: year(t) === year(now) ? undefined : 'numeric'
  }).format(t);
  return `${weekday} ${date} ${clock}`;
}

/** What a schedule's row says. */
export interface ScheduleRow {
  id: string;
  /** The schedule's name, else the notebook's file name. */
  title: string;
  /** The notebook (relative to the server root where it lies inside it). */
  notebook: string;
  /** `0 3 * * * (Europe/Paris)`. */
  rule: string;
  /** The next run in the reader's time, `tomorrow 03:00 (in 9 h)`; `none while paused`. */
  next: string;
  /** The next run in the rule's own zone (the server's words), for a tooltip; '' when paused. */
  nextInZone: string;
  /** The last run: `succeeded · job ab12 · today 03:00`, `not started: <why>`; '' before any run. */
  last: string;
  /** The last run's status, for its colour ('' before any run). */
  lastStatus: string;
  paused: boolean;
}

export function scheduleRow(s: ScheduleRecord, now: Date, format: TimeFormat = {}): ScheduleRow {
  const notebook = s.path ?? s.notebook;
  let last = '';
  if (s.last_error) {
    last = `not started: ${s.last_error}`;
  } else if (s.last_status) {
    const parts = [s.last_status];
    if (s.last_job_id) {
      parts.push(`job ${s.last_job_id}`);
    }
    if (s.last_run !== null) {
      parts.push(localTime(s.last_run, now, format));
    }
    last = parts.join(' · ');
  }
  return {
    id: s.id,
    title: s.name || baseName(notebook),
    notebook,
    rule: `${s.cron} (${s.tz})`,
    next: s.paused
      ? 'none while paused'
      : `${localTime(s.next_run, now, format)} (${relativeTime(s.next_run * 1000 - now.getTime())})`,
    nextInZone: s.paused ? '' : s.next_run_text,
    last,
    lastStatus: s.last_error ? 'not started' : s.last_status,
    paused: s.paused
  };
}

/** What the Remove dialog says: the schedule stops for good; the jobs it started stay. */
export function removeQuestion(s: ScheduleRecord): string {
  const what = s.name ? `${s.name} (${baseName(s.path ?? s.notebook)})` : baseName(s.path ?? s.notebook);
  return (
    `Schedule ${s.id} runs ${what} at '${s.cron}' (${s.tz}). Removed, it starts no more runs; ` +
    'the jobs it already started stay in the job list.'
  );
}
