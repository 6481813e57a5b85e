/** What every part of a chaos run shares: its settings, client, server, record and generators. */
import type { ChaosClient } from "./client.ts";
import type { ChaosConfig, Randoms } from "./config.ts";
import type { History } from "./history.ts";
import type { ChaosServer } from "./server.ts";

export interface ChaosRun {
  config: ChaosConfig;
  client: ChaosClient;
  server: ChaosServer;
  history: History;
  rand: Randoms;
  /**
   * Producers finish the message in hand once `producing` is cleared;
   * consumers stop once `consuming` is (after the drain).
   */
  running: { producing: boolean; consuming: boolean };
}
