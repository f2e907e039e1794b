/** Secret references: where each value is (never the value itself). */
import { useState, type FormEvent } from "react";
import { api, type Page } from "../../api/client";
import { ListState } from "../../components/ListState";
import { ProblemAlert } from "../../components/ProblemAlert";
import { TextField } from "../../components/TextField";
import { useAction } from "../../useAction";
import { useResource } from "../../useResource";

interface SecretRef {
  id: string;
  slug: string;
  provider: string;
  key: string;
  description: string;
}

const PROVIDERS = ["env", "file", "aws-secretsmanager"];

export function SecretsPage() {
  const secrets = useResource((signal) => api<Page<SecretRef>>("/secrets?limit=200", { signal }), []);
  const [slug, setSlug] = useState("");
  const [provider, setProvider] = useState("file");
  const [key, setKey] = useState("");
  const action = useAction();
  function create(event: FormEvent): void {
    event.preventDefault();
    void action.run(async () => {
      await api("/secrets", { method: "POST", body: { slug, provider, key } });
      setSlug("");
      setKey("");
      secrets.reload();
    });
  }
  const items = secrets.data?.items ?? [];
  return (
    <section aria-labelledby="secrets-title">
      <h1 id="secrets-title">Secret references</h1>
      <ListState resource={secrets} count={items.length} what="The secrets" empty="No secret reference yet." />
      <ul>
        {items.map((secret) => (
          <li key={secret.id}>
            <code>{secret.slug}</code>: {secret.provider} <code>{secret.key}</code>
            {secret.description ? ` (${secret.description})` : ""}
          </li>
        ))}
      </ul>
      <form onSubmit={create} className="editor" aria-labelledby="new-secret-title">
        <h2 id="new-secret-title">New reference</h2>
        {action.problem ? <ProblemAlert error={action.problem} title="The reference was refused" /> : null}
        <TextField label="Slug" name="secret-slug" value={slug} onChange={setSlug} required />
        <div className="field">
          <label htmlFor="input-provider">Provider</label>
          <select id="input-provider" value={provider} onChange={(event) => setProvider(event.target.value)}>
            {PROVIDERS.map((name) => (
              <option key={name}>{name}</option>
            ))}
          </select>
        </div>
        <TextField
          label="Key"
          name="secret-key"
          value={key}
          onChange={setKey}
          hint="A path under the tenant's folder (file), a variable with the tenant's prefix (env) or a secret's name (AWS)."
          required
        />
        <button type="submit" className="primary" disabled={action.busy}>
          Add the reference
        </button>
      </form>
    </section>
  );
}
