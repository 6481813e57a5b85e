/** Transactional (half) messages: prepare, commit or rollback, and check-back timing. */
import { EdgemqError } from "../../protocol/errors.ts";
import type { NormalizedMessage } from "../../protocol/validate.ts";
import { BATCH, checkLeaseUntil } from "../timing.ts";
import type { ShardLog } from "./log.ts";
import type { StoreState } from "./state.ts";

export interface HalfRow {
  id: number;
  msg_id: string;
  producer_group: string;
  msg: string;
  created_at: number;
  check_at: number | null;
  checks: number;
  state: number;
  msg_offset: number | null;
  ended_at: number | null;
  end_reason: string | null;
  [k: string]: SqlStorageValue;
}

export const HALF_OPEN = 0;
export const HALF_COMMITTED = 1;
export const HALF_ROLLED_BACK = 2;

export interface TransactionCheckConfig {
  checkUrl: string | null;
  checkAfterMs: number;
  checkIntervalMs: number;
  maxChecks: number;
}

/** A shard's half messages. */
export class Transactions {
  constructor(
    private readonly state: StoreState,
    private readonly log: ShardLog,
  ) {}

  /**
   * Stores a half message and returns its id, the address a txId carries.
   * Ids are never reused, even after ended transactions are swept or the
   * topic is deleted and made again (they start from `now` × 1000), so a
   * late commit of an old txId can never end a newer transaction.
   */
  prepare(
    m: NormalizedMessage,
    producerGroup: string,
    check: TransactionCheckConfig,
    now: number,
  ): number {
    this.state.topicConfig();
    const checkAt = check.checkUrl ? now + check.checkAfterMs : null;
    const last =
      this.state.sql.exec<{ id: number | null }>("SELECT max(id) AS id FROM half").one().id ?? 0;
    return this.state.sql
      .exec<{ id: number }>(
        `INSERT INTO half (id, msg_id, producer_group, msg, created_at, check_at, checks, state)
         VALUES (?, ?, ?, ?, ?, ?, 0, 0) RETURNING id`,
        Math.max(last + 1, now * 1000),
        m.msgId,
        producerGroup,
        JSON.stringify({ message: m, check }),
        now,
        checkAt,
      )
      .one().id;
  }

  half(id: number): HalfRow | undefined {
    return this.state.sql.exec<HalfRow>("SELECT * FROM half WHERE id = ?", id).toArray()[0];
  }

  /** Ends a half message: commit appends it to the log once; rollback discards it. */
  endTransaction(
    id: number,
    commit: boolean,
    now: number,
    reason: string,
  ): { status: "committed" | "rolledBack"; offset: number | null } {
    const h = this.half(id);
    if (!h) throw new EdgemqError("TRANSACTION_NOT_FOUND", "no such transaction");
    const want = commit ? HALF_COMMITTED : HALF_ROLLED_BACK;
    const status = commit ? "committed" : "rolledBack";
    if (h.state === want) return { status, offset: h.msg_offset };
    if (h.state !== HALF_OPEN) {
      throw new EdgemqError(
        "TRANSACTION_ENDED",
        `transaction already ${h.state === HALF_COMMITTED ? "committed" : "rolled back"}`,
      );
    }
    let offset: number | null = null;
    if (commit) {
      const { message } = JSON.parse(h.msg) as { message: NormalizedMessage };
      const [result] = this.log.append([{ ...message, deliverAt: null, clientMsgId: false }], now);
      offset = result?.offset ?? null;
    }
    this.state.sql.exec(
      "UPDATE half SET state = ?, msg_offset = ?, ended_at = ?, end_reason = ?, check_at = NULL WHERE id = ?",
      want,
      offset,
      now,
      reason,
      id,
    );
    return { status, offset };
  }

  openHalves(limit: number): HalfRow[] {
    return this.state.sql
      .exec<HalfRow>("SELECT * FROM half WHERE state = 0 ORDER BY id LIMIT ?", limit)
      .toArray();
  }

  nextCheckAt(): number | null {
    return this.state.sql
      .exec<{ t: number | null }>("SELECT min(check_at) AS t FROM half WHERE state = 0")
      .one().t;
  }

  /**
   * Claims due check-backs: each is held past its check's timeout before the
   * check runs, so a crash or a second alarm never checks it twice at once.
   */
  claimDueChecks(now: number): HalfRow[] {
    const rows = this.state.sql
      .exec<HalfRow>(
        "SELECT * FROM half WHERE state = 0 AND check_at <= ? ORDER BY check_at LIMIT ?",
        now,
        BATCH.checks,
      )
      .toArray();
    for (const r of rows) {
      this.state.sql.exec(
        "UPDATE half SET checks = checks + 1, check_at = ? WHERE id = ?",
        checkLeaseUntil(now),
        r.id,
      );
      r.checks += 1;
    }
    return rows;
  }

  /** After an undecided check answered at `now`: the next one comes the producer group's interval later. */
  deferCheck(id: number, now: number): void {
    const h = this.half(id);
    if (!h || h.state !== HALF_OPEN) return;
    const { check } = JSON.parse(h.msg) as { check: TransactionCheckConfig };
    this.state.sql.exec(
      "UPDATE half SET check_at = ? WHERE id = ?",
      now + check.checkIntervalMs,
      id,
    );
  }
}
