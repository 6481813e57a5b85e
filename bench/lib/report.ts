/** What every benchmark prints: one JSON line, with the machine it ran on. */
import { cpus, loadavg, totalmem } from "node:os";
import { cpuMeter } from "./cpu.ts";
import { closedLoop, round } from "./load.ts";

/** The machine, so figures are never read without it. */
export function machine(): Record<string, unknown> {
  const c = cpus();
  return {
    cpus: c.length,
    cpuModel: c[0]?.model ?? "unknown",
    memGiB: round(totalmem() / 2 ** 30),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    loadavg1: round(loadavg()[0] ?? 0),
  };
}

/** Prints the one JSON line of a benchmark. */
export function emit(bench: string, fields: Record<string, unknown>): void {
  process.stdout.write(
    `${JSON.stringify({ bench, ...fields, machine: machine(), at: new Date().toISOString() })}\n`,
  );
}

/** Seconds each measured window lasts: $BENCH_SECONDS, default 3. */
export function windowMs(fallbackSeconds = 3): number {
  const s = Number(process.env.BENCH_SECONDS ?? fallbackSeconds);
  return Math.max(0.5, Number.isFinite(s) ? s : fallbackSeconds) * 1000;
}

export interface Throughput {
  msgPerSec: number;
  reqPerSec: number;
  /** Server CPU (user + system) per message, in microseconds. */
  cpuUsPerMsg: number;
  messages: number;
  errors: number;
  firstError?: string;
}

/**
 * Measures a closed loop against a server process: messages a second and
 * the server's CPU per message over the same window.
 */
export async function throughput(opts: {
  pid: number;
  concurrency: number;
  durationMs?: number;
  warmupMs?: number;
  maxOps?: number;
  done?: () => boolean;
  op: (worker: number, seq: number) => Promise<number>;
}): Promise<Throughput> {
  let meter: { stop(): number } | undefined;
  let cpu = Number.NaN;
  const r = await closedLoop({
    concurrency: opts.concurrency,
    durationMs: opts.durationMs ?? windowMs(),
    warmupMs: opts.warmupMs ?? 500,
    ...(opts.maxOps !== undefined && { maxOps: opts.maxOps }),
    ...(opts.done !== undefined && { done: opts.done }),
    op: opts.op,
    onStart: () => (meter = cpuMeter(opts.pid)),
    onStop: () => (cpu = meter ? meter.stop() : Number.NaN),
  });
  const secs = r.elapsedMs / 1000;
  const out: Throughput = {
    msgPerSec: round(r.units / secs),
    reqPerSec: round(r.ops / secs),
    cpuUsPerMsg: round((cpu * 1000) / r.units),
    messages: r.units,
    errors: r.errors,
  };
  if (r.firstError !== undefined) out.firstError = r.firstError;
  return out;
}

/** edgemq's figure over the ceiling's, rounded to 2 decimals. */
export function ratio(edgemq: number, ceiling: number): number {
  return Math.round((edgemq / ceiling) * 100) / 100;
}
