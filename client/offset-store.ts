/**
 * Where a broadcasting {@link PullConsumer} keeps its offsets. In
 * broadcasting mode every consumer instance reads every message, so its
 * progress belongs to the instance, not to the group on the broker:
 * RocketMQ keeps it in a local file; here it is this pluggable store.
 */
import { type DBSchema, type IDBPDatabase, openDB } from "idb";
import { EdgemqError } from "../src/protocol/errors.ts";

/** Offsets by queue number: the next offset to read. */
export type QueueOffsets = Record<number, number>;

/** Persistence of client-side offsets. */
export interface OffsetStore {
  /** The saved offsets of a group's topic (queues never saved are absent). */
  load(group: string, topic: string): Promise<QueueOffsets>;
  /** Saves offsets of some queues, keeping the others. */
  save(group: string, topic: string, offsets: QueueOffsets): Promise<void>;
}

/** Offsets in memory: lost with the process. The default. */
export class MemoryOffsetStore implements OffsetStore {
  readonly #data = new Map<string, QueueOffsets>();

  async load(group: string, topic: string): Promise<QueueOffsets> {
    return { ...this.#data.get(`${group}\u0000${topic}`) };
  }

  async save(group: string, topic: string, offsets: QueueOffsets): Promise<void> {
    const key = `${group}\u0000${topic}`;
    this.#data.set(key, { ...this.#data.get(key), ...offsets });
  }
}

interface OffsetRow {
  group: string;
  topic: string;
  queue: number;
  offset: number;
  savedAt: number;
}

interface OffsetSchema extends DBSchema {
  offsets: { key: [string, string, number]; value: OffsetRow };
}

type KeyQuery = Parameters<IDBPDatabase<OffsetSchema>["getAll"]>[1];

/** Whether this runtime has IndexedDB (browsers; Node with fake-indexeddb). */
export function hasIndexedDb(): boolean {
  return (globalThis as { indexedDB?: unknown }).indexedDB !== undefined;
}

/** Offsets in IndexedDB: survive reloads of a browser page. */
export class IndexedDbOffsetStore implements OffsetStore {
  readonly #db: Promise<IDBPDatabase<OffsetSchema>>;

  /** `name`: the IndexedDB database. Default `edgemq-offsets`. */
  constructor(name = "edgemq-offsets") {
    if (!hasIndexedDb()) {
      throw new EdgemqError(
        "BAD_REQUEST",
        "IndexedDbOffsetStore needs IndexedDB, which this runtime lacks",
      );
    }
    this.#db = openDB<OffsetSchema>(name, 1, {
      upgrade(db) {
        db.createObjectStore("offsets", { keyPath: ["group", "topic", "queue"] });
      },
    });
    this.#db.catch(() => {});
  }

  async load(group: string, topic: string): Promise<QueueOffsets> {
    const db = await this.#db;
    // Read through globalThis: the SDK is also type-checked with the
    // Workers types, which have no IndexedDB globals.
    const keyRange = (
      globalThis as unknown as { IDBKeyRange: { bound(lower: unknown, upper: unknown): KeyQuery } }
    ).IDBKeyRange;
    const rows = await db.getAll(
      "offsets",
      keyRange.bound([group, topic, -Infinity], [group, topic, Infinity]),
    );
    const out: QueueOffsets = {};
    for (const r of rows) out[r.queue] = r.offset;
    return out;
  }

  async save(group: string, topic: string, offsets: QueueOffsets): Promise<void> {
    const db = await this.#db;
    const tx = db.transaction("offsets", "readwrite");
    const savedAt = Date.now();
    for (const [queue, offset] of Object.entries(offsets)) {
      void tx.store.put({ group, topic, queue: Number(queue), offset, savedAt });
    }
    await tx.done;
  }

  /** Closes the database. */
  async close(): Promise<void> {
    (await this.#db).close();
  }
}
