/**
 * Exponential backoff with jitter, as a pure function: the caller passes the
 * attempt number and a random number, so the maths is testable without
 * timers or a seeded generator.
 */

/** How retries space themselves out. */
export interface BackoffOptions {
  /** Delay before the first retry, before jitter. Default 100 ms. */
  baseMs?: number;
  /** Ceiling of any delay. Default 10 000 ms. */
  maxMs?: number;
  /** Growth per attempt. Default 2. */
  factor?: number;
  /**
   * Fraction of the delay that is random, 0..1. Default 0.5: a delay lies in
   * [cap/2, cap]. Jitter spreads out clients that failed together (a broker
   * restart) so they do not all come back in the same millisecond; keeping
   * half of it fixed still guarantees the delay grows with each attempt.
   */
  jitter?: number;
}

export const DefaultBackoff: Required<BackoffOptions> = {
  baseMs: 100,
  maxMs: 10_000,
  factor: 2,
  jitter: 0.5,
};

/**
 * The delay before retry number `attempt` (0 for the first retry).
 * `random` is a number in [0, 1), e.g. `Math.random()`.
 *
 * `cap = min(maxMs, baseMs * factor^attempt)`, and the delay is
 * `cap * (1 - jitter + jitter * random)`.
 */
export function backoffDelay(
  attempt: number,
  random: number,
  options: BackoffOptions = {},
): number {
  const { baseMs, maxMs, factor, jitter } = { ...DefaultBackoff, ...options };
  const n = Math.max(0, Math.floor(attempt));
  // Computed in a way that cannot overflow to Infinity for large attempts.
  const growth = n > 64 ? Infinity : factor ** n;
  const cap = Math.min(maxMs, baseMs * growth);
  const r = Math.min(Math.max(random, 0), 1);
  const j = Math.min(Math.max(jitter, 0), 1);
  return Math.round(cap * (1 - j + j * r));
}
