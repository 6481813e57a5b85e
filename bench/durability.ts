/**
 * Proves that an acknowledged send is on disk before it is acknowledged:
 * runs the local server (workerd, SQLite Durable Objects on local disk),
 * attaches strace to it, makes sequential single-message sends, and checks in
 * the system-call trace that for every 200 answer an fsync/fdatasync of a
 * SQLite file under the data directory completed before the first byte of
 * that answer was written to the client's socket. The same then over a
 * streaming session (docs/protocol.md): sequential send frames of one
 * message each, every `sent` frame checked the same way.
 *
 *   node bench/durability.ts            (needs strace: apt-get install -y strace)
 *   DURABILITY_SENDS=50 node bench/durability.ts
 *
 * Prints one JSON line; exits non-zero when an acknowledged send had no
 * fsync before its answer. Exits 0 with `"skipped"` when strace is missing or
 * may not attach (ptrace refused).
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { startLocalServer } from "../scripts/local-server.ts";

const SENDS = Number(process.env.DURABILITY_SENDS ?? 40);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One traced system call, completed. */
interface Call {
  /** Seconds since midnight when the call started. */
  start: number;
  /** Seconds since midnight when it returned (start + its duration). */
  end: number;
  name: string;
  /** The fd's path or socket as strace -y prints it. */
  target: string;
  /** The raw argument text (escaped strings, up to -s bytes each). */
  args: string;
}

function seconds(hms: string): number {
  const [h, m, s] = hms.split(":");
  return Number(h) * 3600 + Number(m) * 60 + Number(s);
}

/**
 * Parses `strace -f -tt -T -y` output. Calls interrupted by another thread's
 * line are printed as `<unfinished ...>` then `<... name resumed>`; they are
 * joined, so every call has its start and end time.
 */
export function parseTrace(text: string): Call[] {
  const calls: Call[] = [];
  const open = new Map<string, { start: number; head: string }>();
  const lineRe = /^(\d+)\s+(\d\d:\d\d:\d\d\.\d+)\s+(.*)$/;
  for (const line of text.split("\n")) {
    const m = lineRe.exec(line);
    if (!m) continue;
    const [, tid, time, rest] = m as unknown as [string, string, string, string];
    const t = seconds(time);
    let full: string;
    let start: number;
    if (rest.endsWith("<unfinished ...>")) {
      open.set(tid, { start: t, head: rest.slice(0, -"<unfinished ...>".length) });
      continue;
    }
    const resumed = /^<\.\.\. \w+ resumed>(.*)$/.exec(rest);
    if (resumed) {
      const o = open.get(tid);
      if (!o) continue;
      open.delete(tid);
      full = o.head + (resumed[1] ?? "");
      start = o.start;
    } else {
      full = rest;
      start = t;
    }
    const call = /^(\w+)\((\d+)<([^>]*)>(.*)\)\s+=\s+(-?\d+).*<([\d.]+)>$/.exec(full);
    if (!call) continue;
    const [, name, , target, args, , dur] = call as unknown as string[];
    calls.push({ start, end: start + Number(dur), name: name!, target: target!, args: args! });
  }
  return calls.sort((a, b) => a.start - b.start);
}

async function main(): Promise<void> {
  if (spawnSync("strace", ["-V"]).status !== 0) {
    console.log(
      JSON.stringify({
        bench: "durability",
        skipped: "strace not installed (apt-get install -y strace)",
      }),
    );
    return;
  }
  const dataDir = mkdtempSync(path.join(tmpdir(), "edgemq-durability-"));
  const traceFile = path.join(dataDir, "..", `${path.basename(dataDir)}.trace`);
  const server = await startLocalServer({ port: 0, dataDir, quiet: true });
  const url = server.url;
  const post = (p: string, body: unknown, method = "POST") =>
    fetch(url + p, {
      method,
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
  let strace: ReturnType<typeof spawn> | undefined;
  try {
    if ((await post("/v1/topics/durability", { queues: 1 }, "PUT")).status !== 200)
      throw new Error("create topic");
    // Warm up: the shard object exists and its schema is created before tracing.
    for (let i = 0; i < 3; i++)
      await post("/v1/topics/durability/messages", { messages: [{ body: `warm-${i}` }] });

    strace = spawn(
      "strace",
      [
        "-f",
        "-tt",
        "-T",
        "-y",
        "-s",
        "200",
        "-o",
        traceFile,
        "-e",
        "trace=fdatasync,fsync,write,writev,sendto,sendmsg,pwrite64",
        "-p",
        String(server.pid),
      ],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    let straceErr = "";
    strace.stderr?.on("data", (d: Buffer) => (straceErr += String(d)));
    // strace says "Process N attached" on stderr once it holds every thread.
    for (let i = 0; i < 100 && !/attached/.test(straceErr); i++) {
      if (strace.exitCode !== null) break;
      await sleep(50);
    }
    if (!/attached/.test(straceErr)) {
      console.log(
        JSON.stringify({
          bench: "durability",
          skipped: `strace could not attach: ${straceErr.trim().slice(0, 200)}`,
        }),
      );
      return;
    }

    const acked: string[] = [];
    const t0 = performance.now();
    for (let i = 0; i < SENDS; i++) {
      const msgId = `dur-${String(i).padStart(5, "0")}`;
      const r = await post("/v1/topics/durability/messages", {
        messages: [{ body: `b${i}`, msgId }],
      });
      const body = (await r.json()) as { results?: { status: string }[] };
      if (r.status === 200 && body.results?.[0]?.status === "stored") acked.push(msgId);
    }
    const sendMs = performance.now() - t0;

    // The same over a session: one send frame at a time, each awaited.
    const sessionAcked: string[] = [];
    const ws = new WebSocket(
      `${server.url.replace(/^http/, "ws")}/v1/topics/durability/queues/0/session`,
      ["edgemq.v1"],
    );
    const frames: { type: string; results?: { msgId: string; status: string }[] }[] = [];
    let wake: (() => void) | null = null;
    ws.addEventListener("message", (e) => {
      frames.push(JSON.parse(String(e.data)));
      wake?.();
    });
    const next = async (type: string) => {
      for (let i = 0; i < 200; i++) {
        const at = frames.findIndex((f) => f.type === type);
        if (at >= 0) return frames.splice(at, 1)[0]!;
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, 50);
        });
      }
      throw new Error(`no ${type} frame`);
    };
    await next("ready");
    for (let i = 0; i < SENDS; i++) {
      const msgId = `ses-${String(i).padStart(5, "0")}`;
      ws.send(JSON.stringify({ type: "send", id: i, messages: [{ body: `s${i}`, msgId }] }));
      const sent = await next("sent");
      if (sent.results?.[0]?.status === "stored") sessionAcked.push(msgId);
    }
    ws.close();
    await sleep(300);
    strace.kill("SIGINT");
    await new Promise((r) => strace!.once("exit", r));

    const calls = parseTrace(readFileSync(traceFile, "utf8"));
    const dataRoot = path.resolve(dataDir);
    const isSync = (c: Call) =>
      (c.name === "fsync" || c.name === "fdatasync") && c.target.startsWith(dataRoot);
    const syncs = calls.filter(isSync);
    /** For sequential sends: an fsync completed between the previous answer and each answer. */
    const check = (ids: string[], marker: string) => {
      let ordered = 0;
      const violations: string[] = [];
      let prevAnswerAt = -Infinity;
      for (const msgId of ids) {
        // The answer to this send: the write to a TCP socket carrying the msgId.
        const answer = calls.find(
          (c) =>
            /^(write|writev|sendto|sendmsg)$/.test(c.name) &&
            /^(socket|TCP)/.test(c.target) &&
            c.args.includes(marker) &&
            c.args.includes(msgId),
        );
        if (!answer) {
          violations.push(`${msgId}: answer not found in the trace`);
          continue;
        }
        // An fsync of the data directory's SQLite files that finished after the
        // previous answer (sends are sequential) and before this answer started.
        const sync = syncs.find((s) => s.start > prevAnswerAt && s.end <= answer.start);
        if (sync) ordered++;
        else
          violations.push(`${msgId}: no fsync completed between the previous answer and this one`);
        prevAnswerAt = answer.start;
      }
      return { ordered, violations };
    };
    const { ordered, violations } = check(acked, "HTTP/1.1 200");
    // Over the session the frames are compressed (permessage-deflate), so they
    // are told apart by order on the session's socket: after the 101, the
    // `ready` frame, then one `sent` per send (sends are sequential, and
    // nothing else is sent on it but the close).
    const isWrite = (c: Call) => /^(write|writev|sendto|sendmsg)$/.test(c.name);
    const upgrade = calls.find((c) => isWrite(c) && c.args.includes("101 Switching Protocols"));
    const dataFrames = upgrade
      ? calls.filter(
          (c) =>
            isWrite(c) &&
            c.target === upgrade.target &&
            c.start > upgrade.start &&
            // FIN + text opcode, compressed (0xC1) or not (0x81).
            /^, "\\(301|201)/.test(c.args),
        )
      : [];
    const overSession = { ordered: 0, violations: [] as string[] };
    if (dataFrames.length !== sessionAcked.length + 1) {
      overSession.violations.push(
        `${dataFrames.length} data frames on the session socket for ${sessionAcked.length} sends and a ready`,
      );
    }
    for (let k = 1; k < dataFrames.length; k++) {
      const prev = dataFrames[k - 1]!.start;
      const at = dataFrames[k]!.start;
      if (syncs.some((s) => s.start > prev && s.end <= at)) overSession.ordered++;
      else
        overSession.violations.push(`sent frame ${k}: no fsync completed since the previous frame`);
    }
    const files = [...new Set(syncs.map((s) => path.relative(dataRoot, s.target)))];
    const out = {
      bench: "durability",
      sends: SENDS,
      acknowledged: acked.length,
      fsyncs: syncs.length,
      fsyncsPerAck: acked.length ? Number((syncs.length / acked.length).toFixed(2)) : 0,
      fsyncBeforeAnswer: ordered,
      violations: violations.length,
      syncCalls: [...new Set(syncs.map((s) => s.name))],
      syncedFiles: files,
      meanFsyncMs: syncs.length
        ? Number(
            ((syncs.reduce((a, s) => a + (s.end - s.start), 0) / syncs.length) * 1000).toFixed(2),
          )
        : null,
      sendMsMeanUnderStrace: Number((sendMs / SENDS).toFixed(2)),
      ...(violations.length > 0 && { firstViolations: violations.slice(0, 5) }),
      session: {
        acknowledged: sessionAcked.length,
        fsyncBeforeAnswer: overSession.ordered,
        violations: overSession.violations.length,
        ...(overSession.violations.length > 0 && {
          firstViolations: overSession.violations.slice(0, 5),
        }),
      },
    };
    console.log(JSON.stringify(out));
    if (
      acked.length !== SENDS ||
      violations.length > 0 ||
      syncs.length < acked.length ||
      sessionAcked.length !== SENDS ||
      overSession.violations.length > 0
    )
      process.exitCode = 1;
  } finally {
    if (strace && strace.exitCode === null) strace.kill("SIGKILL");
    await server.stop("SIGKILL");
    rmSync(dataDir, { recursive: true, force: true });
    if (!process.env.DURABILITY_KEEP_TRACE) rmSync(traceFile, { force: true });
  }
}

if (import.meta.main) await main();
