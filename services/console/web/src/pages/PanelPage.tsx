/** A panel's form: rendered from its JSON Schema, live options, drafts kept, server field
 * errors shown on their fields, and one submission per form content (Idempotency-Key). */
import Form from "@rjsf/core";
import type { IChangeEvent } from "@rjsf/core";
import type { ErrorSchema, RegistryWidgetsType } from "@rjsf/utils";
import { validator } from "../form/validator";
import { useMemo, useRef, useState } from "react";
import { ApiError, api, type FieldProblem } from "../api/client";
import type { Panel, PanelSchema, Submission } from "../api/types";
import { currentSession, hasRole, mayRun } from "../auth/session";
import { ProblemAlert } from "../components/ProblemAlert";
import { ChoiceWidget } from "../form/ChoiceWidget";
import { dropDraft, loadDraft, saveDraft } from "../form/drafts";
import { fieldErrors, formLevelErrors } from "../form/errors";
import { FormValues } from "../form/FormValues";
import { formSchema, formUiSchema, secretFields } from "../form/uiSchema";
import { Link, navigate } from "../router";
import { useResource } from "../useResource";

type Values = Record<string, unknown>;
const widgets: RegistryWidgetsType = { choice: ChoiceWidget };

export function PanelPage({ panelId }: { panelId: string }) {
  const loaded = useResource(
    (signal) =>
      Promise.all([
        api<Panel>(`/panels/${panelId}`, { signal }),
        api<PanelSchema>(`/panels/${panelId}/schema`, { signal }),
      ]),
    [panelId],
  );
  if (loaded.error) return <ProblemAlert error={loaded.error} title="The panel could not be loaded" />;
  if (!loaded.data) return <p aria-busy="true">Loading the form…</p>;
  const [panel, schema] = loaded.data;
  return <PanelForm panel={panel} schema={schema} />;
}

function withoutFields(errors: ErrorSchema, names: string[]): ErrorSchema | undefined {
  const kept = Object.entries(errors).filter(([name]) => !names.includes(name));
  return kept.length ? (Object.fromEntries(kept) as ErrorSchema) : undefined;
}

function PanelForm({ panel, schema }: { panel: Panel; schema: PanelSchema }) {
  const jsonSchema = useMemo(() => formSchema(schema), [schema]);
  const uiSchema = useMemo(() => formUiSchema(schema), [schema]);
  const secrets = useMemo(() => secretFields(schema), [schema]);
  const [values, setValues] = useState<Values>(() => loadDraft(panel.id) ?? {});
  const [serverErrors, setServerErrors] = useState<ErrorSchema>();
  const [problem, setProblem] = useState<unknown>(null);
  const [submitting, setSubmitting] = useState(false);
  // One key per form content: a second click, or a resend after a lost answer, is the same
  // submission; a changed form is a new one.
  const idempotencyKey = useRef(crypto.randomUUID());
  const inFlight = useRef(false);
  const canRun = mayRun(currentSession(), panel.allowed_roles, panel.allowed_groups);

  function changed(event: IChangeEvent<Values>): void {
    const next = event.formData ?? {};
    const edited = Object.keys({ ...next, ...values }).filter(
      (name) => JSON.stringify(next[name]) !== JSON.stringify(values[name]),
    );
    if (!edited.length) return;
    idempotencyKey.current = crypto.randomUUID();
    // A field's server error stands until that field is edited.
    setServerErrors((errors) => errors && withoutFields(errors, edited));
    setValues(next);
    saveDraft(panel.id, next, secrets);
  }

  async function submit(event: IChangeEvent<Values>): Promise<void> {
    if (inFlight.current) return;
    inFlight.current = true;
    setSubmitting(true);
    setProblem(null);
    setServerErrors(undefined);
    try {
      const created = await api<Submission>(`/panels/${panel.id}/submissions`, {
        method: "POST",
        body: { data: event.formData ?? {} },
        headers: { "Idempotency-Key": idempotencyKey.current },
      });
      dropDraft(panel.id);
      navigate(`/submissions/${created.id}`);
    } catch (error) {
      const problems: FieldProblem[] = error instanceof ApiError ? error.errors : [];
      if (problems.length) setServerErrors(fieldErrors(problems));
      const unplaced = formLevelErrors(problems, Object.keys(schema.ui.fields));
      if (!problems.length || unplaced.length) setProblem(error);
    } finally {
      inFlight.current = false;
      setSubmitting(false);
    }
  }

  return (
    <section aria-labelledby="panel-title">
      <h1 id="panel-title">{panel.title}</h1>
      {panel.description ? <p className="lead">{panel.description}</p> : null}
      {hasRole(currentSession(), "admin") ? (
        <p>
          <Link href={`/admin/panels/${panel.id}/edit`}>Edit this panel</Link>
        </p>
      ) : null}
      {problem ? <ProblemAlert error={problem} title="The submission was refused" listFields={false} /> : null}
      <FormValues.Provider value={values}>
        <Form<Values>
          schema={jsonSchema}
          uiSchema={uiSchema}
          validator={validator}
          widgets={widgets}
          formData={values}
          onChange={changed}
          onSubmit={(event) => void submit(event)}
          // The errors are on their fields (RJSF would also log them as a console error).
          onError={() => undefined}
          extraErrors={serverErrors}
          showErrorList={false}
          focusOnFirstError
          noHtml5Validate
          readonly={!canRun}
          idPrefix="field"
        >
          {canRun ? (
            <button type="submit" className="primary" disabled={submitting} aria-busy={submitting}>
              {submitting ? "Submitting…" : "Submit"}
            </button>
          ) : (
            <p className="note">Your role can read this panel but not run it.</p>
          )}
        </Form>
      </FormValues.Provider>
    </section>
  );
}
