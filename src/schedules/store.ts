/**
 * The scheduler's storage over its Durable Object's SQLite handle: schedules,
 * their pending fire and due time, and what their fires did. No Workers APIs
 * beyond `SqlStorage`; timing decisions come from timing.ts.
 */
import type { ScheduleConfig, ScheduleInfo } from "../protocol/schedule.ts";
import type { SendResult } from "../protocol/types.ts";

interface Row {
  name: string;
  config: string;
  next_fire_at: number | null;
  due_at: number | null;
  last_fire_at: number | null;
  last_msg_id: string | null;
  last_status: string | null;
  fires: number;
  missed_fires: number;
  errors: number;
  failures: number;
  last_error: string | null;
  last_error_at: number | null;
  [key: string]: SqlStorageValue;
}

/** A stored schedule: its config and the state the alarm works from. */
export interface StoredSchedule {
  config: ScheduleConfig;
  nextFireAt: number | null;
  dueAt: number | null;
  failures: number;
}

/** What one sent message records. */
export interface SentRecord {
  at: number;
  msgId: string;
  status: SendResult["status"];
  /** Fire times folded into this send. */
  missed: number;
}

function info(r: Row): ScheduleInfo {
  return {
    ...(JSON.parse(r.config) as ScheduleConfig),
    nextFireAt: r.next_fire_at,
    lastFireAt: r.last_fire_at,
    lastMsgId: r.last_msg_id,
    lastStatus: r.last_status as ScheduleInfo["lastStatus"],
    fires: r.fires,
    missedFires: r.missed_fires,
    errors: r.errors,
    lastError: r.last_error,
    lastErrorAt: r.last_error_at,
  };
}

export class ScheduleStore {
  constructor(private readonly sql: SqlStorage) {}

  private row(name: string): Row | undefined {
    return this.sql.exec<Row>("SELECT * FROM schedule WHERE name = ?", name).toArray()[0];
  }

  get(name: string): StoredSchedule | null {
    const r = this.row(name);
    if (!r) return null;
    return {
      config: JSON.parse(r.config) as ScheduleConfig,
      nextFireAt: r.next_fire_at,
      dueAt: r.due_at,
      failures: r.failures,
    };
  }

  info(name: string): ScheduleInfo | null {
    const r = this.row(name);
    return r ? info(r) : null;
  }

  /**
   * One page of schedules by name, after `after`: at most `limit`, and no more
   * than `maxBytes` of config (the first one always). `next` names the cursor
   * of the following page, null at the end.
   */
  list(
    after: string | null,
    limit: number,
    maxBytes: number,
  ): { schedules: ScheduleInfo[]; next: string | null } {
    const rows = this.sql
      .exec<Row>(
        "SELECT * FROM schedule WHERE name > ? ORDER BY name LIMIT ?",
        after ?? "",
        limit + 1,
      )
      .toArray();
    const out: ScheduleInfo[] = [];
    let bytes = 0;
    for (const r of rows.slice(0, limit)) {
      bytes += r.config.length;
      if (out.length > 0 && bytes > maxBytes) return { schedules: out, next: out.at(-1)!.schedule };
      out.push(info(r));
    }
    return { schedules: out, next: rows.length > limit ? out.at(-1)!.schedule : null };
  }

  /**
   * Creates or replaces a schedule's config with its first pending fire
   * (null: none). An update keeps the counters and the last fire and error;
   * the pending fire starts over, as does its failure count.
   */
  put(config: ScheduleConfig, nextFireAt: number | null): void {
    this.sql.exec(
      `INSERT INTO schedule (name, config, next_fire_at, due_at) VALUES (?1, ?2, ?3, ?3)
       ON CONFLICT (name) DO UPDATE SET config = ?2, next_fire_at = ?3, due_at = ?3, failures = 0`,
      config.schedule,
      JSON.stringify(config),
      nextFireAt,
    );
  }

  delete(name: string): boolean {
    return this.sql.exec("DELETE FROM schedule WHERE name = ?", name).rowsWritten > 0;
  }

  /** Names of schedules due at `now`, earliest first, at most `limit`. */
  due(now: number, limit: number): string[] {
    return this.sql
      .exec<{ name: string }>(
        "SELECT name FROM schedule WHERE due_at IS NOT NULL AND due_at <= ? ORDER BY due_at LIMIT ?",
        now,
        limit,
      )
      .toArray()
      .map((r) => r.name);
  }

  /** The earliest due time of any schedule, or null. */
  earliestDue(): number | null {
    return (
      this.sql
        .exec<{ at: number | null }>(
          "SELECT min(due_at) AS at FROM schedule WHERE due_at IS NOT NULL",
        )
        .one().at ?? null
    );
  }

  /** A message sent for a fire: the schedule goes on at `nextAt`. */
  recordFire(name: string, sent: SentRecord, nextAt: number | null): void {
    this.sql.exec(
      `UPDATE schedule SET next_fire_at = ?2, due_at = ?2, failures = 0,
         last_fire_at = ?3, last_msg_id = ?4, last_status = ?5,
         fires = fires + 1, missed_fires = missed_fires + ?6
       WHERE name = ?1`,
      name,
      nextAt,
      sent.at,
      sent.msgId,
      sent.status,
      sent.missed,
    );
  }

  /** A message sent by a run: the pending fire is untouched. */
  recordRun(name: string, sent: SentRecord): void {
    this.sql.exec(
      `UPDATE schedule SET last_fire_at = ?2, last_msg_id = ?3, last_status = ?4, fires = fires + 1
       WHERE name = ?1`,
      name,
      sent.at,
      sent.msgId,
      sent.status,
    );
  }

  /**
   * A fire or run that failed. With `retry`, the pending fire stays and is
   * looked at again then (a passing failure); with `nextAt`, the fire is given
   * up and the schedule goes on (the failure would repeat: no topic, a
   * message the topic refuses); with neither (a run), nothing moves.
   */
  recordError(
    name: string,
    error: string,
    now: number,
    outcome: { retry: number } | { nextAt: number | null; missed: number } | null,
  ): void {
    this.sql.exec(
      "UPDATE schedule SET errors = errors + 1, last_error = ?2, last_error_at = ?3 WHERE name = ?1",
      name,
      error,
      now,
    );
    if (outcome === null) return;
    if ("retry" in outcome) {
      this.sql.exec(
        "UPDATE schedule SET due_at = ?2, failures = failures + 1 WHERE name = ?1",
        name,
        outcome.retry,
      );
    } else {
      this.sql.exec(
        `UPDATE schedule SET next_fire_at = ?2, due_at = ?2, failures = 0,
           missed_fires = missed_fires + ?3
         WHERE name = ?1`,
        name,
        outcome.nextAt,
        outcome.missed,
      );
    }
  }
}
