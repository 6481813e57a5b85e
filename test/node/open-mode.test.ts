/**
 * Issue 16, item 5, over real HTTP: `npm start`'s open mode (no secrets)
 * against the real local server. A request with a rebound Host or a
 * non-JSON body is refused and stores nothing, while the CLI, which sends
 * JSON and no Origin, keeps working without a token.
 * (test/browser/open-mode.test.ts does the same from Chromium.)
 */
import { spawn } from "node:child_process";
import { request } from "node:http";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { REPO_ROOT } from "../../scripts/local-server.ts";
import { call, serverFixture } from "./server-fixture.ts";

const fixture = serverFixture("open-mode");
/** One broker for the file (one broker per data directory). */
let running: Awaited<ReturnType<typeof fixture.start>> | undefined;
const start = async () => (running ??= await fixture.start());
const BIN = join(REPO_ROOT, "bin", "edgemq.mjs");
let n = 0;
const unique = (p: string) => `${p}-${Date.now().toString(36)}-${n++}`;

/** One raw request with any headers (node:http lets Host be set, unlike fetch). */
function raw(
  port: number,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: string,
): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port,
        method,
        path,
        headers:
          body === undefined ? headers : { ...headers, "content-length": Buffer.byteLength(body) },
      },
      (res) => {
        let text = "";
        res.on("data", (d) => (text += d));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined }),
        );
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

function cli(
  endpoint: string,
  args: string[],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env, EDGEMQ_ENDPOINT: endpoint };
    delete env.EDGEMQ_TOKEN;
    const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ["pipe", "pipe", "pipe"] });
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
    child.stdin.end("");
  });
}

async function stored(base: string, topic: string): Promise<number> {
  const r = await call(base, "GET", `/v1/topics/${topic}`);
  return (r.body.queueStats as { messages: number }[]).reduce((s, q) => s + q.messages, 0);
}

describe("the open local server", () => {
  it("refuses a rebound Host, a foreign Origin and non-JSON bodies, storing nothing", async () => {
    const s = await start();
    const topic = unique("open");
    expect((await call(s.url, "PUT", `/v1/topics/${topic}`, { queues: 1 })).status).toBe(200);
    const body = JSON.stringify({ messages: [{ body: "web page" }] });
    const path = `/v1/topics/${topic}/messages`;
    const json = { "content-type": "application/json" };
    const cases: [Record<string, string>, number, string][] = [
      [{ host: "rebound.example:8787", ...json }, 403, "FORBIDDEN"],
      [{ host: `attacker.localhost.example:${s.port}`, ...json }, 403, "FORBIDDEN"],
      [{ host: `127.0.0.1:${s.port}`, origin: "https://evil.example", ...json }, 403, "FORBIDDEN"],
      [
        { host: `127.0.0.1:${s.port}`, "content-type": "text/plain" },
        415,
        "UNSUPPORTED_MEDIA_TYPE",
      ],
      [{ host: `127.0.0.1:${s.port}` }, 415, "UNSUPPORTED_MEDIA_TYPE"],
    ];
    for (const [headers, status, code] of cases) {
      const r = await raw(s.port, "POST", path, headers, body);
      expect([r.status, r.body?.error?.code], JSON.stringify(headers)).toEqual([status, code]);
    }
    expect((await raw(s.port, "GET", "/console", { host: "rebound.example" })).status).toBe(403);
    expect(await stored(s.url, topic)).toBe(0);
    // The same request as a client outside a browser sends it is taken.
    expect(
      (await raw(s.port, "POST", path, { host: `localhost:${s.port}`, ...json }, body)).status,
    ).toBe(200);
    expect(await stored(s.url, topic)).toBe(1);
  });

  it("keeps the CLI working without a token", async () => {
    const s = await start();
    const topic = unique("cli-open");
    const run = async (...args: string[]) => {
      const r = await cli(s.url, args);
      expect(r.code, `edgemq ${args.join(" ")}\n${r.stderr}`).toBe(0);
      return r.stdout;
    };
    await run("topic", "create", topic, "--queues", "2");
    await run("send", topic, "hello", "--tag", "T", "-k", "k1");
    expect(await run("tail", topic, "--from-beginning", "--max", "1")).toBe("hello\n");
    const found = JSON.parse(await run("query", topic, "--key", "k1", "--json"));
    expect(found.messages.map((m: { body: string }) => m.body)).toEqual(["hello"]);
    // The check-back signing secret is printed when made, and not on an update.
    const pg = unique("pg");
    const made = await run("producer-group", "set", pg, "--check-url", "http://127.0.0.1:9/check");
    expect(made).toMatch(/^signing secret\s+[A-Za-z0-9_-]{43,}\s+\(shown once\)$/m);
    expect(await run("producer-group", "set", pg, "--max-checks", "3")).not.toContain("secret");
    const rotated = JSON.parse(await run("producer-group", "set", pg, "--rotate-secret", "--json"));
    expect(rotated.signingSecret).toMatch(/^[A-Za-z0-9_-]{43,}$/);
    expect(made).not.toContain(rotated.signingSecret);
    await run("topic", "purge", topic);
    await run("topic", "delete", topic);
  });
});
