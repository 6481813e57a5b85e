/**
 * Heartbeat membership of pull consumers in clustering mode: live members
 * split each topic's queues evenly (AllocateMessageQueueAveragely), so every
 * queue has exactly one live owner; a member is gone 30 s after its last
 * heartbeat (expiry is aged in the registry's SQLite here, not slept).
 */
import { describe, expect, it } from "vitest";
import { Limits } from "../../src/protocol/limits.ts";
import { api, createTopic, unique } from "./helpers.ts";
import { ageMember, forgetMemberOwners } from "./storage-sql.ts";
import { bearer, expectError, mint } from "./token-helpers.ts";

function heartbeat(group: string, clientId: unknown, topics: unknown) {
  return api("POST", `/v1/groups/${group}/heartbeat`, { clientId, topics });
}

async function beat(group: string, clientId: string, topics: string[]) {
  const r = await heartbeat(group, clientId, topics);
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body as { members: string[]; assignment: Record<string, number[]> };
}

/** Makes a member's last heartbeat `ageMs` old. */
const age = ageMember;

describe("heartbeat", () => {
  it("gives a lone member every queue", async () => {
    const topic = await createTopic({ queues: 4 });
    const group = unique("g");
    expect(await beat(group, "c1", [topic])).toEqual({
      members: ["c1"],
      assignment: { [topic]: [0, 1, 2, 3] },
    });
  });

  it("splits queues evenly over live members, each queue with one owner", async () => {
    const topic = await createTopic({ queues: 5 });
    const group = unique("g");
    for (const c of ["b", "a", "c"]) await beat(group, c, [topic]);
    const shares = await Promise.all(["a", "b", "c"].map((c) => beat(group, c, [topic])));
    expect(shares[0]!.members).toEqual(["a", "b", "c"]);
    expect(shares.map((s) => s.assignment[topic])).toEqual([[0, 1], [2, 3], [4]]);
  });

  it("leaves members beyond the queue count idle", async () => {
    const topic = await createTopic({ queues: 2 });
    const group = unique("g");
    for (const c of ["a", "b", "c"]) await beat(group, c, [topic]);
    const shares = await Promise.all(["a", "b", "c"].map((c) => beat(group, c, [topic])));
    expect(shares.map((s) => s.assignment[topic])).toEqual([[0], [1], []]);
  });

  it("splits each topic over the members that consume it", async () => {
    const [t1, t2] = [await createTopic({ queues: 4 }), await createTopic({ queues: 2 })];
    const group = unique("g");
    await beat(group, "a", [t1, t2]);
    await beat(group, "b", [t1]);
    const a = await beat(group, "a", [t1, t2]);
    expect(a.assignment).toEqual({ [t1]: [0, 1], [t2]: [0, 1] });
    const b = await beat(group, "b", [t1]);
    expect(b.assignment).toEqual({ [t1]: [2, 3] });
  });

  it("forgets a member 30 s after its last heartbeat and hands its queues over", async () => {
    const topic = await createTopic({ queues: 4 });
    const group = unique("g");
    await beat(group, "a", [topic]);
    await beat(group, "b", [topic]);
    expect((await beat(group, "b", [topic])).assignment[topic]).toEqual([2, 3]);
    await age(group, "a", 29_000);
    expect((await beat(group, "b", [topic])).members).toEqual(["a", "b"]);
    await age(group, "a", 30_001);
    expect(await beat(group, "b", [topic])).toEqual({
      members: ["b"],
      assignment: { [topic]: [0, 1, 2, 3] },
    });
    // It comes back with its next heartbeat.
    expect((await beat(group, "a", [topic])).assignment[topic]).toEqual([0, 1]);
  });

  it("lists live members in the group's stats", async () => {
    const topic = await createTopic({ queues: 2 });
    const group = unique("g");
    await beat(group, "a", [topic]);
    await beat(group, "b", [topic]);
    await age(group, "b", 60_000);
    const r = await api("GET", `/v1/groups/${group}`);
    expect(r.status).toBe(200);
    expect(r.body.members.map((m: { clientId: string }) => m.clientId)).toEqual(["a"]);
    expect(Object.keys(r.body.topics)).toEqual([topic]);
  });

  it("rejects bad input and records nothing", async () => {
    const topic = await createTopic({ queues: 2 });
    const group = unique("g");
    const bad: [unknown, unknown][] = [
      [undefined, [topic]],
      ["", [topic]],
      [7, [topic]],
      ["x".repeat(257), [topic]],
      ["c", topic],
      ["c", ["bad name!"]],
      ["c", [1]],
    ];
    for (const [clientId, topics] of bad) {
      const r = await heartbeat(group, clientId, topics);
      expect(r.status, JSON.stringify([clientId, topics])).toBe(400);
      expect(["BAD_REQUEST", "INVALID_NAME"]).toContain(r.body.error.code);
    }
    const missing = await heartbeat(group, "c", [unique("none")]);
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe("TOPIC_NOT_FOUND");
    expect((await beat(group, "ok", [topic])).members).toEqual(["ok"]);
  });
});

describe("heartbeat membership is owned (issue 16, item 7)", () => {
  async function tokenFor(sub: string, group: string, topic: string) {
    return bearer(await mint({ sub, subscribe: [topic], groups: [group] }));
  }
  const beatAs = (h: Record<string, string>, group: string, clientId: string, topics: string[]) =>
    api("POST", `/v1/groups/${group}/heartbeat`, { clientId, topics }, h);

  it("refuses another sender's heartbeat for a live clientId, which keeps its topics and queues", async () => {
    const topic = await createTopic({ queues: 4 });
    const group = unique("g");
    const owner = await tokenFor("consumer-a", group, topic);
    const intruder = await tokenFor("intruder", group, topic);
    expect((await beatAs(owner, group, "c1", [topic])).status).toBe(200);
    // Wiping c1's topics (topics: []) needs only the group permission on the old code.
    for (const topics of [[], [topic]]) {
      const r = await beatAs(intruder, group, "c1", topics);
      expectError(r, 403, "FORBIDDEN");
    }
    const again = await beatAs(owner, group, "c1", [topic]);
    expect(again.body).toEqual({ members: ["c1"], assignment: { [topic]: [0, 1, 2, 3] } });
    const g = await api("GET", `/v1/groups/${group}`);
    expect(g.body.members).toMatchObject([{ clientId: "c1", topics: [topic] }]);
  });

  it("lets the admin token and another sender take a clientId once its member expired", async () => {
    const topic = await createTopic({ queues: 2 });
    const group = unique("g");
    const owner = await tokenFor("consumer-a", group, topic);
    expect((await beatAs(owner, group, "c1", [topic])).status).toBe(200);
    expectError(await heartbeat(group, "c1", [topic]), 403, "FORBIDDEN");
    await age(group, "c1", 31_000);
    const other = await tokenFor("consumer-b", group, topic);
    expect((await beatAs(other, group, "c1", [topic])).status).toBe(200);
    expectError(await beatAs(owner, group, "c1", [topic]), 403, "FORBIDDEN");
  });

  it("lets a member registered before owners were recorded be claimed by its next heartbeat", async () => {
    const topic = await createTopic({ queues: 2 });
    const group = unique("g");
    await beat(group, "old", [topic]);
    await forgetMemberOwners(group);
    const h = await tokenFor("consumer-a", group, topic);
    expect((await beatAs(h, group, "old", [topic])).status).toBe(200);
    expectError(await heartbeat(group, "old", [topic]), 403, "FORBIDDEN");
  });

  it(
    `bounds a group at ${Limits.maxMembersPerGroup} live members: new ones are refused, known ones keep beating`,
    { timeout: 30_000 },
    async () => {
      const topic = await createTopic({ queues: 1 });
      const group = unique("g");
      const h = await tokenFor("ghost-maker", group, topic);
      // 256 heartbeats, 32 at a time (the registry takes them one by one anyway).
      for (let i = 0; i < Limits.maxMembersPerGroup; i += 32) {
        const batch = Array.from({ length: 32 }, (_, j) =>
          beatAs(h, group, `ghost-${String(i + j).padStart(3, "0")}`, []),
        );
        for (const r of await Promise.all(batch)) expect(r.status).toBe(200);
      }
      const full = await beatAs(h, group, "one-more", [topic]);
      expectError(full, 409, "GROUP_FULL");
      expectError(await heartbeat(group, "admin-one", [topic]), 409, "GROUP_FULL");
      expect((await beatAs(h, group, "ghost-000", [topic])).status).toBe(200);
      // A member that stops beating frees its place.
      await age(group, "ghost-001", 31_000);
      expect((await heartbeat(group, "admin-one", [topic])).status).toBe(200);
      const g = await api("GET", `/v1/groups/${group}`);
      expect(g.body.members).toHaveLength(Limits.maxMembersPerGroup);
    },
  );
});
