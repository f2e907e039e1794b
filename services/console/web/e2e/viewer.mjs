// A viewer sees the panel's form read-only, with no submit button. The console is used
// with the keyboard alone (skip link first, focus visible) and fits a phone's width (as a
// laptop's at 200 % zoom).
import { checkAccessibility, fail, input, runScenario, screenshot, signIn } from "./lib.mjs";

async function fitsTheWidth(page, what) {
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
  if (overflow) fail(`${what} scrolls sideways at ${page.viewportSize().width} px`);
}

await runScenario(async (page) => {
  await signIn(page, "viewer");
  await page.keyboard.press("Tab");
  const skip = page.getByRole("link", { name: "Skip to content" });
  if (!(await skip.evaluate((link) => link === document.activeElement))) fail("the skip link is not first");
  const outline = await skip.evaluate((link) => getComputedStyle(link).outlineStyle);
  if (outline === "none") fail("the focused link shows no focus");
  // To the panel by keyboard: Tab until its link has focus, then Enter.
  const panel = page.getByRole("link", { name: input.panelTitle });
  for (let presses = 0; !(await panel.evaluate((link) => link === document.activeElement)); presses++) {
    if (presses > 30) fail("the panel's link cannot be reached with Tab");
    await page.keyboard.press("Tab");
  }
  await page.keyboard.press("Enter");
  await page.getByText("Your role can read this panel but not run it.").waitFor();
  if (!(await page.locator("main").evaluate((main) => main === document.activeElement))) {
    fail("focus did not move to the new page's content");
  }
  if (await page.getByRole("button", { name: "Submit" }).count()) fail("a viewer has a submit button");
  await checkAccessibility(page, "the form, read-only");

  await page.setViewportSize({ width: 640, height: 800 });
  await fitsTheWidth(page, "the form");
  await page.setViewportSize({ width: 390, height: 844 });
  await fitsTheWidth(page, "the form");
  await page.getByRole("link", { name: "Panels" }).click();
  await page.getByRole("heading", { name: "Panels", level: 1 }).waitFor();
  await fitsTheWidth(page, "the catalog");
  await checkAccessibility(page, "the catalog at phone width");
  await screenshot(page, "catalog-phone");
  await page.getByRole("link", { name: "Runs" }).click();
  await page.getByRole("heading", { name: "Runs", level: 1 }).waitFor();
  await fitsTheWidth(page, "the runs");
  return {};
});
