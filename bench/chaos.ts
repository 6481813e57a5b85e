/**
 * `npm run chaos`: fault injection against the real local server (workerd,
 * SQLite Durable Objects on local disk), with the checks of RocketMQ's
 * OpenChaos and Jepsen's queue workloads.
 *
 * One server on a temp data directory and a fixed port (so clients reconnect
 * to the same address). Concurrent producers send messages with unique msgIds
 * and sharding keys, each key's body carrying a sequence number; a send whose
 * outcome is unknown is retried with the SAME msgIds until acknowledged. An
 * orderly receive+ack group and a pull+commit group consume; transactions are
 * prepared and committed; some messages are scheduled. Meanwhile the server's
 * process group is SIGKILLed at random moments (seeded) and restarted on the
 * same data directory, and once paused with SIGSTOP (receipts lapse) then
 * SIGCONT. Then a full-disk phase runs on a small tmpfs (skipped with a note
 * when mounting is not permitted).
 *
 * At the end everything is drained and checked:
 * - lost: acknowledged (send 2xx, scheduled, committed transaction) but not in
 *   the log, or never delivered to the orderly group or the pulling group;
 * - stored twice: a msgId at more than one queue/offset (the whole log is
 *   read by offset), or an acknowledged offset holding another msgId;
 * - unexpected: read, never sent;
 * - order: per sharding key, sequence numbers increase along the log, and the
 *   orderly group first receives them in order and never receives one again
 *   after a later one was handed out;
 * - committed offsets never move backwards across a restart;
 * - receipts held (popped, never acked) at a kill or a pause are delivered
 *   again afterwards; a scheduled message and an open half transaction made
 *   right before each kill are delivered after it;
 * - recovery time per fault: first failed send after the fault → next success.
 *
 * Environment: CHAOS_SECONDS (default 60), CHAOS_KILLS (5), CHAOS_SEED (1),
 * CHAOS_PAUSE_MS (10000), CHAOS_DISK=0 to skip the full-disk phase.
 * `--short` or CHAOS_SHORT=1: the CI run (25 s, 3 kills, 4 s pause).
 * Prints ONE JSON line of figures; exits 1 on any violation.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import { type IncomingMessage, request } from "node:http";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { type LocalServer, startLocalServer } from "../scripts/local-server.ts";

const short = process.argv.includes("--short") || process.env.CHAOS_SHORT === "1";
const env = process.env;
const SECONDS = Number(env.CHAOS_SECONDS ?? (short ? 25 : 60));
const KILLS = Number(env.CHAOS_KILLS ?? (short ? 3 : 5));
const SEED = Number(env.CHAOS_SEED ?? 1);
const PAUSE_MS = Number(env.CHAOS_PAUSE_MS ?? (short ? 4000 : 10_000));
const DISK = env.CHAOS_DISK !== "0";

const TOPIC = "chaos";
const QUEUES = 4;
const ORDERLY = "orderly";
const PULLERS = "pullers";
const HOLDERS = "holders";
const PRODUCERS = 4;
const KEYS_PER_PRODUCER = 2;
const ORDERLY_CONSUMERS = 2;
/** Invisible time of the orderly consumers: short, so lapses after a fault come back soon. */
const INVISIBLE_MS = 4000;
const REQUEST_TIMEOUT_MS = 5000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** mulberry32: a small seeded PRNG, so a failing run can be replayed with its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
/** The fault schedule's own generator: the same seed gives the same kinds and times of faults. */
const faultRand = prng(SEED);
/** The workload's (shared by concurrent workers, so its draws interleave with timing). */
const rand = prng(SEED + 0x9e3779b9);
const between = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));

// ---------------------------------------------------------------------------
// HTTP: one connection per request (a killed server leaves no stale sockets
// behind), every request bounded by a timeout.

class NetError extends Error {}

interface Answer {
  status: number;
  body: any;
}

let port = 0;

function http(
  method: string,
  p: string,
  body?: unknown,
  timeoutMs = REQUEST_TIMEOUT_MS,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      {
        host: "127.0.0.1",
        port,
        method,
        path: p,
        agent: false,
        headers: {
          "content-type": "application/json",
          ...(data !== undefined && { "content-length": Buffer.byteLength(data) }),
        },
      },
      (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          clearTimeout(timer);
          const text = Buffer.concat(chunks).toString("utf8");
          let parsed: unknown;
          try {
            parsed = text ? JSON.parse(text) : undefined;
          } catch {
            parsed = text;
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
        res.on("error", (e) => {
          clearTimeout(timer);
          reject(new NetError(String(e)));
        });
      },
    );
    const timer = setTimeout(() => req.destroy(new Error("timeout")), timeoutMs);
    req.on("error", (e) => {
      clearTimeout(timer);
      reject(new NetError(e.message));
    });
    req.end(data);
  });
}

/** A request that must succeed with 200 sooner or later: retried through faults, bounded by `ms`. */
async function must(method: string, p: string, body?: unknown, ms = 60_000): Promise<any> {
  const deadline = Date.now() + ms;
  let last = "";
  while (Date.now() < deadline) {
    try {
      const r = await http(method, p, body);
      if (r.status === 200) return r.body;
      last = `${r.status} ${JSON.stringify(r.body).slice(0, 200)}`;
    } catch (e) {
      last = String(e);
    }
    await sleep(200);
  }
  throw new Error(`${method} ${p} did not succeed within ${ms} ms: ${last}`);
}

/**
 * A free port below the kernel's ephemeral range (32768+ on Linux), so that no
 * other process binding port 0 can be handed it while our server restarts.
 */
async function freePort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const candidate = 20_000 + Math.floor(Math.random() * 12_000);
    const ok = await new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once("error", () => resolve(false));
      s.listen(candidate, "127.0.0.1", () => s.close(() => resolve(true)));
    });
    if (ok) return candidate;
  }
  throw new Error("no free port in 20000..31999");
}

// ---------------------------------------------------------------------------
// What the run saw.

interface Sent {
  msgId: string;
  kind: "keyed" | "scheduled" | "tx";
  key?: string;
  seq?: number;
  /** The acknowledged position (null for a scheduled message). */
  queue?: number;
  offset?: number | null;
}

/** Every msgId a client tried to send or prepare (acknowledged or not). */
const attempted = new Map<string, Sent>();
/** Acknowledged: a 2xx send (stored, scheduled or duplicate) or a committed transaction. */
const acked = new Map<string, Sent>();
interface Delivery {
  msgId: string;
  queue: number;
  offset: number;
  reconsumeTimes: number;
  at: number;
}
const orderlyDeliveries: Delivery[] = [];
const pulled = new Set<string>();
const violations: string[] = [];
const violate = (what: string) => {
  if (violations.length < 50) violations.push(what);
  else if (violations.length === 50) violations.push("…more");
};

const stats = {
  sendRequests: 0,
  sendFailures: 0,
  retriedSends: 0,
  duplicateAnswers: 0,
  orderlyDelivered: 0,
  orderlyRedelivered: 0,
  notAckedOnPurpose: 0,
  ackExpired: 0,
  ackFailed: 0,
  pulledMessages: 0,
  commits: 0,
  txPrepared: 0,
  txCommitted: 0,
  scheduledAcked: 0,
};

interface Fault {
  kind: "kill" | "pause";
  at: number;
  firstFailAt: number | null;
  recoveredAt: number | null;
  restartMs?: number;
}
const faults: Fault[] = [];
let currentFault: Fault | null = null;

function sendFailed(): void {
  stats.sendFailures++;
  if (currentFault && currentFault.firstFailAt === null) currentFault.firstFailAt = Date.now();
}
function sendSucceeded(): void {
  if (currentFault && currentFault.firstFailAt !== null && currentFault.recoveredAt === null) {
    currentFault.recoveredAt = Date.now();
  }
}

// ---------------------------------------------------------------------------
// Server

let server: LocalServer | undefined;
let dataDir = "";

async function startServer(): Promise<number> {
  const t0 = Date.now();
  for (let attempt = 1; ; attempt++) {
    try {
      server = await startLocalServer({
        port,
        dataDir,
        quiet: true,
        detached: true,
        startupTimeoutMs: 60_000,
      });
      return Date.now() - t0;
    } catch (e) {
      // A start that failed is a finding only if it keeps failing.
      if (attempt >= 3) throw e;
      await sleep(500);
    }
  }
}

/** Signals workerd's whole process group (it was started detached: its own group). */
function signalTree(sig: NodeJS.Signals): void {
  if (!server) return;
  try {
    process.kill(-server.pid, sig);
  } catch {
    // already gone
  }
}

// ---------------------------------------------------------------------------
// Workers

let producing = true;
let consuming = true;

/** Sends `messages` until acknowledged (same msgIds every time), or until `deadline`. */
async function sendUntilAcked(
  messages: Record<string, unknown>[],
  deadline: number,
): Promise<any[] | null> {
  let tries = 0;
  while (Date.now() < deadline) {
    stats.sendRequests++;
    if (tries++ > 0) stats.retriedSends++;
    try {
      const r = await http("POST", `/v1/topics/${TOPIC}/messages`, { messages });
      if (r.status === 200) {
        sendSucceeded();
        return r.body.results as any[];
      }
      if (r.status < 500) {
        violate(`send answered ${r.status}: ${JSON.stringify(r.body).slice(0, 200)}`);
        return null;
      }
      sendFailed();
    } catch {
      sendFailed();
    }
    await sleep(between(50, 200));
  }
  return null;
}

function recordAck(
  m: Sent,
  result: { msgId: string; status: string; queue: number; offset: number | null },
): void {
  if (result.msgId !== m.msgId) violate(`send result for ${m.msgId} names ${result.msgId}`);
  if (result.status === "duplicate") stats.duplicateAnswers++;
  else if (result.status !== "stored" && result.status !== "scheduled") {
    violate(`${m.msgId}: unexpected send status ${result.status}`);
    return;
  }
  if (result.status === "scheduled") stats.scheduledAcked++;
  acked.set(m.msgId, { ...m, queue: result.queue, offset: result.offset });
}

async function producer(p: number): Promise<void> {
  const keys = Array.from({ length: KEYS_PER_PRODUCER }, (_, i) => `p${p}k${i}`);
  const seq = new Map(keys.map((k) => [k, 0]));
  let n = 0;
  while (producing) {
    const r = rand();
    const deadline = Date.now() + 90_000;
    if (r < 0.05) {
      // Scheduled, without a key (it joins the log when due, out of key order).
      const m: Sent = { msgId: `p${p}-${n++}`, kind: "scheduled" };
      attempted.set(m.msgId, m);
      const results = await sendUntilAcked(
        [{ body: "scheduled", msgId: m.msgId, delayMs: between(500, 4000) }],
        deadline,
      );
      if (results) recordAck(m, results[0]);
      continue;
    }
    const key = keys[Math.floor(rand() * keys.length)]!;
    const count = r < 0.15 ? 3 : 1; // some batches: all or nothing
    const batch: Sent[] = [];
    for (let i = 0; i < count; i++) {
      const s = seq.get(key)! + i;
      batch.push({ msgId: `p${p}-${n++}`, kind: "keyed", key, seq: s });
    }
    for (const m of batch) attempted.set(m.msgId, m);
    const results = await sendUntilAcked(
      batch.map((m) => ({
        body: JSON.stringify({ key, seq: m.seq }),
        msgId: m.msgId,
        shardingKey: key,
      })),
      deadline,
    );
    if (!results) return; // gave up at the end: this key sends nothing more
    batch.forEach((m, i) => recordAck(m, results[i]));
    seq.set(key, seq.get(key)! + count);
    await sleep(between(0, 15));
  }
}

async function orderlyConsumer(): Promise<void> {
  while (consuming) {
    let r: Answer;
    try {
      r = await http(
        "POST",
        `/v1/groups/${ORDERLY}/topics/${TOPIC}/receive`,
        { max: 16, invisibleMs: INVISIBLE_MS, waitMs: 1000 },
        1000 + REQUEST_TIMEOUT_MS,
      );
    } catch {
      await sleep(100);
      continue;
    }
    if (r.status !== 200) {
      if (r.status < 500)
        violate(`receive answered ${r.status}: ${JSON.stringify(r.body).slice(0, 200)}`);
      await sleep(100);
      continue;
    }
    const receipts: string[] = [];
    for (const m of r.body.messages as any[]) {
      orderlyDeliveries.push({
        msgId: m.msgId,
        queue: m.queue,
        offset: m.offset,
        reconsumeTimes: m.reconsumeTimes,
        at: Date.now(),
      });
      stats.orderlyDelivered++;
      if (m.reconsumeTimes > 0) stats.orderlyRedelivered++;
      // A consumer that fails now and then: the message must come back.
      if (consuming && rand() < 0.02) stats.notAckedOnPurpose++;
      else receipts.push(m.receipt);
    }
    if (receipts.length === 0) continue;
    try {
      const a = await http("POST", `/v1/groups/${ORDERLY}/topics/${TOPIC}/ack`, { receipts });
      if (a.status === 200) {
        for (const res of a.body.results as any[]) if (!res.ok) stats.ackExpired++;
      } else stats.ackFailed += receipts.length;
    } catch {
      stats.ackFailed += receipts.length;
    }
  }
}

/** Highest offset per queue whose commit was acknowledged. */
const ackedCommit: number[] = Array.from({ length: QUEUES }, () => 0);

async function puller(): Promise<void> {
  while (consuming) {
    let got = 0;
    for (let q = 0; q < QUEUES; q++) {
      let r: Answer;
      try {
        r = await http("GET", `/v1/topics/${TOPIC}/queues/${q}/messages?group=${PULLERS}&max=64`);
      } catch {
        await sleep(100);
        continue;
      }
      if (r.status !== 200) {
        // The group does not exist until its first commit: pull from 0 then.
        if (r.status === 404 || r.status === 400) {
          try {
            r = await http("GET", `/v1/topics/${TOPIC}/queues/${q}/messages?offset=0&max=64`);
          } catch {
            continue;
          }
        }
        if (r.status !== 200) continue;
      }
      const b = r.body;
      if (b.skipped > 0) violate(`pull of queue ${q} skipped ${b.skipped}`);
      for (const m of b.messages as any[]) {
        pulled.add(m.msgId);
        stats.pulledMessages++;
        got++;
      }
      if (b.messages.length === 0) continue;
      try {
        const c = await http("PUT", `/v1/groups/${PULLERS}/topics/${TOPIC}/queues/${q}/offset`, {
          offset: b.nextOffset,
        });
        if (c.status === 200) {
          stats.commits++;
          ackedCommit[q] = Math.max(ackedCommit[q]!, b.nextOffset);
        }
      } catch {
        // unknown: the next pull starts from whatever is committed
      }
    }
    if (got === 0) await sleep(200);
  }
}

interface Half {
  txId: string;
  msgId: string;
  preparedInRun: number;
}
/** Server runs started so far (1 = the first); a kill moves on to the next. */
let run = 1;
let txCount = 0;
let halvesAcrossRestart = 0;

async function prepareHalf(deadline: number): Promise<Half | null> {
  const msgId = `tx-${txCount++}`;
  attempted.set(msgId, { msgId, kind: "tx" });
  while (Date.now() < deadline) {
    try {
      const r = await http("POST", `/v1/topics/${TOPIC}/transactions`, {
        message: { body: "tx", msgId },
        producerGroup: "chaos-pg",
      });
      if (r.status === 200) {
        stats.txPrepared++;
        return { txId: r.body.txId, msgId, preparedInRun: run };
      }
      if (r.status < 500) {
        violate(`prepare answered ${r.status}: ${JSON.stringify(r.body).slice(0, 200)}`);
        return null;
      }
    } catch {
      // retried below
    }
    await sleep(between(50, 200));
  }
  return null;
}

async function commitHalf(h: Half, deadline: number): Promise<void> {
  while (Date.now() < deadline) {
    try {
      const r = await http("POST", `/v1/transactions/${encodeURIComponent(h.txId)}/commit`, {});
      if (r.status === 200 && r.body.status === "committed") {
        stats.txCommitted++;
        if (run > h.preparedInRun) halvesAcrossRestart++;
        acked.set(h.msgId, { msgId: h.msgId, kind: "tx" });
        return;
      }
      if (r.status < 500) {
        violate(
          `commit of ${h.msgId} answered ${r.status}: ${JSON.stringify(r.body).slice(0, 200)}`,
        );
        return;
      }
    } catch {
      // retried below
    }
    await sleep(between(50, 200));
  }
}

/** Halves prepared right before a kill, committed once the server is back. */
const pendingHalves: Half[] = [];

async function transactor(): Promise<void> {
  const open: { half: Half; at: number }[] = [];
  while (producing) {
    if (open.length < 3) {
      const h = await prepareHalf(Date.now() + 60_000);
      if (h) open.push({ half: h, at: Date.now() });
    } else if (Date.now() - open[0]!.at > 1500) {
      await commitHalf(open.shift()!.half, Date.now() + 60_000);
    } else await sleep(100);
  }
  for (const o of open) await commitHalf(o.half, Date.now() + 60_000);
}

// ---------------------------------------------------------------------------
// Holding receipts across faults (a separate non-orderly group, far behind,
// so a receive always has something to hold).

interface Held {
  msgIds: Set<string>;
  fault: Fault;
}
const held: Held[] = [];
/** msgIds the holders group received again (reconsumeTimes ≥ 1), by any of its receives. */
const holderRedelivered = new Set<string>();

async function hold(invisibleMs: number): Promise<{ msgIds: Set<string>; receipts: string[] }> {
  try {
    const r = await http("POST", `/v1/groups/${HOLDERS}/topics/${TOPIC}/receive`, {
      max: 4,
      invisibleMs,
    });
    if (r.status === 200) {
      const msgs = r.body.messages as any[];
      for (const m of msgs) if (m.reconsumeTimes >= 1) holderRedelivered.add(m.msgId);
      return { msgIds: new Set(msgs.map((m) => m.msgId)), receipts: msgs.map((m) => m.receipt) };
    }
  } catch {
    // nothing held this time
  }
  return { msgIds: new Set(), receipts: [] };
}

/** Receives the holders group until every held message came back (bounded), acking as it goes. */
async function verifyHeld(h: Held, ms: number): Promise<number> {
  const missing = () => [...h.msgIds].filter((id) => !holderRedelivered.has(id));
  const deadline = Date.now() + ms;
  while (missing().length > 0 && Date.now() < deadline) {
    try {
      const r = await http(
        "POST",
        `/v1/groups/${HOLDERS}/topics/${TOPIC}/receive`,
        { max: 32, invisibleMs: 60_000, waitMs: 2000 },
        2000 + REQUEST_TIMEOUT_MS,
      );
      if (r.status !== 200) continue;
      const receipts: string[] = [];
      for (const m of r.body.messages as any[]) {
        if (m.reconsumeTimes >= 1) holderRedelivered.add(m.msgId);
        receipts.push(m.receipt);
      }
      if (receipts.length)
        await http("POST", `/v1/groups/${HOLDERS}/topics/${TOPIC}/ack`, { receipts });
    } catch {
      await sleep(200);
    }
  }
  const never = missing();
  for (const id of never)
    violate(`${id}: held (popped, not acked) at a ${h.fault.kind}, never delivered again`);
  return h.msgIds.size - never.length;
}

// ---------------------------------------------------------------------------
// Faults

let scheduledAcrossKill = 0;
const scheduledAtKill: string[] = [];
let offsetRegressions = 0;

async function kill(): Promise<void> {
  const fault: Fault = { kind: "kill", at: 0, firstFailAt: null, recoveredAt: null };
  // Right before the kill: hold receipts, leave a scheduled message and a half transaction open.
  const h = await hold(3000);
  const sched = `sched-kill-${faults.length}`;
  attempted.set(sched, { msgId: sched, kind: "scheduled" });
  const results = await sendUntilAcked(
    [{ body: "scheduled", msgId: sched, delayMs: 2500 }],
    Date.now() + 5000,
  );
  if (results) {
    recordAck({ msgId: sched, kind: "scheduled" }, results[0]);
    scheduledAtKill.push(sched);
  }
  const half = await prepareHalf(Date.now() + 5000);
  if (half) pendingHalves.push(half);
  const commitsBefore = [...ackedCommit];

  fault.at = Date.now();
  currentFault = fault;
  faults.push(fault);
  signalTree("SIGKILL");
  await server?.stop("SIGKILL");
  run++;
  await sleep(Math.floor(faultRand() * 1000));
  fault.restartMs = await startServer();
  held.push({ msgIds: h.msgIds, fault });

  // Committed offsets never move backwards across a restart.
  let o: Answer | null = null;
  for (let i = 0; i < 20 && o === null; i++) {
    o = await http("GET", `/v1/groups/${PULLERS}/topics/${TOPIC}/offsets`).catch(() => null);
    if (o !== null && o.status !== 200 && o.status !== 404) o = null;
    if (o === null) await sleep(200);
  }
  if (o?.status === 200) {
    for (const { queue, offset } of o.body.offsets as { queue: number; offset: number }[]) {
      if (offset < commitsBefore[queue]!) {
        offsetRegressions++;
        violate(
          `queue ${queue}: committed offset ${offset} after restart, ${commitsBefore[queue]} acknowledged before`,
        );
      }
    }
  }
  for (const hf of pendingHalves.splice(0)) await commitHalf(hf, Date.now() + 30_000);
}

async function pause(): Promise<{ held: number; lapsedAcks: number }> {
  const fault: Fault = { kind: "pause", at: 0, firstFailAt: null, recoveredAt: null };
  const h = await hold(Math.max(1000, Math.floor(PAUSE_MS / 3)));
  fault.at = Date.now();
  currentFault = fault;
  faults.push(fault);
  signalTree("SIGSTOP");
  await sleep(PAUSE_MS);
  signalTree("SIGCONT");
  // Sends stalled (rather than failed) if the pause was shorter than their
  // timeout: the outage began with the pause either way.
  if (fault.firstFailAt === null) fault.firstFailAt = fault.at;
  // The held receipts lapsed while the broker was stopped: acking them now must fail.
  let lapsedAcks = 0;
  if (h.receipts.length) {
    try {
      const a = await http(
        "POST",
        `/v1/groups/${HOLDERS}/topics/${TOPIC}/ack`,
        { receipts: h.receipts },
        15_000,
      );
      if (a.status === 200) {
        for (const res of a.body.results as any[]) {
          if (res.ok) violate("a receipt acked after its invisible time lapsed during a pause");
          else lapsedAcks++;
        }
      }
    } catch {
      // the ack's fate is unknown; the redelivery check below still holds
    }
  }
  held.push({ msgIds: h.msgIds, fault });
  return { held: h.msgIds.size, lapsedAcks };
}

// ---------------------------------------------------------------------------
// Drain and checks

async function readLog(): Promise<Map<string, { queue: number; offset: number }[]>> {
  const where = new Map<string, { queue: number; offset: number }[]>();
  for (let q = 0; q < QUEUES; q++) {
    let offset = 0;
    for (let i = 0; i < 10_000; i++) {
      const b = await must(
        "GET",
        `/v1/topics/${TOPIC}/queues/${q}/messages?offset=${offset}&max=1000`,
      );
      if (b.minOffset !== 0)
        violate(`queue ${q}: minOffset ${b.minOffset} (nothing should be deleted)`);
      for (const m of b.messages as any[]) {
        if (m.offset !== offset)
          violate(`queue ${q}: offset ${m.offset} read where ${offset} was expected (gap)`);
        offset = m.offset + 1;
        const list = where.get(m.msgId) ?? [];
        list.push({ queue: q, offset: m.offset });
        where.set(m.msgId, list);
      }
      if (b.nextOffset >= b.maxOffset) break;
      offset = b.nextOffset;
    }
  }
  return where;
}

async function drained(): Promise<boolean> {
  try {
    const g = await must("GET", `/v1/groups/${ORDERLY}`, undefined, 10_000);
    const orderlyDone = (g.topics[TOPIC] as any[]).every(
      (q) => q.lag === 0 && q.inflight === 0 && q.retrying === 0,
    );
    const o = await must("GET", `/v1/groups/${PULLERS}/topics/${TOPIC}/offsets`, undefined, 10_000);
    const pullDone = (o.offsets as any[]).every((q) => q.lag === 0);
    return orderlyDone && pullDone;
  } catch {
    return false;
  }
}

function checkOrder(log: Map<string, { queue: number; offset: number }[]>): number {
  let bad = 0;
  // Along the log: per key, sequence numbers increase with the offset.
  const byKey = new Map<string, { seq: number; queue: number; offset: number }[]>();
  for (const [msgId, places] of log) {
    const s = attempted.get(msgId);
    if (s?.kind !== "keyed" || places.length !== 1) continue;
    const list = byKey.get(s.key!) ?? [];
    list.push({ seq: s.seq!, ...places[0]! });
    byKey.set(s.key!, list);
  }
  for (const [key, list] of byKey) {
    list.sort((a, b) => a.offset - b.offset);
    for (let i = 1; i < list.length; i++) {
      if (list[i]!.queue !== list[0]!.queue) {
        bad++;
        violate(`key ${key} stored in queues ${list[0]!.queue} and ${list[i]!.queue}`);
      }
      if (list[i]!.seq <= list[i - 1]!.seq) {
        bad++;
        violate(`key ${key}: seq ${list[i]!.seq} stored after seq ${list[i - 1]!.seq}`);
      }
    }
  }
  // The orderly group: first deliveries in seq order; nothing delivered again once a later seq was handed out.
  const seen = new Map<string, { maxSeq: number; firsts: Set<number> }>();
  for (const d of orderlyDeliveries) {
    const s = attempted.get(d.msgId);
    if (s?.kind !== "keyed") continue;
    const k = seen.get(s.key!) ?? { maxSeq: -1, firsts: new Set<number>() };
    if (s.seq! < k.maxSeq) {
      bad++;
      violate(`orderly: key ${s.key} seq ${s.seq} delivered after seq ${k.maxSeq}`);
    }
    k.maxSeq = Math.max(k.maxSeq, s.seq!);
    k.firsts.add(s.seq!);
    seen.set(s.key!, k);
  }
  return bad;
}

// ---------------------------------------------------------------------------
// Full disk: a separate server on a small tmpfs.

async function diskPhase(): Promise<Record<string, unknown>> {
  if (!DISK) return { skipped: "CHAOS_DISK=0" };
  const mnt = fs.mkdtempSync(path.join(tmpdir(), "edgemq-chaos-disk-"));
  const mounted = spawnSync("mount", ["-t", "tmpfs", "-o", "size=64m", "tmpfs", mnt], {
    encoding: "utf8",
  });
  if (mounted.status !== 0) {
    fs.rmSync(mnt, { recursive: true, force: true });
    return {
      skipped: `mount -t tmpfs not permitted: ${(mounted.stderr || mounted.error?.message || "").trim().slice(0, 160)}`,
    };
  }
  const savedPort = port;
  let disk: LocalServer | undefined;
  try {
    disk = await startLocalServer({
      port: 0,
      dataDir: path.join(mnt, "data"),
      quiet: true,
      startupTimeoutMs: 60_000,
    });
    port = disk.port;
    await must("PUT", "/v1/topics/disk", { queues: 2 });
    const body = "d".repeat(8000);
    const ackedIds: string[] = [];
    let i = 0;
    const send = async (): Promise<Answer | null> => {
      const msgId = `disk-${i++}`;
      try {
        const r = await http("POST", "/v1/topics/disk/messages", { messages: [{ body, msgId }] });
        if (r.status === 200) ackedIds.push(msgId);
        return r;
      } catch {
        return null;
      }
    };
    for (let k = 0; k < 20; k++) await send();
    // Fill the filesystem to within ~1 MiB.
    const filler = path.join(mnt, "filler");
    const st = fs.statfsSync(mnt);
    fs.writeFileSync(filler, Buffer.alloc(Math.max(0, st.bavail * st.bsize - 1024 * 1024)));
    const failures: Record<string, number> = {};
    let consecutive = 0;
    let sendsWhileFull = 0;
    while (consecutive < 10 && sendsWhileFull < 1000) {
      sendsWhileFull++;
      const r = await send();
      if (r?.status === 200) consecutive = 0;
      else {
        consecutive++;
        const code = r === null ? "network error" : `${r.status} ${r.body?.error?.code ?? "?"}`;
        failures[code] = (failures[code] ?? 0) + 1;
      }
    }
    const clear = Object.keys(failures).every((c) => c === "507 STORAGE_FULL");
    if (Object.keys(failures).length === 0) violate("disk: the filesystem never filled up");
    if (!clear)
      violate(
        `disk: sends on a full disk failed with ${JSON.stringify(failures)}, not only 507 STORAGE_FULL`,
      );
    // Free the space: the broker recovers by itself.
    fs.rmSync(filler);
    const freedAt = Date.now();
    let recoveryMs: number | null = null;
    for (let k = 0; k < 200 && recoveryMs === null; k++) {
      if ((await send())?.status === 200) recoveryMs = Date.now() - freedAt;
      else await sleep(50);
    }
    if (recoveryMs === null) violate("disk: sends still fail after the space was freed");
    // Everything acknowledged is there, once, after a crash.
    await disk.stop("SIGKILL");
    disk = await startLocalServer({
      port: 0,
      dataDir: path.join(mnt, "data"),
      quiet: true,
      startupTimeoutMs: 60_000,
    });
    port = disk.port;
    const found = new Map<string, number>();
    for (let q = 0; q < 2; q++) {
      const b = await must("GET", `/v1/topics/disk/queues/${q}/messages?offset=0&max=1000`);
      for (const m of b.messages as any[]) found.set(m.msgId, (found.get(m.msgId) ?? 0) + 1);
    }
    const lost = ackedIds.filter((id) => !found.has(id)).length;
    const twice = [...found.values()].filter((c) => c > 1).length;
    if (lost) violate(`disk: ${lost} acknowledged messages lost`);
    if (twice) violate(`disk: ${twice} messages stored twice`);
    return {
      acked: ackedIds.length,
      sendsWhileFull,
      failures,
      recoveryMs,
      lost,
      storedTwice: twice,
    };
  } finally {
    await disk?.stop("SIGKILL");
    port = savedPort;
    spawnSync("umount", [mnt]);
    fs.rmSync(mnt, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------

async function main(): Promise<void> {
  const t0 = Date.now();
  dataDir = fs.mkdtempSync(path.join(tmpdir(), "edgemq-chaos-"));
  port = await freePort();
  let exitCode = 0;
  try {
    await startServer();
    await must("PUT", `/v1/topics/${TOPIC}`, { queues: QUEUES });
    await must("PUT", `/v1/groups/${ORDERLY}`, { orderly: true, maxReconsumeTimes: 100 });
    await must("PUT", `/v1/groups/${HOLDERS}`, { maxReconsumeTimes: 100 });

    const workers = [...Array.from({ length: PRODUCERS }, (_, p) => producer(p)), transactor()];
    const consumers = [
      ...Array.from({ length: ORDERLY_CONSUMERS }, () => orderlyConsumer()),
      puller(),
    ];

    // Fault schedule: KILLS kills and one pause in seeded random order, one per slot with jitter.
    const kinds: ("kill" | "pause")[] = [
      ...Array.from({ length: KILLS }, () => "kill" as const),
      "pause",
    ];
    for (let i = kinds.length - 1; i > 0; i--) {
      const j = Math.floor(faultRand() * (i + 1));
      [kinds[i], kinds[j]] = [kinds[j]!, kinds[i]!];
    }
    const start = Date.now();
    const slot = (SECONDS * 1000) / (kinds.length + 1);
    let pauseFigures = { held: 0, lapsedAcks: 0 };
    const heldChecks: Promise<number>[] = [];
    for (let i = 0; i < kinds.length; i++) {
      const at = start + slot * (i + 1) + (faultRand() - 0.5) * slot * 0.5;
      await sleep(Math.max(0, at - Date.now()));
      if (kinds[i] === "kill") await kill();
      else pauseFigures = await pause();
      const h = held[held.length - 1];
      if (h) heldChecks.push(verifyHeld(h, 30_000));
    }
    await sleep(Math.max(0, start + SECONDS * 1000 - Date.now()));
    currentFault = null;

    // Drain: producers finish their message in hand, halves are committed,
    // scheduled messages come due, consumers catch up.
    producing = false;
    await Promise.all(workers);
    const heldRedelivered = (await Promise.all(heldChecks)).reduce((a, b) => a + b, 0);
    const drainStart = Date.now();
    await sleep(4500); // the latest scheduled message (≤ 4 s) comes due
    while (!(await drained()) && Date.now() - drainStart < 90_000) await sleep(500);
    consuming = false;
    await Promise.all(consumers);
    const drainMs = Date.now() - drainStart;

    // Read the whole log by offset.
    const log = await readLog();
    let lost = 0;
    let lostOrderly = 0;
    let lostPulled = 0;
    let storedTwice = 0;
    let unexpected = 0;
    const deliveredOrderly = new Set(orderlyDeliveries.map((d) => d.msgId));
    for (const [msgId, s] of acked) {
      const places = log.get(msgId);
      if (!places) {
        lost++;
        violate(`lost: ${msgId} (${s.kind}) acknowledged, not in the log`);
        continue;
      }
      if (s.offset !== undefined && s.offset !== null) {
        const p = places[0]!;
        if (p.queue !== s.queue || p.offset !== s.offset) {
          violate(
            `${msgId} acknowledged at ${s.queue}/${s.offset}, stored at ${p.queue}/${p.offset}`,
          );
        }
      }
      if (!deliveredOrderly.has(msgId)) {
        lostOrderly++;
        violate(`lost: ${msgId} (${s.kind}) never delivered to the orderly group`);
      }
      if (!pulled.has(msgId)) {
        lostPulled++;
        violate(`lost: ${msgId} (${s.kind}) never read by the pulling group`);
      }
    }
    for (const [msgId, places] of log) {
      if (places.length > 1) {
        storedTwice++;
        violate(
          `stored twice: ${msgId} at ${places.map((p) => `${p.queue}/${p.offset}`).join(", ")}`,
        );
      }
      if (!attempted.has(msgId)) {
        unexpected++;
        violate(`unexpected: ${msgId} in the log, never sent`);
      }
    }
    for (const id of new Set([...deliveredOrderly, ...pulled])) {
      if (!attempted.has(id)) {
        unexpected++;
        violate(`unexpected: ${id} read, never sent`);
      }
    }
    const orderViolations = checkOrder(log);
    const scheduledAtKillDelivered = scheduledAtKill.filter((id) =>
      deliveredOrderly.has(id),
    ).length;
    scheduledAcrossKill = scheduledAtKillDelivered;
    if (KILLS > 0 && halvesAcrossRestart === 0)
      violate("no half transaction was open across a restart");
    if (KILLS > 0 && scheduledAtKill.length === 0)
      violate("no scheduled message was pending across a restart");
    const heldTotal = held.reduce((a, h) => a + h.msgIds.size, 0);
    if (heldTotal === 0) violate("no receipt was held across a fault");

    const disk = await diskPhase();

    const kills = faults.filter((f) => f.kind === "kill");
    const recovery = (f: Fault) =>
      f.firstFailAt !== null && f.recoveredAt !== null ? f.recoveredAt - f.firstFailAt : null;
    const out = {
      bench: "chaos",
      mode: short ? "short" : "full",
      seed: SEED,
      seconds: SECONDS,
      kills: kills.length,
      pauses: faults.length - kills.length,
      pauseMs: PAUSE_MS,
      attempted: attempted.size,
      acknowledged: acked.size,
      stored: log.size,
      ...stats,
      lost,
      lostOrderly,
      lostPulled,
      storedTwice,
      unexpected,
      orderViolations,
      offsetRegressions,
      heldAtFaults: heldTotal,
      heldRedelivered,
      pauseHeld: pauseFigures.held,
      pauseLapsedAcks: pauseFigures.lapsedAcks,
      scheduledAcrossKill: `${scheduledAcrossKill}/${scheduledAtKill.length}`,
      halvesAcrossRestart,
      recoveryMsPerKill: kills.map(recovery),
      restartMsPerKill: kills.map((f) => f.restartMs ?? null),
      recoveryMsPause: faults.filter((f) => f.kind === "pause").map(recovery),
      drainMs,
      disk,
      violations: violations.length,
      ...(violations.length > 0 && { firstViolations: violations.slice(0, 10) }),
      totalMs: Date.now() - t0,
    };
    console.log(JSON.stringify(out));
    if (violations.length > 0) exitCode = 1;
  } catch (e) {
    console.log(
      JSON.stringify({
        bench: "chaos",
        error: e instanceof Error ? e.message : String(e),
        violations: violations.length,
        firstViolations: violations.slice(0, 10),
        serverStderr: server?.stderr().slice(-1500),
      }),
    );
    exitCode = 1;
  } finally {
    producing = false;
    consuming = false;
    signalTree("SIGCONT");
    await server?.stop("SIGKILL");
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
  process.exit(exitCode);
}

await main();
