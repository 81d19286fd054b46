/** The sidebar's Schedules section: each schedule's rule, next run and last run, with Pause/Resume and Remove. */

import * as React from 'react';

import { api, errorMessage } from './api';
import {
  emptySchedules,
  removeQuestion,
  ScheduleAction,
  scheduleActions,
  ScheduleRecord,
  scheduleRow,
  schedulesReducer,
  SchedulesState
} from './schedules';

/** Asks whether to remove a schedule (the question says what goes and what stays); true: remove it. */
export type ConfirmRemoval = (question: string) => Promise<boolean>;

/**
 * The schedules; `reload` reads them again (the job list's refresh calls it); `act` pauses, resumes or
 * removes one (removal only once `confirm` said yes); a failure is said through `setError`.
 */
export function useSchedules(
  setError: (e: string) => void,
  confirm: ConfirmRemoval
): [SchedulesState, () => void, (schedule: ScheduleRecord, action: ScheduleAction) => void] {
  const [state, dispatch] = React.useReducer(schedulesReducer, emptySchedules);
  const reload = React.useCallback(() => {
    api.schedules().then(
      ({ schedules }) => dispatch({ kind: 'loaded', schedules }),
      () => undefined // the next refresh retries
    );
  }, []);
  const act = async (schedule: ScheduleRecord, action: ScheduleAction) => {
    try {
      if (action !== 'remove') {
        dispatch({ kind: 'updated', schedule: await api.pauseSchedule(schedule.id, action === 'pause') });
      } else if (await confirm(removeQuestion(schedule))) {
        await api.unschedule(schedule.id);
        dispatch({ kind: 'removed', id: schedule.id });
      }
    } catch (e) {
      setError(errorMessage(e));
    }
  };
  return [state, reload, (schedule, action) => void act(schedule, action)];
}

const LABELS: Record<ScheduleAction, string> = { pause: 'Pause', resume: 'Resume', remove: 'Remove' };

export function ScheduleList(props: {
  state: SchedulesState;
  /** A row's button was pressed. */
  act: (schedule: ScheduleRecord, action: ScheduleAction) => void;
  /** The time the rows are written against (`tomorrow 03:00 (in 9 h)`); now unless given (tests). */
  now?: Date;
}): JSX.Element {
  const { state, act } = props;
  const now = props.now ?? new Date();
  if (!state.loaded) {
    return <div className="jc-Muted">reading the schedules…</div>;
  }
  if (state.schedules.length === 0) {
    return (
      <div className="jc-Muted">
        No schedules. Add one with <code>jupyter containerize schedule NOTEBOOK --cron "0 3 * * *"</code>.
      </div>
    );
  }
  return (
    <>
      {state.schedules.map(schedule => {
        const row = scheduleRow(schedule, now);
        return (
          <div
            key={row.id}
            className={`jc-Schedule${row.paused ? ' jc-Schedule-paused' : ''}`}
            data-schedule-id={row.id}
            data-paused={String(row.paused)}
          >
            <div className="jc-ScheduleHead">
              <span className="jc-JobName" title={`${row.notebook} · schedule ${row.id}`}>
                {row.title}
              </span>
              {row.paused && <span className="jc-Status">paused</span>}
            </div>
            <div className="jc-Muted jc-JobMeta">
              schedule <code>{row.id}</code>
              {row.title !== row.notebook && <> · {row.notebook}</>}
            </div>
            <div className="jc-Kv">
              <span className="jc-ScheduleRule">{row.rule}</span>
            </div>
            <div className="jc-ScheduleNext" title={row.nextInZone}>
              <span className="jc-Muted">next</span> {row.next}
            </div>
            {row.last && (
              <div className={`jc-ScheduleLast jc-Last-${row.lastStatus.replace(/\s+/g, '-')}`}>
                <span className="jc-Muted">last</span> {row.last}
              </div>
            )}
            <div className="jc-JobActions">
              {scheduleActions(schedule).map(action => (
                <button
                  key={action}
                  className="jp-Button jc-Link"
                  data-action={action}
                  onClick={() => act(schedule, action)}
                >
                  {LABELS[action]}
                </button>
              ))}
            </div>
          </div>
        );
      })}
    </>
  );
}
