/**
 * The console's HTML shell, rendered on the server with Hono's JSX. It holds
 * no data: the script (`/console/app.js`, bundled from app/) signs in with
 * the admin token and fills `#view` from the JSON API, so the page itself can
 * be public.
 */
import type { FC } from "hono/jsx";
import { NAV } from "./nav.ts";

/** The console's entry page. */
export const ConsolePage: FC<{ base: string }> = ({ base }) => (
  <html lang="en">
    <head>
      <meta charset="utf-8" />
      <meta name="viewport" content="width=device-width, initial-scale=1" />
      <meta name="referrer" content="no-referrer" />
      <title>edgemq console</title>
      {/* An empty icon, so the browser does not ask the API for /favicon.ico. */}
      <link rel="icon" href="data:," />
      <link rel="stylesheet" href={`${base}/app.css`} />
      <script type="module" src={`${base}/app.js`}></script>
    </head>
    <body>
      <header class="top">
        <a class="brand" href="#/">
          edgemq
        </a>
        <nav id="nav" hidden>
          {NAV.map((n) => (
            <a href={n.href} data-nav={n.id}>
              {n.label}
            </a>
          ))}
        </nav>
        <span id="status" class="status" role="status"></span>
        <button id="logout" type="button" class="quiet" hidden>
          Sign out
        </button>
      </header>
      <main>
        <section id="login" class="card login" hidden>
          <h1>Sign in</h1>
          <p>
            Enter the broker's admin token (<code>ADMIN_TOKEN</code>). It stays in this tab's
            session storage and is sent only to this origin's API.
          </p>
          <form id="login-form">
            <label>
              Admin token
              <input id="login-token" type="password" autocomplete="current-password" required />
            </label>
            <button type="submit">Sign in</button>
          </form>
          <p id="login-error" class="error" role="alert"></p>
        </section>
        <section id="view" aria-live="polite"></section>
        <noscript>The edgemq console needs JavaScript.</noscript>
      </main>
    </body>
  </html>
);
