/** API keys: listed by prefix; a new key is shown once, right after it is made. */
import { useState, type FormEvent } from "react";
import { api, type Page } from "../../api/client";
import { ListState } from "../../components/ListState";
import { ProblemAlert } from "../../components/ProblemAlert";
import { TextField } from "../../components/TextField";
import { useAction } from "../../useAction";
import { useResource } from "../../useResource";

interface ApiKey {
  id: string;
  name: string;
  prefix: string;
  roles: string[];
  revoked_at: string | null;
  created_at: string;
}

export function ApiKeysPage() {
  const keys = useResource((signal) => api<Page<ApiKey>>("/api-keys?limit=200", { signal }), []);
  const [name, setName] = useState("");
  const [role, setRole] = useState("operator");
  const [shown, setShown] = useState<string | null>(null);
  const action = useAction();
  function create(event: FormEvent): void {
    event.preventDefault();
    void action.run(async () => {
      const created = await api<ApiKey & { key: string }>("/api-keys", {
        method: "POST",
        body: { name, roles: [role] },
      });
      setShown(created.key);
      setName("");
      keys.reload();
    });
  }
  const revoke = (id: string) =>
    action.run(async () => {
      await api(`/api-keys/${id}`, { method: "DELETE" });
      keys.reload();
    });
  return (
    <section aria-labelledby="keys-title">
      <h1 id="keys-title">API keys</h1>
      {action.problem ? <ProblemAlert error={action.problem} /> : null}
      {shown ? (
        <div className="confirm" role="status">
          <p>Copy the key now: it is shown this once.</p>
          <pre data-testid="new-key">{shown}</pre>
          <button type="button" onClick={() => setShown(null)}>
            I have copied it
          </button>
        </div>
      ) : null}
      <ListState resource={keys} count={keys.data?.items.length ?? 0} what="The keys" empty="No API key yet." />
      <ul>
        {keys.data?.items.map((key) => (
          <li key={key.id}>
            {key.name} <code>{key.prefix}…</code> ({key.roles.join(", ")})
            {key.revoked_at ? (
              " revoked"
            ) : (
              <button type="button" className="link" disabled={action.busy} onClick={() => void revoke(key.id)}>
                Revoke {key.name}
              </button>
            )}
          </li>
        ))}
      </ul>
      <form onSubmit={create} className="editor" aria-labelledby="new-key-title">
        <h2 id="new-key-title">New key</h2>
        <TextField label="Name" name="key-name" value={name} onChange={setName} required />
        <div className="field">
          <label htmlFor="input-key-role">Role</label>
          <select id="input-key-role" value={role} onChange={(event) => setRole(event.target.value)}>
            <option>viewer</option>
            <option>operator</option>
            <option>admin</option>
          </select>
        </div>
        <button type="submit" className="primary" disabled={action.busy}>
          Create the key
        </button>
      </form>
    </section>
  );
}
