/**
 * Push subscriptions over HTTP against the real local server (workerd,
 * SQLite on disk, real alarms and outbound fetches): a node:http endpoint on
 * 127.0.0.1 built on the SDK's createPushHandler (so every delivery it
 * handles passed signature and timestamp verification) that succeeds, fails,
 * stalls or answers 429 with Retry-After, per subscription. Pinned: retries
 * with their delays, the DLQ once, the concurrency bound, orderly delivery
 * per sharding key, DELETE and pause stopping deliveries, Retry-After
 * honoured, a restart in between, trace context end to end, bad input
 * storing nothing, and the SDK's Admin and the CLI. Every wait is bounded;
 * timings are asserted as lower bounds only.
 */
import { spawn } from "node:child_process";
import { type IncomingMessage, type Server, type ServerResponse, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Admin, type PushMessage, createPushHandler } from "../../client/index.ts";
import { type LocalServer, REPO_ROOT } from "../../scripts/local-server.ts";
import { call, serverFixture } from "./server-fixture.ts";

let n = 0;
const unique = (prefix: string) => `${prefix}-${Date.now().toString(36)}-${(n++).toString(36)}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** How an endpoint answers, per subscription. */
type Mode =
  | { kind: "ok"; delayMs?: number }
  | { kind: "fail"; status: number }
  | { kind: "stall" }
  | { kind: "retry-after"; status: 429 | 503; seconds: number };

interface Delivery {
  at: number;
  message: PushMessage;
  headers: Record<string, string>;
}

interface Endpoint {
  mode: Mode;
  secret: string[];
  deliveries: Delivery[];
  /** Requests that did not pass createPushHandler's verification (so never reached the handler). */
  refused: number;
  inflight: number;
  maxInflight: number;
  /** In flight per sharding key, and the most seen at once for any key. */
  perKey: Map<string, number>;
  maxPerKey: number;
}

const endpoints = new Map<string, Endpoint>();
/** Releases stalled handlers at the end. */
const stalled: (() => void)[] = [];
let hookServer: Server;
let hookBase: string;

function endpoint(name: string, mode: Mode): Endpoint {
  const e: Endpoint = {
    mode,
    secret: [],
    deliveries: [],
    refused: 0,
    inflight: 0,
    maxInflight: 0,
    perKey: new Map(),
    maxPerKey: 0,
  };
  endpoints.set(name, e);
  return e;
}

/** node:http to the SDK's Request/Response handler (the "Node with a small adapter" case). */
async function toRequest(req: IncomingMessage): Promise<Request> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const headers = new Headers();
  for (const [k, v] of Object.entries(req.headers)) {
    if (typeof v === "string") headers.set(k, v);
    else if (Array.isArray(v)) headers.set(k, v.join(", "));
  }
  return new Request(`http://127.0.0.1${req.url}`, {
    method: req.method!,
    headers,
    body: chunks.length ? Buffer.concat(chunks) : null,
  });
}

async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const name = decodeURIComponent((req.url ?? "").split("/")[2] ?? "");
  const e = endpoints.get(name);
  if (!e) {
    res.writeHead(404).end();
    return;
  }
  const request = await toRequest(req);
  let handled = false;
  const handler = createPushHandler({
    signingSecret: e.secret,
    handler: async (message, r) => {
      handled = true;
      e.deliveries.push({
        at: Date.now(),
        message,
        headers: Object.fromEntries(r.headers),
      });
      const key = message.shardingKey ?? "";
      e.inflight++;
      e.maxInflight = Math.max(e.maxInflight, e.inflight);
      e.perKey.set(key, (e.perKey.get(key) ?? 0) + 1);
      e.maxPerKey = Math.max(e.maxPerKey, e.perKey.get(key)!);
      try {
        const mode = e.mode;
        if (mode.kind === "ok") {
          if (mode.delayMs) await sleep(mode.delayMs);
          return;
        }
        if (mode.kind === "fail") return new Response("no", { status: mode.status });
        if (mode.kind === "retry-after") {
          return new Response("later", {
            status: mode.status,
            headers: { "retry-after": String(mode.seconds) },
          });
        }
        await new Promise<void>((resolve) => stalled.push(resolve));
        return new Response("too late", { status: 200 });
      } finally {
        e.inflight--;
        e.perKey.set(key, e.perKey.get(key)! - 1);
      }
    },
  });
  const answer = await handler(request);
  if (!handled) e.refused++;
  if (res.destroyed) return;
  res.writeHead(answer.status, Object.fromEntries(answer.headers));
  res.end(Buffer.from(await answer.arrayBuffer()));
}

const main = serverFixture("push");
let server: LocalServer;
let admin: Admin;

beforeAll(async () => {
  hookServer = createServer((req, res) => {
    serve(req, res).catch(() => res.destroyed || res.writeHead(500).end());
  });
  await new Promise<void>((r) => hookServer.listen(0, "127.0.0.1", r));
  hookBase = `http://127.0.0.1:${(hookServer.address() as AddressInfo).port}`;
  server = await main.start();
  admin = new Admin({ endpoint: server.url });
});

afterAll(async () => {
  for (const release of stalled) release();
  hookServer.closeAllConnections();
  await new Promise((r) => hookServer.close(r));
});

async function topic(queues = 1, base = server.url): Promise<string> {
  const t = unique("t");
  const r = await call(base, "PUT", `/v1/topics/${t}`, { queues });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return t;
}

/** Creates a subscription delivering to this file's endpoint in `mode`. */
async function subscribe(
  t: string,
  mode: Mode,
  config: Record<string, unknown> = {},
  base = server.url,
): Promise<{ name: string; e: Endpoint; secret: string }> {
  const name = unique("hook");
  const e = endpoint(name, mode);
  const r = await call(base, "PUT", `/v1/push/${name}`, {
    topic: t,
    url: `${hookBase}/s/${name}`,
    ...config,
  });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  expect(typeof r.body.signingSecret).toBe("string");
  e.secret = [r.body.signingSecret];
  return { name, e, secret: r.body.signingSecret };
}

async function send(t: string, messages: Record<string, unknown>[], base = server.url) {
  const r = await call(base, "POST", `/v1/topics/${t}/messages`, { messages });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body.results as { msgId: string; offset: number }[];
}

/** Waits (bounded) until `cond` holds; answers whether it did. */
async function until(cond: () => boolean | Promise<boolean>, ms = 15_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await cond()) return true;
    await sleep(25);
  }
  return cond();
}

const stats = async (name: string, base = server.url) =>
  (await call(base, "GET", `/v1/push/${name}`)).body.stats;

describe("delivery", () => {
  it("POSTs each message as delivered, signed, with X-Edgemq-Msg-Id; a 2xx acks it", async () => {
    const t = await topic(2);
    const { name, e } = await subscribe(t, { kind: "ok" });
    const sent = await send(t, [
      { body: "one", tag: "A", keys: ["k1"], properties: { region: "eu" }, shardingKey: "s1" },
      { body: "dHdv", encoding: "base64" },
    ]);
    expect(await until(() => e.deliveries.length === 2)).toBe(true);
    expect(e.refused).toBe(0);
    const byId = new Map(e.deliveries.map((d) => [d.message.msgId, d]));
    const first = byId.get(sent[0]!.msgId)!;
    expect(first.message).toMatchObject({
      msgId: sent[0]!.msgId,
      topic: t,
      body: "one",
      encoding: "utf8",
      tag: "A",
      keys: ["k1"],
      properties: { region: "eu" },
      shardingKey: "s1",
      reconsumeTimes: 0,
    });
    for (const f of ["queue", "offset", "bornAt", "storedAt"])
      expect(typeof (first.message as any)[f]).toBe("number");
    expect(first.message).not.toHaveProperty("receipt");
    expect(first.headers["x-edgemq-msg-id"]).toBe(sent[0]!.msgId);
    expect(first.headers["x-edgemq-signature"]).toMatch(/^v1=[0-9a-f]{64}$/);
    expect(first.headers).not.toHaveProperty("traceparent");
    expect(byId.get(sent[1]!.msgId)!.message).toMatchObject({ body: "dHdv", encoding: "base64" });
    // Acked: the group has consumed both, and the stats say so.
    expect(await until(async () => (await stats(name)).delivered === 2)).toBe(true);
    const s = await stats(name);
    expect(s).toMatchObject({
      delivered: 2,
      failed: 0,
      inflight: 0,
      lag: 0,
      dlq: 0,
      lastError: null,
    });
    const group = await call(server.url, "GET", `/v1/groups/${name}`);
    expect(group.status).toBe(200);
    expect(group.body.topics[t].reduce((a: number, q: any) => a + q.lag, 0)).toBe(0);
  });

  it("retries a failing delivery after the subscription's delays, then moves it to the DLQ once", async () => {
    const t = await topic();
    const { name, e } = await subscribe(
      t,
      { kind: "fail", status: 500 },
      { retryDelaysMs: [300, 700], maxReconsumeTimes: 2 },
    );
    const [sent] = await send(t, [{ body: "doomed" }]);
    expect(await until(async () => (await stats(name)).dlq === 1)).toBe(true);
    expect(e.deliveries.map((d) => d.message.reconsumeTimes)).toEqual([0, 1, 2]);
    const [a, b, c] = e.deliveries.map((d) => d.at);
    expect(b! - a!).toBeGreaterThanOrEqual(300 - 5);
    expect(c! - b!).toBeGreaterThanOrEqual(700 - 5);
    const dlq = await call(server.url, "GET", `/v1/groups/${name}/dlq/messages`);
    expect(dlq.body.messages.map((m: any) => m.msgId)).toEqual([sent!.msgId]);
    // Once: no further delivery comes, and the DLQ holds it once.
    await sleep(1200);
    expect(e.deliveries).toHaveLength(3);
    expect((await stats(name)).dlq).toBe(1);
    const s = await stats(name);
    expect(s).toMatchObject({ delivered: 0, failed: 3, inflight: 0, lastError: "HTTP 500" });
    expect(typeof s.lastErrorAt).toBe("number");
    // Resent from the DLQ, it is delivered again from reconsumeTimes 0.
    e.mode = { kind: "ok" };
    const resend = await call(server.url, "POST", `/v1/groups/${name}/dlq/resend`, {});
    expect(resend.status, JSON.stringify(resend.body)).toBe(200);
    expect(await until(() => e.deliveries.length === 4)).toBe(true);
    expect(e.deliveries[3]!.message).toMatchObject({ msgId: sent!.msgId, reconsumeTimes: 0 });
    expect(await until(async () => (await stats(name)).dlq === 0)).toBe(true);
  });

  it("counts no answer within timeoutMs as a failure and retries it", async () => {
    const t = await topic();
    const { name, e } = await subscribe(
      t,
      { kind: "stall" },
      { timeoutMs: 300, retryDelaysMs: [100], maxReconsumeTimes: 1 },
    );
    await send(t, [{ body: "slowpoke" }]);
    expect(await until(async () => (await stats(name)).dlq === 1)).toBe(true);
    expect(e.deliveries).toHaveLength(2);
    expect(e.deliveries[1]!.at - e.deliveries[0]!.at).toBeGreaterThanOrEqual(300 + 100 - 5);
    expect((await stats(name)).lastError).toMatch(/timeout/);
  });

  it("honours a longer Retry-After on a 429", async () => {
    const t = await topic();
    const { name, e } = await subscribe(
      t,
      { kind: "retry-after", status: 429, seconds: 2 },
      { retryDelaysMs: [50] },
    );
    await send(t, [{ body: "busy" }]);
    expect(await until(() => e.deliveries.length === 1)).toBe(true);
    e.mode = { kind: "ok" };
    expect(await until(() => e.deliveries.length === 2)).toBe(true);
    expect(e.deliveries[1]!.at - e.deliveries[0]!.at).toBeGreaterThanOrEqual(2000 - 5);
    expect(await until(async () => (await stats(name)).delivered === 1)).toBe(true);
    expect((await stats(name)).lastError).toBe("HTTP 429");
  });

  it("keeps at most maxConcurrency deliveries in flight", async () => {
    const t = await topic(2);
    // 4 over 2 queues: each queue's shard holds 2 at a time.
    const { e } = await subscribe(t, { kind: "ok", delayMs: 150 }, { maxConcurrency: 4 });
    await send(
      t,
      Array.from({ length: 24 }, (_, i) => ({ body: `m${i}` })),
    );
    expect(await until(() => e.deliveries.length === 24, 20_000)).toBe(true);
    expect(e.maxInflight).toBeLessThanOrEqual(4);
    // Deliveries did overlap: the bound was reached, not just never approached.
    expect(e.maxInflight).toBeGreaterThanOrEqual(3);
    expect(new Set(e.deliveries.map((d) => d.message.msgId)).size).toBe(24);
  });

  it("an orderly subscription delivers one message per sharding key at a time, in offset order", async () => {
    const t = await topic();
    const { e } = await subscribe(
      t,
      { kind: "ok", delayMs: 60 },
      { orderly: true, maxConcurrency: 4 },
    );
    const keys = ["a", "b", "c"];
    await send(
      t,
      Array.from({ length: 15 }, (_, i) => ({ body: `${i}`, shardingKey: keys[i % 3] })),
    );
    expect(await until(() => e.deliveries.length === 15, 20_000)).toBe(true);
    expect(e.maxPerKey).toBe(1);
    // Keys did go in parallel.
    expect(e.maxInflight).toBeGreaterThan(1);
    for (const k of keys) {
      const offsets = e.deliveries
        .filter((d) => d.message.shardingKey === k)
        .map((d) => d.message.offset);
      expect(offsets).toEqual([...offsets].sort((x, y) => x - y));
    }
  });

  it("a failing endpoint backs off without slowing another subscription of the same topic", async () => {
    const t = await topic();
    const bad = await subscribe(
      t,
      { kind: "stall" },
      { timeoutMs: 2000, retryDelaysMs: [1000], maxConcurrency: 8 },
    );
    const good = await subscribe(t, { kind: "ok" }, { maxConcurrency: 8 });
    await send(
      t,
      Array.from({ length: 20 }, (_, i) => ({ body: `x${i}` })),
    );
    expect(await until(() => good.e.deliveries.length === 20, 10_000)).toBe(true);
    // All of them before the stalled endpoint's first delivery even timed out.
    expect(good.e.deliveries.at(-1)!.at).toBeLessThan(bad.e.deliveries[0]!.at + 2000);
    // The stalled endpoint holds its part of the shard's fetches, and once it failed one probe at a time.
    expect(await until(async () => (await stats(bad.name)).failed >= 1, 10_000)).toBe(true);
    expect(bad.e.maxInflight).toBeLessThanOrEqual(6);
  });
});

describe("stopping", () => {
  it("DELETE stops deliveries; the group and its offsets stay", async () => {
    const t = await topic();
    const { name, e } = await subscribe(t, { kind: "ok" });
    await send(t, [{ body: "before" }]);
    expect(await until(() => e.deliveries.length === 1)).toBe(true);
    expect(await until(async () => (await stats(name)).delivered === 1)).toBe(true);
    const del = await call(server.url, "DELETE", `/v1/push/${name}`);
    expect(del.status).toBe(200);
    expect((await call(server.url, "GET", `/v1/push/${name}`)).status).toBe(404);
    expect((await call(server.url, "DELETE", `/v1/push/${name}`)).status).toBe(404);
    await send(t, [{ body: "after-1" }, { body: "after-2" }]);
    await sleep(1000);
    expect(e.deliveries).toHaveLength(1);
    const offsets = await call(server.url, "GET", `/v1/groups/${name}/topics/${t}/offsets`);
    expect(offsets.status).toBe(200);
    expect(offsets.body.offsets[0]).toMatchObject({ offset: 1, maxOffset: 3, lag: 2 });
  });

  it("paused stops deliveries; resumed, it goes on from where it stopped", async () => {
    const t = await topic();
    const { name, e } = await subscribe(t, { kind: "ok" }, { paused: true });
    await send(t, [{ body: "p1" }, { body: "p2" }]);
    await sleep(800);
    expect(e.deliveries).toHaveLength(0);
    expect((await stats(name)).lag).toBe(2);
    const r = await call(server.url, "PUT", `/v1/push/${name}`, { paused: false });
    expect(r.status).toBe(200);
    expect(r.body).not.toHaveProperty("signingSecret");
    expect(await until(() => e.deliveries.length === 2)).toBe(true);
    expect(e.deliveries.map((d) => d.message.body).sort()).toEqual(["p1", "p2"]);
  });
});

describe("signing", () => {
  it("rotateSecret answers a new secret; deliveries are signed with both while they overlap", async () => {
    const t = await topic();
    const { name, e, secret } = await subscribe(t, { kind: "ok" });
    const r = await call(server.url, "PUT", `/v1/push/${name}`, { rotateSecret: true });
    expect(r.status).toBe(200);
    const fresh = r.body.signingSecret as string;
    expect(fresh).toMatch(/^[A-Za-z0-9_-]{43,}$/);
    expect(fresh).not.toBe(secret);
    // The endpoint knows only the new one: the broker's second signature is the old one's.
    e.secret = [fresh];
    await send(t, [{ body: "rotated" }]);
    // The shard reads secrets at most every 30 s; the install on PUT dropped its copy.
    expect(await until(() => e.deliveries.length === 1)).toBe(true);
    expect(e.deliveries[0]!.headers["x-edgemq-signature"]!.split(",")).toHaveLength(2);
    expect(e.refused).toBe(0);
  });

  it("a delivery signed with another secret is refused by createPushHandler (401) and retried", async () => {
    const t = await topic();
    const { name, e } = await subscribe(t, { kind: "ok" }, { retryDelaysMs: [100] });
    e.secret = ["not-the-subscriptions-secret"];
    await send(t, [{ body: "forged?" }]);
    expect(await until(() => e.refused >= 2)).toBe(true);
    expect(e.deliveries).toHaveLength(0);
    expect((await stats(name)).lastError).toBe("HTTP 401");
  });
});

describe("trace context", () => {
  const traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  const own = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";

  it("the send's traceparent header applies to messages without one; stored, queried, pulled and pushed unchanged", async () => {
    const t = await topic();
    const { e } = await subscribe(t, { kind: "ok" });
    const res = await fetch(`${server.url}/v1/topics/${t}/messages`, {
      method: "POST",
      headers: { "content-type": "application/json", traceparent, tracestate: "vendor=abc" },
      body: JSON.stringify({
        messages: [
          { body: "inherits" },
          { body: "own", traceparent: own, tracestate: "other=1,vendor=2" },
        ],
      }),
    });
    expect(res.status).toBe(200);
    const [a, b] = ((await res.json()) as any).results;
    expect(await until(() => e.deliveries.length === 2)).toBe(true);
    const pushed = new Map(e.deliveries.map((d) => [d.message.msgId, d]));
    expect(pushed.get(a.msgId)!.headers.traceparent).toBe(traceparent);
    expect(pushed.get(a.msgId)!.headers.tracestate).toBe("vendor=abc");
    expect(pushed.get(a.msgId)!.message).toMatchObject({ traceparent, tracestate: "vendor=abc" });
    expect(pushed.get(b.msgId)!.headers.traceparent).toBe(own);
    expect(pushed.get(b.msgId)!.headers.tracestate).toBe("other=1,vendor=2");
    const pulled = await call(server.url, "GET", `/v1/topics/${t}/queues/0/messages?offset=0`);
    expect(pulled.body.messages.map((m: any) => m.traceparent)).toEqual([traceparent, own]);
    const queried = await call(server.url, "GET", `/v1/topics/${t}/messages/${b.msgId}`);
    expect(queried.body).toMatchObject({ traceparent: own, tracestate: "other=1,vendor=2" });
    const received = await call(
      server.url,
      "POST",
      `/v1/groups/${unique("g")}/topics/${t}/receive`,
      {},
    );
    expect(received.body.messages[0]).toMatchObject({ traceparent, tracestate: "vendor=abc" });
  });

  it("a malformed traceparent (field or header) is 400 naming it, and stores nothing", async () => {
    const t = await topic();
    const field = await call(server.url, "POST", `/v1/topics/${t}/messages`, {
      messages: [{ body: "ok" }, { body: "bad", traceparent: "00-xyz-01" }],
    });
    expect(field.status).toBe(400);
    expect(field.body.error.code).toBe("BAD_REQUEST");
    expect(field.body.error.message).toMatch(/messages\[1\].*traceparent/);
    const header = await fetch(`${server.url}/v1/topics/${t}/messages`, {
      method: "POST",
      headers: { "content-type": "application/json", traceparent: "01-nonsense" },
      body: JSON.stringify({ messages: [{ body: "x" }] }),
    });
    expect(header.status).toBe(400);
    expect(((await header.json()) as any).error.message).toMatch(/traceparent header/);
    const stored = await call(server.url, "GET", `/v1/topics/${t}`);
    expect(stored.body.queueStats[0].maxOffset).toBe(0);
  });
});

describe("bad input", () => {
  it("refuses each bad field with 400 naming it, storing nothing", async () => {
    const t = await topic();
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ topic: t, url: "ftp://127.0.0.1/x" }, /url/],
      [{ topic: t, url: "not a url" }, /url/],
      [{ topic: t, url: "http://user:pw@127.0.0.1/x" }, /url/],
      [{ topic: t, url: `${hookBase}/x`, maxConcurrency: 0 }, /maxConcurrency/],
      [{ topic: t, url: `${hookBase}/x`, maxConcurrency: 1000 }, /maxConcurrency/],
      [{ topic: t, url: `${hookBase}/x`, timeoutMs: 10 }, /timeoutMs/],
      [{ topic: t, url: `${hookBase}/x`, timeoutMs: 3_600_000 }, /timeoutMs/],
      [{ topic: t, url: `${hookBase}/x`, retryDelaysMs: [] }, /retryDelaysMs/],
      [{ topic: t, url: `${hookBase}/x`, filter: "sql:a ==" }, /filter/],
      [{ topic: unique("missing"), url: `${hookBase}/x` }, /topic/],
      [{ url: `${hookBase}/x` }, /topic/],
      [{ topic: t }, /url/],
      [{ topic: t, url: `${hookBase}/x`, surprise: 1 }, /surprise/],
    ];
    for (const [body, field] of cases) {
      const name = unique("bad");
      const r = await call(server.url, "PUT", `/v1/push/${name}`, body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.error.code).toBe("BAD_REQUEST");
      expect(r.body.error.message).toMatch(field);
      expect((await call(server.url, "GET", `/v1/push/${name}`)).status).toBe(404);
    }
    const listed = await call(server.url, "GET", "/v1/push");
    expect(listed.body.push.some((p: any) => p.name.startsWith("bad-"))).toBe(false);
  });
});

describe("a restart in between", () => {
  const fixture = serverFixture("push-restart");

  it("pending deliveries survive: those left to retry and those claimed when the broker died", async () => {
    let s = await fixture.start();
    const t = await topic(1, s.url);
    const { name, e } = await subscribe(
      t,
      { kind: "stall" },
      { timeoutMs: 1000, retryDelaysMs: [200], maxConcurrency: 2 },
      s.url,
    );
    const sent = await send(t, [{ body: "r1" }, { body: "r2" }, { body: "r3" }], s.url);
    // Two claimed and stalled when the broker dies; the third not yet handed out.
    expect(await until(() => e.deliveries.length === 2)).toBe(true);
    await s.stop("SIGKILL");
    e.mode = { kind: "ok" };
    s = await fixture.start();
    const done = () => new Set(e.deliveries.slice(2).map((d) => d.message.msgId));
    expect(await until(() => done().size === 3, 20_000)).toBe(true);
    expect([...done()].sort()).toEqual(sent.map((m) => m.msgId).sort());
    expect(await until(async () => (await stats(name, s.url)).delivered === 3)).toBe(true);
    expect((await stats(name, s.url)).lag).toBe(0);
  });
});

describe("metrics, SDK and CLI", () => {
  it("/metrics has delivery counters and the latency histogram", async () => {
    const t = await topic();
    const { name, e } = await subscribe(t, { kind: "ok" });
    await send(t, [{ body: "m" }]);
    expect(await until(() => e.deliveries.length === 1)).toBe(true);
    expect(await until(async () => (await stats(name)).delivered === 1)).toBe(true);
    const text = await (await fetch(`${server.url}/metrics`)).text();
    const labels = `subscription="${name}",topic="${t}",queue="0"`;
    expect(text).toContain(`edgemq_push_delivered_total{${labels}} 1`);
    expect(text).toContain(`edgemq_push_failed_total{${labels}} 0`);
    expect(text).toContain(`edgemq_push_delivery_duration_seconds_bucket{${labels},le="+Inf"} 1`);
    expect(text).toContain(`edgemq_push_delivery_duration_seconds_count{${labels}} 1`);
  });

  it("Admin puts, reads, lists, pauses and deletes a subscription", async () => {
    const t = await topic();
    const name = unique("sdk");
    const e = endpoint(name, { kind: "ok" });
    const created = await admin.putPush(name, { topic: t, url: `${hookBase}/s/${name}` });
    expect(created.signingSecret).toBeTypeOf("string");
    e.secret = [created.signingSecret!];
    expect((await admin.pausePush(name)).paused).toBe(true);
    expect((await admin.resumePush(name)).paused).toBe(false);
    expect((await admin.listPush()).map((p) => p.name)).toContain(name);
    await send(t, [{ body: "via sdk" }]);
    expect(await until(async () => (await admin.getPush(name)).stats.delivered === 1)).toBe(true);
    const rotated = await admin.rotatePushSecret(name);
    expect(rotated).not.toBe(created.signingSecret);
    await admin.deletePush(name);
    await expect(admin.getPush(name)).rejects.toMatchObject({ code: "NOT_FOUND" });
  });

  it("edgemq push put | get --json | delete", async () => {
    const t = await topic();
    const name = unique("cli");
    const cli = (...args: string[]) =>
      new Promise<{ code: number | null; out: string }>((resolve) => {
        const child = spawn(
          join(REPO_ROOT, "node_modules/.bin/node"),
          [join(REPO_ROOT, "cli/main.ts"), "--endpoint", server.url, ...args],
          { stdio: ["ignore", "pipe", "pipe"] },
        );
        let out = "";
        child.stdout.on("data", (d) => (out += d));
        child.stderr.on("data", (d) => (out += d));
        const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
        child.on("close", (code) => {
          clearTimeout(timer);
          resolve({ code, out });
        });
      });
    const put = await cli(
      "push",
      "put",
      name,
      "--topic",
      t,
      "--url",
      `${hookBase}/s/${name}`,
      "--concurrency",
      "3",
      "--timeout",
      "2s",
      "--retry-delays",
      "1s,5s",
    );
    expect(put.code, put.out).toBe(0);
    expect(put.out).toMatch(/signing secret: [A-Za-z0-9_-]{43}/);
    const got = await cli("push", "get", name, "--json");
    expect(got.code, got.out).toBe(0);
    expect(JSON.parse(got.out)).toMatchObject({
      name,
      topic: t,
      maxConcurrency: 3,
      timeoutMs: 2000,
      retryDelaysMs: [1000, 5000],
      stats: { delivered: 0 },
    });
    const del = await cli("push", "delete", name);
    expect(del.code, del.out).toBe(0);
    expect((await call(server.url, "GET", `/v1/push/${name}`)).status).toBe(404);
  });
});
