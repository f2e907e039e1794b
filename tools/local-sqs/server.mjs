// Local SQS-protocol server on ElasticMQ's port, with the platform's queue topology.
// Usage: node server.mjs --port 9324 --queues queues.json [--state state.json]
//   queues: CreateQueue inputs, DLQs first.
//   Only processes of this server's own user may connect (see ownedByThisUser).
//   state:  where the queues and their messages are kept across restarts: written at most
//           every SNAPSHOT_MS while anything changes and on SIGTERM/SIGINT, read at start.
//           A kill -9 loses what changed in the last SNAPSHOT_MS at most; a message that
//           was in flight comes back visible (as after its visibility timeout).
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { isIPv4 } from "node:net";
import { parseArgs } from "node:util";
import { createRequestHandler } from "local-aws-sqs";

const SNAPSHOT_MS = 200;
// Requests that change nothing kept in the state.
const READ_ONLY = new Set(["GetQueueUrl", "GetQueueAttributes", "ListQueues", "ListQueueTags"]);

const { values } = parseArgs({
  options: {
    port: { type: "string", default: "9324" },
    hostname: { type: "string", default: "127.0.0.1" },
    queues: { type: "string" },
    state: { type: "string" },
  },
});

const topology = values.queues ? JSON.parse(readFileSync(values.queues, "utf8")) : [];
const saved = values.state && existsSync(values.state)
  ? JSON.parse(readFileSync(values.state, "utf8"))
  : { queues: [], messages: {} };
const known = new Set(topology.map((queue) => queue.QueueName));
const { service, requestHandler } = createRequestHandler({
  port: Number(values.port),
  hostname: values.hostname,
  accountId: "000000000000",
  region: "us-east-1",
  emulateQueueCreationLifecycle: false,
  queues: [...topology, ...saved.queues.filter((queue) => !known.has(queue.QueueName))],
});
restore(saved.messages);

let dirty = false;
const server = createServer((request, response) => {
  const action = request.headers["x-amz-target"]?.split(".").pop() ?? "";
  if (!READ_ONLY.has(action)) dirty = true;
  requestHandler(request, response);
});
server.on("connection", (socket) => {
  if (!ownedByThisUser(socket)) socket.destroy();
});
server.listen(Number(values.port), values.hostname, () => {
  console.log(`local-aws-sqs listening on http://${values.hostname}:${values.port}`);
});
if (values.state) setInterval(() => dirty && snapshot(), SNAPSHOT_MS).unref();

// SQS takes no credential here, and commands the worker runs may reach this port: they run
// under users of their own (the worker's sandbox), the platform's services under this one.
// A connection is kept only when the socket at its other end belongs to this server's user,
// as the kernel's table of TCP sockets says (where there is none, as off Linux, all are).
function ownedByThisUser(socket) {
  const client = procAddress(socket.remoteAddress, socket.remotePort);
  const server = procAddress(socket.localAddress, socket.localPort);
  let tables = 0;
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text;
    try {
      text = readFileSync(table, "utf8");
    } catch {
      continue;
    }
    tables += 1;
    for (const line of text.split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      // ESTABLISHED only: a TIME_WAIT row of the same addresses (loopback reuses them) has uid 0.
      if (fields[1] === client && fields[2] === server && fields[3] === "01") {
        return Number(fields[7]) === process.getuid();
      }
    }
  }
  return tables === 0;
}

// An address as /proc/net/tcp{,6} writes it: each 32-bit word of the address in the
// machine's (little-endian) byte order, in hex, then the port.
function procAddress(address, port) {
  const bytes = isIPv4(address) ? address.split(".").map(Number) : ipv6Bytes(address);
  const words = [];
  for (let at = 0; at < bytes.length; at += 4) words.push(...bytes.slice(at, at + 4).reverse());
  const hex = (values, width) => values.map((value) => value.toString(16).padStart(width, "0")).join("");
  return `${hex(words, 2)}:${hex([port], 4)}`.toUpperCase();
}

function ipv6Bytes(address) {
  const mapped = address.match(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/i);
  if (mapped) return [...Array(10).fill(0), 0xff, 0xff, ...mapped[1].split(".").map(Number)];
  const [head, tail = ""] = address.split("::");
  const groups = (part) => (part ? part.split(":").map((group) => parseInt(group, 16)) : []);
  const known = [...groups(head), ...groups(tail)];
  const all = [...groups(head), ...Array(8 - known.length).fill(0), ...groups(tail)];
  return all.flatMap((group) => [group >> 8, group & 0xff]);
}

function createQueueInput(queue) {
  const attributes = {
    VisibilityTimeout: String(queue.VisibilityTimeout),
    MessageRetentionPeriod: String(queue.MessageRetentionPeriod),
    DelaySeconds: String(queue.DelaySeconds),
  };
  if (queue.RedrivePolicy) attributes.RedrivePolicy = JSON.stringify(queue.RedrivePolicy);
  return { QueueName: queue.QueueName, Attributes: attributes };
}

function snapshot() {
  dirty = false;
  // Queues without a redrive policy (the DLQs) first: a queue's DLQ must exist before it.
  const queues = [...service.Queues].sort((a, b) => Boolean(a.RedrivePolicy) - Boolean(b.RedrivePolicy));
  const state = {
    queues: queues.map(createQueueInput),
    messages: Object.fromEntries(
      queues.map((queue) => [
        queue.QueueName,
        queue.records.map(({ record }) => ({
          MessageId: record.MessageId,
          MessageBody: record.MessageBody,
          MessageAttributes: record.MessageAttributes,
          attributes: record.attributes,
        })),
      ]),
    ),
  };
  writeFileSync(`${values.state}.tmp`, JSON.stringify(state));
  renameSync(`${values.state}.tmp`, values.state);
}

function restore(messages) {
  for (const [name, records] of Object.entries(messages)) {
    const queue = service.Queues.find((candidate) => candidate.QueueName === name);
    for (const saved of queue ? records : []) {
      const { record } = queue.setRecord(
        { MessageBody: saved.MessageBody, MessageAttributes: saved.MessageAttributes, DelaySeconds: 0 },
        saved.MessageId,
      );
      record.attributes = { ...saved.attributes };
    }
  }
}

// Long polls hold their connections for up to 20 s: close them rather than wait.
const stop = () => {
  if (values.state) snapshot();
  server.close(() => process.exit(0));
  server.closeAllConnections();
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
