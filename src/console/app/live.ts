/**
 * Live refresh: the page on screen re-reads its data every 2 s (not while the
 * tab is hidden) and right after every action. One refresh runs at a time,
 * and a refresh that finishes after the user navigated away draws nothing:
 * each page shown gets a new generation, and `alive()` compares it.
 */
import { $ } from "./dom.ts";
import { errText, time } from "./format.ts";

/**
 * Re-reads a page's data and redraws what changed. Call `alive()` after each
 * await, before touching the DOM: it is false once another page is shown.
 */
export type Refresh = (alive: () => boolean) => Promise<void>;

const REFRESH_MS = 2000;

let current: Refresh | null = null;
let generation = 0;
let busy = false;

/** The header's status line; `bad` shows it as an error. */
export function setStatus(text: string, bad = false): void {
  const el = $("#status");
  el.textContent = text;
  el.className = `status${bad ? " bad" : ""}`;
}

/** Forgets the page on screen: a refresh still running draws nothing. */
export function leavePage(): void {
  generation++;
  current = null;
}

/** Makes `refresh` the live page's and runs it now (null: a page with nothing to refresh). */
export function showPage(refresh: Refresh | null): void {
  leavePage();
  current = refresh;
  busy = false;
  if (refresh) refreshNow();
  else setStatus("");
}

/**
 * Runs the live page's refresh unless one is running. Without `force` (the
 * timer), skipped while the tab is hidden.
 */
export function refreshNow(force = true): void {
  const refresh = current;
  if (!refresh || busy || (!force && document.hidden)) return;
  const id = generation;
  const alive = () => id === generation;
  busy = true;
  void Promise.resolve()
    .then(() => refresh(alive))
    .then(
      () => {
        if (alive()) setStatus(`live · updated ${time(Date.now()).slice(11)}`);
      },
      (e: unknown) => {
        if (alive()) setStatus(errText(e), true);
      },
    )
    .then(() => {
      busy = false;
    });
}

/** Starts the 2 s timer, and refreshes at once when the tab is shown again. */
export function startLiveRefresh(): void {
  setInterval(() => refreshNow(false), REFRESH_MS);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) refreshNow();
  });
}
