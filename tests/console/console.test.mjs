// The web console in a real browser: Debian's Chromium, driven by
// playwright-core. tests/tests/console_browser.rs prepares a server (a
// tenant, a full and a read-only admin, a release in the catalog) and runs
// this file with node; every step asserts what an admin would see.
//
// Environment: CONSOLE_URL, TENANT_NAME, TENANT_ID, FULL_EMAIL,
// READONLY_EMAIL, PASSWORD, CHECKIN_SCRIPT (enrolls a simulated agent and
// checks in once), ARTIFACTS (screenshots go there), CHROMIUM.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const base = env("CONSOLE_URL");
const tenantName = env("TENANT_NAME");
const tenantId = env("TENANT_ID");
const password = env("PASSWORD");
const artifacts = env("ARTIFACTS");
mkdirSync(artifacts, { recursive: true });

const steps = [];
let currentPage = null;
async function step(name, body) {
  process.stdout.write(`step: ${name}\n`);
  try {
    await body();
  } catch (e) {
    if (currentPage) {
      // What the browser showed when the step failed, for the reader of the log.
      await currentPage.screenshot({ path: join(artifacts, "failed-step.png"), fullPage: true }).catch(() => {});
      process.stdout.write(`failed at ${currentPage.url()}:\n${(await currentPage.content().catch(() => "")).slice(0, 4000)}\n`);
    }
    throw e;
  }
  steps.push(name);
}

const browser = await chromium.launch({
  executablePath: env("CHROMIUM"),
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});

/**
 * What an accessibility review would flag on the page now: form controls
 * without an accessible name, text whose contrast with its background is
 * below WCAG AA (4.5:1, 3:1 for large text), and a page wider than the
 * window (content reachable only by scrolling sideways).
 */
async function accessibilityFindings(page) {
  return page.evaluate(() => {
    const findings = [];
    const visible = (el) => {
      const r = el.getBoundingClientRect();
      const st = getComputedStyle(el);
      return r.width > 0 && r.height > 0 && st.visibility !== "hidden" && st.display !== "none";
    };
    const describe = (el) => `${el.tagName.toLowerCase()}${el.id ? "#" + el.id : ""}${el.name ? "[name=" + el.name + "]" : ""} "${(el.textContent || el.value || "").trim().slice(0, 40)}"`;
    for (const el of document.querySelectorAll("input:not([type=hidden]), select, textarea, button")) {
      if (!visible(el)) continue;
      const named = (el.labels && el.labels.length > 0) || el.getAttribute("aria-label") || el.getAttribute("aria-labelledby")
        || (el.tagName === "BUTTON" && el.textContent.trim());
      if (!named) findings.push(`no label: ${describe(el)}`);
    }
    const rgba = (s) => {
      const m = s.match(/rgba?\(([^)]+)\)/);
      if (!m) return null;
      const [r, g, b, a = 1] = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
      return [r, g, b, a];
    };
    const over = (top, under) => top.slice(0, 3).map((c, i) => c * top[3] + under[i] * (1 - top[3])).concat(1);
    const background = (el) => {
      const layers = [];
      for (let e = el; e; e = e.parentElement) {
        const c = rgba(getComputedStyle(e).backgroundColor);
        if (c && c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
      }
      return layers.reduceRight((under, top) => over(top, under), [255, 255, 255, 1]);
    };
    const luminance = ([r, g, b]) => {
      const lin = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
      return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
    };
    for (const el of document.body.querySelectorAll("*")) {
      if (el.closest("svg") || !visible(el) || el.disabled) continue;
      const text = [...el.childNodes].filter((n) => n.nodeType === 3).map((n) => n.textContent).join("").trim();
      if (!text) continue;
      const st = getComputedStyle(el);
      const bg = background(el);
      const fg = over(rgba(st.color), bg);
      const [hi, lo] = [luminance(fg), luminance(bg)].sort((a, b) => b - a);
      const ratio = (hi + 0.05) / (lo + 0.05);
      const size = parseFloat(st.fontSize);
      const large = size >= 24 || (size >= 18.66 && Number(st.fontWeight) >= 700);
      if (ratio < (large ? 3 : 4.5)) findings.push(`contrast ${ratio.toFixed(2)}:1: ${describe(el)}`);
    }
    if (document.documentElement.scrollWidth > window.innerWidth + 1) {
      // Name the outermost element that sticks out (scrolling tables and
      // code blocks are meant to).
      const culprit = [...document.body.querySelectorAll("*")].find((el) =>
        el.getBoundingClientRect().right > window.innerWidth + 1 && !el.closest(".table-wrap, pre"));
      findings.push(`page ${document.documentElement.scrollWidth} px wide in a ${window.innerWidth} px window` +
        (culprit ? `: ${describe(culprit)}` : ""));
    }
    return findings;
  });
}

async function shot(page, name) {
  await page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });
}

async function signIn(page, email, pass = password, tenant = tenantName) {
  await page.goto(`${base}/console/signin`);
  await page.getByLabel("Tenant").fill(tenant);
  await page.getByLabel("E-mail").fill(email);
  await page.getByLabel("Password").fill(pass);
  await page.getByRole("button", { name: "Sign in" }).click();
}

/** A bearer token from the API's own login, to compare with its figures. */
async function apiToken(email) {
  const r = await fetch(`${base}/api/v1/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ tenant: tenantId, email, password }),
  });
  assert.equal(r.status, 200);
  return (await r.json()).token;
}

async function api(token, path) {
  const r = await fetch(`${base}/api/v1/tenants/${tenantId}${path}`, {
    headers: { authorization: `Bearer ${token}` },
  });
  assert.equal(r.status, 200, path);
  return r;
}

try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
  const page = await context.newPage();
  currentPage = page;
  const consoleErrors = [];
  // The refused sign-in answers 401 on purpose; any other error (a CSP
  // violation, a missing asset) fails the test at the end.
  page.on("console", (m) => {
    if (m.type() === "error" && !/status of 401/.test(m.text())) consoleErrors.push(`${m.location().url}: ${m.text()}`);
  });

  await step("a wrong password is refused with the API's words", async () => {
    await signIn(page, env("FULL_EMAIL"), "not the password");
    await assert.doesNotReject(page.getByRole("alert").filter({ hasText: "wrong tenant, e-mail or password" }).waitFor());
    assert.match(page.url(), /\/console\/signin$/);
    await shot(page, "signin-refused");
  });

  await step("sign in with the tenant's name; a new tenant sees its first steps", async () => {
    await signIn(page, env("FULL_EMAIL"));
    await page.waitForURL(`${base}/console`);
    await page.getByText("No device has checked in yet").waitFor();
    const params = await page.locator("pre.copy").textContent();
    assert.match(params, new RegExp(`--tenant-id ${tenantId}`));
    const cookies = await context.cookies();
    const session = cookies.find((c) => c.name === "updater_session");
    assert.ok(session, "session cookie set");
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, "Strict");
    await shot(page, "home-empty");
  });

  await step("create a manual group", async () => {
    await page.getByRole("link", { name: "Groups", exact: true }).click();
    await page.getByLabel("Name", { exact: true }).fill("Pilot");
    await page.getByLabel("Users (one per line: account, or account@hostname)").fill("alice\nbob@ws-7");
    await page.getByRole("button", { name: "Create group" }).click();
    await page.getByRole("status").filter({ hasText: "Group created." }).waitFor();
    assert.deepEqual(await page.locator("#members li").allTextContents(), ["alice", "bob@ws-7"]);
    await page.getByRole("link", { name: "Groups", exact: true }).click();
    assert.equal(await page.locator("#groups tbody tr").filter({ hasText: "Pilot" }).count(), 1);
    await shot(page, "groups");
  });

  await step("a silent policy's window is previewed across a DST change before it is saved", async () => {
    await page.goto(`${base}/console/policies/new`);
    await page.getByLabel("Name", { exact: true }).fill("Headsets silent at night");
    await page.getByLabel("Model").fill("1209:0003");
    await page.getByRole("combobox", { name: /^Group/ }).selectOption({ label: "Pilot" });
    await page.getByRole("radio", { name: /Silent/ }).check();
    await page.getByLabel("Starts (cron: minute hour day month weekday)").fill("30 2 * * *");
    await page.getByLabel("Lasts (minutes)").fill("60");
    await page.getByLabel("Time zone (IANA)").fill("Europe/Berlin");
    await page.getByLabel("Preview from").fill("2027-03-25");
    await page.getByRole("button", { name: "Preview window" }).click();
    const rows = page.locator("#openings tbody tr");
    await rows.first().waitFor();
    const texts = await rows.allTextContents();
    assert.equal(texts.length, 8);
    // 2027-03-28: 02:30 does not exist in Berlin (clocks go 02:00 -> 03:00).
    const changed = texts.filter((t) => t.includes("clocks change"));
    assert.ok(changed.length >= 1, texts.join("\n"));
    assert.match(texts[0], /Thu 2027-03-25 02:30 \+01:00 CET/);
    assert.ok(texts.some((t) => /Mon 2027-03-29 02:30 \+02:00 CEST/.test(t)), texts.join("\n"));
    // Nothing is saved by a preview.
    const token = await apiToken(env("FULL_EMAIL"));
    assert.deepEqual(await (await api(token, "/policies/firmware")).json(), []);
    await shot(page, "policy-preview");
    await page.getByRole("button", { name: "Save policy" }).click();
    await page.getByRole("status").filter({ hasText: "Policy saved." }).waitFor();
    const saved = await (await api(token, "/policies/firmware")).json();
    assert.equal(saved.length, 1);
    assert.equal(saved[0].deployment, "silent");
    assert.deepEqual(saved[0].window, { cron: "30 2 * * *", duration_minutes: 60, tz: "Europe/Berlin" });
    await shot(page, "policies");
  });

  await step("an agent software policy is created on the policies page", async () => {
    await page.getByRole("link", { name: "Policies", exact: true }).click();
    const form = page.locator("form[action='/console/software-policies']");
    await form.getByLabel("Name", { exact: true }).fill("Linux agents latest");
    await form.getByRole("combobox", { name: /^Platform/ }).selectOption("linux");
    await form.getByRole("button", { name: "Create software policy" }).click();
    await page.getByRole("status").filter({ hasText: "Policy saved." }).waitFor();
    assert.match(await page.locator("#software-policies tbody").textContent(), /Linux agents latest.*linux/);
    const token = await apiToken(env("FULL_EMAIL"));
    const saved = await (await api(token, "/policies/software")).json();
    assert.deepEqual(saved.map((p) => [p.name, p.platform, p.version]), [["Linux agents latest", "linux", "latest"]]);
  });

  await step("a simulated agent's device appears after it checks in", async () => {
    await page.getByRole("link", { name: "Devices", exact: true }).click();
    await page.getByText("No device matches.").waitFor();
    execFileSync(env("CHECKIN_SCRIPT"), { stdio: "inherit" });
    await page.reload();
    const row = page.locator("#devices tbody tr");
    assert.equal(await row.count(), 1);
    assert.match(await row.textContent(), /VH5200-0001/);
    assert.match(await row.textContent(), /1\.0\.0/);
    await shot(page, "devices");
    await row.getByRole("link").click();
    await page.locator("#why").getByText("Why it is not there now").waitFor();
    await shot(page, "device");
    // Its whole history: the history report filtered to this device, the
    // filter kept in the form and in the CSV link, the API's rows.
    await page.getByRole("link", { name: /whole update history/ }).click();
    assert.equal(await page.getByLabel("Device").inputValue(), "1209/serial/VH5200-0001");
    assert.match(await page.getByRole("link", { name: "Download CSV" }).getAttribute("href"), /device=1209%2Fserial%2FVH5200-0001/);
    const [download] = await Promise.all([
      page.waitForEvent("download"),
      page.getByRole("link", { name: "Download CSV" }).click(),
    ]);
    const token = await apiToken(env("FULL_EMAIL"));
    const apiCsv = await (await api(token, "/reports/history?format=csv&device=1209%2Fserial%2FVH5200-0001")).text();
    assert.equal(readFileSync(await download.path(), "utf8"), apiCsv);
  });

  await step("the home chart draws the API's figures", async () => {
    await page.getByRole("link", { name: "Home", exact: true }).click();
    const token = await apiToken(env("FULL_EMAIL"));
    const report = await (await api(token, "/reports/versions")).json();
    assert.ok(report.models.length >= 1);
    const labels = { up_to_date: "Up to date", outdated: "Outdated", unknown: "Unknown version", no_release: "No release" };
    let compared = 0;
    for (const m of report.models) {
      for (const [field, label] of Object.entries(labels)) {
        const bar = page.locator(`#versions-chart rect[data-series="${label}"][data-row="${m.model_name} (${m.model})"]`);
        const drawn = (await bar.count()) === 0 ? 0 : Number(await bar.getAttribute("data-value"));
        assert.equal(drawn, m[field], `${m.model} ${field}`);
        compared += 1;
      }
    }
    assert.ok(compared >= 4);
    // The value is read out when a bar gets keyboard focus.
    await page.locator("#versions-chart rect.bar").first().focus();
    await page.locator("#versions-chart .readout").filter({ hasText: /: \d+$/ }).waitFor();
    await shot(page, "home");
  });

  await step("a report reads as a table and downloads the API's CSV", async () => {
    await page.getByRole("link", { name: "Reports", exact: true }).click();
    await page.getByRole("link", { name: "Version Status" }).click();
    assert.ok((await page.locator("#report tbody tr").count()) >= 1);
    const [download] = await Promise.all([
      page.waitForEvent("download"),
      page.getByRole("link", { name: "Download CSV" }).click(),
    ]);
    assert.match(download.suggestedFilename(), /^version-status-.*\.csv$/);
    const csv = readFileSync(await download.path(), "utf8");
    const token = await apiToken(env("FULL_EMAIL"));
    const apiCsv = await (await fetch(`${base}/api/v1/tenants/${tenantId}/reports/versions?format=csv`, {
      headers: { authorization: `Bearer ${token}` },
    })).text();
    assert.equal(csv, apiCsv);
    await shot(page, "report");
  });

  await step("a POST without the CSRF token is refused", async () => {
    const r = await page.request.post(`${base}/console/groups`, {
      form: { name: "Forged", kind: "manual", members: "mallory" },
      maxRedirects: 0,
    });
    assert.equal(r.status(), 403);
    assert.match(await r.text(), /out of date or did not come from this console/);
    const token = await apiToken(env("FULL_EMAIL"));
    const groups = await (await api(token, "/groups")).json();
    assert.ok(!groups.some((g) => g.name === "Forged"));
  });

  await step("a catalog manager uploads firmware from the browser", async () => {
    await page.getByRole("link", { name: "Catalog", exact: true }).click();
    await page.locator("#upload input[type=file]").setInputFiles({
      name: "voyage-1.3.0.bin", mimeType: "application/octet-stream", buffer: Buffer.alloc(64 * 1024, 0x3c),
    });
    await page.getByLabel("Vendor").fill("Acme");
    await page.getByLabel("Model", { exact: true }).fill("Headset");
    await page.getByLabel("Hardware id").fill("1209:0003");
    await page.getByLabel("Version", { exact: true }).fill("1.3.0");
    await page.getByLabel("May be installed silently in a maintenance window").check();
    await page.getByRole("button", { name: "Upload" }).click();
    await page.getByRole("status").filter({ hasText: "Release imported." }).waitFor();
    assert.ok((await page.locator("table.releases td").allTextContents()).includes("1.3.0"));
    const token = await apiToken(env("FULL_EMAIL"));
    const releases = await (await api(token, "/catalog/releases")).json();
    const uploaded = releases.find((r) => r.version.version === "1.3.0");
    assert.ok(uploaded, JSON.stringify(releases.map((r) => r.version.version)));
    assert.equal(uploaded.size, 64 * 1024);
    assert.match(uploaded.target_name, /voyage-1\.3\.0\.bin$/);
    await shot(page, "catalog");
  });

  await step("schedule a staged rollout, pause and resume it", async () => {
    await page.getByRole("link", { name: "Rollouts", exact: true }).click();
    await page.getByLabel("Name", { exact: true }).fill("Headsets to 1.3.0");
    await page.getByLabel("Model").fill("1209:0003");
    await page.getByLabel("Version").fill("1.3.0");
    await page.getByLabel("Waves, one per line").fill("50% error=10\nrest approval");
    await page.getByRole("button", { name: "Create rollout" }).click();
    await page.getByRole("status").filter({ hasText: "Rollout created." }).waitFor();
    assert.equal(await page.locator("#waves tbody tr").count(), 2);
    await page.getByRole("button", { name: "Pause" }).click();
    await page.getByRole("status").filter({ hasText: "Rollout paused." }).waitFor();
    const token = await apiToken(env("FULL_EMAIL"));
    let list = await (await api(token, "/rollouts")).json();
    assert.equal(list.length, 1);
    assert.equal(list[0].state, "paused");
    await page.getByRole("button", { name: "Resume" }).click();
    await page.getByRole("status").filter({ hasText: "Rollout resumed." }).waitFor();
    list = await (await api(token, "/rollouts")).json();
    assert.equal(list[0].state, "running");
    await shot(page, "rollout");
  });

  await step("the other pages render for a full admin", async () => {
    for (const [link, name] of [["Rollouts", "rollouts"], ["Policies", "policies-all"], ["Admins & tokens", "admins"], ["Settings", "settings"], ["Hosts", "hosts"], ["Users", "users"]]) {
      await page.getByRole("link", { name: link, exact: true }).click();
      await page.getByRole("heading", { level: 1 }).waitFor();
      await shot(page, name);
    }
    await page.setViewportSize({ width: 390, height: 800 });
    await page.goto(`${base}/console/devices`);
    await shot(page, "devices-narrow");
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  await step("accessible: labelled controls, AA contrast, keyboard reachable, no sideways scrolling at 1280 px or 390 px", async () => {
    const pages = ["", "/devices", "/hosts", "/users", "/groups", "/policies", "/policies/new", "/catalog",
      "/rollouts", "/reports", "/reports/versions", "/reports/compliance", "/reports/history", "/admins", "/settings", "/password"];
    for (const width of [1280, 390]) {
      await page.setViewportSize({ width, height: 900 });
      for (const path of pages) {
        const r = await page.goto(`${base}/console${path}`);
        assert.equal(r.status(), 200, path);
        assert.deepEqual(await accessibilityFindings(page), [], `${path} at ${width} px`);
      }
    }
    await page.setViewportSize({ width: 1280, height: 900 });
    // From the top of a page, the keyboard reaches "Skip to content" first,
    // then every link of the navigation, each with a visible focus ring.
    await page.goto(`${base}/console/groups`);
    let reached = [];
    for (let i = 0; i < 40; i++) {
      await page.keyboard.press("Tab");
      reached.push(await page.evaluate(() => {
        const el = document.activeElement;
        if (el === document.body) return null; // past the last control
        const st = getComputedStyle(el);
        return { text: el.textContent.trim(), ring: st.outlineStyle !== "none" && parseFloat(st.outlineWidth) >= 2 };
      }));
    }
    reached = reached.filter(Boolean);
    assert.equal(reached[0].text, "Skip to content");
    for (const link of ["Home", "Devices", "Groups", "Policies", "Catalog", "Rollouts", "Reports", "Settings"]) {
      assert.ok(reached.some((r) => r.text === link), `${link} is reachable by Tab`);
    }
    assert.deepEqual(reached.filter((r) => !r.ring).map((r) => r.text), [], "every focused control shows a focus ring");
    // The skip link moves the keyboard past the navigation.
    await page.goto(`${base}/console/groups`);
    await page.keyboard.press("Tab");
    await page.keyboard.press("Enter");
    assert.match(page.url(), /#main$/);
  });

  await step("sign out ends the session", async () => {
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByText("You are signed out.").waitFor();
    await page.goto(`${base}/console/groups`);
    assert.match(page.url(), /\/console\/signin\?next=\/console\/groups$/);
  });

  await step("a read-only admin sees no write control, and a forged write is refused", async () => {
    await signIn(page, env("READONLY_EMAIL"));
    await page.waitForURL(`${base}/console`);
    await page.getByRole("link", { name: "Groups", exact: true }).click();
    assert.equal(await page.getByRole("button", { name: "Create group" }).count(), 0);
    await page.getByRole("link", { name: "Policies", exact: true }).click();
    assert.equal(await page.getByRole("link", { name: "New firmware policy" }).count(), 0);
    assert.equal(await page.getByRole("button", { name: /Delete|Disable|Copy/ }).count(), 0);
    await shot(page, "policies-read-only");
    const csrf = await page.locator("input[name=csrf]").first().inputValue();
    const r = await page.request.post(`${base}/console/groups`, {
      form: { csrf, name: "Forged", kind: "manual", members: "mallory" },
      maxRedirects: 0,
    });
    assert.equal(r.status(), 403);
    assert.match(await r.text(), /read-only credentials cannot change anything/);
  });

  assert.deepEqual(consoleErrors, [], "the browser logged no error (a CSP violation would show here)");
  await context.close();
  process.stdout.write(`console tests: ${steps.length} steps passed\n`);
} finally {
  await browser.close();
}
