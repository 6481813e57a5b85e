/** Bounded load loops and latency statistics for the benchmarks. */

export interface LoopResult {
  /** Operations completed inside the measured window. */
  ops: number;
  /** Units (messages) those operations carried. */
  units: number;
  elapsedMs: number;
  errors: number;
  firstError?: string;
}

/**
 * Runs `concurrency` workers, each calling `op` back to back, for
 * `durationMs` (after `warmupMs` not counted) or until `maxOps` operations,
 * whichever comes first. `op` returns how many units (messages) it carried.
 */
export async function closedLoop(opts: {
  concurrency: number;
  durationMs: number;
  warmupMs?: number;
  maxOps?: number;
  op: (worker: number, seq: number) => Promise<number>;
  /** Called when the measured window opens (to start CPU meters). */
  onStart?: () => void;
  /** Called when it closes, before the workers drain. */
  onStop?: () => void;
  /** Ends the window early once true (checked before each operation): e.g. a backlog drained. */
  done?: () => boolean;
}): Promise<LoopResult> {
  const warmupMs = opts.warmupMs ?? 0;
  const maxOps = opts.maxOps ?? Number.POSITIVE_INFINITY;
  const t0 = performance.now();
  let measuring = warmupMs === 0;
  let start = t0;
  let end = 0;
  let ops = 0;
  let units = 0;
  let errors = 0;
  let firstError: string | undefined;
  let seq = 0;
  let stopped = false;
  if (measuring) opts.onStart?.();
  const stop = () => {
    if (stopped) return;
    stopped = true;
    end = performance.now();
    if (measuring) opts.onStop?.();
    else start = end; // never measured: an empty window
  };
  const worker = async (w: number) => {
    while (!stopped) {
      const now = performance.now();
      if (!measuring && now - t0 >= warmupMs) {
        measuring = true;
        start = now;
        opts.onStart?.();
      }
      if (measuring && (now - start >= opts.durationMs || ops >= maxOps || opts.done?.())) {
        stop();
        break;
      }
      const counted = measuring;
      try {
        const n = await opts.op(w, seq++);
        if (counted && !stopped) {
          ops++;
          units += n;
        }
      } catch (e) {
        errors++;
        firstError ??= e instanceof Error ? e.message : String(e);
        if (errors > 100) stop();
      }
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, (_, i) => worker(i)));
  stop();
  const result: LoopResult = { ops, units, elapsedMs: end - start, errors };
  if (firstError !== undefined) result.firstError = firstError;
  return result;
}

/** The q-quantile (0..1) of a sorted array, nearest rank. */
export function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i] as number;
}

/** Rounds for printing: 3 significant decimals for small numbers, integers for large. */
export function round(x: number): number {
  if (!Number.isFinite(x)) return x;
  if (Math.abs(x) >= 100) return Math.round(x);
  if (Math.abs(x) >= 1) return Math.round(x * 100) / 100;
  return Math.round(x * 1000) / 1000;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A body of exactly `bytes` ASCII characters. */
export function payload(bytes: number, seed = 0): string {
  const base = `m${seed.toString(36)}-`;
  return (base + "x".repeat(Math.max(0, bytes - base.length))).slice(0, bytes);
}
