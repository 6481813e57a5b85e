/**
 * Types of the test runtime's `env`: wrangler.toml's bindings come from the
 * generated worker-configuration.d.ts (which also types `exports` through
 * `Cloudflare.GlobalProps`); the tests' config adds secrets and a second Worker.
 */
import type { UndeclaredBindings } from "../../src/env.ts";

declare global {
  namespace Cloudflare {
    interface Env extends UndeclaredBindings {
      /** The second Worker of service-binding.test.ts (test/fixtures/binding-worker/). */
      BINDING_WORKER: Service<import("../fixtures/binding-worker/worker.ts").default>;
    }
  }
}

declare module "vitest" {
  export interface ProvidedContext {
    /** Base URL of the push endpoint test/fixtures/push-endpoint/global-setup.ts runs on 127.0.0.1. */
    pushEndpoint: string;
  }
}
