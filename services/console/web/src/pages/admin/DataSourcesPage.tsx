/** Data sources, each tested on demand: the upstream's status, an excerpt and the options. */
import { useState } from "react";
import { api, type Page } from "../../api/client";
import type { Option } from "../../api/types";
import { ListState } from "../../components/ListState";
import { ProblemAlert } from "../../components/ProblemAlert";
import { DataTable } from "../../components/DataTable";
import { useAction } from "../../useAction";
import { useResource } from "../../useResource";

interface DataSource {
  id: string;
  slug: string;
  name: string;
  source_type: string;
  endpoint_url: string | null;
}

interface SourceTest {
  status_code: number | null;
  options: Option[];
  error: string | null;
}

function SourceRow({ source }: { source: DataSource }) {
  const [result, setResult] = useState<SourceTest>();
  const action = useAction();
  const test = () =>
    action.run(async () => {
      setResult(await api<SourceTest>(`/datasources/${source.id}/test`, { method: "POST", body: { values: {} } }));
    });
  return (
    <tr>
      <th scope="row">
        {source.name} <code>{source.slug}</code>
      </th>
      <td>{source.source_type}</td>
      <td>
        <code>{source.endpoint_url ?? "—"}</code>
      </td>
      <td>
        <button type="button" disabled={action.busy} onClick={() => void test()}>
          Test {source.slug}
        </button>
        {action.problem ? <ProblemAlert error={action.problem} /> : null}
        {result ? (
          <p role="status">
            {result.error
              ? `Failed: ${result.error}`
              : `${result.status_code ?? "static"}: ${result.options.map((option) => option.label).join(", ") || "no option"}`}
          </p>
        ) : null}
      </td>
    </tr>
  );
}

export function DataSourcesPage() {
  const sources = useResource((signal) => api<Page<DataSource>>("/datasources?limit=200", { signal }), []);
  const items = sources.data?.items ?? [];
  return (
    <section aria-labelledby="sources-title">
      <h1 id="sources-title">Data sources</h1>
      <ListState resource={sources} count={items.length} what="The data sources" empty="No data source yet." />
      {items.length ? (
        <DataTable label="Data sources" columns={["Source", "Kind", "Endpoint", "Test"]}>
          {items.map((source) => (
            <SourceRow key={source.id} source={source} />
          ))}
        </DataTable>
      ) : null}
    </section>
  );
}
