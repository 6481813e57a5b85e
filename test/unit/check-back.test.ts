import { describe, expect, it } from "vitest";
import { settleVerdict, signBody } from "../../src/broker/outbound/check-back.ts";
import { CHECK_TIMEOUT_MS, checkLeaseUntil } from "../../src/broker/timers/timing.ts";
import { createHmac } from "node:crypto";

describe("settleVerdict", () => {
  it("lets the producer's commit or rollback stand, even on the last check", () => {
    expect(settleVerdict("commit", 1, 15)).toBe("commit");
    expect(settleVerdict("rollback", 15, 15)).toBe("rollback");
    expect(settleVerdict("commit", 15, 15)).toBe("commit");
  });

  it("defers an unknown answer until the last allowed check, then gives up", () => {
    expect(settleVerdict("unknown", 1, 15)).toBe("unknown");
    expect(settleVerdict("unknown", 14, 15)).toBe("unknown");
    expect(settleVerdict("unknown", 15, 15)).toBe("exhausted");
    expect(settleVerdict("unknown", 16, 15)).toBe("exhausted");
    expect(settleVerdict("unknown", 1, 1)).toBe("exhausted");
  });
});

describe("checkLeaseUntil", () => {
  it("holds a claimed check past its timeout, so checks of one half message never overlap", () => {
    expect(checkLeaseUntil(1_000_000)).toBeGreaterThan(1_000_000 + CHECK_TIMEOUT_MS);
  });
});

describe("signBody", () => {
  it("is the hex HMAC-SHA256 of the body with the secret", async () => {
    const body = JSON.stringify({ txId: "t1.a.0.1", checkTimes: 1 });
    expect(await signBody(body, "s3cret")).toBe(
      createHmac("sha256", "s3cret").update(body).digest("hex"),
    );
  });
});
