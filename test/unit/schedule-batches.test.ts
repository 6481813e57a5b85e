/** How an alarm run groups due fires into sends (src/schedules/batches.ts). */
import { describe, expect, it } from "vitest";
import { batchesByTopic } from "../../src/schedules/batches.ts";

const fire = (name: string, topic: string, bytes = 10) => ({ name, topic, bytes });
const batches = (items: ReturnType<typeof fire>[], maxMessages?: number, maxBytes?: number) =>
  batchesByTopic(
    items,
    (f) => f.topic,
    (f) => f.bytes,
    maxMessages,
    maxBytes,
  ).map((b) => b.map((f) => f.name));

describe("batchesByTopic", () => {
  it("puts the fires to one topic in one batch, topics in order of first appearance", () => {
    expect(batches([fire("a", "t1"), fire("b", "t2"), fire("c", "t1"), fire("d", "t3")])).toEqual([
      ["a", "c"],
      ["b"],
      ["d"],
    ]);
  });

  it("starts a new batch at the message bound", () => {
    expect(batches([fire("a", "t"), fire("b", "t"), fire("c", "t")], 2)).toEqual([
      ["a", "b"],
      ["c"],
    ]);
  });

  it("starts a new batch at the byte bound, and sends a message larger than it alone", () => {
    expect(
      batches(
        [fire("a", "t", 60), fire("b", "t", 60), fire("big", "t", 500), fire("c", "t", 1)],
        100,
        100,
      ),
    ).toEqual([["a"], ["b"], ["big"], ["c"]]);
  });

  it("answers no batch for no fire", () => {
    expect(batches([])).toEqual([]);
  });
});
