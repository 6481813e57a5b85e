import { describe, expect, it } from "vitest";
import { consoleScript } from "../../src/console/script.ts";

describe("the console script", () => {
  it("is valid JavaScript (it ships without a build step)", () => {
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
