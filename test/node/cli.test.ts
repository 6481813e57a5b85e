/**
 * The `edgemq` CLI run as a subprocess (through bin/edgemq.mjs, as `npx
 * edgemq` runs it) against the real local server.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LocalServer, REPO_ROOT, startLocalServer } from "../../scripts/local-server.ts";

const ADMIN = "cli-admin";
const BIN = join(REPO_ROOT, "bin", "edgemq.mjs");
const dataDir = mkdtempSync(join(tmpdir(), "edgemq-cli-"));
let server: LocalServer;
let n = 0;
const unique = (prefix: string) => `${prefix}-${Date.now().toString(36)}-${(n++).toString(36)}`;

beforeAll(async () => {
  server = await startLocalServer({
    port: 0,
    dataDir,
    env: { ADMIN_TOKEN: ADMIN, TOKEN_SECRET: "cli-secret" },
    quiet: true,
  });
});

afterAll(async () => {
  await server?.stop("SIGTERM", { killAfterMs: 5000 });
  rmSync(dataDir, { recursive: true, force: true });
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

interface RunOptions {
  input?: string;
  env?: Record<string, string | undefined>;
  /** Called with each stderr chunk (to act once the CLI says it is ready). */
  onStderr?: (text: string) => void;
  node?: string;
  timeoutMs?: number;
}

/** Runs the CLI with the server's endpoint and admin token in the environment; killed after `timeoutMs`. */
function cli(args: string[], opts: RunOptions = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(opts.node ?? process.execPath, [BIN, ...args], {
      env: { ...process.env, EDGEMQ_ENDPOINT: server.url, EDGEMQ_TOKEN: ADMIN, ...opts.env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d));
    child.stderr.on("data", (d: Buffer) => {
      stderr += d;
      opts.onStderr?.(stderr);
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 30_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(opts.input ?? "");
  });
}

/** Runs and expects exit 0; answers stdout parsed as JSON when `--json` is among the args. */
async function ok(args: string[], opts?: RunOptions): Promise<any> {
  const r = await cli(args, opts);
  expect(r.code, `edgemq ${args.join(" ")}\n${r.stderr}`).toBe(0);
  return args.includes("--json") ? JSON.parse(r.stdout) : r.stdout;
}

async function api(method: string, path: string, body?: unknown): Promise<any> {
  const res = await fetch(server.url + path, {
    method,
    headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
  return res.json();
}

describe("edgemq CLI", () => {
  it("creates, lists, describes and deletes a topic, in tables and in JSON", async () => {
    const topic = unique("cli");
    const created = await ok(["topic", "create", topic, "--queues", "3", "--retention", "2d"]);
    expect(created).toMatch(new RegExp(`^topic\\s+${topic}$`, "m"));
    expect(created).toMatch(/^retention\s+2d$/m);
    const list = await ok(["topic", "list"]);
    expect(list.split("\n")[0]).toMatch(/^TOPIC\s+QUEUES\s+MESSAGES/);
    expect(list).toMatch(new RegExp(`^${topic}\\s+3\\s+0`, "m"));
    const described = await ok(["topic", "describe", topic, "--json"]);
    expect(described).toMatchObject({ topic, queues: 3, retentionMs: 172_800_000 });
    expect(described.queueStats).toHaveLength(3);
    const listed = await ok(["topic", "list", "--json"]);
    expect(listed.topics.map((t: { topic: string }) => t.topic)).toContain(topic);
    await ok(["topic", "delete", topic]);
    const gone = await cli(["topic", "describe", topic]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain("TOPIC_NOT_FOUND");
  });

  it("sends a message with tag, keys and properties, and tail --from-beginning --max 1 prints it", async () => {
    const topic = unique("tail");
    await ok(["topic", "create", topic, "--queues", "2"]);
    const sent = await ok([
      "send",
      topic,
      "hello",
      "there",
      "--tag",
      "TagA",
      "-k",
      "order-1",
      "-p",
      "region=eu",
      "--json",
    ]);
    expect(sent.results[0]).toMatchObject({ status: "stored" });
    const tail = await cli(["tail", topic, "--from-beginning", "--max", "1"]);
    expect(tail.code, tail.stderr).toBe(0);
    expect(tail.stdout).toBe("hello there\n");
    expect(tail.stderr).toContain("processed a total of 1 messages");
    const json = await cli(["tail", topic, "--from-beginning", "--max", "1", "--json"]);
    expect(JSON.parse(json.stdout.trim())).toMatchObject({
      body: "hello there",
      tag: "TagA",
      keys: ["order-1"],
      properties: { region: "eu" },
    });
  });

  it("tail from now prints only what is sent after it started", async () => {
    const topic = unique("live");
    await ok(["topic", "create", topic, "--queues", "4"]);
    await ok(["send", topic, "before"]);
    let sent: Promise<unknown> | undefined;
    const tail = await cli(["tail", topic, "--max", "1", "--timeout", "20s"], {
      onStderr: (text) => {
        if (!sent && text.includes("following")) sent = ok(["send", topic, "after"]);
      },
    });
    await sent;
    expect(tail.code, tail.stderr).toBe(0);
    expect(tail.stdout).toBe("after\n");
  });

  it("reads messages from stdin, one per line", async () => {
    const topic = unique("stdin");
    await ok(["topic", "create", topic, "--queues", "1"]);
    const sent = await ok(["send", topic, "--json"], { input: "one\ntwo\n\nthree\n" });
    expect(sent.results.map((r: { offset: number }) => r.offset)).toEqual([0, 1, 2]);
    const tail = await cli(["tail", topic, "--from-beginning", "--max", "3"]);
    expect(tail.stdout).toBe("one\ntwo\nthree\n");
  });

  it("group describe shows lag per queue after tail --group commits what it printed", async () => {
    const topic = unique("lag");
    const group = unique("g");
    await ok(["topic", "create", topic, "--queues", "1"]);
    await ok(["send", topic, "--json"], { input: "a\nb\nc\n" });
    const tail = await cli(["tail", topic, "--group", group, "--max", "1"]);
    expect(tail.stdout).toBe("a\n");
    const described = await ok(["group", "describe", group, "--json"]);
    expect(described.topics[topic]).toEqual([
      expect.objectContaining({ queue: 0, offset: 1, maxOffset: 3, lag: 2 }),
    ]);
    const human = await ok(["group", "describe", group]);
    expect(human).toMatch(/^total lag\s+2$/m);
    expect(human).toMatch(/^TOPIC\s+QUEUE\s+OFFSET\s+MAX_OFFSET\s+LAG/m);
    expect(human).toMatch(new RegExp(`^${topic}\\s+0\\s+1\\s+3\\s+2\\s`, "m"));
    // The next member of the group goes on from the commit.
    const next = await cli(["tail", topic, "--group", group, "--max", "2"]);
    expect(next.stdout).toBe("b\nc\n");
  });

  it("resets a group's offsets to a time and to either end", async () => {
    const topic = unique("reset");
    const group = unique("g");
    await ok(["topic", "create", topic, "--queues", "2"]);
    await ok(["send", topic, "--json"], { input: "x\ny\nz\n" });
    const latest = await ok(["offset", "reset", group, topic, "--to", "latest", "--json"]);
    const lag = async () => {
      const g = await ok(["group", "describe", group, "--json"]);
      return g.topics[topic].reduce((s: number, q: { lag: number }) => s + q.lag, 0);
    };
    expect(latest.offsets).toHaveLength(2);
    expect(await lag()).toBe(0);
    const back = await ok(["offset", "reset", group, topic, "--to-time", "now-1h"]);
    expect(back).toContain(`reset ${group} on ${topic} to `);
    expect(await lag()).toBe(3);
    await ok([
      "offset",
      "reset",
      "--group",
      group,
      "--topic",
      topic,
      "--to-time",
      String(Date.now() + 60_000),
    ]);
    expect(await lag()).toBe(0);
    await ok(["offset", "reset", group, topic, "--to", "earliest"]);
    expect(await lag()).toBe(3);
  });

  it("queries by id (with each group's state), by key and by time", async () => {
    const topic = unique("query");
    await ok(["topic", "create", topic]);
    const from = Date.now() - 1;
    const sent = await ok(["send", topic, "findme", "-k", "k-1", "--msg-id", "my-id-1", "--json"]);
    expect(sent.results[0]).toMatchObject({ msgId: "my-id-1", status: "stored" });
    const byId = await ok(["query", topic, "--id", "my-id-1", "--json"]);
    expect(byId).toMatchObject({ msgId: "my-id-1", body: "findme", keys: ["k-1"] });
    expect(await ok(["query", topic, "--id", "my-id-1"])).toMatch(/^body\s+findme$/m);
    const byKey = await ok(["query", topic, "--key", "k-1", "--json"]);
    expect(byKey.messages.map((m: { msgId: string }) => m.msgId)).toEqual(["my-id-1"]);
    const byTime = await ok(["query", topic, "--from", String(from), "--to", "now+1m", "--json"]);
    expect(byTime.messages.map((m: { msgId: string }) => m.msgId)).toEqual(["my-id-1"]);
    const table = await ok(["query", topic, "--key", "k-1"]);
    expect(table).toMatch(/MSG_ID/);
    expect(table).toContain("my-id-1");
    const missing = await cli(["query", topic, "--id", "nope"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("MESSAGE_NOT_FOUND");
  });

  it("lists and resends dead letters", async () => {
    const topic = unique("dlq");
    const group = unique("dead");
    await ok(["topic", "create", topic, "--queues", "1"]);
    await ok(["group", "create", group, "--max-reconsume-times", "0"]);
    await ok(["send", topic, "poison"]);
    const got = await api("POST", `/v1/groups/${group}/topics/${topic}/receive`, { max: 1 });
    await api("POST", `/v1/groups/${group}/topics/${topic}/nack`, {
      receipts: [got.messages[0].receipt],
    });
    const dlq = await ok(["dlq", "list", group, "--json"]);
    expect(dlq.messages.map((m: { body: string }) => m.body)).toEqual(["poison"]);
    expect(await ok(["dlq", "list", group])).toContain("poison");
    const resent = await ok(["dlq", "resend", group, "--all", "--json"]);
    expect(resent.resent).toEqual([dlq.messages[0].msgId]);
    expect((await ok(["dlq", "list", group, "--json"])).messages).toEqual([]);
  });

  it("mints a token that works for what it allows and nothing else", async () => {
    const topic = unique("tok");
    await ok(["topic", "create", topic]);
    const token = (
      await ok(["token", "mint", "--sub", "web", "--publish", topic, "--ttl", "10m"])
    ).trim();
    expect(token.split(".")).toHaveLength(3);
    await ok(["send", topic, "with a scoped token"], { env: { EDGEMQ_TOKEN: token } });
    const denied = await cli(["topic", "list", "--token", token]);
    expect(denied.code).toBe(1);
    expect(denied.stderr).toContain("FORBIDDEN");
  });

  it("exits 3 with UNAVAILABLE when the broker cannot be reached", async () => {
    const r = await cli(["topic", "list", "--endpoint", "http://127.0.0.1:59999"]);
    expect(r.code).toBe(3);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/^edgemq: UNAVAILABLE: /);
    const json = await cli(["topic", "list", "--json"], {
      env: { EDGEMQ_ENDPOINT: "http://127.0.0.1:59999" },
    });
    expect(json.code).toBe(3);
    expect(JSON.parse(json.stderr).error.code).toBe("UNAVAILABLE");
  });

  it("exits 1 with the broker's code for a refused call, and 2 for a usage mistake", async () => {
    const bad = await cli(["topic", "list", "--token", "wrong"]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("edgemq: UNAUTHORIZED: ");
    const invalid = await cli(["topic", "create", "bad name!"]);
    expect(invalid.code).toBe(1);
    expect(invalid.stderr).toContain("INVALID_NAME");
    for (const args of [
      ["frobnicate"],
      ["topic", "create"],
      ["send", "t", "x", "--nope"],
      ["offset", "reset", "g", "t"],
    ]) {
      const r = await cli(args);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stderr, args.join(" ")).toContain("edgemq: USAGE: ");
    }
    const help = await cli(["--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("group describe");
  });

  it.skipIf(!existsSync("/usr/bin/node"))(
    "runs from a Node too old to strip types by using the project's Node",
    async () => {
      const r = await cli(["topic", "list", "--json"], { node: "/usr/bin/node" });
      expect(r.code, r.stderr).toBe(0);
      expect(Array.isArray(JSON.parse(r.stdout).topics)).toBe(true);
    },
  );
});
