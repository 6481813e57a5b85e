/**
 * A long-poll whose HTTP client is gone leaves no parked work behind (issue
 * 16, item 6), over real HTTP against the local server: the gateway sees the
 * request aborted (`enable_request_signal`), closes its watchers, and the
 * shard forgets the waits (queueStats' `parkedWaits`) without any message
 * arriving. The clients reset their connections: local workerd notices a
 * reset at once, while a client's graceful half-close (FIN) goes unnoticed
 * until the wait ends (HTTP/1.1 allows half-closed requests).
 */
import { type ClientRequest, Agent, request } from "node:http";
import { describe, expect, it } from "vitest";
import { call, serverFixture } from "./server-fixture.ts";

const fixture = serverFixture("parked");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function parkedWaits(base: string, topic: string): Promise<number> {
  const r = await call(base, "GET", `/v1/topics/${topic}`);
  return r.body.queueStats[0].parkedWaits;
}

/** Polls (bounded) until the queue has `n` parked waits. */
async function until(base: string, topic: string, n: number): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if ((await parkedWaits(base, topic)) === n) return;
    await sleep(20);
  }
  throw new Error(`not ${n} parked waits: ${await parkedWaits(base, topic)}`);
}

describe("parked long-polls over HTTP", () => {
  it("are forgotten by the shard as soon as their clients hang up", async () => {
    const server = await fixture.start();
    const topic = "parked-hangup";
    expect((await call(server.url, "PUT", `/v1/topics/${topic}`, { queues: 1 })).status).toBe(200);
    const url = new URL(server.url);
    const agent = new Agent({ keepAlive: false, maxSockets: 50 });
    const answers: Promise<string>[] = [];
    const requests: ClientRequest[] = [];
    for (let i = 0; i < 20; i++) {
      answers.push(
        new Promise((resolve) => {
          const req = request(
            {
              host: url.hostname,
              port: Number(url.port),
              agent,
              path: `/v1/topics/${topic}/queues/0/messages?offset=0&filter=Wanted&waitMs=30000`,
            },
            (res) => {
              res.resume();
              res.on("end", () => resolve(`answered ${res.statusCode}`));
            },
          );
          req.on("error", () => resolve("hung up"));
          req.end();
          requests.push(req);
        }),
      );
    }
    await until(server.url, topic, 20);
    for (const req of requests) req.socket?.resetAndDestroy();
    agent.destroy();
    expect(new Set(await Promise.all(answers))).toEqual(new Set(["hung up"]));
    await until(server.url, topic, 0);
  });
});
