/**
 * Graceful shutdown of `npm start` (scripts/serve.ts) on SIGTERM, as api.md
 * promises: stop accepting, answer the requests in flight, exit within 10 s.
 * Runs the script itself under Node 22 (node_modules/.bin/node), as npm does.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

const ROOT = resolve(import.meta.dirname, "../..");
const NODE = join(ROOT, "node_modules/.bin/node");
const dirs: string[] = [];
const children: ChildProcess[] = [];

afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A port that was free a moment ago (serve.ts is given a fixed PORT, as a user would). */
function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

interface Served {
  child: ChildProcess;
  url: string;
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
}

/**
 * Starts `node scripts/serve.ts` (on a new data directory unless one is
 * given) and resolves once it says it is listening.
 */
async function serve(dataDir?: string): Promise<Served> {
  if (dataDir === undefined) {
    dataDir = mkdtempSync(join(tmpdir(), "edgemq-shutdown-"));
    dirs.push(dataDir);
  }
  const port = await freePort();
  const child = spawn(NODE, ["scripts/serve.ts"], {
    cwd: ROOT,
    env: {
      ...process.env,
      PORT: String(port),
      DATA_DIR: dataDir,
      ADMIN_TOKEN: "",
      TOKEN_SECRET: "",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  let out = "";
  child.stdout?.on("data", (d: Buffer) => (out += String(d)));
  child.stderr?.on("data", (d: Buffer) => (out += String(d)));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>(
    (res) => child.once("exit", (code, signal) => res({ code, signal, at: Date.now() })),
  );
  const deadline = Date.now() + 60_000;
  while (!/listening on (http:\/\/\S+)/.test(out)) {
    if (child.exitCode !== null || Date.now() > deadline)
      throw new Error(`serve.ts did not start:\n${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const url = /listening on (http:\/\/\S+)/.exec(out)![1]!;
  return { child, url, output: () => out, exited };
}

async function call(url: string, method: string, path: string, body?: unknown) {
  const res = await fetch(url + path, {
    method,
    headers: { "content-type": "application/json" },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: (await res.json()) as any };
}

async function waitFor(text: () => string, re: RegExp, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!re.test(text()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
}

describe("npm start on SIGTERM", () => {
  it("answers the request in flight, stops accepting new ones, and exits within 10 s", async () => {
    const s = await serve();
    await call(s.url, "PUT", "/v1/topics/shutdown", { queues: 1 });
    // In flight: a long-poll that a message sent during shutdown answers.
    const inFlight = call(
      s.url,
      "GET",
      "/v1/topics/shutdown/queues/0/messages?offset=0&waitMs=4000",
    );
    await new Promise((r) => setTimeout(r, 300));

    const t0 = Date.now();
    s.child.kill("SIGTERM");
    await waitFor(s.output, /SIGTERM: shutting down/, 5000);
    expect(s.output()).toMatch(/SIGTERM: shutting down/);

    // A connection opened during shutdown, while the long-poll still runs, is not served.
    const late = fetch(`${s.url}/v1/health`, { signal: AbortSignal.timeout(12_000) }).then(
      (r) => r.status,
      () => "refused",
    );

    const answered = await inFlight;
    expect(answered.status).toBe(200);
    expect(answered.body).toMatchObject({ messages: [], nextOffset: 0 });
    expect(await late).toBe("refused");

    const exit = await s.exited;
    expect(exit.code).toBe(0);
    expect(exit.at - t0).toBeLessThan(10_000);
    expect(s.output()).toMatch(/stopped in \d+ ms/);
  });

  it("keeps what was acknowledged before SIGTERM, for the next start on the same data directory", async () => {
    const s = await serve();
    await call(s.url, "PUT", "/v1/topics/kept", { queues: 1 });
    const sent = await call(s.url, "POST", "/v1/topics/kept/messages", {
      messages: Array.from({ length: 20 }, (_, i) => ({ body: `k${i}`, msgId: `kept-${i}` })),
    });
    expect(sent.status).toBe(200);
    s.child.kill("SIGTERM");
    expect((await s.exited).code).toBe(0);

    // Same data directory, new process.
    const again = await serve(dirs[dirs.length - 1]!);
    const pulled = await call(
      again.url,
      "GET",
      "/v1/topics/kept/queues/0/messages?offset=0&max=100",
    );
    expect(pulled.body.messages.map((m: { body: string }) => m.body)).toEqual(
      Array.from({ length: 20 }, (_, i) => `k${i}`),
    );
    again.child.kill("SIGTERM");
    await again.exited;
  });

  it("exits within 10 s even while a long-poll would hold it for 20 s", async () => {
    const s = await serve();
    await call(s.url, "PUT", "/v1/topics/held", { queues: 1 });
    const held = call(s.url, "GET", "/v1/topics/held/queues/0/messages?offset=0&waitMs=20000").then(
      (r) => r.status,
      () => "cut",
    );
    await new Promise((r) => setTimeout(r, 300));
    const t0 = Date.now();
    s.child.kill("SIGTERM");
    const exit = await s.exited;
    expect(exit.code).toBe(0);
    expect(exit.at - t0).toBeLessThan(10_000);
    // The long-poll was cut short when workerd was killed after the grace period.
    expect(await held).toBe("cut");
  });
});
