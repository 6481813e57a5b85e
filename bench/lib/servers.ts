/** Starting the servers a benchmark measures: edgemq itself and the bare ceiling worker. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { type LocalServer, startLocalServer } from "../../scripts/local-server.ts";
import { HttpClient } from "./http.ts";

export const CEILING_ENTRY = path.resolve(import.meta.dirname, "../ceiling-worker/index.ts");

export interface BenchServer {
  server: LocalServer;
  client: HttpClient;
  /** Stops the server and removes its data. */
  close(): Promise<void>;
}

/**
 * Starts a server on a fresh data directory (under $BENCH_DIR or the OS temp
 * dir, both on the same disk here): edgemq by default ($EDGEMQ_ENTRY names
 * another build of it, to compare a change), or another entry.
 */
export async function startBenchServer(
  opts: { entry?: string; maxSockets?: number } = {},
): Promise<BenchServer> {
  const base = process.env.BENCH_DIR ?? tmpdir();
  const entry = opts.entry ?? (process.env.EDGEMQ_ENTRY || undefined);
  const dataDir = mkdtempSync(path.join(base, "edgemq-bench-"));
  const server = await startLocalServer({
    port: 0,
    dataDir,
    quiet: true,
    ...(entry !== undefined && { entry }),
  });
  const client = new HttpClient(server.url, { maxSockets: opts.maxSockets ?? 128 });
  return {
    server,
    client,
    async close() {
      client.close();
      await server.stop("SIGTERM", { killAfterMs: 5000 });
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
