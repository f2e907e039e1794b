/** A template changed in place (PATCH: a new version; runs already started keep theirs): its
 * command, parameters, who may run it, its timeout, concurrency and approval policy. */
import { useState, type FormEvent } from "react";
import { api } from "../../api/client";
import type { Template } from "../../api/types";
import { ProblemAlert } from "../../components/ProblemAlert";
import { TextField } from "../../components/TextField";
import { useAction } from "../../useAction";
import { PARAMETER_TYPES, formatParameters, mergeParameters } from "./parameters";

const list = (text: string): string[] =>
  text
    .split(",")
    .map((part) => part.trim())
    .filter(Boolean);

export function TemplateEditor({ template, onSaved }: { template: Template; onSaved: (saved: Template) => void }) {
  const [name, setName] = useState(template.name);
  const [command, setCommand] = useState(template.command_template ?? "");
  const [declared, setDeclared] = useState(formatParameters(template.parameters));
  const [roles, setRoles] = useState(template.allowed_roles.join(", "));
  const [groups, setGroups] = useState(template.allowed_groups.join(", "));
  const [timeout, setTimeoutSeconds] = useState(String(template.timeout_seconds));
  const [concurrency, setConcurrency] = useState(template.max_concurrency ? String(template.max_concurrency) : "");
  const [approvals, setApprovals] = useState(template.approval ? String(template.approval.required) : "");
  const [approverRoles, setApproverRoles] = useState(template.approval?.approver_roles.join(", ") ?? "");
  const [approverGroups, setApproverGroups] = useState(template.approval?.approver_groups.join(", ") ?? "");
  const [saved, setSaved] = useState<number | null>(null);
  const action = useAction();
  function save(event: FormEvent): void {
    event.preventDefault();
    setSaved(null);
    const body: Record<string, unknown> = {
      name,
      parameters: mergeParameters(declared, template.parameters),
      allowed_roles: list(roles),
      allowed_groups: list(groups),
      timeout_seconds: Number(timeout),
      max_concurrency: concurrency.trim() ? Number(concurrency) : null,
      approval: approvals.trim()
        ? {
            ...(template.approval ?? {}),
            required: Number(approvals),
            approver_roles: list(approverRoles),
            approver_groups: list(approverGroups),
          }
        : null,
    };
    if (template.operation_type === "command") body.command_template = command;
    void action.run(async () => {
      const changed = await api<Template>(`/templates/${template.id}`, { method: "PATCH", body });
      setSaved(changed.version);
      onSaved(changed);
    });
  }
  return (
    <form onSubmit={save} className="editor" aria-labelledby="edit-template-title">
      <h2 id="edit-template-title">Edit the template</h2>
      {action.problem ? <ProblemAlert error={action.problem} title="The change was refused" /> : null}
      {saved !== null ? <p role="status">Saved as version {saved}.</p> : null}
      <TextField label="Name" name="edit-name" value={name} onChange={setName} required />
      {template.operation_type === "command" ? (
        <TextField
          label="Command"
          name="edit-command"
          value={command}
          onChange={setCommand}
          hint="Split into arguments like a shell would, but run without one; {{name}} is a parameter's value."
          required
        />
      ) : null}
      <div className="field">
        <label htmlFor="input-edit-parameters">Parameters</label>
        <p className="hint" id="input-edit-parameters-hint">
          One a line: <code>name</code> or <code>name:type</code> ({PARAMETER_TYPES.join(", ")}), a <code>?</code> after
          the name when it may be left out. A parameter keeps its constraints while its type is unchanged.
        </p>
        <textarea
          id="input-edit-parameters"
          rows={3}
          value={declared}
          aria-describedby="input-edit-parameters-hint"
          onChange={(event) => setDeclared(event.target.value)}
        />
      </div>
      <TextField
        label="Allowed roles"
        name="edit-roles"
        value={roles}
        onChange={setRoles}
        hint="Comma separated; none means every role that may run operations."
      />
      <TextField
        label="Allowed groups"
        name="edit-groups"
        value={groups}
        onChange={setGroups}
        hint="Comma separated."
      />
      <TextField
        label="Timeout (seconds)"
        name="edit-timeout"
        type="number"
        min={1}
        value={timeout}
        onChange={setTimeoutSeconds}
        required
      />
      <TextField
        label="Concurrent runs at most"
        name="edit-concurrency"
        type="number"
        min={1}
        value={concurrency}
        onChange={setConcurrency}
        hint="Empty: no limit."
      />
      <fieldset>
        <legend>Approval</legend>
        <TextField
          label="Approvals required"
          name="edit-approvals"
          type="number"
          min={1}
          max={20}
          value={approvals}
          onChange={setApprovals}
          hint="Empty: runs need no approval."
        />
        <TextField
          label="Approver roles"
          name="edit-approver-roles"
          value={approverRoles}
          onChange={setApproverRoles}
          hint="Comma separated."
        />
        <TextField
          label="Approver groups"
          name="edit-approver-groups"
          value={approverGroups}
          onChange={setApproverGroups}
          hint="Comma separated."
        />
      </fieldset>
      <button type="submit" className="primary" disabled={action.busy}>
        Save the template
      </button>
    </form>
  );
}
