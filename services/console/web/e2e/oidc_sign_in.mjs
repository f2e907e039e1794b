// Production sign-in: OpenID Connect, authorization code with PKCE, against the test's
// provider; the person comes back to the page they opened; the token is kept in memory only.
// Signing out ends the provider's session too, and the provider sends the browser back.
import { checkAccessibility, fail, input, runScenario, screenshot } from "./lib.mjs";

await runScenario(async (page) => {
  await page.goto(`${input.console}/submissions`);
  await page.getByRole("heading", { name: "Sign in to the operations console" }).waitFor();
  await checkAccessibility(page, "the sign-in");
  await screenshot(page, "sign-in");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "My submissions", level: 1 }).waitFor();
  if (new URL(page.url()).pathname !== "/submissions") fail(`came back to ${page.url()}`);
  const who = await page.locator(".who").textContent();
  const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }));
  if (stored.includes(input.accessToken)) fail("the access token was written to the browser's storage");
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.waitForURL(`${input.console}/`);
  await page.getByRole("heading", { name: "Sign in to the operations console" }).waitFor();
  return { who };
});
