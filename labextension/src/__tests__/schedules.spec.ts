import * as React from 'react';
import { renderToStaticMarkup } from 'react-dom/server';

import { ScheduleList } from '../schedulelist';
import {
  emptySchedules,
  localTime,
  relativeTime,
  removeQuestion,
  scheduleActions,
  ScheduleRecord,
  scheduleRow,
  schedulesReducer,
  SchedulesState
} from '../schedules';

/** 2025-01-15 (a Wednesday) 10:00 UTC. */
const NOW = new Date(Date.UTC(2025, 0, 15, 10, 0));
const at = (iso: string): number => Date.parse(iso) / 1000;
const UTC = { timeZone: 'UTC', locale: 'en-GB' };

/** A schedule as GET /containerize/schedules lists it (jupyter_containerize/jobs/schedules.py ScheduleView.to_dict). */
function schedule(over: Partial<ScheduleRecord> = {}): ScheduleRecord {
  return {
    id: 's1',
    notebook: '/root/nb/train.ipynb',
    path: 'nb/train.ipynb',
    cron: '0 3 * * *',
    tz: 'Europe/Paris',
    next_run: at('2025-01-16T02:00:00Z'),
    next_run_text: '2025-01-16 03:00 CET',
    paused: false,
    name: '',
    last_run: null,
    last_run_text: '',
    last_job_id: '',
    last_error: '',
    last_status: '',
    parameters: {},
    ...over
  };
}

describe('the schedule list', () => {
  it('lists the soonest next run first and paused schedules last', () => {
    const s = schedulesReducer(emptySchedules, {
      kind: 'loaded',
      schedules: [
        schedule({ id: 'later', next_run: 300 }),
        schedule({ id: 'paused', next_run: 100, paused: true }),
        schedule({ id: 'soon', next_run: 200 })
      ]
    });
    expect(s.loaded).toBe(true);
    expect(s.schedules.map(x => x.id)).toEqual(['soon', 'later', 'paused']);
  });

  it('takes the answer of a pause or resume in place, and forgets a removed schedule', () => {
    let s: SchedulesState = schedulesReducer(emptySchedules, {
      kind: 'loaded',
      schedules: [schedule({ id: 'a', next_run: 100 }), schedule({ id: 'b', next_run: 200 })]
    });
    s = schedulesReducer(s, { kind: 'updated', schedule: schedule({ id: 'a', next_run: 100, paused: true }) });
    expect(s.schedules.map(x => [x.id, x.paused])).toEqual([
      ['b', false],
      ['a', true]
    ]);
    s = schedulesReducer(s, { kind: 'removed', id: 'a' });
    expect(s.schedules.map(x => x.id)).toEqual(['b']);
    // A late answer for a removed schedule does not bring it back; nothing to remove leaves the state as it was.
    expect(schedulesReducer(s, { kind: 'updated', schedule: schedule({ id: 'a' }) })).toBe(s);
    expect(schedulesReducer(s, { kind: 'removed', id: 'zz' })).toBe(s);
  });

  it('offers Pause to a running schedule, Resume to a paused one, Remove to both', () => {
    expect(scheduleActions(schedule())).toEqual(['pause', 'remove']);
    expect(scheduleActions(schedule({ paused: true }))).toEqual(['resume', 'remove']);
  });
});

describe('times', () => {
  it('are written as the reader\'s wall clock, relative to today', () => {
    expect(localTime(at('2025-01-15T18:30:00Z'), NOW, UTC)).toBe('today 18:30');
    expect(localTime(at('2025-01-16T03:00:00Z'), NOW, UTC)).toBe('tomorrow 03:00');
    expect(localTime(at('2025-01-14T03:00:00Z'), NOW, UTC)).toBe('yesterday 03:00');
    expect(localTime(at('2025-01-18T03:00:00Z'), NOW, UTC)).toBe('Sat 03:00');
    expect(localTime(at('2025-02-03T03:00:00Z'), NOW, UTC)).toBe('Mon 3 Feb 03:00');
    expect(localTime(at('2026-01-01T03:00:00Z'), NOW, UTC)).toBe('Thu 1 Jan 2026 03:00');
  });

  it('take "today" from the reader\'s zone, not UTC', () => {
    // 23:30 UTC on the 15th is already the 16th in Tokyo (UTC+9), where NOW is 19:00 on the 15th.
    expect(localTime(at('2025-01-15T23:30:00Z'), NOW, { timeZone: 'Asia/Tokyo', locale: 'en-GB' })).toBe('tomorrow 08:30');
  });

  it('say how long until then', () => {
    expect(relativeTime(-5000)).toBe('due now');
    expect(relativeTime(40_000)).toBe('in 40 s');
    expect(relativeTime(12 * 60_000)).toBe('in 12 min');
    expect(relativeTime(9 * 3600_000)).toBe('in 9 h');
    expect(relativeTime(3 * 86400_000)).toBe('in 3 d');
  });
});

describe('a schedule\'s row', () => {
  it('says the notebook, the rule and its zone, the next run in local time and in the rule\'s zone', () => {
    const row = scheduleRow(schedule(), NOW, UTC);
    expect(row).toMatchObject({
      title: 'train.ipynb',
      notebook: 'nb/train.ipynb',
      rule: '0 3 * * * (Europe/Paris)',
      next: 'tomorrow 02:00 (in 16 h)',
      nextInZone: '2025-01-16 03:00 CET',
      last: '',
      paused: false
    });
    expect(scheduleRow(schedule({ name: 'nightly' }), NOW, UTC).title).toBe('nightly');
  });

  it('says a paused schedule runs at no time', () => {
    const row = scheduleRow(schedule({ paused: true }), NOW, UTC);
    expect([row.next, row.nextInZone, row.paused]).toEqual(['none while paused', '', true]);
  });

  it('says how the last run went: its status, its job and when; or why it did not start', () => {
    const ran = schedule({ last_run: at('2025-01-15T02:00:00Z'), last_job_id: 'ab12', last_status: 'failed' });
    expect(scheduleRow(ran, NOW, UTC)).toMatchObject({ last: 'failed · job ab12 · today 02:00', lastStatus: 'failed' });
    const refused = schedule({ last_run: at('2025-01-15T02:00:00Z'), last_error: 'the engine is not reachable', last_status: 'not started' });
    expect(scheduleRow(refused, NOW, UTC)).toMatchObject({ last: 'not started: the engine is not reachable', lastStatus: 'not started' });
  });

  it('asks before a removal and says the jobs stay', () => {
    const text = removeQuestion(schedule({ name: 'nightly' }));
    expect(text).toContain('Schedule s1 runs nightly (train.ipynb)');
    expect(text).toContain("'0 3 * * *' (Europe/Paris)");
    expect(text).toContain('jobs it already started stay');
  });
});

describe('the Schedules section', () => {
  const render = (state: SchedulesState): string =>
    renderToStaticMarkup(React.createElement(ScheduleList, { state, act: () => undefined, now: NOW }));

  it('draws one row per schedule with its buttons', () => {
    const html = render(
      schedulesReducer(emptySchedules, {
        kind: 'loaded',
        schedules: [schedule(), schedule({ id: 's2', paused: true, last_status: 'succeeded', last_job_id: 'cd34', last_run: 1 })]
      })
    );
    const rows = html.split('data-schedule-id=').slice(1);
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatch(/^"s1" data-paused="false"/);
    expect(rows[0]).toContain('data-action="pause"');
    expect(rows[0]).toContain('0 3 * * * (Europe/Paris)');
    expect(rows[0]).toContain('title="2025-01-16 03:00 CET"');
    expect(rows[1]).toMatch(/^"s2" data-paused="true"/);
    expect(rows[1]).toContain('data-action="resume"');
    expect(rows[1]).toContain('succeeded · job cd34');
    expect(rows.every(r => r.includes('data-action="remove"'))).toBe(true);
  });

  it('says how to add one when there is none, and nothing before the list arrived', () => {
    expect(render(schedulesReducer(emptySchedules, { kind: 'loaded', schedules: [] }))).toContain('jupyter containerize schedule');
    expect(render(emptySchedules)).toContain('reading the schedules');
  });
});
