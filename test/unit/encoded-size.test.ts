/** Encoded sizes counted without encoding: they must equal what encoding would give. */
import { describe, expect, it } from "vitest";
import {
  ROW_SLACK_BYTES,
  assertRowFits,
  fieldsOf,
  jsonBytes,
  utf8Extra,
} from "../../src/protocol/encoded-size.ts";
import { Limits } from "../../src/protocol/limits.ts";
import { parseMessage } from "../../src/protocol/requests/message.ts";

const utf8 = (s: string) => new TextEncoder().encode(s).byteLength;
const tricky = ['quote " \\ back', "nul \u0000 ctl \u001f", "漢字 é 🦀", "line\u2028sep", ""];

describe("encoded sizes", () => {
  it("counts what non-ASCII characters add in UTF-8", () => {
    for (const s of tricky) expect(utf8Extra(s)).toBe(utf8(s) - s.length);
    expect(utf8Extra(null)).toBe(0);
  });

  it("gives the UTF-8 bytes of a message's JSON without encoding it", () => {
    tricky.forEach((body, i) => {
      const m = parseMessage(
        {
          body,
          tag: `t${tricky[(i + 1) % tricky.length]!.trim() || "x"}`.replace(/\|\|/g, ""),
          keys: [tricky[(i + 2) % tricky.length]! || "k"],
          properties: { p: tricky[(i + 3) % tricky.length]! },
          shardingKey: `s${tricky[(i + 4) % tricky.length]}`,
          msgId: `id-${tricky[i]}`,
        },
        { now: 0, newId: () => "x", maxBytes: Limits.maxMessageBytesCeiling },
      );
      const json = JSON.stringify({ message: m, check: { checkUrl: "https://a.example/" } });
      expect(jsonBytes(json, fieldsOf(m))).toBe(utf8(json));
    });
  });

  it("keeps the largest log row the message limits allow under the platform's row limit", () => {
    // A base64 body at the ceiling is stored as its text; every other field at its maximum.
    const body = 4 * Math.ceil(Limits.maxMessageBytesCeiling / 3);
    const props =
      Limits.maxProperties * (Limits.maxPropertyNameBytes + Limits.maxPropertyValueBytes + 6);
    const keys = Limits.maxKeys * (Limits.maxKeyBytes + 3);
    const fields =
      body + props + keys + Limits.maxTagBytes + Limits.maxShardingKeyBytes + Limits.maxMsgIdBytes;
    // Thirteen columns of at most 9 bytes of integer each.
    expect(fields + 13 * 9 + ROW_SLACK_BYTES).toBeLessThanOrEqual(Limits.maxRowBytes);
  });

  it("refuses a row past the platform's limit with MESSAGE_TOO_LARGE naming the message", () => {
    expect(() => assertRowFits(Limits.maxRowBytes - ROW_SLACK_BYTES, "a row")).not.toThrow();
    expect(() => assertRowFits(Limits.maxRowBytes, "a scheduled message", 3)).toThrow(
      expect.objectContaining({ code: "MESSAGE_TOO_LARGE", details: { index: 3 } }),
    );
  });
});
