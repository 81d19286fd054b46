/**
 * The sidebar shows the same progress as the widget and text views: the event streams and
 * the `expect`ed end state are shared with tests/unit/test_progress.py.
 */
import { JobEvent, JOB_EVENT_TYPES } from '../events.generated';
import { applyEvent, viewFromRecord } from '../state';
import fixture from './fixtures/job-events.json';
import { record } from './support';

interface FixtureJob {
  name: string;
  events: JobEvent[];
  expect: { status: string; error: string; build: [number, number]; cells: [number, number]; metrics: Record<string, number> };
}

const jobs = fixture.jobs as unknown as FixtureJob[];

describe.each(jobs.map(j => [j.name, j] as const))('the job "%s"', (_name, job) => {
  it('uses only event types that events.py defines', () => {
    expect(job.events.every(e => JOB_EVENT_TYPES.includes(e.type))).toBe(true);
  });

  it('ends where the Python views end', () => {
    let v = viewFromRecord(record({ id: 'ab12cd34', created: 0 }));
    job.events.forEach((e, i) => {
      v = applyEvent(v, i + 1, e);
    });
    expect({
      status: v.status,
      error: v.error,
      build: [v.build.done, v.build.total],
      cells: [v.run.done, v.run.total],
      metrics: v.metrics
    }).toEqual(job.expect);
  });
});
