// Local SQS-protocol server on ElasticMQ's port, with the platform's queue topology.
// Usage: node server.mjs --port 9324 --queues queues.json   (queues: CreateQueue inputs, DLQs first)
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { createSqsServer } from "local-aws-sqs";

const { values } = parseArgs({
  options: {
    port: { type: "string", default: "9324" },
    hostname: { type: "string", default: "127.0.0.1" },
    queues: { type: "string" },
  },
});

const queues = values.queues ? JSON.parse(readFileSync(values.queues, "utf8")) : [];
const server = await createSqsServer({
  port: Number(values.port),
  hostname: values.hostname,
  accountId: "000000000000",
  region: "us-east-1",
  emulateQueueCreationLifecycle: false,
  queues,
});
console.log(`local-aws-sqs listening on http://${values.hostname}:${values.port} with ${queues.length} queues`);

// Long polls hold their connections for up to 20 s: close them rather than wait.
const stop = () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
