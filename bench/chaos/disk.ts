/**
 * The full-disk fault: a separate server on a small tmpfs, filled to within
 * ~1 MiB. Sends must fail with 507 STORAGE_FULL only, succeed again once the
 * space is freed, and everything acknowledged must be there, once, after a
 * crash. Skipped with a note when mounting is not permitted.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { type LocalServer, startLocalServer } from "../../scripts/local-server.ts";
import { type Answer, ChaosClient } from "./client.ts";
import { sleep } from "./config.ts";
import type { History } from "./history.ts";

/** A server on `dataDir` with a client for it. */
async function diskServer(dataDir: string): Promise<{ server: LocalServer; client: ChaosClient }> {
  const server = await startLocalServer({
    port: 0,
    dataDir,
    quiet: true,
    startupTimeoutMs: 60_000,
  });
  return { server, client: new ChaosClient(server.port) };
}

export async function diskPhase(
  enabled: boolean,
  history: History,
): Promise<Record<string, unknown>> {
  if (!enabled) return { skipped: "CHAOS_DISK=0" };
  const mnt = fs.mkdtempSync(path.join(tmpdir(), "edgemq-chaos-disk-"));
  const mounted = spawnSync("mount", ["-t", "tmpfs", "-o", "size=64m", "tmpfs", mnt], {
    encoding: "utf8",
  });
  if (mounted.status !== 0) {
    fs.rmSync(mnt, { recursive: true, force: true });
    return {
      skipped: `mount -t tmpfs not permitted: ${(mounted.stderr || mounted.error?.message || "").trim().slice(0, 160)}`,
    };
  }
  const dataDir = path.join(mnt, "data");
  let disk: { server: LocalServer; client: ChaosClient } | undefined;
  try {
    disk = await diskServer(dataDir);
    await disk.client.must("PUT", "/v1/topics/disk", { queues: 2 });
    const body = "d".repeat(8000);
    const ackedIds: string[] = [];
    let i = 0;
    const send = async (): Promise<Answer | null> => {
      const msgId = `disk-${i++}`;
      try {
        const r = await disk!.client.call("POST", "/v1/topics/disk/messages", {
          messages: [{ body, msgId }],
        });
        if (r.status === 200) ackedIds.push(msgId);
        return r;
      } catch {
        return null;
      }
    };
    for (let k = 0; k < 20; k++) await send();
    // Fill the filesystem to within ~1 MiB.
    const filler = path.join(mnt, "filler");
    const st = fs.statfsSync(mnt);
    fs.writeFileSync(filler, Buffer.alloc(Math.max(0, st.bavail * st.bsize - 1024 * 1024)));
    const failures: Record<string, number> = {};
    let consecutive = 0;
    let sendsWhileFull = 0;
    while (consecutive < 10 && sendsWhileFull < 1000) {
      sendsWhileFull++;
      const r = await send();
      if (r?.status === 200) consecutive = 0;
      else {
        consecutive++;
        const code = r === null ? "network error" : `${r.status} ${r.body?.error?.code ?? "?"}`;
        failures[code] = (failures[code] ?? 0) + 1;
      }
    }
    const clear = Object.keys(failures).every((c) => c === "507 STORAGE_FULL");
    if (Object.keys(failures).length === 0) history.violate("disk: the filesystem never filled up");
    if (!clear)
      history.violate(
        `disk: sends on a full disk failed with ${JSON.stringify(failures)}, not only 507 STORAGE_FULL`,
      );
    // Free the space: the broker recovers by itself.
    fs.rmSync(filler);
    const freedAt = Date.now();
    let recoveryMs: number | null = null;
    for (let k = 0; k < 200 && recoveryMs === null; k++) {
      if ((await send())?.status === 200) recoveryMs = Date.now() - freedAt;
      else await sleep(50);
    }
    if (recoveryMs === null) history.violate("disk: sends still fail after the space was freed");
    // Everything acknowledged is there, once, after a crash.
    await disk.server.stop("SIGKILL");
    disk.client.close();
    disk = await diskServer(dataDir);
    const found = new Map<string, number>();
    for (let q = 0; q < 2; q++) {
      const b = await disk.client.must(
        "GET",
        `/v1/topics/disk/queues/${q}/messages?offset=0&max=1000`,
      );
      for (const m of b.messages as any[]) found.set(m.msgId, (found.get(m.msgId) ?? 0) + 1);
    }
    const lost = ackedIds.filter((id) => !found.has(id)).length;
    const twice = [...found.values()].filter((c) => c > 1).length;
    if (lost) history.violate(`disk: ${lost} acknowledged messages lost`);
    if (twice) history.violate(`disk: ${twice} messages stored twice`);
    return {
      acked: ackedIds.length,
      sendsWhileFull,
      failures,
      recoveryMs,
      lost,
      storedTwice: twice,
    };
  } finally {
    await disk?.server.stop("SIGKILL");
    disk?.client.close();
    spawnSync("umount", [mnt]);
    fs.rmSync(mnt, { recursive: true, force: true });
  }
}
