/**
 * Message filters for pull and receive: `*`, a tag list (`TagA || TagB`), or
 * `sql:` and a SQL92 condition in RocketMQ's grammar. An expression is
 * compiled once into a tree of closures, so `matches` never parses, and every
 * bound (length, nesting, list size) is checked at compile time, where a bad
 * expression costs one request instead of every message. No regular
 * expression is ever built from user input. The broker runs this inside a
 * Durable Object and the SDK in browsers and Node, hence plain TypeScript only.
 */
import { badRequest } from "./errors.ts";

/** What a filter looks at; `undefined` is read as `null` so SDK messages fit too. */
export interface FilterableMessage {
  tag: string | null;
  properties: Record<string, string> | null;
}

/** A compiled filter expression. */
export interface MessageFilter {
  /** The expression as given, or `"*"` for every form that matches all. */
  readonly expression: string;
  /** True when every message matches, so callers may skip filtering entirely. */
  readonly matchesAll: boolean;
  /** Whether the message passes the filter. */
  matches(m: FilterableMessage): boolean;
}

/** Longest expression accepted (the contract's `Limits.maxFilterBytes`). */
const MAX_LENGTH = 4096;
/** Parentheses plus NOTs; bounds the parser's and the evaluator's recursion. */
const MAX_DEPTH = 64;
const MAX_IN_ITEMS = 1000;

/**
 * Compiles "*", "" / undefined (= all), a tag list "TagA || TagB", or
 * "sql:<SQL92 condition>".
 *
 * @throws EdgemqError("BAD_REQUEST", message, { position }) on a syntax error,
 * where position is the 0-based character index into the full expression
 * string (including the "sql:" prefix).
 */
export function compileFilter(expression: string | undefined | null): MessageFilter {
  if (expression == null) return MATCH_ALL;
  if (expression.length > MAX_LENGTH) {
    throw syntaxError(`is longer than ${MAX_LENGTH} characters`, MAX_LENGTH);
  }
  let start = 0;
  while (start < expression.length && isSpace(expression.charCodeAt(start))) start++;
  if (expression.slice(start, start + 4).toLowerCase() === "sql:") {
    const condition = new Parser(expression, start + 4).parse();
    return { expression, matchesAll: false, matches: (m) => condition(m) === true };
  }
  const trimmed = expression.trim();
  if (trimmed === "" || trimmed === "*") return MATCH_ALL;
  return compileTags(expression);
}

/**
 * Compiled filters by their text, for a process that sees the same few
 * filters again and again (a shard, once per call and per watcher check):
 * each text is compiled once while it stays among the `capacity` most
 * recently used. Bad expressions throw as {@link compileFilter} does and are
 * not kept.
 */
export class FilterCache {
  readonly #byText = new Map<string, MessageFilter>();
  // A plain field, not a parameter property: the SDK imports this module and
  // Node's type stripping (scripts, benches) runs erasable syntax only.
  readonly #capacity: number;

  constructor(capacity = 256) {
    this.#capacity = capacity;
  }

  get(expression: string | undefined | null): MessageFilter {
    if (expression == null) return MATCH_ALL;
    let f = this.#byText.get(expression);
    if (f) {
      // Most recently used last: Map keeps insertion order.
      this.#byText.delete(expression);
    } else {
      f = compileFilter(expression);
      if (this.#byText.size >= this.#capacity) {
        this.#byText.delete(this.#byText.keys().next().value!);
      }
    }
    this.#byText.set(expression, f);
    return f;
  }
}

const MATCH_ALL: MessageFilter = Object.freeze({
  expression: "*",
  matchesAll: true,
  matches: () => true,
});

/**
 * The expression a compiled filter is sent as (to a shard, over RPC): none
 * when it matches everything, so the receiver has nothing to compile.
 */
export function filterText(filter: MessageFilter): string | undefined {
  return filter.matchesAll ? undefined : filter.expression;
}

function syntaxError(what: string, position: number) {
  return badRequest(`filter ${what} (at position ${position})`, { position });
}

/** Quotes input for an error message, cut short so a 4 KB token is not echoed back whole. */
function quote(text: string): string {
  return `'${text.length > 40 ? `${text.slice(0, 40)}…` : text}'`;
}

// ---------------------------------------------------------------------------
// Tag lists

/**
 * RocketMQ splits on `||` and trims; it silently drops empty entries, but an
 * empty entry is almost always a typo that would otherwise narrow or widen a
 * subscription unnoticed, so here it is an error. `*` only means "all" on its
 * own: inside a list it is rejected rather than guessed at.
 */
function compileTags(expression: string): MessageFilter {
  const tags = new Set<string>();
  let from = 0;
  for (;;) {
    const bar = expression.indexOf("||", from);
    const end = bar === -1 ? expression.length : bar;
    let first = from;
    while (first < end && isSpace(expression.charCodeAt(first))) first++;
    const tag = expression.slice(first, end).trim();
    if (tag === "") throw syntaxError("has an empty tag", first);
    if (tag === "*") throw syntaxError("has '*' inside a tag list", first);
    tags.add(tag);
    if (bar === -1) break;
    from = bar + 2;
  }
  // A single tag is by far the common case; a string compare beats a Set probe.
  const [only] = tags;
  const matches =
    tags.size === 1 && only !== undefined
      ? (m: FilterableMessage) => m.tag === only
      : (m: FilterableMessage) => m.tag != null && tags.has(m.tag);
  return { expression, matchesAll: false, matches };
}

// ---------------------------------------------------------------------------
// SQL92: values and three-valued logic

/** A property (always a string), a literal, or `null` for missing / NULL. */
type Value = string | number | boolean | null;
/** SQL truth: `null` is UNKNOWN, which never lets a message through. */
type Truth = boolean | null;
type Operand = (m: FilterableMessage) => Value;
type Condition = (m: FilterableMessage) => Truth;

/**
 * Plain decimal notation only: `Number()` alone would also take "", " 7 ",
 * "0x1F" and "Infinity", which no producer means as a number. Linear-time
 * (no ambiguous repetition), so hostile property values cannot stall it.
 */
const NUMERIC = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

function toNumber(s: string): number | undefined {
  if (!NUMERIC.test(s)) return undefined;
  const n = Number(s);
  return Number.isFinite(n) ? n : undefined;
}

/** -1, 0 or 1; `null` means the pair cannot be ordered, i.e. UNKNOWN. */
type Order = -1 | 0 | 1 | null;

/**
 * Orders two values: strings as strings, anything else as numbers, with a
 * string converted when it meets a number. NULL, booleans and a string that
 * does not convert cannot be ordered.
 */
function order(a: Value, b: Value): Order {
  if (typeof a === "string" && typeof b === "string") return sign(a, b);
  const x = typeof a === "string" ? toNumber(a) : a;
  const y = typeof b === "string" ? toNumber(b) : b;
  return typeof x === "number" && typeof y === "number" ? sign(x, y) : null;
}

function sign<T extends string | number>(a: T, b: T): Order {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** `=`: like {@link order}, plus booleans, which equal the strings 'true' / 'false'. */
function equals(a: Value, b: Value): Truth {
  if (typeof a === "boolean" || typeof b === "boolean") {
    if (typeof a === typeof b) return a === b;
    if (typeof a === "string" || typeof b === "string") return String(a) === String(b);
    return null;
  }
  const o = order(a, b);
  return o === null ? null : o === 0;
}

const not3 = (t: Truth): Truth => (t === null ? null : !t);

function and3(terms: Condition[]): Condition {
  return (m) => {
    let result: Truth = true;
    for (const term of terms) {
      const t = term(m);
      if (t === false) return false;
      if (t === null) result = null;
    }
    return result;
  };
}

function or3(terms: Condition[]): Condition {
  return (m) => {
    let result: Truth = false;
    for (const term of terms) {
      const t = term(m);
      if (t === true) return true;
      if (t === null) result = null;
    }
    return result;
  };
}

const comparisons = new Map<string, (a: Value, b: Value) => Truth>([
  ["=", equals],
  ["<>", (a, b) => not3(equals(a, b))],
  ["<", (a, b) => map(order(a, b), (o) => o < 0)],
  ["<=", (a, b) => map(order(a, b), (o) => o <= 0)],
  [">", (a, b) => map(order(a, b), (o) => o > 0)],
  [">=", (a, b) => map(order(a, b), (o) => o >= 0)],
]);

function map(o: Order, test: (o: number) => boolean): Truth {
  return o === null ? null : test(o);
}

const stringTests = {
  CONTAINS: (s: string, x: string) => s.includes(x),
  STARTSWITH: (s: string, x: string) => s.startsWith(x),
  ENDSWITH: (s: string, x: string) => s.endsWith(x),
};

function property(name: string): Operand {
  // `TAGS` is RocketMQ's name for the tag; `tag` is the name used everywhere else in edgemq.
  if (name === "TAGS" || name === "tag") return (m) => m.tag ?? null;
  // hasOwn, not `in` or a bare read: "constructor" or "__proto__" must not
  // reach Object.prototype and turn a missing property into a function.
  return (m) => {
    const p = m.properties;
    return p != null && Object.hasOwn(p, name) ? (p[name] ?? null) : null;
  };
}

function inList(left: Operand, items: Value[]): Condition {
  // The hot case is a string property against literals: one Set probe for the
  // string items (booleans compare as 'true'/'false'), one for the numbers.
  const strings = new Set<string>();
  const numbers = new Set<number>();
  for (const item of items) {
    if (typeof item === "number") numbers.add(item);
    else strings.add(String(item));
  }
  return (m) => {
    const v = left(m);
    if (typeof v === "string") {
      if (strings.has(v)) return true;
      if (numbers.size === 0) return false;
      const n = toNumber(v);
      return n === undefined ? null : numbers.has(n);
    }
    // Only a literal on the left gets here, so a plain loop is fast enough.
    if (v === null) return null;
    let result: Truth = false;
    for (const item of items) {
      const t = equals(v, item);
      if (t === true) return true;
      if (t === null) result = null;
    }
    return result;
  };
}

// ---------------------------------------------------------------------------
// SQL92: lexer

type Token =
  | { kind: "ident"; text: string; pos: number }
  | { kind: "keyword"; text: string; pos: number }
  | { kind: "string"; value: string; pos: number }
  | { kind: "number"; value: number; pos: number }
  | { kind: "punct"; text: string; pos: number }
  | { kind: "end"; pos: number };

const KEYWORDS = new Set([
  "AND",
  "OR",
  "NOT",
  "BETWEEN",
  "IN",
  "IS",
  "NULL",
  "TRUE",
  "FALSE",
  "CONTAINS",
  "STARTSWITH",
  "ENDSWITH",
]);

function isSpace(c: number): boolean {
  return c === 32 || (c >= 9 && c <= 13);
}
function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}
function isIdentStart(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;
}
function isIdentPart(c: number): boolean {
  return isIdentStart(c) || isDigit(c) || c === 46;
}

function tokenize(src: string, from: number): Token[] {
  const tokens: Token[] = [];
  let i = from;
  while (i < src.length) {
    const c = src.charCodeAt(i);
    const pos = i;
    if (isSpace(c)) {
      i++;
    } else if (isIdentStart(c)) {
      while (i < src.length && isIdentPart(src.charCodeAt(i))) i++;
      const text = src.slice(pos, i);
      const upper = text.toUpperCase();
      tokens.push(
        KEYWORDS.has(upper) ? { kind: "keyword", text: upper, pos } : { kind: "ident", text, pos },
      );
    } else if (isDigit(c) || (c === 45 && isDigit(src.charCodeAt(i + 1)))) {
      i++;
      while (isDigit(src.charCodeAt(i))) i++;
      if (src.charCodeAt(i) === 46 && isDigit(src.charCodeAt(i + 1))) {
        i += 2;
        while (isDigit(src.charCodeAt(i))) i++;
      }
      const value = Number(src.slice(pos, i));
      if (!Number.isFinite(value)) throw syntaxError("has a number out of range", pos);
      tokens.push({ kind: "number", value, pos });
    } else if (c === 39) {
      let value = "";
      for (i++; ; i++) {
        const close = src.indexOf("'", i);
        if (close === -1) throw syntaxError("has an unterminated string", pos);
        value += src.slice(i, close);
        i = close + 1;
        if (src.charCodeAt(i) !== 39) break;
        value += "'";
      }
      tokens.push({ kind: "string", value, pos });
    } else {
      const two = src.slice(i, i + 2);
      const text = two === "<=" || two === ">=" || two === "<>" ? two : src.charAt(i);
      if (text.length === 1 && !"()=<>,".includes(text)) {
        throw syntaxError(`has an unexpected character ${quote(text)}`, pos);
      }
      i += text.length;
      tokens.push({ kind: "punct", text, pos });
    }
  }
  tokens.push({ kind: "end", pos: src.length });
  return tokens;
}

// ---------------------------------------------------------------------------
// SQL92: parser
//
//   or        := and (OR and)*
//   and       := not (AND not)*
//   not       := NOT not | primary
//   primary   := "(" or ")" | operand predicate | TRUE | FALSE
//   predicate := (= | <> | < | <= | > | >=) operand
//              | [NOT] BETWEEN operand AND operand
//              | [NOT] IN "(" literal ("," literal)* ")"
//              | [NOT] (CONTAINS | STARTSWITH | ENDSWITH) string
//              | IS [NOT] NULL
//   operand   := identifier | string | number | TRUE | FALSE | NULL
//
// Comparisons bind tighter than NOT, as in SQL (RocketMQ's grammar lets NOT
// bind to a bare operand, which only yields type errors). Parentheses group
// conditions, never operands.

class Parser {
  private readonly tokens: Token[];
  private index = 0;
  private depth = 0;

  constructor(src: string, from: number) {
    this.tokens = tokenize(src, from);
  }

  parse(): Condition {
    const condition = this.or();
    const rest = this.peek();
    if (rest.kind !== "end") throw this.unexpected(rest, "where AND, OR or the end was expected");
    return condition;
  }

  private or(): Condition {
    const terms = [this.and()];
    while (this.acceptKeyword("OR")) terms.push(this.and());
    return terms.length === 1 ? terms[0]! : or3(terms);
  }

  private and(): Condition {
    const terms = [this.not()];
    while (this.acceptKeyword("AND")) terms.push(this.not());
    return terms.length === 1 ? terms[0]! : and3(terms);
  }

  private not(): Condition {
    if (!this.isKeyword(this.peek(), "NOT")) return this.primary();
    this.enter();
    this.index++;
    const inner = this.not();
    this.depth--;
    return (m) => not3(inner(m));
  }

  private primary(): Condition {
    const token = this.peek();
    if (token.kind === "punct" && token.text === "(") {
      this.enter();
      this.index++;
      const inner = this.or();
      const close = this.peek();
      if (close.kind !== "punct" || close.text !== ")") {
        throw this.unexpected(close, "where ')' was expected");
      }
      this.index++;
      this.depth--;
      return inner;
    }
    const left = this.operand();
    const op = this.peek();
    const compare = op.kind === "punct" ? comparisons.get(op.text) : undefined;
    if (compare) {
      this.index++;
      const right = this.operand();
      return (m) => compare(left(m), right(m));
    }
    if (op.kind === "keyword") {
      if (op.text === "IS") {
        this.index++;
        const negated = this.acceptKeyword("NOT");
        const nul = this.peek();
        if (!this.isKeyword(nul, "NULL")) throw this.unexpected(nul, "where NULL was expected");
        this.index++;
        return negated ? (m) => left(m) !== null : (m) => left(m) === null;
      }
      const negated = this.acceptKeyword("NOT");
      const predicate = this.predicate(left);
      if (predicate) return negated ? (m) => not3(predicate(m)) : predicate;
      if (negated) {
        throw this.unexpected(
          this.peek(),
          "where BETWEEN, IN, CONTAINS, STARTSWITH or ENDSWITH was expected",
        );
      }
    }
    // TRUE and FALSE are conditions on their own; anything else needs an operator.
    if (token.kind === "keyword" && (token.text === "TRUE" || token.text === "FALSE")) {
      const value = token.text === "TRUE";
      return () => value;
    }
    throw this.unexpected(op, "where a comparison operator was expected");
  }

  /** The keyword predicates that may follow NOT; undefined when none is next. */
  private predicate(left: Operand): Condition | undefined {
    const token = this.peek();
    if (token.kind !== "keyword") return undefined;
    if (token.text === "BETWEEN") {
      this.index++;
      const low = this.operand();
      const and = this.peek();
      if (!this.isKeyword(and, "AND")) {
        throw this.unexpected(and, "where BETWEEN's AND was expected");
      }
      this.index++;
      const high = this.operand();
      return (m) => {
        const v = left(m);
        const aboveLow = map(order(v, low(m)), (o) => o >= 0);
        if (aboveLow === false) return false;
        const belowHigh = map(order(v, high(m)), (o) => o <= 0);
        return belowHigh === false ? false : aboveLow && belowHigh;
      };
    }
    if (token.text === "IN") {
      this.index++;
      return inList(left, this.list());
    }
    if (token.text === "CONTAINS" || token.text === "STARTSWITH" || token.text === "ENDSWITH") {
      this.index++;
      const arg = this.peek();
      if (arg.kind !== "string") {
        throw this.unexpected(arg, `where ${token.text}'s quoted string was expected`);
      }
      this.index++;
      const test = stringTests[token.text];
      const x = arg.value;
      return (m) => {
        const v = left(m);
        return typeof v === "string" ? test(v, x) : null;
      };
    }
    return undefined;
  }

  private list(): Value[] {
    const open = this.peek();
    if (open.kind !== "punct" || open.text !== "(") {
      throw this.unexpected(open, "where IN's '(' was expected");
    }
    this.index++;
    const items: Value[] = [];
    for (;;) {
      const token = this.peek();
      const value = this.literal(token);
      if (value === undefined) {
        throw this.unexpected(token, "where a string, number, TRUE or FALSE was expected");
      }
      if (items.length === MAX_IN_ITEMS) {
        throw syntaxError(`has more than ${MAX_IN_ITEMS} IN items`, token.pos);
      }
      items.push(value);
      this.index++;
      const next = this.peek();
      this.index++;
      if (next.kind === "punct" && next.text === ")") return items;
      if (next.kind !== "punct" || next.text !== ",") {
        throw this.unexpected(next, "where ',' or ')' was expected");
      }
    }
  }

  private literal(token: Token): string | number | boolean | undefined {
    if (token.kind === "string" || token.kind === "number") return token.value;
    if (this.isKeyword(token, "TRUE")) return true;
    if (this.isKeyword(token, "FALSE")) return false;
    return undefined;
  }

  private operand(): Operand {
    const token = this.peek();
    if (token.kind === "ident") {
      this.index++;
      return property(token.text);
    }
    const value = this.isKeyword(token, "NULL") ? null : this.literal(token);
    if (value === undefined) {
      throw this.unexpected(token, "where a property or a value was expected");
    }
    this.index++;
    return () => value;
  }

  private enter(): void {
    if (++this.depth > MAX_DEPTH) {
      throw syntaxError(`nests deeper than ${MAX_DEPTH} parentheses or NOTs`, this.peek().pos);
    }
  }

  private peek(): Token {
    // The lexer always ends with an "end" token and nothing consumes past it.
    return this.tokens[Math.min(this.index, this.tokens.length - 1)]!;
  }

  private isKeyword(token: Token, text: string): boolean {
    return token.kind === "keyword" && token.text === text;
  }

  private acceptKeyword(text: string): boolean {
    if (!this.isKeyword(this.peek(), text)) return false;
    this.index++;
    return true;
  }

  private unexpected(token: Token, expected: string) {
    const found =
      token.kind === "end"
        ? "ends"
        : token.kind === "string"
          ? `has the string ${quote(token.value)}`
          : `has ${quote(token.kind === "number" ? String(token.value) : token.text)}`;
    return syntaxError(`${found} ${expected}`, token.pos);
  }
}
