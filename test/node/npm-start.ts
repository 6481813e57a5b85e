/**
 * `npm start` as a supervisor or a terminal runs it: the real npm, in a
 * process group of its own (a terminal's foreground job, a container's or a
 * test harness's child), so a test can signal the whole group the way
 * Ctrl-C, `kill -9 -PGID` or a container runtime does. Every group started
 * here, and every workerd seen, is SIGKILLed after the test file.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { resolve } from "node:path";
import { afterAll } from "vitest";

const ROOT = resolve(import.meta.dirname, "../..");
const started: ChildProcess[] = [];
const workerds = new Set<number>();

afterAll(() => {
  for (const c of started) {
    try {
      process.kill(-c.pid!, "SIGKILL");
    } catch {
      // already gone
    }
  }
  // On a broken build workerd may have outlived its group: don't leave it running.
  for (const pid of workerds) {
    try {
      if (isAlive(pid)) process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
});

/** A port that was free a moment ago (npm start is given a fixed PORT, as a user would). */
export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

/** A live process: present in /proc and not a zombie (one whose parent died is never reaped here). */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

/** The parent pid of a live process. */
export function parentOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
}

/** Polls until `check()` holds or `ms` pass; answers the last check. */
export async function within(ms: number, check: () => boolean): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!check() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
  return check();
}

export interface NpmStart {
  /** npm, the leader of the group. */
  child: ChildProcess;
  /** All of stdout and stderr so far. */
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Sends `signal` to the whole process group, as a terminal or supervisor does. */
  signalGroup(signal: NodeJS.Signals): void;
}

/** Runs `npm start` on `dataDir` and `port`, in a new process group. */
export function npmStart(dataDir: string, port: number): NpmStart {
  const child = spawn("npm", ["start"], {
    cwd: ROOT,
    detached: true,
    env: {
      ...process.env,
      PORT: String(port),
      DATA_DIR: dataDir,
      ADMIN_TOKEN: "",
      TOKEN_SECRET: "",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  started.push(child);
  let out = "";
  child.stdout?.on("data", (d: Buffer) => (out += String(d)));
  child.stderr?.on("data", (d: Buffer) => (out += String(d)));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) =>
    child.once("exit", (code, signal) => res({ code, signal })),
  );
  return {
    child,
    output: () => out,
    exited,
    signalGroup(signal) {
      process.kill(-child.pid!, signal);
    },
  };
}

/** Waits until the server says it listens; answers its URL and workerd's pid. */
export async function listening(s: NpmStart): Promise<{ url: string; workerd: number }> {
  const deadline = Date.now() + 60_000;
  const re = /listening on (http:\/\/\S+)[\s\S]*workerd pid (\d+)/;
  while (!re.test(s.output())) {
    if (s.child.exitCode !== null || s.child.signalCode !== null || Date.now() > deadline) {
      throw new Error(`npm start did not start:\n${s.output()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const m = re.exec(s.output())!;
  const workerd = Number(m[2]);
  workerds.add(workerd);
  return { url: m[1]!, workerd };
}
