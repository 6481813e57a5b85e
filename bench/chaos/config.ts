/**
 * The chaos run's settings (environment and `--short`), its fixed names and
 * sizes, and its seeded random generators.
 */

/** How long, how often and how hard a run shakes the server. */
export interface ChaosConfig {
  short: boolean;
  seconds: number;
  kills: number;
  seed: number;
  pauseMs: number;
  /** Run the full-disk phase (needs `mount -t tmpfs`). */
  disk: boolean;
}

/**
 * CHAOS_SECONDS (default 60), CHAOS_KILLS (5), CHAOS_SEED (1),
 * CHAOS_PAUSE_MS (10000), CHAOS_DISK=0 to skip the full-disk phase;
 * `--short` or CHAOS_SHORT=1: the CI run (25 s, 3 kills, 4 s pause).
 */
export function configFrom(argv: string[], env: NodeJS.ProcessEnv): ChaosConfig {
  const short = argv.includes("--short") || env.CHAOS_SHORT === "1";
  return {
    short,
    seconds: Number(env.CHAOS_SECONDS ?? (short ? 25 : 60)),
    kills: Number(env.CHAOS_KILLS ?? (short ? 3 : 5)),
    seed: Number(env.CHAOS_SEED ?? 1),
    pauseMs: Number(env.CHAOS_PAUSE_MS ?? (short ? 4000 : 10_000)),
    disk: env.CHAOS_DISK !== "0",
  };
}

export const TOPIC = "chaos";
export const QUEUES = 4;
/** The orderly receive+ack group. */
export const ORDERLY = "orderly";
/** The pull+commit group. */
export const PULLERS = "pullers";
/** A non-orderly group, far behind, that holds receipts across faults. */
export const HOLDERS = "holders";
export const PRODUCER_GROUP = "chaos-pg";
/** The group consuming over sessions (a PushConsumer), and the producers sending over them. */
export const SESSION_GROUP = "sessions";
export const SESSION_PRODUCERS = 2;
export const PRODUCERS = 4;
export const KEYS_PER_PRODUCER = 2;
export const ORDERLY_CONSUMERS = 2;
/** Invisible time of the orderly consumers: short, so lapses after a fault come back soon. */
export const INVISIBLE_MS = 4000;
export const REQUEST_TIMEOUT_MS = 5000;
/** The drain after the faults ends when the groups stop making progress for this long… */
export const DRAIN_STALL_MS = 30_000;
/** …or, progressing still, after this long (a bound on the run). */
export const DRAIN_MAX_MS = 240_000;

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** mulberry32: a small seeded PRNG, so a failing run can be replayed with its seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The run's two generators: one for the fault schedule, one shared by the workload. */
export interface Randoms {
  /** The fault schedule's own: the same seed gives the same kinds and times of faults. */
  fault: () => number;
  /** The workload's (shared by concurrent workers, so its draws interleave with timing). */
  work: () => number;
  /** An integer in [lo, hi] from the workload's generator. */
  between(lo: number, hi: number): number;
}

export function randoms(seed: number): Randoms {
  const work = prng(seed + 0x9e3779b9);
  return {
    fault: prng(seed),
    work,
    between: (lo, hi) => lo + Math.floor(work() * (hi - lo + 1)),
  };
}
