/** What the preview says about the notebook's own files: the data mounted, the code copied. */

import * as React from 'react';

import { Preview } from './api';

/** "Mounted read-only (N)" and "Your code in the image (N)"; nothing for an empty list. */
export function ReferencesView({ preview }: { preview: Pick<Preview, 'mounts' | 'local_code'> }): JSX.Element | null {
  const mounts = preview.mounts ?? [];
  const code = preview.local_code ?? [];
  if (mounts.length === 0 && code.length === 0) {
    return null;
  }
  return (
    <>
      {mounts.length > 0 && (
        <details open className="jc-Mounts">
          <summary>Mounted read-only ({mounts.length})</summary>
          <ul className="jc-Files">
            {mounts.map(m => (
              <li key={m.path} title={m.why ? `${m.path}: ${m.why}` : m.path}>
                <code>{m.path}</code> → <code>{m.target}</code>
                {m.why && <span className="jc-Muted"> · {m.why}</span>}
              </li>
            ))}
          </ul>
        </details>
      )}
      {code.length > 0 && (
        <details open className="jc-LocalCode">
          <summary>Your code in the image ({code.length})</summary>
          <ul className="jc-Files">
            {code.map(c => (
              <li key={c.path} title={c.why ? `${c.path}: ${c.why}` : c.path}>
                <code>{c.path}</code>
                {c.why && <span className="jc-Muted"> · {c.why}</span>}
              </li>
            ))}
          </ul>
        </details>
      )}
    </>
  );
}
