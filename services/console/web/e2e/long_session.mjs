// A sign-in whose token lasts longer than a browser timer can wait (2^31 - 1 ms, 24.8 days)
// stays signed in: its end was armed with that delay, which fires at once.
import { fail, runScenario, signIn } from "./lib.mjs";

await runScenario(async (page) => {
  await signIn(page, "viewer");
  await page.waitForTimeout(1000);
  if (await page.getByRole("heading", { name: "Sign in to the operations console" }).count()) {
    fail("the session ended as soon as it began");
  }
  await page.getByRole("heading", { name: "Panels", level: 1 }).waitFor();
  return {};
});
