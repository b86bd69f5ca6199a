// The console in a real Chromium (Debian's /usr/bin/chromium, driven by playwright-core),
// against a running Portcullis. Driven by crates/portcullis-server/tests/console/, which
// starts the server, seeds the accounts and passes them in the environment:
//
//   BASE, ORG_ID, PROJECT_ID, RECEIVER (conformance/webhook-receiver.mjs), ADMIN_EMAIL, MEMBER_EMAIL, PASSWORD, OUT (screenshot folder), TAG (file
//   name prefix), FULL=1 (every page; otherwise the main path only), CHROMIUM (binary).
//
// Every page visited is checked with axe-core (no serious or critical violation) and
// saved as a PNG. Prints one JSON line of results; exits non-zero on the first failure.

import { chromium } from "playwright-core";
import { readFileSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is required`);
  return v;
};
const BASE = env("BASE");
const ORG = env("ORG_ID");
const PROJECT = env("PROJECT_ID");
const RECEIVER = env("RECEIVER");
const ADMIN = env("ADMIN_EMAIL");
const MEMBER = env("MEMBER_EMAIL");
const PASSWORD = env("PASSWORD");
const OUT = env("OUT");
const TAG = process.env.TAG || "console";
const FULL = process.env.FULL === "1";
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
mkdirSync(OUT, { recursive: true });

const results = { pages: [], axe: {}, checks: [] };
const profiles = [];

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
  results.checks.push(what);
}

async function browser() {
  const dir = mkdtempSync(join(tmpdir(), "portcullis-chromium-"));
  profiles.push(dir);
  return chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    viewport: { width: 1280, height: 900 },
  });
}

// axe on the page as it is, then a full-page PNG.
async function visit(page, name) {
  await page.evaluate(AXE);
  const found = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ["violations"] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length, help: v.help }));
  });
  const bad = found.filter((v) => v.impact === "serious" || v.impact === "critical");
  results.axe[name] = { violations: found.length, serious_or_critical: bad.length, ids: found.map((v) => v.id) };
  await page.screenshot({ path: join(OUT, `${TAG}-${name}.png`), fullPage: true });
  results.pages.push(name);
  if (bad.length) throw new Error(`axe: ${name}: ${JSON.stringify(bad)}`);
}

async function signIn(page, email, password) {
  await page.fill("#email", email);
  await page.fill("#password", password);
  await Promise.all([page.waitForNavigation(), page.click("form[action='/console/login'] button[type=submit]")]);
}

const admin = await browser();
const member = await browser();
try {
  const a = admin.pages()[0] || (await admin.newPage());
  a.on("dialog", (d) => d.accept());

  // A browser at the root lands on the console's sign-in page; keyboard users get a skip link first.
  const first = await a.goto(BASE + "/");
  check(new URL(a.url()).pathname === "/console/login", "GET / sends a browser to the console sign-in");
  const csp = first.headers()["content-security-policy"] || "";
  check(csp.includes("script-src 'self'") && !csp.includes("unsafe-inline") && csp.includes("frame-ancestors 'none'"), "CSP without unsafe-inline, frame-ancestors none");
  await a.keyboard.press("Tab");
  check((await a.evaluate(() => document.activeElement && document.activeElement.textContent)) === "Skip to content", "first Tab reaches the skip link");
  await visit(a, "sign-in");

  await signIn(a, ADMIN, PASSWORD);
  check(new URL(a.url()).pathname.startsWith("/console/orgs/"), "signed-in admin lands on an org page");
  await a.goto(`${BASE}/console/orgs/${ORG}/members`);
  await visit(a, "members");

  // Invite the member; the link is shown once.
  await a.fill("#invite-email", MEMBER);
  await a.selectOption("#invite-role", "member");
  await Promise.all([a.waitForNavigation(), a.click("form[action$='/invitations'] button[type=submit]")]);
  const link = await a.inputValue("#invite-link");
  check(link.includes("/invitations/accept#token=inv_"), "invitation link shown with its token");
  await visit(a, "members-invited");

  // The invited person opens the link in another browser: sign in first, then accept.
  const b = member.pages()[0] || (await member.newPage());
  await b.goto(link);
  check(new URL(b.url()).pathname === "/console/login", "the invitation link asks a stranger to sign in");
  await signIn(b, MEMBER, PASSWORD);
  check(new URL(b.url()).pathname === "/invitations/accept", "sign-in returns to the invitation");
  check((await b.inputValue("#invitation-token")).startsWith("inv_"), "the token survived the sign-in detour");
  await visit(b, "accept-invitation");
  await Promise.all([b.waitForNavigation(), b.click("form[action='/invitations/accept'] button[type=submit]")]);
  check(b.url().includes(`/console/orgs/${ORG}/members`), "accepting shows the org");
  check((await b.textContent(".notice")).includes("Invitation accepted"), "accepted notice shown");

  // A member (not admin) asking for the sessions page gets the refusal page, not a 500.
  const refused = await b.goto(`${BASE}/console/orgs/${ORG}/sessions`);
  check(refused.status() === 403, `member refused with 403 (got ${refused.status()})`);
  check((await b.textContent("h1")).includes("cannot do this"), "refusal page title");
  check((await b.textContent("main")).includes("What to ask for"), "refusal page says what to ask for");
  await visit(b, "refusal");

  // A user's failed sign-in shows a reference; support pastes it into the audit log.
  const c = await browser();
  let reference;
  try {
    const p = c.pages()[0] || (await c.newPage());
    await p.goto(BASE + "/console/login");
    await signIn(p, MEMBER, "not the password");
    reference = (await p.textContent("#correlation-id")).trim();
    check(reference.length > 0, "a failed sign-in shows its correlation id");
    await visit(p, "sign-in-error");
  } finally {
    await c.close();
  }
  await a.goto(`${BASE}/console/orgs/${ORG}/audit`);
  await a.fill("#f-correlation", reference);
  await Promise.all([a.waitForNavigation(), a.click("form[action$='/audit'] button[type=submit]")]);
  const rows = await a.$$eval("#events-table tbody tr", (trs) => trs.map((tr) => tr.textContent));
  check(rows.length >= 1 && rows.every((r) => r.includes(reference)), "audit filtered by the correlation id shows only its events");
  check(rows.some((r) => r.includes("login.failed")), "the failed sign-in is in the audit log");
  await visit(a, "audit-filtered");

  // Revoke the member's sessions; their browser is signed out on its next navigation.
  await a.goto(`${BASE}/console/orgs/${ORG}/sessions`);
  await visit(a, "sessions");
  const revokeAll = `form[action$='/sessions/revoke'][data-confirm*='${MEMBER}'] button`;
  await Promise.all([a.waitForNavigation(), a.click(revokeAll)]);
  check((await a.textContent(".notice")).includes("revoked"), "revocation confirmed");
  await b.goto(`${BASE}/console/orgs/${ORG}/members`);
  check(new URL(b.url()).pathname === "/console/login", "the revoked member is sent to sign in");
  check((await b.textContent("main")).includes("Your session has ended"), "the sign-in page says the session ended");
  await visit(b, "signed-out");

  // A webhook: created with its secret shown once, a test sent to the local receiver, the
  // delivery seen succeeding in the page (the receiver verifies the signature).
  const hooks = `${BASE}/console/orgs/${ORG}/projects/${PROJECT}/webhooks`;
  await a.goto(`${BASE}/console/orgs/${ORG}/projects`);
  await Promise.all([a.waitForNavigation(), a.click(`a[href='/console/orgs/${ORG}/projects/${PROJECT}/webhooks']`)]);
  check(a.url() === hooks, "the projects page links to the project's webhooks");
  await a.fill("#new-url", `${RECEIVER}/hooks/console`);
  await a.fill("#new-events", "*");
  await Promise.all([a.waitForNavigation(), a.click("#create-webhook button[type=submit]")]);
  const secret = await a.inputValue("#webhook-secret");
  check(secret.startsWith("whsec_"), "the new endpoint's secret is shown");
  const told = await fetch(`${RECEIVER}/_control/console`, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ secrets: [secret] }),
  });
  check(told.ok, "the receiver learns the secret");
  await visit(a, "webhooks-created");
  await Promise.all([a.waitForNavigation(), a.click("form[action$='/test'] button[type=submit]")]);
  check((await a.textContent(".notice")).includes("Test event queued"), "the test is queued");
  let status = "";
  for (let i = 0; i < 60 && status !== "succeeded"; i++) {
    await a.goto(hooks);
    status = ((await a.textContent(".deliveries .delivery-status").catch(() => "")) || "").trim();
    if (status !== "succeeded") await a.waitForTimeout(500);
  }
  check(status === "succeeded", `the test delivery succeeded in the page (last seen: ${status || "none"})`);
  check((await a.textContent(".deliveries .attempts")).includes("204"), "the attempt shows the receiver's status");
  check(!(await a.content()).includes(secret), "the secret is not shown again");
  const got = await (await fetch(`${RECEIVER}/_control/console`)).json();
  check(got.received.length >= 1 && got.received.every((r) => r.verified && r.type === "webhook.test"), "the receiver verified the test delivery");
  await visit(a, "webhooks");

  // Keys: the first secret key, then a rotation with a day's grace; the new secret is shown
  // once, and the superseded key's warning says until when the old one works.
  const keysUrl = `${BASE}/console/orgs/${ORG}/projects/${PROJECT}/keys`;
  await a.goto(`${BASE}/console/orgs/${ORG}/projects`);
  await Promise.all([a.waitForNavigation(), a.click(`a[href='/console/orgs/${ORG}/projects/${PROJECT}/keys']`)]);
  check(a.url() === keysUrl, "the projects page links to the project's keys");
  check((await a.inputValue("#publishable-key")).startsWith("pk_"), "the publishable key is shown");
  await a.selectOption("#grace", "0");
  await Promise.all([a.waitForNavigation(), a.click("#rotate-key button[type=submit]")]);
  const firstKey = await a.inputValue("#secret-key");
  check(firstKey.startsWith("sk_"), "the first secret key is shown once");
  check((await a.locator("#superseded-warning").count()) === 0, "no warning before a rotation");
  await a.selectOption("#grace", "86400");
  await Promise.all([a.waitForNavigation(), a.click("#rotate-key button[type=submit]")]);
  const secondKey = await a.inputValue("#secret-key");
  check(secondKey.startsWith("sk_") && secondKey !== firstKey, "the rotation shows the new secret key");
  check(!(await a.content()).includes(firstKey), "the old secret is not shown again");
  // The screenshot is committed: it shows the secret's prefix only, never a whole key.
  await a.evaluate(() => {
    const k = document.querySelector("#secret-key");
    k.value = `${k.value.slice(0, 16)}…`;
  });
  await visit(a, "keys-rotated");
  await a.goto(keysUrl);
  check((await a.locator("#secret-key").count()) === 0 && !(await a.content()).includes(secondKey), "the new secret is gone on the next visit");
  check((await a.textContent("#superseded-warning")).includes("stops working at"), "the superseded-key warning is shown");
  check((await a.textContent("#keys-table")).includes("a newer key exists; this one stops working at"), "the old key's row says until when it works");
  check((await a.textContent("#keys-table")).includes(secondKey.slice(0, 16)), "the new key is listed by its prefix");
  await visit(a, "keys");

  // A platform admin changes the org's plan; adding a member past the plan's seats is the
  // 402 page with the numbers and what to do.
  const subUrl = `${BASE}/console/orgs/${ORG}/subscription`;
  await a.goto(subUrl);
  await a.selectOption("#sub-plan", "team");
  await a.selectOption("#sub-status", "active");
  await Promise.all([a.waitForNavigation(), a.click("#change-subscription button[type=submit]")]);
  check((await a.textContent(".notice")).includes("Subscription changed"), "the plan change is confirmed");
  check((await a.textContent("#plan")).trim() === "team" && (await a.textContent("#seats")).includes("of 25"), "the team plan's limits are shown");
  await a.selectOption("#sub-plan", "free");
  await Promise.all([a.waitForNavigation(), a.click("#change-subscription button[type=submit]")]);
  const seats = await a.textContent("#seats");
  check((await a.textContent("#plan")).trim() === "free" && seats.includes("of 3"), `back on free, 3 seats (${seats.trim()})`);
  await visit(a, "subscription");
  await a.goto(`${BASE}/console/orgs/${ORG}/members`);
  let refusedAt = -1;
  let refusal;
  for (let i = 0; i < 4 && refusedAt < 0; i++) {
    await a.fill("#invite-email", `extra-${i}-${TAG}@example.com`);
    const [r] = await Promise.all([a.waitForNavigation(), a.click("form[action$='/invitations'] button[type=submit]")]);
    if (r.status() === 402) {
      refusedAt = i;
      refusal = r;
    } else {
      check(r.status() === 200, `an invitation within the plan is made (${r.status()})`);
    }
  }
  check(refusedAt >= 0 && refusal.status() === 402, "inviting past the plan's seats answers 402");
  check((await a.textContent("h1")).includes("plan does not allow"), "the 402 page says the plan refused");
  const limitText = await a.textContent("#plan-limit");
  check(/allows 3 seats/.test(limitText.replace(/\s+/g, " ")) && /3 are in use/.test(limitText.replace(/\s+/g, " ")), `the 402 page shows limit and used (${limitText.trim()})`);
  check((await a.textContent("main")).includes("ask a platform admin"), "the 402 page says what to do");
  check((await a.textContent("#correlation-id")).trim().length > 0, "the 402 page shows its correlation id");
  await visit(a, "plan-limit");

  if (FULL) {
    // The export downloads what the filters show, in both formats.
    const csv = await a.request.get(`${BASE}/console/orgs/${ORG}/audit/export?format=csv&correlation_id=${encodeURIComponent(reference)}`);
    check(csv.status() === 200 && csv.headers()["content-type"].startsWith("text/csv"), "CSV export");
    const lines = (await csv.text()).trim().split("\r\n");
    check(lines[0].startsWith("id,at,action") && lines.length >= 2 && lines.slice(1).every((l) => l.includes(reference)), "CSV export has the filtered events");
    const jsonl = await a.request.get(`${BASE}/console/orgs/${ORG}/audit/export?format=jsonl&correlation_id=${encodeURIComponent(reference)}`);
    const events = (await jsonl.text()).trim().split("\n").map((l) => JSON.parse(l));
    check(events.length === lines.length - 1 && events.every((e) => e.correlation_id === reference), "JSONL export has the same events");

    for (const [name, path] of [
      ["audit", `/console/orgs/${ORG}/audit`],
      ["projects", `/console/orgs/${ORG}/projects`],
      ["domains", `/console/orgs/${ORG}/domains`],
      ["mobile", `/console/orgs/${ORG}/mobile`],
      ["platform", "/console/platform"],
      ["subscription-operator", `/console/orgs/${ORG}/subscription`],
      ["doctor", "/console/platform/doctor"],
      ["account", "/console/account"],
      ["not-found", "/console/orgs/not-a-uuid/members"],
    ]) {
      const r = await a.goto(BASE + path);
      check(r.status() < 500, `${name} answers without a server error (${r.status()})`);
      await visit(a, name);
    }
    check((await a.textContent("#correlation-id")).trim().length > 0, "the error page shows its correlation id");
    await a.goto(`${BASE}/console/orgs/${ORG}/mobile`);
    check((await a.inputValue("#connect-link")).startsWith("alga://server?url="), "the connect card shows the link");
    check(await a.evaluate(() => { const i = document.querySelector("img.qr"); return i.complete && i.naturalWidth > 0; }), "the QR code loads");

    // Project settings: a bad origin is refused beside its field, nothing saved.
    await a.goto(`${BASE}/console/orgs/${ORG}/projects`);
    await a.locator("textarea[name=allowed_origins]").first().fill("https://ok.example\nnot an origin");
    const saved = await Promise.all([a.waitForNavigation(), a.locator("form.project-settings button[type=submit]").first().click()]);
    check(saved[0].status() === 400, "a bad origin answers 400");
    check((await a.locator("textarea[aria-invalid=true]").count()) === 1, "the bad field is marked invalid");
    check((await a.textContent(".field-error")).includes("line 2"), "the error names the bad line");
    await visit(a, "projects-invalid");
    await a.goto(`${BASE}/console/orgs/${ORG}/projects`);
    check(!(await a.inputValue("textarea[name=allowed_origins]")).includes("ok.example"), "nothing was saved");

    // Usable at 360 px: nothing wider than the screen.
    await a.setViewportSize({ width: 360, height: 740 });
    for (const path of [`/console/orgs/${ORG}/members`, `/console/orgs/${ORG}/audit`, `/console/orgs/${ORG}/sessions`, `/console/orgs/${ORG}/projects/${PROJECT}/keys`, `/console/orgs/${ORG}/subscription`]) {
      await a.goto(BASE + path);
      const wide = await a.evaluate(() => document.documentElement.scrollWidth);
      const culprits = await a.evaluate(() =>
        [...document.querySelectorAll("body *")]
          .filter((el) => el.getBoundingClientRect().right > 361 && !(el.parentElement && el.parentElement.closest(".scroll")))
          .slice(0, 5)
          .map((el) => `${el.tagName.toLowerCase()}.${el.className}#${el.id}`));
      check(wide <= 360, `${path} fits 360 px (scrollWidth ${wide}; too wide: ${culprits.join(", ")})`);
    }
    await visit(a, "members-360");
    await a.goto(`${BASE}/console/orgs/${ORG}/subscription`);
    await visit(a, "subscription-360");
    await a.setViewportSize({ width: 1280, height: 900 });

    // Keyboard only: from the keys page's rotate form, Tab reaches its button with a visible focus.
    await a.goto(`${BASE}/console/orgs/${ORG}/projects/${PROJECT}/keys`);
    await a.focus("#grace");
    await a.keyboard.press("Tab");
    check(await a.evaluate(() => document.activeElement && document.activeElement.closest("#rotate-key") !== null && document.activeElement.tagName === "BUTTON"), "Tab moves from the grace choice to the rotate button");
    const outline = await a.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
    check(outline !== "none", `the focused button shows its focus (${outline})`);
  }
  console.log(JSON.stringify(results));
} catch (e) {
  console.log(JSON.stringify(results));
  console.error(e && e.stack ? e.stack : String(e));
  process.exitCode = 1;
} finally {
  await admin.close();
  await member.close();
  for (const d of profiles) rmSync(d, { recursive: true, force: true });
}
