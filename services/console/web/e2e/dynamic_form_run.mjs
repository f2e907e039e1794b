// Sign in (development), open the catalog, fill a panel whose second select depends on the
// first (its options change when the first changes), keep the half-filled form across an
// expired session, submit, watch the live log lines appear, see `succeeded`.
import {
  checkAccessibility,
  eventually,
  fail,
  input,
  optionValues,
  runScenario,
  screenshot,
  shownLog,
  signIn,
} from "./lib.mjs";

await runScenario(async (page) => {
  await signIn(page, "operator");
  await checkAccessibility(page, "the catalog");
  await screenshot(page, "catalog");
  await page.getByRole("link", { name: input.panelTitle }).click();

  const region = page.getByRole("combobox", { name: /^Region/ });
  const cluster = page.getByRole("combobox", { name: /^Cluster/ });
  await region.waitFor();
  await eventually(async () => (await optionValues(region)).length === 2, "the regions");
  if (!(await cluster.isDisabled())) fail("the cluster is chosen before the region");
  await region.selectOption("eu");
  await eventually(async () => (await optionValues(cluster)).join() === "eu-1,eu-2", "Europe's clusters");
  await cluster.selectOption("eu-2");

  // The session ends (the next API call is refused): the sign-in comes back to the same
  // form with what was filled in.
  await page.route("**/api/v1/**", (route) => route.fulfill({ status: 401, json: { detail: "expired" } }), {
    times: 1,
  });
  await region.selectOption("us");
  await page.getByText("Your session has ended").waitFor();
  await checkAccessibility(page, "the sign-in after expiry");
  await screenshot(page, "sign-in-expired");
  await page.getByRole("button", { name: "Sign in as operator" }).click();
  await eventually(async () => (await region.inputValue()) === "us", "the draft's region after signing in");
  await eventually(async () => (await optionValues(cluster)).join() === "us-1", "the United States' clusters");
  await cluster.selectOption("us-1");
  await checkAccessibility(page, "the panel's form");
  await screenshot(page, "panel-form");

  await page.getByRole("button", { name: "Submit" }).click();
  await page.waitForURL(/\/submissions\/[0-9a-f-]+$/);
  const submission = page.url().split("/").pop();
  await eventually(async () => (await shownLog(page)).length > 0, "the first log line");
  const early = await page.getByTestId("status").textContent();
  await eventually(async () => (await page.getByTestId("status").textContent()) === "succeeded", "succeeded");
  await page.getByText("Complete").waitFor();
  const lines = await shownLog(page);
  await checkAccessibility(page, "the submission");
  await screenshot(page, "submission");

  await page.getByRole("link", { name: "Runs" }).click();
  await page.getByRole("heading", { name: "Runs", level: 1 }).waitFor();
  await page.getByRole("cell", { name: "scale" }).first().waitFor();
  await checkAccessibility(page, "the runs");
  await screenshot(page, "runs");
  await page.getByRole("link", { name: "My submissions" }).click();
  await page.getByRole("heading", { name: "My submissions", level: 1 }).waitFor();
  await page.getByRole("cell", { name: "succeeded" }).first().waitFor();
  await checkAccessibility(page, "my submissions");

  return { lines, statusWhileStreaming: early, submission };
});
