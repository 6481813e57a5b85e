/**
 * Pushed `messages` frames within the byte budget of one frame
 * (`SessionLimits.maxPushFrameBytes`): messages are serialized one by one
 * and a frame is closed before it would pass the budget. A single message
 * always fits (a body is at most 1 MiB, 6 MiB once JSON-escaped), so nothing
 * is ever held back.
 */
import { SessionLimits } from "../../protocol/session.ts";
import type { Message } from "../../protocol/types.ts";

const HEAD = '{"type":"messages","messages":[';

/** The frames carrying `messages` in order; `tail` (e.g. `"nextOffset":12`) goes in the last one. */
export function messageFrames(
  messages: readonly Message[],
  tail = "",
  budget: number = SessionLimits.maxPushFrameBytes,
): string[] {
  const frames: string[] = [];
  const close = tail ? `],${tail}}` : "]}";
  let parts: string[] = [];
  let bytes = HEAD.length + close.length;
  for (const m of messages) {
    const json = JSON.stringify(m);
    // String length undercounts non-ASCII bytes by at most 3x; count conservatively then.
    const size = json.length * (/[\u0080-\uffff]/.test(m.body) ? 3 : 1) + 1;
    if (parts.length > 0 && bytes + size > budget) {
      frames.push(`${HEAD}${parts.join(",")}]}`);
      parts = [];
      bytes = HEAD.length + close.length;
    }
    parts.push(json);
    bytes += size;
  }
  if (parts.length > 0 || tail) frames.push(`${HEAD}${parts.join(",")}${close}`);
  return frames;
}
