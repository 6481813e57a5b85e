/**
 * The Markdown table of a bench run (docs/performance.md, the README): each
 * edgemq figure, the matching ceiling figure from the same run, the ratio,
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
      what: `cron lateness, storedAt − fire time (${each} every second, ${n(line.seconds)} s; ${n(x?.folded)} folded)`,
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
      default:
        notes.push(`- ${line.bench}: see its JSON line`);
    }
  }
  const head =
    "| benchmark | edgemq | ceiling (same run) | ratio | server CPU µs/msg (edgemq / ceiling) | target | |\n" +
    "|---|---|---|---|---|---|---|";
  const body = rows.map(
    (r) =>
      `| ${r.what} | ${r.edgemq} | ${r.ceiling} | ${r.ratio} | ${r.cpu} | ${r.target} | ${r.status} |`,
  );
  return [head, ...body, ...(notes.length ? ["", ...notes] : [])].join("\n");
}
