/**
 * Runs the edgemq Worker locally under `workerd serve`: the same runtime as
 * production, with both Durable Object namespaces SQLite-backed on local disk.
 *
 *   const server = await startLocalServer({ port: 0, dataDir: "/tmp/x" });
 *   await fetch(`${server.url}/v1/health`);
 *   await server.stop();
 *
 * Steps: bundle the console's browser code (scripts/build-console.ts; the file
 * is rewritten only when it changed), bundle the entry with esbuild into
 * `.edgemq-build/` (skipped while the bundle is newer than every file it was
 * built from), write a workerd Cap'n Proto config, spawn `workerd serve`, wait
 * for `GET /v1/health` → 200.
 *
 * Port 0: workerd binds 127.0.0.1:0 itself and reports the port it got on
 * `--control-fd` (as Miniflare does). That avoids the race of probing for a
 * free port with node:net and handing it over, when tests start many servers.
 *
 * One broker per data directory, and no orphans. On Linux workerd is started
 * as `flock --no-fork <dataDir>/edgemq.lock setpriv --pdeathsig KILL --
 * workerd serve …` (both from util-linux; each execs the next, so the three
 * are one process and `server.pid` is workerd's):
 * - flock takes an exclusive flock(2) on the lock file and execs on with the
 *   descriptor open, so workerd itself holds the lock, and the kernel drops
 *   it however workerd dies (SIGKILL, OOM, crash). A second server on the
 *   same directory fails to lock it and exits at once: startLocalServer
 *   throws {@link DataDirInUseError}.
 * - setpriv sets PR_SET_PDEATHSIG to SIGKILL, so the kernel kills workerd
 *   when this process dies, SIGKILL included, whatever process group workerd
 *   is in.
 * Why not a package: Node has no flock(2), fs-ext / os-lock are native addons
 * (a compiler and install scripts), and proper-lockfile / lockfile are lock
 * files or directories that a SIGKILLed holder leaves behind (stale-lock
 * guessing by mtime). Neither can set a parent-death signal, which has to
 * happen in the child between fork and exec. util-linux is on every Debian
 * system (Essential). Where the tools are missing (not Linux) workerd starts
 * unguarded and {@link LocalServer.guarded} is false.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import { request } from "node:http";
import { createRequire } from "node:module";
import * as path from "node:path";
import { createInterface } from "node:readline";
import type { Readable } from "node:stream";
import { buildConsole } from "./build-console.ts";

export const REPO_ROOT: string = path.resolve(import.meta.dirname, "..");
export const BUILD_DIR: string = path.join(REPO_ROOT, ".edgemq-build");

export interface LocalServerEnv {
  ADMIN_TOKEN?: string;
  TOKEN_SECRET?: string;
  CORS_ORIGINS?: string;
  /** Bearer token that may read `GET /metrics` only. */
  METRICS_TOKEN?: string;
  /** In-isolate per-token rate limit (there is no `[[ratelimits]]` binding locally). */
  RATE_LIMIT_PER_MINUTE?: string;
  /** Failed authentications a minute before requests are answered 429 (default 60, "0" off). */
  AUTH_FAILURES_PER_MINUTE?: string;
}

/** The Worker's text bindings that a local server may be given (src/env.ts). */
export const TEXT_BINDINGS = [
  "ADMIN_TOKEN",
  "TOKEN_SECRET",
  "CORS_ORIGINS",
  "METRICS_TOKEN",
  "RATE_LIMIT_PER_MINUTE",
  "AUTH_FAILURES_PER_MINUTE",
] as const satisfies readonly (keyof LocalServerEnv)[];

export interface LocalServerOptions {
  /** Port on 127.0.0.1; 0 (the default) picks a free one. */
  port?: number;
  /** Directory holding the Durable Objects' SQLite files; created if missing. */
  dataDir: string;
  /** Text bindings, each declared only when given. `EDGEMQ_LOCAL = "1"` is always bound. */
  env?: LocalServerEnv;
  /** Don't copy workerd's stdout/stderr to this process (they are still kept for errors). */
  quiet?: boolean;
  /** Worker entry module; default: `main` of wrangler.toml (src/index.ts). */
  entry?: string;
  /**
   * Put workerd in its own process group, so that a terminal's Ctrl-C (SIGINT
   * to the whole foreground group) reaches only this process, which can then
   * shut workerd down gracefully. It still dies with this process (see the
   * module comment). Default false.
   */
  detached?: boolean;
  /** Bound on the wait for `/v1/health` → 200. Default 30 000 ms. */
  startupTimeoutMs?: number;
}

export interface LocalServer {
  /** `http://127.0.0.1:<port>` (no trailing slash). */
  url: string;
  port: number;
  pid: number;
  child: ChildProcess;
  /**
   * Sends `signal` (default SIGTERM) to workerd and resolves with its exit
   * code (null when it died by a signal). On SIGTERM workerd waits for every
   * request in flight, with no deadline; pass `killAfterMs` to SIGKILL it if it
   * has not exited by then. Calling stop() again, or after exit, is safe.
   */
  stop(signal?: NodeJS.Signals, opts?: { killAfterMs?: number }): Promise<number | null>;
  /** Last 64 KiB of workerd's stderr. */
  stderr(): string;
  /**
   * True when workerd holds the data directory's lock and dies with this
   * process (Linux with util-linux); false where those tools are missing.
   */
  guarded: boolean;
}

/** Who holds a data directory: written into its lock file once a server is up. */
export interface LockHolder {
  pid: number;
  url: string;
  startedAt: string;
}

/** startLocalServer's error when another live server holds the data directory. */
export class DataDirInUseError extends Error {
  override readonly name = "DataDirInUseError";
  readonly dataDir: string;
  /** As the holder recorded itself (undefined while it is still starting). */
  readonly holder: LockHolder | undefined;
  constructor(dataDir: string, holder: LockHolder | undefined) {
    const who = holder
      ? ` (workerd pid ${holder.pid}, ${holder.url}, started ${holder.startedAt})`
      : "";
    super(
      `data directory ${dataDir} is in use by another edgemq broker${who}: ` +
        "one broker per data directory; stop that one first, or use another directory",
    );
    this.dataDir = dataDir;
    this.holder = holder;
  }
}

// ---------------------------------------------------------------------------
// wrangler.toml

export interface WranglerInfo {
  main: string;
  compatibilityDate: string;
  compatibilityFlags: string[];
  /** The `[[durable_objects.bindings]]` entries, in file order. */
  durableObjects: { binding: string; className: string }[];
}

/**
 * The `[[durable_objects.bindings]]` tables of a wrangler.toml (their `name`
 * and `class_name`), so a namespace added there is served locally too.
 */
export function durableObjectBindings(text: string): { binding: string; className: string }[] {
  const out: { binding: string; className: string }[] = [];
  for (const block of text.split(/^\s*\[\[durable_objects\.bindings\]\]\s*$/m).slice(1)) {
    const body = block.split(/^\s*\[/m)[0] ?? "";
    const str = (key: string) => new RegExp(`^\\s*${key}\\s*=\\s*"([^"]*)"`, "m").exec(body)?.[1];
    const binding = str("name");
    const className = str("class_name");
    if (!binding || !className)
      throw new Error("wrangler.toml: a durable_objects binding lacks name or class_name");
    out.push({ binding, className });
  }
  return out;
}

/** The few keys of wrangler.toml the local runtime needs. */
export function readWranglerToml(
  file: string = path.join(REPO_ROOT, "wrangler.toml"),
): WranglerInfo {
  const text = fs.readFileSync(file, "utf8");
  // Top-level keys only: everything before the first [table] header.
  const top = text.split(/^\s*\[/m)[0] ?? "";
  const str = (key: string): string | undefined =>
    new RegExp(`^\\s*${key}\\s*=\\s*"([^"]*)"`, "m").exec(top)?.[1];
  const compatibilityDate = str("compatibility_date");
  if (!compatibilityDate) throw new Error(`${file}: no compatibility_date`);
  const flagsSrc = /^\s*compatibility_flags\s*=\s*\[([^\]]*)\]/m.exec(top)?.[1] ?? "";
  const compatibilityFlags = [...flagsSrc.matchAll(/"([^"]*)"/g)].map((m) => m[1] ?? "");
  return {
    main: path.resolve(path.dirname(file), str("main") ?? "src/index.ts"),
    compatibilityDate,
    compatibilityFlags,
    durableObjects: durableObjectBindings(text),
  };
}

// ---------------------------------------------------------------------------
// Bundling

export interface BuildResult {
  /** Absolute path of the bundled ES module. */
  bundle: string;
  /** False when the existing bundle was still fresh. */
  rebuilt: boolean;
  ms: number;
}

const building = new Map<string, Promise<BuildResult>>();

/** Output directory for an entry: `.edgemq-build/local/` for the real Worker. */
function outDirFor(entry: string, defaultEntry: string): string {
  if (entry === defaultEntry) return path.join(BUILD_DIR, "local");
  const h = createHash("sha256").update(entry).digest("hex").slice(0, 10);
  return path.join(BUILD_DIR, `local-${h}`);
}

function mtimeMs(file: string): number {
  try {
    return fs.statSync(file).mtimeMs;
  } catch {
    return Number.POSITIVE_INFINITY; // missing: forces a rebuild
  }
}

/**
 * Whether `bundle` is newer than every file in `srcDir` (recursive; the real
 * Worker's src/), every input esbuild read for it last time (node_modules
 * included), package-lock.json, and this script.
 */
function isFresh(bundle: string, inputsFile: string, srcDir: string | undefined): boolean {
  const built = mtimeMs(bundle);
  if (!Number.isFinite(built)) return false;
  let inputs: string[];
  try {
    inputs = JSON.parse(fs.readFileSync(inputsFile, "utf8")) as string[];
  } catch {
    return false;
  }
  const deps = [
    ...(srcDir === undefined ? inputs : inputs.filter((f) => !f.startsWith(srcDir + path.sep))),
    path.join(REPO_ROOT, "package-lock.json"),
    import.meta.filename,
  ];
  if (deps.some((f) => mtimeMs(f) >= built)) return false;
  const stack = srcDir === undefined ? [] : [srcDir];
  while (stack.length > 0) {
    const dir = stack.pop() as string;
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return false;
    }
    for (const e of entries) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) {
        if (e.name !== "node_modules") stack.push(p);
      } else if (mtimeMs(p) >= built) {
        return false;
      }
    }
  }
  return true;
}

function writeAtomic(file: string, data: string | Uint8Array, mode?: number): void {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  fs.writeFileSync(tmp, data, mode === undefined ? undefined : { mode });
  fs.renameSync(tmp, file);
}

/**
 * Bundles a Worker entry (ESM, platform neutral, `cloudflare:*` external,
 * conditions workerd/worker/browser) to `<outDir>/worker.js`, unless the
 * existing bundle is fresh. Writes are atomic (temp file + rename), so
 * concurrent builds from several processes are harmless.
 */
export async function buildWorker(
  opts: { entry?: string; force?: boolean } = {},
): Promise<BuildResult> {
  const wrangler = readWranglerToml();
  const entry = path.resolve(opts.entry ?? wrangler.main);
  const key = `${entry}\0${opts.force === true}`;
  const pending = building.get(key);
  if (pending) return pending;
  const p = doBuild(entry, wrangler, opts.force === true).finally(() => building.delete(key));
  building.set(key, p);
  return p;
}

async function doBuild(
  entry: string,
  wrangler: WranglerInfo,
  force: boolean,
): Promise<BuildResult> {
  const t0 = performance.now();
  // First, as the Worker imports it: a changed console rewrites its module,
  // which makes the Worker's bundle stale below.
  await buildConsole();
  const outDir = outDirFor(entry, wrangler.main);
  const bundle = path.join(outDir, "worker.js");
  const inputsFile = path.join(outDir, "inputs.json");
  // The real Worker is checked against all of src/; another entry against its inputs only.
  const srcDir = entry === wrangler.main ? path.join(REPO_ROOT, "src") : undefined;
  if (!force && isFresh(bundle, inputsFile, srcDir)) {
    return { bundle, rebuilt: false, ms: performance.now() - t0 };
  }
  const esbuild = await import("esbuild");
  const nodeCompat = wrangler.compatibilityFlags.some((f) => f.startsWith("nodejs_compat"));
  const result = await esbuild.build({
    entryPoints: [entry],
    bundle: true,
    format: "esm",
    platform: "neutral",
    target: "es2024",
    conditions: ["workerd", "worker", "browser"],
    mainFields: ["browser", "module", "main"],
    external: nodeCompat ? ["cloudflare:*", "node:*"] : ["cloudflare:*"],
    outfile: bundle,
    write: false,
    metafile: true,
    logLevel: "silent",
    absWorkingDir: REPO_ROOT,
  });
  const out = result.outputFiles.find((f) => f.path === bundle);
  if (!out) throw new Error(`esbuild produced no ${bundle}`);
  fs.mkdirSync(outDir, { recursive: true });
  const inputs = Object.keys(result.metafile.inputs).map((f) => path.resolve(REPO_ROOT, f));
  writeAtomic(inputsFile, JSON.stringify(inputs, null, 1));
  writeAtomic(bundle, out.contents);
  return { bundle, rebuilt: true, ms: performance.now() - t0 };
}

// ---------------------------------------------------------------------------
// workerd config

/** A Cap'n Proto text literal (the format has C-style escapes, no \u). */
function capnpText(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0) ?? 0;
    if (ch === '"') out += '\\"';
    else if (ch === "\\") out += "\\\\";
    else if (c < 0x20 || c === 0x7f) out += `\\x${c.toString(16).padStart(2, "0")}`;
    else out += ch;
  }
  return `${out}"`;
}

export interface WorkerdConfigOptions {
  /** Bundle file name, relative to the directory the config is written to. */
  bundleFile: string;
  dataDir: string;
  port: number;
  compatibilityDate: string;
  compatibilityFlags?: string[];
  env?: LocalServerEnv;
  /** Durable Object namespaces (wrangler.toml's `[[durable_objects.bindings]]`). */
  durableObjects: { binding: string; className: string }[];
}

/**
 * A namespace's uniqueKey: `edgemq-<class>`, as workerd names a wrangler
 * project's. It names the namespace's directory of SQLite files under the data
 * directory, so it must never change for an existing class.
 */
export function uniqueKeyOf(className: string): string {
  return `edgemq-${className}`;
}

export function workerdConfig(o: WorkerdConfigOptions): string {
  const namespacesOf = o.durableObjects.map((ns) => ({
    ...ns,
    uniqueKey: uniqueKeyOf(ns.className),
  }));
  const bindings: string[] = [];
  for (const ns of namespacesOf) {
    bindings.push(
      `(name = ${capnpText(ns.binding)}, durableObjectNamespace = ${capnpText(ns.className)})`,
    );
  }
  for (const name of TEXT_BINDINGS) {
    const v = o.env?.[name];
    if (v !== undefined) bindings.push(`(name = ${capnpText(name)}, text = ${capnpText(v)})`);
  }
  bindings.push(`(name = "EDGEMQ_LOCAL", text = "1")`);
  const namespaces = namespacesOf.map(
    (ns) =>
      `(className = ${capnpText(ns.className)}, uniqueKey = ${capnpText(ns.uniqueKey)}, enableSql = true)`,
  );
  const flags = (o.compatibilityFlags ?? []).map(capnpText).join(", ");
  return `# Generated by scripts/local-server.ts; do not edit.
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "edgemq", worker = .edgemq),
    (name = "disk", disk = (path = ${capnpText(path.resolve(o.dataDir))}, writable = true)),
    # Outbound fetch (transaction check-back): public addresses and loopback,
    # so a producer's check URL on this machine (http://127.0.0.1:…) works.
    (name = "internet", network = (allow = ["public", "local"], tlsOptions = (trustBrowserCas = true))),
  ],
  sockets = [
    (name = "http", address = ${capnpText(`127.0.0.1:${o.port}`)}, http = (), service = "edgemq"),
  ],
);

const edgemq :Workerd.Worker = (
  modules = [(name = "worker.js", esModule = embed ${capnpText(o.bundleFile)})],
  compatibilityDate = ${capnpText(o.compatibilityDate)},
  compatibilityFlags = [${flags}],
  bindings = [
    ${bindings.join(",\n    ")},
  ],
  durableObjectNamespaces = [
    ${namespaces.join(",\n    ")},
  ],
  durableObjectStorage = (localDisk = "disk"),
  globalOutbound = "internet",
);
`;
}

// ---------------------------------------------------------------------------
// workerd process

/** The lock file in a data directory. Never removed or replaced: see {@link writeHolder}. */
export const LOCK_FILE = "edgemq.lock";

/** flock's exit code when the lock is held elsewhere (EX_TEMPFAIL). */
const LOCK_CONFLICT_EXIT = 75;

/**
 * How long a start waits for the lock: long enough for a predecessor that
 * was just SIGKILLed to finish dying (its descriptors close as it exits),
 * short enough that a second start on a busy directory refuses promptly.
 */
const LOCK_WAIT_S = "1";

let guardTools: { flock: string; setpriv: string } | null | undefined;

/** util-linux's flock (with --no-fork, 2.38+) and setpriv (with --pdeathsig), or null. */
function findGuardTools(): { flock: string; setpriv: string } | null {
  if (guardTools !== undefined) return guardTools;
  guardTools = null;
  if (process.platform !== "linux") return guardTools;
  const helpText = (file: string): string => {
    const r = spawnSync(file, ["--help"], { encoding: "utf8", timeout: 5000 });
    return r.status === 0 ? r.stdout : "";
  };
  const dirs = (process.env.PATH ?? "").split(path.delimiter).filter(Boolean);
  const find = (name: string) =>
    [...dirs, "/usr/bin", "/bin"]
      .map((d) => path.join(d, name))
      .find((f) => {
        try {
          fs.accessSync(f, fs.constants.X_OK);
          return true;
        } catch {
          return false;
        }
      });
  const flock = find("flock");
  const setpriv = find("setpriv");
  if (
    flock &&
    setpriv &&
    helpText(flock).includes("--no-fork") &&
    helpText(setpriv).includes("--pdeathsig")
  ) {
    guardTools = { flock, setpriv };
  }
  return guardTools;
}

/**
 * Records the holder in the lock file, in place: the lock lives on the
 * file's inode, so a rename (or a delete) would let the next start lock a
 * new inode while this one still runs.
 */
function writeHolder(lockFile: string, holder: LockHolder): void {
  try {
    fs.writeFileSync(lockFile, `${JSON.stringify(holder)}\n`);
  } catch {
    // Informational only (it names the holder in the next start's refusal).
  }
}

function readHolder(lockFile: string): LockHolder | undefined {
  try {
    const h = JSON.parse(fs.readFileSync(lockFile, "utf8")) as Partial<LockHolder>;
    if (typeof h.pid === "number" && typeof h.url === "string" && typeof h.startedAt === "string")
      return h as LockHolder;
  } catch {
    // empty (the holder is still starting) or not ours
  }
  return undefined;
}

/** Path of the workerd binary (the `workerd` package's default export). */
export function workerdBinary(): string {
  const require = createRequire(import.meta.url);
  const mod = require("workerd") as { default: string };
  return mod.default;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Don't leave workerd processes behind when this process exits without stop().
  process.on("exit", () => {
    for (const c of live) c.kill("SIGKILL");
  });
}

function tail(max: number): { push(chunk: Buffer | string): void; text(): string } {
  let buf = "";
  return {
    push(chunk) {
      buf += String(chunk);
      if (buf.length > max * 2) buf = buf.slice(-max);
    },
    text: () => buf.slice(-max),
  };
}

function healthOk(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(
      { host: "127.0.0.1", port, path: "/v1/health", method: "GET", agent: false, timeout: 2000 },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode === 200));
        res.on("error", () => resolve(false));
      },
    );
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(false));
    req.end();
  });
}

/** Resolves with the port of the socket named `name`, from workerd's control-fd messages. */
function listenPort(control: Readable, name: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: control });
    lines.on("line", (line) => {
      try {
        const msg = JSON.parse(line) as { event?: string; socket?: string; port?: number };
        if (msg.event === "listen" && msg.socket === name && typeof msg.port === "number") {
          resolve(msg.port);
        }
      } catch {
        // not ours
      }
    });
    lines.on("close", () => reject(new Error("workerd closed its control fd before listening")));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function startLocalServer(opts: LocalServerOptions): Promise<LocalServer> {
  const port = opts.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`bad port ${port}`);
  const wrangler = readWranglerToml();
  const { bundle } = await buildWorker({ entry: opts.entry });
  const dataDir = path.resolve(opts.dataDir);
  fs.mkdirSync(dataDir, { recursive: true });

  // The config embeds the bundle by a path relative to itself, so it lives next
  // to it. workerd reads both at startup; the config is removed once it listens.
  const configFile = path.join(
    path.dirname(bundle),
    `workerd-${process.pid}-${randomBytes(4).toString("hex")}.capnp`,
  );
  writeAtomic(
    configFile,
    workerdConfig({
      bundleFile: path.basename(bundle),
      dataDir,
      port,
      compatibilityDate: wrangler.compatibilityDate,
      compatibilityFlags: wrangler.compatibilityFlags,
      durableObjects: wrangler.durableObjects,
      env: opts.env,
    }),
    0o600, // may hold ADMIN_TOKEN / TOKEN_SECRET / METRICS_TOKEN
  );
  const removeConfig = () => fs.rmSync(configFile, { force: true });

  const workerdArgs = [workerdBinary(), "serve", configFile, "--control-fd=3"];
  const lockFile = path.join(dataDir, LOCK_FILE);
  const tools = findGuardTools();
  const argv = tools
    ? [
        tools.flock,
        "--exclusive",
        "--timeout",
        LOCK_WAIT_S,
        "--conflict-exit-code",
        String(LOCK_CONFLICT_EXIT),
        "--no-fork",
        lockFile,
        tools.setpriv,
        "--pdeathsig",
        "KILL",
        "--",
        ...workerdArgs,
      ]
    : workerdArgs;
  // The parent-death signal fires when the *thread* that forked dies: spawn
  // from the main thread (a worker_threads Worker that exits would take
  // workerd with it).
  const child = spawn(argv[0]!, argv.slice(1), {
    cwd: REPO_ROOT,
    stdio: ["ignore", "pipe", "pipe", "pipe"],
    detached: opts.detached === true,
  });
  live.add(child);
  installExitHook();
  const errTail = tail(64 * 1024);
  // Always drain both pipes: a full pipe would block workerd.
  child.stdout?.on("data", (d: Buffer) => {
    if (!opts.quiet) process.stdout.write(d);
  });
  child.stderr?.on("data", (d: Buffer) => {
    errTail.push(d);
    if (!opts.quiet) process.stderr.write(d);
  });

  let exitCode: number | null = null;
  let exitSignal: NodeJS.Signals | null = null;
  let exited = false;
  const exitedP = new Promise<number | null>((resolve) => {
    child.once("exit", (code, signal) => {
      exited = true;
      exitCode = code;
      exitSignal = signal;
      live.delete(child);
      removeConfig();
      resolve(code);
    });
  });
  const spawnError = new Promise<never>((_, reject) => child.once("error", reject));
  spawnError.catch(() => {}); // only awaited during startup

  const fail = async (why: string): Promise<never> => {
    // (No pid: the spawn itself failed, and no exit event will come.)
    if (!exited && child.pid !== undefined) {
      child.kill("SIGKILL");
      await exitedP;
    }
    removeConfig();
    if (tools && exitCode === LOCK_CONFLICT_EXIT) {
      throw new DataDirInUseError(dataDir, readHolder(lockFile));
    }
    const status = exitSignal ? `signal ${exitSignal}` : `exit code ${exitCode}`;
    const err = errTail.text().trim();
    throw new Error(
      `local edgemq server failed to start: ${why} (workerd ${status})` +
        (err ? `\n--- workerd stderr ---\n${err}` : " (no stderr)"),
    );
  };

  const timeoutMs = opts.startupTimeoutMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), timeoutMs);
  });
  const listening = listenPort(child.stdio[3] as Readable, "http");
  listening.catch(() => {}); // rejects when workerd exits; only awaited during startup

  let actualPort: number;
  try {
    const r = await Promise.race([
      listening,
      exitedP.then(() => "exited" as const),
      timedOut,
      spawnError,
    ]);
    if (r === "exited") return await fail("workerd exited before listening");
    if (r === "timeout") return await fail(`not listening after ${timeoutMs} ms`);
    actualPort = r;
  } catch (e) {
    return await fail(e instanceof Error ? e.message : String(e));
  } finally {
    clearTimeout(timer);
  }
  removeConfig();

  for (;;) {
    if (exited) return await fail("workerd exited before /v1/health answered 200");
    if (await healthOk(actualPort)) break;
    if (Date.now() > deadline) return await fail(`GET /v1/health not 200 after ${timeoutMs} ms`);
    await sleep(25);
  }

  const url = `http://127.0.0.1:${actualPort}`;
  if (tools) {
    writeHolder(lockFile, { pid: child.pid as number, url, startedAt: new Date().toISOString() });
  }
  return {
    url,
    port: actualPort,
    pid: child.pid as number,
    child,
    guarded: tools !== null,
    stderr: () => errTail.text(),
    stop(signal: NodeJS.Signals = "SIGTERM", stopOpts?: { killAfterMs?: number }) {
      if (exited) return exitedP;
      child.kill(signal);
      const killAfterMs = stopOpts?.killAfterMs;
      if (killAfterMs !== undefined) {
        const timer = setTimeout(() => {
          if (!exited) child.kill("SIGKILL");
        }, killAfterMs);
        void exitedP.then(() => clearTimeout(timer));
      }
      return exitedP;
    },
  };
}
