/** The chaos run's one JSON line: its settings, what it did, what it found, how fast it recovered. */
import type { LogFindings } from "./checker.ts";
import type { ChaosConfig } from "./config.ts";
import type { Fault, History } from "./history.ts";

/** First failed send after a fault → next successful send (null when there was no outage). */
function recovery(f: Fault): number | null {
  return f.firstFailAt !== null && f.recoveredAt !== null ? f.recoveredAt - f.firstFailAt : null;
}

export interface RunFigures {
  stored: number;
  findings: LogFindings;
  orderViolations: number;
  heldRedelivered: number;
  pause: { held: number; lapsedAcks: number };
  scheduledAcrossKill: number;
  drainMs: number;
  disk: Record<string, unknown>;
  startedAt: number;
}

export function report(
  config: ChaosConfig,
  history: History,
  figures: RunFigures,
): Record<string, unknown> {
  const { faults, violations } = history;
  const kills = faults.filter((f) => f.kind === "kill");
  return {
    bench: "chaos",
    mode: config.short ? "short" : "full",
    seed: config.seed,
    seconds: config.seconds,
    kills: kills.length,
    pauses: faults.length - kills.length,
    pauseMs: config.pauseMs,
    attempted: history.attempted.size,
    acknowledged: history.acked.size,
    stored: figures.stored,
    ...history.stats,
    ...figures.findings,
    orderViolations: figures.orderViolations,
    offsetRegressions: history.offsetRegressions,
    heldAtFaults: history.held.reduce((a, h) => a + h.msgIds.size, 0),
    heldRedelivered: figures.heldRedelivered,
    pauseHeld: figures.pause.held,
    pauseLapsedAcks: figures.pause.lapsedAcks,
    scheduledAcrossKill: `${figures.scheduledAcrossKill}/${history.scheduledAtKill.length}`,
    halvesAcrossRestart: history.halvesAcrossRestart,
    recoveryMsPerKill: kills.map(recovery),
    restartMsPerKill: kills.map((f) => f.restartMs ?? null),
    recoveryMsPause: faults.filter((f) => f.kind === "pause").map(recovery),
    drainMs: figures.drainMs,
    disk: figures.disk,
    violations: violations.length,
    ...(violations.length > 0 && { firstViolations: violations.slice(0, 10) }),
    totalMs: Date.now() - figures.startedAt,
  };
}

/** The line printed when the run itself failed (a server that would not start, a request that never succeeded). */
export function failure(error: unknown, history: History, serverStderr: string | undefined) {
  return {
    bench: "chaos",
    error: error instanceof Error ? error.message : String(error),
    violations: history.violations.length,
    firstViolations: history.violations.slice(0, 10),
    serverStderr,
  };
}
