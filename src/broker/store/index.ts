/**
 * The storage of one queue shard, over the Durable Object's SQLite handle:
 * one module per concern sharing one {@link StoreState} (SQL handle,
 * counters, configs, the record of write effects). No Workers APIs here
 * beyond `SqlStorage`, so every module is testable and readable on its own;
 * the QueueShard object adds RPC, the group commit, alarms and watchers
 * around them.
 *
 * - log.ts: append (dedup, scheduling at send, backlog bounds), pull,
 *   retention, queue stats;
 * - purge.ts: purge, marked at once and cleaned up in bounded steps;
 * - overflow.ts: which stored messages an overflow policy removes (chosen
 *   as a whole before anything is deleted);
 * - receive.ts: receive (pop) and whether a receive would find anything;
 * - consumption.ts: group offsets and resets, ack/nack, invisibility,
 *   lapses, retries, dead letters, group stats;
 * - scheduling.ts: scheduled messages, moving due ones, recall;
 * - transactions.ts: half messages, commit/rollback, check-back timing;
 * - queries.ts: by msgId, key, store time;
 * - push.ts: push subscriptions: claims of deliveries, their settlement, counters;
 * - due-work.ts: what the alarm does, and when it is next due;
 * - parking.ts: timer work that keeps failing, set aside;
 * - schema.ts: the versioned schema and the named row states.
 */
import { Consumption } from "./consumption.ts";
import { ShardLog } from "./log.ts";
import { Parking } from "./parking.ts";
import { Purging } from "./purge.ts";
import { PushStore } from "./push.ts";
import { Queries } from "./queries.ts";
import { Receiving } from "./receive.ts";
import { Scheduling } from "./scheduling.ts";
import { StoreState } from "./state.ts";
import { Transactions } from "./transactions.ts";

/** A shard's store modules (a plain record: the object calls the modules directly). */
export interface ShardStore {
  readonly state: StoreState;
  readonly log: ShardLog;
  readonly purging: Purging;
  readonly consumption: Consumption;
  readonly receiving: Receiving;
  readonly scheduling: Scheduling;
  readonly transactions: Transactions;
  readonly queries: Queries;
  readonly push: PushStore;
}

/**
 * Opens a shard's store: brings its schema to the current version and loads
 * counters and config.
 *
 * @param transact runs a function in one SQLite transaction (`ctx.storage.transactionSync`).
 */
export function openShardStore(sql: SqlStorage, transact: <T>(fn: () => T) => T): ShardStore {
  const state = new StoreState(sql, transact);
  const log = new ShardLog(state);
  const consumption = new Consumption(state);
  const parking = new Parking(state);
  const receiving = new Receiving(state, log, consumption);
  return {
    state,
    log,
    purging: new Purging(state),
    consumption,
    receiving,
    scheduling: new Scheduling(state, log, parking),
    transactions: new Transactions(state, log, parking),
    queries: new Queries(state),
    push: new PushStore(state, receiving, consumption),
  };
}
