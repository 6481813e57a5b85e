/** The console's stylesheet, served as `/console/app.css` (the CSP allows no inline styles). */
export const consoleStyle = `
:root {
  --fg: #1d2330; --muted: #667085; --line: #e4e7ec; --bg: #f6f7f9; --card: #fff;
  --accent: #2f5bd3; --accent-soft: #e8eefc; --bad: #b42318; --bad-soft: #fef3f2; --good: #067647;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg);
}
* { box-sizing: border-box; }
[hidden] { display: none !important; }
body { margin: 0; }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
code, pre, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
header.top { display: flex; align-items: center; gap: 20px; padding: 10px 24px; background: #141a26; color: #d0d5dd; }
header.top .brand { color: #fff; font-weight: 700; font-size: 16px; letter-spacing: .3px; }
header.top nav { display: flex; gap: 4px; }
header.top nav a { color: #d0d5dd; padding: 5px 10px; border-radius: 6px; }
header.top nav a.active, header.top nav a:hover { background: #2a3347; color: #fff; text-decoration: none; }
header.top .status { margin-left: auto; font-size: 12px; color: #98a2b3; }
header.top .status.bad { color: #fda29b; }
main { padding: 20px 24px 48px; max-width: 1280px; margin: 0 auto; }
h1 { font-size: 20px; margin: 0 0 14px; }
h2 { font-size: 15px; margin: 0 0 10px; }
h3 { font-size: 14px; margin: 14px 0 8px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 16px 18px; margin-bottom: 16px; }
.login { max-width: 440px; margin: 60px auto; }
.cols { display: grid; grid-template-columns: repeat(auto-fit, minmax(380px, 1fr)); gap: 16px; margin-bottom: 16px; }
.cols > .card { margin-bottom: 0; }
.stats { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 12px; margin-bottom: 16px; }
.stat { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 12px 14px; }
.stat .label { color: var(--muted); font-size: 12px; }
.stat .value { font-size: 22px; font-weight: 650; font-variant-numeric: tabular-nums; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { color: var(--muted); font-weight: 600; font-size: 12px; white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.clickable { cursor: pointer; }
tr.clickable:hover td { background: var(--accent-soft); }
td.body { max-width: 420px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.empty { color: var(--muted); padding: 10px 0; }
form { display: flex; flex-wrap: wrap; gap: 10px 14px; align-items: flex-end; }
form.stack { flex-direction: column; align-items: stretch; }
label { display: flex; flex-direction: column; gap: 3px; font-size: 12px; color: var(--muted); }
label.inline { flex-direction: row; align-items: center; gap: 6px; color: var(--fg); font-size: 13px; }
input, select, textarea { font: inherit; color: var(--fg); padding: 6px 8px; border: 1px solid #d0d5dd; border-radius: 6px; background: #fff; min-width: 0; }
input[type=number] { width: 110px; }
textarea { width: 100%; min-height: 64px; resize: vertical; }
button { font: inherit; padding: 6px 14px; border-radius: 6px; border: 1px solid var(--accent); background: var(--accent); color: #fff; cursor: pointer; }
button:disabled { opacity: .5; cursor: default; }
button.secondary { background: #fff; color: var(--accent); }
button.danger { background: #fff; color: var(--bad); border-color: #fda29b; }
button.quiet { background: transparent; border-color: #475467; color: #d0d5dd; padding: 3px 10px; }
.actions { display: flex; gap: 8px; flex-wrap: wrap; }
.result { margin: 10px 0 0; }
.result:empty { display: none; }
.error { color: var(--bad); }
.ok { color: var(--good); }
.muted { color: var(--muted); }
.pill { display: inline-block; padding: 1px 8px; border-radius: 10px; background: var(--accent-soft); color: var(--accent); font-size: 12px; }
.pill.bad { background: var(--bad-soft); color: var(--bad); }
dl.kv { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 0; }
dl.kv dt { color: var(--muted); }
dl.kv dd { margin: 0; }
pre.detail { background: #f2f4f7; padding: 10px; border-radius: 6px; overflow: auto; max-height: 320px; }
svg.chart { display: block; }
svg.chart .bar { fill: var(--accent); }
svg.chart .line { fill: none; stroke: var(--accent); stroke-width: 1.5; }
svg.chart .area { fill: var(--accent-soft); }
svg.chart .axis { stroke: var(--line); }
.chart-row { display: flex; gap: 24px; align-items: flex-end; flex-wrap: wrap; margin: 6px 0 10px; }
.chart-row .caption { font-size: 11px; color: var(--muted); }
.topbar { display: flex; align-items: baseline; gap: 12px; margin-bottom: 12px; }
.topbar h1 { margin: 0; }
`;
