/** The queues: depths and each one's dead letters. */
import { api } from "../../api/client";
import type { QueueStats } from "../../api/types";
import { ListState } from "../../components/ListState";
import { DataTable } from "../../components/DataTable";
import { Link } from "../../router";
import { useResource } from "../../useResource";

function age(seconds: number | null): string {
  if (seconds === null) return "—";
  if (seconds < 120) return `${Math.round(seconds)} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  return `${Math.round(seconds / 3600)} h`;
}

export function QueuesPage() {
  const queues = useResource((signal) => api<QueueStats[]>("/queues", { signal }), []);
  return (
    <section aria-labelledby="queues-title">
      <h1 id="queues-title">Queues</h1>
      <ListState resource={queues} count={queues.data?.length ?? 0} what="The queues" empty="No queue." />
      {queues.data ? (
        <DataTable label="Queues" columns={["Queue", "Waiting", "In flight", "Dead letters", "Oldest dead letter"]}>
          {queues.data.map((queue) => (
            <tr key={queue.name}>
              <th scope="row">{queue.name}</th>
              <td>{queue.visible + queue.delayed}</td>
              <td>{queue.in_flight}</td>
              <td>
                {queue.dead_letters.depth > 0 ? (
                  <Link href={`/queues/${queue.name}`}>{queue.dead_letters.depth}</Link>
                ) : (
                  0
                )}
              </td>
              <td>{age(queue.dead_letters.oldest_age_seconds)}</td>
            </tr>
          ))}
        </DataTable>
      ) : null}
    </section>
  );
}
