import { STATUSES } from "../api/types";

export function StatusFilter({ value, onChange }: { value: string; onChange: (status: string) => void }) {
  return (
    <label>
      Status
      <select value={value} onChange={(event) => onChange(event.target.value)}>
        <option value="">Any</option>
        {STATUSES.map((status) => (
          <option key={status} value={status}>
            {status.replace("_", " ")}
          </option>
        ))}
      </select>
    </label>
  );
}
