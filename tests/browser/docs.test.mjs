// Swagger UI at /docs, driven in headless Chromium as a person would use it: the page renders
// the API's description; `GET /appointments/my` run with "Try it out" is refused (401) before
// authorizing; the Authorize dialog logs a freshly registered patient in through the OAuth2
// password flow at /login; the same call then answers 200.
//
//   API_URL=http://127.0.0.1:9000 node tests/browser/docs.test.mjs
//
// Needs Debian's Chromium at /usr/bin/chromium (or CHROMIUM) and playwright-core in
// tests/browser/node_modules: scripts/browser-deps.sh installs both. Never downloads a browser.
// On failure it saves a screenshot to a temporary folder and names it; SCREENSHOT_DIR, when set,
// receives a screenshot of every step as well. Exits non-zero on any failure.

import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";

process.env.PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD = "1";
const { chromium } = await import("playwright-core");

const STEP_TIMEOUT_MS = 30_000;
const TOTAL_TIMEOUT_MS = 180_000;
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

const api = (process.env.API_URL || "").replace(/\/+$/, "");
if (!api) {
  fail("API_URL is not set: give the base URL of a running API, e.g. http://127.0.0.1:9000");
}

function fail(message) {
  console.error(`docs.test: FAILED: ${message}`);
  console.error("browser: 0 passed, 1 failed");
  process.exit(1);
}

// The whole run is bounded, whatever hangs.
const watchdog = setTimeout(
  () => fail(`did not finish within ${TOTAL_TIMEOUT_MS / 1000} s`),
  TOTAL_TIMEOUT_MS,
);

/** A new patient, registered through the API, whose email and password the dialog takes. */
async function registerPatient() {
  const tag = randomBytes(6).toString("hex");
  const patient = {
    username: `docs-${tag}`,
    email: `docs-${tag}@example.com`,
    password: `browser test ${tag}`,
  };
  const response = await fetch(`${api}/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(patient),
    signal: AbortSignal.timeout(STEP_TIMEOUT_MS),
  });
  if (response.status !== 201) {
    throw new Error(`POST /register answered ${response.status}: ${await response.text()}`);
  }
  return patient;
}

/** Runs GET /appointments/my with "Execute" and returns the status that the page shows. */
async function execute(page, operation) {
  const answered = page.waitForResponse((r) =>
    ["fetch", "xhr"].includes(r.request().resourceType()),
  );
  await operation.locator("button.execute").click();
  const response = await answered;
  const called = `${response.request().method()} ${new URL(response.url()).pathname}`;
  if (!called.endsWith(" /appointments/my")) {
    throw new Error(
      `Execute on GET /appointments/my called ${called}: are openapi.json's operationIds unique?`,
    );
  }
  // The page shows the answer a moment after it arrives: give it up to 10 s to match.
  const cell = operation.locator(".live-responses-table tbody .response-col_status").first();
  await cell.waitFor();
  let shown = "";
  for (let tries = 0; tries < 50; tries += 1) {
    shown = (await cell.innerText()).trim();
    if (shown === String(response.status())) break;
    await page.waitForTimeout(200);
  }
  return { shown, network: response.status(), request: response.request() };
}

async function run(page, patient, shots) {
  const visit = await page.goto(`${api}/docs`, { waitUntil: "load" });
  if (visit?.status() !== 200) {
    throw new Error(`GET /docs answered ${visit?.status()}`);
  }
  await page.locator(".swagger-ui .info .title").filter({ hasText: "Clinic API" }).waitFor();
  const operation = page
    .locator(".opblock-get")
    .filter({ has: page.locator('.opblock-summary-path[data-path="/appointments/my"]') });
  await operation.waitFor();
  await shots("rendered");

  // Open the operation and run it without authorizing: the API must refuse it.
  await operation.locator(".opblock-summary-control").click();
  await operation.locator("button.try-out__btn").click();
  const before = await execute(page, operation);
  await shots("without-token");
  if (before.shown !== "401" || before.network !== 401) {
    throw new Error(`without a token the UI showed ${before.shown} (network ${before.network})`);
  }

  // Authorize through the password flow: the email is the username.
  await page.locator(".auth-wrapper button.authorize").click();
  const dialog = page.locator(".modal-ux");
  await dialog.waitFor();
  await dialog.locator("#oauth_username").fill(patient.email);
  await dialog.locator("#oauth_password").fill(patient.password);
  const loggedIn = page.waitForResponse((r) => new URL(r.url()).pathname.endsWith("/login"));
  await dialog.locator(".auth-btn-wrapper button.authorize").click();
  const login = await loggedIn;
  if (login.status() !== 200) {
    throw new Error(`the dialog's POST /login answered ${login.status()}: ${await login.text()}`);
  }
  // Authorized: the dialog offers to log out instead.
  await dialog.locator("button", { hasText: /^Logout$/ }).waitFor();
  await shots("authorized");
  await dialog.locator("button", { hasText: /^Close$/ }).click();
  await dialog.waitFor({ state: "detached" });

  // The same call, now with the token the dialog obtained.
  const after = await execute(page, operation);
  await operation.locator(".live-responses-table").scrollIntoViewIfNeeded();
  await shots("with-token");
  const authorization = (await after.request.allHeaders()).authorization || "";
  if (!authorization.startsWith("Bearer ")) {
    throw new Error("the authorized call carried no Bearer token");
  }
  if (after.shown !== "200" || after.network !== 200) {
    throw new Error(`after authorizing the UI showed ${after.shown} (network ${after.network})`);
  }

  // Swagger UI lists what it could not resolve in the description (a missing schema, say).
  const problems = page.locator(".swagger-ui .errors-wrapper");
  if ((await problems.count()) > 0) {
    throw new Error(`Swagger UI reported: ${(await problems.allInnerTexts()).join(" ")}`);
  }
  const violations = await page.evaluate(() => window.__policyViolations);
  if (violations.length > 0) {
    throw new Error(`the page's Content-Security-Policy blocked: ${violations.join("; ")}`);
  }
}

const profile = mkdtempSync(join(tmpdir(), "clinic-docs-chromium-"));
let context;
let page;
let shotDir = process.env.SCREENSHOT_DIR || "";
const shots = async (name) => {
  if (shotDir) {
    mkdirSync(shotDir, { recursive: true });
    await page.screenshot({ path: join(shotDir, `docs-${name}.png`), fullPage: false });
  }
};
const pageErrors = [];
try {
  const patient = await registerPatient();
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 1000 },
    timeout: STEP_TIMEOUT_MS,
  });
  page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  page.setDefaultNavigationTimeout(STEP_TIMEOUT_MS);
  page.on("pageerror", (error) => pageErrors.push(error.message));
  await page.addInitScript(() => {
    window.__policyViolations = [];
    document.addEventListener("securitypolicyviolation", (e) => {
      window.__policyViolations.push(`${e.violatedDirective} ${e.blockedURI}`);
    });
  });
  await run(page, patient, shots);
  if (pageErrors.length > 0) {
    throw new Error(`the page threw: ${pageErrors.join("; ")}`);
  }
  console.log("docs.test: Swagger UI rendered, 401 before and 200 after authorizing");
  console.log("browser: 1 passed, 0 failed");
} catch (error) {
  if (page) {
    shotDir ||= mkdtempSync(join(tmpdir(), "clinic-docs-failure-"));
    const path = join(shotDir, "docs-failure.png");
    await page.screenshot({ path, fullPage: true }).then(
      () => console.error(`docs.test: screenshot of the failure: ${path}`),
      () => {},
    );
  }
  if (pageErrors.length > 0) {
    console.error(`docs.test: the page threw: ${pageErrors.join("; ")}`);
  }
  await context?.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
  fail(error instanceof Error ? error.message : String(error));
}
await context.close();
rmSync(profile, { recursive: true, force: true });
clearTimeout(watchdog);
