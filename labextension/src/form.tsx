/** The sidebar's options form: name, typed parameters, resources, volumes, environment. */

import * as React from 'react';

import { EngineStatus, NotebookParameters } from './api';
import { ParamField } from './params';
import { EnvRow, FormState, gpuChoices, VolumeRow } from './state';

/** A label and its control on one row (the label above the control where the sidebar is narrow). */
export function Field(props: { label: React.ReactNode; title?: string; children: React.ReactNode }): JSX.Element {
  return (
    <label className="jc-Row" title={props.title}>
      <span className="jc-Label">{props.label}</span>
      {props.children}
    </label>
  );
}

/** A text input of the form: `value` and an `update` of the typed text. */
function TextInput(props: {
  name?: string;
  value: string;
  placeholder?: string;
  update: (text: string) => void;
}): JSX.Element {
  return (
    <input
      className="jp-mod-styled jc-Input"
      name={props.name}
      value={props.value}
      placeholder={props.placeholder}
      onChange={e => props.update(e.target.value)}
    />
  );
}

function Select(props: {
  name: string;
  value: string;
  choices: { value: string; label: string }[];
  update: (value: string) => void;
}): JSX.Element {
  return (
    <select className="jp-mod-styled jc-Input" name={props.name} value={props.value} onChange={e => props.update(e.target.value)}>
      {props.choices.map(c => (
        <option key={c.value} value={c.value}>
          {c.label}
        </option>
      ))}
    </select>
  );
}

const BACKENDS = [
  { value: 'docker', label: 'Docker (this machine)' },
  { value: 'slurm', label: 'Slurm' },
  { value: 'kubernetes', label: 'Kubernetes' }
];

export function OptionsForm(props: {
  form: FormState;
  setForm: React.Dispatch<React.SetStateAction<FormState>>;
  engine: EngineStatus | null;
  params: NotebookParameters | null;
  fields: ParamField[];
}): JSX.Element {
  const { form, setForm, engine, params, fields } = props;
  const set = <K extends keyof FormState>(key: K, value: FormState[K]) => setForm(f => ({ ...f, [key]: value }));
  return (
    <div className="jc-Form">
      <Field label="Name">
        <TextInput name="job-name" value={form.name} placeholder="optional, shown on the job's card" update={v => set('name', v)} />
      </Field>
      <fieldset>
        <legend>Parameters</legend>
        {!params && <div className="jc-Muted">reading the notebook…</div>}
        {params && !params.has_cell && (
          <div className="jc-Muted">No cell is tagged “parameters”; tag one to set values per job.</div>
        )}
        {params &&
          fields.map(f => (
            <ParamInput
              key={f.name}
              field={f}
              text={form.parameters[f.name] ?? f.initial}
              update={text => setForm(x => ({ ...x, parameters: { ...x.parameters, [f.name]: text } }))}
            />
          ))}
      </fieldset>
      <fieldset>
        <legend>Resources</legend>
        <Field label="GPUs">
          <Select name="gpus" value={form.gpus} choices={gpuChoices(engine)} update={v => set('gpus', v)} />
        </Field>
        <Field label="Base image">
          <TextInput
            name="base-image"
            value={form.baseImage}
            placeholder="python:X.Y.Z-slim-bookworm (default)"
            update={v => set('baseImage', v)}
          />
        </Field>
        <Field label="Backend">
          <Select name="backend" value={form.backend} choices={BACKENDS} update={v => set('backend', v)} />
        </Field>
      </fieldset>
      <RowsEditor<VolumeRow>
        legend="Volumes"
        head={
          <label
            className="jc-Check"
            title="Mount the files and folders the notebook reads, read-only, where it reads them (off: --no-auto-mount)"
          >
            <input
              type="checkbox"
              name="auto-mount"
              checked={form.autoMount}
              onChange={e => set('autoMount', e.target.checked)}
            />
            Mount the data the notebook reads
          </label>
        }
        rows={form.volumes}
        setRows={rows => set('volumes', rows)}
        empty={{ source: '', target: '', readOnly: true }}
        render={(row, update) => (
          <>
            <TextInput placeholder="./data" value={row.source} update={source => update({ ...row, source })} />
            <TextInput placeholder="/data" value={row.target} update={target => update({ ...row, target })} />
            <label className="jc-Check" title="read-only">
              <input type="checkbox" checked={row.readOnly} onChange={e => update({ ...row, readOnly: e.target.checked })} />
              ro
            </label>
          </>
        )}
      />
      <RowsEditor<EnvRow>
        legend="Environment"
        rows={form.env}
        setRows={rows => set('env', rows)}
        empty={{ key: '', value: '' }}
        render={(row, update) => (
          <>
            <TextInput placeholder="NAME" value={row.key} update={key => update({ ...row, key })} />
            <TextInput placeholder="value" value={row.value} update={value => update({ ...row, value })} />
          </>
        )}
      />
    </div>
  );
}

/** One parameter: a number input for an int or a float, a checkbox for a bool, text for the rest. */
function ParamInput(props: { field: ParamField; text: string; update: (text: string) => void }): JSX.Element {
  const { field: f, text, update } = props;
  const type = f.type === 'NoneType' ? 'None' : f.type;
  const title = `${type} (default ${f.source})`;
  if (f.kind === 'bool') {
    return (
      <label className="jc-Row jc-ParamCheck" title={title}>
        <input
          type="checkbox"
          name={`param-${f.name}`}
          checked={text === 'True'}
          onChange={e => update(e.target.checked ? 'True' : 'False')}
        />
        <span className="jc-Label">{f.name}</span>
        <span className="jc-Type">bool</span>
      </label>
    );
  }
  const number = f.kind === 'int' || f.kind === 'float';
  return (
    <Field
      title={title}
      label={
        <>
          {f.name} <span className="jc-Type">{type}</span>
        </>
      }
    >
      <input
        className="jp-mod-styled jc-Input"
        name={`param-${f.name}`}
        type={number ? 'number' : 'text'}
        step={f.kind === 'int' ? 1 : f.kind === 'float' ? 'any' : undefined}
        value={text}
        placeholder={f.kind === 'str' ? '(empty text)' : f.source /* empty: the default */}
        onChange={e => update(e.target.value)}
      />
    </Field>
  );
}

function RowsEditor<T>(props: {
  legend: string;
  /** Shown above the rows (a switch that belongs to the same topic). */
  head?: JSX.Element;
  rows: T[];
  setRows: (rows: T[]) => void;
  empty: T;
  render: (row: T, update: (row: T) => void) => JSX.Element;
}): JSX.Element {
  const { legend, head, rows, setRows, empty, render } = props;
  return (
    <fieldset>
      <legend>{legend}</legend>
      {head}
      {rows.map((row, i) => (
        <div className="jc-Row jc-EditRow" key={i}>
          {render(row, r => setRows(rows.map((x, j) => (j === i ? r : x))))}
          <button className="jp-Button jc-Icon" title="Remove" onClick={() => setRows(rows.filter((_, j) => j !== i))}>
            ×
          </button>
        </div>
      ))}
      <button className="jp-Button jc-Add" onClick={() => setRows([...rows, { ...empty }])}>
        + Add
      </button>
    </fieldset>
  );
}
