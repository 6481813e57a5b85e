import { describe, expect, it } from "vitest";
import { call, serverFixture } from "./server-fixture.ts";

const { start } = serverFixture("persist");

describe("the local server", () => {
  it("keeps messages, offsets and dedup ids across a restart, and after a crash", async () => {
    let server = await start();
    await call(server.url, "PUT", "/v1/topics/persisted", { queues: 2 });
    const sent = await call(server.url, "POST", "/v1/topics/persisted/messages?queue=1", {
      messages: Array.from({ length: 10 }, (_, i) => ({ body: `m${i}`, msgId: `id-${i}` })),
    });
    expect(sent.status).toBe(200);
    await call(server.url, "PUT", "/v1/groups/g1/topics/persisted/queues/1/offset", { offset: 4 });

    // A clean stop, then a crash (SIGKILL) right after acknowledged writes.
    expect(await server.stop("SIGTERM")).toBe(0);
    server = await start();
    const more = await call(server.url, "POST", "/v1/topics/persisted/messages?queue=1", {
      messages: [{ body: "after-restart", msgId: "id-10" }],
    });
    expect(more.body.results[0]).toMatchObject({ status: "stored", offset: 10 });
    await server.stop("SIGKILL");
    server = await start();

    const pulled = await call(
      server.url,
      "GET",
      "/v1/topics/persisted/queues/1/messages?offset=0&max=100",
    );
    expect(pulled.body.messages.map((m: { body: string }) => m.body)).toEqual([
      ...Array.from({ length: 10 }, (_, i) => `m${i}`),
      "after-restart",
    ]);
    const offsets = await call(server.url, "GET", "/v1/groups/g1/topics/persisted/offsets");
    expect(offsets.body.offsets[1]).toMatchObject({ queue: 1, offset: 4, maxOffset: 11, lag: 7 });
    const retry = await call(server.url, "POST", "/v1/topics/persisted/messages?queue=1", {
      messages: [{ body: "m3", msgId: "id-3" }],
    });
    expect(retry.body.results[0]).toMatchObject({ status: "duplicate", offset: 3 });
  });
});
