import {
  changedParameters,
  decodePythonString,
  fieldValue,
  numberText,
  NotebookParameter,
  paramField,
  pythonString,
  refreshedTexts
} from '../params';

const param = (name: string, value: string, type: string): NotebookParameter => ({ name, value, type });

describe('paramField', () => {
  it('edits ints and floats in number inputs, bools with a checkbox, the rest as text', () => {
    expect(paramField(param('n', '30', 'int'))).toMatchObject({ kind: 'int', initial: '30' });
    expect(paramField(param('lr', '0.01', 'float'))).toMatchObject({ kind: 'float', initial: '0.01' });
    expect(paramField(param('fast', 'True', 'bool'))).toMatchObject({ kind: 'bool', initial: 'True' });
    expect(paramField(param('opt', "'adam'", 'str'))).toMatchObject({ kind: 'str', initial: 'adam' });
    expect(paramField(param('sizes', '[1, 2]', 'list'))).toMatchObject({ kind: 'text', initial: '[1, 2]' });
    expect(paramField(param('x', 'np.arange(3)', 'expression'))).toMatchObject({ kind: 'text', initial: 'np.arange(3)' });
    expect(paramField(param('w', 'None', 'NoneType'))).toMatchObject({ kind: 'text', initial: 'None' });
  });

  it('writes Python number literals the way a number input takes them', () => {
    expect(paramField(param('n', '1_000', 'int')).initial).toBe('1000');
    expect(paramField(param('n', '0x10', 'int')).initial).toBe('16');
    expect(paramField(param('n', '-5', 'int')).initial).toBe('-5');
    expect(paramField(param('lr', '1e-3', 'float')).initial).toBe('1e-3');
    expect(paramField(param('lr', '5.', 'float')).initial).toBe('5');
    expect(numberText('1e400', false)).toBeNull();
    expect(numberText('123456789012345678901', true)).toBeNull();
    // A number the input cannot hold stays text (the server checks it).
    expect(paramField(param('n', '123456789012345678901', 'int'))).toMatchObject({ kind: 'text' });
  });

  it('keeps a str it cannot decode as source text', () => {
    expect(paramField(param('s', "'a' 'b'", 'str'))).toMatchObject({ kind: 'text', initial: "'a' 'b'" });
    expect(paramField(param('s', "'\\N{BULLET}'", 'str'))).toMatchObject({ kind: 'text' });
  });
});

describe('typed values', () => {
  const n = paramField(param('n', '30', 'int'));
  const lr = paramField(param('lr', '0.01', 'float'));
  const fast = paramField(param('fast', 'False', 'bool'));
  const opt = paramField(param('opt', "'adam'", 'str'));
  const sizes = paramField(param('sizes', '[1, 2]', 'list'));

  it('sends numbers as numbers, bools as booleans, strings as Python literals', () => {
    expect(fieldValue(n, '9')).toBe(9);
    expect(fieldValue(lr, '0.5')).toBe(0.5);
    expect(fieldValue(n, '2.5')).toBe(2.5); // refused by the server, in its words
    expect(fieldValue(n, '')).toBeUndefined();
    expect(fieldValue(fast, 'True')).toBe(true);
    expect(fieldValue(fast, 'False')).toBe(false);
    expect(fieldValue(opt, 'sgd')).toBe("'sgd'");
    expect(fieldValue(opt, '')).toBe("''");
    expect(fieldValue(sizes, ' [3] ')).toBe('[3]');
    expect(fieldValue(sizes, ' ')).toBeUndefined();
  });

  it('sends only what differs from the defaults', () => {
    const fields = [n, lr, fast, opt, sizes];
    const untouched = Object.fromEntries(fields.map(f => [f.name, f.initial]));
    expect(changedParameters(fields, untouched)).toEqual({});
    expect(changedParameters(fields, { ...untouched, n: '30.0', lr: '.01' })).toEqual({}); // the same numbers
    expect(changedParameters(fields, { n: '12', lr: '', fast: 'True', opt: "it's", sizes: '[1, 2, 3]' })).toEqual({
      n: 12,
      fast: true,
      opt: "'it\\'s'",
      sizes: '[1, 2, 3]'
    });
    expect(changedParameters(fields, { unknown: '1' })).toEqual({});
  });

  it('after a save, untouched fields take the new defaults and typed ones stay', () => {
    const before = [n, lr, opt];
    const after = [
      paramField(param('n', '12', 'int')),
      paramField(param('lr', '0.1', 'float')),
      paramField(param('opt', "'adam'", 'str')),
      paramField(param('seed', '0', 'int'))
    ];
    expect(refreshedTexts(before, after, { n: '30', lr: '0.3', opt: 'adam' })).toEqual({
      n: '12',
      lr: '0.3',
      opt: 'adam',
      seed: '0'
    });
    // A parameter whose type changed starts again from its default.
    expect(refreshedTexts([n], [paramField(param('n', "'auto'", 'str'))], { n: '50' })).toEqual({ n: 'auto' });
    expect(refreshedTexts([], [n], {})).toEqual({ n: '30' });
  });
});

describe('Python string literals', () => {
  it('decodes the literals a parameters cell holds', () => {
    expect(decodePythonString("'adam'")).toBe('adam');
    expect(decodePythonString('"it\'s"')).toBe("it's");
    expect(decodePythonString("'a\\tb\\n\\\\ \\x41\\u00e9\\101'")).toBe('a\tb\n\\ Aé' + 'A');
    expect(decodePythonString("r'C:\\data\\x'")).toBe('C:\\data\\x');
    expect(decodePythonString("'''two\nlines'''")).toBe('two\nlines');
    expect(decodePythonString("'\\d'")).toBe('\\d');
    expect(decodePythonString("'a' + 'b'")).toBeNull();
    expect(decodePythonString("'''a''' '''b'''")).toBeNull();
    expect(decodePythonString("b'x'")).toBeNull();
    expect(decodePythonString('42')).toBeNull();
  });

  it('writes any text back as a literal that decodes to it', () => {
    for (const text of ['', 'adam', "it's", 'a "quoted" word', 'back\\slash', 'tab\tand\nnewline', 'bell\x07', 'é ☃ 😀']) {
      expect(decodePythonString(pythonString(text))).toBe(text);
    }
    expect(pythonString("it's")).toBe("'it\\'s'");
  });
});
