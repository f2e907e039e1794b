// An admin creates an http data source, tests it (the raw answer's excerpt and the options
// mapped from it), changes its label expression and sees the test follow.
import { checkAccessibility, input, runScenario, screenshot, signIn } from "./lib.mjs";

await runScenario(async (page) => {
  await signIn(page, "admin");
  await page.getByRole("link", { name: "Data sources" }).click();
  const form = page.getByRole("form", { name: "New data source" });
  await form.getByRole("textbox", { name: "Slug" }).fill("console-regions");
  await form.getByRole("textbox", { name: "Name" }).fill("Console regions");
  await form.getByRole("combobox", { name: "Kind" }).selectOption("http");
  await form.getByRole("textbox", { name: "URL" }).fill(`${input.upstream}/regions`);
  await form.getByRole("textbox", { name: "Items path" }).fill("items");
  await form.getByRole("textbox", { name: "Value expression" }).fill("id");
  await form.getByRole("textbox", { name: "Label expression" }).fill("name");
  await form.getByRole("spinbutton", { name: "Kept for (seconds)" }).fill("60");
  await checkAccessibility(page, "the data sources with a new one");
  await form.getByRole("button", { name: "Create the data source" }).click();
  await page.getByRole("heading", { name: "Console regions", level: 1 }).waitFor();

  await page.getByRole("button", { name: "Test console-regions" }).click();
  await page.getByRole("status").filter({ hasText: "200: Europe, United States" }).waitFor();
  const options = page.getByRole("table", { name: "Options of console-regions" });
  await options.getByRole("row", { name: "eu Europe" }).waitFor();
  await page.getByText("Raw answer (excerpt)").click();
  await page.getByText('"United States"').waitFor();
  await checkAccessibility(page, "a data source tested");
  await screenshot(page, "data-source");

  await page.getByRole("textbox", { name: "Label expression" }).fill("id");
  await page.getByRole("button", { name: "Save the data source" }).click();
  await page.getByRole("status").filter({ hasText: "Saved." }).waitFor();
  await page.getByRole("button", { name: "Test console-regions" }).click();
  await page.getByRole("status").filter({ hasText: "200: eu, us" }).waitFor();
  return {};
});
