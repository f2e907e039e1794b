// A viewer sees the panel's form read-only, with no submit button.
import { checkAccessibility, fail, input, runScenario, screenshot, signIn } from "./lib.mjs";

await runScenario(async (page) => {
  await signIn(page, "viewer");
  await page.getByRole("link", { name: input.panelTitle }).click();
  await page.getByText("Your role can read this panel but not run it.").waitFor();
  if (await page.getByRole("button", { name: "Submit" }).count()) fail("a viewer has a submit button");
  await checkAccessibility(page, "the form, read-only");
  // Readable at phone width (and so at 200 % zoom of a small laptop).
  await page.setViewportSize({ width: 390, height: 844 });
  await page.getByRole("link", { name: "Panels" }).click();
  await page.getByRole("heading", { name: "Panels", level: 1 }).waitFor();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
  if (overflow) fail("the catalog scrolls sideways at phone width");
  await checkAccessibility(page, "the catalog at phone width");
  await screenshot(page, "catalog-phone");
  return {};
});
