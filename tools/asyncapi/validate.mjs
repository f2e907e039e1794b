// Validates an AsyncAPI document with @asyncapi/parser: prints every diagnostic and exits
// 1 if any is an error (severity 0), 0 otherwise. Usage: node validate.mjs FILE
import { readFile } from "node:fs/promises";
import { Parser } from "@asyncapi/parser";

const [file] = process.argv.slice(2);
if (!file) {
  console.error("usage: node validate.mjs FILE");
  process.exit(2);
}
const parser = new Parser();
const { document, diagnostics } = await parser.parse(await readFile(file, "utf8"));
for (const diagnostic of diagnostics) {
  const where = diagnostic.path.join("/");
  console.log(`${["error", "warning", "info", "hint"][diagnostic.severity]} ${diagnostic.code} ${where}: ${diagnostic.message}`);
}
const errors = diagnostics.filter((diagnostic) => diagnostic.severity === 0);
if (!document || errors.length > 0) {
  process.exit(1);
}
console.log(`valid: ${document.channels().length} channels, ${document.messages().length} messages`);
