/** Small inline SVG charts (styled by app.css, so the CSP needs no inline style). */
import { h } from "./dom.ts";
import { num } from "./format.ts";

/** One bar per value, labelled below when there are at most 16. */
export function barChart(
  values: readonly number[],
  labels: readonly string[],
  title: string,
): SVGSVGElement {
  const w = Math.max(120, Math.min(360, values.length * 26));
  const ht = 64;
  const max = Math.max(...values, 1);
  const bw = w / Math.max(values.length, 1);
  const svg = h("svg:svg", {
    class: "chart",
    width: w,
    height: ht + 14,
    viewBox: `0 0 ${w} ${ht + 14}`,
    role: "img",
    "aria-label": title,
  });
  svg.append(h("svg:line", { class: "axis", x1: 0, y1: ht + 0.5, x2: w, y2: ht + 0.5 }));
  values.forEach((v, i) => {
    const bh = v > 0 ? Math.max(2, (v / max) * (ht - 4)) : 0;
    svg.append(
      h(
        "svg:rect",
        { class: "bar", x: i * bw + 2, y: ht - bh, width: Math.max(1, bw - 4), height: bh },
        h("svg:title", null, `${labels[i]}: ${num(v)}`),
      ),
    );
    if (values.length <= 16) {
      svg.append(
        h(
          "svg:text",
          {
            x: i * bw + bw / 2,
            y: ht + 12,
            "text-anchor": "middle",
            "font-size": 9,
            fill: "#667085",
          },
          labels[i],
        ),
      );
    }
  });
  return svg;
}

/** A line over an area, scaled to the largest point (at least 1). */
export function sparkline(points: readonly number[], title: string): SVGSVGElement {
  const w = 240;
  const ht = 64;
  const svg = h("svg:svg", {
    class: "chart",
    width: w,
    height: ht,
    viewBox: `0 0 ${w} ${ht}`,
    role: "img",
    "aria-label": title,
  });
  svg.append(h("svg:line", { class: "axis", x1: 0, y1: ht - 0.5, x2: w, y2: ht - 0.5 }));
  if (points.length < 2) return svg;
  const max = Math.max(...points, 1);
  const step = w / (points.length - 1);
  const xy = points.map(
    (v, i) => `${(i * step).toFixed(1)},${(ht - 2 - (v / max) * (ht - 6)).toFixed(1)}`,
  );
  svg.append(h("svg:polygon", { class: "area", points: `0,${ht} ${xy.join(" ")} ${w},${ht}` }));
  svg.append(
    h(
      "svg:polyline",
      { class: "line", points: xy.join(" ") },
      h("svg:title", null, `${title}: now ${num(points.at(-1))}`),
    ),
  );
  return svg;
}
