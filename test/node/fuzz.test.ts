/**
 * Fuzzing the real local server (workerd, SQLite on disk) with random and
 * mutated requests: bodies, paths, methods, headers, encodings, invalid
 * UTF-8, deep JSON, huge numbers, wrong types, hostile tokens, malformed HTTP.
 *
 * Bounded in count AND time (FUZZ_REQUESTS, default 3000; 60 s), seeded
 * (FUZZ_SEED, printed on failure) so a failure replays. Asserts: no 5xx, every
 * JSON error in the contract's shape, the server alive with health 200
 * afterwards, and the counted topic holds exactly the messages that accepted
 * sends reported stored: a rejected request stores nothing.
 *
 * A second, shorter run fuzzes the open local mode (no secrets) with the
 * headers only web pages send (Host, Origin, Sec-Fetch-Site, Content-Type):
 * each answer must be exactly the refusal the open-mode rules call for, and
 * the counted topic again holds exactly what was accepted.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { Agent, request } from "node:http";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LocalServer, startLocalServer } from "../../scripts/local-server.ts";

const ADMIN_TOKEN = "fuzz-admin-token";
const TOKEN_SECRET = "fuzz-token-secret";
const SEED = Number(process.env.FUZZ_SEED ?? 20_261_117) >>> 0;
const REQUESTS = Math.min(Number(process.env.FUZZ_REQUESTS ?? 3000), 20_000);
const DEADLINE_MS = 60_000;
const CONCURRENCY = 6;
const PER_REQUEST_TIMEOUT_MS = 20_000;

/** The topic whose message count is checked: only the send generator touches it. */
const COUNTED = "fuzz-counted";
/** A topic anything may happen to (admin calls included). */
const PLAYGROUND = "fuzz-play";
const GROUP = "fz-group";

let server: LocalServer;
/** The server `send` and `sendRaw` talk to: the secured one, then the open one. */
let target: LocalServer;
let dataDir: string;
let scoped: string;
const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });

// ---------------------------------------------------------------------------
// seeded randomness

/** mulberry32: small, fast, good enough to pick fuzz cases reproducibly. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = prng(SEED);
const int = (n: number) => Math.floor(rand() * n);
const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
const chance = (p: number) => rand() < p;

// ---------------------------------------------------------------------------
// raw HTTP

interface Req {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
  /** A send to the counted topic: its stored results are counted when it succeeds. */
  counted?: boolean;
}
interface Res {
  status: number;
  body: Buffer;
}

/** Methods workerd knows; it answers any other itself (501, then closes the connection). */
const KNOWN_METHODS = new Set([
  "GET",
  "HEAD",
  "POST",
  "PUT",
  "DELETE",
  "PATCH",
  "OPTIONS",
  "QUERY",
]);

/**
 * Answers the runtime's HTTP layer gives before the Worker runs, in plain
 * text: a request target with raw non-ASCII bytes, an unknown method.
 */
function runtimeAnswer(r: Req, res: Res): boolean {
  const text = res.body.toString();
  if (res.status === 400 && text === "invalid URI") return true;
  return (
    res.status === 501 &&
    !KNOWN_METHODS.has(r.method) &&
    text === "ERROR: Unrecognized request method."
  );
}

function send(r: Req): Promise<Res> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port: target.port,
        method: r.method,
        path: r.path,
        // Always frame the body: node sends a GET/DELETE/OPTIONS body unframed,
        // which the server rightly parses as the start of the next request.
        headers: r.body ? { ...r.headers, "content-length": String(r.body.length) } : r.headers,
        // An unknown method makes workerd close the connection: don't share it.
        agent: KNOWN_METHODS.has(r.method) ? agent : false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (d: Buffer) => chunks.push(d));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
        res.on("error", reject);
      },
    );
    req.setTimeout(PER_REQUEST_TIMEOUT_MS, () =>
      req.destroy(new Error(`timeout: ${r.method} ${r.path.slice(0, 200)}`)),
    );
    req.on("error", reject);
    req.end(r.body);
  });
}

/** Writes raw bytes on a fresh connection; resolves with the status line's code, if any came. */
function sendRaw(bytes: Buffer): Promise<number | null> {
  return new Promise((resolve) => {
    const sock = connect(target.port, "127.0.0.1");
    let got = "";
    const done = () => {
      sock.destroy();
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(got);
      resolve(m ? Number(m[1]) : null);
    };
    sock.setTimeout(3000, done);
    sock.on("data", (d) => {
      got += d.toString("latin1");
      if (got.includes("\r\n")) done();
    });
    sock.on("error", done);
    sock.on("close", done);
    sock.write(bytes, () => sock.end());
  });
}

const admin = (method: string, path: string, body?: unknown) =>
  send({
    method,
    path,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
    ...(body !== undefined && { body: Buffer.from(JSON.stringify(body)) }),
  });

async function storedIn(topic: string): Promise<number> {
  const r = await admin("GET", `/v1/topics/${topic}`);
  expect(r.status).toBe(200);
  const stats = JSON.parse(r.body.toString()).queueStats as { messages: number }[];
  return stats.reduce((n, q) => n + q.messages, 0);
}

// ---------------------------------------------------------------------------
// generators

const NUMBERS = [
  "0",
  "1",
  "-1",
  "3",
  "1000",
  "30001",
  "43200001",
  "1e400",
  "-1e400",
  "9007199254740993",
  "1.5",
  "-0",
  "1e21",
  "0x10",
  "NaN",
  "Infinity",
];
const STRINGS = [
  "",
  "x",
  "*",
  "||",
  "a||b",
  "\u0000",
  "\ufeff",
  "é",
  "😀",
  "\\ud800",
  "%2F",
  "../",
  "'; DROP TABLE messages; --",
  "${x}",
  "<script>",
  "a".repeat(300),
  "a".repeat(5000),
];
const SEGMENTS = [
  PLAYGROUND,
  COUNTED,
  "fz-group",
  "nope",
  "",
  ".",
  "..",
  "%2e%2e",
  "%2F",
  "a%2Fb",
  "%00",
  "%",
  "%FF%FE",
  "%C3%A9",
  "*",
  "orders*",
  "a".repeat(128),
  "A-Z_09",
  "t1.fuzz-play.0.1",
  "r1.fuzz-play.fz-group.0.0.h",
  "0",
  "-1",
  "63",
  "64",
  "99999999999999999999",
  "messages",
  "queues",
  "topics",
  "groups",
  "transactions",
  "commit",
  "rollback",
  "offsets",
  "reset",
  "receive",
  "ack",
  "nack",
  "invisibility",
  "heartbeat",
  "dlq",
  "resend",
  "route",
  "purge",
  "offset",
  "tokens",
  "producer-groups",
  "health",
  "v1",
  "\u00e9",
  "😀",
];
const ROUTES: [string, string][] = [
  ["POST", `/v1/topics/{t}/messages`],
  ["DELETE", `/v1/topics/{t}/messages/{s}`],
  ["GET", `/v1/topics/{t}/messages/{s}`],
  ["GET", `/v1/topics/{t}/messages?key={s}`],
  ["GET", `/v1/topics/{t}/messages?from={n}&to={n}&limit={n}`],
  ["GET", `/v1/topics/{t}/queues/{n}/messages?offset={n}&max={n}&waitMs={w}&filter={s}&group={g}`],
  ["PUT", `/v1/topics/{t}`],
  ["GET", `/v1/topics/{t}`],
  ["GET", `/v1/topics`],
  ["POST", `/v1/topics/{t}/purge`],
  ["GET", `/v1/topics/{t}/route`],
  ["POST", `/v1/topics/{t}/transactions`],
  ["GET", `/v1/topics/{t}/transactions`],
  ["POST", `/v1/transactions/{s}/commit`],
  ["POST", `/v1/transactions/{s}/rollback`],
  ["PUT", `/v1/groups/{g}`],
  ["GET", `/v1/groups/{g}`],
  ["POST", `/v1/groups/{g}/heartbeat`],
  ["PUT", `/v1/groups/{g}/topics/{t}/queues/{n}/offset`],
  ["GET", `/v1/groups/{g}/topics/{t}/offsets`],
  ["POST", `/v1/groups/{g}/topics/{t}/offsets/reset`],
  ["POST", `/v1/groups/{g}/topics/{t}/receive`],
  ["POST", `/v1/groups/{g}/topics/{t}/ack`],
  ["POST", `/v1/groups/{g}/topics/{t}/nack`],
  ["POST", `/v1/groups/{g}/topics/{t}/invisibility`],
  ["GET", `/v1/groups/{g}/dlq/messages`],
  ["POST", `/v1/groups/{g}/dlq/resend`],
  ["PUT", `/v1/producer-groups/{g}`],
  ["GET", `/v1/producer-groups/{g}`],
  ["GET", `/v1/producer-groups`],
  ["GET", `/v1/transactions/{s}`],
  ["POST", `/v1/tokens`],
];
const METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "QUERY", "FOO"];
const KEYS = [
  "messages",
  "message",
  "body",
  "encoding",
  "tag",
  "keys",
  "properties",
  "shardingKey",
  "msgId",
  "priority",
  "receipts",
  "receipt",
  "invisibleMs",
  "waitMs",
  "max",
  "filter",
  "offset",
  "timestamp",
  "to",
  "clientId",
  "topics",
  "queues",
  "retentionMs",
  "maxMessageBytes",
  "overflowPolicy",
  "maxReconsumeTimes",
  "retryDelaysMs",
  "checkUrl",
  "sub",
  "publish",
  "subscribe",
  "groups",
  "ttlSeconds",
  "msgIds",
  "producerGroup",
  "producerGroups",
  "rotateSecret",
  "__proto__",
  "constructor",
];

const deep = (n: number) =>
  chance(0.5) ? "[".repeat(n) + "]".repeat(n) : '{"a":'.repeat(n) + "1" + "}".repeat(n);

/** A random JSON value, sometimes hostile; depth-bounded so generating it is cheap. */
function value(depth = 0): unknown {
  const k = int(depth > 3 ? 5 : 8);
  switch (k) {
    case 0:
      return Number(pick(NUMBERS));
    case 1:
      return pick(STRINGS);
    case 2:
      return chance(0.5);
    case 3:
      return null;
    case 4:
      return int(2000) - 5;
    case 5:
      return Array.from({ length: int(4) }, () => value(depth + 1));
    default:
      return Object.fromEntries(
        Array.from({ length: int(4) }, () => [pick(KEYS), value(depth + 1)]),
      );
  }
}

/** Serialises with raw tokens (huge numbers, lone surrogate escapes) spliced in now and then. */
function toJson(v: unknown): string {
  let text = JSON.stringify(v) ?? "null";
  if (chance(0.1)) text = text.replace(/"x"/, '"\\ud800"');
  if (chance(0.1))
    text = text.replace(
      /\b\d+\b/,
      pick(["1e400", "123456789012345678901234567890", "-0", "1E-400"]),
    );
  return text;
}

/** A valid message; never scheduled (so the counted topic's count is exact at once). */
function validMessage(): Record<string, unknown> {
  const m: Record<string, unknown> = {
    body: pick(["hello", "😀 ok", "x".repeat(int(2000)), "{}"]),
  };
  if (chance(0.3)) m.tag = pick(["TagA", "TagB"]);
  if (chance(0.3)) m.keys = ["k1", `k${int(100)}`];
  if (chance(0.3)) m.properties = { region: pick(["eu", "us"]), n: String(int(100)) };
  if (chance(0.2)) m.shardingKey = `s${int(10)}`;
  if (chance(0.2)) m.msgId = `fz-${int(50)}`; // some duplicates on purpose
  if (chance(0.2)) m.priority = int(10);
  if (chance(0.1))
    Object.assign(m, { body: Buffer.from("bin\u0000ary").toString("base64"), encoding: "base64" });
  return m;
}

/** Byte-level mutations of a body. */
function mutateBytes(buf: Buffer): Buffer {
  const b = Buffer.from(buf);
  const op = int(7);
  if (b.length === 0) return Buffer.from([0xff]);
  switch (op) {
    case 0: // flip bytes
      for (let i = 0; i < 1 + int(4); i++) b[int(b.length)] = int(256);
      return b;
    case 1: // truncate
      return b.subarray(0, int(b.length));
    case 2: {
      // splice invalid UTF-8
      const at = int(b.length);
      return Buffer.concat([
        b.subarray(0, at),
        Buffer.from(pick([[0xff], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0x80]])),
        b.subarray(at),
      ]);
    }
    case 3: // duplicate a slice
      return Buffer.concat([b, b.subarray(int(b.length))]);
    case 4: // NUL bytes and control characters
      b[int(b.length)] = pick([0, 1, 0x1b, 0x7f]);
      return b;
    case 5: // UTF-16 instead of UTF-8
      return Buffer.from(b.toString("latin1"), "utf16le");
    default: // BOM prefix
      return Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), b]);
  }
}

/** A structural mutation of a valid send body. */
function mutateSend(messages: Record<string, unknown>[]): string {
  const op = int(10);
  const m = messages[int(messages.length)]!;
  switch (op) {
    case 0:
      m[pick(KEYS)] = value();
      break;
    case 1:
      m.body = value();
      break;
    case 2:
      m.properties = Object.fromEntries(
        Array.from({ length: 60 + int(10) }, (_, i) => [`p${i}`, "v".repeat(int(5000))]),
      );
      break;
    case 3:
      m.keys = Array.from({ length: int(40) }, () => pick(STRINGS));
      break;
    case 4:
      m.priority = pick([10, -1, 4.5, "4", 1e308]);
      break;
    case 5:
      return `{"messages":[${toJson(m)},${deep(2000 + int(50_000))}]}`;
    case 6:
      m.encoding = pick(["base64", "utf16", "", "UTF8"]);
      break;
    case 7:
      return toJson({ messages: messages.map(() => value()) });
    case 8:
      return toJson(
        pick([{ messages: {} }, { messages: [] }, [], { message: messages }, "messages", null]),
      );
    default:
      m.tag = pick(STRINGS);
      break;
  }
  return toJson({ messages });
}

function authHeader(): Record<string, string> {
  const r = int(12);
  if (r < 5) return { authorization: `Bearer ${ADMIN_TOKEN}` };
  if (r < 8) return { authorization: `Bearer ${scoped}` };
  const [h, p, s] = scoped.split(".");
  return {
    authorization: pick([
      "",
      "Bearer",
      `Bearer ${ADMIN_TOKEN}x`,
      `Basic ${Buffer.from(`admin:${ADMIN_TOKEN}`).toString("base64")}`,
      `Bearer ${h}.${p}.`,
      `Bearer ${h}.${p}.${s!.slice(0, -2)}AA`,
      `Bearer ${Buffer.from('{"alg":"none","typ":"JWT"}').toString("base64url")}.${p}.`,
      `Bearer ${"x".repeat(20_000 + int(20_000))}`,
      `Bearer ${scoped} ${scoped}`,
    ]),
  };
}

function junkHeaders(): Record<string, string> {
  const h: Record<string, string> = {};
  const n = int(4);
  for (let i = 0; i < n; i++) {
    h[
      pick([
        "content-type",
        "content-encoding",
        "accept",
        "origin",
        "x-forwarded-for",
        "cf-connecting-ip",
        "sec-fetch-site",
        "x-edgemq-signature",
        "accept-encoding",
        "x-junk",
        "cookie",
        "range",
      ])
    ] = pick([
      "application/json",
      "text/plain",
      "gzip",
      "br",
      "application/json; charset=latin1",
      "https://evil.example",
      "cross-site",
      "203.0.113.7",
      "2001:db8::1",
      "v1=00",
      "*/*",
      "x".repeat(int(2) ? 10 : 60_000),
      "bytes=0-1",
      "a=b",
    ]);
  }
  if (chance(0.03)) for (let i = 0; i < 120; i++) h[`x-many-${i}`] = "v";
  return h;
}

function fillPath(template: string): string {
  return template
    .replace(/\{t\}/g, () => (chance(0.7) ? PLAYGROUND : pick(SEGMENTS)))
    .replace(/\{g\}/g, () => (chance(0.6) ? GROUP : pick(SEGMENTS)))
    .replace(/\{n\}/g, () => (chance(0.6) ? String(int(3)) : pick(NUMBERS)))
    .replace(/\{w\}/g, () => pick(["0", "0", "1000", "-1", "30001", "x"]))
    .replace(/\{s\}/g, () => encodeURIComponent(pick(STRINGS)).slice(0, 2000));
}

/** The counted topic is sent to only: with a random token, valid or mutated bodies, odd headers. */
function countedSend(): Req {
  const messages = Array.from({ length: 1 + int(chance(0.05) ? 1100 : 5) }, validMessage);
  let text = chance(0.5) ? JSON.stringify({ messages }) : mutateSend(messages);
  let body: Buffer = Buffer.from(text);
  if (chance(0.25)) body = mutateBytes(body);
  if (chance(0.01)) body = Buffer.alloc(4 * 1024 * 1024 + 1 + int(1000), "x");
  const query = chance(0.15) ? `?queue=${pick(["0", "1", "2", "-1", "64", "x", "1e1"])}` : "";
  return {
    method: "POST",
    path: `/v1/topics/${COUNTED}/messages${query}`,
    headers: {
      ...authHeader(),
      "content-type": "application/json",
      ...(chance(0.2) ? junkHeaders() : {}),
    },
    body,
    counted: true,
  };
}

/** Everything else: random routes, methods, paths, bodies; never the counted topic. */
function randomRequest(): Req {
  let [method, path] = pick(ROUTES);
  path = fillPath(path);
  if (chance(0.15)) method = pick(METHODS);
  if (chance(0.15)) path = "/" + Array.from({ length: 1 + int(7) }, () => pick(SEGMENTS)).join("/");
  if (chance(0.05))
    path += pick(["?token=abc", "?access_token=abc", "?", "?&&&", "?a=%FF", "#frag"]);
  const headers = { ...authHeader(), ...(chance(0.3) ? junkHeaders() : {}) };
  // Any token may open transactions or recall on a topic it publishes to: keep the counted one out.
  if (path.includes(COUNTED)) path = path.split(COUNTED).join(PLAYGROUND);
  let body: Buffer | undefined;
  if (!["GET", "HEAD"].includes(method) || chance(0.05)) {
    const k = int(10);
    if (k < 6) body = Buffer.from(toJson(value()));
    else if (k < 7) body = Buffer.from(deep(1000 + int(100_000)));
    else if (k < 8) body = mutateBytes(Buffer.from(toJson(value())));
    else if (k < 9) body = Buffer.from(Array.from({ length: int(300) }, () => int(256)));
  }
  return { method, path, headers, ...(body !== undefined && { body }) };
}

const RAW_CASES = [
  "GET /v1/health HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
  "POST /v1/topics/fuzz-play/messages HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
  "POST /v1/topics/fuzz-play/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\n{}",
  "GET /v1/\u0000health HTTP/1.1\r\nHost: x\r\n\r\n",
  "GET http://evil.example/v1/topics HTTP/1.1\r\nHost: x\r\n\r\n",
  "GET /v1/topics HTTP/9.9\r\nHost: x\r\n\r\n",
  "\u0016\u0003\u0001\u0000\u00a5\u0001\u0000\u0000",
  "GET /v1/topics HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n",
  "GET /v1/topics HTTP/1.1\r\nHost: x\r\n" + "X-Long: " + "y".repeat(200_000) + "\r\n\r\n",
  "GET " + "/a".repeat(50_000) + " HTTP/1.1\r\nHost: x\r\n\r\n",
];

// ---------------------------------------------------------------------------

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "edgemq-fuzz-"));
  server = await startLocalServer({
    port: 0,
    dataDir,
    quiet: true,
    // Hostile tokens are a third of the requests: the per-address budget of
    // failed authentications (tested on its own) would answer most of them 429.
    env: { ADMIN_TOKEN, TOKEN_SECRET, AUTH_FAILURES_PER_MINUTE: "0" },
  });
  target = server;
  for (const t of [COUNTED, PLAYGROUND]) {
    const r = await admin("PUT", `/v1/topics/${t}`, { queues: 3 });
    if (r.status !== 200) throw new Error(`create ${t}: ${r.status} ${r.body}`);
  }
  const minted = await admin("POST", "/v1/tokens", {
    sub: "fuzzer",
    publish: [COUNTED, "fuzz-*"],
    subscribe: ["fuzz-*"],
    groups: ["fz-*"],
    producerGroups: ["fz-*"],
  });
  scoped = JSON.parse(minted.body.toString()).token;
});

afterAll(async () => {
  agent.destroy();
  await server?.stop("SIGTERM", { killAfterMs: 5000 });
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe("fuzzing the local server", () => {
  it(
    `answers ${REQUESTS} random and mutated requests without a 5xx, storing only what it accepted (seed ${SEED})`,
    { timeout: DEADLINE_MS + 60_000 },
    async () => {
      const before = await storedIn(COUNTED);
      const deadline = Date.now() + DEADLINE_MS;
      const failures: string[] = [];
      const statuses = new Map<number, number>();
      let expectedStored = 0;
      let issued = 0;
      let rawCount = 0;

      const check = (r: Req, res: Res) => {
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        if (runtimeAnswer(r, res)) return;
        const what = `${r.method} ${r.path.slice(0, 120)}`;
        if (res.status >= 500)
          failures.push(`${res.status} for ${what}: ${res.body.toString().slice(0, 300)}`);
        const text = res.body.toString();
        let json: any;
        try {
          json = text ? JSON.parse(text) : undefined;
        } catch {
          if (r.method !== "HEAD")
            failures.push(`non-JSON ${res.status} for ${what}: ${text.slice(0, 100)}`);
          return;
        }
        if (res.status >= 400 && r.method !== "HEAD") {
          const e = json?.error;
          if (!e || typeof e.code !== "string" || typeof e.message !== "string") {
            failures.push(`error not in the contract's shape for ${what}: ${text.slice(0, 200)}`);
          }
        }
        if (r.counted && res.status === 200) {
          for (const x of json.results as { status: string }[]) {
            if (x.status === "stored") expectedStored++;
            else if (x.status !== "duplicate")
              failures.push(`unexpected send status ${x.status} for ${what}`);
          }
        }
      };

      const worker = async () => {
        while (issued < REQUESTS && Date.now() < deadline && failures.length < 20) {
          issued++;
          if (chance(0.01)) {
            rawCount++;
            const code = await sendRaw(Buffer.from(pick(RAW_CASES), "latin1"));
            if (code !== null && code >= 500) failures.push(`${code} for a malformed raw request`);
            continue;
          }
          const r = chance(0.4) ? countedSend() : randomRequest();
          let res: Res;
          try {
            res = await send(r);
          } catch (e) {
            // A refused request may be cut off (e.g. a huge body after a 413); the server must still be up.
            const health = await send({ method: "GET", path: "/v1/health", headers: {} }).catch(
              () => null,
            );
            if (health?.status !== 200)
              failures.push(`server down after ${r.method} ${r.path.slice(0, 120)}: ${String(e)}`);
            continue;
          }
          check(r, res);
        }
      };
      await Promise.all(Array.from({ length: CONCURRENCY }, worker));

      const summary = `seed ${SEED}: ${issued} requests (${rawCount} raw), statuses ${JSON.stringify(Object.fromEntries([...statuses].sort()))}`;
      console.log(`fuzz ${summary}`);
      expect(failures, summary).toEqual([]);
      expect(issued).toBeGreaterThan(Math.min(REQUESTS, 500));

      const health = await send({ method: "GET", path: "/v1/health", headers: {} });
      expect(health.status).toBe(200);
      expect(server.child.exitCode).toBeNull();
      expect(await storedIn(COUNTED)).toBe(before + expectedStored);
      expect(expectedStored).toBeGreaterThan(0);
    },
  );
});

// ---------------------------------------------------------------------------
// The open local mode (no secrets): headers only web pages send.

const OPEN_REQUESTS = Math.min(Number(process.env.FUZZ_OPEN_REQUESTS ?? 800), 5000);
const OPEN_DEADLINE_MS = 30_000;

/** Host names and whether they are loopback, as the open mode must judge them. */
const HOSTS: [string, boolean][] = [
  ["127.0.0.1", true],
  ["localhost", true],
  ["LOCALHOST", true],
  ["[::1]", true],
  ["app.localhost", true],
  ["127.1.2.3", true],
  ["rebound.example", false],
  ["localhost.evil.example", false],
  ["127.0.0.1.nip.io", false],
  ["10.0.0.1", false],
  ["[::2]", false],
];
const SITES = [undefined, undefined, undefined, "none", "same-origin", "same-site", "cross-site"];
const TYPES = [
  undefined,
  "application/json",
  "application/json",
  "application/json; charset=utf-8",
  "Application/JSON",
  "text/plain",
  "text/plain;charset=UTF-8",
  "application/x-www-form-urlencoded",
  "multipart/form-data; boundary=x",
  "application/jsonx",
  "",
];
const OPEN_ROUTES = ROUTES.filter(([, p]) => !p.includes("tokens"));

interface OpenReq extends Req {
  /** What the open-mode rules answer, or null when they let it through. */
  refusal: { status: number; code: string } | null;
}

function openRequest(port: number): OpenReq {
  // Half the time a loopback name, so that the other rules and the routes behind them get exercised.
  const [hostname, loopback] = chance(0.5) ? pick(HOSTS.filter(([, l]) => l)) : pick(HOSTS);
  const host = `${hostname}:${port}`;
  const own = `http://${host.toLowerCase()}`;
  const origin = pick([
    undefined,
    undefined,
    own,
    "https://evil.example",
    "null",
    `http://127.0.0.1:1`,
  ]);
  const site = pick(SITES);
  const type = pick(TYPES);
  const counted = chance(0.4);
  let method: string;
  let path: string;
  let body: Buffer | undefined;
  if (counted) {
    method = "POST";
    path = `/v1/topics/${COUNTED}/messages`;
    body = Buffer.from(JSON.stringify({ messages: [validMessage()] }));
  } else {
    [method, path] = pick(OPEN_ROUTES);
    path = fillPath(path).split(COUNTED).join(PLAYGROUND);
    if (chance(0.1)) method = pick(["GET", "POST", "PUT", "DELETE", "OPTIONS", "HEAD", "PATCH"]);
    if (!["GET", "HEAD"].includes(method) && chance(0.7)) body = Buffer.from(toJson(value()));
  }
  const headers: Record<string, string> = { host };
  if (origin !== undefined) headers.origin = origin;
  if (site !== undefined) headers["sec-fetch-site"] = site;
  if (type !== undefined) headers["content-type"] = type;
  const json = (type ?? "").split(";")[0]!.trim().toLowerCase() === "application/json";
  const mutating = !["GET", "HEAD", "OPTIONS"].includes(method);
  let refusal: OpenReq["refusal"] = null;
  if (!loopback) refusal = { status: 403, code: "FORBIDDEN" };
  else if (origin !== undefined && origin !== own) refusal = { status: 403, code: "FORBIDDEN" };
  else if (site === "cross-site" || site === "same-site")
    refusal = { status: 403, code: "FORBIDDEN" };
  else if (mutating && (body !== undefined || !!type) && !json)
    refusal = { status: 415, code: "UNSUPPORTED_MEDIA_TYPE" };
  return { method, path, headers, ...(body !== undefined && { body }), counted, refusal };
}

describe("fuzzing the open local mode", () => {
  let open: LocalServer | undefined;
  let openDir: string | undefined;

  afterAll(async () => {
    // The runs after this one fuzz the secured server again.
    target = server;
    await open?.stop("SIGTERM", { killAfterMs: 5000 });
    if (openDir) rmSync(openDir, { recursive: true, force: true });
  });

  it(
    `answers ${OPEN_REQUESTS} requests with odd Host, Origin, Sec-Fetch-Site and Content-Type exactly as the open-mode rules say (seed ${SEED})`,
    { timeout: OPEN_DEADLINE_MS + 90_000 },
    async () => {
      openDir = mkdtempSync(join(tmpdir(), "edgemq-fuzz-open-"));
      open = await startLocalServer({ port: 0, dataDir: openDir, quiet: true });
      target = open;
      for (const t of [COUNTED, PLAYGROUND]) {
        expect((await admin("PUT", `/v1/topics/${t}`, { queues: 2 })).status).toBe(200);
      }
      const deadline = Date.now() + OPEN_DEADLINE_MS;
      const failures: string[] = [];
      let issued = 0;
      let refused = 0;
      let expectedStored = 0;
      const worker = async () => {
        while (issued < OPEN_REQUESTS && Date.now() < deadline && failures.length < 20) {
          issued++;
          const r = openRequest(open!.port);
          let res: Res;
          try {
            res = await send(r);
          } catch (e) {
            // Node refuses some fuzzed paths itself (raw non-ASCII); the server must still be up.
            const health = await send({ method: "GET", path: "/v1/health", headers: {} }).catch(
              () => null,
            );
            if (health?.status !== 200)
              failures.push(`server down after ${r.method} ${r.path}: ${String(e)}`);
            continue;
          }
          const what = `${r.method} ${r.path.slice(0, 80)} ${JSON.stringify(r.headers)}`;
          if (res.status >= 500) failures.push(`${res.status} for ${what}`);
          if (runtimeAnswer(r, res) || r.method === "HEAD") continue;
          const text = res.body.toString();
          let json: any;
          try {
            json = text ? JSON.parse(text) : undefined;
          } catch {
            // The console's HTML, when a fuzzed path lands there.
          }
          const byGuard =
            typeof json?.error?.message === "string" &&
            json.error.message.startsWith("running open");
          if (r.refusal) {
            refused++;
            if (res.status !== r.refusal.status || json?.error?.code !== r.refusal.code || !byGuard)
              failures.push(
                `expected ${r.refusal.status} ${r.refusal.code}, got ${res.status} ${text.slice(0, 120)} for ${what}`,
              );
          } else if (byGuard) {
            failures.push(
              `refused by the open-mode rules, but should not be: ${res.status} for ${what}`,
            );
          }
          if (r.counted && res.status === 200) {
            for (const x of json.results as { status: string }[])
              if (x.status === "stored") expectedStored++;
          }
        }
      };
      await Promise.all(Array.from({ length: CONCURRENCY }, worker));
      const summary = `seed ${SEED}: ${issued} open-mode requests, ${refused} refused by the rules`;
      console.log(`fuzz ${summary}`);
      expect(failures, summary).toEqual([]);
      expect(refused).toBeGreaterThan(issued / 4);
      expect(expectedStored).toBeGreaterThan(0);
      expect(await storedIn(COUNTED)).toBe(expectedStored);
    },
  );
});

// ---------------------------------------------------------------------------
// Senders (issue 16, items 1, 2, 6): several senders with overlapping msgIds,
// transactions ended by their owner, by others and by guesses, and parked
// long-polls, some of whose clients vanish. Each answer is checked against a
// model of what that sender may see, not only for its shape.

const SENDER_REQUESTS = Math.min(Number(process.env.FUZZ_SENDER_REQUESTS ?? 600), 5000);
const SENDER_DEADLINE_MS = 30_000;
const SENDERS_TOPIC = "fuzz-senders";

interface Sender {
  /** null: the admin space. */
  sub: string | null;
  headers: Record<string, string>;
}

describe("fuzzing senders, transactions and parked waits", () => {
  const senders: Sender[] = [];

  beforeAll(async () => {
    const r = await admin("PUT", `/v1/topics/${SENDERS_TOPIC}`, { queues: 3 });
    if (r.status !== 200) throw new Error(`create ${SENDERS_TOPIC}: ${r.status}`);
    senders.push({ sub: null, headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    for (const sub of ["fz-sender-a", "fz-sender-b", "fz-sender-c"]) {
      const minted = await admin("POST", "/v1/tokens", {
        sub,
        publish: ["fuzz-*"],
        subscribe: ["fuzz-*"],
        groups: ["fz-*"],
        producerGroups: ["fz-*"],
      });
      const token = JSON.parse(minted.body.toString()).token as string;
      senders.push({ sub, headers: { authorization: `Bearer ${token}` } });
    }
  });

  it(
    `keeps every sender's msgIds, transactions and waits its own over ${SENDER_REQUESTS} requests (seed ${SEED})`,
    { timeout: SENDER_DEADLINE_MS + 60_000 },
    async () => {
      const deadline = Date.now() + SENDER_DEADLINE_MS;
      const failures: string[] = [];
      const statuses = new Map<string, number>();
      /** Stored (or scheduled) answers per sender and msgId: each must be exactly 1. */
      const firsts = new Map<string, number>();
      /** Every msgId a sender sent (recall by anyone else must not find it). */
      const sent = new Map<string | null, Set<string>>();
      const txs: { txId: string; owner: string | null }[] = [];
      const committed = new Set<string>();
      /** Sender-and-msgId keys (or bare msgIds, after an admin recall) recalled at least once. */
      const recalled = new Set<string>();
      let stored = 0;
      let issued = 0;
      const json = (h: Record<string, string>) => ({ ...h, "content-type": "application/json" });
      const call = async (s: Sender, method: string, path: string, body?: unknown) => {
        const res = await send({
          method,
          path,
          headers: json(s.headers),
          ...(body !== undefined && { body: Buffer.from(JSON.stringify(body)) }),
        });
        const route = path.split("?")[0]!.replace(/sid-\d+|[^/]{20,}|\/\d+\//g, "…");
        const tag = `${method} ${route} ${res.status}`;
        statuses.set(tag, (statuses.get(tag) ?? 0) + 1);
        if (res.status >= 500) failures.push(`${res.status} for ${method} ${path}: ${res.body}`);
        const text = res.body.toString();
        return { status: res.status, body: text ? JSON.parse(text) : undefined };
      };
      const msgId = () => `sid-${int(12)}`;
      const who = (s: Sender) => s.sub ?? "admin";

      const ops: (() => Promise<void>)[] = [
        // Sends with overlapping msgIds, now and then scheduled.
        async () => {
          const s = pick(senders);
          const messages = Array.from({ length: 1 + int(3) }, () => ({
            body: "x",
            msgId: msgId(),
            ...(chance(0.2) && { delayMs: 3_600_000 }),
          }));
          // Recorded before the answer: a recall racing this send may find it.
          let set = sent.get(s.sub);
          if (!set) sent.set(s.sub, (set = new Set()));
          for (const m of messages) set.add(m.msgId);
          const r = await call(s, "POST", `/v1/topics/${SENDERS_TOPIC}/messages`, { messages });
          if (r.status !== 200) {
            failures.push(`send by ${who(s)}: ${r.status}`);
            return;
          }
          r.body.results.forEach((x: { status: string; msgId: string }) => {
            const key = `${who(s)}\u0000${x.msgId}`;
            if (x.status === "stored" || x.status === "scheduled") {
              firsts.set(key, (firsts.get(key) ?? 0) + 1);
              if (x.status === "stored") stored++;
            } else if (x.status === "duplicate") {
              firsts.set(key, firsts.get(key) ?? 0);
            } else failures.push(`send status ${x.status}`);
          });
        },
        // Recalls: a scoped sender never finds another sender's message.
        async () => {
          const s = pick(senders);
          const id = msgId();
          const r = await call(s, "DELETE", `/v1/topics/${SENDERS_TOPIC}/messages/${id}`);
          if (![200, 404, 409].includes(r.status)) failures.push(`recall: ${r.status}`);
          if (s.sub !== null && r.status !== 404 && !sent.get(s.sub)?.has(id))
            failures.push(`${s.sub} recalled ${id} it never sent: ${r.status}`);
          // A recalled msgId may be stored again (its sender's, or with the admin's, anyone's).
          if (r.status === 200) recalled.add(s.sub === null ? id : `${who(s)}\u0000${id}`);
        },
        // Transactions: prepared by one sender, ended by anyone, or by a guess.
        async () => {
          const s = pick(senders);
          const r = await call(s, "POST", `/v1/topics/${SENDERS_TOPIC}/transactions`, {
            message: { body: "tx" },
            producerGroup: "fz-pg",
          });
          if (r.status === 200) txs.push({ txId: r.body.txId, owner: s.sub });
          else if (r.status !== 403) failures.push(`prepare: ${r.status}`);
        },
        async () => {
          if (txs.length === 0) return;
          const s = pick(senders);
          const tx = pick(txs);
          const [v, ...rest] = tx.txId.split(".");
          const secret = rest.at(-1)!;
          const forged = chance(0.5)
            ? [
                v,
                ...rest.slice(0, -1),
                `${secret.slice(0, -1)}${secret.endsWith("A") ? "B" : "A"}`,
              ].join(".")
            : ["t1", ...rest.slice(0, -1)].join(".");
          const guess = chance(0.3);
          const txId = guess ? forged : tx.txId;
          const how = pick(["commit", "rollback"]);
          const r = await call(s, "POST", `/v1/transactions/${encodeURIComponent(txId)}/${how}`);
          const mayEnd = !guess && (s.sub === null || s.sub === tx.owner);
          if (!mayEnd && r.status !== 404)
            failures.push(
              `${who(s)} ended ${guess ? "a guess of " : ""}${who({ ...s, sub: tx.owner })}'s tx: ${r.status}`,
            );
          if (mayEnd && ![200, 409].includes(r.status))
            failures.push(`owner's ${how}: ${r.status}`);
          if (mayEnd && r.status === 200 && r.body.status === "committed") committed.add(tx.txId);
        },
        // Parked long-polls with random filters; some clients vanish mid-wait.
        async () => {
          const s = pick(senders);
          const filter = encodeURIComponent(
            pick(["TagZ", "sql:n > 5", "A || B", "*", `T${int(50)}`]),
          );
          const path = chance(0.5)
            ? `/v1/topics/${SENDERS_TOPIC}/queues/${int(3)}/messages?offset=${int(5)}&filter=${filter}&waitMs=${200 + int(1300)}`
            : `/v1/groups/fz-park-${int(3)}/topics/${SENDERS_TOPIC}/receive`;
          if (chance(0.3)) {
            await vanish(path, s.headers);
            return;
          }
          const body = path.endsWith("/receive")
            ? { waitMs: 200 + int(1300), filter: decodeURIComponent(filter), max: 1 }
            : undefined;
          const r = await call(s, path.endsWith("/receive") ? "POST" : "GET", path, body);
          if (![200, 429].includes(r.status))
            failures.push(`long-poll: ${r.status} ${JSON.stringify(r.body)}`);
        },
      ];

      const worker = async () => {
        while (issued < SENDER_REQUESTS && Date.now() < deadline && failures.length < 20) {
          issued++;
          await pick(ops)();
        }
      };
      await Promise.all(Array.from({ length: CONCURRENCY }, worker));

      for (const [key, n] of firsts) {
        const again = recalled.has(key) || recalled.has(key.split("\u0000")[1]!);
        if (again ? n < 1 : n !== 1)
          failures.push(`${key.replace("\u0000", "/")} stored ${n} times`);
      }
      const summary = `seed ${SEED}: ${issued} requests, ${txs.length} transactions, statuses ${JSON.stringify(Object.fromEntries([...statuses].sort()))}`;
      console.log(`fuzz senders ${summary}`);
      expect(failures, summary).toEqual([]);
      expect(await storedIn(SENDERS_TOPIC)).toBe(stored + committed.size);
      // Every wait ended or was dropped with its client: nothing stays parked.
      for (let i = 0; ; i++) {
        const r = await admin("GET", `/v1/topics/${SENDERS_TOPIC}`);
        const parked = (JSON.parse(r.body.toString()).queueStats as { parkedWaits: number }[])
          .map((q) => q.parkedWaits)
          .reduce((a, b) => a + b, 0);
        if (parked === 0) break;
        if (i > 100) throw new Error(`${parked} waits still parked`);
        await new Promise((res) => setTimeout(res, 50));
      }
    },
  );
});

/** A long-poll whose client resets its connection a moment after asking. */
function vanish(path: string, headers: Record<string, string>): Promise<void> {
  return new Promise((resolve) => {
    const post = path.endsWith("/receive");
    const body = post ? Buffer.from(JSON.stringify({ waitMs: 20_000 })) : undefined;
    const req = request({
      host: "127.0.0.1",
      port: server.port,
      method: post ? "POST" : "GET",
      path: post ? path : path.replace(/waitMs=\d+/, "waitMs=20000"),
      headers: {
        ...headers,
        "content-type": "application/json",
        ...(body && { "content-length": String(body.length) }),
      },
      agent: false,
    });
    req.on("error", () => resolve());
    req.on("response", (res) => {
      res.resume();
      resolve();
    });
    req.end(body);
    setTimeout(
      () => {
        req.socket?.resetAndDestroy();
        resolve();
      },
      50 + int(200),
    );
  });
}
