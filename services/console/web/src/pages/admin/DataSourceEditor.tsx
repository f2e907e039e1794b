/** A data source as an admin makes or changes it: static options, or an http endpoint with
 * its query (values may name a panel's fields: `{{region}}`), where its items are (JMESPath),
 * how each becomes an option's value and label, and how long answers are kept; then a test
 * that shows the upstream's raw excerpt and the options mapped from it. */
import { useState, type FormEvent } from "react";
import { api } from "../../api/client";
import type { Option } from "../../api/types";
import { shown } from "../../components/LogMessage";
import { ProblemAlert } from "../../components/ProblemAlert";
import { TextField } from "../../components/TextField";
import { useAction } from "../../useAction";

export interface DataSource {
  id: string;
  slug: string;
  name: string;
  source_type: string;
  options: { value: string; label: string }[] | null;
  endpoint_url: string | null;
  method: string;
  query: Record<string, string>;
  items_path: string;
  value_expr: string;
  label_expr: string | null;
  ttl_seconds: number;
}

interface SourceTest {
  status_code: number | null;
  response_excerpt: string | null;
  options: Option[];
  error: string | null;
}

const lines = (text: string): string[] =>
  text
    .split("\n")
    .map((line) => line.trim())
    .filter(Boolean);

/** `a=b` lines as pairs (the first `=` splits). */
function pairs(text: string): [string, string][] {
  return lines(text).map((line) => {
    const [key, ...rest] = line.split("=");
    return [key.trim(), rest.join("=").trim()];
  });
}

/** The test button and what it found. */
export function SourceTester({ source }: { source: { id: string; slug: string } }) {
  const [result, setResult] = useState<SourceTest>();
  const action = useAction();
  const test = () =>
    action.run(async () => {
      setResult(await api<SourceTest>(`/datasources/${source.id}/test`, { method: "POST", body: { values: {} } }));
    });
  return (
    <div>
      <button type="button" disabled={action.busy} onClick={() => void test()}>
        Test {source.slug}
      </button>
      {action.problem ? <ProblemAlert error={action.problem} title="The test failed" /> : null}
      {result ? (
        <div className="source-test">
          <p role="status">
            {result.error
              ? `Failed: ${result.error}`
              : `${result.status_code ?? "static"}: ${result.options.map((option) => option.label).join(", ") || "no option"}`}
          </p>
          {result.response_excerpt ? (
            <details>
              <summary>Raw answer (excerpt)</summary>
              <pre className="excerpt">{shown(result.response_excerpt)}</pre>
            </details>
          ) : null}
          {result.options.length ? (
            <table aria-label={`Options of ${source.slug}`}>
              <thead>
                <tr>
                  <th scope="col">Value</th>
                  <th scope="col">Label</th>
                </tr>
              </thead>
              <tbody>
                {result.options.map((option) => (
                  <tr key={option.value}>
                    <td>
                      <code>{option.value}</code>
                    </td>
                    <td>{option.label}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          ) : null}
        </div>
      ) : null}
    </div>
  );
}

export function DataSourceEditor({ source, onSaved }: { source?: DataSource; onSaved: (saved: DataSource) => void }) {
  const [slug, setSlug] = useState(source?.slug ?? "");
  const [name, setName] = useState(source?.name ?? "");
  const [kind, setKind] = useState(source?.source_type ?? "http");
  const [options, setOptions] = useState(
    (source?.options ?? [])
      .map((option) => (option.value === option.label ? option.value : `${option.value}=${option.label}`))
      .join("\n"),
  );
  const [url, setUrl] = useState(source?.endpoint_url ?? "");
  const [method, setMethod] = useState(source?.method ?? "GET");
  const [query, setQuery] = useState(
    Object.entries(source?.query ?? {})
      .map(([key, value]) => `${key}=${value}`)
      .join("\n"),
  );
  const [itemsPath, setItemsPath] = useState(source?.items_path ?? "@");
  const [valueExpr, setValueExpr] = useState(source?.value_expr ?? "@");
  const [labelExpr, setLabelExpr] = useState(source?.label_expr ?? "");
  const [ttl, setTtl] = useState(String(source?.ttl_seconds ?? 300));
  const [saved, setSaved] = useState(false);
  const action = useAction();
  function save(event: FormEvent): void {
    event.preventDefault();
    setSaved(false);
    const body: Record<string, unknown> = { slug, name, source_type: kind, ttl_seconds: Number(ttl) };
    if (kind === "static") {
      body.options = pairs(options).map(([value, label]) => ({ value, label: label || value }));
    } else {
      Object.assign(body, {
        endpoint_url: url,
        method,
        query: Object.fromEntries(pairs(query)),
        items_path: itemsPath || "@",
        value_expr: valueExpr || "@",
        label_expr: labelExpr || null,
      });
    }
    void action.run(async () => {
      const answer = await api<DataSource>(source ? `/datasources/${source.id}` : "/datasources", {
        method: source ? "PATCH" : "POST",
        body,
      });
      setSaved(true);
      onSaved(answer);
    });
  }
  const heading = source ? "edit-source-title" : "new-source-title";
  return (
    <form onSubmit={save} className="editor" aria-labelledby={heading}>
      <h2 id={heading}>{source ? "Edit the data source" : "New data source"}</h2>
      <TextField label="Slug" name="source-slug" value={slug} onChange={setSlug} required />
      <TextField label="Name" name="source-name" value={name} onChange={setName} required />
      <div className="field">
        <label htmlFor="input-source-kind">Kind</label>
        <select id="input-source-kind" value={kind} onChange={(event) => setKind(event.target.value)}>
          <option value="http">http: asked of an endpoint</option>
          <option value="static">static: listed here</option>
        </select>
      </div>
      {kind === "static" ? (
        <div className="field">
          <label htmlFor="input-source-options">Options</label>
          <p className="hint" id="input-source-options-hint">
            One a line: <code>value</code> or <code>value=text shown</code>.
          </p>
          <textarea
            id="input-source-options"
            rows={4}
            value={options}
            required
            aria-describedby="input-source-options-hint"
            onChange={(event) => setOptions(event.target.value)}
          />
        </div>
      ) : (
        <>
          <TextField label="URL" name="source-url" type="url" value={url} onChange={setUrl} required />
          <div className="field">
            <label htmlFor="input-source-method">Method</label>
            <select id="input-source-method" value={method} onChange={(event) => setMethod(event.target.value)}>
              <option>GET</option>
              <option>POST</option>
            </select>
          </div>
          <div className="field">
            <label htmlFor="input-source-query">Query</label>
            <p className="hint" id="input-source-query-hint">
              One a line: <code>name=value</code>; <code>{"{{field}}"}</code> is a panel field's value.
            </p>
            <textarea
              id="input-source-query"
              rows={2}
              value={query}
              aria-describedby="input-source-query-hint"
              onChange={(event) => setQuery(event.target.value)}
            />
          </div>
          <TextField
            label="Items path"
            name="source-items"
            value={itemsPath}
            onChange={setItemsPath}
            hint="JMESPath to the list of items in the answer; @ is the answer itself."
          />
          <TextField
            label="Value expression"
            name="source-value"
            value={valueExpr}
            onChange={setValueExpr}
            hint="JMESPath from an item to its option's value."
          />
          <TextField
            label="Label expression"
            name="source-label"
            value={labelExpr}
            onChange={setLabelExpr}
            hint="JMESPath from an item to the text shown; empty: the value."
          />
        </>
      )}
      <TextField
        label="Kept for (seconds)"
        name="source-ttl"
        type="number"
        min={0}
        max={86400}
        value={ttl}
        onChange={setTtl}
        required
      />
      {action.problem ? <ProblemAlert error={action.problem} title="The data source was refused" /> : null}
      {saved ? <p role="status">Saved.</p> : null}
      <button type="submit" className="primary" disabled={action.busy}>
        {source ? "Save the data source" : "Create the data source"}
      </button>
    </form>
  );
}
