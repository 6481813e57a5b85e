/** Room reserved for parts of batches spanning queues: held, released, and lapsing on its own. */
import { describe, expect, it } from "vitest";
import { RESERVATION_TTL_MS, Reservations } from "../../src/broker/store/reservations.ts";

describe("reservations", () => {
  it("adds up the room held, and gives it back on release", () => {
    const r = new Reservations();
    r.hold("a", { messages: 2, bytes: 20, footprint: 2000 }, 0);
    r.hold("b", { messages: 1, bytes: 5, footprint: 600 }, 0);
    expect(r.total(1)).toEqual({ messages: 3, bytes: 25, footprint: 2600 });
    expect(r.release("a")).toBe(true);
    expect(r.release("a")).toBe(false);
    expect(r.total(1)).toEqual({ messages: 1, bytes: 5, footprint: 600 });
  });

  it("lets a reservation lapse when its part never comes (the gateway died between the steps)", () => {
    const r = new Reservations();
    r.hold("a", { messages: 1, bytes: 1, footprint: 1 }, 1000);
    expect(r.total(1000 + RESERVATION_TTL_MS - 1).messages).toBe(1);
    expect(r.total(1000 + RESERVATION_TTL_MS).messages).toBe(0);
    expect(r.release("a")).toBe(false);
  });
});
