/**
 * The notebook's parameters as typed form fields: a number input for an int or a float, a checkbox
 * for a bool, text for the rest, and the values sent typed (numbers as JSON numbers, bools as
 * true/false). Plain functions with no JupyterLab imports, tested with jest.
 *
 * The server checks every value against the parameters cell (jobs/pipeline.checked_spec: an unknown
 * name gets a did-you-mean, a value is coerced to the default's type or refused in one sentence);
 * nothing here second-guesses that, the form only shapes what it sends.
 */

/** One assignment of the parameters cell, as `GET /containerize/notebook-parameters` lists it. */
export interface NotebookParameter {
  name: string;
  /** The default as source text (`30`, `0.01`, `'adam'`, `[1, 2]`). */
  value: string;
  /** The default's type: int, float, bool, str, list, dict, tuple, NoneType… or "expression". */
  type: string;
}

/** How a parameter is edited: number inputs for int and float, a checkbox for bool, text otherwise. */
export type FieldKind = 'int' | 'float' | 'bool' | 'str' | 'text';

export interface ParamField {
  name: string;
  kind: FieldKind;
  /** The parameters cell's type name (shown beside the field). */
  type: string;
  /** The default as source text. */
  source: string;
  /** The field's text for the default: a number, True/False, the string itself, or the source text. */
  initial: string;
}

// A "valid floating-point number" as an <input type="number"> accepts it.
const HTML_NUMBER = /^-?(\d+(\.\d+)?|\.\d+)([eE][-+]?\d+)?$/;

/** A Python int or float literal as the text of a number input, or null when it has none (too big, inf). */
export function numberText(source: string, integer: boolean): string | null {
  const text = source.trim().replace(/_/g, '');
  if (HTML_NUMBER.test(text) && !(integer && /[.eE]/.test(text))) {
    return Number.isFinite(Number(text)) && (!integer || Number.isSafeInteger(Number(text))) ? text : null;
  }
  const n = Number(text.replace(/^\+/, '')); // 0x10, 0o17, 0b1, +5, 5., 1E3
  if (!text || !Number.isFinite(n) || (integer && !Number.isSafeInteger(n))) {
    return null;
  }
  return String(n);
}

/** The field for a parameter: its kind and the text it starts with. */
export function paramField(p: NotebookParameter): ParamField {
  const base = { name: p.name, type: p.type, source: p.value };
  if (p.type === 'int' || p.type === 'float') {
    const text = numberText(p.value, p.type === 'int');
    if (text !== null) {
      return { ...base, kind: p.type, initial: text };
    }
  } else if (p.type === 'bool' && (p.value.trim() === 'True' || p.value.trim() === 'False')) {
    return { ...base, kind: 'bool', initial: p.value.trim() };
  } else if (p.type === 'str') {
    const text = decodePythonString(p.value);
    if (text !== null) {
      return { ...base, kind: 'str', initial: text };
    }
  }
  return { ...base, kind: 'text', initial: p.value };
}

/**
 * A field's text as the value the REST API gets; `undefined`: nothing to send (an empty number or text field).
 *
 * Numbers go as JSON numbers (text that is not one goes as typed, for the server to refuse in its
 * words), bools as true/false. A str goes as a Python string literal (`'adam'`): the REST API reads a
 * parameter's text as a Python literal, so text such as `1e3` or `None` stays the string typed.
 */
export function fieldValue(field: ParamField, text: string): unknown {
  switch (field.kind) {
    case 'int':
    case 'float': {
      const t = text.trim();
      if (!t) {
        return undefined;
      }
      const n = Number(t);
      return Number.isFinite(n) ? n : t;
    }
    case 'bool':
      return text === 'True';
    case 'str':
      return pythonString(text);
    case 'text':
      return text.trim() ? text.trim() : undefined;
  }
}

/** The parameters that differ from the notebook's defaults, typed: only those are sent, so the job records what was overridden. */
export function changedParameters(fields: ParamField[], texts: Record<string, string>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const field of fields) {
    const text = texts[field.name];
    if (text === undefined) {
      continue;
    }
    const value = fieldValue(field, text);
    if (value !== undefined && JSON.stringify(value) !== JSON.stringify(fieldValue(field, field.initial))) {
      out[field.name] = value;
    }
  }
  return out;
}

/** The fields' texts for a new read of the parameters cell (after a save): untouched fields take the new defaults. */
export function refreshedTexts(before: ParamField[], after: ParamField[], texts: Record<string, string>): Record<string, string> {
  const old = new Map(before.map(f => [f.name, f]));
  const out: Record<string, string> = {};
  for (const field of after) {
    const text = texts[field.name];
    const was = old.get(field.name);
    const touched = text !== undefined && was !== undefined && text !== was.initial && was.kind === field.kind;
    out[field.name] = touched ? text : field.initial;
  }
  return out;
}

// -- Python string literals ----------------------------------------------------------------------------

/** `text` as a Python string literal (single quotes; backslashes, quotes and control characters escaped). */
export function pythonString(text: string): string {
  let out = "'";
  for (const ch of text) {
    const code = ch.codePointAt(0) as number;
    if (ch === '\\' || ch === "'") {
      out += '\\' + ch;
    } else if (ch === '\n') {
      out += '\\n';
    } else if (ch === '\r') {
      out += '\\r';
    } else if (ch === '\t') {
      out += '\\t';
    } else if (code < 0x20 || code === 0x7f) {
      out += '\\x' + code.toString(16).padStart(2, '0');
    } else {
      out += ch;
    }
  }
  return out + "'";
}

const SIMPLE_ESCAPES: Record<string, string> = {
  '\\': '\\', "'": "'", '"': '"', n: '\n', t: '\t', r: '\r', a: '\x07', b: '\b', f: '\f', v: '\v', '\n': ''
};

/** The value of one Python string literal (`'a'`, `"b"`, `r'c'`, `'''d'''`), or null for anything else. */
export function decodePythonString(source: string): string | null {
  const m = /^([rRuU]?)('''|"""|'|")([\s\S]*)\2$/.exec(source.trim());
  if (!m) {
    return null;
  }
  const [, prefix, quote, body] = m;
  const raw = prefix === 'r' || prefix === 'R';
  let out = '';
  for (let i = 0; i < body.length; i++) {
    const ch = body[i];
    if (quote.length === 1 ? ch === quote || ch === '\n' : body.startsWith(quote, i)) {
      return null; // 'a' 'b' (two literals) or an unescaped line break
    }
    if (ch !== '\\') {
      out += ch;
      continue;
    }
    const next = body[i + 1];
    if (next === undefined) {
      return null;
    }
    if (raw) {
      out += ch + next;
      i++;
      continue;
    }
    if (next in SIMPLE_ESCAPES) {
      out += SIMPLE_ESCAPES[next];
      i++;
      continue;
    }
    const hex = { x: 2, u: 4, U: 8 }[next as 'x' | 'u' | 'U'];
    if (hex) {
      const digits = body.slice(i + 2, i + 2 + hex);
      if (!new RegExp(`^[0-9a-fA-F]{${hex}}$`).test(digits)) {
        return null;
      }
      out += String.fromCodePoint(parseInt(digits, 16));
      i += 1 + hex;
      continue;
    }
    const octal = /^[0-7]{1,3}/.exec(body.slice(i + 1));
    if (octal) {
      out += String.fromCodePoint(parseInt(octal[0], 8));
      i += octal[0].length;
      continue;
    }
    if (next === 'N') {
      return null; // \N{NAME}: not decoded here
    }
    out += ch; // an unknown escape keeps its backslash, as in Python
  }
  return out;
}
