/**
 * Transaction check-back for real: the local server (workerd, SQLite on disk)
 * POSTs to a node:http check server on 127.0.0.1, which verifies the
 * signature (X-Edgemq-Timestamp, X-Edgemq-Signature: v1=…) with the producer
 * group's own signingSecret, computed here with node:crypto, and answers
 * commit / rollback / unknown / garbage, redirects, or hangs. Every wait is
 * bounded.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { type IncomingMessage, type Server, type ServerResponse, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LocalServer, startLocalServer } from "../../scripts/local-server.ts";

const ADMIN_TOKEN = "tx-test-admin";
const TOKEN_SECRET = "tx-test-secret";

type Mode = "commit" | "rollback" | "unknown" | "garbage" | "slow" | "redirect";

interface CheckCall {
  mode: Mode;
  body: {
    txId: string;
    msgId: string;
    topic: string;
    producerGroup: string;
    checkTimes: number;
    message: { body: string };
  };
  signatureOk: boolean;
  /** How many v1= signatures the request carried. */
  signatures: number;
  timestamp: number;
  raw: string;
  header: string | undefined;
}

let server: LocalServer;
let dataDir: string;
let checkServer: Server;
let checkBase: string;
const calls: CheckCall[] = [];
/** Responses of hanging ("slow") checks, answered or dropped at the end. */
const hanging: ServerResponse[] = [];
/** Each producer group's signing secrets, as PUT answered them (newest first). */
const secrets = new Map<string, string[]>();

/** Whether one of the v1= values is the HMAC of `timestamp.raw` under one of the group's secrets. */
function verify(
  raw: string,
  timestamp: string | undefined,
  header: string | undefined,
  pg: string,
) {
  if (!timestamp || !header || Math.abs(Date.now() - Number(timestamp)) > 5 * 60_000) return false;
  const values = header.split(",").map((v) => v.trim().replace(/^v1=/, ""));
  return (secrets.get(pg) ?? []).some((secret) => {
    const want = createHmac("sha256", secret).update(`${timestamp}.${raw}`).digest();
    return values.some(
      (v) => /^[0-9a-f]{64}$/.test(v) && timingSafeEqual(want, Buffer.from(v, "hex")),
    );
  });
}

function onCheck(req: IncomingMessage, res: ServerResponse): void {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    const raw = Buffer.concat(chunks).toString("utf8");
    const mode = (req.url ?? "").split("/").pop() as Mode;
    const body = JSON.parse(raw) as CheckCall["body"];
    const timestamp = req.headers["x-edgemq-timestamp"] as string | undefined;
    const header = req.headers["x-edgemq-signature"] as string | undefined;
    const signatureOk = verify(raw, timestamp, header, body.producerGroup);
    calls.push({
      mode,
      body,
      signatureOk,
      signatures: header?.split(",").length ?? 0,
      timestamp: Number(timestamp),
      raw,
      header,
    });
    if (!signatureOk) {
      res.writeHead(401).end();
      return;
    }
    if (mode === "redirect") {
      // Followed, the signed body would go to the commit path and commit.
      res.writeHead(307, { location: `${checkBase}/commit` }).end();
      return;
    }
    if (mode === "slow") {
      hanging.push(res);
      return;
    }
    if (mode === "garbage") {
      res.writeHead(200, { "content-type": "text/html" }).end("<h1>surprise</h1>");
      return;
    }
    res
      .writeHead(200, { "content-type": "application/json" })
      .end(JSON.stringify({ status: mode }));
  });
}

async function start(): Promise<void> {
  server = await startLocalServer({
    port: 0,
    dataDir,
    quiet: true,
    env: { ADMIN_TOKEN, TOKEN_SECRET },
  });
}

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "edgemq-tx-"));
  checkServer = createServer(onCheck);
  await new Promise<void>((r) => checkServer.listen(0, "127.0.0.1", r));
  checkBase = `http://127.0.0.1:${(checkServer.address() as AddressInfo).port}/check`;
  await start();
});

afterAll(async () => {
  for (const res of hanging) res.destroy();
  await server?.stop("SIGTERM", { killAfterMs: 5000 });
  await new Promise((r) => checkServer?.close(r));
  checkServer?.closeAllConnections();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

async function api(
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: any }> {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
    ...(body !== undefined && { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

let n = 0;
const unique = (p: string) => `${p}-${Date.now().toString(36)}-${n++}`;

async function topic(): Promise<string> {
  const t = unique("tx");
  expect((await api("PUT", `/v1/topics/${t}`, { queues: 1 })).status).toBe(200);
  return t;
}

async function producerGroup(mode: Mode, extra: object = {}): Promise<string> {
  const pg = unique(`pg-${mode}`);
  const r = await api("PUT", `/v1/producer-groups/${pg}`, {
    checkUrl: `${checkBase}/${mode}`,
    checkAfterMs: 200,
    checkIntervalMs: 1000,
    maxChecks: 2,
    ...extra,
  });
  expect(r.status).toBe(200);
  expect(r.body.signingSecret).toMatch(/^[A-Za-z0-9_-]{43,}$/);
  secrets.set(pg, [r.body.signingSecret]);
  return pg;
}

async function prepare(t: string, pg: string, body: string) {
  const r = await api("POST", `/v1/topics/${t}/transactions`, {
    message: { body },
    producerGroup: pg,
  });
  expect(r.status).toBe(200);
  return r.body as { txId: string; msgId: string };
}

async function state(txId: string) {
  return (await api("GET", `/v1/transactions/${txId}`)).body as {
    status: string;
    checks: number;
    endReason: string | null;
  };
}

/** Polls until the transaction ended, for at most `ms`. */
async function ended(txId: string, ms: number) {
  const deadline = Date.now() + ms;
  for (;;) {
    const s = await state(txId);
    if (s.status !== "open" || Date.now() > deadline) return s;
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function bodies(t: string): Promise<string[]> {
  const r = await api("GET", `/v1/topics/${t}/queues/0/messages?offset=0&max=100`);
  return r.body.messages.map((m: { body: string }) => m.body);
}

const callsFor = (txId: string) => calls.filter((c) => c.body.txId === txId);

describe("transaction check-back over HTTP", () => {
  it("commits when the producer group answers commit, with a valid signature", async () => {
    const t = await topic();
    const { txId, msgId } = await prepare(t, await producerGroup("commit"), "checked-commit");
    expect(await bodies(t)).toEqual([]);
    expect(await ended(txId, 8000)).toMatchObject({
      status: "committed",
      endReason: "check-back commit",
    });
    expect(await bodies(t)).toEqual(["checked-commit"]);
    const [call] = callsFor(txId);
    expect(call).toMatchObject({
      signatureOk: true,
      body: { txId, msgId, topic: t, checkTimes: 1, message: { body: "checked-commit" } },
    });
  });

  it("rolls back when the producer group answers rollback, and never delivers", async () => {
    const t = await topic();
    const { txId } = await prepare(t, await producerGroup("rollback"), "checked-rollback");
    expect(await ended(txId, 8000)).toMatchObject({
      status: "rolledBack",
      endReason: "check-back rollback",
    });
    expect(await bodies(t)).toEqual([]);
    expect(callsFor(txId).every((c) => c.signatureOk)).toBe(true);
  });

  for (const mode of ["unknown", "garbage"] as const) {
    it(`checks again on ${mode}, then rolls back after maxChecks and records it`, async () => {
      const t = await topic();
      const { txId } = await prepare(t, await producerGroup(mode), `checked-${mode}`);
      expect(await ended(txId, 10_000)).toMatchObject({
        status: "rolledBack",
        checks: 2,
        endReason: "check-back limit reached",
      });
      expect(callsFor(txId).map((c) => c.body.checkTimes)).toEqual([1, 2]);
      expect(await bodies(t)).toEqual([]);
      const open = await api("GET", `/v1/topics/${t}/transactions`);
      expect(open.body.transactions).toEqual([]);
    });
  }

  it("keeps taking sends while a check hangs, and treats the timeout as unknown", async () => {
    const t = await topic();
    const { txId } = await prepare(
      t,
      await producerGroup("slow", { maxChecks: 1 }),
      "checked-slow",
    );
    const deadline = Date.now() + 5000;
    while (callsFor(txId).length === 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 25));
    expect(callsFor(txId)).toHaveLength(1);
    // The check is hanging now; sends to the same shard still complete.
    for (let i = 0; i < 20; i++) {
      const r = await api("POST", `/v1/topics/${t}/messages`, {
        messages: [{ body: `meanwhile-${i}` }],
      });
      expect(r.status).toBe(200);
    }
    expect((await state(txId)).status).toBe("open");
    expect(await ended(txId, 15_000)).toMatchObject({
      status: "rolledBack",
      endReason: "check-back limit reached",
    });
    expect(await bodies(t)).toEqual(Array.from({ length: 20 }, (_, i) => `meanwhile-${i}`));
  });

  it("signs with the producer group's own secret, never TOKEN_SECRET, and a timestamp of now", async () => {
    const t = await topic();
    const pg = await producerGroup("commit");
    const { txId } = await prepare(t, pg, "signed-own");
    expect(await ended(txId, 8000)).toMatchObject({ status: "committed" });
    const [call] = callsFor(txId);
    expect(call!.signatureOk).toBe(true);
    expect(Math.abs(call!.timestamp - Date.now())).toBeLessThan(10_000);
    expect(call!.signatures).toBe(1);
    // With TOKEN_SECRET (what every check URL could mint tokens with before) it does not verify.
    secrets.set(pg, [TOKEN_SECRET]);
    expect(verify(call!.raw, String(call!.timestamp), call!.header, pg)).toBe(false);
  });

  it("signs an open transaction with the rotated secret and the old one, so a receiver can switch", async () => {
    const t = await topic();
    const pg = await producerGroup("commit", { checkAfterMs: 1500 });
    const { txId } = await prepare(t, pg, "rotated");
    const rotated = await api("PUT", `/v1/producer-groups/${pg}`, { rotateSecret: true });
    expect(rotated.status).toBe(200);
    const fresh = rotated.body.signingSecret as string;
    // The receiver knows only the new secret: the check still verifies.
    secrets.set(pg, [fresh]);
    expect(await ended(txId, 8000)).toMatchObject({ status: "committed" });
    expect(callsFor(txId)).toMatchObject([{ signatureOk: true, signatures: 2 }]);
  });

  it("does not follow a redirect: the signed body goes to the check URL only", async () => {
    const t = await topic();
    const { txId } = await prepare(t, await producerGroup("redirect", { maxChecks: 1 }), "redir");
    expect(await ended(txId, 8000)).toMatchObject({
      status: "rolledBack",
      endReason: "check-back limit reached",
    });
    expect(callsFor(txId).map((c) => c.mode)).toEqual(["redirect"]);
    expect(await bodies(t)).toEqual([]);
  });

  it("commits an open half message after a broker restart, and checks back after it", async () => {
    const t = await topic();
    const quiet = unique("pg-none");
    expect((await api("PUT", `/v1/producer-groups/${quiet}`, {})).status).toBe(200);
    const manual = await prepare(t, quiet, "across-restart");
    const checked = await prepare(
      t,
      await producerGroup("commit", { checkAfterMs: 1500 }),
      "checked-after-restart",
    );
    await server.stop("SIGTERM", { killAfterMs: 5000 });
    await start();
    expect(await bodies(t)).toEqual([]);
    expect((await state(manual.txId)).status).toBe("open");
    const r = await api("POST", `/v1/transactions/${manual.txId}/commit`);
    expect(r).toMatchObject({ status: 200, body: { status: "committed" } });
    expect(await ended(checked.txId, 8000)).toMatchObject({ status: "committed" });
    expect(await bodies(t)).toEqual(["across-restart", "checked-after-restart"]);
  });
});
