/**
 * The fault injectors: SIGKILL of workerd's whole process group and a
 * restart on the same data, and a SIGSTOP/SIGCONT pause (receipts lapse
 * meanwhile), on a seeded schedule. Right before each fault, receipts are
 * held; right before each kill, a scheduled message and a half transaction
 * are left pending, to be delivered and committed after it.
 */
import type { Answer } from "./client.ts";
import { HOLDERS, PULLERS, TOPIC, sleep } from "./config.ts";
import type { ChaosRun } from "./context.ts";
import { hold, verifyHeld } from "./consumers.ts";
import type { Fault } from "./history.ts";
import { commitHalf, prepareHalf, sendUntilAcked } from "./producers.ts";

/** Kills the server right after leaving work pending, restarts it, and checks its committed offsets. */
export async function kill(run: ChaosRun): Promise<void> {
  const { client, server, history } = run;
  const fault: Fault = { kind: "kill", at: 0, firstFailAt: null, recoveredAt: null };
  // Right before the kill: hold receipts, leave a scheduled message and a half transaction open.
  const h = await hold(run, 3000);
  const sched = `sched-kill-${history.faults.length}`;
  history.attempted.set(sched, { msgId: sched, kind: "scheduled" });
  const results = await sendUntilAcked(
    run,
    [{ body: "scheduled", msgId: sched, delayMs: 2500 }],
    Date.now() + 5000,
  );
  if (results) {
    history.recordAck({ msgId: sched, kind: "scheduled" }, results[0]!);
    history.scheduledAtKill.push(sched);
  }
  const half = await prepareHalf(run, Date.now() + 5000);
  if (half) history.pendingHalves.push(half);
  const commitsBefore = [...history.ackedCommit];

  fault.at = Date.now();
  history.currentFault = fault;
  history.faults.push(fault);
  await server.kill();
  history.run++;
  await sleep(Math.floor(run.rand.fault() * 1000));
  fault.restartMs = await server.start();
  history.held.push({ msgIds: h.msgIds, fault });

  // Committed offsets never move backwards across a restart.
  let o: Answer | null = null;
  for (let i = 0; i < 20 && o === null; i++) {
    o = await client.call("GET", `/v1/groups/${PULLERS}/topics/${TOPIC}/offsets`).catch(() => null);
    if (o !== null && o.status !== 200 && o.status !== 404) o = null;
    if (o === null) await sleep(200);
  }
  if (o?.status === 200) {
    for (const { queue, offset } of o.body.offsets as { queue: number; offset: number }[]) {
      if (offset < commitsBefore[queue]!) {
        history.offsetRegressions++;
        history.violate(
          `queue ${queue}: committed offset ${offset} after restart, ${commitsBefore[queue]} acknowledged before`,
        );
      }
    }
  }
  for (const hf of history.pendingHalves.splice(0)) await commitHalf(run, hf, Date.now() + 30_000);
}

/** What the pause left: receipts held across it, and how many of their late acks were refused. */
export interface PauseFigures {
  held: number;
  lapsedAcks: number;
}

/** Stops the server for `pauseMs`; receipts held across it must lapse and come back. */
export async function pause(run: ChaosRun): Promise<PauseFigures> {
  const { client, server, history, config } = run;
  const fault: Fault = { kind: "pause", at: 0, firstFailAt: null, recoveredAt: null };
  const h = await hold(run, Math.max(1000, Math.floor(config.pauseMs / 3)));
  fault.at = Date.now();
  history.currentFault = fault;
  history.faults.push(fault);
  server.signal("SIGSTOP");
  await sleep(config.pauseMs);
  server.signal("SIGCONT");
  // Sends stalled (rather than failed) if the pause was shorter than their
  // timeout: the outage began with the pause either way.
  if (fault.firstFailAt === null) fault.firstFailAt = fault.at;
  // The held receipts lapsed while the broker was stopped: acking them now must fail.
  let lapsedAcks = 0;
  if (h.receipts.length) {
    try {
      const a = await client.call(
        "POST",
        `/v1/groups/${HOLDERS}/topics/${TOPIC}/ack`,
        { receipts: h.receipts },
        15_000,
      );
      if (a.status === 200) {
        for (const res of a.body.results as any[]) {
          if (res.ok)
            history.violate("a receipt acked after its invisible time lapsed during a pause");
          else lapsedAcks++;
        }
      }
    } catch {
      // the ack's fate is unknown; the redelivery check below still holds
    }
  }
  history.held.push({ msgIds: h.msgIds, fault });
  return { held: h.msgIds.size, lapsedAcks };
}

/**
 * Runs the fault schedule over the run's seconds: `kills` kills and one
 * pause in seeded random order, one per slot with jitter. Answers the
 * pause's figures and, per fault, the check that its held receipts came back.
 */
export async function runFaults(
  run: ChaosRun,
): Promise<{ pause: PauseFigures; heldChecks: Promise<number>[] }> {
  const { config, history } = run;
  const kinds: ("kill" | "pause")[] = [
    ...Array.from({ length: config.kills }, () => "kill" as const),
    "pause",
  ];
  for (let i = kinds.length - 1; i > 0; i--) {
    const j = Math.floor(run.rand.fault() * (i + 1));
    [kinds[i], kinds[j]] = [kinds[j]!, kinds[i]!];
  }
  const start = Date.now();
  const slot = (config.seconds * 1000) / (kinds.length + 1);
  let pauseFigures: PauseFigures = { held: 0, lapsedAcks: 0 };
  const heldChecks: Promise<number>[] = [];
  for (let i = 0; i < kinds.length; i++) {
    const at = start + slot * (i + 1) + (run.rand.fault() - 0.5) * slot * 0.5;
    await sleep(Math.max(0, at - Date.now()));
    if (kinds[i] === "kill") await kill(run);
    else pauseFigures = await pause(run);
    const h = history.held[history.held.length - 1];
    if (h) heldChecks.push(verifyHeld(run, h, 30_000));
  }
  await sleep(Math.max(0, start + config.seconds * 1000 - Date.now()));
  history.currentFault = null;
  return { pause: pauseFigures, heldChecks };
}
