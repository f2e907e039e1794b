/**
 * An execution's live log over Server-Sent Events, read with fetch (EventSource cannot send
 * the Authorization header). Each line's seq is its event id: after a dropped connection the
 * stream is asked again with Last-Event-ID, so it resumes after the last line shown; a line
 * seen already is skipped all the same. The stream's "end" event closes it for good.
 */
import { authorization, problemOf } from "./client";
import type { LogLine } from "./types";

export type StreamState = "connecting" | "live" | "reconnecting" | "waiting" | "ended" | "failed";

export interface LogStreamHandlers {
  onLines: (lines: LogLine[]) => void;
  onState: (state: StreamState, detail?: string) => void;
  onEnd: (end: { status: string; exit_code: number | null }) => void;
}

const FIRST_RETRY_MS = 250;
const LAST_RETRY_MS = 5000;

interface SseEvent {
  id?: string;
  event: string;
  data: string;
}

/** Splits the text received so far into complete events; returns them and the rest. */
export function parseEvents(buffer: string): [SseEvent[], string] {
  const events: SseEvent[] = [];
  const blocks = buffer.replace(/\r\n?/g, "\n").split("\n\n");
  const rest = blocks.pop() ?? "";
  for (const block of blocks) {
    const event: SseEvent = { event: "message", data: "" };
    const data: string[] = [];
    for (const line of block.split("\n")) {
      if (!line || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon === -1 ? line : line.slice(0, colon);
      const value = colon === -1 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "data") data.push(value);
      else if (field === "event") event.event = value;
      else if (field === "id") event.id = value;
    }
    event.data = data.join("\n");
    if (data.length || event.id !== undefined) events.push(event);
  }
  return [events, rest];
}

/** Follows the log until it ends or the returned function is called. */
export function followLog(executionId: string, handlers: LogStreamHandlers): () => void {
  const stop = new AbortController();
  let lastSeq = -1;
  let retryMs = FIRST_RETRY_MS;

  async function readOnce(): Promise<"ended" | "dropped"> {
    const headers: Record<string, string> = { Accept: "text/event-stream", ...authorization() };
    if (lastSeq >= 0) headers["Last-Event-ID"] = String(lastSeq);
    const response = await fetch(`/api/v1/executions/${executionId}/logs/stream`, {
      headers,
      signal: stop.signal,
      cache: "no-store",
    });
    if (!response.ok || !response.body) throw await problemOf(response);
    handlers.onState("live");
    retryMs = FIRST_RETRY_MS;
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return "dropped";
      let events: SseEvent[];
      [events, buffer] = parseEvents(buffer + value);
      const fresh: LogLine[] = [];
      for (const event of events) {
        if (event.event === "log") {
          const line = JSON.parse(event.data) as LogLine;
          if (line.seq > lastSeq) {
            fresh.push(line);
            lastSeq = line.seq;
          }
        } else if (event.event === "end") {
          if (fresh.length) handlers.onLines(fresh);
          handlers.onEnd(JSON.parse(event.data) as { status: string; exit_code: number | null });
          return "ended";
        }
      }
      if (fresh.length) handlers.onLines(fresh);
    }
  }

  async function run(): Promise<void> {
    handlers.onState("connecting");
    while (!stop.signal.aborted) {
      // Why the log may not be opened yet (429: the person holds as many as one may), if so.
      let refusedFor: string | undefined;
      try {
        if ((await readOnce()) === "ended") {
          handlers.onState("ended");
          return;
        }
      } catch (error) {
        if (stop.signal.aborted) return;
        const status = (error as { status?: number }).status;
        if (status === 429) {
          refusedFor = (error as Error).message;
        } else if (status !== undefined && status >= 400 && status < 500) {
          handlers.onState("failed", (error as Error).message);
          return;
        }
      }
      if (stop.signal.aborted) return;
      if (refusedFor === undefined) handlers.onState("reconnecting");
      else handlers.onState("waiting", refusedFor);
      await new Promise((resolve) => window.setTimeout(resolve, retryMs));
      retryMs = Math.min(retryMs * 2, LAST_RETRY_MS);
    }
  }

  void run();
  return () => stop.abort();
}
