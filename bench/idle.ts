/**
 * What an idle consumer costs the server: a PushConsumer subscribed to an
 * idle 4-queue topic, with the SDK's defaults, over streaming sessions and
 * then over HTTP long-polls (`sessions: false`), each for IDLE_SECONDS
 * (default 60). Prints the server's CPU time in each window and the requests
 * the HTTP consumer made.
 *
 *   node bench/idle.ts                 # prints one JSON line (about 2 minutes)
 *   IDLE_SECONDS=20 node bench/idle.ts
 */
import { PushConsumer } from "../client/index.ts";
import { cpuMs } from "./lib/cpu.ts";
import { round, sleep } from "./lib/load.ts";
import { emit } from "./lib/report.ts";
import { startBenchServer } from "./lib/servers.ts";

const SECONDS = Number(process.env.IDLE_SECONDS ?? 60);
const QUEUES = 4;

async function idleWindow(
  endpoint: string,
  pid: number,
  topic: string,
  sessions: boolean,
): Promise<{ serverCpuMs: number; httpRequests: number }> {
  let httpRequests = 0;
  const counting: typeof fetch = (input, init) => {
    httpRequests++;
    return fetch(input, init);
  };
  const consumer = new PushConsumer({
    endpoint,
    fetch: counting,
    sessions,
    group: `idle-${sessions ? "session" : "http"}`,
  });
  consumer.subscribe(topic, () => {});
  // Settled: subscribed (or the first long-polls waiting).
  await sleep(2000);
  httpRequests = 0;
  const before = cpuMs(pid);
  await sleep(SECONDS * 1000);
  const serverCpuMs = cpuMs(pid) - before;
  const requests = httpRequests;
  await consumer.shutdown();
  return { serverCpuMs: round(serverCpuMs), httpRequests: requests };
}

export async function runIdle(): Promise<Record<string, unknown>> {
  const s = await startBenchServer();
  try {
    const topic = "idle";
    await s.client.json("PUT", `/v1/topics/${topic}`, { queues: QUEUES });
    const session = await idleWindow(s.server.url, s.server.pid, topic, true);
    process.stderr.write(`idle session: ${JSON.stringify(session)}\n`);
    const http = await idleWindow(s.server.url, s.server.pid, topic, false);
    process.stderr.write(`idle http: ${JSON.stringify(http)}\n`);
    return { seconds: SECONDS, queues: QUEUES, session, http };
  } finally {
    await s.close();
  }
}

if (import.meta.main) {
  emit("idle", await runIdle());
}
