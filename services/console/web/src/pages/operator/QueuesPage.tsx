/** The queues: depths and each one's dead letters. */
import { api } from "../../api/client";
import type { QueueStats } from "../../api/types";
import { ProblemAlert } from "../../components/ProblemAlert";
import { ScrollTable } from "../../components/ScrollTable";
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
      {queues.error ? <ProblemAlert error={queues.error} title="The queues could not be loaded" /> : null}
      {queues.data ? (
        <ScrollTable label="Queues">
          <thead>
            <tr>
              <th scope="col">Queue</th>
              <th scope="col">Waiting</th>
              <th scope="col">In flight</th>
              <th scope="col">Dead letters</th>
              <th scope="col">Oldest dead letter</th>
            </tr>
          </thead>
          <tbody>
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
          </tbody>
        </ScrollTable>
      ) : null}
    </section>
  );
}
