import { describe, expect, it } from "vitest";
import { api, createTopic, unique } from "./helpers.ts";

describe("acking a batch of receipts", () => {
  it("answers each receipt in request order, a repeated one as expired, and acks each message once", async () => {
    const topic = await createTopic({ queues: 1 });
    const group = unique("g");
    await api("POST", `/v1/topics/${topic}/messages`, {
      messages: Array.from({ length: 5 }, (_, i) => ({ body: `m${i}` })),
    });
    const got = await api("POST", `/v1/groups/${group}/topics/${topic}/receive`, { max: 5 });
    const receipts: string[] = got.body.messages.map((m: { receipt: string }) => m.receipt);
    expect(receipts).toHaveLength(5);
    const [r0, r1, r2, r3] = receipts as [string, string, string, string];
    const acked = await api("POST", `/v1/groups/${group}/topics/${topic}/ack`, {
      receipts: [r2, r0, r2, r3],
    });
    expect(
      acked.body.results.map((r: { receipt: string; ok?: boolean; error?: { code: string } }) => [
        r.receipt,
        r.ok ?? r.error?.code,
      ]),
    ).toEqual([
      [r2, true],
      [r0, true],
      [r2, "RECEIPT_EXPIRED"],
      [r3, true],
    ]);
    // Acked receipts are used up; the others still settle.
    const again = await api("POST", `/v1/groups/${group}/topics/${topic}/ack`, {
      receipts: [r0, r1],
    });
    expect(again.body.results.map((r: { ok?: boolean }) => r.ok ?? false)).toEqual([false, true]);
    const stats = await api("GET", `/v1/groups/${group}/topics/${topic}/offsets`);
    expect(stats.body.offsets[0]).toMatchObject({ offset: 4, lag: 1 });
  });
});
