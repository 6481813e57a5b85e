/** Message queries: by msgId (with each group's status), by key, by store time. */
import type { Message } from "../../protocol/types.ts";
import type { Sender } from "./msg-ids.ts";
import type { LogRow, StoreState } from "./state.ts";

export type GroupMessageStatus = "consumed" | "pending" | "inflight" | "retrying" | "dlq";

/** Looks messages up without changing anything. */
export class Queries {
  constructor(private readonly state: StoreState) {}

  /**
   * A message by id with each known group's status, or null. A scoped
   * `sender` finds only its own message of that id; the admin (null) finds
   * its own space's first, else the oldest of any sender's.
   */
  findById(
    msgId: string,
    sender: Sender,
  ): (Message & { groups: Record<string, GroupMessageStatus> }) | null {
    this.state.topicConfig();
    let row: LogRow | undefined;
    for (const id of this.state.ids.lookup(sender, msgId)) {
      row = id.msg_offset === null ? undefined : this.state.logRow(id.msg_offset);
      if (row) break;
    }
    if (!row) return null;
    const groups: Record<string, GroupMessageStatus> = {};
    const off = row.msg_offset;
    for (const g of this.state.sql.exec<{
      name: string;
      committed: number | null;
      pop_next: number | null;
    }>("SELECT name, committed, pop_next FROM grp")) {
      const dlq = this.state.sql
        .exec("SELECT 1 FROM dlq WHERE grp = ? AND msg_offset = ?", g.name, off)
        .toArray().length;
      const inf = this.state.sql
        .exec<{ state: number }>(
          "SELECT state FROM inflight WHERE grp = ? AND msg_offset = ?",
          g.name,
          off,
        )
        .toArray()[0];
      if (dlq) groups[g.name] = "dlq";
      else if (inf)
        groups[g.name] = inf.state === 0 ? "inflight" : inf.state === 1 ? "retrying" : "consumed";
      else if (g.committed !== null) groups[g.name] = off < g.committed ? "consumed" : "pending";
      else if (g.pop_next !== null) groups[g.name] = off < g.pop_next ? "consumed" : "pending";
      else groups[g.name] = "pending";
    }
    return { ...this.state.toMessage(row), groups };
  }

  findByKey(key: string, limit: number): Message[] {
    this.state.topicConfig();
    return this.state.sql
      .exec<LogRow>(
        `SELECT log.* FROM msg_key JOIN log ON log.msg_offset = msg_key.msg_offset
         WHERE msg_key.key = ? ORDER BY msg_key.msg_offset LIMIT ?`,
        key,
        limit,
      )
      .toArray()
      .map((r) => this.state.toMessage(r));
  }

  findByTime(from: number, to: number, limit: number): Message[] {
    this.state.topicConfig();
    return this.state.sql
      .exec<LogRow>(
        "SELECT * FROM log WHERE stored_at >= ? AND stored_at < ? ORDER BY stored_at, msg_offset LIMIT ?",
        from,
        to,
        limit,
      )
      .toArray()
      .map((r) => this.state.toMessage(r));
  }
}
