/** The panel's schema as react-jsonschema-form takes it: the JSON Schema, and a uiSchema made
 * from the service's UI hints (order, widgets, live options and their dependencies). */
import type { RJSFSchema, UiSchema } from "@rjsf/utils";
import type { FieldUi, PanelSchema } from "../api/types";

/** The service's widget names → the form's. */
const WIDGETS: Record<string, string> = {
  textarea: "textarea",
  password: "password",
  number: "updown",
  checkbox: "checkbox",
  date: "date",
  datetime: "datetime",
  select: "choice",
  multiselect: "choice",
};

export function formSchema(panel: PanelSchema): RJSFSchema {
  // ajv here validates draft-07, which the service's 2020-12 subset also is; the title is
  // the page's heading already.
  const { $schema: _draft, title: _title, description: _description, ...schema } = panel.schema;
  return schema as RJSFSchema;
}

function fieldUi(name: string, ui: FieldUi): UiSchema {
  const widget = WIDGETS[ui.widget];
  const field: UiSchema = widget ? { "ui:widget": widget } : {};
  if (widget === "choice") {
    field["ui:options"] = {
      field: name,
      choices: ui.options,
      optionsUrl: ui.options_url,
      dependsOn: ui.depends_on,
    };
  }
  if (widget === "password") field["ui:autocomplete"] = "new-password";
  return field;
}

export function formUiSchema(panel: PanelSchema): UiSchema {
  const ui: UiSchema = { "ui:order": [...panel.ui.order, "*"] };
  for (const [name, hints] of Object.entries(panel.ui.fields)) ui[name] = fieldUi(name, hints);
  return ui;
}

/** Names of the secret fields, which are never kept in a draft. */
export function secretFields(panel: PanelSchema): string[] {
  return Object.entries(panel.ui.fields)
    .filter(([, hints]) => hints.widget === "password")
    .map(([name]) => name);
}
