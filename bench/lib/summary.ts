/**
 * The Markdown table of a bench run (docs/performance.md, the README): each
 * edgemq figure, the matching reference from the same run (the bare
 * runtime's ceiling, or NATS and RabbitMQ for bench/peers.ts), the ratio,
 * server CPU per message, and the target with whether it was met.
 */

type Json = Record<string, any>;

const n = (x: unknown): string => {
  if (typeof x !== "number" || !Number.isFinite(x)) return "–";
  if (Math.abs(x) >= 1000) return Math.round(x).toLocaleString("en-US");
  if (Math.abs(x) >= 100) return String(Math.round(x));
  return String(Math.round(x * 100) / 100);
};

const met = (ok: boolean | undefined): string =>
  ok === undefined ? "" : ok ? "met" : "**not met**";

interface Row {
  what: string;
  edgemq: string;
  ceiling: string;
  ratio: string;
  cpu: string;
  target: string;
  status: string;
}

function publishRows(line: Json): Row[] {
  const rows: Row[] = [];
  const cases = (line.cases ?? []) as Json[];
  const label = (c: Json) => {
    const size = c.size >= 1024 ? `${c.size / 1024} KiB` : `${c.size} B`;
    if (String(c.name).startsWith("sdk")) {
      const linger = c.name === "sdk-send-linger-0" ? "lingerMs 0" : "default linger (5 ms)";
      return `publish ${size}, SDK: ${c.concurrency} concurrent send(), ${linger}`;
    }
    const per = c.perRequest === 1 ? "1 msg/request" : `${c.perRequest} msgs/request`;
    return `publish ${size}, ${per}, ${c.concurrency} producer${c.concurrency > 1 ? "s" : ""}`;
  };
  for (const c of cases) {
    let target = "";
    let status = "";
    if (c.name === "http-100-per-request" && c.size === 256 && c.concurrency === 16) {
      target = "≥ 0.70 × ceiling";
      status = met(c.ratio >= 0.7);
    } else if (c.name === "http-1-per-request" && c.size === 256 && c.concurrency === 64) {
      target = "≥ 0.90 × ceiling";
      status = met(c.ratio >= 0.9);
    } else if (c.name === "sdk-send-linger-0" && c.size === 256) {
      target = "≥ 20,000 msg/s";
      status = met(c.edgemq.msgPerSec >= 20_000);
    }
    rows.push({
      what: label(c),
      edgemq: `${n(c.edgemq.msgPerSec)} msg/s`,
      ceiling: `${n(c.ceiling.msgPerSec)} msg/s`,
      ratio: n(c.ratio),
      cpu: `${n(c.edgemq.cpuUsPerMsg)} / ${n(c.ceiling.cpuUsPerMsg)}`,
      target,
      status,
    });
  }
  return rows;
}

function consumeRows(line: Json): Row[] {
  const c = line.readCeiling ?? {};
  const row = (what: string, x: Json | undefined): Row => ({
    what,
    edgemq: `${n(x?.msgPerSec)} msg/s`,
    ceiling: `${n(c.msgPerSec)} msg/s (read)`,
    ratio: n(x?.ratio),
    cpu: `${n(x?.cpuUsPerMsg)} / ${n(c.cpuUsPerMsg)}`,
    target: "≥ 0.70 × read ceiling",
    status: met(typeof x?.ratio === "number" ? x.ratio >= 0.7 : undefined),
  });
  const per = line.perRequest ?? 100;
  const who = `${line.consumers ?? 4} consumers, ${per} msgs/request`;
  return [
    row(`consume: pull + offset commit each batch, ${who}`, line.pullCommit),
    {
      ...row(
        `consume: pull, offset commit every 10th batch (SDK-like), ${who}`,
        line.pullCommitEvery10,
      ),
      target: "",
      status: "",
    },
    row(`consume: receive + ack, ${who}`, line.receiveAck),
  ];
}

function latencyRows(line: Json): Row[] {
  const row = (kind: string, x: Json | undefined): Row => ({
    what: `end-to-end latency at ${n(line.ratePerSec)} msg/s (1 msg/request), long-poll ${kind}`,
    edgemq: `p50 ${n(x?.p50Ms)} / p99 ${n(x?.p99Ms)} / max ${n(x?.maxMs)} ms`,
    ceiling: "",
    ratio: "",
    cpu: n(x?.cpuUsPerMsg),
    target: kind === "receive" ? "p99 ≤ 5 ms" : "",
    status: kind === "receive" ? met(typeof x?.p99Ms === "number" ? x.p99Ms <= 5 : undefined) : "",
  });
  return [row("receive", line.receive), row("pull", line.pull)];
}

function backlogRows(line: Json): Row[] {
  const stored = n(line.backlogStored);
  const e = line.empty ?? {};
  const b = line.backlog ?? {};
  const r = line.ratios ?? {};
  const reduced =
    line.backlogStored < line.backlogTarget
      ? ` (of ${n(line.backlogTarget)} aimed for: time budget)`
      : "";
  return [
    {
      what: `publish with a ${stored}-message backlog${reduced}, 100 msgs/request`,
      edgemq: `${n(b.send?.perSec)} msg/s`,
      ceiling: `${n(e.send?.perSec)} msg/s (empty queue)`,
      ratio: n(r.send),
      cpu: `${n(b.send?.cpuUsPerMsg)} / ${n(e.send?.cpuUsPerMsg)}`,
      target: "≥ 0.9 × empty",
      status: met(typeof r.send === "number" ? r.send >= 0.9 : undefined),
    },
    {
      what: `consume (pull + commit) with that backlog`,
      edgemq: `${n(b.consume?.perSec)} msg/s`,
      ceiling: `${n(e.consume?.perSec)} msg/s (empty queue)`,
      ratio: n(r.consume),
      cpu: `${n(b.consume?.cpuUsPerMsg)} / ${n(e.consume?.cpuUsPerMsg)}`,
      target: "",
      status: "",
    },
  ];
}

function scheduledRows(line: Json): Row[] {
  const l = line.latenessMs ?? {};
  return [
    {
      what: `scheduled delivery lateness (${n(line.messages)} msgs, long-poll receive)`,
      edgemq: `p50 ${n(l.p50)} / p99 ${n(l.p99)} / max ${n(l.max)} ms`,
      ceiling: "",
      ratio: "",
      cpu: n(line.deliverCpuUsPerMsg),
      target: `p99 ≤ ${line.targetP99Ms ?? 50} ms`,
      status: met(typeof l.p99 === "number" ? l.p99 <= (line.targetP99Ms ?? 50) : undefined),
    },
  ];
}

function cronRows(line: Json): Row[] {
  const row = (x: Json | undefined): Row => {
    const l = x?.latenessMs ?? {};
    const each =
      x?.schedules === 1
        ? "1 schedule"
        : `${n(x?.schedules)} schedules to ${x?.topics === 1 ? "one topic" : `${n(x?.topics)} topics`}`;
    return {
      what: `cron lateness, storedAt − fire time (${each} every second, ${n(line.roundSeconds)} s; ${n(x?.folded)} folded)`,
      edgemq: `p50 ${n(l.p50)} / p99 ${n(l.p99)} / max ${n(l.max)} ms`,
      ceiling: "",
      ratio: "",
      cpu: "",
      target: "",
      status: "",
    };
  };
  return [row(line.one), row(line.many), ...(line.spread ? [row(line.spread)] : [])];
}

function pushRows(line: Json): Row[] {
  const l = line.lateness?.latenessMs ?? {};
  return [
    {
      what: `push delivery to a loopback endpoint, backlog of ${n(line.many?.messages)} (1 queue: ${n(line.one?.msgPerSec)} msg/s; ${n(line.many?.queues)} queues, ${n(line.fetchesPerShard)} fetches each)`,
      edgemq: `${n(line.many?.msgPerSec)} msg/s`,
      ceiling: `${n(line.reference?.msgPerSec)} msg/s (node POSTs, ${n(line.reference?.concurrency)} at once)`,
      ratio: n(line.ratio),
      cpu: "",
      target: "",
      status: "",
    },
    {
      what: `push lateness, arrival − storedAt (${n(line.lateness?.ratePerSec)} msg/s, ${n(line.lateness?.queues)} queues)`,
      edgemq: `p50 ${n(l.p50)} / p99 ${n(l.p99)} / max ${n(l.max)} ms`,
      ceiling: "",
      ratio: "",
      cpu: "",
      target: "",
      status: "",
    },
  ];
}

function durabilityRows(line: Json): Row[] {
  return [
    {
      what: "durability: fsync before every acknowledged send (strace)",
      edgemq: `${n(line.fsyncBeforeAnswer)}/${n(line.acknowledged)} sends; mean fsync ${n(line.meanFsyncMs)} ms`,
      ceiling: "",
      ratio: "",
      cpu: "",
      target: "every send",
      status: met(line.skipped ? undefined : line.violations === 0 && line.acknowledged > 0),
    },
  ];
}

/** A peer's figure for a row, or why there is none. */
function peerCell(x: Json | undefined, show: (x: Json) => string): string {
  if (!x) return "–";
  if (x.missing) return String(x.missing).startsWith("failed") ? "failed (see JSON)" : "not run";
  return show(x);
}

/** The status of one of bench/peers.ts's targets (undefined when a figure is missing). */
function targetStatus(t: Json | undefined): string {
  return met(typeof t?.met === "boolean" ? t.met : undefined);
}

function peersRows(line: Json): { rows: Row[]; notes: string[] } {
  const t = line.targets ?? {};
  const rate = (x: Json) => `${n(x.msgPerSec)} msg/s`;
  const cpu = (shape: Json, e: Json | undefined) =>
    [e, shape.nats, shape.rabbitmq]
      .map((x) => (x && !x.missing ? n(x.serverCpuUsPerMsg) : "–"))
      .join(" / ");
  const peers = (shape: Json, show: (x: Json) => string) =>
    `NATS ${peerCell(shape.nats, show)} · RabbitMQ ${peerCell(shape.rabbitmq, show)}`;
  const ratios = (r: Json | undefined) =>
    [
      typeof r?.vsNats === "number" ? `${n(r.vsNats)} × NATS` : "",
      typeof r?.vsRabbitmq === "number" ? `${n(r.vsRabbitmq)} × RabbitMQ` : "",
    ]
      .filter(Boolean)
      .join(" · ");
  const rows: Row[] = [];
  const o = line.outstanding ?? {};
  rows.push({
    what: "vs peers: publish 256 B, 1,000 send() outstanding",
    edgemq: peerCell(o.edgemq, rate),
    ceiling: peers(o, rate),
    ratio: ratios(o.ratios),
    cpu: cpu(o, o.edgemq),
    target: "≥ 1.5 × NATS",
    status: targetStatus(t.outstandingVsNats),
  });
  const p = line.producers ?? {};
  rows.push({
    what: "vs peers: 64 producers, each awaiting its send()",
    edgemq: peerCell(p.edgemq, rate),
    ceiling: peers(p, rate),
    ratio: ratios(p.ratios),
    cpu: cpu(p, p.edgemq),
    target: "≥ NATS",
    status: targetStatus(t.producersVsNats),
  });
  const c = line.consume ?? {};
  const cr = c.ratios ?? {};
  rows.push({
    what: "vs peers: consume, ack of each message (PushConsumer)",
    edgemq: peerCell(c.edgemqPush, rate),
    ceiling: peers(c, rate),
    ratio: ratios({ vsNats: cr.pushVsNats, vsRabbitmq: cr.pushVsRabbitmq }),
    cpu: cpu(c, c.edgemqPush),
    target: "≥ NATS",
    status: targetStatus(t.pushConsumeVsNats),
  });
  rows.push({
    what: "vs peers: consume, ack of each message (SimpleConsumer, ackMany per receive)",
    edgemq: peerCell(c.edgemqSimple, rate),
    ceiling: peers(c, rate),
    ratio: ratios({ vsNats: cr.simpleVsNats }),
    cpu: cpu(c, c.edgemqSimple),
    target: "≥ NATS",
    status: targetStatus(t.simpleConsumeVsNats),
  });
  const lat = (x: Json) => `p50 ${n(x.p50Ms)} / p99 ${n(x.p99Ms)} ms`;
  for (const shape of (line.latency ?? []) as Json[]) {
    const r = Number(shape.ratePerSec);
    const natsP99 = shape.nats && !shape.nats.missing ? shape.nats.p99Ms : undefined;
    const e = shape.edgemq && !shape.edgemq.missing ? shape.edgemq : undefined;
    let target = "";
    let status = "";
    if (r === 1000) {
      target = "p50 ≤ 3 ms, p99 ≤ 10 ms, p99 ≤ 2 × NATS";
      const all = [t.e2e1000P50, t.e2e1000P99, t.e2e1000P99VsNats];
      status = all.some((x) => x?.met === false)
        ? met(false)
        : all.every((x) => x?.met === true)
          ? met(true)
          : "";
    } else if (r === 100) {
      target = "p50 ≤ 5 ms, server CPU ≤ 2,000 µs/msg";
      const all = [t.e2e100P50, t.e2e100Cpu];
      status = all.some((x) => x?.met === false)
        ? met(false)
        : all.every((x) => x?.met === true)
          ? met(true)
          : "";
    }
    rows.push({
      what: `vs peers: end-to-end latency at ${n(r)} msg/s (PushConsumer)`,
      edgemq: peerCell(shape.edgemq, lat),
      ceiling: peers(shape, lat),
      ratio: e && typeof natsP99 === "number" ? `p99 ${n(e.p99Ms / natsP99)} × NATS` : "",
      cpu: cpu(shape, shape.edgemq),
      target,
      status,
    });
  }
  const idle = line.idle ?? {};
  rows.push({
    what: `idle PushConsumer subscribed, ${n(idle.seconds)} s (edgemq server CPU)`,
    edgemq: idle.error
      ? `failed: ${idle.error}`
      : `${n(idle.serverCpuMs)} ms, ${n(idle.serverWakeups)} wake-ups (consumer: ${n(idle.consumerCpuMsPerMin)} ms/min)`,
    ceiling: idle.error
      ? ""
      : `no consumer: ${n(idle.baselineCpuMs)} ms, ${n(idle.baselineWakeups)} wake-ups in ${n(idle.baselineSeconds)} s`,
    ratio: "",
    cpu: "",
    target: "no server CPU (≤ 5 ms/min over no consumer)",
    status: targetStatus(t.idleConsumerCpu),
  });
  const notes: string[] = [];
  const info = (line.peers ?? {}) as Record<string, Json>;
  for (const [name, label] of [
    ["nats", "NATS JetStream"],
    ["rabbitmq", "RabbitMQ"],
  ] as const) {
    const x = info[name];
    if (x?.available) notes.push(`- peers: ${label} ${x.version}: ${x.fsync}`);
    else
      notes.push(
        `- peers: ${label} not measured: ${String(x?.reason ?? "not run").split("\n")[0]}`,
      );
  }
  if (info.edgemq) notes.push(`- peers: edgemq (${info.edgemq.sdk}): ${info.edgemq.fsync}`);
  notes.push("- peers: server CPU µs/msg is edgemq / NATS / RabbitMQ, from /proc, same windows");
  return { rows, notes };
}

/** The table for a run's JSON lines. */
export function summarize(lines: Json[]): string {
  const rows: Row[] = [];
  const notes: string[] = [];
  for (const line of lines) {
    if (line.error || line.skipped) {
      notes.push(`- ${line.bench}: ${line.error ?? line.skipped}`);
      continue;
    }
    switch (line.bench) {
      case "publish":
        rows.push(...publishRows(line));
        break;
      case "consume":
        rows.push(...consumeRows(line));
        break;
      case "latency":
        rows.push(...latencyRows(line));
        break;
      case "backlog":
        rows.push(...backlogRows(line));
        break;
      case "scheduled":
        rows.push(...scheduledRows(line));
        break;
      case "durability":
        rows.push(...durabilityRows(line));
        break;
      case "cron":
        rows.push(...cronRows(line));
        break;
      case "push":
        rows.push(...pushRows(line));
        break;
      case "peers": {
        const p = peersRows(line);
        rows.push(...p.rows);
        notes.push(...p.notes);
        break;
      }
      default:
        notes.push(`- ${line.bench}: see its JSON line`);
    }
  }
  const head =
    "| benchmark | edgemq | reference (same run): ceiling or peers | ratio | server CPU µs/msg (edgemq / reference) | target | |\n" +
    "|---|---|---|---|---|---|---|";
  const body = rows.map(
    (r) =>
      `| ${r.what} | ${r.edgemq} | ${r.ceiling} | ${r.ratio} | ${r.cpu} | ${r.target} | ${r.status} |`,
  );
  return [head, ...body, ...(notes.length ? ["", ...notes] : [])].join("\n");
}
