/** An execution's log, live: lines as they arrive, the connection's state announced. */
import { useEffect, useState } from "react";
import { followLog, type StreamState } from "../api/logStream";
import type { LogLine } from "../api/types";
import { LogMessage } from "./LogMessage";

const STATE_TEXT: Record<StreamState, string> = {
  connecting: "Connecting to the log…",
  live: "Live",
  reconnecting: "Connection lost; reconnecting…",
  waiting: "Waiting for a free log stream",
  ended: "Complete",
  failed: "The log could not be read",
};

export function LogView({ executionId, onEnd }: { executionId: string; onEnd: () => void }) {
  const [lines, setLines] = useState<LogLine[]>([]);
  const [state, setState] = useState<StreamState>("connecting");
  const [detail, setDetail] = useState<string>();

  useEffect(() => {
    setLines([]);
    return followLog(executionId, {
      onLines: (fresh) => setLines((shown) => [...shown, ...fresh]),
      onState: (next, why) => {
        setState(next);
        setDetail(why);
      },
      onEnd,
    });
    // onEnd is the page's refresh; a new one must not restart the stream
  }, [executionId]);

  return (
    <section aria-labelledby="log-title" className="log">
      <h2 id="log-title">Log</h2>
      <p className={`stream-state stream-${state}`} role="status" data-testid="stream-state">
        {STATE_TEXT[state]}
        {detail ? `: ${detail}` : null}
      </p>
      {lines.length === 0 && state === "ended" ? <p className="empty">No output.</p> : null}
      <ol className="log-lines" data-testid="log-lines" tabIndex={0} aria-label="Log lines">
        {lines.map((line) => (
          <li key={line.seq} data-seq={line.seq} className={`log-${line.stream}`}>
            <LogMessage text={line.message} />
          </li>
        ))}
      </ol>
    </section>
  );
}
