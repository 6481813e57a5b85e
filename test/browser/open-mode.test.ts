/**
 * Issue 16, item 5, in a real browser: Debian's Chromium against `npm
 * start`'s open mode (no secrets). A page of another origin tries what any
 * web page the owner visits could: a `text/plain` fetch (no preflight), a
 * text/plain form post shaped as JSON, a JSON fetch (preflighted), and a DNS
 * name rebound to 127.0.0.1 (Chromium's resolver maps `rebound.test` to
 * loopback). Nothing is stored. The console, served by the broker itself,
 * still works without a token.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchChromium, skipBrowserTests } from "../../scripts/chromium.ts";
import { type LocalServer, startLocalServer } from "../../scripts/local-server.ts";

let server: LocalServer;
let browser: Browser;
let attacker: Server;
let attackerUrl: string;
const dataDir = mkdtempSync(join(tmpdir(), "edgemq-open-browser-"));
let n = 0;
const unique = (p: string) => `${p}-${Date.now().toString(36)}-${n++}`;

async function api(method: string, path: string, body?: unknown): Promise<any> {
  const res = await fetch(server.url + path, {
    method,
    headers: { "content-type": "application/json" },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
  return res.json();
}

async function stored(topic: string): Promise<number> {
  const t = await api("GET", `/v1/topics/${topic}`);
  return (t.queueStats as { messages: number }[]).reduce((s, q) => s + q.messages, 0);
}

beforeAll(async () => {
  server = await startLocalServer({ port: 0, dataDir, quiet: true });
  // The attacker's site: any page, here on another loopback port.
  attacker = createServer((_req, res) => {
    res.writeHead(200, { "content-type": "text/html" }).end("<!doctype html><title>a page</title>");
  });
  await new Promise<void>((r) => attacker.listen(0, "127.0.0.1", r));
  attackerUrl = `http://127.0.0.1:${(attacker.address() as AddressInfo).port}`;
  if (!skipBrowserTests) {
    browser = await launchChromium(60_000, ["--host-resolver-rules=MAP rebound.test 127.0.0.1"]);
  }
});

afterAll(async () => {
  await browser?.close();
  await new Promise((r) => attacker?.close(r));
  await server?.stop("SIGTERM", { killAfterMs: 5000 });
  rmSync(dataDir, { recursive: true, force: true });
});

describe.skipIf(skipBrowserTests)("the open local broker and web pages", () => {
  it("stores nothing from another origin's page: text/plain fetch, JSON-shaped form, JSON fetch", async () => {
    const topic = unique("csrf");
    await api("PUT", `/v1/topics/${topic}`, { queues: 1 });
    const target = `${server.url}/v1/topics/${topic}/messages`;
    const page = await browser.newPage();
    await page.goto(`${attackerUrl}/`);
    const outcomes = await page.evaluate(async (url) => {
      const body = JSON.stringify({ messages: [{ body: "from a web page" }] });
      const out: string[] = [];
      // 1. No preflight: the browser sends it and hides the answer.
      await fetch(url, {
        method: "POST",
        mode: "no-cors",
        headers: { "content-type": "text/plain" },
        body,
      })
        .then(() => out.push("no-cors sent"))
        .catch((e) => out.push(`no-cors failed: ${e}`));
      // 2. Preflighted JSON: CORS must refuse the origin.
      await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body })
        .then((r) => out.push(`cors answered ${r.status}`))
        .catch(() => out.push("cors refused"));
      // 3. The classic JSON form: one field whose name and value make a JSON body.
      const frame = document.createElement("iframe");
      frame.name = "sink";
      document.body.append(frame);
      const form = document.createElement("form");
      form.method = "POST";
      form.action = url;
      form.enctype = "text/plain";
      form.target = "sink";
      const input = document.createElement("input");
      input.name = '{"messages":[{"body":"form","pad":"';
      input.value = '"}]}';
      form.append(input);
      document.body.append(form);
      const loaded = new Promise((r) => frame.addEventListener("load", r, { once: true }));
      form.submit();
      await loaded;
      out.push("form posted");
      return out;
    }, target);
    expect(outcomes).toEqual(["no-cors sent", "cors refused", "form posted"]);
    expect(await stored(topic)).toBe(0);
    await page.close();
  });

  it("refuses a DNS name rebound to 127.0.0.1, the console included", async () => {
    const topic = unique("rebind");
    await api("PUT", `/v1/topics/${topic}`, { queues: 1 });
    const rebound = `http://rebound.test:${server.port}`;
    const page = await browser.newPage();
    const consolePage = await page.goto(`${rebound}/console`);
    expect(consolePage?.status()).toBe(403);
    // Same-origin as far as the browser knows: no CORS stands in the way.
    const status = await page.evaluate(
      async ([url, body]) =>
        (
          await fetch(url!, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body,
          })
        ).status,
      [
        `${rebound}/v1/topics/${topic}/messages`,
        JSON.stringify({ messages: [{ body: "rebound" }] }),
      ],
    );
    expect(status).toBe(403);
    expect(await stored(topic)).toBe(0);
    await page.close();
  });

  it("keeps the console working: sign in with any token, create a topic, send and browse", async () => {
    const page = await browser.newPage();
    const problems: string[] = [];
    page.on("pageerror", (e) => problems.push(e.message));
    page.on("dialog", (d) => void d.accept());
    await page.goto(`${server.url}/console`);
    await page.fill("#login-token", "open");
    await page.click("#login-form button[type=submit]");
    await page.waitForSelector("#nav:not([hidden])");
    const topic = unique("console");
    await page.fill("#new-topic-name", topic);
    await page.fill("#new-topic-queues", "1");
    await page.click("#new-topic-form button[type=submit]");
    await page.waitForSelector(`#topics-table tr[data-id="${topic}"]`);
    await page.click(`#topics-table tr[data-id="${topic}"] a`);
    await page.waitForSelector("#queues-table tr[data-id=q0]");
    await page.fill("#send-body", "from the console");
    await page.click("#send-form button[type=submit]");
    await expect
      .poll(() => page.textContent("#send-result"))
      .toMatch(/^stored: \S+ on queue 0 at offset 0$/);
    await page.click("#browse-form button[type=submit]");
    await expect.poll(() => page.textContent("#browse-result")).toContain("from the console");
    expect(await stored(topic)).toBe(1);
    expect(problems).toEqual([]);
    await page.close();
  });
});
