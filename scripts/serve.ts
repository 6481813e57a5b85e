/**
 * `npm start`: serves the edgemq API on http://127.0.0.1:$PORT under workerd,
 * with Durable Object data kept in $DATA_DIR across restarts.
 *
 * Environment: PORT (default 8787; 0 = any free port), DATA_DIR (default
 * `.edgemq/`, relative to the current directory), and the Worker's text
 * bindings ADMIN_TOKEN, TOKEN_SECRET, CORS_ORIGINS, METRICS_TOKEN,
 * RATE_LIMIT_PER_MINUTE, AUTH_FAILURES_PER_MINUTE (each bound only when
 * set). EDGEMQ_ENTRY: another Worker entry module, to test this script with.
 *
 * Shutdown (SIGTERM, SIGINT, SIGHUP). What workerd 2026-11-17 does by itself,
 * measured here:
 * - SIGTERM: it stops calling accept() (the socket stays bound, so a new
 *   connection sits unanswered in the kernel backlog and is reset when workerd
 *   exits), closes idle keep-alive connections, lets every request in flight
 *   finish, then exits with code 0. It has NO deadline: a 30 s long-poll
 *   holds it for 30 s, and a second SIGTERM changes nothing.
 * - SIGINT: it dies at once (killed by the signal); requests in flight get a
 *   connection reset. A terminal's Ctrl-C sends SIGINT to the whole
 *   foreground process group, so workerd runs in its own group (`detached`)
 *   and only this process sees Ctrl-C.
 * So on any of the three signals we send workerd SIGTERM, and SIGKILL it if it
 * has not exited after GRACE_MS (8 s), to exit within 10 s (api.md) with a
 * margin for a loaded machine (npm itself exits ~80 ms after this script).
 * Requests still running then (long-polls) are cut short; committed writes
 * are already durable (SQLite WAL, fsync per commit).
 *
 * Death without a signal to handle (SIGKILL of this process or of the whole
 * `npm start` group, as supervisors do): workerd, in its own group, would
 * outlive us, so local-server.ts starts it with the kernel's parent-death
 * signal (SIGKILL) set. And one broker per DATA_DIR: workerd holds an
 * flock(2) on `$DATA_DIR/edgemq.lock` that the kernel drops when it dies, so a
 * second `npm start` on the same directory exits with code 1 and says who
 * holds it, and the start after a crash finds the lock free.
 *
 * `npm start` runs `exec node scripts/serve.ts`: without `exec`, npm's
 * `sh -c` stays between npm and node, and a SIGTERM sent to npm (which npm
 * forwards to its child, the shell) kills only the shell, orphaning this
 * process and workerd.
 */
import * as path from "node:path";
import {
  DataDirInUseError,
  startLocalServer,
  TEXT_BINDINGS,
  type LocalServer,
  type LocalServerEnv,
} from "./local-server.ts";

const GRACE_MS = 8_000;

function log(line: string): void {
  process.stdout.write(`edgemq: ${line}\n`);
}

const env = process.env;
const adminToken = env.ADMIN_TOKEN || undefined;
const tokenSecret = env.TOKEN_SECRET || undefined;

const portText = env.PORT || "8787";
const port = Number(portText);
if (!/^\d+$/.test(portText) || port > 65535) {
  process.stderr.write(`edgemq: bad PORT ${JSON.stringify(portText)}\n`);
  process.exit(2);
}

// These must be the first lines printed (before the slow part: bundling, starting workerd).
if (adminToken === undefined && tokenSecret === undefined) {
  log("WARNING: neither ADMIN_TOKEN nor TOKEN_SECRET is set: running OPEN, with NO");
  log("WARNING: authentication. Anyone who can reach 127.0.0.1 has every permission.");
  log("WARNING: Listening on loopback (127.0.0.1) only. Web pages are refused: only");
  log("WARNING: loopback Host names, the console's own origin and CORS_ORIGINS, JSON bodies.");
}

const dataDir = path.resolve(env.DATA_DIR || ".edgemq/");
const bindings: LocalServerEnv = {};
for (const name of TEXT_BINDINGS) {
  const value = env[name];
  // An empty token would be a token anyone can guess: treat it as unset.
  if (value !== undefined && (value !== "" || name === "CORS_ORIGINS")) bindings[name] = value;
}

let server: LocalServer | undefined;
let shuttingDown = false;
let pendingSignal: NodeJS.Signals | undefined;
function shutdown(signal: NodeJS.Signals): void {
  // Repeats are ignored: npm forwards the SIGINT that a terminal's Ctrl-C
  // already sent to the whole process group, so one Ctrl-C arrives twice.
  if (shuttingDown) return;
  if (server === undefined) {
    pendingSignal ??= signal; // still starting: stop right after
    return;
  }
  shuttingDown = true;
  log(`${signal}: shutting down (finishing requests in flight, at most ${GRACE_MS / 1000} s)`);
  const t0 = Date.now();
  const forced = setTimeout(() => {
    log(`requests still running after ${GRACE_MS / 1000} s (long-polls?): killing workerd`);
  }, GRACE_MS);
  void server.stop("SIGTERM", { killAfterMs: GRACE_MS }).then(() => {
    clearTimeout(forced);
    log(`stopped in ${Date.now() - t0} ms`);
    process.exit(0);
  });
}
for (const sig of ["SIGTERM", "SIGINT", "SIGHUP"] as const) process.on(sig, shutdown);

try {
  server = await startLocalServer({
    port,
    dataDir,
    env: bindings,
    detached: true,
    entry: env.EDGEMQ_ENTRY || undefined,
  });
} catch (e) {
  const hint = e instanceof DataDirInUseError ? " (DATA_DIR)" : "";
  process.stderr.write(`edgemq: ${e instanceof Error ? e.message : String(e)}${hint}\n`);
  process.exit(1);
}

const auth = [adminToken && "ADMIN_TOKEN", tokenSecret && "TOKEN_SECRET"].filter(Boolean);
log(`listening on ${server.url}`);
log(`data dir ${dataDir}`);
log(`auth: ${auth.length > 0 ? auth.join(" + ") : "none (open)"}; workerd pid ${server.pid}`);
if (!server.guarded) {
  log("WARNING: util-linux flock/setpriv not found: DATA_DIR is not locked against a second");
  log("WARNING: broker, and workerd may outlive this process if it is SIGKILLed.");
}

if (pendingSignal !== undefined) shutdown(pendingSignal);

// Under npm the script is exec'd (`exec node scripts/serve.ts`) so npm's
// forwarded signals reach this process; should npm itself die without a
// signal (SIGKILL), don't outlive it: shut down as on SIGTERM.
if (env.npm_lifecycle_event) {
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) shutdown("SIGTERM");
  }, 1000).unref();
}

server.child.once("exit", (code, signal) => {
  if (shuttingDown) return;
  process.stderr.write(`edgemq: workerd exited unexpectedly (code ${code}, signal ${signal})\n`);
  process.exit(1);
});
