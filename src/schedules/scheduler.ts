import { DurableObject } from "cloudflare:workers";
import type { Env } from "../env.ts";
import { BrokerService, rpc } from "../gateway/service.ts";
import { storedCron } from "../protocol/cron.ts";
import { EdgemqError, type ErrorCode, badRequest } from "../protocol/errors.ts";
import {
  type ScheduleConfig,
  type ScheduleInfo,
  type ScheduleInput,
  type ScheduleRunResult,
  ScheduleLimits,
  fireMsgId,
  mergeSchedule,
  runMsgId,
} from "../protocol/schedule.ts";
import { newMsgId } from "../protocol/msg-id.ts";
import { checkScheduleMessage } from "../protocol/requests/schedules.ts";
import { parseSend } from "../protocol/requests/send.ts";
import type { SendResult } from "../protocol/types.ts";
import { migrate } from "../storage/migrations.ts";
import { batchesByTopic } from "./batches.ts";
import { SCHEDULER_MIGRATIONS } from "./schema.ts";
import { ScheduleStore } from "./store.ts";
import { dueFire, firstFireAt, retryAt } from "./timing.ts";

/**
 * Schedules fired per alarm run (then the alarm runs again at once), and how
 * many sends (each a batch of fires to one topic) are in flight at a time.
 */
const FIRES_PER_RUN = 256;
const FIRE_CONCURRENCY = 16;

/**
 * Failures of a fire that the same fire would meet again (no such topic, a
 * message the topic refuses): the fire is given up and the schedule goes on.
 * Every other failure (a queue or disk full, a shard unavailable, an
 * unexpected error) may pass, and the fire is retried with backoff.
 */
const GIVE_UP: ReadonlySet<ErrorCode> = new Set([
  "TOPIC_NOT_FOUND",
  "BAD_REQUEST",
  "INVALID_NAME",
  "MESSAGE_TOO_LARGE",
  "BATCH_TOO_LARGE",
  "FORBIDDEN",
]);

/** The single Scheduler object's name. */
export const SCHEDULER_NAME = "schedules";

/**
 * Recurring schedules (api.md, "Recurring schedules"): their configs and fire
 * state in one SQLite database, fired by the object's one alarm, set at the
 * earliest due schedule. Nothing is held in memory between fires: a restart
 * finds the alarm and the rows as they were.
 *
 * Where schedules live: in an object of their own rather than in the
 * TopicRegistry, so the registry (the config the data path reads) never waits
 * behind fires and its schema and alarm stay its own; one object for all
 * schedules (not one per schedule) keeps `GET /v1/schedules` one query and a
 * PUT one transaction, with no index object to keep in step. Each fire is a
 * send through the gateway's own path (BrokerService.send: validation,
 * routing, the shard's msgId dedup), batched per topic, so the object's own
 * work per fire is small (bench/cron.ts: 50 fires to one topic in the same
 * second are stored 6–11 ms after their time at the median). Should one
 * object ever be too few, schedules can be spread over several by name hash.
 *
 * A thin adapter: SQL in store.ts, timing in timing.ts, batching in
 * batches.ts, request checks in src/protocol/requests/schedules.ts and the
 * PUT merge in src/protocol/schedule.ts.
 */
export class Scheduler extends DurableObject<Env> {
  private readonly store: ScheduleStore;
  /** Operations in progress per schedule (a fire, a PUT, a DELETE, a run): one at a time each. */
  private readonly busy = new Map<string, Promise<unknown>>();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.store = new ScheduleStore(ctx.storage.sql);
    ctx.storage.transactionSync(() => migrate(ctx.storage.sql, SCHEDULER_MIGRATIONS, Date.now()));
    // The alarm is durable and set with every change; this only repairs a lost one.
    void ctx.blockConcurrencyWhile(() => this.rearm());
  }

  /** Runs `fn` once every earlier operation on schedule `name` has finished. */
  private serial<T>(name: string, fn: () => Promise<T>): Promise<T> {
    return this.serialAll([name], fn);
  }

  /** Runs `fn` once every earlier operation on each of `names` has finished, holding them all. */
  private serialAll<T>(names: readonly string[], fn: () => Promise<T>): Promise<T> {
    const before = Promise.all(names.map((n) => this.busy.get(n)));
    const run = before.then(fn);
    const settled = run.catch(() => {});
    for (const n of names) this.busy.set(n, settled);
    void settled.then(() => {
      for (const n of names) if (this.busy.get(n) === settled) this.busy.delete(n);
    });
    return run;
  }

  /** Runs `fn`, turning an EdgemqError into one that survives RPC. */
  private async call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      throw e instanceof EdgemqError ? e.toRpcError() : e;
    }
  }

  /**
   * Sets the one alarm at the earliest due schedule (or clears it). A due
   * time already past is set as it is: the runtime runs an overdue alarm at
   * once, and an alarm left where it was (after a restart) is not moved.
   */
  private async rearm(): Promise<void> {
    const at = this.store.earliestDue();
    const armed = await this.ctx.storage.getAlarm();
    if (at === armed) return;
    if (at === null) await this.ctx.storage.deleteAlarm();
    else await this.ctx.storage.setAlarm(at);
  }

  // ---- admin ---------------------------------------------------------------

  /**
   * Creates or updates a schedule (fields not given keep their value). The
   * topic must exist and take the message, checked here against the
   * registry; on any failure nothing is stored. The next fire is computed
   * from now: an update starts the pending fire over.
   */
  put(name: string, input: ScheduleInput): Promise<ScheduleInfo> {
    return this.call(() =>
      this.serial(name, async () => {
        const now = Date.now();
        const previous = this.store.get(name)?.config ?? null;
        const config = mergeSchedule(name, previous, input, now);
        const unchangedTarget =
          previous !== null && input.topic === undefined && input.message === undefined;
        // Pausing a schedule whose topic has gone is always allowed; anything else is checked.
        if (!(config.paused && unchangedTarget)) await this.checkTarget(config, now);
        const next = config.paused
          ? null
          : firstFireAt(storedCron(config.cron, config.timezone), now);
        this.store.put(config, next);
        await this.rearm();
        return this.store.info(name)!;
      }),
    );
  }

  /** The topic exists and takes the message (its maxMessageBytes); BAD_REQUEST naming the field. */
  private async checkTarget(config: ScheduleConfig, now: number): Promise<void> {
    const registry = new BrokerService(this.env).registry();
    const topic = await rpc(() => registry.getTopic(config.topic));
    if (!topic) throw badRequest(`topic ${config.topic} does not exist (create it first)`);
    checkScheduleMessage(config.message, topic.maxMessageBytes, now);
  }

  get(name: string): ScheduleInfo | null {
    return this.store.info(name);
  }

  list(after: string | null, limit: number): { schedules: ScheduleInfo[]; next: string | null } {
    return this.store.list(after, limit, ScheduleLimits.maxListBytes);
  }

  /**
   * Deletes a schedule. A fire in progress finishes first: once this answers,
   * the schedule sends nothing more.
   */
  delete(name: string): Promise<boolean> {
    return this.call(() =>
      this.serial(name, async () => {
        const existed = this.store.delete(name);
        await this.rearm();
        return existed;
      }),
    );
  }

  /** Sends the schedule's message now (msgId `{name}:run:{nowMs}`), whether paused or not. */
  run(name: string): Promise<ScheduleRunResult> {
    return this.call(() =>
      this.serial(name, async () => {
        const s = this.store.get(name);
        if (!s) throw new EdgemqError("NOT_FOUND", `schedule ${name} not found`);
        const now = Date.now();
        const msgId = runMsgId(name, now);
        try {
          const result = await this.send(s.config, msgId, now);
          this.store.recordRun(name, { at: now, msgId, status: result.status, missed: 0 });
          return { schedule: name, ...result };
        } catch (e) {
          this.store.recordError(name, describe(e), Date.now(), null);
          throw e;
        }
      }),
    );
  }

  // ---- fires ---------------------------------------------------------------

  /** One message through the gateway's send path (validation, routing, the shard's msgId dedup). */
  private async send(config: ScheduleConfig, msgId: string, bornAt: number): Promise<SendResult> {
    const [result] = await this.sendMany(config.topic, [{ config, msgId, bornAt }]);
    return result!;
  }

  /** Messages to one topic in one send (results in order); all refused if one is. */
  private async sendMany(
    topic: string,
    fires: readonly { config: ScheduleConfig; msgId: string; bornAt: number }[],
  ): Promise<SendResult[]> {
    // Parsed as the gateway parses a send's body, then sent as the gateway sends it.
    const request = parseSend(
      { messages: fires.map((f) => ({ ...f.config.message, msgId: f.msgId, bornAt: f.bornAt })) },
      Date.now(),
      newMsgId,
    );
    // Schedules are the admin's: their fires' msgIds dedup in the admin space.
    const { results } = await new BrokerService(this.env).send(topic, request, undefined, null);
    return results;
  }

  /**
   * The alarm: fires every due schedule (at most FIRES_PER_RUN; the alarm
   * comes back at once for the rest), then re-arms at the next one. The sends
   * run concurrently, the fires to one topic batched together; what they did
   * is recorded in one transaction (one commit for all of them, not one each).
   */
  override async alarm(): Promise<void> {
    const names = this.store.due(Date.now(), FIRES_PER_RUN);
    if (names.length) await this.serialAll(names, () => this.fire(names));
    await this.rearm();
  }

  /** Fires each schedule of `names` that is (still) due: one message for its latest fire time due. */
  private async fire(names: readonly string[]): Promise<void> {
    const now = Date.now();
    const plans = names.flatMap((name) => {
      const s = this.store.get(name);
      if (!s || s.dueAt === null || s.nextFireAt === null || s.dueAt > now) return [];
      const due = dueFire(storedCron(s.config.cron, s.config.timezone), s.nextFireAt, now);
      if (!due) return [];
      return [
        { name, s, due, config: s.config, msgId: fireMsgId(name, due.fireAt), bornAt: due.fireAt },
      ];
    });
    type Plan = (typeof plans)[number];
    const batches = batchesByTopic(
      plans,
      (p) => p.config.topic,
      (p) => p.config.message.body.length,
    );
    const done: { p: Plan; o: SendResult | { error: unknown } }[] = [];
    const one = async (p: Plan) => {
      const o = await this.send(p.config, p.msgId, p.bornAt).catch((error: unknown) => ({ error }));
      done.push({ p, o });
    };
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(FIRE_CONCURRENCY, batches.length) }, async () => {
        while (next < batches.length) {
          const batch = batches[next++]!;
          if (batch.length === 1) {
            await one(batch[0]!);
            continue;
          }
          try {
            const results = await this.sendMany(batch[0]!.config.topic, batch);
            batch.forEach((p, i) => done.push({ p, o: results[i]! }));
          } catch {
            // One fire's message may be what the topic refuses: find out fire by fire
            // (a message a shard stored before the refusal is answered duplicate).
            for (const p of batch) await one(p);
          }
        }
      }),
    );
    const at = Date.now();
    this.ctx.storage.transactionSync(() => {
      for (const { p, o } of done) {
        const { name, s, due, msgId } = p;
        if (!("error" in o)) {
          const sent = { at: due.fireAt, msgId, status: o.status, missed: due.missed };
          this.store.recordFire(name, sent, due.nextAt);
          continue;
        }
        const known = EdgemqError.from(o.error);
        if (known && GIVE_UP.has(known.code)) {
          this.store.recordError(name, describe(known), at, {
            nextAt: due.nextAt,
            missed: due.missed,
          });
        } else {
          if (!known) console.error(`edgemq: schedule ${name} failed to fire`, o.error);
          this.store.recordError(name, describe(o.error), at, {
            retry: retryAt(at, s.failures + 1),
          });
        }
      }
    });
  }
}

/** A failure as `CODE: message`, for a schedule's lastError. */
function describe(e: unknown): string {
  const known = EdgemqError.from(e);
  if (known) return `${known.code}: ${known.message}`;
  return `INTERNAL: ${e instanceof Error ? e.message : String(e)}`;
}
