import { describe, expect, it } from "vitest";
// The script as served: bundled from src/console/app/ by the globalSetup (scripts/build-console.ts).
import { consoleScript } from "../../src/console/app-bundle.gen.ts";

describe("the console script", () => {
  it("is valid JavaScript as bundled", () => {
    expect(() => new Function(consoleScript)).not.toThrow();
  });

  it("never writes markup from data: no innerHTML, outerHTML or document.write", () => {
    expect(consoleScript).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write/);
  });

  it("keeps the token in session storage, never local storage or cookies", () => {
    expect(consoleScript).toContain("sessionStorage");
    expect(consoleScript).not.toMatch(/localStorage|document\.cookie/);
  });
});
