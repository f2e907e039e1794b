/** A schedule's next few fire times, in UTC and in its time zone. */
import { api } from "../../api/client";
import type { Schedule, SchedulePreview } from "../../api/types";
import { ProblemAlert } from "../../components/ProblemAlert";
import { useResource } from "../../useResource";

export function NextFires({ schedule }: { schedule: Schedule }) {
  const preview = useResource(
    (signal) => api<SchedulePreview>(`/schedules/${schedule.id}/preview?count=5`, { signal }),
    [schedule.id],
  );
  if (preview.error) return <ProblemAlert error={preview.error} title="The next times could not be computed" />;
  return (
    <ol aria-label={`Next fires of ${schedule.name}`}>
      {preview.data?.fires.map((fire) => (
        <li key={fire.slot}>
          {new Date(fire.at).toLocaleString()} ({fire.local} {preview.data?.timezone})
        </li>
      ))}
    </ol>
  );
}
