/**
 * Output and input helpers of the CLI: aligned tables, sizes, times, and the
 * parsing of times and durations given on the command line. Pure functions
 * (times take `now`), unit-tested in test/node/cli-format.test.ts.
 */

/** A table column: a header and how to read a cell; numbers align right. */
export interface Column<T> {
  header: string;
  get: (row: T) => string | number | null | undefined;
  align?: "left" | "right";
}

/** Characters that move the cursor or the terminal's state: shown escaped, never sent raw. */
// oxlint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g;

/** Makes text safe for one table cell: control characters (a message body's newlines, ESC) escaped. */
export function cell(text: string): string {
  return text.replace(CONTROL, (c) => {
    if (c === "\n") return "\\n";
    if (c === "\t") return "\\t";
    if (c === "\r") return "\\r";
    return `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`;
  });
}

/** Formats rows as an aligned plain-text table with a header line; "(none)" when empty. */
export function table<T>(rows: readonly T[], columns: readonly Column<T>[]): string {
  if (rows.length === 0) return "(none)";
  const cells = rows.map((r) =>
    columns.map((c) => {
      const v = c.get(r);
      return v === null || v === undefined ? "-" : cell(String(v));
    }),
  );
  const right = columns.map(
    (c) =>
      c.align === "right" ||
      (c.align === undefined && rows.every((r) => typeof c.get(r) === "number")),
  );
  const widths = columns.map((c, i) =>
    Math.max(c.header.length, ...cells.map((row) => [...row[i]!].length)),
  );
  const line = (values: string[]) =>
    values
      .map((v, i) => {
        const pad = " ".repeat(widths[i]! - [...v].length);
        return right[i] ? pad + v : i === values.length - 1 ? v : v + pad;
      })
      .join("  ")
      .trimEnd();
  return [line(columns.map((c) => c.header)), ...cells.map(line)].join("\n");
}

/** Key/value lines, keys padded to one width. */
export function keyValues(pairs: readonly [string, string | number | null | undefined][]): string {
  const width = Math.max(...pairs.map(([k]) => k.length));
  return pairs
    .map(([k, v]) => `${k.padEnd(width)}  ${v === null || v === undefined ? "-" : cell(String(v))}`)
    .join("\n");
}

/** Bytes in binary units: "512 B", "1.5 KiB", "3.0 MiB". */
export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return "-";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i]}`;
}

/** A time as ISO 8601 in UTC, to the millisecond (unambiguous in logs and scripts). */
export function isoTime(ms: number | null | undefined): string {
  return ms === null || ms === undefined ? "-" : new Date(ms).toISOString();
}

const UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  sec: 1000,
  m: 60_000,
  min: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/**
 * A duration: `500ms`, `10s`, `5m`, `2h`, `3d`, or a plain number of
 * milliseconds. Throws a readable Error on anything else.
 */
export function parseDuration(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|sec|m|min|h|d)?\s*$/i.exec(text);
  if (!m)
    throw new Error(`not a duration: ${JSON.stringify(text)} (use e.g. 500ms, 10s, 5m, 2h, 3d)`);
  return Math.round(Number(m[1]) * UNITS[(m[2] ?? "ms").toLowerCase()]!);
}

/** A span in at most two units, exact where it fits: "45s", "1m30s", "2h", "3d". */
export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return "-";
  if (ms < 1000) return `${Math.round(ms)}ms`;
  let left = Math.round(ms / 1000);
  const parts: string[] = [];
  for (const [size, unit] of [
    [86_400, "d"],
    [3_600, "h"],
    [60, "m"],
    [1, "s"],
  ] as const) {
    if (parts.length === 2) break;
    if (left >= size) {
      parts.push(`${Math.floor(left / size)}${unit}`);
      left %= size;
    } else if (parts.length) break;
  }
  return parts.join("");
}

/**
 * A point in time: Unix milliseconds (digits), an ISO 8601 date or date-time
 * (`2026-11-24T10:00:00Z`; without a zone it is local time, as in JavaScript),
 * `now`, or `now-15m` / `-15m` (that long before `now`).
 */
export function parseTime(text: string, now: number): number {
  const t = text.trim();
  if (/^\d+$/.test(t)) return Number(t);
  if (t === "now") return now;
  const rel = /^(?:now)?\s*([-+])\s*(.+)$/.exec(t);
  if (rel && !/^\d{4}-/.test(t)) {
    const d = parseDuration(rel[2]!);
    return rel[1] === "-" ? now - d : now + d;
  }
  const ms = Date.parse(t);
  if (Number.isNaN(ms)) {
    throw new Error(
      `not a time: ${JSON.stringify(text)} (use Unix ms, ISO 8601 like 2026-11-24T10:00:00Z, now or -15m)`,
    );
  }
  return ms;
}

/** Splits repeated or comma-separated values: ["a,b", "c"] → ["a", "b", "c"]. */
export function splitList(values: readonly string[] | string | undefined): string[] {
  const all = values === undefined ? [] : typeof values === "string" ? [values] : values;
  return all
    .flatMap((v) => v.split(","))
    .map((v) => v.trim())
    .filter(Boolean);
}

/** `k=v` pairs into an object; throws on a pair without `=`. */
export function parseProperties(pairs: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of pairs) {
    const i = p.indexOf("=");
    if (i < 1) throw new Error(`a property is key=value, got ${JSON.stringify(p)}`);
    out[p.slice(0, i)] = p.slice(i + 1);
  }
  return out;
}

/** A message body shortened for a table cell. */
export function preview(body: string, encoding: string, max = 60): string {
  if (encoding === "base64") return `[base64, ${bytes(Math.floor((body.length * 3) / 4))}]`;
  const flat = cell(body);
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}
