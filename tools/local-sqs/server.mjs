// Local SQS-protocol server on ElasticMQ's port, with the platform's queue topology.
// Usage: node server.mjs --port 9324 --queues queues.json [--state state.json]
//   queues: CreateQueue inputs, DLQs first.
//   state:  where the queues and their messages are kept across restarts: written at most
//           every SNAPSHOT_MS while anything changes and on SIGTERM/SIGINT, read at start.
//           A kill -9 loses what changed in the last SNAPSHOT_MS at most; a message that
//           was in flight comes back visible (as after its visibility timeout).
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
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
server.listen(Number(values.port), values.hostname, () => {
  console.log(`local-aws-sqs listening on http://${values.hostname}:${values.port}`);
});
if (values.state) setInterval(() => dirty && snapshot(), SNAPSHOT_MS).unref();

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
