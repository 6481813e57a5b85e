import { describe, expect, it } from "vitest";
import {
  batchFootprint,
  resolveStorageLimit,
  rowPageCost,
  wouldExceedStorage,
} from "../../src/broker/store/storage-limit.ts";
import { Limits } from "../../src/protocol/limits.ts";
import type { NormalizedMessage } from "../../src/protocol/validate.ts";

function message(over: Partial<NormalizedMessage> = {}): NormalizedMessage {
  return {
    msgId: "ID",
    body: "hello",
    encoding: "utf8",
    tag: null,
    keys: [],
    properties: null,
    shardingKey: null,
    priority: 4,
    expireAt: null,
    bornAt: 0,
    deliverAt: null,
    size: 5,
    clientMsgId: false,
    ...over,
  };
}

describe("storage ceiling maths", () => {
  it("estimates at least the stored bytes of every message in a batch", () => {
    const one = batchFootprint([message()]);
    expect(one).toBeGreaterThan(5 + 2);
    expect(batchFootprint([message(), message()])).toBe(2 * one);
    const withFields = batchFootprint([
      message({ keys: ["order-1"], properties: { region: "eu" }, tag: "T", shardingKey: "u" }),
    ]);
    expect(withFields).toBeGreaterThan(one);
  });

  it("counts a base64 body by its stored text, not its decoded size", () => {
    const b64 = message({ encoding: "base64", body: "A".repeat(4000), size: 3000 });
    expect(batchFootprint([b64])).toBeGreaterThanOrEqual(4000);
  });

  it("counts a scheduled message twice: timer row, then log row", () => {
    const now = batchFootprint([message({ body: "x".repeat(1000), size: 1000 })]);
    const later = batchFootprint([message({ body: "x".repeat(1000), size: 1000, deliverAt: 1 })]);
    expect(later).toBeGreaterThan(now + 1000);
  });

  it("takes the shard's setting first, then a valid binding, then the default", () => {
    expect(resolveStorageLimit(1000, "2000")).toBe(1000);
    expect(resolveStorageLimit(null, "2000")).toBe(2000);
    expect(resolveStorageLimit(undefined, undefined)).toBe(Limits.shardStorageLimitBytes);
    for (const bad of ["", " ", "abc", "-5", "0"]) {
      expect(resolveStorageLimit(null, bad), bad).toBe(Limits.shardStorageLimitBytes);
    }
    expect(resolveStorageLimit(0, "2000")).toBe(2000);
  });

  it("keeps the default ceiling in decimal bytes, 500 MB under the platform's 10 GB", () => {
    expect(Limits.shardDatabaseMaxBytes).toBe(10_000_000_000);
    expect(Limits.shardStorageLimitBytes).toBe(9_500_000_000);
    expect(resolveStorageLimit(undefined, undefined)).toBeLessThan(Limits.shardDatabaseMaxBytes);
  });

  it("lets the binding lower the ceiling, never raise it past the headroom", () => {
    expect(resolveStorageLimit(null, "20000000000")).toBe(Limits.shardStorageLimitBytes);
    expect(resolveStorageLimit(null, String(10 * 1024 ** 3))).toBe(Limits.shardStorageLimitBytes);
  });

  it("refuses a write that would reach the ceiling, not only one already past it", () => {
    expect(wouldExceedStorage(900, 99, 1000)).toBe(false);
    expect(wouldExceedStorage(900, 100, 1000)).toBe(true);
    expect(wouldExceedStorage(1200, 0, 1000)).toBe(true);
  });
});

describe("rowPageCost", () => {
  it("counts a row just over half a page as a whole page", () => {
    expect(rowPageCost(2100)).toBe(4096);
    expect(rowPageCost(1000)).toBe(4096 / 3);
  });

  it("counts a row over a page as its overflow pages", () => {
    expect(rowPageCost(10_000)).toBe(3 * 4096);
  });
});
