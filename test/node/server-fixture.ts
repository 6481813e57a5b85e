/**
 * A data directory and the real local servers started on it for one test
 * file: every server is SIGKILLed and the directory removed after the file.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll } from "vitest";
import { type LocalServer, startLocalServer } from "../../scripts/local-server.ts";

export function serverFixture(prefix: string) {
  const dataDir = mkdtempSync(join(tmpdir(), `edgemq-${prefix}-`));
  const servers: LocalServer[] = [];
  afterAll(async () => {
    for (const s of servers) await s.stop("SIGKILL");
    rmSync(dataDir, { recursive: true, force: true });
  });
  return {
    dataDir,
    /** Starts a server on the fixture's data directory (a restart, when one ran before). */
    async start(): Promise<LocalServer> {
      const s = await startLocalServer({ port: 0, dataDir, quiet: true });
      servers.push(s);
      return s;
    },
  };
}

/** One JSON call to a server; the body is parsed when there is one. */
export async function call(base: string, method: string, path: string, body?: unknown) {
  const res = await fetch(base + path, {
    method,
    headers: { "content-type": "application/json" },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : undefined) as any };
}
