/**
 * Signing secrets of the receivers the broker calls (producer groups' check
 * URLs, push endpoints): the lifecycle of api.md's "Outbound requests are
 * signed per receiver". One row per receiver (`owner`, e.g. `pg:orders`),
 * holding the current secret and, for 24 h after a rotation, the one before,
 * so a receiver can switch over without missing a request. Secrets leave this
 * table only when created or rotated (shown once to the admin) and, for
 * signing, to the broker's own code; no listing ever returns them.
 */
import { newSigningSecret } from "../protocol/signing.ts";

/** How long the secret replaced by a rotation keeps signing (api.md: 24 h). */
export const ROTATION_OVERLAP_MS = 24 * 3600_000;

/** The receiver of a producer group's check-backs, as a secrets owner. */
export const producerGroupOwner = (name: string): string => `pg:${name}`;

/** The endpoint of a push subscription (api.md, "Push subscriptions"), as a secrets owner. */
export const pushSubscriptionOwner = (name: string): string => `push:${name}`;

interface SecretRow {
  current: string;
  previous: string | null;
  previous_until: number | null;
  created_at: number;
  [k: string]: SqlStorageValue;
}

export class SigningSecrets {
  constructor(private readonly sql: SqlStorage) {}

  private row(owner: string): SecretRow | undefined {
    return this.sql
      .exec<SecretRow>(
        "SELECT current, previous, previous_until, created_at FROM signing_secret WHERE owner = ?",
        owner,
      )
      .toArray()[0];
  }

  /**
   * Makes the first secret of a receiver and returns it; null when it has one
   * already (it is not shown again).
   */
  ensure(owner: string, now: number): string | null {
    if (this.row(owner)) return null;
    const secret = newSigningSecret();
    this.sql.exec(
      "INSERT INTO signing_secret (owner, current, previous, previous_until, created_at) VALUES (?, ?, NULL, NULL, ?)",
      owner,
      secret,
      now,
    );
    return secret;
  }

  /**
   * Replaces the current secret with a new one and returns it. The replaced
   * one signs for {@link ROTATION_OVERLAP_MS} more; one replaced before that
   * (two rotations within a day) stops at once: a second rotation is what
   * someone does after the first new secret leaked.
   */
  rotate(owner: string, now: number): string {
    const old = this.row(owner);
    if (!old) return this.ensure(owner, now)!;
    const secret = newSigningSecret();
    this.sql.exec(
      "UPDATE signing_secret SET current = ?, previous = ?, previous_until = ?, created_at = ? WHERE owner = ?",
      secret,
      old.current,
      now + ROTATION_OVERLAP_MS,
      now,
      owner,
    );
    return secret;
  }

  /** The secrets that sign at `now`: the current one first, then the previous while it overlaps. */
  valid(owner: string, now: number): string[] {
    const r = this.row(owner);
    if (!r) return [];
    return r.previous !== null && r.previous_until !== null && r.previous_until > now
      ? [r.current, r.previous]
      : [r.current];
  }

  drop(owner: string): void {
    this.sql.exec("DELETE FROM signing_secret WHERE owner = ?", owner);
  }
}
