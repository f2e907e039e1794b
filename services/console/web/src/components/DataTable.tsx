import type { ReactNode } from "react";

/** A table under its column headings that scrolls on its own when it is wider than the
 * screen (a phone, 200 % zoom), rather than the whole page; focusable, to scroll it with
 * the keyboard. */
export function DataTable({ label, columns, children }: { label: string; columns: string[]; children: ReactNode }) {
  return (
    <div className="table-scroll" role="region" aria-label={label} tabIndex={0}>
      <table>
        <thead>
          <tr>
            {columns.map((column) => (
              <th scope="col" key={column}>
                {column}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>{children}</tbody>
      </table>
    </div>
  );
}
