/**
 * The example page's script (bundled to /app.js by serve.ts): a Producer
 * with the IndexedDB outbox and a scoped token, showing the outbox's pending
 * count and events.
 *
 * The page never holds the admin token. Its backend (serve.ts) mints a token
 * that may only publish to one topic, at `/config`; the producer asks for a
 * fresh one when it nears expiry.
 */
import { type EdgemqEvent, Producer } from "../../client/index.ts";

interface PageConfig {
  endpoint: string;
  topic: string;
  /** Scoped token, or "" when the broker runs open (no secrets set). */
  token: string;
  /** When the token expires (Unix ms), or null. */
  expiresAt: number | null;
}

const $ = (id: string) => document.getElementById(id)!;

async function loadConfig(): Promise<PageConfig> {
  const res = await fetch("/config");
  if (!res.ok) throw new Error(`/config answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as PageConfig;
}

function log(text: string, kind = ""): void {
  const li = document.createElement("li");
  li.textContent = `${new Date().toLocaleTimeString()} ${text}`;
  if (kind) li.className = kind;
  $("log").prepend(li);
  while ($("log").childElementCount > 200) $("log").lastElementChild?.remove();
}

let config = await loadConfig();
$("endpoint").textContent = config.endpoint;
$("topic").textContent = config.topic;
$("scope").textContent = config.token ? `publish to ${config.topic} only` : "none (open broker)";

const producer = new Producer({
  endpoint: config.endpoint,
  // Called before each request: refresh the token a minute before it expires.
  token: async () => {
    if (config.expiresAt !== null && config.expiresAt - Date.now() < 60_000) {
      config = await loadConfig();
    }
    return config.token;
  },
  outbox: true,
});
const outbox = producer.outbox!;

async function showPending(): Promise<void> {
  $("pending").textContent = String(await outbox.pending());
}
function showNetwork(): void {
  $("network").textContent = navigator.onLine ? "online" : "offline";
}

outbox.addEventListener("queued", (e) => {
  const d = (e as EdgemqEvent<{ msgId: string }>).detail;
  log(`stored in IndexedDB: ${d.msgId}`);
  void showPending();
});
outbox.addEventListener("sent", (e) => {
  const d = (e as EdgemqEvent<{ msgId: string; result: { status: string; queue: number } }>).detail;
  log(`${d.result.status} by the broker (queue ${d.result.queue}): ${d.msgId}`, "sent");
  void showPending();
});
outbox.addEventListener("error", (e) => {
  const d = (e as EdgemqEvent<{ error: unknown; kept: boolean; msgId?: string }>).detail;
  const why = d.error instanceof Error ? d.error.message : String(d.error);
  log(`${d.kept ? "will retry" : "dropped"}${d.msgId ? ` ${d.msgId}` : ""}: ${why}`, "error");
  void showPending();
});
outbox.addEventListener("drained", (e) => {
  const d = (e as EdgemqEvent<{ sent: number; dropped: number }>).detail;
  log(`outbox empty: ${d.sent} sent, ${d.dropped} dropped`);
  void showPending();
});
addEventListener("online", showNetwork);
addEventListener("offline", showNetwork);
showNetwork();
await showPending();

async function send(body: string): Promise<void> {
  const key = ($("key") as HTMLInputElement).value.trim();
  try {
    const r = await producer.send({
      topic: config.topic,
      body,
      ...(key ? { shardingKey: key } : {}),
    });
    log(`send resolved "${r.status}": ${r.msgId}`);
  } catch (e) {
    log(`send failed: ${e instanceof Error ? e.message : String(e)}`, "error");
  }
}

$("send").addEventListener("submit", (e) => {
  e.preventDefault();
  void send(($("body") as HTMLInputElement).value);
});
$("send10").addEventListener("click", () => {
  const body = ($("body") as HTMLInputElement).value;
  for (let i = 0; i < 10; i++) void send(`${body} #${i}`);
});
$("drain").addEventListener("click", () => void outbox.drain());
