import "fake-indexeddb/auto";
import { describe, expect, it } from "vitest";
import { IndexedDbOffsetStore, MemoryOffsetStore } from "../../client/offset-store.ts";

describe("IndexedDbOffsetStore", () => {
  it("keeps saved offsets for the next store opened on the same database", async () => {
    const name = `offsets-${Date.now()}`;
    const first = new IndexedDbOffsetStore(name);
    await first.save("g", "t", { 0: 5, 2: 7 });
    await first.save("g", "t", { 2: 9 });
    await first.close();
    const second = new IndexedDbOffsetStore(name);
    expect(await second.load("g", "t")).toEqual({ 0: 5, 2: 9 });
    await second.close();
  });

  it("keeps groups and topics apart", async () => {
    const store = new IndexedDbOffsetStore(`offsets-apart-${Date.now()}`);
    await store.save("g", "t", { 0: 1 });
    await store.save("g", "u", { 0: 2 });
    await store.save("h", "t", { 0: 3 });
    expect(await store.load("g", "t")).toEqual({ 0: 1 });
    expect(await store.load("g", "u")).toEqual({ 0: 2 });
    expect(await store.load("h", "t")).toEqual({ 0: 3 });
    expect(await store.load("x", "t")).toEqual({});
    await store.close();
  });
});

describe("MemoryOffsetStore", () => {
  it("merges saves per queue and hands out copies", async () => {
    const store = new MemoryOffsetStore();
    await store.save("g", "t", { 0: 1, 1: 1 });
    await store.save("g", "t", { 1: 4 });
    const loaded = await store.load("g", "t");
    expect(loaded).toEqual({ 0: 1, 1: 4 });
    loaded[0] = 99;
    expect(await store.load("g", "t")).toEqual({ 0: 1, 1: 4 });
  });
});
