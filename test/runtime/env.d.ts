/** Types of the test runtime's `env` and `exports`: the main Worker's bindings and exports. */
import type { Env as WorkerEnv } from "../../src/env.ts";

declare global {
  namespace Cloudflare {
    interface Env extends WorkerEnv {
      /** The second Worker of service-binding.test.ts (test/fixtures/binding-worker/). */
      BINDING_WORKER: Service<import("../fixtures/binding-worker/worker.ts").default>;
    }
    interface GlobalProps {
      mainModule: typeof import("../../src/index.ts");
      durableNamespaces: "QueueShard" | "TopicRegistry" | "Scheduler";
    }
  }
}
