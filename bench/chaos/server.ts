/**
 * The server under test: workerd started detached (its own process group)
 * on a fixed port and data directory, so clients reconnect to the same
 * address after each restart, and it can be killed or stopped as a whole.
 */
import { createServer } from "node:net";
import { type LocalServer, startLocalServer } from "../../scripts/local-server.ts";
import { sleep } from "./config.ts";

/**
 * A free port below the kernel's ephemeral range (32768+ on Linux), so that no
 * other process binding port 0 can be handed it while our server restarts.
 */
export async function freePort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const candidate = 20_000 + Math.floor(Math.random() * 12_000);
    const ok = await new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once("error", () => resolve(false));
      s.listen(candidate, "127.0.0.1", () => s.close(() => resolve(true)));
    });
    if (ok) return candidate;
  }
  throw new Error("no free port in 20000..31999");
}

export class ChaosServer {
  readonly port: number;
  readonly dataDir: string;
  #server: LocalServer | undefined;

  constructor(port: number, dataDir: string) {
    this.port = port;
    this.dataDir = dataDir;
  }

  /** Starts (or restarts) the server on its port and data; answers how long that took. */
  async start(): Promise<number> {
    const t0 = Date.now();
    for (let attempt = 1; ; attempt++) {
      try {
        this.#server = await startLocalServer({
          port: this.port,
          dataDir: this.dataDir,
          quiet: true,
          detached: true,
          startupTimeoutMs: 60_000,
        });
        return Date.now() - t0;
      } catch (e) {
        // A start that failed is a finding only if it keeps failing.
        if (attempt >= 3) throw e;
        await sleep(500);
      }
    }
  }

  /** Signals workerd's whole process group (it was started detached: its own group). */
  signal(sig: NodeJS.Signals): void {
    if (!this.#server) return;
    try {
      process.kill(-this.#server.pid, sig);
    } catch {
      // already gone
    }
  }

  /** SIGKILLs the whole group and waits until the server is gone. */
  async kill(): Promise<void> {
    this.signal("SIGKILL");
    await this.#server?.stop("SIGKILL");
  }

  /** Ends the run's server: resumed first if it was stopped, then killed. */
  async close(): Promise<void> {
    this.signal("SIGCONT");
    await this.#server?.stop("SIGKILL");
  }

  /** What the server last wrote to stderr (for a failed run's report). */
  stderr(): string | undefined {
    return this.#server?.stderr().slice(-1500);
  }
}
