/**
 * Server CPU time from /proc: utime + stime of a process and of its live
 * descendants, plus what reaped children left in cutime + cstime. Threads
 * are included in their process's figures. Steadier than msg/s on a shared
 * machine, since other load on the box slows the server without charging it.
 */
import { readdirSync, readFileSync } from "node:fs";

/** USER_HZ: Linux reports /proc times in clock ticks of 1/100 s on every common build. */
const TICKS_PER_SECOND = 100;

interface Stat {
  ppid: number;
  ticks: number;
}

function stat(pid: number): Stat | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return null;
  }
  // Fields after the command name (which may hold spaces and parentheses).
  const rest = text.slice(text.lastIndexOf(")") + 2).split(" ");
  // rest[0] is field 3 (state): ppid is field 4, utime 14, stime 15, cutime 16, cstime 17.
  const f = (n: number) => Number(rest[n - 3]);
  return { ppid: f(4), ticks: f(14) + f(15) + f(16) + f(17) };
}

/** CPU milliseconds used so far by `pid` and its descendants. */
export function cpuMs(pid: number): number {
  const root = stat(pid);
  if (!root) return Number.NaN;
  let ticks = root.ticks;
  // Descendants: workerd does not fork today, but count them if it ever does.
  const children = new Map<number, number[]>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const s = stat(Number(name));
    if (!s) continue;
    const list = children.get(s.ppid) ?? [];
    list.push(Number(name));
    children.set(s.ppid, list);
  }
  const stack = [...(children.get(pid) ?? [])];
  while (stack.length) {
    const p = stack.pop() as number;
    const s = stat(p);
    if (s) ticks += s.ticks;
    stack.push(...(children.get(p) ?? []));
  }
  return (ticks * 1000) / TICKS_PER_SECOND;
}

/** Starts a CPU measurement of `pid`; `stop()` gives the milliseconds used since. */
export function cpuMeter(pid: number): { stop(): number } {
  const start = cpuMs(pid);
  return { stop: () => cpuMs(pid) - start };
}

/**
 * CPU milliseconds used so far by the live threads of `pid`, in nanosecond
 * resolution (`/proc/<pid>/task/<tid>/schedstat`), with how many times they
 * were scheduled (wake-ups). For windows too quiet for clock ticks (an idle
 * server); threads that ended are not counted. Null when schedstat is
 * unavailable.
 */
export function threadCpu(pid: number): { ms: number; wakeups: number } | null {
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return null;
  }
  let ns = 0;
  let wakeups = 0;
  for (const tid of tasks) {
    try {
      const [onCpu, , slices] = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8")
        .trim()
        .split(" ")
        .map(Number);
      ns += onCpu ?? 0;
      wakeups += slices ?? 0;
    } catch {
      // the thread ended
    }
  }
  return { ms: ns / 1e6, wakeups };
}
