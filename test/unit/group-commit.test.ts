import { describe, expect, it } from "vitest";
import { GroupCommit } from "../../src/broker/concurrency/group-commit.ts";

/** A commit the test completes by hand. */
function manualCommits() {
  const waiting: (() => void)[] = [];
  return {
    durable: () => new Promise<void>((resolve) => waiting.push(resolve)),
    finishOne: () => waiting.shift()?.(),
  };
}

const flush = () => new Promise<void>((r) => setTimeout(r, 0));

describe("GroupCommit", () => {
  it("runs a lone write at once, without waiting for an earlier commit", async () => {
    const commits = manualCommits();
    const gc = new GroupCommit(commits.durable);
    const ran: number[] = [];
    await expect(gc.submit(() => (ran.push(1), 10))).resolves.toBe(10);
    expect(ran).toEqual([1]);
  });

  it("runs the writes that arrive during a commit together, in arrival order, as one group", async () => {
    const commits = manualCommits();
    const groups: number[][] = [];
    let current: number[] = [];
    const gc = new GroupCommit(commits.durable, () => {
      groups.push(current);
      current = [];
    });
    const write = (x: number) => () => (current.push(x), x);
    const first = gc.submit(write(1));
    await flush();
    // The first group's commit is under way: these wait for it.
    const rest = [gc.submit(write(2)), gc.submit(write(3)), gc.submit(write(4))];
    expect(gc.waiting).toBe(3);
    expect(groups).toEqual([[1]]);
    commits.finishOne();
    expect(await Promise.all([first, ...rest])).toEqual([1, 2, 3, 4]);
    expect(groups).toEqual([[1], [2, 3, 4]]);
  });

  it("settles each write with its own outcome: one that throws does not fail the others", async () => {
    const commits = manualCommits();
    const gc = new GroupCommit(commits.durable);
    const a = gc.submit(() => 1);
    await flush();
    const b = gc.submit(() => {
      throw new Error("bad write");
    });
    const c = gc.submit(() => 3);
    commits.finishOne();
    await expect(a).resolves.toBe(1);
    await expect(b).rejects.toThrow("bad write");
    await expect(c).resolves.toBe(3);
  });

  it("answers a group only after its after-group step, and fails the group when that step fails", async () => {
    const commits = manualCommits();
    const order: string[] = [];
    let failNext = true;
    const gc = new GroupCommit(commits.durable, async () => {
      order.push("after");
      if (failNext) {
        failNext = false;
        throw new Error("alarm refused");
      }
    });
    await expect(gc.submit(() => order.push("write"))).rejects.toThrow("alarm refused");
    expect(order).toEqual(["write", "after"]);
    commits.finishOne();
    await flush();
    await expect(gc.submit(() => 2)).resolves.toBe(2);
  });

  it("keeps going after a commit fails", async () => {
    let fail = true;
    const gc = new GroupCommit(() =>
      fail ? ((fail = false), Promise.reject(new Error("commit failed"))) : Promise.resolve(),
    );
    await expect(gc.submit(() => 1)).resolves.toBe(1);
    await flush();
    await expect(gc.submit(() => 2)).resolves.toBe(2);
  });
});
