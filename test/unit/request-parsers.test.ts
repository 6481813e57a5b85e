import { describe, expect, it } from "vitest";
import { EdgemqError } from "../../src/protocol/errors.ts";
import { filterText } from "../../src/protocol/filter.ts";
import { Limits } from "../../src/protocol/limits.ts";
import { parseProducerGroupConfig, parseTopicConfig } from "../../src/protocol/requests/config.ts";
import {
  parseAck,
  parseInvisibility,
  parseNack,
  parseReceive,
} from "../../src/protocol/requests/consume.ts";
import { parseDlqResend } from "../../src/protocol/requests/dlq.ts";
import { parseQueueParam, queryValue } from "../../src/protocol/requests/fields.ts";
import { parseHeartbeat } from "../../src/protocol/requests/heartbeat.ts";
import { checkMessageSize, parseMessage } from "../../src/protocol/requests/message.ts";
import { parseCommitOffset, parseResetOffsets } from "../../src/protocol/requests/offsets.ts";
import { parsePull, parsePullGroup } from "../../src/protocol/requests/pull.ts";
import { parseLimit, parseMessageQuery } from "../../src/protocol/requests/query.ts";
import { parseRpcRequest } from "../../src/protocol/requests/rpc.ts";
import { parseSend, parseSendQuery } from "../../src/protocol/requests/send.ts";
import { parseMintRequest } from "../../src/protocol/requests/tokens.ts";
import { parsePrepare } from "../../src/protocol/requests/transactions.ts";

const NOW = 1_764_000_000_000;
let ids = 0;
const newId = () => `gen-${ids++}`;
const RECEIPT = "r1.orders.web.2.17.h4ndle";

/** The EdgemqError `fn` throws, as the contract's `{code, message}` plus any details. */
function refusal(fn: () => unknown): { code: string; message: string; details?: unknown } {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof EdgemqError)) throw e;
    return { code: e.code, message: e.message, ...(e.details && { details: e.details }) };
  }
  throw new Error("expected a refusal");
}

describe("send", () => {
  it("normalizes every message of a batch, giving a msgId to those without one", () => {
    const { messages } = parseSend(
      {
        messages: [
          { body: "a", tag: "T", keys: ["k"] },
          { body: "aGk=", encoding: "base64", msgId: "mine" },
        ],
      },
      NOW,
      () => "made",
    );
    expect(messages[0]).toMatchObject({
      msgId: "made",
      clientMsgId: false,
      tag: "T",
      keys: ["k"],
      priority: Limits.defaultPriority,
      bornAt: NOW,
      deliverAt: null,
      size: 1,
    });
    expect(messages[1]).toMatchObject({
      msgId: "mine",
      clientMsgId: true,
      encoding: "base64",
      size: 2,
    });
  });

  it("turns a delay into an absolute due time from the given clock", () => {
    const { messages } = parseSend(
      {
        messages: [
          { body: "x", delayMs: 5000 },
          { body: "y", delayLevel: 1 },
          { body: "z", deliverAt: NOW - 1 },
        ],
      },
      NOW,
      newId,
    );
    expect(messages.map((m) => m.deliverAt)).toEqual([NOW + 5000, NOW + 1000, null]);
  });

  it("refuses a batch for one bad message, naming it by index", () => {
    expect(
      refusal(() => parseSend({ messages: [{ body: "ok" }, { body: 1 }] }, NOW, newId)),
    ).toEqual({
      code: "BAD_REQUEST",
      message: "messages[1]: body is required and must be a string",
      details: { index: 1 },
    });
    expect(
      refusal(() => parseSend({ messages: [{ body: "x", colour: "red" }] }, NOW, newId)).message,
    ).toBe("messages[0]: unknown field colour");
  });

  it("refuses a body that is not a batch, an empty one and one over the message count", () => {
    expect(refusal(() => parseSend([], NOW, newId)).message).toBe(
      'body must be {"messages": [...]}',
    );
    expect(refusal(() => parseSend({ messages: [] }, NOW, newId)).message).toBe(
      "messages must not be empty",
    );
    const many = Array.from({ length: Limits.maxBatchMessages + 1 }, () => ({ body: "x" }));
    expect(refusal(() => parseSend({ messages: many }, NOW, newId))).toEqual({
      code: "BATCH_TOO_LARGE",
      message: `at most 1000 messages per request; got 1001`,
    });
  });

  it("leaves the topic's size limit to checkMessageSize, with the same error as a limit given up front", () => {
    const { messages } = parseSend(
      { messages: [{ body: "x" }, { body: "x".repeat(17) }] },
      NOW,
      newId,
    );
    expect(() => checkMessageSize(messages[0]!, 16, 0)).not.toThrow();
    const late = refusal(() => checkMessageSize(messages[1]!, 16, 1));
    const early = refusal(() =>
      parseMessage({ body: "x".repeat(17) }, { now: NOW, newId, index: 1, maxBytes: 16 }),
    );
    expect(late).toEqual({
      code: "MESSAGE_TOO_LARGE",
      message: "messages[1]: body is 17 bytes; the limit is 16",
      details: { index: 1 },
    });
    expect(early).toEqual(late);
  });

  it("reads the pinned queue of the query, first value of a repeated key", () => {
    expect(parseSendQuery({})).toEqual({ queue: undefined });
    expect(parseSendQuery({ queue: ["3", "9"] })).toEqual({ queue: 3 });
    expect(refusal(() => parseSendQuery({ queue: "64" })).message).toBe(
      "queue must be an integer from 0 to 63",
    );
    expect(refusal(() => parseSendQuery({ queue: "x" })).message).toBe("queue must be an integer");
  });
});

describe("pull", () => {
  it("fills in the contract's defaults and compiles the filter once", () => {
    const req = parsePull({ offset: "5", filter: "TagA || TagB" });
    expect(req).toMatchObject({ offset: 5, max: Limits.defaultMax, waitMs: Limits.defaultWaitMs });
    expect(req.filter.matches({ tag: "TagB", properties: null })).toBe(true);
    expect(req.filter.matches({ tag: "TagC", properties: null })).toBe(false);
    expect(filterText(req.filter)).toBe("TagA || TagB");
    expect(filterText(parsePull({ group: "g", filter: "*" }).filter)).toBeUndefined();
  });

  it("needs an offset or a group, and checks the group's name", () => {
    expect(parsePull({ group: "g1" })).toMatchObject({ group: "g1" });
    expect(refusal(() => parsePull({}))).toEqual({
      code: "BAD_REQUEST",
      message: "offset or group is required",
    });
    expect(refusal(() => parsePullGroup({ group: "bad name" })).code).toBe("INVALID_NAME");
    expect(parsePullGroup({})).toBeUndefined();
  });

  it("refuses a bad filter with its position, and an overlong one before compiling it", () => {
    expect(refusal(() => parsePull({ offset: "0", filter: "sql:a >" }))).toMatchObject({
      code: "BAD_REQUEST",
      details: { position: expect.any(Number) },
    });
    const long = "T".repeat(Limits.maxFilterBytes + 1);
    expect(refusal(() => parsePull({ offset: "0", filter: long })).message).toBe(
      "filter is too long",
    );
  });

  it("bounds max and waitMs", () => {
    expect(refusal(() => parsePull({ offset: "0", max: "0" })).message).toBe(
      "max must be an integer from 1 to 1000",
    );
    expect(refusal(() => parsePull({ offset: "0", waitMs: "30001" })).message).toBe(
      "waitMs must be an integer from 0 to 30000",
    );
  });

  it("reads a queue path parameter within the contract's queue ceiling", () => {
    expect(parseQueueParam("63")).toBe(63);
    expect(refusal(() => parseQueueParam("64")).message).toBe(
      "queue must be an integer from 0 to 63",
    );
    expect(refusal(() => parseQueueParam(undefined)).message).toBe("queue is required");
    expect(queryValue({ a: ["1", "2"] }, "a")).toBe("1");
  });
});

describe("receive and its settlements", () => {
  it("reads an absent receive body as every default, the filter matching all", () => {
    const req = parseReceive(undefined);
    expect(req).toMatchObject({
      max: Limits.defaultMax,
      invisibleMs: Limits.defaultInvisibleMs,
      waitMs: Limits.defaultWaitMs,
    });
    expect(req.filter.matchesAll).toBe(true);
    expect(
      parseReceive({ filter: "sql:amount > 10" }).filter.matches({
        tag: null,
        properties: { amount: "11" },
      }),
    ).toBe(true);
  });

  it("refuses a receive whose filter is not a string or whose body is not an object", () => {
    expect(refusal(() => parseReceive({ filter: 3 })).message).toBe("filter must be a string");
    expect(refusal(() => parseReceive(null)).message).toBe("body must be an object");
    expect(refusal(() => parseReceive({ invisibleMs: 999 })).message).toBe(
      "invisibleMs must be an integer from 1000 to 43200000",
    );
  });

  it("splits receipts into what they address", () => {
    expect(parseAck({ receipts: [RECEIPT] }).receipts).toEqual([
      { receipt: RECEIPT, topic: "orders", group: "web", queue: 2, offset: 17, handle: "h4ndle" },
    ]);
    expect(parseNack({ receipts: [RECEIPT], delayMs: 0 })).toMatchObject({ delayMs: 0 });
    expect(parseNack({ receipts: [RECEIPT] })).not.toHaveProperty("delayMs");
  });

  it("refuses an empty or oversized receipt list and a malformed receipt", () => {
    const bound = `receipts must be an array of 1..${Limits.maxReceipts} receipts`;
    expect(refusal(() => parseAck({})).message).toBe(bound);
    expect(refusal(() => parseAck({ receipts: [] })).message).toBe(bound);
    expect(
      refusal(() => parseAck({ receipts: Array(Limits.maxReceipts + 1).fill(RECEIPT) })).message,
    ).toBe(bound);
    expect(refusal(() => parseAck({ receipts: [RECEIPT, "r1.nope"] }))).toEqual({
      code: "BAD_REQUEST",
      message: "malformed receipt",
    });
  });

  it("needs invisibleMs before it looks at the receipt of an invisibility change", () => {
    expect(refusal(() => parseInvisibility({ receipt: "junk" })).message).toBe(
      "invisibleMs is required",
    );
    expect(refusal(() => parseInvisibility({ receipt: "junk", invisibleMs: 5000 })).message).toBe(
      "malformed receipt",
    );
    expect(parseInvisibility({ receipt: RECEIPT, invisibleMs: 5000 }).receipt.queue).toBe(2);
  });
});

describe("offsets, heartbeat and dead letters", () => {
  it("needs an offset to commit", () => {
    expect(parseCommitOffset({ offset: 7 })).toEqual({ offset: 7 });
    expect(refusal(() => parseCommitOffset({})).message).toBe("offset is required");
    expect(refusal(() => parseCommitOffset({ offset: -1 })).message).toMatch(
      /^offset must be an integer from 0/,
    );
  });

  it("resets to exactly one of a timestamp or an end of the log", () => {
    expect(parseResetOffsets({ timestamp: 5 })).toEqual({ timestamp: 5 });
    expect(parseResetOffsets({ to: "latest" })).toEqual({ to: "latest" });
    expect(refusal(() => parseResetOffsets({ to: "middle" })).message).toBe(
      'to must be "earliest" or "latest"',
    );
    expect(refusal(() => parseResetOffsets({ to: "latest", timestamp: 5 })).message).toBe(
      "give exactly one of timestamp or to",
    );
  });

  it("reads a heartbeat's member and topics", () => {
    expect(parseHeartbeat({ clientId: "c1", topics: ["a", "b"] })).toEqual({
      clientId: "c1",
      topics: ["a", "b"],
    });
    expect(refusal(() => parseHeartbeat({ clientId: "", topics: [] })).message).toBe(
      "clientId must be a non-empty string",
    );
    expect(refusal(() => parseHeartbeat({ clientId: "c", topics: ["bad name"] })).message).toBe(
      "topics must be an array of topic names",
    );
  });

  it("resends every dead letter when no msgIds are given", () => {
    expect(parseDlqResend(undefined)).toEqual({ msgIds: null });
    expect(parseDlqResend({ msgIds: [] })).toEqual({ msgIds: null });
    expect(parseDlqResend({ msgIds: ["a"] })).toEqual({ msgIds: ["a"] });
    expect(refusal(() => parseDlqResend({ msgIds: [1] })).message).toBe(
      "msgIds must be an array of strings",
    );
  });
});

describe("queries", () => {
  it("queries by key or by a time range, with a bounded limit", () => {
    expect(parseMessageQuery({ key: "k" })).toEqual({
      by: { key: "k" },
      limit: Limits.defaultQueryLimit,
    });
    expect(parseMessageQuery({ from: "1", to: "9", limit: "5" })).toEqual({
      by: { from: 1, to: 9 },
      limit: 5,
    });
    expect(refusal(() => parseMessageQuery({ from: "1" })).message).toBe(
      "give key, or from and to",
    );
    expect(refusal(() => parseMessageQuery({ from: "9", to: "1" })).message).toBe(
      "to must not be before from",
    );
    expect(refusal(() => parseMessageQuery({ key: "" })).message).toBe(
      "key must be 1..256 characters",
    );
    expect(refusal(() => parseLimit({ limit: "1001" })).message).toBe(
      "limit must be an integer from 1 to 1000",
    );
  });
});

describe("transactions", () => {
  it("reads a half message and its producer group", () => {
    const req = parsePrepare({ message: { body: "x" }, producerGroup: "pg" }, NOW, () => "tx-id");
    expect(req).toMatchObject({ producerGroup: "pg", message: { msgId: "tx-id", body: "x" } });
  });

  it("refuses a bad producer group as INVALID_NAME and a scheduled half message", () => {
    expect(
      refusal(() => parsePrepare({ message: { body: "x" }, producerGroup: "a b" }, NOW, newId))
        .code,
    ).toBe("INVALID_NAME");
    expect(
      refusal(() =>
        parsePrepare({ message: { body: "x", delayMs: 10 }, producerGroup: "pg" }, NOW, newId),
      ).message,
    ).toBe("a transactional message cannot be scheduled");
    expect(refusal(() => parsePrepare("x", NOW, newId)).message).toBe(
      'body must be {"message": {...}, "producerGroup": "..."}',
    );
  });
});

describe("config and tokens", () => {
  it("keeps only the config fields given, and refuses unknown ones", () => {
    expect(parseTopicConfig(undefined)).toEqual({});
    expect(parseTopicConfig({ queues: 2, maxBacklogBytes: null })).toEqual({
      queues: 2,
      maxBacklogBytes: null,
    });
    expect(refusal(() => parseTopicConfig({ colour: "red" })).message).toBe("unknown field colour");
    expect(parseProducerGroupConfig({ checkUrl: "https://example.com/check" })).toEqual({
      checkUrl: "https://example.com/check",
    });
    expect(refusal(() => parseProducerGroupConfig({ checkUrl: "ftp://x" })).message).toBe(
      "checkUrl must be an http(s) URL",
    );
  });

  it("reads a mint request with the default lifetime and empty scopes", () => {
    expect(parseMintRequest({ sub: "web", publish: ["orders*"] })).toEqual({
      claims: { sub: "web", publish: ["orders*"], subscribe: [], groups: [], producerGroups: [] },
      ttlSeconds: 3600,
    });
    expect(refusal(() => parseMintRequest({ sub: "web", ttlSeconds: 86_401 })).message).toBe(
      "ttlSeconds must be an integer from 1 to 86400",
    );
    expect(refusal(() => parseMintRequest({ sub: "web", groups: ["a*b"] })).message).toMatch(
      /^groups must be an array/,
    );
  });
});

describe("service binding calls", () => {
  it("passes a contract call through with its body as JSON text", () => {
    expect(parseRpcRequest("POST", "/v1/topics/t/messages", { messages: [] })).toEqual({
      method: "POST",
      path: "/v1/topics/t/messages",
      body: '{"messages":[]}',
    });
    expect(parseRpcRequest("GET", "/v1/topics?x=1", undefined)).toEqual({
      method: "GET",
      path: "/v1/topics?x=1",
    });
  });

  it("refuses what the Fetch API could not send, in the contract's shape", () => {
    expect(refusal(() => parseRpcRequest("GET", "/etc", undefined)).code).toBe("NOT_FOUND");
    expect(refusal(() => parseRpcRequest("get", "/v1/topics", {})).message).toBe(
      "a GET request has no body",
    );
    expect(refusal(() => parseRpcRequest("TRACE", "/v1/topics", undefined)).code).toBe(
      "BAD_REQUEST",
    );
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    for (const body of [10n, cycle, () => 1]) {
      expect(refusal(() => parseRpcRequest("POST", "/v1/topics/t/messages", body)).message).toBe(
        "body must be a JSON value",
      );
    }
  });
});
