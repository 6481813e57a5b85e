/**
 * The session frame parser (src/protocol/session.ts): valid frames parse to
 * their normalized shape; a seeded, bounded fuzz run of random and mutated
 * frames never throws anything but an EdgemqError with a contract code, and
 * never accepts a frame that breaks the grammar (docs/protocol.md).
 */
import { describe, expect, it } from "vitest";
import { EdgemqError, ErrorStatus } from "../../src/protocol/errors.ts";
import {
  ClientFrameTypes,
  SessionLimits,
  parseClientFrame,
  tokenFromProtocols,
  tokenProtocol,
} from "../../src/protocol/session.ts";

const SEED = Number(process.env.FUZZ_SEED ?? 20_261_202) >>> 0;
const CASES = Math.min(Number(process.env.FUZZ_FRAMES ?? 20_000), 200_000);
const DEADLINE_MS = 20_000;

/** mulberry32, as the HTTP fuzz test uses. */
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

describe("session frames: the grammar", () => {
  it("parses each frame type to its normalized shape", () => {
    expect(parseClientFrame('{"type":"send","id":1,"messages":[{"body":"x"}]}')).toEqual({
      type: "send",
      id: 1,
      messages: [{ body: "x" }],
      atomic: false,
    });
    expect(parseClientFrame('{"type":"subscribe","id":2,"mode":"receive"}')).toEqual({
      type: "subscribe",
      id: 2,
      mode: "receive",
      filter: null,
      invisibleMs: 30_000,
      credit: 32,
    });
    expect(
      parseClientFrame(
        '{"type":"subscribe","id":3,"mode":"pull","offset":5,"filter":"*","credit":9}',
      ),
    ).toEqual({ type: "subscribe", id: 3, mode: "pull", filter: null, offset: 5, credit: 9 });
    expect(parseClientFrame('{"type":"credit","n":-3}')).toEqual({ type: "credit", n: -3 });
    expect(parseClientFrame('{"type":"ack","receipts":["r"]}')).toEqual({
      type: "ack",
      id: null,
      receipts: ["r"],
      credit: 0,
    });
    expect(parseClientFrame('{"type":"commit","id":4,"offset":0}')).toEqual({
      type: "commit",
      id: 4,
      offset: 0,
    });
  });

  it.each([
    ['{"type":"send","id":-1,"messages":[{}]}', "BAD_REQUEST"],
    ['{"type":"send","id":1.5,"messages":[{}]}', "BAD_REQUEST"],
    ['{"type":"subscribe","id":1,"mode":"push"}', "BAD_REQUEST"],
    ['{"type":"subscribe","id":1,"mode":"receive","offset":3}', "BAD_REQUEST"],
    ['{"type":"subscribe","id":1,"mode":"receive","invisibleMs":10}', "BAD_REQUEST"],
    [`{"type":"credit","n":${SessionLimits.maxCredit + 1}}`, "BAD_REQUEST"],
    ['{"type":"ack","receipts":[]}', "BAD_REQUEST"],
    [
      `{"type":"send","id":1,"messages":[${'{"body":"x"},'.repeat(1000)}{"body":"x"}]}`,
      "BATCH_TOO_LARGE",
    ],
    [
      `{"type":"subscribe","id":1,"mode":"pull","offset":0,"filter":"${"a".repeat(1501)}"}`,
      "BAD_REQUEST",
    ],
  ])("refuses %s", (frame, code) => {
    expect(() => parseClientFrame(frame)).toThrow(expect.objectContaining({ code }));
  });

  it("names the frame's id in its error when it can be read", () => {
    try {
      parseClientFrame('{"type":"send","id":77,"messages":"no"}');
      expect.unreachable();
    } catch (e) {
      expect((e as EdgemqError).details?.id).toBe(77);
    }
  });

  it("carries any token through the subprotocol and back", () => {
    for (const token of ["eyJ.a-b_c.d", "admin/token+with=odd chars", "ünïcödé"]) {
      expect(tokenFromProtocols(`edgemq.v1, ${tokenProtocol(token)}`)).toBe(token);
    }
    expect(tokenFromProtocols("edgemq.v1")).toBeUndefined();
    expect(() => tokenFromProtocols("edgemq.bearer.@@@")).toThrow(
      expect.objectContaining({ code: "UNAUTHORIZED" }),
    );
  });
});

describe("session frames: seeded fuzz", () => {
  it(`refuses every broken frame with a contract error (seed ${SEED}, ${CASES} cases)`, () => {
    const rand = prng(SEED);
    const int = (n: number) => Math.floor(rand() * n);
    const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
    const atoms: unknown[] = [
      0,
      -1,
      1.5,
      2 ** 53,
      -(2 ** 60),
      "",
      "x",
      "*",
      "ünï",
      "\ud800",
      null,
      true,
      false,
      [],
      {},
      [1],
      { body: "x" },
      "r1.t.g.0.0.h",
      1e308,
      Number.MAX_SAFE_INTEGER,
    ];
    const keys = [
      "type",
      "id",
      "messages",
      "mode",
      "filter",
      "offset",
      "credit",
      "n",
      "receipts",
      "invisibleMs",
      "delayMs",
      "token",
      "atomic",
      "x",
      "__proto__",
    ];
    const value = (depth: number): unknown => {
      if (depth > 3 || rand() < 0.5) return pick(atoms);
      if (rand() < 0.5) return Array.from({ length: int(4) }, () => value(depth + 1));
      const o: Record<string, unknown> = {};
      for (let i = int(5); i > 0; i--) o[pick(keys)] = value(depth + 1);
      return o;
    };
    const valid = [
      '{"type":"send","id":1,"messages":[{"body":"x"}]}',
      '{"type":"subscribe","id":2,"mode":"receive","credit":3}',
      '{"type":"ack","id":3,"receipts":["r1.t.g.0.1.h"],"credit":1}',
      '{"type":"commit","offset":7}',
    ];
    const mutate = (s: string): string => {
      const i = int(s.length + 1);
      switch (int(5)) {
        case 0:
          return s.slice(0, i) + s.slice(i + 1 + int(3));
        case 1:
          return s.slice(0, i) + String.fromCharCode(int(0x3000)) + s.slice(i);
        case 2:
          return (
            s.slice(0, i) + pick(['"', "{", "}", "[", "]", ",", ":", "\\", "1e999"]) + s.slice(i)
          );
        case 3:
          return s.replace(/\d+/, String(pick(atoms)));
        default:
          return s + s;
      }
    };
    const t0 = Date.now();
    let accepted = 0;
    let refused = 0;
    for (let c = 0; c < CASES && Date.now() - t0 < DEADLINE_MS; c++) {
      let frame: string;
      const r = rand();
      if (r < 0.4) frame = mutate(pick(valid));
      else if (r < 0.8) {
        const o = value(0) as Record<string, unknown>;
        if (o && typeof o === "object" && !Array.isArray(o) && rand() < 0.8) {
          o.type = pick([...ClientFrameTypes, "ping", "Send", ""]);
        }
        frame = JSON.stringify(o) ?? "null";
      } else frame = Array.from({ length: int(40) }, () => String.fromCharCode(int(128))).join("");
      try {
        const f = parseClientFrame(frame);
        accepted++;
        // What is accepted keeps the grammar.
        expect(ClientFrameTypes).toContain(f.type);
        if ("id" in f && f.id !== null) expect(Number.isSafeInteger(f.id) && f.id >= 0).toBe(true);
        if (f.type === "send") expect(f.messages.length).toBeGreaterThan(0);
        if (f.type === "credit") expect(Math.abs(f.n)).toBeLessThanOrEqual(SessionLimits.maxCredit);
        if ("receipts" in f) expect(f.receipts.every((x) => typeof x === "string")).toBe(true);
      } catch (e) {
        refused++;
        if (!(e instanceof EdgemqError) || !(e.code in ErrorStatus)) {
          throw new Error(`seed ${SEED} case ${c}: ${String(e)} for ${JSON.stringify(frame)}`);
        }
      }
    }
    expect(accepted).toBeGreaterThan(0);
    expect(refused).toBeGreaterThan(0);
  });
});
