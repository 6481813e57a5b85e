/** The overflow policies' choice of victims, as a pure function over candidates in policy order. */
import { describe, expect, it } from "vitest";
import { type Victim, chooseVictims, excessOver } from "../../src/broker/store/overflow.ts";

const v = (msg_offset: number, size: number, priority = 4, expire_at: number | null = null) =>
  ({ msg_offset, size, priority, expire_at }) as Victim;

describe("excessOver", () => {
  it("says how far one more message would go over each bound, or null when it fits", () => {
    const bounds = { maxBacklogMessages: 3, maxBacklogBytes: 100 };
    expect(excessOver({ messages: 2, bytes: 50 }, 50, bounds)).toBeNull();
    expect(excessOver({ messages: 3, bytes: 50 }, 10, bounds)).toEqual({ messages: 1, bytes: 0 });
    expect(excessOver({ messages: 1, bytes: 90 }, 30, bounds)).toEqual({ messages: 0, bytes: 20 });
    expect(
      excessOver({ messages: 9, bytes: 9 }, 1, { maxBacklogMessages: null, maxBacklogBytes: null }),
    ).toBeNull();
  });
});

describe("chooseVictims", () => {
  it("takes candidates in order until together they make room", () => {
    const got = chooseVictims(
      [v(0, 10), v(1, 10), v(2, 10)],
      { priority: 4, expireAt: null },
      "drop-oldest",
      {
        messages: 0,
        bytes: 15,
      },
    );
    expect(got?.map((x) => x.msg_offset)).toEqual([0, 1]);
  });

  it("chooses nothing when the candidates run out before there is room", () => {
    expect(
      chooseVictims([v(0, 10)], { priority: 4, expireAt: null }, "drop-oldest", {
        messages: 0,
        bytes: 50,
      }),
    ).toBeNull();
  });

  it("stops at a stored message of higher priority than the incoming one", () => {
    const candidates = [v(0, 100, 1), v(1, 600, 9)];
    const need = { messages: 0, bytes: 200 };
    expect(
      chooseVictims(candidates, { priority: 5, expireAt: null }, "drop-lowest-priority", need),
    ).toBeNull();
    // Equal priority: the stored one goes.
    expect(
      chooseVictims(candidates, { priority: 9, expireAt: null }, "drop-lowest-priority", need)
        ?.length,
    ).toBe(2);
  });

  it("stops at a stored message with a later deadline than the incoming one", () => {
    const candidates = [v(0, 100, 4, 10), v(1, 600, 4, 30)];
    const need = { messages: 0, bytes: 200 };
    expect(
      chooseVictims(candidates, { priority: 4, expireAt: 20 }, "drop-earliest-deadline", need),
    ).toBeNull();
    expect(
      chooseVictims(candidates, { priority: 4, expireAt: 40 }, "drop-earliest-deadline", need)
        ?.length,
    ).toBe(2);
    // An incoming message without a deadline never goes before a stored one.
    expect(
      chooseVictims(candidates, { priority: 4, expireAt: null }, "drop-earliest-deadline", need)
        ?.length,
    ).toBe(2);
  });

  it("gives up past the cap, and never chooses for reject or drop-newest", () => {
    const many = Array.from({ length: 10 }, (_, i) => v(i, 1));
    const need = { messages: 0, bytes: 5 };
    expect(chooseVictims(many, { priority: 4, expireAt: null }, "drop-oldest", need, 4)).toBeNull();
    expect(
      chooseVictims(many, { priority: 4, expireAt: null }, "drop-oldest", need, 5)?.length,
    ).toBe(5);
    expect(chooseVictims(many, { priority: 4, expireAt: null }, "reject", need)).toBeNull();
    expect(chooseVictims(many, { priority: 4, expireAt: null }, "drop-newest", need)).toBeNull();
  });
});
