/** Formatting and parsing of what the console shows and reads from its forms. Pure functions. */
import type { Message } from "../../protocol/types.ts";

type Maybe<T> = T | null | undefined;

const DASH = "—";

/** A count with thousands separators. */
export function num(n: Maybe<number>): string {
  return n === null || n === undefined ? DASH : Number(n).toLocaleString("en-US");
}

/** Messages per second: one decimal below 10. */
export function rate(r: Maybe<number>): string {
  if (r === null || r === undefined) return DASH;
  return r < 10 ? r.toFixed(1) : Math.round(r).toLocaleString("en-US");
}

const BYTE_UNITS = ["B", "KiB", "MiB", "GiB", "TiB"] as const;

/** A size in binary units. */
export function bytes(n: Maybe<number>): string {
  if (n === null || n === undefined) return DASH;
  let i = 0;
  while (n >= 1024 && i < BYTE_UNITS.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? String(n) : n.toFixed(1)} ${BYTE_UNITS[i]}`;
}

const pad = (n: number): string => (n < 10 ? `0${n}` : String(n));

function localDateTime(ms: number, sep: string): string {
  const d = new Date(ms);
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}${sep}` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
  );
}

/** A point in time, local: "2026-12-02 14:03:59". */
export function time(ms: Maybe<number>): string {
  return ms === null || ms === undefined ? DASH : localDateTime(ms, " ");
}

const SPAN_UNITS: readonly [seconds: number, unit: string][] = [
  [86400, "d"],
  [3600, "h"],
  [60, "min"],
  [1, "s"],
];

/** A span in at most two adjacent units: "45 s", "1 min 30 s", "2 h", "3 d". */
export function duration(ms: Maybe<number>): string {
  if (ms === null || ms === undefined) return DASH;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  let left = Math.round(ms / 1000);
  // A null keeps the units adjacent: "1 d 5 s" shows as "1 d".
  const parts: (string | null)[] = [];
  for (const [size, unit] of SPAN_UNITS) {
    if (parts.length < 2 && left >= size) {
      parts.push(`${Math.floor(left / size)} ${unit}`);
      left %= size;
    } else if (parts.length) {
      parts.push(null);
    }
  }
  return parts.filter(Boolean).slice(0, 2).join(" ");
}

/** A value for `<input type=datetime-local>` (local time, seconds). */
export function localInput(ms: number): string {
  return localDateTime(ms, "T");
}

/** Parses a datetime-local value as local time; NaN when empty or bad. */
export function fromLocalInput(v: string): number {
  return v ? new Date(v).getTime() : Number.NaN;
}

const DURATION_UNITS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  min: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/** "10s", "1m", "2h", "500ms", "1d" or plain milliseconds; throws on anything else. */
export function parseDuration(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h|d)?\s*$/.exec(text);
  if (!m) throw new Error(`bad duration: ${text}`);
  return Math.round(Number(m[1]) * (DURATION_UNITS[m[2] ?? "ms"] ?? 1));
}

/** The non-empty items of a comma-separated list. */
export function list(text: string): string[] {
  return text
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}

/** A message body for a table cell: the first 160 characters, or the size of a binary one. */
export function preview(m: Pick<Message, "body" | "encoding">): string {
  if (m.encoding === "base64") return `[base64, ${bytes(Math.floor((m.body.length * 3) / 4))}]`;
  return m.body.length > 160 ? `${m.body.slice(0, 160)}…` : m.body;
}

/** An error for the user: the contract's `CODE: message`, or the message. */
export function errText(e: unknown): string {
  if (e !== null && typeof e === "object") {
    const { code, message } = e as { code?: unknown; message?: unknown };
    if (code) return `${String(code)}: ${String(message)}`;
    if (message) return String(message);
  }
  return String(e);
}
