/**
 * Trace context on messages (src/protocol/trace.ts): W3C traceparent and
 * tracestate checked for shape, from message fields or a send's headers (the
 * header applying to every message that has none).
 */
import { describe, expect, it } from "vitest";
import { parseSend } from "../../src/protocol/requests/send.ts";
import { isTraceparent, isTracestate, parseTraceContext } from "../../src/protocol/trace.ts";

const TP = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
const OTHER = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";

describe("isTraceparent", () => {
  it("takes version 00 exactly and later versions with more fields", () => {
    expect(isTraceparent(TP)).toBe(true);
    expect(isTraceparent("01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra")).toBe(
      true,
    );
  });

  it("refuses the spec's invalid forms", () => {
    expect(isTraceparent(TP.toUpperCase())).toBe(false);
    expect(isTraceparent(`${TP}-extra`)).toBe(false);
    expect(isTraceparent(`ff${TP.slice(2)}`)).toBe(false);
    expect(isTraceparent("00-00000000000000000000000000000000-b7ad6b7169203331-01")).toBe(false);
    expect(isTraceparent("00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01")).toBe(false);
    expect(isTraceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b71692033-01")).toBe(false);
    expect(isTraceparent("")).toBe(false);
  });
});

describe("isTracestate", () => {
  it("takes key=value lists within the spec's bounds", () => {
    expect(isTracestate("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")).toBe(true);
    expect(isTracestate("tenant@vendor=x")).toBe(true);
    expect(isTracestate("")).toBe(true);
  });

  it("refuses what is not one", () => {
    expect(isTracestate("no-equals")).toBe(false);
    expect(isTracestate("Upper=1")).toBe(false);
    expect(isTracestate("k=é")).toBe(false);
    expect(isTracestate(Array.from({ length: 33 }, (_, i) => `k${i}=v`).join(","))).toBe(false);
    expect(isTracestate(`k=${"v".repeat(600)}`)).toBe(false);
  });
});

describe("parseTraceContext", () => {
  it("names the field or the header it refuses", () => {
    expect(() => parseTraceContext("bad", undefined)).toThrow(/^traceparent is malformed/);
    expect(() => parseTraceContext("bad", undefined, "header")).toThrow(/^traceparent header/);
    expect(() => parseTraceContext(TP, "Bad")).toThrow(/^tracestate is malformed/);
    expect(() => parseTraceContext(undefined, "k=v")).toThrow(/tracestate needs a traceparent/);
  });

  it("ignores a tracestate header without a traceparent header", () => {
    expect(parseTraceContext(undefined, "k=v", "header")).toEqual({
      traceparent: null,
      tracestate: null,
    });
  });
});

describe("parseSend with a trace header", () => {
  it("applies it to messages without a traceparent, and leaves the others theirs", () => {
    const { messages } = parseSend(
      { messages: [{ body: "a" }, { body: "b", traceparent: OTHER }] },
      0,
      () => "id",
      { traceparent: TP, tracestate: "k=v" },
    );
    expect(messages[0]).toMatchObject({ traceparent: TP, tracestate: "k=v" });
    expect(messages[1]).toMatchObject({ traceparent: OTHER });
    expect(messages[1]).not.toHaveProperty("tracestate");
  });

  it("refuses a message's malformed traceparent with its index", () => {
    expect(() =>
      parseSend({ messages: [{ body: "a" }, { body: "b", traceparent: "x" }] }, 0, () => "id"),
    ).toThrow(/^messages\[1\]: traceparent is malformed/);
  });
});
