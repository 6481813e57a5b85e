/**
 * The chaos run's HTTP: the benches' client (bench/lib/http.ts) with one
 * connection per request (a killed server leaves no stale sockets behind)
 * and every request bounded by a timeout.
 */
import { HttpClient, type JsonAnswer } from "../lib/http.ts";
import { REQUEST_TIMEOUT_MS, sleep } from "./config.ts";

export type Answer = JsonAnswer;

export class ChaosClient {
  readonly #http: HttpClient;

  constructor(port: number) {
    this.#http = new HttpClient(`http://127.0.0.1:${port}`, { keepAlive: false });
  }

  /** One request; rejects when no answer came within `timeoutMs` (or the connection failed). */
  call(method: string, path: string, body?: unknown, timeoutMs = REQUEST_TIMEOUT_MS) {
    return this.#http.call(method, path, body, { timeoutMs });
  }

  /** A request that must succeed with 200 sooner or later: retried through faults, bounded by `ms`. */
  async must(method: string, path: string, body?: unknown, ms = 60_000): Promise<any> {
    const deadline = Date.now() + ms;
    let last = "";
    while (Date.now() < deadline) {
      try {
        const r = await this.call(method, path, body);
        if (r.status === 200) return r.body;
        last = `${r.status} ${JSON.stringify(r.body).slice(0, 200)}`;
      } catch (e) {
        last = String(e);
      }
      await sleep(200);
    }
    throw new Error(`${method} ${path} did not succeed within ${ms} ms: ${last}`);
  }

  close(): void {
    this.#http.close();
  }
}
