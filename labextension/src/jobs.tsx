/** The sidebar's job list: the filter box, job cards, sweeps grouped with their comparison; kept fresh from the server. */

import { Dialog, Notification, showDialog } from '@jupyterlab/apputils';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import * as React from 'react';

import { api, errorMessage, followEvents } from './api';
import { CompareView } from './compare';
import { filterJobs } from './filter';
import {
  baseName,
  deleteChoices,
  deleteQuestion,
  emptyJobs,
  fraction,
  isDone,
  JobAction,
  jobActions,
  JobRecord,
  JobsAction,
  jobsReducer,
  JobsState,
  JobView,
  newlyFinished
} from './state';
import { groupJobs, summaryText, sweepName, sweepSummary, sweepVersion } from './sweeps';

/** What the job list needs of JupyterLab. */
export interface IJobsHost {
  /** Open a file in JupyterLab (the output notebook). */
  open(path: string): void;
  /** JupyterLab's renderers: the sweep comparison's plot is drawn by its Vega renderer. */
  rendermime?: IRenderMimeRegistry | null;
}

/** How often the list (and the schedules with it) is read again from the server. */
const LIST_REFRESH_MS = 4000;

/** The jobs under the filter box, a sweep's jobs under one header. */
export function JobList(props: {
  jobs: JobsState;
  dispatch: (a: JobsAction) => void;
  host: IJobsHost;
  setError: (e: string) => void;
  /** The job whose log is open (a job just started opens its own). */
  expanded: string | null;
  setExpanded: (id: string | null) => void;
}): JSX.Element {
  const { jobs, dispatch, host, setError, expanded, setExpanded } = props;
  const [filter, setFilter] = React.useState('');
  const shown = filterJobs(jobs, filter);
  const items = groupJobs(shown);
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
  const total = jobs.order.length;
  return (
    <>
      {total > 0 && (
        <div className="jc-Filter">
          <input
            className="jp-mod-styled jc-Input"
            type="search"
            name="job-filter"
            aria-label="Filter jobs"
            placeholder="Filter jobs: failed, nb:train…"
            title="Each word must match the notebook, status, sweep, name or id; status:, nb:, sweep:, name: or id: before a word matches that field only"
            value={filter}
            onChange={e => setFilter(e.target.value)}
          />
          {shown !== jobs && (
            <span className="jc-Muted jc-FilterCount">
              {shown.order.length} of {total}
            </span>
          )}
        </div>
      )}
      {total === 0 && <div className="jc-Muted">No jobs yet.</div>}
      {total > 0 && items.length === 0 && <div className="jc-Muted">No job matches “{filter.trim()}”.</div>}
      {items.map(item =>
        item.kind === 'job' ? (
          card(shown.jobs[item.id])
        ) : (
          <SweepGroup
            key={item.sweepId}
            sweepId={item.sweepId}
            jobs={item.ids.map(id => shown.jobs[id])}
            rendermime={host.rendermime ?? null}
            card={card}
          />
        )
      )}
    </>
  );
}

/** The job list: refreshed from the store, each unfinished job followed over its event stream. */
export function useJobs(host: IJobsHost, onRefresh?: () => void): [JobsState, (a: JobsAction) => void] {
  const [state, setState] = React.useState<JobsState>(emptyJobs);
  const stateRef = React.useRef(state);
  const streams = React.useRef(new Map<string, AbortController>());
  const onRefreshRef = React.useRef(onRefresh);
  onRefreshRef.current = onRefresh;

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
      onRefreshRef.current?.(); // what else the panel lists (the schedules) is refreshed with the jobs
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

function notify(job: JobView, host: IJobsHost): void {
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
  host: IJobsHost;
  dispatch: (a: JobsAction) => void;
  setError: (e: string) => void;
}): JSX.Element {
  const { job, expanded, toggle, host, dispatch, setError } = props;
  const act = async (fn: () => Promise<unknown>) => {
    try {
      await fn();
    } catch (e) {
      setError(errorMessage(e));
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
        {job.attempt && <> · <span className="jc-JobAttempt">{job.attempt}</span></>}
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
      {expanded && (job.volumes.length > 0 || job.envNames.length > 0) && (
        <div className="jc-Muted jc-JobSetup">
          {job.volumes.length > 0 && <div className="jc-JobVolumes">volumes: {job.volumes.join(', ')}</div>}
          {job.envNames.length > 0 && (
            <div className="jc-JobEnv" title="values not shown: they may be secrets">
              env: {job.envNames.join(', ')}
            </div>
          )}
        </div>
      )}
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
