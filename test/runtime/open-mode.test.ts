/**
 * Issue 16, item 5: the open local mode (`npm start` with no secrets) is not
 * a door for web pages. A cross-site `text/plain` POST (no preflight), a
 * form post, a page of another origin and a DNS name rebound to 127.0.0.1
 * are refused and change nothing; the broker's own pages (the console), and
 * clients outside browsers (no Origin, JSON bodies), work as before. With a
 * secret set, none of this applies: tokens are what a page cannot send.
 * test/node/open-mode.test.ts does the same with a real browser.
 */
import { describe, expect, it } from "vitest";
import { api, createTopic, unique } from "./helpers.ts";
import { callWithEnv, expectError } from "./token-helpers.ts";

const OPEN = { ADMIN_TOKEN: undefined, TOKEN_SECRET: undefined, EDGEMQ_LOCAL: "1" };
const BASE = "http://127.0.0.1:8787";

async function open(
  method: string,
  path: string,
  init: { body?: string; headers?: Record<string, string>; base?: string; env?: object } = {},
) {
  const res = await callWithEnv({ ...OPEN, ...init.env }, method, path, {
    base: init.base ?? BASE,
    headers: init.headers ?? {},
    ...(init.body !== undefined && { body: init.body }),
  });
  const text = await res.text();
  let body: any = text;
  try {
    body = JSON.parse(text);
  } catch {
    // HTML (the console)
  }
  return { status: res.status, body, headers: res.headers };
}

async function stored(topic: string): Promise<number> {
  const r = await api("GET", `/v1/topics/${topic}`);
  return (r.body.queueStats as { messages: number }[]).reduce((n, q) => n + q.messages, 0);
}

const sendBody = JSON.stringify({ messages: [{ body: "from a web page" }] });

describe("open mode refuses what only a web page sends", () => {
  it("refuses a text/plain POST (sent cross-site without a preflight) and stores nothing", async () => {
    const topic = await createTopic({ queues: 1 });
    for (const type of [
      "text/plain",
      "text/plain;charset=UTF-8",
      "application/x-www-form-urlencoded",
      "multipart/form-data; boundary=x",
    ]) {
      const r = await open("POST", `/v1/topics/${topic}/messages`, {
        body: sendBody,
        headers: { "content-type": type },
      });
      expectError(r, 415, "UNSUPPORTED_MEDIA_TYPE");
    }
    // A body with no type at all (a no-cors fetch of a Blob) is refused too.
    const untyped = await open("POST", `/v1/topics/${topic}/messages`, { body: sendBody });
    expectError(untyped, 415, "UNSUPPORTED_MEDIA_TYPE");
    expect(await stored(topic)).toBe(0);
  });

  it("refuses a page of another origin even with a JSON body", async () => {
    const topic = await createTopic({ queues: 1 });
    for (const origin of [
      "https://evil.example",
      "http://127.0.0.1:3000",
      "http://localhost:8787",
      "null",
    ]) {
      const r = await open("POST", `/v1/topics/${topic}/messages`, {
        body: sendBody,
        headers: { "content-type": "application/json", origin },
      });
      expectError(r, 403, "FORBIDDEN");
    }
    const preflight = await open("OPTIONS", `/v1/topics/${topic}/messages`, {
      headers: { origin: "https://evil.example", "access-control-request-method": "POST" },
    });
    expect(preflight.status).toBe(403);
    expect(preflight.headers.get("access-control-allow-origin")).toBeNull();
    expect(await stored(topic)).toBe(0);
  });

  it("refuses cross-site requests that carry no Origin (an <img> or <script> GET)", async () => {
    for (const site of ["cross-site", "same-site"]) {
      const r = await open("GET", "/v1/topics", { headers: { "sec-fetch-site": site } });
      expectError(r, 403, "FORBIDDEN");
    }
  });

  it("refuses a Host that is not loopback (a DNS name rebound to 127.0.0.1), console included", async () => {
    const rebound = "http://rebound.example:8787";
    for (const path of ["/v1/topics", "/console", "/metrics"]) {
      const r = await open("GET", path, { base: rebound });
      expectError(r, 403, "FORBIDDEN");
    }
    // Same-origin as far as the browser knows: the page and the API share the rebound name.
    const topic = await createTopic({ queues: 1 });
    const r = await open("POST", `/v1/topics/${topic}/messages`, {
      base: rebound,
      body: sendBody,
      headers: { "content-type": "application/json", origin: rebound },
    });
    expectError(r, 403, "FORBIDDEN");
    // A loopback URL with a forged Host header is refused as well.
    const forged = await open("GET", "/v1/topics", { headers: { host: "rebound.example:8787" } });
    expectError(forged, 403, "FORBIDDEN");
    expect(await stored(topic)).toBe(0);
  });

  it("does not count CORS_ORIGINS=* as allowing every page while open", async () => {
    const r = await open("GET", "/v1/topics", {
      headers: { origin: "https://evil.example" },
      env: { CORS_ORIGINS: "*" },
    });
    expectError(r, 403, "FORBIDDEN");
  });
});

describe("open mode keeps working for its own clients", () => {
  it("serves loopback names: 127.0.0.1, localhost, [::1]", async () => {
    for (const base of ["http://127.0.0.1:8787", "http://localhost:8787", "http://[::1]:8787"]) {
      expect((await open("GET", "/v1/topics", { base })).status, base).toBe(200);
    }
  });

  it("takes JSON from clients without an Origin (CLI, SDK, curl with a JSON type)", async () => {
    const topic = unique("open");
    const made = await open("PUT", `/v1/topics/${topic}`, {
      body: '{"queues": 1}',
      headers: { "content-type": "application/json; charset=utf-8" },
    });
    expect(made.status).toBe(200);
    const sent = await open("POST", `/v1/topics/${topic}/messages`, {
      body: sendBody,
      headers: { "content-type": "Application/JSON" },
    });
    expect(sent.status).toBe(200);
    // Calls without a body need no type (purge, commit, delete).
    expect((await open("POST", `/v1/topics/${topic}/purge`)).status).toBe(200);
    expect((await open("DELETE", `/v1/topics/${topic}`)).status).toBe(200);
  });

  it("takes the console's own requests (same origin) and listed origins", async () => {
    const topic = await createTopic({ queues: 1 });
    const console = await open("GET", "/console", { headers: { "sec-fetch-site": "none" } });
    expect(console.status).toBe(200);
    const same = await open("POST", `/v1/topics/${topic}/messages`, {
      body: sendBody,
      headers: {
        "content-type": "application/json",
        origin: BASE,
        "sec-fetch-site": "same-origin",
      },
    });
    expect(same.status).toBe(200);
    const app = "http://127.0.0.1:5173";
    const listed = await open("POST", `/v1/topics/${topic}/messages`, {
      body: sendBody,
      headers: { "content-type": "application/json", origin: app, "sec-fetch-site": "same-site" },
      env: { CORS_ORIGINS: app },
    });
    expect(listed.status).toBe(200);
    expect(listed.headers.get("access-control-allow-origin")).toBe(app);
    expect(await stored(topic)).toBe(2);
  });

  it("leaves a broker with secrets to its tokens: no Host, Origin or type rules", async () => {
    const topic = await createTopic({ queues: 1 });
    const r = await callWithEnv({}, "POST", `/v1/topics/${topic}/messages`, {
      base: "http://mq.example.com",
      headers: { authorization: "Bearer test-admin", "content-type": "text/plain" },
      body: sendBody,
    });
    expect(r.status).toBe(200);
  });
});
