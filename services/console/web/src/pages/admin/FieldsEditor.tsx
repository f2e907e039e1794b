/** A panel's fields as an admin edits them: each one's name, label, type, help, default,
 * whether it is required, a static select's options or the data source a dynamic one asks
 * (with the fields whose values it is sent), in the order people see them. A 422's errors
 * (`fields.1.depends_on`) are shown on the field they name. */
import type { FieldProblem } from "../../api/client";
import type { DataSourceSummary, PanelField } from "../../api/types";

export const FIELD_TYPES = [
  "text",
  "textarea",
  "number",
  "integer",
  "boolean",
  "select",
  "multiselect",
  "secret",
  "email",
  "url",
  "date",
  "datetime",
];
const CHOICES = new Set(["select", "multiselect"]);
/** Constraints the editor does not show: kept as they were. */
const KEPT = ["min_value", "max_value", "min_length", "max_length", "pattern", "allowed_values"];

export interface FieldDraft {
  key: number;
  name: string;
  label: string;
  help_text: string;
  field_type: string;
  is_required: boolean;
  default: string;
  /** Where a select's options come from. */
  source: "options" | "data_source";
  options: string;
  data_source: string;
  depends_on: string[];
  kept: Record<string, unknown>;
}

let nextKey = 1;

export function newDraft(change: Partial<FieldDraft> = {}): FieldDraft {
  return {
    key: nextKey++,
    name: "",
    label: "",
    help_text: "",
    field_type: "text",
    is_required: true,
    default: "",
    source: "options",
    options: "",
    data_source: "",
    depends_on: [],
    kept: {},
    ...change,
  };
}

export function draftOf(field: PanelField): FieldDraft {
  const kept: Record<string, unknown> = {};
  for (const key of KEPT) if (field[key] !== null && field[key] !== undefined) kept[key] = field[key];
  const shown = field.default === null || field.default === undefined ? "" : field.default;
  return newDraft({
    name: field.name,
    label: field.label,
    help_text: field.help_text,
    field_type: field.field_type,
    is_required: field.is_required,
    default: Array.isArray(shown) ? shown.join(", ") : String(shown),
    source: field.data_source ? "data_source" : "options",
    options: (field.options ?? [])
      .map((option) => (option.label === option.value ? option.value : `${option.value}=${option.label}`))
      .join("\n"),
    data_source: field.data_source ?? "",
    depends_on: field.depends_on,
    kept,
  });
}

function defaultValue(draft: FieldDraft): unknown {
  const text = draft.default.trim();
  if (!text) return null;
  if (draft.field_type === "number" || draft.field_type === "integer") return Number(text);
  if (draft.field_type === "boolean") return text === "true";
  if (draft.field_type === "multiselect") return text.split(",").map((part) => part.trim());
  return draft.default;
}

/** The field as panel-svc takes it. */
export function fieldOf(draft: FieldDraft): Record<string, unknown> {
  const choice = CHOICES.has(draft.field_type);
  const dynamic = choice && draft.source === "data_source";
  return {
    ...draft.kept,
    name: draft.name,
    label: draft.label,
    help_text: draft.help_text,
    field_type: draft.field_type,
    is_required: draft.is_required,
    default: draft.field_type === "secret" ? null : defaultValue(draft),
    options:
      choice && !dynamic
        ? draft.options
            .split("\n")
            .map((line) => line.trim())
            .filter(Boolean)
            .map((line) => {
              const [value, ...label] = line.split("=");
              return { value: value.trim(), label: (label.join("=") || value).trim() };
            })
        : null,
    data_source: dynamic ? draft.data_source || null : null,
    depends_on: dynamic ? draft.depends_on : [],
  };
}

interface Props {
  fields: FieldDraft[];
  /** ``moved``: fields were added, removed or reordered (a 422's `fields.N` no longer
   * names the same field). */
  onChange: (fields: FieldDraft[], moved: boolean) => void;
  sources: DataSourceSummary[];
  problems: FieldProblem[];
}

/** The problems of field ``index`` (its own with ``attribute`` "", else the attribute's). */
function problemsOf(problems: FieldProblem[], index: number, attribute: string): string[] {
  const prefix = `fields.${index}`;
  return problems
    .filter((problem) =>
      attribute ? problem.field === `${prefix}.${attribute}` : problem.field === prefix || problem.field === "fields",
    )
    .map((problem) => problem.message);
}

function Problems({ id, messages }: { id: string; messages: string[] }) {
  if (!messages.length) return null;
  return (
    <p className="field-error" id={id}>
      {messages.join(" ")}
    </p>
  );
}

export function FieldsEditor({ fields, onChange, sources, problems }: Props) {
  // A renamed field stays depended on under its new name; a removed one is depended on no more.
  const edit = (index: number, change: Partial<FieldDraft>) => {
    const before = fields[index].name;
    const renamed = (names: string[]) =>
      change.name !== undefined && before ? names.map((name) => (name === before ? change.name! : name)) : names;
    onChange(
      fields.map((field, at) =>
        at === index ? { ...field, ...change } : { ...field, depends_on: renamed(field.depends_on) },
      ),
      false,
    );
  };
  const remove = (index: number) => {
    const gone = fields[index].name;
    onChange(
      fields
        .filter((_, at) => at !== index)
        .map((field) => ({ ...field, depends_on: field.depends_on.filter((name) => name !== gone) })),
      true,
    );
  };
  const move = (index: number, by: number) => {
    const moved = [...fields];
    const [field] = moved.splice(index, 1);
    moved.splice(index + by, 0, field);
    onChange(moved, true);
  };
  return (
    <section aria-labelledby="fields-title">
      <h2 id="fields-title">Fields</h2>
      {fields.length === 0 ? <p>No field: the panel runs its template with no value.</p> : null}
      {fields.map((field, index) => {
        const id = (attribute: string) => `field-${field.key}-${attribute}`;
        const control = (attribute: string, hint = false) => {
          const messages = problemsOf(problems, index, attribute);
          const described = [hint ? id(`${attribute}-hint`) : "", messages.length ? id(`${attribute}-error`) : ""]
            .filter(Boolean)
            .join(" ");
          return {
            id: id(attribute),
            "aria-invalid": messages.length ? true : undefined,
            "aria-describedby": described || undefined,
            errors: <Problems id={id(`${attribute}-error`)} messages={messages} />,
          };
        };
        const title = `Field ${index + 1}${field.name ? `: ${field.name}` : ""}`;
        const others = fields.filter((other) => other.key !== field.key && other.name);
        const choice = CHOICES.has(field.field_type);
        const own = problemsOf(problems, index, "");
        const { errors: nameErrors, ...name } = control("name");
        const { errors: labelErrors, ...label } = control("label");
        const { errors: typeErrors, ...type } = control("field_type");
        const { errors: helpErrors, ...help } = control("help_text");
        const { errors: defaultErrors, ...byDefault } = control("default", true);
        const { errors: optionsErrors, ...options } = control("options", true);
        const { errors: sourceErrors, ...source } = control("data_source");
        const dependsErrors = problemsOf(problems, index, "depends_on");
        return (
          <fieldset key={field.key} className="panel-field" aria-invalid={own.length ? true : undefined}>
            <legend>{title}</legend>
            <Problems id={id("error")} messages={own} />
            <div className="field">
              <label htmlFor={name.id}>Name</label>
              <input {...name} value={field.name} required onChange={(e) => edit(index, { name: e.target.value })} />
              {nameErrors}
            </div>
            <div className="field">
              <label htmlFor={label.id}>Label</label>
              <input {...label} value={field.label} required onChange={(e) => edit(index, { label: e.target.value })} />
              {labelErrors}
            </div>
            <div className="field">
              <label htmlFor={type.id}>Type</label>
              <select {...type} value={field.field_type} onChange={(e) => edit(index, { field_type: e.target.value })}>
                {FIELD_TYPES.map((each) => (
                  <option key={each} value={each}>
                    {each}
                  </option>
                ))}
              </select>
              {typeErrors}
            </div>
            <div className="field">
              <label htmlFor={help.id}>Help text</label>
              <input {...help} value={field.help_text} onChange={(e) => edit(index, { help_text: e.target.value })} />
              {helpErrors}
            </div>
            {field.field_type !== "secret" ? (
              <div className="field">
                <label htmlFor={byDefault.id}>Default</label>
                <p className="hint" id={id("default-hint")}>
                  Empty: none. A boolean's is true or false; a multiselect's values are comma separated.
                </p>
                <input
                  {...byDefault}
                  value={field.default}
                  onChange={(e) => edit(index, { default: e.target.value })}
                />
                {defaultErrors}
              </div>
            ) : null}
            <div className="field checkbox">
              <input
                type="checkbox"
                id={id("required")}
                checked={field.is_required}
                onChange={(e) => edit(index, { is_required: e.target.checked })}
              />
              <label htmlFor={id("required")}>Required</label>
            </div>
            {choice ? (
              <fieldset>
                <legend>Choices of {field.name || `field ${index + 1}`}</legend>
                <div className="field checkbox">
                  <input
                    type="radio"
                    name={id("source")}
                    id={id("source-options")}
                    checked={field.source === "options"}
                    onChange={() => edit(index, { source: "options" })}
                  />
                  <label htmlFor={id("source-options")}>Listed here</label>
                </div>
                <div className="field checkbox">
                  <input
                    type="radio"
                    name={id("source")}
                    id={id("source-data")}
                    checked={field.source === "data_source"}
                    onChange={() => edit(index, { source: "data_source" })}
                  />
                  <label htmlFor={id("source-data")}>From a data source</label>
                </div>
                {field.source === "options" ? (
                  <div className="field">
                    <label htmlFor={options.id}>Options</label>
                    <p className="hint" id={id("options-hint")}>
                      One a line: <code>value</code> or <code>value=text shown</code>.
                    </p>
                    <textarea
                      {...options}
                      rows={3}
                      value={field.options}
                      onChange={(e) => edit(index, { options: e.target.value })}
                    />
                    {optionsErrors}
                  </div>
                ) : (
                  <>
                    <div className="field">
                      <label htmlFor={source.id}>Data source</label>
                      <select
                        {...source}
                        value={field.data_source}
                        required
                        onChange={(e) => edit(index, { data_source: e.target.value })}
                      >
                        <option value="">Choose a data source</option>
                        {sources.map((each) => (
                          <option key={each.id} value={each.id}>
                            {each.name} ({each.slug})
                          </option>
                        ))}
                      </select>
                      {sourceErrors}
                    </div>
                    <fieldset aria-describedby={dependsErrors.length ? id("depends_on-error") : undefined}>
                      <legend>Depends on</legend>
                      {others.length === 0 ? <p className="hint">No other named field.</p> : null}
                      {others.map((other) => (
                        <div className="field checkbox" key={other.key}>
                          <input
                            type="checkbox"
                            id={id(`depends-${other.key}`)}
                            checked={field.depends_on.includes(other.name)}
                            onChange={(e) =>
                              edit(index, {
                                depends_on: e.target.checked
                                  ? [...field.depends_on, other.name]
                                  : field.depends_on.filter((each) => each !== other.name),
                              })
                            }
                          />
                          <label htmlFor={id(`depends-${other.key}`)}>{other.label || other.name}</label>
                        </div>
                      ))}
                      <Problems id={id("depends_on-error")} messages={dependsErrors} />
                    </fieldset>
                  </>
                )}
              </fieldset>
            ) : null}
            <div className="actions">
              <button type="button" disabled={index === 0} onClick={() => move(index, -1)}>
                Move {field.name || `field ${index + 1}`} up
              </button>
              <button type="button" disabled={index === fields.length - 1} onClick={() => move(index, 1)}>
                Move {field.name || `field ${index + 1}`} down
              </button>
              <button type="button" onClick={() => remove(index)}>
                Remove {field.name || `field ${index + 1}`}
              </button>
            </div>
          </fieldset>
        );
      })}
      <button type="button" onClick={() => onChange([...fields, newDraft()], true)}>
        Add a field
      </button>
    </section>
  );
}
