import { describe, expect, it } from "vitest";
import { TtlCache } from "../../src/gateway/ttl-cache.ts";

describe("TtlCache (the gateway's isolate caches)", () => {
  it("answers a value within its lifetime and forgets it when the lifetime ends", () => {
    const c = new TtlCache<string, number>(30_000, 10);
    c.set("a", 1, 1000);
    expect(c.get("a", 1000)).toBe(1);
    expect(c.get("a", 30_999)).toBe(1);
    expect(c.get("a", 31_000)).toBeUndefined();
    expect(c.size).toBe(0);
  });

  it("starts a new lifetime when a value is written again", () => {
    const c = new TtlCache<string, number>(100, 10);
    c.set("a", 1, 0);
    c.set("a", 2, 90);
    expect(c.get("a", 150)).toBe(2);
    expect(c.get("a", 190)).toBeUndefined();
  });

  it("holds at most its bound, dropping the entry written longest ago", () => {
    const c = new TtlCache<string, number>(1000, 2);
    c.set("a", 1, 0);
    c.set("b", 2, 0);
    c.set("a", 3, 1); // rewritten: now the newest
    c.set("c", 4, 2);
    expect(c.size).toBe(2);
    expect(c.get("b", 3)).toBeUndefined();
    expect(c.get("a", 3)).toBe(3);
    expect(c.get("c", 3)).toBe(4);
  });

  it("deletes every entry whose key matches", () => {
    const c = new TtlCache<string, true>(1000, 10);
    for (const k of ["g1\u0000t1", "g1\u0000t2", "g2\u0000t1"]) c.set(k, true, 0);
    c.deleteWhere((k) => k.startsWith("g1\u0000"));
    expect(c.get("g1\u0000t1", 0)).toBeUndefined();
    expect(c.get("g1\u0000t2", 0)).toBeUndefined();
    expect(c.get("g2\u0000t1", 0)).toBe(true);
  });
});
