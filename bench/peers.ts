/**
 * edgemq side by side with NATS JetStream and RabbitMQ, on loopback, in one
 * run: the targets of issue 18 are ratios to these figures. Each shape runs
 * against RabbitMQ, NATS and edgemq in turn (interleaved, so all three see
 * the same machine state), with 256 B messages:
 *
 * - publish with 1,000 `send()` outstanding (one sender, closed loop);
 * - 64 producers (64 connections / SDK Producers), each awaiting its `send()`;
 * - consume a stored backlog with an ack of each message (edgemq with
 *   PushConsumer and with SimpleConsumer), credit window PEERS_WINDOW (100);
 * - end-to-end latency at 1,000 and 100 msg/s (open loop, one sender, one
 *   consumer; from the `send()` call to the consumer's callback, same
 *   process, monotonic clock), p50/p99, with server CPU per message;
 * - edgemq alone: server CPU over PEERS_IDLE_SECONDS (60) with one idle
 *   PushConsumer subscribed, beside the same server with no consumer over
 *   PEERS_IDLE_BASELINE_SECONDS (20); a server of its own, measured while
 *   the other shapes run (only its process's CPU counts).
 *
 * edgemq goes through the public SDK (client/) with its defaults (only
 * `endpoint` given), so a change of the SDK's default transport is measured
 * without edits here. Every broker acknowledges a send only once stored;
 * NATS answers before fsync (its 2.9 file store syncs on an interval), while
 * RabbitMQ (publisher confirms, persistent messages, durable classic queue)
 * and edgemq (SQLite commit) answer after it. Server CPU is from /proc
 * (bench/lib/cpu.ts): workerd, nats-server, RabbitMQ's VM.
 *
 * A peer not installed is reported as such and the rest still runs.
 *
 *   node bench/peers.ts                         # prints one JSON line
 *   BENCH_ONLY=peers npm run bench              # the same, with the table
 *   PEERS_SECONDS=1 PEERS_LATENCY_SECONDS=2 PEERS_CONSUME_N=5000 PEERS_IDLE_SECONDS=5 node bench/peers.ts
 *   PEERS=nats node bench/peers.ts              # only NATS beside edgemq (PEERS=none: edgemq alone)
 */
import { PushConsumer } from "../client/index.ts";
import type { Broker, ConsumeOptions } from "./lib/broker.ts";
import { edgemqBroker } from "./lib/broker-edgemq.ts";
import { natsBroker } from "./lib/broker-nats.ts";
import { rabbitBroker } from "./lib/broker-rabbitmq.ts";
import { cpuMeter, threadCpu } from "./lib/cpu.ts";
import { closedLoop, payload, quantile, round, sleep } from "./lib/load.ts";
import { type Peer, startNats, startRabbit } from "./lib/peer-servers.ts";
import { emit } from "./lib/report.ts";
import { type BenchServer, startBenchServer } from "./lib/servers.ts";

const num = (name: string, fallback: number): number => {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? v : fallback;
};
const SECONDS = num("PEERS_SECONDS", num("BENCH_SECONDS", 3));
const LATENCY_SECONDS = num("PEERS_LATENCY_SECONDS", 5);
const RATES = (process.env.PEERS_LATENCY_RATES ?? "1000,100")
  .split(",")
  .map(Number)
  .filter((r) => r > 0);
const CONSUME_N = num("PEERS_CONSUME_N", 20_000);
const IDLE_SECONDS = num("PEERS_IDLE_SECONDS", 60);
const IDLE_BASELINE_SECONDS = num("PEERS_IDLE_BASELINE_SECONDS", Math.min(20, IDLE_SECONDS));
/**
 * The idle consumer meets "no server CPU" when it adds at most this much per
 * minute over the baseline: the server alone varied by a few ms a minute
 * here, while a consumer that polls costs a few ms per poll.
 */
const IDLE_TOLERANCE_MS_PER_MIN = 5;
const WINDOW = num("PEERS_WINDOW", 100);
const OUTSTANDING = 1000;
const PRODUCERS = 64;
const SIZE = 256;
const WARMUP_MS = 500;
const LATENCY_WARMUP_MS = 1000;
const WANTED = (process.env.PEERS ?? "nats,rabbitmq").split(",").map((s) => s.trim());
/** /proc/<pid>/stat's resolution: one clock tick. */
const TICK_MS = 10;

const BODY = payload(SIZE, 1);

interface Rate {
  msgPerSec: number;
  messages: number;
  /** Server CPU (user + system) per message, µs. */
  serverCpuUsPerMsg: number;
  /** This process's CPU per message, µs (the client libraries, the SDK). */
  clientCpuUsPerMsg: number;
  errors: number;
  firstError?: string;
}

interface Latency {
  ratePerSec: number;
  messages: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  /** From `send()` to its acknowledgement. */
  sendP50Ms: number;
  sendP99Ms: number;
  serverCpuUsPerMsg: number;
  /** Server CPU over the window, in % of one core. */
  serverCpuPct: number;
  clientCpuUsPerMsg: number;
  errors: number;
  firstError?: string;
}

type Missing = { missing: string };
type Result<T> = T | Missing;
type PerBroker<T> = Partial<Record<"edgemq" | "nats" | "rabbitmq", Result<T>>>;

const errorText = (e: unknown) => (e instanceof Error ? e.message : String(e)).slice(0, 300);

/** A meter of server and client CPU over a window. */
function meters(pid: number): () => { serverMs: number; clientMs: number; wallMs: number } {
  const server = cpuMeter(pid);
  const client = process.cpuUsage();
  const t0 = performance.now();
  return () => {
    const serverMs = server.stop();
    const c = process.cpuUsage(client);
    return { serverMs, clientMs: (c.user + c.system) / 1000, wallMs: performance.now() - t0 };
  };
}

/** A closed loop of `concurrency` workers over SECONDS after a warm-up. */
async function closedRate(
  b: Broker,
  concurrency: number,
  op: (worker: number) => Promise<void>,
): Promise<Rate> {
  let stop: ReturnType<typeof meters> | undefined;
  let used = { serverMs: Number.NaN, clientMs: Number.NaN, wallMs: 0 };
  const r = await closedLoop({
    concurrency,
    durationMs: SECONDS * 1000,
    warmupMs: WARMUP_MS,
    op: async (w) => {
      await op(w);
      return 1;
    },
    onStart: () => (stop = meters(b.pid)),
    onStop: () => {
      if (stop) used = stop();
    },
  });
  const out: Rate = {
    msgPerSec: round(r.units / (r.elapsedMs / 1000)),
    messages: r.units,
    serverCpuUsPerMsg: round((used.serverMs * 1000) / r.units),
    clientCpuUsPerMsg: round((used.clientMs * 1000) / r.units),
    errors: r.errors,
  };
  if (r.firstError !== undefined) out.firstError = r.firstError;
  return out;
}

async function publishOutstanding(b: Broker): Promise<Rate> {
  const dest = await b.destination("outstanding");
  const sender = await b.sender(dest);
  try {
    return await closedRate(b, OUTSTANDING, () => sender.send(BODY));
  } finally {
    await sender.close();
  }
}

async function awaitingProducers(b: Broker): Promise<Rate> {
  const dest = await b.destination("producers");
  const senders = await Promise.all(Array.from({ length: PRODUCERS }, () => b.sender(dest)));
  try {
    return await closedRate(b, PRODUCERS, (w) => senders[w]!.send(BODY));
  } finally {
    await Promise.all(senders.map((s) => s.close()));
  }
}

/**
 * Drains a backlog of CONSUME_N messages: from starting the consumer until
 * every message was handled and its ack reached the broker (or the time cap).
 */
async function consumeAck(b: Broker, style: ConsumeOptions["style"]): Promise<Rate> {
  const dest = await b.destination(`consume-${style ?? "push"}`);
  await b.fill(dest, CONSUME_N, BODY);
  await sleep(300); // let the fill's writes settle out of the window
  let got = 0;
  let drained!: () => void;
  const all = new Promise<void>((r) => (drained = r));
  const stop = meters(b.pid);
  const consumer = await b.consume(dest, { window: WINDOW, ...(style && { style }) }, () => {
    if (++got === CONSUME_N) drained();
  });
  const capMs = Math.max(20_000, SECONDS * 10_000);
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([all, new Promise((r) => (timer = setTimeout(r, capMs)))]);
  clearTimeout(timer);
  let firstError: string | undefined;
  await consumer.stop().catch((e: unknown) => (firstError = errorText(e)));
  const used = stop();
  const out: Rate = {
    msgPerSec: round(got / (used.wallMs / 1000)),
    messages: got,
    serverCpuUsPerMsg: round((used.serverMs * 1000) / got),
    clientCpuUsPerMsg: round((used.clientMs * 1000) / got),
    errors: firstError ? 1 : 0,
  };
  if (got < CONSUME_N) out.firstError = `drained ${got} of ${CONSUME_N} in ${capMs / 1000} s`;
  if (firstError) out.firstError = firstError;
  return out;
}

/** Open-loop sends at `rate` for LATENCY_SECONDS after a warm-up; one consumer. */
async function latency(b: Broker, rate: number): Promise<Latency> {
  const dest = await b.destination(`latency-${rate}`);
  const latencies: number[] = [];
  let countFrom = Number.POSITIVE_INFINITY;
  const consumer = await b.consume(dest, { window: WINDOW, style: "push" }, (body) => {
    const at = Number(body.slice(0, body.indexOf("|")));
    if (at >= countFrom) latencies.push(performance.now() - at);
  });
  const sender = await b.sender(dest);
  await sleep(300); // the consumer is waiting before the first send
  const total = Math.round((rate * (LATENCY_SECONDS * 1000 + LATENCY_WARMUP_MS)) / 1000);
  const sendMs: number[] = [];
  const pending = new Set<Promise<void>>();
  let errors = 0;
  let firstError: string | undefined;
  let stop: ReturnType<typeof meters> | undefined;
  const t0 = performance.now();
  for (let sent = 0; sent < total;) {
    const now = performance.now();
    if (!stop && now - t0 >= LATENCY_WARMUP_MS) {
      countFrom = now;
      stop = meters(b.pid);
    }
    const due = Math.min(total, Math.floor(((now - t0) * rate) / 1000) + 1);
    for (; sent < due; sent++) {
      const at = performance.now();
      const body = `${at.toFixed(3)}|`;
      const p = sender.send(body + BODY.slice(body.length)).then(
        () => {
          if (at >= countFrom) sendMs.push(performance.now() - at);
        },
        (e: unknown) => {
          errors++;
          firstError ??= errorText(e);
        },
      );
      pending.add(p);
      void p.finally(() => pending.delete(p));
    }
    // Bounded: a second's worth of sends in flight at most.
    if (pending.size > rate) await Promise.race(pending);
    await sleep(1);
  }
  await Promise.all(pending);
  const deadline = performance.now() + 5000;
  while (latencies.length < sendMs.length && performance.now() < deadline) await sleep(5);
  const used = stop ? stop() : { serverMs: Number.NaN, clientMs: Number.NaN, wallMs: 1 };
  await consumer.stop().catch((e: unknown) => {
    errors++;
    firstError ??= errorText(e);
  });
  await sender.close();
  latencies.sort((x, y) => x - y);
  sendMs.sort((x, y) => x - y);
  const n = Math.max(1, latencies.length);
  const out: Latency = {
    ratePerSec: rate,
    messages: latencies.length,
    p50Ms: round(quantile(latencies, 0.5)),
    p90Ms: round(quantile(latencies, 0.9)),
    p99Ms: round(quantile(latencies, 0.99)),
    maxMs: round(latencies.at(-1) ?? Number.NaN),
    sendP50Ms: round(quantile(sendMs, 0.5)),
    sendP99Ms: round(quantile(sendMs, 0.99)),
    serverCpuUsPerMsg: round((used.serverMs * 1000) / n),
    serverCpuPct: round((used.serverMs * 100) / used.wallMs),
    clientCpuUsPerMsg: round((used.clientMs * 1000) / n),
    errors: errors + Math.max(0, sendMs.length - latencies.length),
  };
  if (firstError !== undefined) out.firstError = firstError;
  return out;
}

/**
 * Server CPU of a fresh edgemq with nothing connected (the baseline), then
 * with one idle PushConsumer (SDK defaults) subscribed to an empty one-queue
 * topic. Thread CPU in ns resolution (an idle window is too quiet for clock
 * ticks), with the times the server was scheduled (wake-ups).
 *
 * It is a server of its own, so it runs alongside the other shapes: only its
 * own process's CPU is counted, and the 90 s it needs fit the bench budget
 * that way. `track` receives its close, for a stop by signal.
 */
async function idleConsumer(
  track: (close: () => Promise<void>) => void,
): Promise<Record<string, unknown>> {
  const s = await startBenchServer();
  let closed: Promise<void> | undefined;
  const close = () => (closed ??= s.close());
  track(close);
  const pid = s.server.pid;
  const window = async (seconds: number) => {
    const a = threadCpu(pid);
    const ticks = cpuMeter(pid);
    await sleep(seconds * 1000);
    const b = threadCpu(pid);
    const tickMs = ticks.stop();
    return a && b
      ? { ms: b.ms - a.ms, wakeups: b.wakeups - a.wakeups, resolution: "ns" }
      : { ms: tickMs, wakeups: Number.NaN, resolution: `${TICK_MS} ms ticks` };
  };
  try {
    const b = edgemqBroker(s.server.url, pid);
    const topic = await b.destination("idle");
    await sleep(2000); // past the start-up's own work
    const baseline = await window(IDLE_BASELINE_SECONDS);
    const consumer = new PushConsumer({
      endpoint: s.server.url,
      group: "idle",
      topic,
      handler: () => {},
    });
    let errors = 0;
    consumer.addEventListener("error", () => void errors++);
    await sleep(1000); // subscribed: its first long-poll is waiting
    const idle = await window(IDLE_SECONDS);
    await consumer.shutdown();
    const scale = IDLE_SECONDS / IDLE_BASELINE_SECONDS;
    return {
      seconds: IDLE_SECONDS,
      serverCpuMs: round(idle.ms),
      serverWakeups: idle.wakeups,
      baselineSeconds: IDLE_BASELINE_SECONDS,
      baselineCpuMs: round(baseline.ms),
      baselineWakeups: baseline.wakeups,
      /** What the consumer added: the window's CPU less the baseline's, scaled to the same length. */
      consumerCpuMs: round(idle.ms - baseline.ms * scale),
      consumerCpuMsPerMin: round(((idle.ms - baseline.ms * scale) * 60) / IDLE_SECONDS),
      resolution: idle.resolution,
      consumerErrors: errors,
    };
  } finally {
    await close();
  }
}

// ---------------------------------------------------------------------------

const fsyncPolicy: Record<string, string> = {
  edgemq: "answers a send after its SQLite commit, WAL fsynced (npm run durability checks it)",
  nats: "acks a publish once written to the stream's file, before fsync (2.9 syncs on an interval, 2 min by default)",
  rabbitmq:
    "confirms a persistent message to a durable queue once on disk, after fsync (batched over concurrent publishes)",
};

/** Runs `shape` against each broker in turn; a failure is recorded, not thrown. */
async function eachBroker<T>(
  brokers: Broker[],
  missing: Record<string, string>,
  label: string,
  shape: (b: Broker) => Promise<T>,
): Promise<PerBroker<T>> {
  const out: PerBroker<T> = {};
  for (const [name, why] of Object.entries(missing)) out[name as "nats"] = { missing: why };
  for (const b of brokers) {
    try {
      out[b.name] = await shape(b);
    } catch (e) {
      out[b.name] = { missing: `failed: ${errorText(e)}` };
    }
    process.stderr.write(`peers ${label} ${b.name}: ${JSON.stringify(out[b.name])}\n`);
    await sleep(300);
  }
  return out;
}

function value<T extends object>(r: Result<T> | undefined, key: keyof T): number | undefined {
  if (!r || "missing" in r) return undefined;
  const v = (r as T)[key];
  return typeof v === "number" && Number.isFinite(v) ? v : undefined;
}

const ratio = (a: number | undefined, b: number | undefined) =>
  a === undefined || b === undefined || b === 0 ? undefined : Math.round((a / b) * 100) / 100;

/** A target: `met` is undefined when a figure it needs is missing. */
function target(what: string, got: number | undefined, ok: (x: number) => boolean) {
  return { what, got, met: got === undefined ? undefined : ok(got) };
}

export async function runPeers(): Promise<Record<string, unknown>> {
  // Handled from the start: RabbitMQ boots for seconds, and a SIGTERM (from
  // bench/run.ts's timeout) must not leave it running. process.exit runs the
  // exit hooks that kill the peers' process groups and workerd.
  const closers: (() => Promise<void>)[] = [];
  const closeAll = async () => {
    for (const c of closers.splice(0)) await c().catch(() => {});
  };
  const onSignal = () => {
    void Promise.race([closeAll(), sleep(3000)]).finally(() => process.exit(1));
  };
  process.once("SIGTERM", onSignal);
  process.once("SIGINT", onSignal);
  const idleRun = idleConsumer((close) => closers.push(close)).catch((e: unknown) => ({
    error: errorText(e),
  }));
  const peerStarts: Promise<Peer>[] = [];
  if (WANTED.includes("nats")) peerStarts.push(startNats());
  if (WANTED.includes("rabbitmq")) peerStarts.push(startRabbit());
  // Closed from the moment it is up, even while a peer is still booting.
  const edgemqStart = startBenchServer().then((started) => {
    closers.push(() => started.close());
    return started;
  });
  const [edgemq, ...peers] = await Promise.all([edgemqStart, ...peerStarts]);
  const server = edgemq as BenchServer;
  const brokers: Broker[] = [];
  const missing: Record<string, string> = {};
  const peerInfo: Record<string, unknown> = {};
  for (const name of ["nats", "rabbitmq"] as const) {
    if (!WANTED.includes(name)) missing[name] = "not asked for (PEERS)";
  }
  for (const p of peers as Peer[]) {
    if (!p.available) {
      missing[p.name] = p.reason.split("\n")[0] as string;
      peerInfo[p.name] = { available: false, reason: p.reason.slice(0, 2000) };
      continue;
    }
    closers.push(() => p.close());
    try {
      const b =
        p.name === "nats" ? await natsBroker(p.port, p.pid) : await rabbitBroker(p.port, p.pid);
      brokers.push(b);
      closers.unshift(() => b.close());
      peerInfo[p.name] = {
        available: true,
        version: p.version,
        startupSeconds: p.startupSeconds,
        fsync: fsyncPolicy[p.name],
      };
    } catch (e) {
      missing[p.name] = `client failed to connect: ${errorText(e)}`;
      peerInfo[p.name] = { available: false, reason: missing[p.name] };
    }
  }
  // RabbitMQ first, then NATS, then edgemq, in each shape.
  brokers.sort((a, b) => (a.name === "rabbitmq" ? -1 : b.name === "rabbitmq" ? 1 : 0));
  brokers.push(edgemqBroker(server.server.url, server.server.pid));
  peerInfo.edgemq = {
    sdk: "Producer / PushConsumer / SimpleConsumer with default options",
    fsync: fsyncPolicy.edgemq,
  };

  try {
    const outstanding = await eachBroker(brokers, missing, "outstanding", publishOutstanding);
    const producers = await eachBroker(brokers, missing, "producers", awaitingProducers);
    const consume = await eachBroker(brokers, missing, "consume", (b) => consumeAck(b, undefined));
    const edgemqB = brokers.at(-1) as Broker;
    const simple = await eachBroker([edgemqB], {}, "consume-simple", (b) =>
      consumeAck(b, "simple"),
    );
    const latencies: (PerBroker<Latency> & { ratePerSec: number })[] = [];
    for (const rate of RATES) {
      const each = await eachBroker(brokers, missing, `latency-${rate}`, (b) => latency(b, rate));
      latencies.push({ ratePerSec: rate, ...each });
    }
    process.stderr.write(`peers idle consumer: waiting for its ${IDLE_SECONDS} s window\n`);
    const idle = await idleRun;
    process.stderr.write(`peers idle: ${JSON.stringify(idle)}\n`);
    await closeAll();

    const e = (x: PerBroker<Rate>) => value(x.edgemq, "msgPerSec");
    const natsOf = (x: PerBroker<Rate>) => value(x.nats, "msgPerSec");
    const consumeShape = {
      edgemqPush: consume.edgemq,
      edgemqSimple: simple.edgemq,
      nats: consume.nats,
      rabbitmq: consume.rabbitmq,
    };
    const none: PerBroker<Latency> = {};
    const l1000 = latencies.find((l) => l.ratePerSec === 1000) ?? none;
    const l100 = latencies.find((l) => l.ratePerSec === 100) ?? none;
    const natsP99 = value(l1000.nats, "p99Ms");
    const e1000p99 = value(l1000.edgemq, "p99Ms");
    const vs = (x: PerBroker<Rate>) => ({
      vsNats: ratio(e(x), natsOf(x)),
      vsRabbitmq: ratio(e(x), value(x.rabbitmq, "msgPerSec")),
    });
    const idleConsumerMsPerMin =
      "consumerCpuMsPerMin" in idle && typeof idle.consumerCpuMsPerMin === "number"
        ? idle.consumerCpuMsPerMin
        : undefined;
    return {
      peers: peerInfo,
      settings: {
        bodyBytes: SIZE,
        seconds: SECONDS,
        warmupMs: WARMUP_MS,
        outstanding: OUTSTANDING,
        producers: PRODUCERS,
        window: WINDOW,
        consumeMessages: CONSUME_N,
        latencySeconds: LATENCY_SECONDS,
        latencyRates: RATES,
        idleSeconds: IDLE_SECONDS,
        queues: 1,
      },
      outstanding: { ...outstanding, ratios: vs(outstanding) },
      producers: { ...producers, ratios: vs(producers) },
      consume: {
        ...consumeShape,
        ratios: {
          pushVsNats: ratio(value(consume.edgemq, "msgPerSec"), natsOf(consume)),
          simpleVsNats: ratio(value(simple.edgemq, "msgPerSec"), natsOf(consume)),
          pushVsRabbitmq: ratio(
            value(consume.edgemq, "msgPerSec"),
            value(consume.rabbitmq, "msgPerSec"),
          ),
        },
      },
      latency: latencies,
      idle,
      targets: {
        e2e1000P50: target(
          "p50 ≤ 3 ms at 1,000 msg/s",
          value(l1000.edgemq, "p50Ms"),
          (x) => x <= 3,
        ),
        e2e1000P99: target("p99 ≤ 10 ms at 1,000 msg/s", e1000p99, (x) => x <= 10),
        e2e1000P99VsNats: target(
          "p99 ≤ 2 × NATS p99 at 1,000 msg/s",
          ratio(e1000p99, natsP99),
          (x) => x <= 2,
        ),
        e2e100P50: target("p50 ≤ 5 ms at 100 msg/s", value(l100.edgemq, "p50Ms"), (x) => x <= 5),
        e2e100Cpu: target(
          "server CPU ≤ 2 ms/msg at 100 msg/s (µs)",
          value(l100.edgemq, "serverCpuUsPerMsg"),
          (x) => x <= 2000,
        ),
        producersVsNats: target(
          "64 awaiting producers ≥ NATS",
          vs(producers).vsNats,
          (x) => x >= 1,
        ),
        pushConsumeVsNats: target(
          "consume + ack (PushConsumer) ≥ NATS",
          ratio(value(consume.edgemq, "msgPerSec"), natsOf(consume)),
          (x) => x >= 1,
        ),
        simpleConsumeVsNats: target(
          "consume + ack (SimpleConsumer) ≥ NATS",
          ratio(value(simple.edgemq, "msgPerSec"), natsOf(consume)),
          (x) => x >= 1,
        ),
        outstandingVsNats: target(
          "1,000 outstanding send() ≥ 1.5 × NATS",
          vs(outstanding).vsNats,
          (x) => x >= 1.5,
        ),
        idleConsumerCpu: target(
          `idle PushConsumer: no server CPU (ms/min over the no-consumer baseline, ≤ ${IDLE_TOLERANCE_MS_PER_MIN} tolerated as noise)`,
          idleConsumerMsPerMin,
          (x) => x <= IDLE_TOLERANCE_MS_PER_MIN,
        ),
      },
    };
  } finally {
    await closeAll();
    process.off("SIGTERM", onSignal);
    process.off("SIGINT", onSignal);
  }
}

if (import.meta.main) {
  emit("peers", await runPeers());
  // Client libraries may hold timers or sockets; the line is out, so end here.
  process.exit(0);
}
