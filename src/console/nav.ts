/**
 * The console's top navigation, shared by the HTML shell (page.tsx renders
 * it) and the browser code (its router marks the current entry by `id`).
 */
export const NAV = [
  { id: "overview", href: "#/", label: "Overview" },
  { id: "groups", href: "#/groups", label: "Consumer groups" },
  { id: "push", href: "#/push", label: "Push" },
  { id: "schedules", href: "#/schedules", label: "Schedules" },
  { id: "transactions", href: "#/transactions", label: "Transactions" },
  { id: "tokens", href: "#/tokens", label: "Tokens" },
] as const;

/** A navigation entry's id (its `data-nav` attribute). */
export type NavId = (typeof NAV)[number]["id"];
