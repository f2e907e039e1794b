/** Schedules: when each fires next (the next few times on demand), paused or resumed; a new
 * one (admins). */
import { useState } from "react";
import { api, type Page } from "../../api/client";
import type { Schedule } from "../../api/types";
import { currentSession, hasRole } from "../../auth/session";
import { ListState } from "../../components/ListState";
import { ProblemAlert } from "../../components/ProblemAlert";
import { DataTable } from "../../components/DataTable";
import { useAction } from "../../useAction";
import { useResource } from "../../useResource";
import { NewSchedule } from "./NewSchedule";
import { NextFires } from "./NextFires";

function cadence(schedule: Schedule): string {
  if (schedule.cron) return `${schedule.cron} (${schedule.timezone})`;
  return `every ${schedule.interval_seconds} s`;
}

function ScheduleRow({ schedule, changed }: { schedule: Schedule; changed: () => void }) {
  const [open, setOpen] = useState(false);
  const action = useAction();
  const admin = hasRole(currentSession(), "admin");
  const toggle = () =>
    action.run(async () => {
      await api(`/schedules/${schedule.id}/${schedule.is_paused ? "resume" : "pause"}`, { method: "POST" });
      changed();
    });
  return (
    <tr>
      <th scope="row">{schedule.name}</th>
      <td>{schedule.template_slug}</td>
      <td>{cadence(schedule)}</td>
      <td>
        {schedule.is_paused ? `paused${schedule.paused_reason ? `: ${schedule.paused_reason}` : ""}` : null}
        {!schedule.is_paused && schedule.next_slot_at ? new Date(schedule.next_slot_at).toLocaleString() : null}
        <button type="button" className="link" aria-expanded={open} onClick={() => setOpen(!open)}>
          {open ? "Hide the next times" : "Next times"}
        </button>
        {open ? <NextFires schedule={schedule} /> : null}
      </td>
      <td>
        {action.problem ? <ProblemAlert error={action.problem} /> : null}
        {admin ? (
          <button type="button" disabled={action.busy} onClick={() => void toggle()}>
            {schedule.is_paused ? "Resume" : "Pause"}
          </button>
        ) : null}
      </td>
    </tr>
  );
}

export function SchedulesPage() {
  const schedules = useResource((signal) => api<Page<Schedule>>("/schedules?limit=200", { signal }), []);
  const items = schedules.data?.items ?? [];
  return (
    <section aria-labelledby="schedules-title">
      <h1 id="schedules-title">Schedules</h1>
      <ListState resource={schedules} count={items.length} what="The schedules" empty="No schedule yet." />
      {items.length ? (
        <DataTable label="Schedules" columns={["Schedule", "Template", "When", "Next", "Actions"]}>
          {items.map((schedule) => (
            <ScheduleRow key={schedule.id} schedule={schedule} changed={schedules.reload} />
          ))}
        </DataTable>
      ) : null}
      {hasRole(currentSession(), "admin") ? <NewSchedule created={schedules.reload} /> : null}
    </section>
  );
}
