/** Merging shard answers into one answer within one byte budget. */
import { describe, expect, it } from "vitest";
import type { MessagePage } from "../../src/broker/store/state.ts";
import { mergeInTurn, mergeOrdered, shareOf } from "../../src/gateway/fan-out.ts";
import type { Message } from "../../src/protocol/types.ts";

const msg = (queue: number, offset: number, storedAt: number) =>
  ({ msgId: `${queue}:${offset}`, queue, offset, storedAt }) as Message;

function page(
  queue: number,
  entries: [offset: number, storedAt: number, size: number][],
  next?: [number, number],
): MessagePage {
  return {
    messages: entries.map(([o, t]) => msg(queue, o, t)),
    sizes: entries.map(([, , s]) => s),
    next: next ? { storedAt: next[1], queue, offset: next[0] } : null,
  };
}

const ids = (r: { messages: Message[] }) => r.messages.map((m) => m.msgId);

describe("fan-out merge", () => {
  it("gives each shard an equal share of the budget, not the first-message exception", () => {
    expect(shareOf(100, 4)).toEqual({ max: 25, atLeastOne: false });
    expect(shareOf(100, 0)).toEqual({ max: 100, atLeastOne: false });
  });

  it("merges oldest first, up to the limit and the budget", () => {
    const pages = [
      page(0, [
        [0, 10, 5],
        [1, 30, 5],
      ]),
      page(1, [
        [0, 20, 5],
        [1, 40, 5],
      ]),
    ];
    expect(ids(mergeOrdered(pages, 3, 100))).toEqual(["0:0", "1:0", "0:1"]);
    expect(ids(mergeOrdered(pages, 10, 12))).toEqual(["0:0", "1:0"]);
    // The first message is always taken, whatever its size.
    expect(ids(mergeOrdered([page(0, [[0, 10, 500]])], 10, 12))).toEqual(["0:0"]);
  });

  it("never goes past where a page was cut by bytes: what that queue holds after is unknown", () => {
    const pages = [
      page(0, [[0, 10, 5]], [1, 25]),
      page(1, [
        [0, 20, 5],
        [1, 30, 5],
      ]),
    ];
    const r = mergeOrdered(pages, 10, 100);
    expect(ids(r)).toEqual(["0:0", "1:0"]);
    expect(r.refill).toBeNull();
  });

  it("asks for a refill when a cut page holds the oldest message and the answer would be empty", () => {
    const pages = [page(0, [], [0, 5]), page(1, [[0, 20, 5]])];
    const r = mergeOrdered(pages, 10, 100);
    expect(r.messages).toEqual([]);
    expect(r.refill).toBe(0);
    // With the whole budget, that queue's first message comes first, then the others up to its new cut.
    pages[0] = page(0, [[0, 5, 90]], [1, 15]);
    expect(ids(mergeOrdered(pages, 10, 100))).toEqual(["0:0"]);
    pages[0] = page(0, [[0, 5, 90]], [1, 30]);
    expect(ids(mergeOrdered(pages, 10, 100))).toEqual(["0:0", "1:0"]);
  });

  it("merges unordered pages in turn, refilling when every page was cut before its first message", () => {
    const pages = [
      page(0, [[0, 1, 5]]),
      page(1, [
        [0, 1, 5],
        [1, 2, 5],
      ]),
    ];
    expect(ids(mergeInTurn(pages, 2, 100))).toEqual(["0:0", "1:0"]);
    expect(ids(mergeInTurn(pages, 10, 11))).toEqual(["0:0", "1:0"]);
    const empty = mergeInTurn([page(0, []), page(1, [], [0, 1])], 10, 100);
    expect(empty).toEqual({ messages: [], refill: 1 });
  });
});
