import { describe, expect, it } from "vitest";
import { newMsgId } from "../../src/protocol/msg-id.ts";

describe("broker-made msgIds", () => {
  it("are 32 uppercase hex digits, unique", () => {
    const ids = new Set(Array.from({ length: 1000 }, () => newMsgId()));
    expect(ids.size).toBe(1000);
    for (const id of ids) expect(id).toMatch(/^[0-9A-F]{32}$/);
  });

  it("sort by the time they were made, so a shard's msgId index grows at one edge", () => {
    const t = 1_764_000_000_000;
    const ids = [t, t + 1, t + 2, t + 1000, t + 3_600_000].map((now) => newMsgId(now));
    expect([...ids].sort()).toEqual(ids);
    expect(newMsgId(t).slice(0, 12)).toBe(t.toString(16).padStart(12, "0").toUpperCase());
  });
});
