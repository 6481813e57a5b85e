/**
 * `npm run bench`: runs every benchmark in bench/ (each a separate process
 * that starts its own servers and prints ONE JSON line), prints those lines
 * as they come, then a Markdown table of the figures against the targets (to
 * stderr, and to `.edgemq-build/bench/latest.md` with the JSON lines in
 * `latest.jsonl`).
 *
 * The whole run stays under BENCH_BUDGET_S seconds (default 570, inside the
 * 10 minutes asked for on the 2-core machine): each benchmark has a timeout,
 * and the backlog benchmark, which runs last, fills its backlog only for the
 * time left (its JSON says how many messages it stored of the 5 000 000 it
 * aims for). `chaos.ts` is not a benchmark (`npm run chaos`).
 *
 *   npm run bench
 *   BENCH_ONLY=publish,latency npm run bench
 */
import { spawn } from "node:child_process";
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { BUILD_DIR, buildWorker } from "../scripts/local-server.ts";
import { CEILING_ENTRY } from "./lib/servers.ts";
import { summarize } from "./lib/summary.ts";

const HERE = import.meta.dirname;
const BUDGET_MS = Number(process.env.BENCH_BUDGET_S ?? 570) * 1000;
const started = Date.now();
const left = () => BUDGET_MS - (Date.now() - started);

/** Benchmarks in the order they run; others found in bench/ run after these, backlog last. */
const FIRST = [
  "publish",
  "consume",
  "latency",
  "peers",
  "scheduled",
  "cron",
  "push",
  "durability",
  "orderly-scan",
];
const NOT_BENCHMARKS = new Set(["run", "chaos"]);

interface Plan {
  name: string;
  /** Upper bound on its run time. */
  timeoutMs: number;
  env?: Record<string, string>;
}

/** Seconds kept for what runs after the backlog fill (restart, cold read, rounds of windows). */
const BACKLOG_AFTER_FILL_MS = 90_000;

function plan(name: string): Plan {
  switch (name) {
    case "publish":
      return { name, timeoutMs: 240_000 };
    case "consume":
      return { name, timeoutMs: 90_000 };
    case "latency":
      return { name, timeoutMs: 90_000 };
    case "cron":
      // Three rounds of CRON_SECONDS (10 s) each, plus server start and set-up.
      return { name, timeoutMs: 75_000, env: { CRON_SECONDS: process.env.CRON_SECONDS ?? "10" } };
    case "push":
      // Two backlogs of 3000 messages, the reference, a 5 s paced stream, plus server start.
      return { name, timeoutMs: 90_000 };
    case "peers":
      // NATS and RabbitMQ beside edgemq: ≈ 2 minutes (RabbitMQ alone boots
      // for ~10 s; the idle consumer's 80 s run alongside the other shapes).
      return { name, timeoutMs: 240_000 };
    case "orderly-scan":
      // The 90 000-message run alone fills for a long while on this machine.
      return {
        name,
        timeoutMs: 90_000,
        env: { ORDERLY_RUNS: process.env.ORDERLY_RUNS ?? "2000,20000" },
      };
    case "backlog": {
      const fill = Math.max(20_000, left() - BACKLOG_AFTER_FILL_MS - 15_000);
      return {
        name,
        timeoutMs: fill + BACKLOG_AFTER_FILL_MS,
        env: {
          BACKLOG_FILL_LIMIT_MS: process.env.BACKLOG_FILL_LIMIT_MS ?? String(fill),
          BACKLOG_MEASURE_MS: process.env.BACKLOG_MEASURE_MS ?? "3000",
          BACKLOG_ROUNDS: process.env.BACKLOG_ROUNDS ?? "3",
        },
      };
    }
    default:
      return { name, timeoutMs: 90_000 };
  }
}

function benchmarks(): string[] {
  const found = readdirSync(HERE)
    .filter((f) => f.endsWith(".ts"))
    .map((f) => f.slice(0, -3))
    .filter((n) => !NOT_BENCHMARKS.has(n));
  const only = process.env.BENCH_ONLY?.split(",").map((s) => s.trim());
  const ordered = [
    ...FIRST.filter((n) => found.includes(n)),
    ...found.filter((n) => !FIRST.includes(n) && n !== "backlog").sort(),
    ...(found.includes("backlog") ? ["backlog"] : []),
  ];
  return only ? ordered.filter((n) => only.includes(n)) : ordered;
}

/** Runs one benchmark; resolves with its JSON line (or an error line of our own). */
function runOne(p: Plan): Promise<Record<string, unknown>> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const child = spawn(process.execPath, [path.join(HERE, `${p.name}.ts`)], {
      stdio: ["ignore", "pipe", "inherit"],
      env: { ...process.env, ...p.env },
    });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += String(d)));
    const timer = setTimeout(() => {
      process.stderr.write(`bench: ${p.name} ran past ${p.timeoutMs / 1000} s; stopping it\n`);
      child.kill("SIGTERM");
      setTimeout(() => child.kill("SIGKILL"), 5000).unref();
    }, p.timeoutMs);
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      const line = out
        .split("\n")
        .reverse()
        .find((l) => l.trim().startsWith("{"));
      let parsed: Record<string, unknown> | undefined;
      try {
        parsed = line ? (JSON.parse(line) as Record<string, unknown>) : undefined;
      } catch {
        parsed = undefined;
      }
      const seconds = Math.round((Date.now() - t0) / 100) / 10;
      if (parsed)
        resolve({
          ...parsed,
          bench: parsed.bench ?? p.name,
          exitCode: code,
          seconds,
          ...(p.env && { env: p.env }),
        });
      else resolve({ bench: p.name, error: `no JSON line (exit ${code ?? signal})`, seconds });
    });
  });
}

// Build both workers once up front, so no benchmark's window includes bundling.
await buildWorker();
await buildWorker({ entry: CEILING_ENTRY });

const lines: Record<string, unknown>[] = [];
for (const name of benchmarks()) {
  const p = plan(name);
  if (left() < 20_000) {
    lines.push({ bench: name, skipped: "no time left in the budget" });
    continue;
  }
  p.timeoutMs = Math.min(p.timeoutMs, left());
  process.stderr.write(`bench: ${name} (at most ${Math.round(p.timeoutMs / 1000)} s)\n`);
  const line = await runOne(p);
  lines.push(line);
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

const table = summarize(lines);
process.stderr.write(`\n${table}\n\ntotal ${Math.round((Date.now() - started) / 1000)} s\n`);
const outDir = path.join(BUILD_DIR, "bench");
mkdirSync(outDir, { recursive: true });
writeFileSync(
  path.join(outDir, "latest.jsonl"),
  lines.map((l) => JSON.stringify(l)).join("\n") + "\n",
);
writeFileSync(path.join(outDir, "latest.md"), `${table}\n`);
