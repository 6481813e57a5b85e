import { describe, expect, it } from "vitest";
import { assignQueues, liveMembers } from "../../src/registry/assignment.ts";

/** Every member's share, in member order. */
function shares(members: number, queues: number): number[][] {
  return Array.from({ length: members }, (_, i) => assignQueues(i, members, queues));
}

describe("assignQueues (AllocateMessageQueueAveragely)", () => {
  it("gives a single member every queue", () => {
    expect(assignQueues(0, 1, 4)).toEqual([0, 1, 2, 3]);
  });

  it("splits queues into even contiguous runs", () => {
    expect(shares(2, 4)).toEqual([
      [0, 1],
      [2, 3],
    ]);
  });

  it("gives the first queues % members members one extra queue", () => {
    expect(shares(3, 8)).toEqual([
      [0, 1, 2],
      [3, 4, 5],
      [6, 7],
    ]);
  });

  it("leaves members beyond the queue count without queues", () => {
    expect(shares(5, 3)).toEqual([[0], [1], [2], [], []]);
  });

  it("gives each queue exactly one owner for every split", () => {
    for (let queues = 1; queues <= 16; queues++) {
      for (let members = 1; members <= 20; members++) {
        const owned = shares(members, queues)
          .flat()
          .sort((a, b) => a - b);
        expect(owned).toEqual(Array.from({ length: queues }, (_, q) => q));
        const sizes = shares(members, queues).map((s) => s.length);
        expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
      }
    }
  });

  it("gives nothing to a member that is not in the list", () => {
    expect(assignQueues(-1, 2, 4)).toEqual([]);
    expect(assignQueues(2, 2, 4)).toEqual([]);
    expect(assignQueues(0, 0, 4)).toEqual([]);
  });
});

describe("liveMembers", () => {
  const timeout = 30_000;
  const now = 1_000_000;

  it("keeps members seen within the timeout", () => {
    const m = [
      { id: "a", lastSeen: now },
      { id: "b", lastSeen: now - 29_999 },
    ];
    expect(liveMembers(m, now, timeout).map((x) => x.id)).toEqual(["a", "b"]);
  });

  it("drops a member 30 s after its last heartbeat", () => {
    const m = [
      { id: "a", lastSeen: now - 30_000 },
      { id: "b", lastSeen: now - 60_000 },
      { id: "c", lastSeen: now - 1 },
    ];
    expect(liveMembers(m, now, timeout).map((x) => x.id)).toEqual(["c"]);
  });

  it("hands the queues of an expired member to the live ones", () => {
    const all = [
      { id: "a", lastSeen: now - 40_000 },
      { id: "b", lastSeen: now - 1000 },
      { id: "c", lastSeen: now - 2000 },
    ];
    const live = liveMembers(all, now, timeout).map((x) => x.id);
    expect(live.map((_, i) => assignQueues(i, live.length, 4))).toEqual([
      [0, 1],
      [2, 3],
    ]);
  });
});
