/** What the jest specs share (not a spec itself: jest runs only `*.spec.ts`). */
import { JobRecord } from '../state';

/** A job record as `GET /containerize/jobs/<id>` answers it: a queued job of nb/quickstart.ipynb, with `over` on top. */
export function record(over: Partial<JobRecord> = {}): JobRecord {
  return {
    id: 'abc',
    notebook: '/root/nb/quickstart.ipynb',
    path: 'nb/quickstart.ipynb',
    status: 'queued',
    created: 100,
    done: false,
    parameters: {},
    metrics: {},
    error: '',
    image_tag: '',
    output_notebook: null,
    output_paths: [],
    duration: null,
    backend: 'docker',
    ...over
  };
}
