/**
 * One broker per data directory, and no orphans: `npm start` (the real npm,
 * scripts/serve.ts, workerd) with real signals sent the way a terminal or a
 * supervisor sends them. workerd dies with its parent however the parent
 * dies; a second start on a directory in use refuses; the start after a
 * crash finds the directory free; Ctrl-C still shuts down gracefully.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { DataDirInUseError, startLocalServer } from "../../scripts/local-server.ts";
import { call } from "./server-fixture.ts";
import { freePort, isAlive, listening, npmStart, parentOf, within } from "./npm-start.ts";

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function dataDir(): string {
  const d = mkdtempSync(join(tmpdir(), "edgemq-one-broker-"));
  dirs.push(d);
  return d;
}

/** Whether anything still answers on `url` (a refused connection: nothing). */
async function answers(url: string): Promise<boolean> {
  return fetch(`${url}/v1/health`, { signal: AbortSignal.timeout(3000) }).then(
    () => true,
    () => false,
  );
}

describe("npm start and its data directory", () => {
  it("leaves no workerd behind when the whole npm start process group is SIGKILLed, and the next start on the directory succeeds with what was acknowledged", async () => {
    const dir = dataDir();
    const first = npmStart(dir, await freePort());
    const { url, workerd } = await listening(first);
    await call(url, "PUT", "/v1/topics/crashed", { queues: 1 });
    const sent = await call(url, "POST", "/v1/topics/crashed/messages", {
      messages: [{ body: "before-the-kill", msgId: "crashed-1" }],
    });
    expect(sent.status).toBe(200);

    first.signalGroup("SIGKILL");
    await first.exited;
    // workerd is in a group of its own: only the kernel's parent-death signal reaches it.
    expect(await within(5000, () => !isAlive(workerd))).toBe(true);
    expect(await answers(url)).toBe(false);

    const second = npmStart(dir, await freePort());
    const again = await listening(second);
    const pulled = await call(again.url, "GET", "/v1/topics/crashed/queues/0/messages?offset=0");
    expect(pulled.body.messages.map((m: { body: string }) => m.body)).toEqual(["before-the-kill"]);
    second.signalGroup("SIGTERM");
    expect((await second.exited).code).toBe(0);
    expect(isAlive(again.workerd)).toBe(false);
  });

  it("takes workerd down when serve.ts alone is SIGKILLed", async () => {
    const s = npmStart(dataDir(), await freePort());
    const { url, workerd } = await listening(s);
    const serveTs = parentOf(workerd);
    expect(serveTs).not.toBe(s.child.pid); // npm's child (serve.ts, exec'd by sh), not npm
    process.kill(serveTs, "SIGKILL");
    expect(await within(5000, () => !isAlive(workerd))).toBe(true);
    expect(await answers(url)).toBe(false);
    await s.exited;
  });

  it("refuses a second npm start on a directory in use with a clear message and a non-zero exit, and the first keeps serving", async () => {
    const dir = dataDir();
    const first = npmStart(dir, await freePort());
    const { url, workerd } = await listening(first);

    const second = npmStart(dir, await freePort());
    const exit = await Promise.race([
      second.exited,
      new Promise<"still running">((r) => setTimeout(() => r("still running"), 30_000)),
    ]);
    expect(exit).not.toBe("still running");
    expect(exit).toMatchObject({ code: expect.any(Number) });
    expect(exit).not.toMatchObject({ code: 0 });
    expect(second.output()).toContain(
      `edgemq: data directory ${dir} is in use by another edgemq broker (workerd pid ${workerd}, ${url}`,
    );
    expect(second.output()).not.toMatch(/listening on/);

    expect((await call(url, "GET", "/v1/health")).status).toBe(200);
    first.signalGroup("SIGTERM");
    expect((await first.exited).code).toBe(0);
  });

  it("shuts down gracefully on Ctrl-C (SIGINT to the whole foreground group): the request in flight is answered, exit 0, no workerd left", async () => {
    const s = npmStart(dataDir(), await freePort());
    const { url, workerd } = await listening(s);
    await call(url, "PUT", "/v1/topics/ctrl-c", { queues: 1 });
    const inFlight = call(url, "GET", "/v1/topics/ctrl-c/queues/0/messages?offset=0&waitMs=2000");
    await new Promise((r) => setTimeout(r, 300));

    s.signalGroup("SIGINT");
    const answered = await inFlight;
    expect(answered.status).toBe(200);
    expect(answered.body).toMatchObject({ messages: [], nextOffset: 0 });
    const exit = await s.exited;
    expect(s.output()).toMatch(/SIGINT: shutting down/);
    expect(s.output()).toMatch(/stopped in \d+ ms/);
    expect(exit.code).toBe(0);
    expect(isAlive(workerd)).toBe(false);
  });
});

describe("startLocalServer (the servers of tests, benchmarks and the chaos run)", () => {
  it("refuses a data directory another live server holds, and takes it once that one is gone", async () => {
    const dir = dataDir();
    const first = await startLocalServer({ port: 0, dataDir: dir, quiet: true });
    expect(first.guarded).toBe(true);
    const refused = await startLocalServer({ port: 0, dataDir: dir, quiet: true }).catch(
      (e: unknown) => e,
    );
    expect(refused).toBeInstanceOf(DataDirInUseError);
    expect((refused as DataDirInUseError).holder).toMatchObject({ pid: first.pid, url: first.url });
    await first.stop("SIGKILL");
    const next = await startLocalServer({ port: 0, dataDir: dir, quiet: true });
    expect((await call(next.url, "GET", "/v1/health")).status).toBe(200);
    await next.stop("SIGTERM", { killAfterMs: 5000 });
  });
});
