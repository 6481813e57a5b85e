/**
 * Queue selection, shared by the gateway and the SDK so a client can predict
 * where an ordered message lands.
 */

/** FNV-1a, 32 bit: fast, stable across runtimes, well spread for short keys. */
export function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** The queue of a message: the same sharding key (or msgId) always maps to the same queue. */
export function queueFor(key: string, queues: number): number {
  return hash32(key) % queues;
}
