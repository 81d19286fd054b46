/** A sweep's comparison in the sidebar: the table (best run marked) and the plot, drawn by JupyterLab's Vega renderer. */

import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { Widget } from '@lumino/widgets';
import * as React from 'react';

import { api, ApiError } from './api';
import { comparisonTable, plotBundle, SweepComparison, VEGA_LITE_MIME } from './sweeps';

const AXIS_PX = 70; // what the plot needs beside its drawing area: the y axis' labels and title (the legend is below)

export interface ICompareProps {
  sweepId: string;
  /** Changes whenever a job of the sweep changes state: the comparison is fetched again. */
  version: string;
  rendermime: IRenderMimeRegistry | null;
  onClose: () => void;
}

export function CompareView({ sweepId, version, rendermime, onClose }: ICompareProps): JSX.Element {
  const [comparison, setComparison] = React.useState<SweepComparison | null>(null);
  const [metric, setMetric] = React.useState('');
  const [error, setError] = React.useState('');

  React.useEffect(() => {
    let stale = false;
    api.sweep(sweepId, metric).then(
      c => {
        if (!stale) {
          setComparison(c);
          setError('');
        }
      },
      e => !stale && setError(e instanceof ApiError || e instanceof Error ? e.message : String(e))
    );
    return () => {
      stale = true;
    };
  }, [sweepId, metric, version]);

  const table = comparison ? comparisonTable(comparison) : null;
  return (
    <div className="jc-Compare" data-sweep-id={sweepId}>
      <div className="jc-PreviewHead">
        <strong>Comparison</strong>
        {comparison && comparison.metrics.length > 1 && (
          <select
            className="jp-mod-styled jc-CompareMetric"
            name="compare-metric"
            value={metric || comparison.metric || ''}
            onChange={e => setMetric(e.target.value)}
            title="The metric the runs are ranked by"
          >
            {comparison.metrics.map(m => (
              <option key={m} value={m}>
                {m}
              </option>
            ))}
          </select>
        )}
        <span className="jc-Spacer" />
        <button className="jp-Button jc-Link" onClick={onClose}>
          Close
        </button>
      </div>
      {error && (
        <div className="jc-Banner jc-Banner-error" role="alert">
          {error}
        </div>
      )}
      {!comparison && !error && <div className="jc-Muted">comparing…</div>}
      {comparison && table && (
        <>
          <div className="jc-CompareSummary">{comparison.summary}</div>
          <div className="jc-CompareTableWrap">
            <table className="jc-CompareTable">
              <thead>
                <tr>
                  {table.columns.map((c, i) => (
                    <th key={i}>{c}</th>
                  ))}
                </tr>
              </thead>
              <tbody>
                {table.rows.map(row => (
                  <tr key={row.jobId} className={row.best ? 'jc-Best' : ''} data-job-id={row.jobId}>
                    {row.cells.map((c, i) => (
                      <td key={i}>{c}</td>
                    ))}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <Plot comparison={comparison} rendermime={rendermime} />
        </>
      )}
    </div>
  );
}

/** The Vega-Lite spec rendered by JupyterLab's own renderer (a Lumino widget attached inside this node). */
function Plot({ comparison, rendermime }: { comparison: SweepComparison; rendermime: IRenderMimeRegistry | null }): JSX.Element {
  const host = React.useRef<HTMLDivElement>(null);
  const [problem, setProblem] = React.useState('');
  React.useEffect(() => {
    const node = host.current;
    const bundle = plotBundle(comparison, (node?.clientWidth ?? 300) - AXIS_PX);
    if (!node || !bundle) {
      setProblem(bundle ? '' : 'No plot yet: no succeeded job has a number for the metric.');
      return;
    }
    if (!rendermime || !rendermime.mimeTypes.includes(VEGA_LITE_MIME)) {
      setProblem('This JupyterLab has no Vega renderer; the table above has the numbers.');
      return;
    }
    setProblem('');
    const renderer = rendermime.createRenderer(VEGA_LITE_MIME);
    const model = rendermime.createModel({ data: bundle.data as any, metadata: bundle.metadata as any, trusted: true });
    Widget.attach(renderer, node);
    renderer.renderModel(model).catch(e => setProblem(`The plot could not be drawn: ${e}`));
    return () => renderer.dispose();
  }, [comparison, rendermime]);
  return (
    <>
      {problem && <div className="jc-Muted">{problem}</div>}
      <div className="jc-ComparePlot" ref={host} />
    </>
  );
}
