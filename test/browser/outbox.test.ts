/**
 * The offline outbox in a real browser: Debian's Chromium, driven by
 * playwright-core, runs a page (test/browser/page/outbox-page.ts) that
 * produces with `outbox: true` and a scoped token, against the real local
 * server. The network goes away (`context.setOffline`), the page reloads and
 * crashes mid-way, the network comes back, and the broker must hold every
 * message exactly once.
 *
 * The page's own files are served to the browser through `context.route`
 * (fetched from the page server by Playwright, outside the emulated network),
 * standing in for an app shell cached by a service worker: a reload works
 * while offline, and only the broker is unreachable.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Browser, type BrowserContext, type Page } from "playwright-core";
import { launchChromium, skipBrowserTests } from "../../scripts/chromium.ts";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Admin, type Message, type ProducerSendResult } from "../../client/index.ts";
import { queueFor } from "../../src/protocol/routing.ts";
import { type LocalServer, startLocalServer } from "../../scripts/local-server.ts";
import { type PageServer, startPageServer } from "../../scripts/page-server.ts";
import type { RecordedEvent } from "./page/outbox-page.ts";

const ADMIN_TOKEN = "browser-test-admin";
const TOKEN_SECRET = "browser-test-secret";

const HTML = `<!doctype html>
<html><head><meta charset="utf-8"><title>outbox test</title></head>
<body><script type="module" src="/app.js"></script></body></html>`;

let server: LocalServer;
let pages: PageServer;
let browser: Browser;
let dataDir: string;
let admin: Admin;
const contexts: BrowserContext[] = [];

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "edgemq-browser-"));
  pages = await startPageServer({ entry: "test/browser/page/outbox-page.ts", html: HTML });
  server = await startLocalServer({
    port: 0,
    dataDir,
    quiet: true,
    // The page is another origin than the broker: CORS must let it in.
    env: { ADMIN_TOKEN, TOKEN_SECRET, CORS_ORIGINS: pages.url },
  });
  admin = new Admin({ endpoint: server.url, token: ADMIN_TOKEN });
  browser = await launchChromium();
});

afterEach(async () => {
  for (const c of contexts.splice(0)) await c.close().catch(() => {});
});

afterAll(async () => {
  await browser?.close();
  await pages?.close();
  await server?.stop("SIGTERM", { killAfterMs: 5000 });
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it returns true, for at most `timeoutMs`. */
async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  explain?: () => Promise<unknown>,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) {
      const why = explain ? `\n${JSON.stringify(await explain().catch(String))}` : "";
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}`);
    }
    await sleep(100);
  }
}

let n = 0;
/** A fresh topic, and a token that may only publish to it (what a web app would get). */
async function topicAndToken(
  queues: number,
  config: Parameters<Admin["createTopic"]>[1] = {},
): Promise<{ topic: string; token: string }> {
  const topic = `browser-${Date.now().toString(36)}-${n++}`;
  await admin.createTopic(topic, { queues, ...config });
  const res = await fetch(`${server.url}/v1/tokens`, {
    method: "POST",
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify({ sub: "browser-test", publish: [topic], ttlSeconds: 600 }),
  });
  expect(res.status).toBe(200);
  const { token } = (await res.json()) as { token: string };
  return { topic, token };
}

/** A browser context whose page files never need the (emulated) network. */
async function newContext(): Promise<BrowserContext> {
  // A routed document has no address of its own, so Chromium's Local Network
  // Access checks treat the page as public and its calls to the broker on
  // 127.0.0.1 need this permission (a deployed app on a public origin calling
  // a public broker does not).
  const context = await browser.newContext({ permissions: ["local-network-access"] });
  contexts.push(context);
  await context.route(`${pages.url}/**`, async (route) => {
    await route.fulfill({ response: await route.fetch() });
  });
  return context;
}

async function openPage(
  context: BrowserContext,
  token: string,
  opts: { sessions?: boolean } = {},
): Promise<Page> {
  const page = await context.newPage();
  const hash = new URLSearchParams({
    endpoint: server.url,
    token,
    ...(opts.sessions === false && { sessions: "0" }),
  });
  await page.goto(`${pages.url}/#${hash}`, { timeout: 20_000 });
  await page.waitForFunction(() => window.outboxTest !== undefined, undefined, { timeout: 20_000 });
  return page;
}

function send(
  page: Page,
  topic: string,
  bodies: string[],
  shardingKey?: string,
): Promise<ProducerSendResult[]> {
  return page.evaluate((a) => window.outboxTest!.send(a.topic, a.bodies, a.shardingKey), {
    topic,
    bodies,
    shardingKey,
  });
}

function pending(page: Page): Promise<number> {
  return page.evaluate(() => window.outboxTest!.pending());
}

function events(page: Page): Promise<RecordedEvent[]> {
  return page.evaluate(() => window.outboxTest!.events);
}

/** Kills the tab's renderer process: no unload, no pagehide, nothing runs. */
async function crash(context: BrowserContext, page: Page): Promise<void> {
  const cdp = await context.newCDPSession(page);
  const crashed = page.waitForEvent("crash", { timeout: 10_000 });
  // The command never answers: its target is gone.
  cdp.send("Page.crash").catch(() => {});
  await crashed;
  await page.close().catch(() => {});
}

/** Every message the broker holds for `topic`, read by offset from every queue. */
async function brokerMessages(topic: string): Promise<Message[]> {
  const details = await admin.getTopic(topic);
  const all: Message[] = [];
  for (const q of details.queueStats) {
    let offset = q.minOffset;
    for (let i = 0; i < 100 && offset < q.maxOffset; i++) {
      const res = await fetch(
        `${server.url}/v1/topics/${topic}/queues/${q.queue}/messages?offset=${offset}&max=1000`,
        { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } },
      );
      expect(res.status).toBe(200);
      const body = (await res.json()) as { messages: Message[]; nextOffset: number };
      all.push(...body.messages);
      offset = body.nextOffset;
    }
  }
  return all;
}

/** Asserts the broker holds exactly `expected` (msgId → body), each once. */
function expectExactlyOnce(stored: Message[], expected: Map<string, string>): void {
  const count = new Map<string, number>();
  for (const m of stored) count.set(m.msgId, (count.get(m.msgId) ?? 0) + 1);
  const twice = [...count].filter(([, c]) => c > 1).map(([id]) => id);
  expect(twice).toEqual([]);
  expect(stored.map((m) => [m.msgId, m.body]).sort()).toEqual([...expected].sort());
}

function queuedIds(results: ProducerSendResult[], bodies: string[], into: Map<string, string>) {
  results.forEach((r, i) => {
    expect(r.status).toBe("queued");
    into.set(r.msgId, bodies[i]!);
  });
}

const range = (prefix: string, from: number, to: number) =>
  Array.from({ length: to - from }, (_, i) => `${prefix}-${from + i}`);

describe.skipIf(skipBrowserTests)("the outbox in Chromium", () => {
  it("keeps messages sent offline across a reload and a tab crash, then delivers each exactly once", async () => {
    const { topic, token } = await topicAndToken(3);
    const context = await newContext();
    // The outbox drains over streaming sessions (the default): no send goes over HTTP.
    const httpSends: string[] = [];
    const sessions: string[] = [];
    context.on("request", (r) => {
      if (r.method() === "POST" && r.url().endsWith(`/topics/${topic}/messages`))
        httpSends.push(r.url());
    });
    let page = await openPage(context, token);
    const expected = new Map<string, string>();

    await context.setOffline(true);
    await waitFor("navigator.onLine to be false", () =>
      page.evaluate(() => navigator.onLine === false),
    );
    // Offline: every send resolves "queued" (stored in IndexedDB), nothing reaches the broker.
    queuedIds(await send(page, topic, range("a", 0, 5), "user-a"), range("a", 0, 5), expected);
    queuedIds(await send(page, topic, range("b", 0, 4), "user-b"), range("b", 0, 4), expected);
    const batch = range("batch", 0, 3);
    queuedIds(
      await page.evaluate((a) => window.outboxTest!.sendBatch(a.topic, a.batch), { topic, batch }),
      batch,
      expected,
    );
    expect(await pending(page)).toBe(12);

    // A reload mid-way, still offline: the outbox is still there, and grows.
    await page.reload({ timeout: 20_000 });
    await page.waitForFunction(() => window.outboxTest !== undefined, undefined, {
      timeout: 20_000,
    });
    expect(await pending(page)).toBe(12);
    queuedIds(await send(page, topic, range("a", 5, 8), "user-a"), range("a", 5, 8), expected);
    queuedIds(await send(page, topic, range("free", 0, 4)), range("free", 0, 4), expected);
    expect(await pending(page)).toBe(19);

    // The tab crashes (no unload handlers run); a new tab finds every message.
    await crash(context, page);
    page = await openPage(context, token);
    page.on("websocket", (ws) => sessions.push(ws.url()));
    expect(await pending(page)).toBe(19);
    queuedIds(await send(page, topic, range("b", 4, 6), "user-b"), range("b", 4, 6), expected);
    expect(await pending(page)).toBe(21);
    expect(await brokerMessages(topic)).toEqual([]);

    // Back online: the outbox drains by itself (the online event).
    await context.setOffline(false);
    await waitFor(
      "the outbox to drain",
      async () => (await pending(page)) === 0,
      () => events(page),
    );
    const seen = await events(page);
    expect(seen.filter((e) => e.type === "sent")).toHaveLength(21);
    expect(seen.filter((e) => e.type === "error" && e.kept === false)).toEqual([]);
    expect(seen.some((e) => e.type === "drained")).toBe(true);

    const stored = await brokerMessages(topic);
    expectExactlyOnce(stored, expected);
    expect(httpSends).toEqual([]);
    expect(sessions.some((u) => u.includes(`/v1/topics/${topic}/queues/`))).toBe(true);
    // Order per sharding key: each key's messages sit in one queue, in send order.
    for (const key of ["a", "b"]) {
      const mine = stored.filter((m) => m.body.startsWith(`${key}-`));
      expect(new Set(mine.map((m) => m.queue)).size).toBe(1);
      expect(mine.sort((x, y) => x.offset - y.offset).map((m) => m.body)).toEqual(
        range(key, 0, key === "a" ? 8 : 6),
      );
    }
  });

  it("stores a message once when the tab crashes after the broker took it but before the outbox removed it", async () => {
    const { topic, token } = await topicAndToken(2);
    const context = await newContext();
    // Over HTTP, so the test can hold back the broker's answer to the page.
    const page = await openPage(context, token, { sessions: false });

    // Sends reach the broker (Playwright forwards them), but the answer never
    // reaches the page: the tab dies first, with the message still in the outbox.
    const sendUrl = `${server.url}/v1/topics/${topic}/messages`;
    let forwarded!: (body: unknown) => void;
    const brokerAnswered = new Promise<unknown>((resolve) => (forwarded = resolve));
    await context.route(sendUrl, async (route) => {
      if (route.request().method() !== "POST") return route.continue();
      const response = await route.fetch();
      forwarded(await response.json());
      // No fulfill: the page waits for an answer until it crashes.
    });
    const sent = page.evaluate((t) => window.outboxTest!.send(t, ["only-once"]), topic);
    sent.catch(() => {}); // rejected by the crash
    const answer = (await Promise.race([
      brokerAnswered,
      sleep(20_000).then(() => ({ timeout: true })),
    ])) as { results?: { msgId: string; status: string }[] };
    expect(answer.results?.[0]?.status).toBe("stored");
    const msgId = answer.results![0]!.msgId;
    await crash(context, page);
    await context.unroute(sendUrl);

    // The next page load drains what the crashed tab left: the broker
    // recognises the msgId and stores nothing new.
    const again = await openPage(context, token, { sessions: false });
    await waitFor(
      "the outbox to drain",
      async () => (await pending(again)) === 0,
      () => events(again),
    );
    expect(await events(again)).toContainEqual({ type: "sent", msgId, status: "duplicate" });
    expectExactlyOnce(await brokerMessages(topic), new Map([[msgId, "only-once"]]));
  });

  it("keeps delivering other topics and other sharding keys while one queue is full (507) and one topic is forbidden (403), each key in order", async () => {
    // Two queues bounded at 3 messages each; queue `full` is filled up first.
    const { topic, token } = await topicAndToken(2, {
      maxBacklogMessages: 3,
      overflowPolicy: "reject",
    });
    const forbidden = `browser-forbidden-${Date.now().toString(36)}-${n++}`;
    await admin.createTopic(forbidden, { queues: 1 }); // the token may not publish here
    const keyOn = (q: number) =>
      ["user-1", "user-2", "user-3", "user-4", "user-5"].find((k) => queueFor(k, 2) === q)!;
    const stuckKey = keyOn(1);
    const freeKey = keyOn(0);
    const fill = await fetch(`${server.url}/v1/topics/${topic}/messages?queue=1`, {
      method: "POST",
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ messages: range("fill", 0, 3).map((body) => ({ body })) }),
    });
    expect(fill.status).toBe(200);

    const context = await newContext();
    // Over HTTP: the lanes' holding is what is under test, against HTTP's
    // cross-queue answers (see the note on `duplicate` below); the first test
    // drains over sessions.
    const page = await openPage(context, token, { sessions: false });
    // Interleaved, as an app would send them: one drain meets all three outcomes.
    const results = await page.evaluate(
      (a) =>
        Promise.all([
          window.outboxTest!.send(a.forbidden, ["no-1"]),
          window.outboxTest!.send(a.topic, ["stuck-1"], a.stuckKey),
          window.outboxTest!.send(a.topic, ["free-1"], a.freeKey),
          window.outboxTest!.send(a.forbidden, ["no-2"]),
          window.outboxTest!.send(a.topic, ["stuck-2"], a.stuckKey),
          window.outboxTest!.send(a.topic, ["free-2", "free-3"], a.freeKey),
        ]),
      { topic, forbidden, stuckKey, freeKey },
    );
    // The held ones resolve `queued`. The free key's are `stored`, or `queued`
    // when a drain first met them in one batch with a held message: a batch
    // spanning queues is all or nothing, so the outbox keeps them and sends
    // them again on their own lane (how the drains split the sends depends on
    // timing). Either way they reach the broker without waiting for the held ones.
    const status = results.flat().map((r) => r.status);
    expect([status[0], status[1], status[3], status[4]]).toEqual([
      "queued",
      "queued",
      "queued",
      "queued",
    ]);
    for (const i of [2, 5, 6]) expect(["stored", "queued"]).toContain(status[i]);
    const onBroker = async (prefix: string) =>
      (await brokerMessages(topic))
        .filter((m) => m.body.startsWith(prefix))
        .sort((x, y) => x.offset - y.offset)
        .map((m) => m.body);
    await waitFor(
      "the free sharding key to be delivered",
      async () => (await pending(page)) === 4,
      () => events(page),
    );
    expect(await onBroker("free-")).toEqual(["free-1", "free-2", "free-3"]); // each once, in order
    expect(await onBroker("stuck-")).toEqual([]);
    expect(await pending(page)).toBe(4);
    const seen = await events(page);
    const kept = seen.filter((e) => e.type === "error" && e.kept === true).map((e) => e.code);
    expect(kept).toContain("QUEUE_FULL");
    expect(kept).toContain("FORBIDDEN");
    expect(seen.filter((e) => e.type === "error" && e.kept === false)).toEqual([]);

    // Room on the full queue: its key drains by itself, in order; the forbidden topic stays held.
    await admin.createTopic(topic, {
      queues: 2,
      maxBacklogMessages: 100,
      overflowPolicy: "reject",
    });
    await waitFor(
      "the held sharding key to drain",
      async () => (await pending(page)) === 2,
      () => events(page),
    );
    expect(await onBroker("stuck-")).toEqual(["stuck-1", "stuck-2"]);
    expect(await brokerMessages(forbidden)).toEqual([]);
  });
});
