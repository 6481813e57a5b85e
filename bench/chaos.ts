/**
 * `npm run chaos`: fault injection against the real local server (workerd,
 * SQLite Durable Objects on local disk), with the checks of RocketMQ's
 * OpenChaos and Jepsen's queue workloads.
 *
 * One server on a temp data directory and a fixed port (so clients reconnect
 * to the same address). Concurrent producers send messages with unique msgIds
 * and sharding keys, each key's body carrying a sequence number; a send whose
 * outcome is unknown is retried with the SAME msgIds until acknowledged. An
 * orderly receive+ack group and a pull+commit group consume; transactions are
 * prepared and committed; some messages are scheduled. Beside them, the SDK
 * with its defaults runs over streaming sessions (chaos/sessions.ts): keyed
 * producers whose lost sessions resend with the same msgIds, and a
 * PushConsumer group that must handle every acknowledged message. Meanwhile the server's
 * process group is SIGKILLed at random moments (seeded) and restarted on the
 * same data directory, and once paused with SIGSTOP (receipts lapse) then
 * SIGCONT. Then a full-disk phase runs on a small tmpfs (skipped with a note
 * when mounting is not permitted).
 *
 * At the end everything is drained and checked:
 * - lost: acknowledged (send 2xx, scheduled, committed transaction) but not in
 *   the log, or never delivered to the orderly group, the pulling group or the
 *   session group;
 * - stored twice: a msgId at more than one queue/offset (the whole log is
 *   read by offset), or an acknowledged offset holding another msgId;
 * - unexpected: read, never sent;
 * - order: per sharding key, sequence numbers increase along the log, and the
 *   orderly group first receives them in order and never receives one again
 *   after a later one was handed out;
 * - committed offsets never move backwards across a restart;
 * - receipts held (popped, never acked) at a kill or a pause are delivered
 *   again afterwards; a scheduled message and an open half transaction made
 *   right before each kill are delivered after it;
 * - recovery time per fault: first failed send after the fault → next success.
 *
 * The parts, in bench/chaos/: config.ts (settings, seeded generators),
 * client.ts (HTTP over bench/lib/http.ts), server.ts, history.ts (what the run
 * saw), producers.ts, consumers.ts and sessions.ts (the workload), faults.ts and disk.ts
 * (the fault injectors), checker.ts, report.ts.
 *
 * Environment: CHAOS_SECONDS (default 60), CHAOS_KILLS (5), CHAOS_SEED (1),
 * CHAOS_PAUSE_MS (10000), CHAOS_DISK=0 to skip the full-disk phase.
 * `--short` or CHAOS_SHORT=1: the CI run (25 s, 3 kills, 4 s pause).
 * Prints ONE JSON line of figures; exits 1 on any violation.
 */
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import {
  checkFaultCoverage,
  checkLog,
  checkOrder,
  leftToConsume,
  readLog,
} from "./chaos/checker.ts";
import { ChaosClient } from "./chaos/client.ts";
import {
  DRAIN_MAX_MS,
  DRAIN_STALL_MS,
  HOLDERS,
  ORDERLY,
  ORDERLY_CONSUMERS,
  PRODUCERS,
  QUEUES,
  SESSION_PRODUCERS,
  TOPIC,
  configFrom,
  randoms,
  sleep,
} from "./chaos/config.ts";
import { orderlyConsumer, puller } from "./chaos/consumers.ts";
import type { ChaosRun } from "./chaos/context.ts";
import { diskPhase } from "./chaos/disk.ts";
import { runFaults } from "./chaos/faults.ts";
import { History } from "./chaos/history.ts";
import { producer, transactor } from "./chaos/producers.ts";
import { failure, report } from "./chaos/report.ts";
import { sessionConsumer, sessionProducer } from "./chaos/sessions.ts";
import { ChaosServer, freePort } from "./chaos/server.ts";

async function main(): Promise<number> {
  const startedAt = Date.now();
  const config = configFrom(process.argv, process.env);
  const port = await freePort();
  const server = new ChaosServer(port, fs.mkdtempSync(path.join(tmpdir(), "edgemq-chaos-")));
  const run: ChaosRun = {
    config,
    client: new ChaosClient(port),
    server,
    history: new History(),
    rand: randoms(config.seed),
    running: { producing: true, consuming: true },
  };
  const { client, history } = run;
  try {
    await server.start();
    await client.must("PUT", `/v1/topics/${TOPIC}`, { queues: QUEUES });
    await client.must("PUT", `/v1/groups/${ORDERLY}`, { orderly: true, maxReconsumeTimes: 100 });
    await client.must("PUT", `/v1/groups/${HOLDERS}`, { maxReconsumeTimes: 100 });

    // Sessions (the SDK's default transport) beside the HTTP workload.
    const endpoint = `http://127.0.0.1:${port}`;
    const workers = [
      ...Array.from({ length: PRODUCERS }, (_, p) => producer(run, p)),
      ...Array.from({ length: SESSION_PRODUCERS }, (_, p) => sessionProducer(run, p, endpoint)),
      transactor(run),
    ];
    const consumers = [
      ...Array.from({ length: ORDERLY_CONSUMERS }, () => orderlyConsumer(run)),
      puller(run),
      sessionConsumer(run, endpoint),
    ];
    const faults = await runFaults(run);

    // Drain: producers finish their message in hand, halves are committed,
    // scheduled messages come due, consumers catch up.
    run.running.producing = false;
    await Promise.all(workers);
    const heldRedelivered = (await Promise.all(faults.heldChecks)).reduce((a, b) => a + b, 0);
    const drainStart = Date.now();
    await sleep(4500); // the latest scheduled message (≤ 4 s) comes due
    // Until every group is done, or until they stop making progress: a busy
    // machine drains slowly (the orderly group waits out each message left
    // unacked on purpose), and that is not a loss; a stall for 30 s is, and
    // what is left then is reported as lost.
    let least = Number.POSITIVE_INFINITY;
    let progressAt = Date.now();
    for (;;) {
      const left = await leftToConsume(client);
      if (left === 0) break;
      if (left !== null && left < least) {
        least = left;
        progressAt = Date.now();
      }
      if (Date.now() - progressAt > DRAIN_STALL_MS || Date.now() - drainStart > DRAIN_MAX_MS) break;
      await sleep(500);
    }
    run.running.consuming = false;
    await Promise.all(consumers);
    const drainMs = Date.now() - drainStart;

    // Read the whole log by offset, and check it against what the run saw.
    const log = await readLog(client, history);
    const findings = checkLog(log, history);
    const orderViolations = checkOrder(log, history);
    const scheduledAcrossKill = checkFaultCoverage(history, config.kills);
    const disk = await diskPhase(config.disk, history);

    console.log(
      JSON.stringify(
        report(config, history, {
          stored: log.size,
          findings,
          orderViolations,
          heldRedelivered,
          pause: faults.pause,
          scheduledAcrossKill,
          drainMs,
          disk,
          startedAt,
        }),
      ),
    );
    return history.violations.length > 0 ? 1 : 0;
  } catch (e) {
    console.log(JSON.stringify(failure(e, history, server.stderr())));
    return 1;
  } finally {
    run.running.producing = false;
    run.running.consuming = false;
    await server.close();
    client.close();
    fs.rmSync(server.dataDir, { recursive: true, force: true });
  }
}

process.exit(await main());
