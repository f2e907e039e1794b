import type { ReactNode } from "react";

/** A table that scrolls on its own when it is wider than the screen (a phone, 200 % zoom),
 * rather than the whole page; reachable with the keyboard to scroll it. */
export function ScrollTable({ label, children }: { label: string; children: ReactNode }) {
  return (
    <div className="table-scroll" role="region" aria-label={label} tabIndex={0}>
      <table>{children}</table>
    </div>
  );
}
