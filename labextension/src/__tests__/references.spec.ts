import * as React from 'react';
import { renderToStaticMarkup } from 'react-dom/server';

import { Preview } from '../api';
import { ReferencesView } from '../references';
import { emptyForm, formToOptions } from '../state';

type Refs = Pick<Preview, 'mounts' | 'local_code'>;

const render = (preview: Refs): string => renderToStaticMarkup(React.createElement(ReferencesView, { preview }));

/** The text a reader sees (tags dropped, entities decoded). */
const text = (html: string): string =>
  html
    .replace(/<[^>]+>/g, '')
    .replace(/&amp;/g, '&')
    .replace(/&quot;/g, '"')
    .replace(/&#x27;/g, "'");

const preview: Refs = {
  mounts: [
    { path: 'data', target: '/work/nb/data', why: 'read by cell 4' },
    { path: '../shared/lookup.csv', target: '/work/shared/lookup.csv', why: 'read by cell 5' }
  ],
  local_code: [
    { path: '../src/pkg', why: 'imported by cell 2' },
    { path: 'helper.py', why: '%run in cell 3' }
  ]
};

describe('ReferencesView', () => {
  it('lists each mount as path → target with why, and each code path with why', () => {
    const html = render(preview);
    const shown = text(html);
    expect(shown).toContain('Mounted read-only (2)');
    expect(shown).toContain('data → /work/nb/data · read by cell 4');
    expect(shown).toContain('../shared/lookup.csv → /work/shared/lookup.csv · read by cell 5');
    expect(shown).toContain('Your code in the image (2)');
    expect(shown).toContain('../src/pkg · imported by cell 2');
    expect(shown).toContain('helper.py · %run in cell 3');
    // The why is also the hover title, and mounts come before the code.
    expect(html).toContain('title="data: read by cell 4"');
    expect(shown.indexOf('Mounted read-only')).toBeLessThan(shown.indexOf('Your code in the image'));
  });

  it('shows nothing for empty lists, and only the section that has entries', () => {
    expect(render({ mounts: [], local_code: [] })).toBe('');
    const codeOnly = text(render({ mounts: [], local_code: preview.local_code }));
    expect(codeOnly).toContain('Your code in the image (2)');
    expect(codeOnly).not.toContain('Mounted read-only');
    const mountsOnly = text(render({ mounts: preview.mounts.slice(0, 1), local_code: [] }));
    expect(mountsOnly).toContain('Mounted read-only (1)');
    expect(mountsOnly).not.toContain('Your code in the image');
  });

  it('leaves the why out where the server gave none', () => {
    const html = render({ mounts: [{ path: 'x.csv', target: '/work/x.csv', why: '' }], local_code: [] });
    expect(text(html)).toContain('x.csv → /work/x.csv');
    expect(text(html)).not.toContain('·');
    expect(html).toContain('title="x.csv"');
  });

  it('tolerates a server that sends neither list (older server)', () => {
    expect(render({} as Refs)).toBe('');
  });
});

describe('the auto-mount switch', () => {
  it('sends no_auto_mount (the --no-auto-mount flag) only when unchecked', () => {
    expect(emptyForm.autoMount).toBe(true);
    expect(formToOptions(emptyForm)).toEqual({});
    expect(formToOptions({ ...emptyForm, autoMount: false })).toEqual({ no_auto_mount: true });
  });
});
