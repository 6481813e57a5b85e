import { describe, expect, it } from "vitest";
import {
  bytes,
  cell,
  formatDuration,
  keyValues,
  parseDuration,
  parseProperties,
  parseTime,
  preview,
  splitList,
  table,
} from "../../cli/format.ts";

describe("CLI tables", () => {
  it("aligns columns under their headers, numbers to the right", () => {
    const out = table(
      [
        { name: "orders", n: 5 },
        { name: "a", n: 12345 },
      ],
      [
        { header: "TOPIC", get: (r) => r.name },
        { header: "MESSAGES", get: (r) => r.n },
      ],
    );
    expect(out.split("\n")).toEqual(["TOPIC   MESSAGES", "orders         5", "a          12345"]);
  });

  it("says (none) for no rows and shows missing cells as -", () => {
    expect(table([], [{ header: "X", get: () => 1 }])).toBe("(none)");
    expect(table([{}], [{ header: "TAG", get: () => undefined }])).toBe("TAG\n-");
  });

  it("escapes control characters, so a message body cannot break the layout or drive the terminal", () => {
    expect(cell("a\nb\tc\u001b[31m")).toBe("a\\nb\\tc\\x1b[31m");
    expect(table([{ b: "x\ny" }], [{ header: "BODY", get: (r) => r.b }])).toBe("BODY\nx\\ny");
  });

  it("pads keys of key/value lines to one width", () => {
    expect(
      keyValues([
        ["topic", "t"],
        ["queues", 4],
        ["tag", null],
      ]),
    ).toBe("topic   t\nqueues  4\ntag     -");
  });

  it("shortens bodies for cells and labels base64 ones", () => {
    expect(preview("x".repeat(100), "utf8", 10)).toBe("xxxxxxxxx…");
    expect(preview("AAAA", "base64")).toBe("[base64, 3 B]");
  });
});

describe("CLI units", () => {
  it("formats sizes in binary units", () => {
    expect(bytes(512)).toBe("512 B");
    expect(bytes(1536)).toBe("1.5 KiB");
    expect(bytes(3 * 1024 * 1024)).toBe("3.0 MiB");
  });

  it("parses durations with units, and plain numbers as milliseconds", () => {
    expect(parseDuration("500ms")).toBe(500);
    expect(parseDuration("10s")).toBe(10_000);
    expect(parseDuration("5m")).toBe(300_000);
    expect(parseDuration("2h")).toBe(7_200_000);
    expect(parseDuration("3d")).toBe(259_200_000);
    expect(parseDuration("1500")).toBe(1500);
    expect(() => parseDuration("soon")).toThrow(/not a duration/);
    expect(() => parseDuration("-5s")).toThrow(/not a duration/);
  });

  it("formats durations in at most two exact units", () => {
    expect(formatDuration(10_000)).toBe("10s");
    expect(formatDuration(90_000)).toBe("1m30s");
    expect(formatDuration(259_200_000)).toBe("3d");
    expect(formatDuration(3_600_000 + 1000)).toBe("1h");
    expect(formatDuration(250)).toBe("250ms");
  });

  it("parses times: Unix ms, ISO 8601, now and relative to now", () => {
    const now = Date.UTC(2026, 10, 24, 12, 0, 0);
    expect(parseTime("1764000000000", now)).toBe(1764000000000);
    expect(parseTime("2026-11-24T10:00:00Z", now)).toBe(Date.UTC(2026, 10, 24, 10));
    expect(parseTime("2026-11-24T10:00:00.250+01:00", now)).toBe(
      Date.UTC(2026, 10, 24, 9, 0, 0, 250),
    );
    expect(parseTime("now", now)).toBe(now);
    expect(parseTime("now-15m", now)).toBe(now - 900_000);
    expect(parseTime("-1h", now)).toBe(now - 3_600_000);
    expect(parseTime("+30s", now)).toBe(now + 30_000);
    expect(() => parseTime("yesterday-ish", now)).toThrow(/not a time/);
  });

  it("splits repeated and comma-separated lists, and k=v properties", () => {
    expect(splitList(["a,b", " c ", ""])).toEqual(["a", "b", "c"]);
    expect(splitList(undefined)).toEqual([]);
    expect(parseProperties(["region=eu", "expr=a=b"])).toEqual({ region: "eu", expr: "a=b" });
    expect(() => parseProperties(["novalue"])).toThrow(/key=value/);
  });
});
