/**
 * Recurring schedules over HTTP against the real local server (workerd,
 * SQLite on disk, real Durable Object alarms): a cron with seconds firing on
 * time, a time zone's next fire, a restart in between (the missed fire sent
 * once), run now, DELETE stopping fires, bad input storing nothing; and the
 * SDK's Admin and the CLI on top. Every wait is a bounded long-poll; timing
 * is asserted only loosely ("within a few seconds").
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { Admin } from "../../client/index.ts";
import { type LocalServer, REPO_ROOT } from "../../scripts/local-server.ts";
import { call, serverFixture } from "./server-fixture.ts";

let n = 0;
const unique = (prefix: string) => `${prefix}-${Date.now().toString(36)}-${(n++).toString(36)}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Stored {
  msgId: string;
  body: string;
  offset: number;
  bornAt: number;
  storedAt: number;
}

/** The fire time a schedule's msgId carries (`{name}:{fireTimeMs}`). */
const fireTimeOf = (name: string, m: Stored) => Number(m.msgId.slice(name.length + 1));

/**
 * Long-polls queue 0 of a one-queue topic from `offset` until `count`
 * messages have come (or `untilMs` passed): what the schedule stored.
 */
async function collect(base: string, topic: string, count: number, untilMs = 15_000) {
  const got: Stored[] = [];
  const deadline = Date.now() + untilMs;
  while (got.length < count && Date.now() < deadline) {
    const waitMs = Math.min(5000, Math.max(0, deadline - Date.now()));
    const r = await call(
      base,
      "GET",
      `/v1/topics/${topic}/queues/0/messages?offset=${got.length}&waitMs=${waitMs}`,
    );
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    got.push(...(r.body.messages as Stored[]));
  }
  return got;
}

async function topicWithOneQueue(base: string): Promise<string> {
  const topic = unique("t");
  const r = await call(base, "PUT", `/v1/topics/${topic}`, { queues: 1 });
  expect(r.status).toBe(200);
  return topic;
}

const main = serverFixture("schedules");
let server: LocalServer;
beforeAll(async () => {
  server = await main.start();
});

describe("recurring schedules over HTTP", () => {
  it("fires a cron with seconds on time: one message a second, msgId {name}:{fireTimeMs}", async () => {
    const topic = await topicWithOneQueue(server.url);
    const name = unique("every-second");
    const put = await call(server.url, "PUT", `/v1/schedules/${name}`, {
      topic,
      cron: "* * * * * *",
      message: { body: "tick", tag: "cron" },
    });
    expect(put.status, JSON.stringify(put.body)).toBe(200);
    const got = await collect(server.url, topic, 3);
    const info = (await call(server.url, "GET", `/v1/schedules/${name}`)).body;
    await call(server.url, "DELETE", `/v1/schedules/${name}`);
    expect(got.length).toBeGreaterThanOrEqual(3);
    const times = got.map((m) => fireTimeOf(name, m));
    for (const [i, m] of got.entries()) {
      expect(m.msgId).toBe(`${name}:${times[i]}`);
      expect(times[i]! % 1000).toBe(0);
      expect(m.bornAt).toBe(times[i]);
      // On time, loosely: stored after its fire time and within a few seconds of it.
      expect(m.storedAt).toBeGreaterThanOrEqual(times[i]!);
      expect(m.storedAt - times[i]!).toBeLessThan(3000);
    }
    // From the first second after the PUT, one fire a second. (A fire so late on a loaded
    // machine that the next second passed first folds the one it passed: the schedule counts it.)
    const gaps = times.map((t, i) => t - (i === 0 ? put.body.nextFireAt : times[i - 1]!));
    expect(gaps.every((g, i) => g % 1000 === 0 && (i === 0 ? g >= 0 : g >= 1000))).toBe(true);
    const folded = gaps.reduce((sum, g, i) => sum + g / 1000 - (i === 0 ? 0 : 1), 0);
    expect(info.missedFires).toBeGreaterThanOrEqual(folded);
    expect(info.fires).toBeGreaterThanOrEqual(got.length);
  });

  it("answers a time zone's next fire: 9:00 in Tokyo is 00:00 UTC, 9:00 in New York is 9:00 there", async () => {
    const topic = await topicWithOneQueue(server.url);
    const tokyo = unique("tokyo");
    const now = Date.now();
    const r = await call(server.url, "PUT", `/v1/schedules/${tokyo}`, {
      topic,
      cron: "0 9 * * *",
      timezone: "Asia/Tokyo",
      message: { body: "ohayo" },
    });
    expect(r.status).toBe(200);
    const midnightUtc = Math.floor(now / 86_400_000) * 86_400_000 + 86_400_000;
    expect(r.body.nextFireAt).toBe(midnightUtc);
    const ny = unique("ny");
    const r2 = await call(server.url, "PUT", `/v1/schedules/${ny}`, {
      topic,
      cron: "0 0 9 * * *",
      timezone: "America/New_York",
      message: { body: "morning" },
    });
    const next = r2.body.nextFireAt as number;
    const local = new Intl.DateTimeFormat("en-US", {
      timeZone: "America/New_York",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
      hourCycle: "h23",
    }).format(next);
    expect(local).toBe("09:00:00");
    expect(next).toBeGreaterThan(now);
    expect(next - now).toBeLessThanOrEqual(25 * 3_600_000);
    expect((await call(server.url, "GET", `/v1/schedules/${ny}`)).body.nextFireAt).toBe(next);
  });

  it("runs now with msgId {name}:run:{nowMs}, leaving the schedule's fires as they were", async () => {
    const topic = await topicWithOneQueue(server.url);
    const name = unique("run");
    const put = await call(server.url, "PUT", `/v1/schedules/${name}`, {
      topic,
      cron: "0 0 1 1 *",
      message: { body: "now please" },
    });
    const t0 = Date.now();
    const r = await call(server.url, "POST", `/v1/schedules/${name}/run`);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ schedule: name, queue: 0, offset: 0, status: "stored" });
    const at = Number(r.body.msgId.slice(`${name}:run:`.length));
    expect(r.body.msgId).toBe(`${name}:run:${at}`);
    expect(at).toBeGreaterThanOrEqual(t0 - 1000);
    expect(at).toBeLessThanOrEqual(Date.now());
    const [m] = await collect(server.url, topic, 1);
    expect(m).toMatchObject({ msgId: r.body.msgId, body: "now please" });
    const info = (await call(server.url, "GET", `/v1/schedules/${name}`)).body;
    expect(info).toMatchObject({
      nextFireAt: put.body.nextFireAt,
      lastMsgId: r.body.msgId,
      fires: 1,
    });
  });

  it("stops firing once DELETE has answered", async () => {
    const topic = await topicWithOneQueue(server.url);
    const name = unique("stop");
    await call(server.url, "PUT", `/v1/schedules/${name}`, {
      topic,
      cron: "* * * * * *",
      message: { body: "tick" },
    });
    const before = await collect(server.url, topic, 1);
    expect(before).toHaveLength(1);
    const del = await call(server.url, "DELETE", `/v1/schedules/${name}`);
    expect(del.body).toEqual({ schedule: name, deleted: true });
    const deletedAt = Date.now();
    const end = (await call(server.url, "GET", `/v1/topics/${topic}`)).body.queueStats[0]
      .maxOffset as number;
    // Three fire times pass: a long-poll from the end gets nothing.
    const later = await call(
      server.url,
      "GET",
      `/v1/topics/${topic}/queues/0/messages?offset=${end}&waitMs=3000`,
    );
    expect(later.body.messages).toEqual([]);
    expect(Date.now() - deletedAt).toBeGreaterThanOrEqual(2900);
    expect((await call(server.url, "GET", `/v1/schedules/${name}`)).status).toBe(404);
  });

  it("stores nothing on bad input: no topic, bad cron, bad time zone, bad message", async () => {
    const topic = await topicWithOneQueue(server.url);
    const name = unique("bad");
    const cases: [Record<string, unknown>, number, string, RegExp][] = [
      [
        { topic: unique("nope"), cron: "* * * * *", message: { body: "x" } },
        400,
        "BAD_REQUEST",
        /^topic /,
      ],
      [{ topic, cron: "every minute", message: { body: "x" } }, 400, "BAD_REQUEST", /^cron /],
      [
        { topic, cron: "* * * * *", timezone: "Europe/Atlantis", message: { body: "x" } },
        400,
        "BAD_REQUEST",
        /^timezone /,
      ],
      [{ topic, cron: "* * * * *", message: { body: 7 } }, 400, "BAD_REQUEST", /^message: /],
      [
        { topic, cron: "* * * * *", message: { body: "x", msgId: "mine" } },
        400,
        "BAD_REQUEST",
        /^message\.msgId /,
      ],
    ];
    for (const [body, status, code, message] of cases) {
      const r = await call(server.url, "PUT", `/v1/schedules/${name}`, body);
      expect(r.status, JSON.stringify(body)).toBe(status);
      expect(r.body.error.code).toBe(code);
      expect(r.body.error.message).toMatch(message);
    }
    expect((await call(server.url, "GET", `/v1/schedules/${name}`)).status).toBe(404);
    const all = await call(server.url, "GET", "/v1/schedules?limit=1000");
    expect(all.body.schedules.map((s: { schedule: string }) => s.schedule)).not.toContain(name);
  });
});

describe("a restart in between", () => {
  const fixture = serverFixture("schedules-restart");

  it("sends a fire missed while the broker was down once on return, then goes on from now", async () => {
    let s = await fixture.start();
    const topic = await topicWithOneQueue(s.url);
    const name = unique("survivor");
    const put = await call(s.url, "PUT", `/v1/schedules/${name}`, {
      topic,
      cron: "* * * * * *",
      message: { body: "tick" },
    });
    expect(put.status).toBe(200);
    const early = await collect(s.url, topic, 2);
    expect(early).toHaveLength(2);
    await s.stop("SIGKILL");
    const downAt = Date.now();
    // Down for about 3.5 s: three or four fire times pass.
    await sleep(3500);
    s = await fixture.start();
    const upAt = Date.now();

    // What the restarted broker stores: the catch-up first, then a fire every second.
    const got = await collect(s.url, topic, early.length + 4);
    await call(s.url, "PUT", `/v1/schedules/${name}`, { paused: true });
    const info = (await call(s.url, "GET", `/v1/schedules/${name}`)).body;
    const ids = got.map((m) => m.msgId);
    expect(new Set(ids).size).toBe(ids.length);
    for (const m of got) expect(m.msgId).toBe(`${name}:${fireTimeOf(name, m)}`);
    const times = got.map((m) => fireTimeOf(name, m));
    expect([...times].sort((a, b) => a - b)).toEqual(times);

    const before = got.filter((m) => m.storedAt < downAt);
    const after = got.filter((m) => m.storedAt >= downAt);
    const lastBefore = fireTimeOf(name, before.at(-1)!);
    const [catchUp, ...regular] = after;
    expect(catchUp).toBeDefined();
    const catchUpAt = fireTimeOf(name, catchUp!);
    // One message for the fires missed while down: more than one fire time after the last
    // before the stop (the ones between were not replayed), and no later than the restart.
    expect(catchUpAt - lastBefore).toBeGreaterThanOrEqual(2000);
    expect(catchUpAt).toBeLessThanOrEqual(upAt);
    expect(catchUp!.storedAt).toBeGreaterThanOrEqual(downAt + 3000);
    // Then on from now: one fire a second, in order (a fire late past the next second folds
    // the one it passed, and the schedule counts every folded fire time).
    expect(regular.length).toBeGreaterThanOrEqual(2);
    const gaps = regular.map(
      (m, i) => fireTimeOf(name, m) - (i === 0 ? catchUpAt : fireTimeOf(name, regular[i - 1]!)),
    );
    expect(gaps.every((g) => g >= 1000 && g % 1000 === 0)).toBe(true);
    const folded = (catchUpAt - lastBefore) / 1000 - 1 + gaps.reduce((n, g) => n + g / 1000 - 1, 0);
    // The downtime folded at least two fire times into the catch-up.
    expect(folded).toBeGreaterThanOrEqual(2);
    expect(info.missedFires).toBeGreaterThanOrEqual(folded);
    await s.stop("SIGKILL");
  });
});

describe("the SDK's Admin", () => {
  it("puts, gets, lists, pauses, resumes, runs and deletes a schedule", async () => {
    const admin = new Admin({ endpoint: server.url });
    const topic = await topicWithOneQueue(server.url);
    const name = unique("sdk");
    const created = await admin.putSchedule(name, {
      topic,
      cron: "0 30 6 * * 1-5",
      timezone: "Europe/Paris",
      message: { body: "standup", tag: "team" },
    });
    expect(created).toMatchObject({
      schedule: name,
      topic,
      timezone: "Europe/Paris",
      paused: false,
    });
    expect(created.nextFireAt).toBeGreaterThan(Date.now());
    expect((await admin.getSchedule(name)).cron).toBe("0 30 6 * * 1-5");
    expect((await admin.listSchedules()).map((s) => s.schedule)).toContain(name);
    expect(await admin.pauseSchedule(name)).toMatchObject({ paused: true, nextFireAt: null });
    expect((await admin.resumeSchedule(name)).nextFireAt).toBe(created.nextFireAt);
    const run = await admin.runSchedule(name);
    expect(run.msgId.startsWith(`${name}:run:`)).toBe(true);
    await admin.deleteSchedule(name);
    await expect(admin.getSchedule(name)).rejects.toMatchObject({ code: "NOT_FOUND" });
    await expect(
      admin.putSchedule(name, { topic, cron: "61 * * * *", message: { body: "x" } }),
    ).rejects.toMatchObject({ code: "BAD_REQUEST" });
  });
});

describe("edgemq schedule (CLI)", () => {
  const BIN = join(REPO_ROOT, "bin", "edgemq.mjs");

  function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [BIN, ...args], {
        env: { ...process.env, EDGEMQ_ENDPOINT: server.url, EDGEMQ_TOKEN: "" },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d: Buffer) => (stdout += d));
      child.stderr.on("data", (d: Buffer) => (stderr += d));
      const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
      child.on("error", reject);
      child.on("close", (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
    });
  }

  async function ok(args: string[]): Promise<any> {
    const r = await cli(args);
    expect(r.code, `edgemq ${args.join(" ")}\n${r.stderr}`).toBe(0);
    return args.includes("--json") ? JSON.parse(r.stdout) : r.stdout;
  }

  it("puts, lists, gets, pauses, resumes, runs and deletes, in tables and in JSON", async () => {
    const topic = await topicWithOneQueue(server.url);
    const name = unique("cli");
    const put = await ok([
      "schedule",
      "put",
      name,
      "nightly",
      "report",
      "--topic",
      topic,
      "--cron",
      "0 2 * * *",
      "--timezone",
      "Europe/Paris",
      "--tag",
      "nightly",
    ]);
    expect(put).toMatch(new RegExp(`^schedule\\s+${name}$`, "m"));
    expect(put).toMatch(/^timezone\s+Europe\/Paris$/m);
    expect(put).toMatch(/^state\s+active$/m);
    const info = await ok(["schedule", "get", name, "--json"]);
    expect(info).toMatchObject({
      topic,
      cron: "0 2 * * *",
      message: { body: "nightly report", tag: "nightly" },
    });
    const list = await ok(["schedule", "list"]);
    expect(list.split("\n")[0]).toMatch(/^SCHEDULE\s+TOPIC\s+CRON\s+TIMEZONE\s+STATE\s+NEXT_FIRE/);
    expect(list).toMatch(
      new RegExp(`^${name}\\s+${topic}\\s+0 2 \\* \\* \\*\\s+Europe/Paris\\s+active`, "m"),
    );
    expect(await ok(["schedule", "pause", name])).toMatch(/^state\s+paused$/m);
    expect((await ok(["schedule", "resume", name, "--json"])).nextFireAt).toBe(info.nextFireAt);
    // An update with options only keeps the rest.
    const moved = await ok(["schedule", "put", name, "--cron", "0 3 * * *", "--json"]);
    expect(moved).toMatchObject({ cron: "0 3 * * *", message: { body: "nightly report" } });
    const ran = await ok(["schedule", "run", name, "--json"]);
    expect(ran).toMatchObject({ schedule: name, status: "stored" });
    expect(ran.msgId).toMatch(new RegExp(`^${name}:run:\\d+$`));
    expect(await ok(["schedule", "delete", name])).toBe(`deleted schedule ${name}\n`);
    const gone = await cli(["schedule", "get", name]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain("NOT_FOUND");
  });

  it("exits 1 with the broker's code for a bad cron, and 2 for a usage mistake", async () => {
    const topic = await topicWithOneQueue(server.url);
    const bad = await cli([
      "schedule",
      "put",
      unique("cli"),
      "x",
      "--topic",
      topic,
      "--cron",
      "* * *",
    ]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^edgemq: BAD_REQUEST: cron must have 5 fields/);
    for (const args of [
      ["schedule", "put"],
      ["schedule", "put", "s", "--tag", "x"],
      ["schedule", "run"],
    ]) {
      const r = await cli(args);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stderr).toContain("edgemq: USAGE: ");
    }
  });
});
