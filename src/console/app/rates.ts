/**
 * Live figures derived in the browser between refreshes: messages per second
 * from the shards' monotonic sent/delivered counters, and a short history of
 * values for sparklines. Kept per page load (module state), keyed by what
 * they describe, so they survive navigating between pages.
 */

/** Messages per second in (sent) and out (delivered); null until two samples exist. */
export interface Rates {
  in: number | null;
  out: number | null;
}

interface Sample {
  t: number;
  sent: number;
  delivered: number;
  rates?: Rates;
}

const lastCounts = new Map<string, Sample>();

/**
 * Rates for `key` from its counters now and at the previous call. Calls under
 * 200 ms apart (an action's forced refresh right after the timer's) keep the
 * previous rates rather than dividing by almost nothing.
 */
export function rates(key: string, sent: number, delivered: number): Rates {
  const now = performance.now();
  const prev = lastCounts.get(key);
  const sample: Sample = { t: now, sent, delivered };
  lastCounts.set(key, sample);
  if (!prev || now - prev.t < 200) return prev?.rates ?? { in: null, out: null };
  const dt = (now - prev.t) / 1000;
  const r = {
    in: Math.max(0, (sent - prev.sent) / dt),
    out: Math.max(0, (delivered - prev.delivered) / dt),
  };
  sample.rates = r;
  return r;
}

/** The sum of `f` over `items`, counting missing or non-numeric values as 0. */
export function sum<T>(items: readonly T[], f: (x: T) => unknown): number {
  return items.reduce((s, x) => s + (Number(f(x)) || 0), 0);
}

const HISTORY_LENGTH = 90;
const histories = new Map<string, number[]>();

/** Appends `v` to the history of `key` (the last 90 values) and returns it. */
export function pushHistory(key: string, v: number): number[] {
  const arr = histories.get(key) ?? [];
  arr.push(v);
  if (arr.length > HISTORY_LENGTH) arr.shift();
  histories.set(key, arr);
  return arr;
}
