// An admin edits a panel: adds a select whose options come from a data source and depend on
// the region; a first save without options is refused and the error is shown on the field
// it names; a rename keeps what depends on the field, the new field is moved first; saved,
// the panel's form asks the new field's options with the region chosen.
import { checkAccessibility, eventually, input, optionValues, runScenario, screenshot, signIn } from "./lib.mjs";

await runScenario(async (page) => {
  await signIn(page, "admin");
  await page.getByRole("link", { name: input.panelTitle }).click();
  await page.getByRole("link", { name: "Edit this panel" }).click();
  await page.getByRole("heading", { name: `Edit ${input.panelTitle}`, level: 1 }).waitFor();

  await page.getByRole("button", { name: "Add a field" }).click();
  const added = page.getByRole("group", { name: /^Field 2/ });
  await added.getByRole("textbox", { name: "Name", exact: true }).fill("cluster");
  await added.getByRole("textbox", { name: "Label", exact: true }).fill("Cluster");
  await added.getByRole("textbox", { name: "Help text" }).fill("Where to scale.");
  await added.getByRole("combobox", { name: "Type" }).selectOption("select");
  await added.getByRole("radio", { name: "Listed here" }).check();
  await page.getByRole("button", { name: "Save the panel" }).click();
  // panel-svc refuses an empty list of options: said on the field's options.
  const options = added.getByRole("textbox", { name: "Options" });
  await eventually(async () => (await options.getAttribute("aria-invalid")) === "true", "the options marked invalid");
  await page.getByRole("alert").getByText("Request id:").waitFor();

  await added.getByRole("radio", { name: "From a data source" }).check();
  await added.getByRole("combobox", { name: "Data source" }).selectOption({ label: input.sourceLabel });
  await added.getByRole("group", { name: "Depends on" }).getByRole("checkbox", { name: "Region" }).check();
  // Renamed, the region stays depended on; then the cluster is moved first.
  const first = page.getByRole("group", { name: /^Field 1/ });
  await first.getByRole("textbox", { name: "Name", exact: true }).fill("zone");
  await first.getByRole("textbox", { name: "Name", exact: true }).fill("region");
  await added.getByRole("button", { name: "Move cluster up" }).click();
  await page.getByRole("group", { name: "Field 1: cluster" }).waitFor();
  await checkAccessibility(page, "the panel's editor");
  await screenshot(page, "panel-edit");
  await page.getByRole("button", { name: "Save the panel" }).click();
  await page.getByRole("status").filter({ hasText: "Saved." }).waitFor();

  await page.getByRole("link", { name: "Open its form" }).click();
  const region = page.getByRole("combobox", { name: /^Region/ });
  const cluster = page.getByRole("combobox", { name: /^Cluster/ });
  await eventually(async () => (await optionValues(region)).length === 2, "the regions");
  await region.selectOption("eu");
  await eventually(async () => (await optionValues(cluster)).join() === "eu-1,eu-2", "Europe's clusters");
  await region.selectOption("us");
  await eventually(async () => (await optionValues(cluster)).join() === "us-1", "the United States' clusters");
  return {};
});
