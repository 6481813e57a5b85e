/**
 * Which page a location hash shows. To add a page: write its module in
 * pages/ (a function that builds the page into `view` and returns its
 * refresh), add a line here, and, for a top-level page, an entry in
 * ../nav.ts.
 */
import type { NavId } from "../nav.ts";
import type { Refresh } from "./live.ts";
import { groupPage } from "./pages/group.ts";
import { groupsPage } from "./pages/groups.ts";
import { overviewPage } from "./pages/overview.ts";
import { pushSubscriptionPage } from "./pages/push-subscription.ts";
import { pushPage } from "./pages/push.ts";
import { schedulesPage } from "./pages/schedules.ts";
import { tokensPage } from "./pages/tokens.ts";
import { topicPage } from "./pages/topic.ts";
import { transactionsPage } from "./pages/transactions.ts";

/**
 * Builds a page into `view` (forms once, so a refresh never clobbers what is
 * being typed) and returns its refresh, or null when it has nothing to
 * refresh. `params` are the route's captures, URI-decoded.
 */
export type Page = (view: HTMLElement, ...params: string[]) => Refresh | null;

export interface Route {
  /** Matched against the whole hash; its captures are the page's params. */
  hash: RegExp;
  /** The navigation entry it highlights. */
  nav: NavId;
  page: Page;
}

export const ROUTES: readonly Route[] = [
  { hash: /^#\/topics\/([^/]+)$/, nav: "overview", page: topicPage },
  { hash: /^#\/groups$/, nav: "groups", page: groupsPage },
  { hash: /^#\/groups\/([^/]+)$/, nav: "groups", page: groupPage },
  { hash: /^#\/push$/, nav: "push", page: pushPage },
  { hash: /^#\/push\/([^/]+)$/, nav: "push", page: pushSubscriptionPage },
  { hash: /^#\/schedules$/, nav: "schedules", page: schedulesPage },
  { hash: /^#\/transactions$/, nav: "transactions", page: transactionsPage },
  { hash: /^#\/tokens$/, nav: "tokens", page: tokensPage },
];

/** Any other hash (`#/`, none, or unknown) shows the overview. */
export const FALLBACK: Route = { hash: /^/, nav: "overview", page: overviewPage };

/** The route for `hash` and its decoded params. */
export function match(hash: string): { route: Route; params: string[] } {
  for (const route of ROUTES) {
    const m = route.hash.exec(hash);
    if (m) return { route, params: m.slice(1).map((p) => decodeURIComponent(p)) };
  }
  return { route: FALLBACK, params: [] };
}
