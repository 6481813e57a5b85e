/**
 * The peers the side-by-side benchmark measures edgemq against: NATS
 * JetStream (`nats-server -js`, file store) and RabbitMQ, as installed from
 * Debian. Each starts on loopback on free ports with its data in a fresh
 * temp dir, in its own process group, and `close()` stops the whole group
 * (SIGTERM, then SIGKILL) and removes the data. A process exit of the bench
 * (even through SIGTERM from bench/run.ts) kills what is still running.
 *
 * A peer that is not installed (or fails to start) is reported as
 * `{ available: false, reason }`, and the benchmark goes on without it.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import * as path from "node:path";

export interface PeerServer {
  name: "nats" | "rabbitmq";
  available: true;
  /** The process whose CPU (with its descendants) is the server's. */
  pid: number;
  /** Client port on 127.0.0.1. */
  port: number;
  version: string;
  /** Seconds from spawn until it accepted clients. */
  startupSeconds: number;
  /** Stops every process of the peer and removes its data. */
  close(): Promise<void>;
}

export interface MissingPeer {
  name: "nats" | "rabbitmq";
  available: false;
  reason: string;
}

export type Peer = PeerServer | MissingPeer;

/** Process groups still running and their data dirs: removed when this process exits without close(). */
const groups = new Set<number>();
const dirs = new Set<string>();
let hooked = false;
function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on("exit", () => {
    for (const g of groups) killGroup(g, "SIGKILL");
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
}
function trackGroup(pid: number): void {
  groups.add(pid);
  hookExit();
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

/** Whether 127.0.0.1:port can be bound right now. */
function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once("error", () => resolve(false));
    srv.listen(port, "127.0.0.1", () => srv.close(() => resolve(true)));
  });
}

/** The kernel's range for port-0 binds (every server on this shared box that asks for "any port"). */
function ephemeralLow(): number {
  try {
    const lo = Number(
      readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").split(/\s+/)[0],
    );
    if (Number.isInteger(lo) && lo > 12_000) return lo;
  } catch {
    // not Linux
  }
  return 32_768;
}

/**
 * A free TCP port on 127.0.0.1 for a server that must be told its port
 * (RabbitMQ, its distribution, epmd). Taken at random below the ephemeral
 * range: a port from there could be handed to another process binding port
 * 0 between this check and the peer's bind (seen here: RabbitMQ's port taken
 * by someone's HTTP server).
 */
export async function freePort(): Promise<number> {
  const hi = ephemeralLow();
  const lo = 10_000;
  for (let i = 0; i < 100; i++) {
    const port = lo + Math.floor(Math.random() * (hi - lo));
    if (await canBind(port)) return port;
  }
  throw new Error(`no free port found in ${lo}..${hi - 1}`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The binary named by the environment variable `envName` when set (only
 * that one: pointing it at a missing file shows the bench without the peer),
 * else the first of `candidates` that exists, else `name` on PATH.
 */
function findBinary(envName: string, candidates: string[], name: string): string | undefined {
  const given = process.env[envName];
  if (given) return existsSync(given) ? given : undefined;
  for (const c of candidates) if (existsSync(c)) return c;
  for (const dir of (process.env.PATH ?? "").split(":")) {
    const p = path.join(dir, name);
    if (dir && existsSync(p)) return p;
  }
  return undefined;
}

interface Spawned {
  child: ChildProcess;
  exited: Promise<void>;
  isExited(): boolean;
  log(): string;
  stop(): Promise<void>;
}

/** Spawns a detached process group whose output is kept (bounded) for error messages. */
function spawnGroup(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  cwd: string,
  onLine?: (line: string) => void,
): Spawned {
  const child = spawn(cmd, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"], detached: true });
  if (child.pid !== undefined) trackGroup(child.pid);
  let buf = "";
  let partial = "";
  const take = (d: Buffer) => {
    const s = String(d);
    buf = (buf + s).slice(-32 * 1024);
    if (!onLine) return;
    partial += s;
    const lines = partial.split("\n");
    partial = lines.pop() ?? "";
    for (const l of lines) onLine(l);
  };
  child.stdout?.on("data", take);
  child.stderr?.on("data", take);
  let done = false;
  const exited = new Promise<void>((resolve) => {
    child.once("exit", () => {
      done = true;
      resolve();
    });
    child.once("error", (e) => {
      buf += `\nspawn failed: ${e.message}`;
      done = true;
      resolve();
    });
  });
  const stop = async () => {
    const pid = child.pid;
    if (pid === undefined) return;
    if (!done) {
      killGroup(pid, "SIGTERM");
      await Promise.race([exited, sleep(10_000)]);
    }
    // Whatever of the group is left (the shell may exit before the VM it runs).
    killGroup(pid, "SIGKILL");
    await Promise.race([exited, sleep(2000)]);
    groups.delete(pid);
  };
  return { child, exited, isExited: () => done, log: () => buf, stop };
}

/** Waits until `ready()` or the deadline; fails early when the process exits. */
async function waitReady(
  s: Spawned,
  ready: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await ready()) return;
    if (s.isExited()) throw new Error(`${what} exited during startup:\n${s.log().slice(-2000)}`);
    await sleep(100);
  }
  throw new Error(`${what} not ready after ${timeoutMs / 1000} s:\n${s.log().slice(-2000)}`);
}

/** True once a TCP connection to 127.0.0.1:port is accepted. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host: "127.0.0.1", port });
    sock.once("connect", () => {
      sock.destroy();
      resolve(true);
    });
    sock.once("error", () => resolve(false));
  });
}

/**
 * True once 127.0.0.1:port speaks AMQP 0-9-1: to the protocol header, a
 * broker answers with connection.start (a method frame on channel 0, class
 * 10, method 10). Anything else listening there is not our RabbitMQ.
 */
function speaksAmqp(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host: "127.0.0.1", port });
    let got = Buffer.alloc(0);
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(2000, () => done(false));
    sock.once("connect", () => sock.write(Buffer.from([65, 77, 81, 80, 0, 0, 9, 1])));
    sock.on("data", (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (got.length >= 11)
        done(got[0] === 1 && got.readUInt16BE(7) === 10 && got.readUInt16BE(9) === 10);
    });
    sock.once("error", () => done(false));
    sock.once("close", () => done(false));
  });
}

function dataDir(prefix: string): string {
  const d = mkdtempSync(path.join(process.env.BENCH_DIR ?? tmpdir(), prefix));
  dirs.add(d);
  hookExit();
  return d;
}

function removeDir(d: string): void {
  rmSync(d, { recursive: true, force: true });
  dirs.delete(d);
}

/**
 * NATS with JetStream on a file store in a temp dir. NATS answers a publish
 * once the message is written to its file (the OS page cache), before any
 * fsync: 2.9 syncs its stream files on an interval (2 min by default).
 */
export async function startNats(): Promise<Peer> {
  const bin = findBinary("NATS_SERVER", ["/usr/sbin/nats-server"], "nats-server");
  if (!bin) return { name: "nats", available: false, reason: "nats-server is not installed" };
  const dir = dataDir("edgemq-bench-nats-");
  let port = 0;
  let version = "unknown";
  let ready = false;
  const t0 = performance.now();
  // Port -1: NATS picks a free one and logs it (no race with another process).
  const s = spawnGroup(
    bin,
    ["-a", "127.0.0.1", "-p", "-1", "-js", "-sd", dir, "-n", "edgemq-bench"],
    { ...process.env },
    dir,
    (line) => {
      const v = /Version:\s+(\S+)/.exec(line);
      if (v) version = v[1] as string;
      const l = /Listening for client connections on [^:]+:(\d+)/.exec(line);
      if (l) port = Number(l[1]);
      if (line.includes("Server is ready")) ready = true;
    },
  );
  try {
    await waitReady(s, () => ready && port > 0, 15_000, "nats-server");
  } catch (e) {
    await s.stop();
    removeDir(dir);
    return { name: "nats", available: false, reason: (e as Error).message };
  }
  return {
    name: "nats",
    available: true,
    pid: s.child.pid as number,
    port,
    version,
    startupSeconds: Math.round(performance.now() - t0) / 1000,
    async close() {
      await s.stop();
      removeDir(dir);
    },
  };
}

/** RabbitMQ's version, from the name of its installed release directory. */
function rabbitVersion(script: string): string {
  try {
    const real = execFileSync("readlink", ["-f", script], { encoding: "utf8" }).trim();
    const m = /rabbitmq_server-([\d.]+)/.exec(real);
    if (m) return m[1] as string;
    const lib = "/usr/lib/rabbitmq/lib";
    const d = readdirSync(lib).find((n) => n.startsWith("rabbitmq_server-"));
    if (d) return d.slice("rabbitmq_server-".length);
  } catch {
    // unknown
  }
  return "unknown";
}

/**
 * RabbitMQ with its own node name, ports, data and log dirs, Erlang cookie
 * and epmd (started here, in the foreground, so it is stopped with the rest:
 * one started by the VM would daemonize and outlive the bench). No plugins
 * (so no management listener); the distribution port listens on loopback.
 *
 * Debian's /usr/sbin/rabbitmq-server switches to the `rabbitmq` user and
 * writes its logs under /var/log; the script it wraps
 * (/usr/lib/rabbitmq/bin/rabbitmq-server) runs in the foreground as the
 * current user with the environment given here.
 */
export async function startRabbit(): Promise<Peer> {
  // A second try on fresh ports: a port can still be taken between the check and the bind.
  const first = await startRabbitOnce();
  if (first.available || first.reason.includes("not installed")) return first;
  const second = await startRabbitOnce();
  if (second.available) return second;
  return { ...second, reason: `${second.reason}\n(first attempt: ${first.reason})` };
}

async function startRabbitOnce(): Promise<Peer> {
  const script = findBinary(
    "RABBITMQ_SERVER",
    ["/usr/lib/rabbitmq/bin/rabbitmq-server"],
    "rabbitmq-server",
  );
  const epmdBin = findBinary("EPMD", ["/usr/bin/epmd"], "epmd");
  if (!script)
    return { name: "rabbitmq", available: false, reason: "rabbitmq-server is not installed" };
  if (!epmdBin)
    return { name: "rabbitmq", available: false, reason: "epmd (erlang-base) is not installed" };
  const dir = dataDir("edgemq-bench-rabbitmq-");
  const home = path.join(dir, "home");
  mkdirSync(home);
  const cookie = path.join(home, ".erlang.cookie");
  writeFileSync(cookie, `edgemqbench${process.pid}${Date.now()}`);
  chmodSync(cookie, 0o400); // Erlang refuses a cookie others can read
  const [port, distPort, epmdPort] = [await freePort(), await freePort(), await freePort()];
  writeFileSync(path.join(dir, "enabled_plugins"), "[].\n");
  writeFileSync(
    path.join(dir, "rabbitmq.conf"),
    [
      `listeners.tcp.1 = 127.0.0.1:${port}`,
      "loopback_users = none",
      // The bench's data dir may be on a small tmpfs.
      "disk_free_limit.absolute = 50MB",
      "",
    ].join("\n"),
  );
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: home,
    ERL_EPMD_PORT: String(epmdPort),
    ERL_EPMD_ADDRESS: "127.0.0.1",
    RABBITMQ_NODENAME: `edgemq-bench-${process.pid}@localhost`,
    RABBITMQ_NODE_IP_ADDRESS: "127.0.0.1",
    RABBITMQ_NODE_PORT: String(port),
    RABBITMQ_DIST_PORT: String(distPort),
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: "-kernel inet_dist_use_interface {127,0,0,1}",
    RABBITMQ_MNESIA_BASE: path.join(dir, "mnesia"),
    RABBITMQ_LOG_BASE: path.join(dir, "log"),
    RABBITMQ_LOGS: "-",
    RABBITMQ_PID_FILE: path.join(dir, "rabbitmq.pid"),
    RABBITMQ_CONFIG_FILE: path.join(dir, "rabbitmq.conf"),
    RABBITMQ_ENABLED_PLUGINS_FILE: path.join(dir, "enabled_plugins"),
    // Not /etc/rabbitmq/rabbitmq-env.conf: nothing from the system's node.
    RABBITMQ_CONF_ENV_FILE: path.join(dir, "rabbitmq-env.conf"),
  };
  writeFileSync(env.RABBITMQ_CONF_ENV_FILE as string, "");
  const t0 = performance.now();
  const epmd = spawnGroup(epmdBin, ["-port", String(epmdPort), "-address", "127.0.0.1"], env, dir);
  await waitReady(epmd, () => accepts(epmdPort), 5000, "epmd").catch(() => {});
  const s = spawnGroup(script, [], env, dir);
  const stopAll = async () => {
    await s.stop();
    await epmd.stop();
    removeDir(dir);
  };
  try {
    // RabbitMQ opens its AMQP listener last in its boot, so an AMQP answer there means ready.
    const timeoutMs = Number(process.env.RABBITMQ_STARTUP_TIMEOUT_S ?? 90) * 1000;
    await waitReady(s, () => speaksAmqp(port), timeoutMs, "rabbitmq-server");
  } catch (e) {
    await stopAll();
    return { name: "rabbitmq", available: false, reason: (e as Error).message };
  }
  return {
    name: "rabbitmq",
    available: true,
    pid: s.child.pid as number,
    port,
    version: rabbitVersion(script),
    startupSeconds: Math.round(performance.now() - t0) / 1000,
    close: stopAll,
  };
}
