/**
 * The grouping of waiters by condition (src/broker/watch/wait-groups.ts):
 * a waiter is in one group at a time, empty groups go, waiters told in turn
 * take turns, and one notify evaluates each condition once.
 */
import { describe, expect, it } from "vitest";
import { CheckMemo, WaitGroups } from "../../src/broker/watch/wait-groups.ts";

describe("WaitGroups", () => {
  it("keeps each waiter in the group of its latest condition, and drops empty groups", () => {
    const g = new WaitGroups<string, { filter: string }>();
    g.add("w1", "a", { filter: "a" });
    g.add("w2", "a", { filter: "a" });
    g.add("w3", "b", { filter: "b" });
    expect({ size: g.size, conditions: g.conditions }).toEqual({ size: 3, conditions: 2 });
    g.add("w3", "a", { filter: "a" });
    expect(g.conditions).toBe(1);
    expect([...g.groups()[0]!.waiters]).toEqual(["w1", "w2", "w3"]);
    expect(g.delete("w1")).toBe(true);
    expect(g.delete("w1")).toBe(false);
    g.delete("w2");
    g.delete("w3");
    expect({ size: g.size, conditions: g.conditions }).toEqual({ size: 0, conditions: 0 });
  });

  it("moves a told waiter to the back of its group, so the next one is told first next time", () => {
    const g = new WaitGroups<string, null>();
    for (const w of ["w1", "w2", "w3"]) g.add(w, "k", null);
    g.toBack("w1");
    expect([...g.groups()[0]!.waiters]).toEqual(["w2", "w3", "w1"]);
  });
});

describe("CheckMemo", () => {
  it("evaluates each condition once per notify and counts the evaluations", () => {
    const memo = new CheckMemo();
    let calls = 0;
    const check = () => (calls++, calls % 2 === 1);
    expect([memo.check("x", check), memo.check("x", check), memo.check("y", check)]).toEqual([
      true,
      true,
      false,
    ]);
    expect({ calls, runs: memo.runs }).toEqual({ calls: 2, runs: 2 });
  });

  it("answers true for a condition whose check throws (the waiter looks for itself)", () => {
    const memo = new CheckMemo();
    expect(
      memo.check("bad", () => {
        throw new Error("no such topic");
      }),
    ).toBe(true);
  });
});
