// What every browser scenario shares. A scenario is a node script run by the pytest suite
// (tests/console/test_browser.py), which starts the platform and the console and passes
// what the scenario needs in SCENARIO_INPUT (JSON). The scenario prints one line
// `RESULT <json>` for the test to check against the services, and exits non-zero on failure.
import { AxeBuilder } from "@axe-core/playwright";
import { chromium } from "playwright-core";
import path from "node:path";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
export const input = JSON.parse(process.env.SCENARIO_INPUT ?? "{}");
const shots = process.env.SCREENSHOTS_DIR;
const TIMEOUT_MS = 20_000;

export function fail(message) {
  throw new Error(message);
}

/** The console's own problems a person would see in the devtools: none is allowed. */
function watchConsole(page, problems) {
  page.on("console", (message) => {
    // Chromium reports each HTTP error status as a console error; the app shows those itself
    // (a 401, a 422): only the app's own errors count.
    if (message.type() === "error" && !message.text().startsWith("Failed to load resource")) {
      problems.push(`console error: ${message.text()}`);
    }
  });
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
}

/** No serious or critical accessibility violation on the page as it is now. */
export async function checkAccessibility(page, name) {
  const results = await new AxeBuilder({ page }).analyze();
  const bad = results.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  if (bad.length) {
    const lines = bad.map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target).join(", ")}`);
    fail(`accessibility violations on ${name}:\n${lines.join("\n")}`);
  }
}

/** A screenshot for the README's folder, when the suite is asked for them. */
export async function screenshot(page, name) {
  if (shots) await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
}

/** Opens the console signed in with ``role`` (the development sign-in the address asks for). */
export async function signIn(page, role) {
  await page.goto(`${input.console}/#dev-sign-in=${role}`);
  await page.getByRole("heading", { name: "Panels", level: 1 }).waitFor();
}

/** The values a select offers now. */
export async function optionValues(select) {
  return select.locator("option").evaluateAll((options) => options.map((o) => o.value).filter(Boolean));
}

/** Waits until ``probe`` returns something truthy (polled). */
export async function eventually(probe, what, timeoutMs = TIMEOUT_MS) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The log lines shown, as [seq, text]. */
export async function shownLog(page) {
  return page
    .getByTestId("log-lines")
    .locator("li")
    .evaluateAll((items) => items.map((li) => [Number(li.dataset.seq), li.textContent]));
}

export async function runScenario(scenario) {
  // No sandbox: the suite runs as root (CI), where Chromium refuses to start with one.
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  context.setDefaultTimeout(TIMEOUT_MS);
  const page = await context.newPage();
  const problems = [];
  watchConsole(page, problems);
  let code = 0;
  try {
    const result = await scenario(page, context);
    if (problems.length) fail(problems.join("\n"));
    console.log(`RESULT ${JSON.stringify(result ?? {})}`);
  } catch (error) {
    code = 1;
    console.error(error?.stack ?? String(error));
    if (problems.length) console.error(problems.join("\n"));
    if (process.env.FAILURE_DIR) {
      await page
        .screenshot({ path: path.join(process.env.FAILURE_DIR, "failure.png"), fullPage: true })
        .catch(() => {});
    }
  } finally {
    await browser.close();
  }
  process.exit(code);
}
