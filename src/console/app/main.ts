/**
 * The console's browser code, bundled by scripts/build-console.ts and served
 * as `/console/app.js`. No framework: pages build the DOM with `h()` (text
 * only, never innerHTML) and read the JSON API at `/v1/...` with the admin
 * token from sessionStorage; the live timer refreshes the page on screen.
 *
 * This module is the shell: sign-in and sign-out, routing on the location
 * hash (routes.ts), and the live refresh (live.ts).
 */
import { ApiError, api, clearToken, getToken, setToken, setUnauthorizedHandler } from "./api.ts";
import { $ } from "./dom.ts";
import { errText } from "./format.ts";
import { leavePage, setStatus, showPage, startLiveRefresh } from "./live.ts";
import { match } from "./routes.ts";

/** Shows the sign-in form, or the page the hash names. */
function route(): void {
  const signedIn = !!getToken();
  $("#login").hidden = signedIn;
  $("#nav").hidden = !signedIn;
  $("#logout").hidden = !signedIn;
  const view = $("#view");
  view.replaceChildren();
  leavePage();
  if (!signedIn) {
    setStatus("");
    $<HTMLInputElement>("#login-token").focus();
    return;
  }
  const { route, params } = match(location.hash || "#/");
  const refresh = route.page(view, ...params);
  for (const a of document.querySelectorAll("#nav a")) {
    a.classList.toggle("active", a.getAttribute("data-nav") === route.nav);
  }
  showPage(refresh);
}

function signOut(message: string): void {
  clearToken();
  leavePage();
  route();
  if (message) $("#login-error").textContent = message;
}

setUnauthorizedHandler(signOut);

$<HTMLFormElement>("#login-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const input = $<HTMLInputElement>("#login-token");
  const err = $("#login-error");
  err.textContent = "";
  setToken(input.value.trim());
  api("GET", "/v1/topics").then(
    () => {
      input.value = "";
      route();
    },
    (e: unknown) => {
      clearToken();
      err.textContent =
        e instanceof ApiError && e.status === 403
          ? "That token is not the admin token."
          : errText(e);
    },
  );
});
$("#logout").addEventListener("click", () => signOut(""));
window.addEventListener("hashchange", route);
startLiveRefresh();
route();
