import { describe, expect, it } from "vitest";
import { GroupCommit, type Settled } from "../../src/broker/group-commit.ts";

/** A commit the test completes by hand. */
function manualCommits() {
  const waiting: (() => void)[] = [];
  return {
    durable: () => new Promise<void>((resolve) => waiting.push(resolve)),
    finishOne: () => waiting.shift()?.(),
    get open() {
      return waiting.length;
    },
  };
}

const flush = () => new Promise<void>((r) => setTimeout(r, 0));

describe("GroupCommit", () => {
  it("writes a lone item at once, without waiting for an earlier commit", async () => {
    const groups: number[][] = [];
    const commits = manualCommits();
    const gc = new GroupCommit<number, number>((items) => {
      groups.push(items);
      return items.map((x) => ({ ok: true, value: x * 10 }));
    }, commits.durable);
    await expect(gc.submit(1)).resolves.toBe(10);
    expect(groups).toEqual([[1]]);
  });

  it("writes the items that arrive during a commit together, in arrival order, as one group", async () => {
    const groups: number[][] = [];
    const commits = manualCommits();
    const gc = new GroupCommit<number, number>((items) => {
      groups.push(items);
      return items.map((x) => ({ ok: true, value: x }));
    }, commits.durable);
    const first = gc.submit(1);
    await flush();
    // The first group's commit is under way: these wait for it.
    const rest = [gc.submit(2), gc.submit(3), gc.submit(4)];
    expect(gc.waiting).toBe(3);
    expect(groups).toEqual([[1]]);
    commits.finishOne();
    expect(await Promise.all([first, ...rest])).toEqual([1, 2, 3, 4]);
    expect(groups).toEqual([[1], [2, 3, 4]]);
  });

  it("settles each item with its own outcome: one refused item does not fail the others", async () => {
    const commits = manualCommits();
    const gc = new GroupCommit<number, number>(
      (items) =>
        items.map((x): Settled<number> => (x < 0 ? { ok: false, error: new Error(`bad ${x}`) } : { ok: true, value: x })),
      commits.durable,
    );
    const a = gc.submit(1);
    await flush();
    const b = gc.submit(-2);
    const c = gc.submit(3);
    commits.finishOne();
    await expect(a).resolves.toBe(1);
    await expect(b).rejects.toThrow("bad -2");
    await expect(c).resolves.toBe(3);
  });

  it("rejects a whole group when its write throws, and still writes the next group", async () => {
    const commits = manualCommits();
    let calls = 0;
    const gc = new GroupCommit<number, number>((items) => {
      calls++;
      if (calls === 1) throw new Error("disk on fire");
      return items.map((x) => ({ ok: true, value: x }));
    }, commits.durable);
    await expect(gc.submit(1)).rejects.toThrow("disk on fire");
    await expect(gc.submit(2)).resolves.toBe(2);
  });

  it("keeps going after a commit fails", async () => {
    let fail = true;
    const gc = new GroupCommit<number, number>(
      (items) => items.map((x) => ({ ok: true, value: x })),
      () => (fail ? ((fail = false), Promise.reject(new Error("commit failed"))) : Promise.resolve()),
    );
    await expect(gc.submit(1)).resolves.toBe(1);
    await flush();
    await expect(gc.submit(2)).resolves.toBe(2);
  });
});
