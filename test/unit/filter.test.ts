import { describe, it, expect } from "vitest";
import { EdgemqError } from "../../src/protocol/errors.ts";
import { compileFilter, FilterCache, type FilterableMessage } from "../../src/protocol/filter.ts";

/** A message with the given properties and tag. */
function msg(
  properties: Record<string, string> | null = null,
  tag: string | null = null,
): FilterableMessage {
  return { tag, properties };
}

/** Whether `sql:<condition>` lets the message through. */
function sql(condition: string, m: FilterableMessage): boolean {
  return compileFilter(`sql:${condition}`).matches(m);
}

/** The BAD_REQUEST thrown by compiling `expression`. */
function errorOf(expression: string): EdgemqError {
  try {
    compileFilter(expression);
  } catch (err) {
    if (err instanceof EdgemqError) return err;
    throw err;
  }
  throw new Error(`expected ${JSON.stringify(expression)} to be rejected`);
}

function positionOf(expression: string): unknown {
  const err = errorOf(expression);
  expect(err.code).toBe("BAD_REQUEST");
  return err.details?.position;
}

describe("match-all filters", () => {
  it.each([undefined, null, "", "*", "  *  ", "   "])(
    "matches every message for %j",
    (expression) => {
      const filter = compileFilter(expression);
      expect(filter.matchesAll).toBe(true);
      expect(filter.expression).toBe("*");
      expect(filter.matches(msg())).toBe(true);
      expect(filter.matches(msg({ a: "1" }, "TagA"))).toBe(true);
    },
  );

  it("does not report a tag list or a SQL filter as matching all", () => {
    expect(compileFilter("TagA").matchesAll).toBe(false);
    expect(compileFilter("sql:TRUE").matchesAll).toBe(false);
  });

  it("keeps the expression of a filter that does not match all", () => {
    expect(compileFilter("TagA || TagB").expression).toBe("TagA || TagB");
    expect(compileFilter("sql:a = 1").expression).toBe("sql:a = 1");
  });
});

describe("tag lists", () => {
  it("matches a message whose tag is the single tag", () => {
    const filter = compileFilter("TagA");
    expect(filter.matches(msg(null, "TagA"))).toBe(true);
    expect(filter.matches(msg(null, "TagB"))).toBe(false);
  });

  it("matches a message whose tag is any of the listed tags, ignoring spaces around them", () => {
    const filter = compileFilter("  TagA ||TagB||   TagC ");
    expect(filter.matches(msg(null, "TagA"))).toBe(true);
    expect(filter.matches(msg(null, "TagB"))).toBe(true);
    expect(filter.matches(msg(null, "TagC"))).toBe(true);
    expect(filter.matches(msg(null, "TagD"))).toBe(false);
  });

  it("compares tags case-sensitively", () => {
    expect(compileFilter("TagA").matches(msg(null, "taga"))).toBe(false);
  });

  it("does not match a message without a tag", () => {
    expect(compileFilter("TagA").matches(msg())).toBe(false);
    expect(compileFilter("TagA || TagB").matches(msg({ a: "1" }))).toBe(false);
  });

  it("treats an undefined tag like a missing one", () => {
    const m = { properties: null } as unknown as FilterableMessage;
    expect(compileFilter("TagA || TagB").matches(m)).toBe(false);
    expect(compileFilter("sql:TAGS IS NULL").matches(m)).toBe(true);
  });

  it("keeps spaces inside a tag", () => {
    expect(compileFilter("Tag A || B").matches(msg(null, "Tag A"))).toBe(true);
  });

  it("reads a tag that merely contains 'sql' as a tag", () => {
    expect(compileFilter("mysql:x").matches(msg(null, "mysql:x"))).toBe(true);
  });

  it("rejects an empty entry at the position after its separator", () => {
    expect(positionOf("A || || B")).toBe(5);
    expect(positionOf("|| A")).toBe(0);
    expect(positionOf("A ||")).toBe(4);
    expect(positionOf("A ||   ")).toBe(7);
  });

  it("rejects '*' inside a tag list", () => {
    expect(positionOf("A || *")).toBe(5);
  });
});

describe("SQL comparisons", () => {
  const m = msg({ region: "eu", amount: "42", price: "9.5", flag: "true", code: "007" }, "TagA");

  it("matches a message whose property equals a string", () => {
    expect(sql("region = 'eu'", m)).toBe(true);
    expect(sql("region = 'us'", m)).toBe(false);
  });

  it("matches a message whose property differs from a string with <>", () => {
    expect(sql("region <> 'us'", m)).toBe(true);
    expect(sql("region <> 'eu'", m)).toBe(false);
  });

  it("compares a property with a number numerically", () => {
    expect(sql("amount = 42", m)).toBe(true);
    expect(sql("amount = 42.0", m)).toBe(true);
    expect(sql("code = 7", m)).toBe(true);
    expect(sql("amount <> 41", m)).toBe(true);
    expect(sql("amount > 41.5", m)).toBe(true);
    expect(sql("amount >= 42", m)).toBe(true);
    expect(sql("amount < 42", m)).toBe(false);
    expect(sql("amount <= 42", m)).toBe(true);
    expect(sql("price < 10", m)).toBe(true);
    expect(sql("amount > -1", m)).toBe(true);
    expect(sql("-1 < amount", m)).toBe(true);
  });

  it("compares a property with a string as a string", () => {
    expect(sql("code = '007'", m)).toBe(true);
    expect(sql("code = '7'", m)).toBe(false);
    // As strings, "42" sorts before "5".
    expect(sql("amount < '5'", m)).toBe(true);
    expect(sql("amount > '5'", m)).toBe(false);
    expect(sql("region >= 'eu'", m)).toBe(true);
    expect(sql("region <= 'ea'", m)).toBe(false);
  });

  it("compares a property with a boolean as the string 'true' or 'false'", () => {
    expect(sql("flag = TRUE", m)).toBe(true);
    expect(sql("flag = FALSE", m)).toBe(false);
    expect(sql("flag <> FALSE", m)).toBe(true);
    expect(sql("region = TRUE", m)).toBe(false);
  });

  it("compares two properties as strings", () => {
    const two = msg({ a: "10", b: "9", c: "10" });
    expect(sql("a = c", two)).toBe(true);
    expect(sql("a < b", two)).toBe(true);
  });

  it("compares literals with each other", () => {
    expect(sql("1 = 1", msg())).toBe(true);
    expect(sql("'5' = 5", msg())).toBe(true);
    expect(sql("'a' < 'b'", msg())).toBe(true);
    expect(sql("TRUE = TRUE", msg())).toBe(true);
    expect(sql("TRUE = 1", msg())).toBe(false);
  });

  it("does not match when a property does not convert to the number it is compared with", () => {
    const bad = msg({ a: "abc", e: "", s: " 5", hex: "0x10", inf: "Infinity", big: "1e999" });
    expect(sql("a = 1", bad)).toBe(false);
    expect(sql("a <> 1", bad)).toBe(false);
    expect(sql("a > 1", bad)).toBe(false);
    expect(sql("NOT (a > 1)", bad)).toBe(false);
    expect(sql("e = 0", bad)).toBe(false);
    expect(sql("s = 5", bad)).toBe(false);
    expect(sql("hex = 16", bad)).toBe(false);
    expect(sql("inf > 0", bad)).toBe(false);
    expect(sql("big > 0", bad)).toBe(false);
  });

  it("converts properties written in decimal or exponent notation", () => {
    const ok = msg({ a: "+5", b: "-0.5", c: ".5", d: "5.", e: "1e3" });
    expect(sql("a = 5 AND b = -0.5 AND c = 0.5 AND d = 5 AND e = 1000", ok)).toBe(true);
  });

  it("reads the tag through TAGS and tag", () => {
    expect(sql("TAGS = 'TagA'", m)).toBe(true);
    expect(sql("tag = 'TagA'", m)).toBe(true);
    expect(sql("tag <> 'TagA'", m)).toBe(false);
    expect(sql("TAGS IS NULL", msg())).toBe(true);
  });

  it("reads property names case-sensitively", () => {
    expect(sql("Region = 'eu'", m)).toBe(false);
    expect(sql("Region IS NULL", m)).toBe(true);
  });

  it("accepts dots, digits and underscores in property names", () => {
    expect(sql("user.id_2 = 'x'", msg({ "user.id_2": "x" }))).toBe(true);
  });

  it("does not mistake Object.prototype members for properties", () => {
    expect(sql("constructor IS NULL", msg({}))).toBe(true);
    expect(sql("toString IS NULL AND __proto__ IS NULL", msg({ a: "1" }))).toBe(true);
    expect(sql("constructor = 'x'", msg({ constructor: "x" }))).toBe(true);
  });
});

describe("SQL BETWEEN", () => {
  it("matches a message whose amount is between 10 and 50, bounds included", () => {
    expect(sql("amount BETWEEN 10 AND 50", msg({ amount: "10" }))).toBe(true);
    expect(sql("amount BETWEEN 10 AND 50", msg({ amount: "30" }))).toBe(true);
    expect(sql("amount BETWEEN 10 AND 50", msg({ amount: "50" }))).toBe(true);
    expect(sql("amount BETWEEN 10 AND 50", msg({ amount: "51" }))).toBe(false);
    expect(sql("amount BETWEEN 10 AND 50", msg({ amount: "9.99" }))).toBe(false);
  });

  it("matches a message whose amount is not between 10 and 50", () => {
    expect(sql("amount NOT BETWEEN 10 AND 50", msg({ amount: "5" }))).toBe(true);
    expect(sql("amount NOT BETWEEN 10 AND 50", msg({ amount: "20" }))).toBe(false);
  });

  it("compares strings between string bounds", () => {
    expect(sql("name BETWEEN 'b' AND 'd'", msg({ name: "carol" }))).toBe(true);
    expect(sql("name BETWEEN 'b' AND 'd'", msg({ name: "dave" }))).toBe(false);
  });

  it("lets the AND after BETWEEN's bounds start a new condition", () => {
    const m = msg({ a: "3", b: "x" });
    expect(sql("a BETWEEN 1 AND 5 AND b = 'x'", m)).toBe(true);
    expect(sql("a BETWEEN 1 AND 5 AND b = 'y'", m)).toBe(false);
  });

  it("matches neither BETWEEN nor NOT BETWEEN for a missing or non-numeric property", () => {
    for (const m of [msg(), msg({ amount: "lots" })]) {
      expect(sql("amount BETWEEN 1 AND 5", m)).toBe(false);
      expect(sql("amount NOT BETWEEN 1 AND 5", m)).toBe(false);
    }
  });

  it("is definitely false when one bound already fails, even if the other is unknown", () => {
    // 9 < 10 is FALSE, so the unconvertible upper bound does not matter.
    expect(sql("NOT (a BETWEEN 10 AND 'x')", msg({ a: "9" }))).toBe(true);
  });
});

describe("SQL IN", () => {
  it("matches a message whose region is in the list", () => {
    expect(sql("region IN ('eu', 'us')", msg({ region: "us" }))).toBe(true);
    expect(sql("region IN ('eu', 'us')", msg({ region: "ap" }))).toBe(false);
  });

  it("matches a message whose region is not in the list", () => {
    expect(sql("region NOT IN ('eu', 'us')", msg({ region: "ap" }))).toBe(true);
    expect(sql("region NOT IN ('eu', 'us')", msg({ region: "eu" }))).toBe(false);
  });

  it("compares numeric list items numerically", () => {
    expect(sql("n IN (1, 2.5, 3)", msg({ n: "2.50" }))).toBe(true);
    expect(sql("n IN (1, 2.5, 3)", msg({ n: "4" }))).toBe(false);
    expect(sql("n IN ('2.5', 3)", msg({ n: "3.0" }))).toBe(true);
  });

  it("compares boolean list items as 'true' or 'false'", () => {
    expect(sql("f IN (TRUE)", msg({ f: "true" }))).toBe(true);
    expect(sql("f NOT IN (FALSE)", msg({ f: "true" }))).toBe(true);
  });

  it("accepts a literal on the left", () => {
    expect(sql("3 IN (1, 2, 3)", msg())).toBe(true);
    expect(sql("'x' NOT IN ('y')", msg())).toBe(true);
  });

  it("matches neither IN nor NOT IN for a missing property", () => {
    expect(sql("region IN ('eu')", msg())).toBe(false);
    expect(sql("region NOT IN ('eu')", msg())).toBe(false);
  });

  it("is unknown, not false, when a property cannot be compared with a numeric item", () => {
    expect(sql("n NOT IN (1, 2)", msg({ n: "abc" }))).toBe(false);
    // A string item that matches still makes it TRUE.
    expect(sql("n IN ('abc', 2)", msg({ n: "abc" }))).toBe(true);
  });

  it("accepts a list of 1000 items and rejects one of 1001", () => {
    const items = (n: number) => Array.from({ length: n }, (_, i) => i).join(",");
    expect(sql(`n IN (${items(1000)})`, msg({ n: "999" }))).toBe(true);
    const expression = `sql:n IN (${items(1001)})`;
    expect(positionOf(expression)).toBe(expression.lastIndexOf("1000"));
  });
});

describe("SQL IS NULL", () => {
  it("matches a message without the property with IS NULL", () => {
    expect(sql("a IS NULL", msg())).toBe(true);
    expect(sql("a IS NULL", msg({ b: "1" }))).toBe(true);
    expect(sql("a IS NULL", msg({ a: "" }))).toBe(false);
  });

  it("matches a message with the property with IS NOT NULL", () => {
    expect(sql("a IS NOT NULL", msg({ a: "" }))).toBe(true);
    expect(sql("a IS NOT NULL", msg())).toBe(false);
  });

  it("is never unknown, so NOT flips it", () => {
    expect(sql("NOT a IS NULL", msg({ a: "x" }))).toBe(true);
  });

  it("treats the NULL literal as null", () => {
    expect(sql("NULL IS NULL", msg())).toBe(true);
    expect(sql("a = NULL", msg({ a: "x" }))).toBe(false);
    expect(sql("a <> NULL", msg({ a: "x" }))).toBe(false);
  });
});

describe("SQL CONTAINS, STARTSWITH, ENDSWITH", () => {
  const m = msg({ s: "hello world" });

  it("matches a message whose property contains the string", () => {
    expect(sql("s CONTAINS 'lo w'", m)).toBe(true);
    expect(sql("s CONTAINS 'xyz'", m)).toBe(false);
    expect(sql("s NOT CONTAINS 'xyz'", m)).toBe(true);
    expect(sql("s NOT CONTAINS 'lo'", m)).toBe(false);
  });

  it("matches a message whose property starts with the string", () => {
    expect(sql("s STARTSWITH 'hello'", m)).toBe(true);
    expect(sql("s STARTSWITH 'world'", m)).toBe(false);
    expect(sql("s NOT STARTSWITH 'world'", m)).toBe(true);
    expect(sql("s NOT STARTSWITH 'hell'", m)).toBe(false);
  });

  it("matches a message whose property ends with the string", () => {
    expect(sql("s ENDSWITH 'world'", m)).toBe(true);
    expect(sql("s ENDSWITH 'hello'", m)).toBe(false);
    expect(sql("s NOT ENDSWITH 'hello'", m)).toBe(true);
    expect(sql("s NOT ENDSWITH 'ld'", m)).toBe(false);
  });

  it("treats an empty string as contained in everything", () => {
    expect(sql("s CONTAINS ''", m)).toBe(true);
  });

  it("takes the pattern literally: no wildcards", () => {
    expect(sql("s CONTAINS '%'", m)).toBe(false);
    expect(sql("s CONTAINS '.*'", msg({ s: "a.*b" }))).toBe(true);
  });

  it("matches neither form for a missing property", () => {
    expect(sql("s CONTAINS 'a'", msg())).toBe(false);
    expect(sql("s NOT CONTAINS 'a'", msg())).toBe(false);
    expect(sql("s NOT STARTSWITH 'a'", msg())).toBe(false);
    expect(sql("s NOT ENDSWITH 'a'", msg())).toBe(false);
  });
});

describe("SQL logic and precedence", () => {
  const m = msg({ a: "1", b: "2" });

  it("combines conditions with AND and OR", () => {
    expect(sql("a = 1 AND b = 2", m)).toBe(true);
    expect(sql("a = 1 AND b = 3", m)).toBe(false);
    expect(sql("a = 9 OR b = 2", m)).toBe(true);
    expect(sql("a = 9 OR b = 9", m)).toBe(false);
  });

  it("binds AND tighter than OR", () => {
    // (a = 9 AND b = 9) OR a = 1
    expect(sql("a = 9 AND b = 9 OR a = 1", m)).toBe(true);
    // a = 1 OR (b = 9 AND a = 9)
    expect(sql("a = 1 OR b = 9 AND a = 9", m)).toBe(true);
    expect(sql("a = 9 AND (b = 9 OR a = 1)", m)).toBe(false);
  });

  it("binds NOT tighter than AND and OR, and looser than comparisons", () => {
    // (NOT a = 1) AND b = 2
    expect(sql("NOT a = 1 AND b = 2", m)).toBe(false);
    // (NOT a = 9) OR b = 9
    expect(sql("NOT a = 9 OR b = 9", m)).toBe(true);
    expect(sql("NOT (a = 1 AND b = 9)", m)).toBe(true);
    expect(sql("NOT NOT a = 1", m)).toBe(true);
  });

  it("accepts TRUE and FALSE as conditions", () => {
    expect(sql("TRUE", msg())).toBe(true);
    expect(sql("FALSE", msg())).toBe(false);
    expect(sql("NOT FALSE AND (TRUE)", msg())).toBe(true);
  });

  it("reads keywords in any case", () => {
    expect(sql("a = 1 and b = 2", m)).toBe(true);
    expect(sql("not a = 9 Or b = 9", m)).toBe(true);
    expect(sql("a bEtWeEn 0 aNd 5 AND b in (2) and c is null and a Is NoT nUlL", m)).toBe(true);
    const m2 = msg({ a: "1", b: "true" });
    expect(sql("a contains '1' AND a startsWith '1' AND a endswith '1' AND b = True", m2)).toBe(
      true,
    );
    expect(sql("x = true and y = FaLsE", msg({ x: "true", y: "false" }))).toBe(true);
  });

  it("accepts the sql: prefix in any case and after spaces", () => {
    expect(compileFilter("  SQL:a = 1").matches(m)).toBe(true);
    expect(compileFilter("Sql:a = 1").matches(m)).toBe(true);
  });

  it("accepts any whitespace between tokens, or none", () => {
    expect(sql("\ta=1\nAND(b<>3)\r\n", m)).toBe(true);
  });
});

describe("SQL three-valued logic with missing properties", () => {
  const m = msg({ a: "1" });

  it("does not match any comparison on a missing property", () => {
    for (const op of ["=", "<>", "<", "<=", ">", ">="]) {
      expect(sql(`missing ${op} 1`, m)).toBe(false);
      expect(sql(`missing ${op} 'x'`, m)).toBe(false);
    }
  });

  it("keeps NOT of an unknown comparison unknown", () => {
    expect(sql("NOT missing = 1", m)).toBe(false);
    expect(sql("NOT (missing <> 1)", m)).toBe(false);
    expect(sql("NOT NOT missing = 1", m)).toBe(false);
  });

  it("makes TRUE OR UNKNOWN true and FALSE OR UNKNOWN not true", () => {
    expect(sql("a = 1 OR missing = 1", m)).toBe(true);
    expect(sql("missing = 1 OR a = 1", m)).toBe(true);
    expect(sql("a = 2 OR missing = 1", m)).toBe(false);
    expect(sql("NOT (a = 2 OR missing = 1)", m)).toBe(false);
  });

  it("makes FALSE AND UNKNOWN false, so NOT of it is true", () => {
    expect(sql("a = 2 AND missing = 1", m)).toBe(false);
    expect(sql("NOT (a = 2 AND missing = 1)", m)).toBe(true);
    expect(sql("NOT (missing = 1 AND a = 2)", m)).toBe(true);
  });

  it("makes TRUE AND UNKNOWN unknown", () => {
    expect(sql("a = 1 AND missing = 1", m)).toBe(false);
    expect(sql("NOT (a = 1 AND missing = 1)", m)).toBe(false);
  });

  it("treats a message without properties like one with none of them", () => {
    expect(sql("a = 1", msg())).toBe(false);
    expect(sql("a IS NULL", msg())).toBe(true);
    expect(sql("a IS NULL", { tag: null } as unknown as FilterableMessage)).toBe(true);
  });
});

describe("SQL literals", () => {
  it("reads a doubled quote inside a string as one quote", () => {
    expect(sql("name = 'O''Brien'", msg({ name: "O'Brien" }))).toBe(true);
    expect(sql("q = ''''", msg({ q: "'" }))).toBe(true);
    expect(sql("e = ''", msg({ e: "" }))).toBe(true);
  });

  it("keeps keywords, operators and spaces inside strings as text", () => {
    expect(sql("s = ' AND x = ''1'' OR ('", msg({ s: " AND x = '1' OR (" }))).toBe(true);
  });

  it("reads negative integers and decimals", () => {
    expect(sql("t = -3 AND u = -0.25 AND v = 0010", msg({ t: "-3", u: "-0.250", v: "10" }))).toBe(
      true,
    );
  });

  it("allows a negative number right after an operator", () => {
    expect(sql("t>-4", msg({ t: "-3" }))).toBe(true);
  });
});

describe("malformed expressions", () => {
  it.each([
    ["sql:a = ", 8],
    ["sql:a IN ()", 10],
    ["sql:(a = 1", 10],
    ["sql:a === 1", 7],
    ["sql:a == 1", 7],
    ["sql:a = 'abc", 8],
    ["sql:a = 'it''s", 8],
    ["sql:a = 1 b", 10],
    ["sql:a = 1)", 9],
    ["sql:", 4],
    ["sql:   ", 7],
    ["  sql:a", 7],
    ["sql:a", 5],
    ["sql:(a)", 6],
    ["sql:a = 1 AND", 13],
    ["sql:a = 1 OR OR b = 2", 13],
    ["sql:a != 1", 6],
    ['sql:a = "x"', 8],
    ["sql:a IN ('x',)", 14],
    ["sql:a IN ('x' 'y')", 14],
    ["sql:a IN 'x'", 9],
    ["sql:a IN (b)", 10],
    ["sql:a IN (NULL)", 10],
    ["sql:a BETWEEN 1 OR 2", 16],
    ["sql:a BETWEEN 1", 15],
    ["sql:a IS 5", 9],
    ["sql:a IS NOT", 12],
    ["sql:a NOT = 1", 10],
    ["sql:a CONTAINS 1", 15],
    ["sql:a STARTSWITH b", 17],
    ["sql:a ENDSWITH", 14],
    ["sql:NULL", 8],
    ["sql:'x'", 7],
    ["sql:a = 1.", 9],
    ["sql:a = - 1", 8],
    ["sql:1a = 1", 5],
    ["sql:a = 1 = 2", 10],
    ["sql:$a = 1", 4],
    ["sql:a = 1 NOT", 10],
    ["sql:AND a = 1", 4],
    ["sql:()", 5],
    ["sql:a = 1e5", 9],
  ])("rejects %j at position %i", (expression, position) => {
    expect(positionOf(expression)).toBe(position);
  });

  it("explains the problem in the message", () => {
    const err = errorOf("sql:a = ");
    expect(err.message).toMatch(/position 8/);
    expect(err.status).toBe(400);
    expect(errorOf("sql:a = 'abc").message).toMatch(/unterminated string/);
  });

  it("shortens long input quoted in the message", () => {
    const err = errorOf(`sql:a = 1 ${"x".repeat(3000)}`);
    expect(err.message.length).toBeLessThan(200);
  });

  it("rejects a number too large to represent", () => {
    expect(positionOf(`sql:a = ${"9".repeat(400)}`)).toBe(8);
  });
});

describe("hostile input", () => {
  it("accepts an expression of 4096 characters and rejects one of 4097", () => {
    const value = "x".repeat(4096 - "sql:a = ''".length);
    const fits = `sql:a = '${value}'`;
    expect(fits.length).toBe(4096);
    expect(compileFilter(fits).matches(msg({ a: value }))).toBe(true);
    expect(positionOf(`${fits} `)).toBe(4096);
    expect(positionOf("T".repeat(5000))).toBe(4096);
  });

  it("accepts 64 nested parentheses and rejects 65", () => {
    const nest = (n: number) => `sql:${"(".repeat(n)}a = 1${")".repeat(n)}`;
    expect(compileFilter(nest(64)).matches(msg({ a: "1" }))).toBe(true);
    expect(positionOf(nest(65))).toBe(4 + 64);
  });

  it("counts NOTs towards the nesting depth", () => {
    expect(compileFilter(`sql:${"NOT ".repeat(64)}a = 1`).matches(msg({ a: "1" }))).toBe(true);
    expect(positionOf(`sql:${"NOT ".repeat(65)}a = 1`)).toBe(4 + 64 * 4);
    expect(positionOf(`sql:${"NOT (".repeat(33)}a = 1${")".repeat(33)}`)).toBe(4 + 32 * 5);
  });

  it("evaluates a long OR chain without deep recursion", () => {
    const terms = Array.from({ length: 400 }, (_, i) => `a=${i}`).join(" OR ");
    const filter = compileFilter(`sql:${terms}`);
    expect(filter.matches(msg({ a: "399" }))).toBe(true);
    expect(filter.matches(msg({ a: "400" }))).toBe(false);
  });

  it("tests a long non-numeric property against a number quickly", () => {
    const filter = compileFilter("sql:a > 1");
    const value = `${"1".repeat(4000)}x`;
    const start = performance.now();
    for (let i = 0; i < 100; i++) expect(filter.matches(msg({ a: value }))).toBe(false);
    expect(performance.now() - start).toBeLessThan(500);
  });
});

describe("fuzzing", () => {
  /** mulberry32: a small seeded generator, so a failure reproduces. */
  function random(seed: number): () => number {
    return () => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  const tokens = [
    "a",
    "b",
    "TAGS",
    "tag",
    "x.y",
    "_z",
    "'s'",
    "'it''s'",
    "''",
    "'",
    "1",
    "-2",
    "3.5",
    "-0.5",
    "1.",
    "TRUE",
    "false",
    "NULL",
    "AND",
    "or",
    "NOT",
    "BETWEEN",
    "IN",
    "IS",
    "CONTAINS",
    "STARTSWITH",
    "ENDSWITH",
    "=",
    "<>",
    "<",
    "<=",
    ">",
    ">=",
    "(",
    ")",
    ",",
    "==",
    "!",
    '"',
    "||",
    "*",
    "-",
    " ",
    "\t",
  ];
  const messages = [
    msg(),
    msg({ a: "1", b: "abc", "x.y": "3.5", _z: "true" }, "TagA"),
    msg({ a: "s", b: "-2" }, "s"),
  ];

  it("either compiles or throws a positioned BAD_REQUEST for 2,000 random token strings", () => {
    const next = random(20261124);
    const pick = <T>(items: T[]) => items[Math.floor(next() * items.length)]!;
    let compiled = 0;
    for (let i = 0; i < 2000; i++) {
      const count = Math.floor(next() * 16);
      const parts = Array.from({ length: count }, () => pick(tokens));
      const body = parts.join(next() < 0.5 ? " " : "");
      const expression = next() < 0.85 ? `sql:${body}` : body;
      try {
        const filter = compileFilter(expression);
        compiled++;
        for (const m of messages) expect(typeof filter.matches(m)).toBe("boolean");
      } catch (err) {
        expect(err, expression).toBeInstanceOf(EdgemqError);
        const e = err as EdgemqError;
        expect(e.code, expression).toBe("BAD_REQUEST");
        const position = e.details?.position;
        expect(Number.isInteger(position), expression).toBe(true);
        expect(position as number, expression).toBeGreaterThanOrEqual(0);
        expect(position as number, expression).toBeLessThanOrEqual(expression.length);
      }
    }
    // The generator should exercise both outcomes, or the test proves little.
    expect(compiled).toBeGreaterThan(50);
    expect(compiled).toBeLessThan(2000);
  });
});

describe("FilterCache", () => {
  it("compiles each text once while it stays among the most recently used", () => {
    const cache = new FilterCache(2);
    const a = cache.get("sql:region = 'eu'");
    expect(cache.get("sql:region = 'eu'")).toBe(a);
    cache.get("TagA");
    // "sql:…" was used before "TagA", so a third text evicts it.
    cache.get("sql:region = 'eu'");
    cache.get("TagB");
    expect(cache.get("sql:region = 'eu'")).toBe(a);
    expect(cache.get("TagA")).not.toBe(cache.get("TagB"));
  });

  it("evicts the least recently used text beyond its capacity", () => {
    const cache = new FilterCache(1);
    const a = cache.get("TagA");
    cache.get("TagB");
    expect(cache.get("TagA")).not.toBe(a);
    expect(cache.get("TagA").matches({ tag: "TagA", properties: null })).toBe(true);
  });

  it("throws on a bad expression and keeps nothing for it", () => {
    const cache = new FilterCache();
    expect(() => cache.get("sql:a =")).toThrow(/filter/i);
    expect(() => cache.get("sql:a =")).toThrow(/filter/i);
  });

  it("answers the match-all filter for no expression", () => {
    expect(new FilterCache().get(undefined).matchesAll).toBe(true);
  });
});
