import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";

async function get(path: string) {
  const res = await exports.default.fetch(new Request(`http://edgemq.test${path}`));
  return { status: res.status, headers: res.headers, text: await res.text() };
}

describe("the web console", () => {
  it("serves its HTML shell without a token, under a strict Content-Security-Policy", async () => {
    const r = await get("/console");
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toMatch(/^text\/html/);
    expect(r.text.startsWith("<!doctype html>")).toBe(true);
    expect(r.text).toContain('<script type="module" src="/console/app.js"></script>');
    const csp = r.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain("unsafe-inline");
    expect(r.headers.get("x-content-type-options")).toBe("nosniff");
  });

  it("answers the same page with a trailing slash", async () => {
    const r = await get("/console/");
    expect(r.status).toBe(200);
    expect(r.text).toContain("/console/app.js");
  });

  it("serves the script and stylesheet with their types and the same policy", async () => {
    const js = await get("/console/app.js");
    expect(js.status).toBe(200);
    expect(js.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    expect(js.headers.get("content-security-policy")).toContain("default-src 'none'");
    expect(js.text).toContain("sessionStorage");
    const css = await get("/console/app.css");
    expect(css.status).toBe(200);
    expect(css.headers.get("content-type")).toBe("text/css; charset=utf-8");
  });

  it("holds no data itself: the API behind it still needs the token", async () => {
    const r = await get("/v1/topics");
    expect(r.status).toBe(401);
  });

  it("answers an unknown console path with the contract's 404", async () => {
    const r = await get("/console/nope.js");
    expect(r.status).toBe(404);
    expect(JSON.parse(r.text).error.code).toBe("NOT_FOUND");
  });
});
