/**
 * What the run saw: every message a client tried to send and which were
 * acknowledged, every delivery, the faults and their recovery times, and the
 * violations found along the way. The workload and the fault injectors
 * write it; the checker reads it at the end.
 */
import { QUEUES } from "./config.ts";

export interface Sent {
  msgId: string;
  kind: "keyed" | "scheduled" | "tx";
  key?: string;
  seq?: number;
  /** The acknowledged position (null for a scheduled message). */
  queue?: number;
  offset?: number | null;
}

export interface Delivery {
  msgId: string;
  queue: number;
  offset: number;
  reconsumeTimes: number;
  at: number;
}

export interface Fault {
  kind: "kill" | "pause";
  at: number;
  firstFailAt: number | null;
  recoveredAt: number | null;
  restartMs?: number;
}

/** Messages popped and never acked at a fault: each must be delivered again. */
export interface Held {
  msgIds: Set<string>;
  fault: Fault;
}

/** A half message, and the server run (1 = the first) it was prepared in. */
export interface Half {
  txId: string;
  msgId: string;
  preparedInRun: number;
}

/** The send result fields the history keeps. */
export interface SendAnswer {
  msgId: string;
  status: string;
  queue: number;
  offset: number | null;
}

const MAX_VIOLATIONS = 50;

export class History {
  /** Every msgId a client tried to send or prepare (acknowledged or not). */
  readonly attempted = new Map<string, Sent>();
  /** Acknowledged: a 2xx send (stored, scheduled or duplicate) or a committed transaction. */
  readonly acked = new Map<string, Sent>();
  readonly orderlyDeliveries: Delivery[] = [];
  readonly pulled = new Set<string>();
  /** msgIds the session PushConsumer group handled. */
  readonly sessionDelivered = new Set<string>();
  readonly violations: string[] = [];
  readonly faults: Fault[] = [];
  /** The fault whose outage sends are in now (null once the fault phase is over). */
  currentFault: Fault | null = null;
  readonly held: Held[] = [];
  /** msgIds the holders group received again (reconsumeTimes ≥ 1), by any of its receives. */
  readonly holderRedelivered = new Set<string>();
  /** Highest offset per queue whose commit was acknowledged. */
  readonly ackedCommit: number[] = Array.from({ length: QUEUES }, () => 0);
  /** Halves prepared right before a kill, committed once the server is back. */
  readonly pendingHalves: Half[] = [];
  /** Scheduled messages sent right before each kill. */
  readonly scheduledAtKill: string[] = [];
  /** Server runs started so far (1 = the first); a kill moves on to the next. */
  run = 1;
  /** Half messages prepared so far (their msgIds are `tx-0`, `tx-1`, …). */
  txCount = 0;
  halvesAcrossRestart = 0;
  offsetRegressions = 0;

  readonly stats = {
    sendRequests: 0,
    sendFailures: 0,
    retriedSends: 0,
    duplicateAnswers: 0,
    orderlyDelivered: 0,
    orderlyRedelivered: 0,
    notAckedOnPurpose: 0,
    ackExpired: 0,
    ackFailed: 0,
    pulledMessages: 0,
    commits: 0,
    txPrepared: 0,
    txCommitted: 0,
    scheduledAcked: 0,
    /** Over sessions (chaos/sessions.ts): sends tried (the SDK's own resends not counted), retried, handled. */
    sessionSends: 0,
    sessionSendRetries: 0,
    sessionDelivered: 0,
    sessionRedelivered: 0,
  };

  /** Records a broken guarantee (the first 50 are kept). */
  violate(what: string): void {
    if (this.violations.length < MAX_VIOLATIONS) this.violations.push(what);
    else if (this.violations.length === MAX_VIOLATIONS) this.violations.push("…more");
  }

  /** A send failed: the current fault's outage began now if it had not yet. */
  sendFailed(): void {
    this.stats.sendFailures++;
    const f = this.currentFault;
    if (f && f.firstFailAt === null) f.firstFailAt = Date.now();
  }

  /** A send succeeded: the current fault's outage, if one began, ended now. */
  sendSucceeded(): void {
    const f = this.currentFault;
    if (f && f.firstFailAt !== null && f.recoveredAt === null) f.recoveredAt = Date.now();
  }

  /** Records a message as acknowledged at the position its send result names. */
  recordAck(m: Sent, result: SendAnswer): void {
    if (result.msgId !== m.msgId) this.violate(`send result for ${m.msgId} names ${result.msgId}`);
    if (result.status === "duplicate") this.stats.duplicateAnswers++;
    else if (result.status !== "stored" && result.status !== "scheduled") {
      this.violate(`${m.msgId}: unexpected send status ${result.status}`);
      return;
    }
    if (result.status === "scheduled") this.stats.scheduledAcked++;
    this.acked.set(m.msgId, { ...m, queue: result.queue, offset: result.offset });
  }
}
