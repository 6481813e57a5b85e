/**
 * The web console in headless Chromium (Debian's /usr/bin/chromium driven by
 * playwright-core) against the real local server: sign in, create a topic,
 * send a message, browse it, query it, reset a group's offsets, resend a dead
 * letter, manage push subscriptions (against an endpoint on 127.0.0.1) and
 * recurring schedules, and watch the overview refresh by itself. Screenshots go to
 * test-results/console-*.png; with UPDATE_DOCS_SCREENSHOT=1 the overview is
 * also written to docs/console.png (the README's picture).
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { type Server, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Browser, type Page } from "playwright-core";
import { launchChromium, skipBrowserTests } from "../../scripts/chromium.ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LocalServer, REPO_ROOT, startLocalServer } from "../../scripts/local-server.ts";

const ADMIN = "console-admin";
const RESULTS = join(REPO_ROOT, "test-results");
const dataDir = mkdtempSync(join(tmpdir(), "edgemq-console-"));
let server: LocalServer;
let browser: Browser;
let n = 0;
const unique = (prefix: string) => `${prefix}-${Date.now().toString(36)}-${(n++).toString(36)}`;

async function api(method: string, path: string, body?: unknown): Promise<any> {
  const res = await fetch(server.url + path, {
    method,
    headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
  const json = await res.json();
  if (!res.ok) throw new Error(`${method} ${path}: ${JSON.stringify(json)}`);
  return json;
}

/** A page of the console, signed in, collecting console errors and CSP violations. */
async function signedIn(hash = ""): Promise<{ page: Page; problems: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const problems: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(m.text());
  });
  page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
  // Destructive actions ask first; the test answers yes.
  page.on("dialog", (d) => void d.accept());
  await page.goto(`${server.url}/console${hash}`);
  await page.fill("#login-token", ADMIN);
  await page.click("#login-form button[type=submit]");
  await page.waitForSelector("#nav:not([hidden])");
  return { page, problems };
}

function shot(page: Page, name: string, opts: { fullPage?: boolean } = {}) {
  return page.screenshot({
    path: join(RESULTS, `console-${name}.png`),
    fullPage: opts.fullPage ?? true,
  });
}

beforeAll(async () => {
  mkdirSync(RESULTS, { recursive: true });
  server = await startLocalServer({
    port: 0,
    dataDir,
    env: { ADMIN_TOKEN: ADMIN, TOKEN_SECRET: "console-secret" },
    quiet: true,
  });
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await server?.stop("SIGTERM", { killAfterMs: 5000 });
  rmSync(dataDir, { recursive: true, force: true });
});

describe.skipIf(skipBrowserTests)("web console", () => {
  it("refuses a wrong token and keeps the right one for the session only", async () => {
    const page = await browser.newPage();
    await page.goto(`${server.url}/console`);
    await page.fill("#login-token", "not-the-token");
    await page.click("#login-form button[type=submit]");
    await expect.poll(() => page.textContent("#login-error")).toContain("UNAUTHORIZED");
    expect(await page.isVisible("#view table")).toBe(false);
    await page.fill("#login-token", ADMIN);
    await page.click("#login-form button[type=submit]");
    await page.waitForSelector("#topics-table");
    expect(await page.evaluate(() => sessionStorage.getItem("edgemq.token"))).toBe(ADMIN);
    expect(await page.evaluate(() => localStorage.length)).toBe(0);
    await page.click("#logout");
    await page.waitForSelector("#login:not([hidden])");
    expect(await page.evaluate(() => sessionStorage.getItem("edgemq.token"))).toBeNull();
    await page.close();
  });

  it("creates a topic, sends a message, browses and queries it", async () => {
    const { page, problems } = await signedIn();
    const topic = unique("orders");
    await page.fill("#new-topic-name", topic);
    await page.fill("#new-topic-queues", "2");
    await page.click("#new-topic-form button[type=submit]");
    await page.waitForSelector(`#topics-table tr[data-id="${topic}"]`);
    expect((await api("GET", `/v1/topics/${topic}`)).queues).toBe(2);

    await page.click(`#topics-table tr[data-id="${topic}"] a`);
    await page.waitForSelector("#queues-table tr[data-id=q1]");
    await page.fill("#send-body", '{"order": 17}');
    await page.fill("#send-tag", "created");
    await page.fill("#send-keys", "order-17");
    await page.fill("#send-props", "region=eu");
    await page.click("#send-form button[type=submit]");
    await expect
      .poll(() => page.textContent("#send-result"))
      .toMatch(/^stored: \S+ on queue \d at offset 0$/);
    const [, msgId, queue] = /^stored: (\S+) on queue (\d)/.exec(
      (await page.textContent("#send-result"))!,
    )!;

    await page.selectOption("#browse-queue", queue!);
    await page.click("#browse-form button[type=submit]");
    const row = page.locator(`#browse-result tr[data-id="${msgId}"]`);
    await row.waitFor();
    expect(await row.textContent()).toContain('{"order": 17}');
    await row.click();
    await expect.poll(() => page.textContent("#message-detail")).toContain('"region": "eu"');
    await shot(page, "topic");

    await page.selectOption("#query-by", "key");
    await page.fill("#query-text", "order-17");
    await page.click("#query-form button[type=submit]");
    await page.locator(`#query-result tr[data-id="${msgId}"]`).waitFor();
    await page.selectOption("#query-by", "id");
    await page.fill("#query-text", msgId!);
    await page.click("#query-form button[type=submit]");
    await expect
      .poll(() => page.textContent("#query-result"))
      .toContain("State per consumer group");
    await page.selectOption("#query-by", "time");
    await page.click("#query-form button[type=submit]");
    await page.locator(`#query-result tr[data-id="${msgId}"]`).waitFor();
    expect(problems).toEqual([]);
    await page.close();
  });

  it("resets a group's offsets to a time picked in the date picker", async () => {
    const topic = unique("reset");
    const group = unique("billing");
    await api("PUT", `/v1/topics/${topic}`, { queues: 2 });
    await api("POST", `/v1/topics/${topic}/messages`, {
      messages: [{ body: "a" }, { body: "b" }, { body: "c" }],
    });
    await api("POST", `/v1/groups/${group}/topics/${topic}/offsets/reset`, { to: "latest" });
    const { page, problems } = await signedIn(`#/groups/${group}`);
    await page.waitForSelector(`#lag [data-topic="${topic}"] table`);
    expect(await page.textContent(`#lag [data-topic="${topic}"] h3`)).toContain("lag 0");
    expect(await page.locator(`#lag [data-topic="${topic}"] svg rect.bar`).count()).toBe(2);

    await page.fill("#reset-topic", topic);
    await page.selectOption("#reset-mode", "time");
    const hourAgo = await page.evaluate(() => {
      const d = new Date(Date.now() - 3_600_000);
      const p = (x: number) => String(x).padStart(2, "0");
      return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
    });
    await page.fill("#reset-time", hourAgo);
    await page.click("#reset-form button[type=submit]");
    await expect.poll(() => page.textContent("#reset-result")).toMatch(/^Reset .* q0→0, q1→0$/);
    const offsets = (await api("GET", `/v1/groups/${group}/topics/${topic}/offsets`)).offsets;
    expect(offsets.reduce((s: number, o: { lag: number }) => s + o.lag, 0)).toBe(3);
    // The lag section follows without a reload.
    await expect
      .poll(() => page.textContent(`#lag [data-topic="${topic}"] h3`), { timeout: 10_000 })
      .toContain("lag 3");
    await shot(page, "group");
    expect(problems).toEqual([]);
    await page.close();
  });

  it("lists a group's dead letters and resends them", async () => {
    const topic = unique("dlq");
    const group = unique("dead");
    await api("PUT", `/v1/topics/${topic}`, { queues: 1 });
    await api("PUT", `/v1/groups/${group}`, { maxReconsumeTimes: 0 });
    await api("POST", `/v1/topics/${topic}/messages`, { messages: [{ body: "poison" }] });
    const got = await api("POST", `/v1/groups/${group}/topics/${topic}/receive`, { max: 1 });
    await api("POST", `/v1/groups/${group}/topics/${topic}/nack`, {
      receipts: [got.messages[0].receipt],
    });
    const { page, problems } = await signedIn(`#/groups/${group}`);
    const row = page.locator(`#dlq tr[data-id="${got.messages[0].msgId}"]`);
    await row.waitFor();
    expect(await row.textContent()).toContain("poison");
    await row.locator("input[type=checkbox]").check();
    await page.click("text=Resend selected");
    await expect.poll(() => page.textContent("#dlq-result")).toContain("Resent 1 message(s)");
    expect((await api("GET", `/v1/groups/${group}/dlq/messages`)).messages).toEqual([]);
    await expect.poll(() => page.textContent("#dlq")).toContain("The dead-letter queue is empty.");
    expect(problems).toEqual([]);
    await page.close();
  });

  it("shows open transactions and commits one", async () => {
    const topic = unique("tx");
    await api("PUT", `/v1/topics/${topic}`, { queues: 1 });
    const tx = await api("POST", `/v1/topics/${topic}/transactions`, {
      message: { body: "half" },
      producerGroup: "pg-console",
    });
    const { page, problems } = await signedIn("#/transactions");
    const row = page.locator(`#tx-table tr[data-id="${tx.txId}"]`);
    await row.waitFor();
    await row.locator("text=Commit").click();
    await expect.poll(() => page.textContent("#tx-table")).not.toContain(tx.msgId);
    const pulled = await api("GET", `/v1/topics/${topic}/queues/0/messages?offset=0`);
    expect(pulled.messages.map((m: { body: string }) => m.body)).toEqual(["half"]);
    expect(problems).toEqual([]);
    await page.close();
  });

  it("shows a producer group's signing secret once when it is made, and again when rotated", async () => {
    const { page, problems } = await signedIn("#/transactions");
    const pg = unique("pg");
    const save = async (rotate: boolean) => {
      await page.fill("#pg-name", pg);
      await page.fill("#pg-url", "https://app.example.com/edgemq-check");
      await page.setChecked("#pg-rotate", rotate);
      await page.click("#pg-form button[type=submit]");
      await expect
        .poll(() => page.textContent("#pg-form + .result"))
        .toContain(`Saved producer group ${pg}.`);
      return (await page.textContent("#pg-form + .result"))!;
    };
    const first = /\(shown once\): ([A-Za-z0-9_-]{43,})$/.exec(await save(false))?.[1];
    expect(first).toBeDefined();
    expect(await save(false)).toBe(`Saved producer group ${pg}.`);
    const rotated = /\(shown once\): ([A-Za-z0-9_-]{43,})$/.exec(await save(true))?.[1];
    expect(rotated).toBeDefined();
    expect(rotated).not.toBe(first);
    expect(problems).toEqual([]);
    await page.close();
  });

  it("saves a consumer group and a producer group, and mints a scoped token, from their forms", async () => {
    const group = unique("forms");
    const producerGroup = unique("pg-forms");
    const { page, problems } = await signedIn("#/groups");
    await page.fill("#group-name", group);
    await page.fill("#group-max", "3");
    await page.fill("#group-delays", "5s, 1m");
    await page.check("#group-orderly");
    await page.click("#group-form button[type=submit]");
    await page.waitForSelector(`#groups-table tr[data-id="${group}"]`);
    expect(await api("GET", `/v1/groups/${group}`)).toMatchObject({
      maxReconsumeTimes: 3,
      orderly: true,
      retryDelaysMs: [5000, 60_000],
    });

    await page.click("#nav a[data-nav=transactions]");
    await page.fill("#pg-name", producerGroup);
    await page.fill("#pg-after", "2s");
    await page.click("#pg-form button[type=submit]");
    await expect.poll(() => page.textContent("#pg-table")).toContain(producerGroup);
    expect((await api("GET", `/v1/producer-groups/${producerGroup}`)).checkAfterMs).toBe(2000);

    await page.click("#nav a[data-nav=tokens]");
    await page.fill("#token-sub", "web-forms");
    await page.fill("#token-publish", "orders*");
    await page.fill("#token-ttl", "2m");
    await page.click("#token-form button[type=submit]");
    const token = await page.locator("#token-value").inputValue();
    // The minted token may publish to orders* only.
    const send = (topic: string) =>
      fetch(`${server.url}/v1/topics/${topic}/messages`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify({ messages: [{ body: "x" }] }),
      });
    const topic = unique("orders");
    await api("PUT", `/v1/topics/${topic}`, { queues: 1 });
    expect((await send(topic)).status).toBe(200);
    expect((await send(unique("audit"))).status).toBe(403);
    expect(problems).toEqual([]);
    await page.close();
  });

  it("shows push subscriptions: state and last error, pause and resume, the DLQ with resend", async () => {
    // An endpoint on 127.0.0.1 that fails until told otherwise.
    let status = 500;
    const bodies: string[] = [];
    const hook: Server = createServer((req, res) => {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => {
        bodies.push(body);
        res.writeHead(status).end();
      });
    });
    await new Promise<void>((r) => hook.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/hook`;
    try {
      const topic = unique("pushed");
      const name = unique("hook");
      await api("PUT", `/v1/topics/${topic}`, { queues: 1 });
      await api("PUT", `/v1/push/${name}`, {
        topic,
        url,
        maxReconsumeTimes: 0,
        retryDelaysMs: [200],
      });
      const [sent] = (
        await api("POST", `/v1/topics/${topic}/messages`, { messages: [{ body: "to the dlq" }] })
      ).results;
      const { page, problems } = await signedIn("#/push");
      const row = page.locator(`#push-table tr[data-id="${name}"]`);
      await expect.poll(() => row.textContent(), { timeout: 10_000 }).toContain("HTTP 500");
      expect(await row.textContent()).toContain("failing");

      await page.click(`#push-table tr[data-id="${name}"] a`);
      await page.waitForSelector("#push-details");
      await expect.poll(() => page.textContent("#push-details")).toContain("HTTP 500");
      const dead = page.locator(`#dlq tr[data-id="${sent.msgId}"]`);
      await dead.waitFor({ timeout: 10_000 });
      await shot(page, "push");
      status = 200;
      await dead.locator("input[type=checkbox]").check();
      await page.click("text=Resend selected");
      await expect.poll(() => page.textContent("#dlq-result")).toContain("Resent 1 message(s)");
      await expect
        .poll(async () => (await api("GET", `/v1/push/${name}`)).stats.delivered, {
          timeout: 10_000,
        })
        .toBe(1);
      // The page refreshes every 2 s.
      await expect
        .poll(() => page.textContent("#push-details"), { timeout: 5000 })
        .toContain("active");

      await page.click("#view button:has-text('Pause')");
      await expect.poll(() => page.textContent("#push-sub-result")).toContain(`Paused ${name}`);
      expect((await api("GET", `/v1/push/${name}`)).paused).toBe(true);
      await expect
        .poll(() => page.textContent("#push-details"), { timeout: 5000 })
        .toContain("paused");
      await page.click("#view button:has-text('Resume')");
      await expect.poll(() => page.textContent("#push-sub-result")).toContain(`Resumed ${name}`);
      expect((await api("GET", `/v1/push/${name}`)).paused).toBe(false);

      // Created from the form, its signing secret is shown once.
      await page.click("#nav a[data-nav=push]");
      await page.waitForSelector("#push-form");
      const made = unique("formhook");
      await page.fill("#push-name", made);
      await expect.poll(() => page.locator(`#push-topic option[value="${topic}"]`).count()).toBe(1);
      await page.selectOption("#push-topic", topic);
      await page.fill("#push-url", url);
      await page.fill("#push-timeout", "2s");
      await page.click("#push-form button[type=submit]");
      await expect
        .poll(() => page.textContent("#push-result"))
        .toMatch(/Signing secret .*: [A-Za-z0-9_-]{43}/);
      expect((await api("GET", `/v1/push/${made}`)).timeoutMs).toBe(2000);
      await page.waitForSelector(`#push-table tr[data-id="${made}"]`);
      expect(problems).toEqual([]);
      await page.close();
    } finally {
      hook.closeAllConnections();
      await new Promise((r) => hook.close(r));
    }
  });

  it("shows schedules with their next fire; runs one now, pauses, resumes and deletes it", async () => {
    const topic = unique("cron");
    const name = unique("nightly");
    await api("PUT", `/v1/topics/${topic}`, { queues: 1 });
    const made = await api("PUT", `/v1/schedules/${name}`, {
      topic,
      cron: "0 3 * * *",
      timezone: "Europe/Paris",
      message: { body: "report" },
    });
    const { page, problems } = await signedIn("#/schedules");
    const row = page.locator(`#schedule-table tr[data-id="${name}"]`);
    await row.waitFor();
    const shown = await row.textContent();
    expect(shown).toContain("0 3 * * *");
    expect(shown).toContain("Europe/Paris");
    expect(shown).toContain("active");
    // The next fire as the console formats times (local time of the browser).
    const next = await page.evaluate((ms) => {
      const d = new Date(ms);
      const p = (x: number) => String(x).padStart(2, "0");
      return `${p(d.getHours())}:${p(d.getMinutes())}`;
    }, made.nextFireAt as number);
    expect(shown).toContain(next);
    await shot(page, "schedules");

    await row.locator("button:has-text('Run now')").click();
    await expect.poll(() => page.textContent("#schedule-result")).toContain(`Sent ${name}:run:`);
    const pulled = await api("GET", `/v1/topics/${topic}/queues/0/messages?offset=0`);
    expect(pulled.messages.map((m: any) => m.body)).toEqual(["report"]);

    await row.locator("button:has-text('Pause')").click();
    await expect.poll(() => row.textContent()).toContain("paused");
    expect((await api("GET", `/v1/schedules/${name}`)).paused).toBe(true);
    await row.locator("button:has-text('Resume')").click();
    await expect.poll(() => row.textContent()).toContain("active");
    await row.locator("button:has-text('Delete')").click();
    await expect.poll(() => page.textContent("#schedule-result")).toContain(`Deleted ${name}`);
    await expect.poll(() => row.count()).toBe(0);
    expect(problems).toEqual([]);
    await page.close();
  });

  it("refreshes the overview live: backlog and rates follow sends without a reload", async () => {
    const topic = unique("live");
    await api("PUT", `/v1/topics/${topic}`, { queues: 4 });
    const { page, problems } = await signedIn();
    const backlog = page.locator(`#topics-table tr[data-id="${topic}"] td:nth-child(3)`);
    await expect.poll(() => backlog.textContent()).toBe("0");
    await api("POST", `/v1/topics/${topic}/messages`, {
      messages: Array.from({ length: 40 }, (_, i) => ({ body: `m${i}`, keys: [`k${i}`] })),
    });
    await expect.poll(() => backlog.textContent(), { timeout: 10_000 }).toBe("40");
    // A second topic and some consumption make the picture for the README.
    const group = unique("billing");
    await api("POST", `/v1/groups/${group}/topics/${topic}/receive`, { max: 25 });
    await expect
      .poll(() => page.textContent(`#topics-table tr[data-id="${topic}"]`), { timeout: 10_000 })
      .toContain(group);
    await shot(page, "overview");
    expect(problems).toEqual([]);
    await page.close();
  });

  // UPDATE_DOCS_SCREENSHOT=1 npx vitest run --project node test/node/console.test.ts -t README
  it.runIf(process.env.UPDATE_DOCS_SCREENSHOT === "1")(
    "renders the README picture (docs/console.png)",
    async () => {
      for (const [topic, queues] of [
        ["orders", 8],
        ["payments", 4],
        ["audit-log", 2],
      ] as const) {
        await api("PUT", `/v1/topics/${topic}`, { queues });
      }
      await api("PUT", `/v1/groups/billing`, {});
      await api("POST", "/v1/groups/shipping/topics/orders/offsets/reset", { to: "earliest" });
      await api("POST", "/v1/groups/ledger/topics/payments/offsets/reset", { to: "earliest" });
      const burst = async (i: number) => {
        await api("POST", "/v1/topics/orders/messages", {
          messages: Array.from({ length: 60 }, (_, j) => ({
            body: JSON.stringify({ order: i * 60 + j }),
            keys: [`o-${i * 60 + j}`],
          })),
        });
        await api("POST", "/v1/topics/payments/messages", {
          messages: Array.from({ length: 15 }, (_, j) => ({ body: `p${j}` })),
        });
        await api("POST", "/v1/topics/audit-log/messages", {
          messages: [{ body: "login" }, { body: "logout" }],
        });
        await api("POST", "/v1/groups/billing/topics/orders/receive", { max: 45 });
      };
      const { page } = await signedIn();
      // Steady traffic across a few refreshes, so the rates show; the picture is taken while it runs.
      const traffic = (async () => {
        for (let i = 0; i < 12; i++) {
          await burst(i);
          await new Promise((r) => setTimeout(r, 400));
        }
      })();
      await page.waitForTimeout(2000);
      await expect
        .poll(() => page.textContent("#stat-in"), { timeout: 10_000 })
        .not.toMatch(/^(—|0\.0)$/);
      await page.waitForTimeout(1500);
      await page.screenshot({
        path: join(REPO_ROOT, "docs", "console.png"),
        clip: { x: 0, y: 0, width: 1280, height: 408 },
      });
      await traffic;
      await page.close();
    },
  );
});
