/**
 * Issue 16, item 3: check-backs are signed with the producer group's own
 * secret, never with TOKEN_SECRET. The secret is shown when it is made and on
 * rotation only; a rotation applies to transactions already open (the old
 * secret signs beside the new one for 24 h); `http://` check URLs are taken
 * only for loopback hosts unless the broker runs locally. The check URL is
 * answered by a stubbed `fetch` (the shard runs in this isolate);
 * test/node/transactions-http.test.ts does the same over real HTTP.
 */
import { runDurableObjectAlarm } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { verifySignature } from "../../src/protocol/signing.ts";
import { ADMIN, api, createTopic, shardStub, unique } from "./helpers.ts";
import { endRotationOverlap, forgetSigningSecret, makeChecksDue } from "./storage-sql.ts";
import { callWithEnv } from "./token-helpers.ts";

afterEach(() => {
  vi.restoreAllMocks();
});

interface Call {
  raw: string;
  headers: Headers;
}

/** Answers `url` with "unknown" (the transaction stays open) and records each call. */
function answerChecks(url: string): Call[] {
  const calls: Call[] = [];
  const realFetch = globalThis.fetch;
  vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
    const req = new Request(input as RequestInfo, init);
    if (!req.url.startsWith(url)) return realFetch(input as RequestInfo, init);
    calls.push({ raw: await req.text(), headers: req.headers });
    return Response.json({ status: "unknown" });
  });
  return calls;
}

async function putPg(pg: string, body: Record<string, unknown>) {
  const r = await api("PUT", `/v1/producer-groups/${pg}`, body);
  expect(r.status).toBe(200);
  return r.body as Record<string, unknown> & { signingSecret?: string };
}

async function prepare(topic: string, pg: string) {
  const r = await api("POST", `/v1/topics/${topic}/transactions`, {
    message: { body: "half" },
    producerGroup: pg,
  });
  expect(r.status).toBe(200);
  return r.body.txId as string;
}

/** Makes the shard's open half messages due, fires its alarm and waits for `n` calls in all. */
async function runCheck(topic: string, calls: Call[], n: number): Promise<Call> {
  await makeChecksDue(topic);
  await runDurableObjectAlarm(shardStub(topic, 0));
  const deadline = Date.now() + 5000;
  while (calls.length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  expect(calls).toHaveLength(n);
  return calls[n - 1]!;
}

const signatures = (c: Call) => c.headers.get("x-edgemq-signature")!.split(",");
const verifies = async (c: Call, secret: string) =>
  (await verifySignature(c.headers, c.raw, { secrets: [secret] })).ok;

describe("a producer group's signing secret", () => {
  it("is answered when the group is made (32 random bytes, base64url), then never shown again", async () => {
    const pg = unique("pg");
    const made = await putPg(pg, { checkUrl: "https://pg.example.test/check" });
    expect(made.signingSecret).toMatch(/^[A-Za-z0-9_-]{43,}$/);
    const updated = await putPg(pg, { maxChecks: 3 });
    expect(updated).not.toHaveProperty("signingSecret");
    expect(updated.maxChecks).toBe(3);
    const read = await api("GET", `/v1/producer-groups/${pg}`);
    const listed = await api("GET", "/v1/producer-groups");
    const everything = JSON.stringify([read.body, listed.body]);
    expect(everything).not.toContain(made.signingSecret);
    expect(everything).not.toContain("signingSecret");
    // Another producer group gets a secret of its own.
    const other = await putPg(unique("pg"), {});
    expect(other.signingSecret).not.toBe(made.signingSecret);
  });

  it("signs check-backs, never TOKEN_SECRET, with a timestamp of now", async () => {
    const topic = await createTopic({ queues: 1 });
    const pg = unique("pg");
    const url = `https://${pg}.example.test/check`;
    const { signingSecret } = await putPg(pg, { checkUrl: url, checkAfterMs: 60_000 });
    const calls = answerChecks(url);
    await prepare(topic, pg);
    const call = await runCheck(topic, calls, 1);
    expect(Math.abs(Number(call.headers.get("x-edgemq-timestamp")) - Date.now())).toBeLessThan(
      10_000,
    );
    expect(signatures(call)).toHaveLength(1);
    expect(await verifies(call, signingSecret!)).toBe(true);
    expect(await verifies(call, "test-secret")).toBe(false);
  });

  it("rotates: the new secret is answered and signs open transactions, the old one beside it for 24 h", async () => {
    const topic = await createTopic({ queues: 1 });
    const pg = unique("pg");
    const url = `https://${pg}.example.test/check`;
    const first = (await putPg(pg, { checkUrl: url, checkAfterMs: 60_000 })).signingSecret!;
    const calls = answerChecks(url);
    // Opened before the rotation.
    await prepare(topic, pg);
    const rotated = await putPg(pg, { rotateSecret: true });
    const second = rotated.signingSecret!;
    expect(second).toMatch(/^[A-Za-z0-9_-]{43,}$/);
    expect(second).not.toBe(first);
    const during = await runCheck(topic, calls, 1);
    expect(signatures(during)).toHaveLength(2);
    expect(await verifies(during, second)).toBe(true);
    expect(await verifies(during, first)).toBe(true);
    // 24 h later (the overlap moved into the past) only the new secret signs.
    await endRotationOverlap(pg);
    const after = await runCheck(topic, calls, 2);
    expect(signatures(after)).toHaveLength(1);
    expect(await verifies(after, second)).toBe(true);
    expect(await verifies(after, first)).toBe(false);
  });

  it("a second rotation within the day retires the first new secret at once", async () => {
    const topic = await createTopic({ queues: 1 });
    const pg = unique("pg");
    const url = `https://${pg}.example.test/check`;
    const a = (await putPg(pg, { checkUrl: url, checkAfterMs: 60_000 })).signingSecret!;
    const b = (await putPg(pg, { rotateSecret: true })).signingSecret!;
    const c = (await putPg(pg, { rotateSecret: true })).signingSecret!;
    const calls = answerChecks(url);
    await prepare(topic, pg);
    const call = await runCheck(topic, calls, 1);
    expect(signatures(call)).toHaveLength(2);
    expect([await verifies(call, c), await verifies(call, b), await verifies(call, a)]).toEqual([
      true,
      true,
      false,
    ]);
  });

  it("is made on the first PUT of a producer group from before secrets; until then nothing is sent", async () => {
    const topic = await createTopic({ queues: 1 });
    const pg = unique("pg");
    const url = `https://${pg}.example.test/check`;
    await putPg(pg, { checkUrl: url, checkAfterMs: 60_000, maxChecks: 5 });
    // What a producer group written before this change looks like: no secret.
    await forgetSigningSecret(pg);
    const calls = answerChecks(url);
    const txId = await prepare(topic, pg);
    await makeChecksDue(topic);
    await runDurableObjectAlarm(shardStub(topic, 0));
    const deadline = Date.now() + 5000;
    let tx: any;
    do {
      await new Promise((r) => setTimeout(r, 20));
      tx = (await api("GET", `/v1/transactions/${txId}`)).body;
    } while (tx.nextCheckAt < Date.now() + 30_000 && Date.now() < deadline);
    // Deferred like an unanswered check, never sent unsigned.
    expect(calls).toHaveLength(0);
    expect(tx).toMatchObject({ status: "open", checks: 1 });
    const fixed = await putPg(pg, { checkIntervalMs: 60_000 });
    expect(fixed.signingSecret).toMatch(/^[A-Za-z0-9_-]{43,}$/);
    const call = await runCheck(topic, calls, 1);
    expect(await verifies(call, fixed.signingSecret!)).toBe(true);
  });

  it("refuses a rotateSecret that is not a boolean, changing nothing", async () => {
    const pg = unique("pg");
    const r = await api("PUT", `/v1/producer-groups/${pg}`, { rotateSecret: "yes" });
    expect([r.status, r.body.error.code]).toEqual([400, "BAD_REQUEST"]);
    expect((await api("GET", `/v1/producer-groups/${pg}`)).status).toBe(404);
  });
});

describe("http:// check URLs", () => {
  const deployed = { EDGEMQ_LOCAL: undefined };
  const put = async (overrides: Record<string, unknown>, checkUrl: string) => {
    const res = await callWithEnv(overrides, "PUT", `/v1/producer-groups/${unique("pg")}`, {
      headers: ADMIN,
      body: JSON.stringify({ checkUrl }),
    });
    return { status: res.status, body: (await res.json()) as any };
  };

  it("are refused when deployed unless the host is loopback", async () => {
    const refused = await put(deployed, "http://pg.example.com/check");
    expect([refused.status, refused.body.error.code]).toEqual([400, "BAD_REQUEST"]);
    expect(refused.body.error.message).toMatch(/https/);
    for (const ok of [
      "https://pg.example.com/check",
      "http://127.0.0.1:9000/check",
      "http://localhost:9000/check",
      "http://[::1]:9000/check",
    ]) {
      expect((await put(deployed, ok)).status, ok).toBe(200);
    }
  });

  it("are taken anywhere when the broker runs locally (npm start)", async () => {
    expect((await put({ EDGEMQ_LOCAL: "1" }, "http://pg.example.com/check")).status).toBe(200);
  });
});
