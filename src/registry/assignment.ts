/**
 * RocketMQ's AllocateMessageQueueAveragely: queues split into contiguous
 * runs over the members sorted by id, the first `queues % members` members
 * taking one extra. Every queue has exactly one owner; a member beyond the
 * queue count gets none.
 */
export function assignQueues(memberIndex: number, members: number, queues: number): number[] {
  if (members <= 0 || memberIndex < 0 || memberIndex >= members) return [];
  const mod = queues % members;
  const size =
    queues <= members
      ? 1
      : mod > 0 && memberIndex < mod
        ? Math.floor(queues / members) + 1
        : Math.floor(queues / members);
  const start = mod > 0 && memberIndex < mod ? memberIndex * size : memberIndex * size + mod;
  const out: number[] = [];
  for (let q = start; q < Math.min(start + size, queues); q++) out.push(q);
  return out;
}

/** Members still alive at `now`: seen within `timeoutMs`. */
export function liveMembers<T extends { lastSeen: number }>(
  members: T[],
  now: number,
  timeoutMs: number,
): T[] {
  return members.filter((m) => now - m.lastSeen < timeoutMs);
}
