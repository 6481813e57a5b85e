/**
 * Serves the browser-producer example on http://127.0.0.1:$PORT (default
 * 8080), against an edgemq server at $EDGEMQ_URL (default
 * http://127.0.0.1:8787, i.e. `npm start`).
 *
 * It plays the web app's backend: it holds ADMIN_TOKEN (when the broker has
 * one), makes sure the topic $TOPIC (default `clicks`) exists, and at
 * `/config` hands the page a token that may only publish to that topic
 * (`POST /v1/tokens`). The browser never sees the admin token.
 *
 *   ADMIN_TOKEN=dev-admin TOKEN_SECRET=dev-secret CORS_ORIGINS=http://127.0.0.1:8080 npm start
 *   ADMIN_TOKEN=dev-admin node examples/browser-producer/serve.ts
 */
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { startPageServer } from "../../scripts/page-server.ts";

const endpoint = (process.env.EDGEMQ_URL || "http://127.0.0.1:8787").replace(/\/+$/, "");
const adminToken = process.env.ADMIN_TOKEN || undefined;
const topic = process.env.TOPIC || "clicks";
const port = Number(process.env.PORT || "8080");
const TOKEN_TTL_SECONDS = 3600;

async function admin(method: string, urlPath: string, body?: unknown): Promise<Response> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (adminToken) headers.authorization = `Bearer ${adminToken}`;
  return fetch(endpoint + urlPath, {
    method,
    headers,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

async function ensureTopic(): Promise<void> {
  const got = await admin("GET", `/v1/topics/${topic}`);
  if (got.ok) return;
  if (got.status !== 404) throw new Error(`GET topic: ${got.status} ${await got.text()}`);
  const put = await admin("PUT", `/v1/topics/${topic}`, { queues: 2 });
  if (!put.ok) throw new Error(`create topic: ${put.status} ${await put.text()}`);
  console.log(`created topic ${topic}`);
}

/** A token that may only publish to the topic; none when the broker runs open. */
async function scopedToken(): Promise<{ token: string; expiresAt: number | null }> {
  if (!adminToken) return { token: "", expiresAt: null };
  const res = await admin("POST", "/v1/tokens", {
    sub: "browser-example",
    publish: [topic],
    ttlSeconds: TOKEN_TTL_SECONDS,
  });
  if (!res.ok) throw new Error(`POST /v1/tokens: ${res.status} ${await res.text()}`);
  const { token, exp } = (await res.json()) as { token: string; exp: number };
  return { token, expiresAt: exp * 1000 };
}

try {
  await ensureTopic();
} catch (e) {
  console.error(`edgemq at ${endpoint} is not usable: ${e instanceof Error ? e.message : e}`);
  console.error(
    "start it with: ADMIN_TOKEN=dev-admin TOKEN_SECRET=dev-secret CORS_ORIGINS=http://127.0.0.1:8080 npm start",
  );
  process.exit(1);
}

const page = await startPageServer({
  entry: "examples/browser-producer/main.ts",
  html: readFileSync(path.join(import.meta.dirname, "index.html"), "utf8"),
  port,
  routes: {
    "/config": async (_req, res) => {
      const body = JSON.stringify({ endpoint, topic, ...(await scopedToken()) });
      res.writeHead(200, { "content-type": "application/json" }).end(body);
    },
  },
});
console.log(`browser-producer example on ${page.url}/ (broker ${endpoint}, topic ${topic})`);
console.log(`the broker must allow this origin: CORS_ORIGINS=${page.url}`);
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => void page.close().then(() => process.exit(0)));
}
