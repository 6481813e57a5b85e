/** Transactional (half) messages: prepare, commit or rollback, and check-back timing. */
import { EdgemqError } from "../../protocol/errors.ts";
import { newTxSecret } from "../../protocol/ids.ts";
import type { TransactionInfo, TransactionStatus } from "../../protocol/types.ts";
import type { NormalizedMessage } from "../../protocol/validate.ts";
import { BATCH, checkLeaseUntil } from "../timers/timing.ts";
import type { ShardLog } from "./log.ts";
import type { Sender } from "./msg-ids.ts";
import { HalfState } from "./schema.ts";
import type { StoreState } from "./state.ts";

/** A half row as SQLite returns it; never leaves this module. */
interface HalfRow {
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
  /** The sender that prepared it (its msgId's space); NULL: the admin space. */
  sender: string | null;
  /** The random part of its txId; NULL for one prepared before txIds had one. */
  secret: string | null;
  [k: string]: SqlStorageValue;
}

/**
 * What a caller presents to end or see a transaction: the secret of the txId
 * it holds (null for an old `t1.` txId) and the sender it acts as (null: the
 * admin space, which may act on every sender's).
 */
export interface TxCaller {
  secret: string | null;
  sender: Sender;
}

/** Equal strings, compared without an early exit (a secret must not leak by timing). */
function sameSecret(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

/**
 * Whether `caller` may end or see half row `h`. The txId's secret must be
 * the row's: knowing (or guessing) the address is not enough, and an old-style
 * txId never names a row that has a secret. A scoped sender acts only on its
 * own transactions. A row from before secrets and senders has neither: its
 * `t1.` txId stays what it always was, the capability, so an open one stays
 * committable by whoever opened it after the schema step.
 */
function mayAct(h: HalfRow, caller: TxCaller): boolean {
  if (h.secret === null) return caller.secret === null;
  if (caller.secret === null || !sameSecret(h.secret, caller.secret)) return false;
  return caller.sender === null || h.sender === caller.sender;
}

/** The producer group's check-back settings, snapshotted into each half message at prepare. */
export interface TransactionCheckConfig {
  checkUrl: string | null;
  checkAfterMs: number;
  checkIntervalMs: number;
  maxChecks: number;
}

/** A check-back claimed by the alarm, with what the check needs to ask about. */
export interface DueCheck {
  id: number;
  /** Its txId's secret (null for one prepared before txIds had one). */
  secret: string | null;
  msgId: string;
  producerGroup: string;
  /** Checks made, this one included. */
  checks: number;
  message: NormalizedMessage;
  check: TransactionCheckConfig;
}

/** What a half row's `msg` column holds. */
interface HalfPayload {
  message: NormalizedMessage;
  check: TransactionCheckConfig;
}

const STATUS: Record<number, TransactionStatus> = {
  [HalfState.open]: "open",
  [HalfState.committed]: "committed",
  [HalfState.rolledBack]: "rolledBack",
};

function toInfo(h: HalfRow): TransactionInfo {
  return {
    id: h.id,
    msgId: h.msg_id,
    producerGroup: h.producer_group,
    status: STATUS[h.state] ?? "open",
    createdAt: h.created_at,
    checks: h.checks,
    nextCheckAt: h.check_at,
    secret: h.secret,
    offset: h.msg_offset,
    endedAt: h.ended_at,
    endReason: h.end_reason,
  };
}

/** A shard's half messages. */
export class Transactions {
  constructor(
    private readonly state: StoreState,
    private readonly log: ShardLog,
  ) {}

  /**
   * Stores `sender`'s half message and returns its id, the address a txId
   * carries, and the txId's secret (128 random bits, see protocol/ids.ts):
   * only a caller presenting it, as that sender or the admin, can end the
   * transaction or see it. Ids are never reused, even after ended
   * transactions are swept or the topic is deleted and made again (they start
   * from `now` × 1000), so a late commit of an old txId can never end a
   * newer transaction.
   */
  prepare(
    m: NormalizedMessage,
    producerGroup: string,
    check: TransactionCheckConfig,
    now: number,
    sender: Sender,
  ): { id: number; secret: string } {
    this.state.topicConfig();
    const checkAt = check.checkUrl ? now + check.checkAfterMs : null;
    const last =
      this.state.sql.exec<{ id: number | null }>("SELECT max(id) AS id FROM half").one().id ?? 0;
    const payload: HalfPayload = { message: m, check };
    const secret = newTxSecret();
    const id = this.state.sql
      .exec<{ id: number }>(
        `INSERT INTO half (id, msg_id, producer_group, msg, created_at, check_at, checks, state, sender, secret)
         VALUES (?, ?, ?, ?, ?, ?, 0, ${HalfState.open}, ?, ?) RETURNING id`,
        Math.max(last + 1, now * 1000),
        m.msgId,
        producerGroup,
        JSON.stringify(payload),
        now,
        checkAt,
        sender,
        secret,
      )
      .one().id;
    if (checkAt !== null) this.state.effects.timer(checkAt);
    return { id, secret };
  }

  private row(id: number): HalfRow | undefined {
    return this.state.sql.exec<HalfRow>("SELECT * FROM half WHERE id = ?", id).toArray()[0];
  }

  /**
   * One transaction, open or ended (ended ones are kept a day), or null: also
   * when `caller` may not see it, so a wrong secret or another sender's txId
   * tells nothing (not even that it exists).
   */
  transaction(id: number, caller: TxCaller): TransactionInfo | null {
    const h = this.row(id);
    return h && mayAct(h, caller) ? toInfo(h) : null;
  }

  /**
   * Ends a half message: commit appends it to the log once; rollback discards
   * it. Repeating the same end answers the same; the other end is
   * TRANSACTION_ENDED. With `caller` (a producer's request; the broker's own
   * check-back has none), one that may not act on it gets
   * TRANSACTION_NOT_FOUND, as for an id that never existed.
   */
  endTransaction(
    id: number,
    commit: boolean,
    now: number,
    reason: string,
    caller?: TxCaller,
  ): { status: "committed" | "rolledBack"; offset: number | null; msgId: string } {
    const h = this.row(id);
    if (!h || (caller !== undefined && !mayAct(h, caller)))
      throw new EdgemqError("TRANSACTION_NOT_FOUND", "no such transaction");
    const want = commit ? HalfState.committed : HalfState.rolledBack;
    const status = commit ? "committed" : "rolledBack";
    if (h.state === want) return { status, offset: h.msg_offset, msgId: h.msg_id };
    if (h.state !== HalfState.open) {
      throw new EdgemqError(
        "TRANSACTION_ENDED",
        `transaction already ${h.state === HalfState.committed ? "committed" : "rolled back"}`,
      );
    }
    let offset: number | null = null;
    if (commit) {
      const { message } = JSON.parse(h.msg) as HalfPayload;
      const [result] = this.log.append(
        [{ ...message, deliverAt: null, clientMsgId: false }],
        now,
        h.sender,
      );
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
    // Its check-back timer is gone.
    this.state.effects.rearm = true;
    return { status, offset, msgId: h.msg_id };
  }

  /** Open transactions, oldest first. */
  openTransactions(limit: number): TransactionInfo[] {
    return this.state.sql
      .exec<HalfRow>(
        `SELECT * FROM half WHERE state = ${HalfState.open} ORDER BY id LIMIT ?`,
        limit,
      )
      .toArray()
      .map(toInfo);
  }

  nextCheckAt(): number | null {
    return this.state.sql
      .exec<{
        t: number | null;
      }>(`SELECT min(check_at) AS t FROM half WHERE state = ${HalfState.open}`)
      .one().t;
  }

  /**
   * Claims due check-backs: each is held past its check's timeout before the
   * check runs, so a crash or a second alarm never checks it twice at once.
   */
  claimDueChecks(now: number): DueCheck[] {
    const rows = this.state.sql
      .exec<HalfRow>(
        `SELECT * FROM half WHERE state = ${HalfState.open} AND check_at <= ? ORDER BY check_at LIMIT ?`,
        now,
        BATCH.checks,
      )
      .toArray();
    if (rows.length === 0) return [];
    const lease = checkLeaseUntil(now);
    for (const r of rows) {
      this.state.sql.exec(
        "UPDATE half SET checks = checks + 1, check_at = ? WHERE id = ?",
        lease,
        r.id,
      );
    }
    this.state.effects.timer(lease);
    if (rows.length === BATCH.checks) this.state.effects.moreDue = true;
    return rows.map((r) => {
      const { message, check } = JSON.parse(r.msg) as HalfPayload;
      return {
        id: r.id,
        secret: r.secret,
        msgId: r.msg_id,
        producerGroup: r.producer_group,
        checks: r.checks + 1,
        message,
        check,
      };
    });
  }

  /** After an undecided check answered at `now`: the next one comes the producer group's interval later. */
  deferCheck(id: number, now: number): void {
    const h = this.row(id);
    if (!h || h.state !== HalfState.open) return;
    const { check } = JSON.parse(h.msg) as HalfPayload;
    const at = now + check.checkIntervalMs;
    this.state.sql.exec("UPDATE half SET check_at = ? WHERE id = ?", at, id);
    this.state.effects.timer(at);
  }
}
