/**
 * What a shard's RPC methods answer: the value, or the contract error an
 * expected outcome is (TOPIC_NOT_FOUND, QUEUE_FULL, RECEIPT_EXPIRED…).
 *
 * Why not throw: an error thrown out of a Durable Object RPC is logged by the
 * runtime as an uncaught exception and keeps only its message across the
 * boundary; a refused send is not an exception. Errors that are not
 * EdgemqErrors (bugs, storage failures) are still thrown.
 */
import { EdgemqError, type ErrorBody } from "../protocol/errors.ts";

export type Outcome<T> = { ok: true; value: T } | { ok: false; error: ErrorBody["error"] };

/** Runs `fn`, turning an EdgemqError it throws into a failed outcome. */
export async function answer<T>(fn: () => T | Promise<T>): Promise<Outcome<T>> {
  try {
    return { ok: true, value: await fn() };
  } catch (e) {
    if (e instanceof EdgemqError) return { ok: false, error: e.toJSON().error };
    throw e;
  }
}

/** {@link answer} for a synchronous read. */
export function answerNow<T>(fn: () => T): Outcome<T> {
  try {
    return { ok: true, value: fn() };
  } catch (e) {
    if (e instanceof EdgemqError) return { ok: false, error: e.toJSON().error };
    throw e;
  }
}

/** The value of an outcome, or its error thrown as an EdgemqError (the gateway's side). */
export function unwrap<T>(outcome: Outcome<T>): T {
  if (outcome.ok) return outcome.value;
  throw EdgemqError.from({ error: outcome.error })!;
}
