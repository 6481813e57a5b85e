/**
 * Receive/ack over HTTP against the real local server (workerd on disk):
 * at-least-once across consumer crashes and server restarts. A consumer that
 * receives and never acks loses nothing; its messages come back after their
 * invisible time, also when the server restarted in between.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { type LocalServer, startLocalServer } from "../../scripts/local-server.ts";

const dataDir = mkdtempSync(join(tmpdir(), "edgemq-receive-"));
const servers: LocalServer[] = [];

afterAll(async () => {
  for (const s of servers) await s.stop("SIGKILL");
  rmSync(dataDir, { recursive: true, force: true });
});

/** Starts a server on the test's own data directory (the same one across its restarts). */
async function start(dir: string): Promise<LocalServer> {
  const s = await startLocalServer({ port: 0, dataDir: join(dataDir, dir), quiet: true });
  servers.push(s);
  return s;
}

async function call(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  signal?: AbortSignal,
) {
  const res = await fetch(base + path, {
    method,
    headers: { "content-type": "application/json" },
    ...(body !== undefined && { body: JSON.stringify(body) }),
    ...(signal && { signal }),
  });
  return { status: res.status, body: (await res.json()) as any };
}

/** Receives (long-polling) until `n` messages came or `deadlineMs` passed; at most 20 calls. */
async function receiveAll(
  base: string,
  group: string,
  topic: string,
  n: number,
  deadlineMs = 15_000,
) {
  const got: any[] = [];
  const until = Date.now() + deadlineMs;
  for (let i = 0; i < 20 && got.length < n && Date.now() < until; i++) {
    const r = await call(base, "POST", `/v1/groups/${group}/topics/${topic}/receive`, {
      max: 32,
      waitMs: Math.min(5000, Math.max(0, until - Date.now())),
    });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    got.push(...r.body.messages);
  }
  return got;
}

const sorted = (ms: any[]) => ms.map((m) => m.body).sort();

describe("receive over HTTP", () => {
  it("redelivers what a crashed consumer never acked, across a server restart", async () => {
    let server = await start("crash");
    const topic = "crashy";
    const group = "workers";
    expect((await call(server.url, "PUT", `/v1/topics/${topic}`, { queues: 2 })).status).toBe(200);
    const bodies = Array.from({ length: 6 }, (_, i) => `job-${i}`);
    const sent = await call(server.url, "POST", `/v1/topics/${topic}/messages`, {
      messages: bodies.map((body) => ({ body })),
    });
    expect(sent.status).toBe(200);

    // The consumer takes everything and crashes without acking.
    const first = await call(server.url, "POST", `/v1/groups/${group}/topics/${topic}/receive`, {
      max: 32,
      invisibleMs: 2000,
    });
    expect(sorted(first.body.messages)).toEqual(bodies);
    const hidden = await call(
      server.url,
      "POST",
      `/v1/groups/${group}/topics/${topic}/receive`,
      {},
    );
    expect(hidden.body.messages).toEqual([]);

    // The server restarts on the same data; the receipts lapse meanwhile or just after.
    expect(await server.stop("SIGTERM")).toBe(0);
    server = await start("crash");
    const again = await receiveAll(server.url, group, topic, bodies.length);
    expect(sorted(again)).toEqual(bodies);
    expect(again.every((m) => m.reconsumeTimes === 1)).toBe(true);

    const acked = await call(server.url, "POST", `/v1/groups/${group}/topics/${topic}/ack`, {
      receipts: again.map((m) => m.receipt),
    });
    expect(acked.body.results.every((r: any) => r.ok === true)).toBe(true);
    const stats = await call(server.url, "GET", `/v1/groups/${group}`);
    expect(stats.body.topics[topic].map((s: any) => [s.lag, s.inflight, s.retrying])).toEqual([
      [0, 0, 0],
      [0, 0, 0],
    ]);
    // A stale receipt from before the restart is expired, not an ack.
    const stale = await call(server.url, "POST", `/v1/groups/${group}/topics/${topic}/ack`, {
      receipts: [first.body.messages[0].receipt],
    });
    expect(stale.body.results[0].error.code).toBe("RECEIPT_EXPIRED");
  });

  it("redelivers after the server is killed while messages are in flight", async () => {
    let server = await start("kill");
    const topic = "killed";
    const group = "workers";
    await call(server.url, "PUT", `/v1/topics/${topic}`, { queues: 1 });
    await call(server.url, "POST", `/v1/topics/${topic}/messages`, {
      messages: [{ body: "survivor" }],
    });
    const r = await call(server.url, "POST", `/v1/groups/${group}/topics/${topic}/receive`, {
      invisibleMs: 1000,
    });
    expect(r.body.messages).toHaveLength(1);
    await server.stop("SIGKILL");
    server = await start("kill");
    const again = await receiveAll(server.url, group, topic, 1);
    expect(again.map((m) => [m.body, m.reconsumeTimes])).toEqual([["survivor", 1]]);
  });

  it("loses nothing when a waiting consumer goes away", async () => {
    const server = await start("abandon");
    const topic = "abandoned";
    const group = "workers";
    await call(server.url, "PUT", `/v1/topics/${topic}`, { queues: 2 });
    const abort = new AbortController();
    const waiting = call(
      server.url,
      "POST",
      `/v1/groups/${group}/topics/${topic}/receive`,
      { waitMs: 10_000, invisibleMs: 1000 },
      abort.signal,
    ).catch(() => "aborted");
    await new Promise((r) => setTimeout(r, 200));
    abort.abort();
    expect(await waiting).toBe("aborted");
    await call(server.url, "POST", `/v1/topics/${topic}/messages`, {
      messages: [{ body: "for someone" }],
    });
    // Whether or not the abandoned request claimed it, it comes to the next consumer.
    const got = await receiveAll(server.url, group, topic, 1);
    expect(got.map((m) => m.body)).toEqual(["for someone"]);
  });
});
