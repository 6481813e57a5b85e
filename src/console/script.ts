/**
 * The console's browser script, served as `/console/app.js`. Plain ES2020,
 * no build step and no framework: it builds the DOM with a small `h()`
 * helper (text only, never innerHTML, so message bodies cannot inject markup)
 * and calls the JSON API at `/v1/...` with the admin token from
 * sessionStorage. Every page has a `refresh()` the 2 s timer calls; forms are
 * built once per page so a refresh never clobbers what is being typed.
 *
 * Kept as a string: the Worker's TypeScript has no DOM types, and the file is
 * served as is. test/unit/console-script.test.ts checks that it parses;
 * test/node/console.test.ts drives it in Chromium.
 */
export const consoleScript = String.raw`"use strict";
(function () {
  var TOKEN_KEY = "edgemq.token";
  var REFRESH_MS = 2000;
  var POLICIES = ["reject", "drop-oldest", "drop-newest", "drop-lowest-priority", "drop-earliest-deadline"];

  // ---- DOM helpers ---------------------------------------------------------

  var SVG_NS = "http://www.w3.org/2000/svg";
  var PROPS = { value: 1, checked: 1, disabled: 1, hidden: 1, selected: 1, required: 1, readOnly: 1, type: 1 };

  function h(tag, attrs) {
    var svg = tag.indexOf("svg:") === 0;
    var el = svg ? document.createElementNS(SVG_NS, tag.slice(4)) : document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        var v = attrs[k];
        if (v === null || v === undefined || v === false) return;
        if (k.indexOf("on") === 0) el.addEventListener(k.slice(2), v);
        else if (PROPS[k] && !svg) el[k] = v;
        else el.setAttribute(k, v === true ? "" : String(v));
      });
    }
    add(el, Array.prototype.slice.call(arguments, 2));
    return el;
  }
  /** Appends children: add(el, [a, b]) or add(el, a, b); nested arrays flatten, null/false skip. */
  function add(el, children) {
    if (arguments.length !== 2 || !Array.isArray(children)) children = Array.prototype.slice.call(arguments, 1);
    children.forEach(function (c) {
      if (c === null || c === undefined || c === false) return;
      if (Array.isArray(c)) add(el, c);
      else el.append(c instanceof Node ? c : String(c));
    });
    return el;
  }
  function $(sel, root) { return (root || document).querySelector(sel); }
  function fill(el) { el.replaceChildren(); return add(el, Array.prototype.slice.call(arguments, 1)); }

  // ---- formatting ----------------------------------------------------------

  function num(n) { return n === null || n === undefined ? "—" : Number(n).toLocaleString("en-US"); }
  function rate(r) { return r === null || r === undefined ? "—" : r < 10 ? r.toFixed(1) : Math.round(r).toLocaleString("en-US"); }
  function bytes(n) {
    if (n === null || n === undefined) return "—";
    var units = ["B", "KiB", "MiB", "GiB", "TiB"];
    var i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i === 0 ? String(n) : n.toFixed(1)) + " " + units[i];
  }
  function pad(n) { return n < 10 ? "0" + n : String(n); }
  function time(ms) {
    if (ms === null || ms === undefined) return "—";
    var d = new Date(ms);
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " +
      pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
  }
  /** A span in at most two units: "45 s", "1 min 30 s", "2 h", "3 d". */
  function duration(ms) {
    if (ms === null || ms === undefined) return "—";
    if (ms < 1000) return Math.round(ms) + " ms";
    var left = Math.round(ms / 1000), parts = [];
    [[86400, "d"], [3600, "h"], [60, "min"], [1, "s"]].forEach(function (u) {
      if (parts.length < 2 && left >= u[0]) { parts.push(Math.floor(left / u[0]) + " " + u[1]); left %= u[0]; }
      else if (parts.length) parts.push(null);
    });
    return parts.filter(Boolean).slice(0, 2).join(" ");
  }
  /** A value for <input type=datetime-local> (local time, seconds). */
  function localInput(ms) {
    var d = new Date(ms);
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + "T" +
      pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
  }
  /** Parses a datetime-local value as local time; NaN when empty or bad. */
  function fromLocalInput(v) { return v ? new Date(v).getTime() : NaN; }
  /** "10s", "1m", "2h", "500ms", "1d" or plain milliseconds. */
  function parseDuration(text) {
    var m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h|d)?\s*$/.exec(text);
    if (!m) throw new Error("bad duration: " + text);
    var mult = { ms: 1, s: 1000, m: 60000, min: 60000, h: 3600000, d: 86400000 }[m[2] || "ms"];
    return Math.round(Number(m[1]) * mult);
  }
  function list(text) { return text.split(",").map(function (s) { return s.trim(); }).filter(Boolean); }
  function preview(m) {
    if (m.encoding === "base64") return "[base64, " + bytes(Math.floor(m.body.length * 3 / 4)) + "]";
    return m.body.length > 160 ? m.body.slice(0, 160) + "…" : m.body;
  }
  function errText(e) { return e && e.code ? e.code + ": " + e.message : String(e && e.message || e); }

  // ---- API -----------------------------------------------------------------

  function ApiError(status, code, message) { this.status = status; this.code = code; this.message = message; }
  ApiError.prototype = Object.create(Error.prototype);

  function api(method, path, body) {
    var headers = { accept: "application/json" };
    var token = sessionStorage.getItem(TOKEN_KEY);
    if (token) headers.authorization = "Bearer " + token;
    var init = { method: method, headers: headers, cache: "no-store" };
    if (body !== undefined) { headers["content-type"] = "application/json"; init.body = JSON.stringify(body); }
    return fetch(path, init).then(function (res) {
      return res.text().then(function (text) {
        var data;
        try { data = text ? JSON.parse(text) : undefined; } catch (_) { data = undefined; }
        if (!res.ok) {
          var err = data && data.error;
          var e = new ApiError(res.status, err ? err.code : "HTTP_" + res.status, err ? err.message : "HTTP " + res.status);
          if (res.status === 401) signOut("The broker refused the token (" + e.message + ").");
          throw e;
        }
        return data;
      });
    }, function (e) {
      throw new ApiError(0, "UNAVAILABLE", "the broker did not answer (" + e.message + ")");
    });
  }
  var enc = encodeURIComponent;

  // ---- rates: counters between refreshes -----------------------------------

  var lastCounts = new Map();
  /** msgs/s in and out for a key, from sent/delivered counters since the previous call. */
  function rates(key, sent, delivered) {
    var now = performance.now();
    var prev = lastCounts.get(key);
    lastCounts.set(key, { t: now, sent: sent, delivered: delivered });
    if (!prev || now - prev.t < 200) return prev && prev.rates ? prev.rates : { in: null, out: null };
    var dt = (now - prev.t) / 1000;
    var r = { in: Math.max(0, (sent - prev.sent) / dt), out: Math.max(0, (delivered - prev.delivered) / dt) };
    lastCounts.get(key).rates = r;
    return r;
  }
  function sum(arr, f) { return arr.reduce(function (s, x) { return s + (Number(f(x)) || 0); }, 0); }

  // ---- charts (inline SVG) -------------------------------------------------

  function barChart(values, labels, title) {
    var w = Math.max(120, Math.min(360, values.length * 26)), ht = 64, max = Math.max.apply(null, values.concat([1]));
    var bw = w / Math.max(values.length, 1);
    var svg = h("svg:svg", { class: "chart", width: w, height: ht + 14, viewBox: "0 0 " + w + " " + (ht + 14), role: "img", "aria-label": title });
    svg.append(h("svg:line", { class: "axis", x1: 0, y1: ht + 0.5, x2: w, y2: ht + 0.5 }));
    values.forEach(function (v, i) {
      var bh = v > 0 ? Math.max(2, (v / max) * (ht - 4)) : 0;
      svg.append(h("svg:rect", { class: "bar", x: i * bw + 2, y: ht - bh, width: Math.max(1, bw - 4), height: bh },
        h("svg:title", null, labels[i] + ": " + num(v))));
      if (values.length <= 16) {
        svg.append(h("svg:text", { x: i * bw + bw / 2, y: ht + 12, "text-anchor": "middle", "font-size": 9, fill: "#667085" }, labels[i]));
      }
    });
    return svg;
  }
  function sparkline(points, title) {
    var w = 240, ht = 64;
    var svg = h("svg:svg", { class: "chart", width: w, height: ht, viewBox: "0 0 " + w + " " + ht, role: "img", "aria-label": title });
    svg.append(h("svg:line", { class: "axis", x1: 0, y1: ht - 0.5, x2: w, y2: ht - 0.5 }));
    if (points.length < 2) return svg;
    var max = Math.max.apply(null, points.concat([1]));
    var step = w / (points.length - 1);
    var xy = points.map(function (v, i) { return (i * step).toFixed(1) + "," + (ht - 2 - (v / max) * (ht - 6)).toFixed(1); });
    svg.append(h("svg:polygon", { class: "area", points: "0," + ht + " " + xy.join(" ") + " " + w + "," + ht }));
    svg.append(h("svg:polyline", { class: "line", points: xy.join(" ") }, h("svg:title", null, title + ": now " + num(points[points.length - 1]))));
    return svg;
  }
  var lagHistory = new Map();
  function pushHistory(key, v) {
    var arr = lagHistory.get(key) || [];
    arr.push(v);
    if (arr.length > 90) arr.shift();
    lagHistory.set(key, arr);
    return arr;
  }

  // ---- building blocks -----------------------------------------------------

  function table(columns, rows, empty) {
    if (!rows.length) return h("p", { class: "empty" }, empty || "Nothing here yet.");
    return h("table", null,
      h("thead", null, h("tr", null, columns.map(function (c) { return h("th", { class: c.num ? "num" : null }, c.label); }))),
      h("tbody", null, rows.map(function (r) {
        var tr = h("tr", { class: r.onclick ? "clickable" : null, onclick: r.onclick || null },
          columns.map(function (c) {
            return h("td", { class: c.num ? "num" : c.cls || null, title: c.title ? c.title(r.data) : null }, c.get(r.data));
          }));
        if (r.id) tr.setAttribute("data-id", r.id);
        return tr;
      })));
  }
  function rowsOf(items, onclick, id) {
    return items.map(function (d) { return { data: d, onclick: onclick ? function () { onclick(d); } : null, id: id ? id(d) : null }; });
  }
  function field(label, input) { return h("label", null, label, input); }
  function card(title) { return h("div", { class: "card" }, title ? h("h2", null, title) : null, Array.prototype.slice.call(arguments, 1)); }
  function stat(label, id) { return h("div", { class: "stat" }, h("div", { class: "label" }, label), h("div", { class: "value", id: id }, "—")); }
  function setText(id, text) { var el = document.getElementById(id); if (el) el.textContent = text; }
  function show(el, ok, text) { el.className = "result " + (ok ? "ok" : "error"); el.textContent = text; }

  /** Runs an action from a form: disables the button, shows success or the API error. */
  function act(form, out, fn) {
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var btn = form.querySelector("button[type=submit]");
      if (btn) btn.disabled = true;
      out.className = "result muted";
      out.textContent = "…";
      Promise.resolve().then(fn).then(function (text) {
        if (text !== undefined) show(out, true, text);
        else { out.textContent = ""; out.className = "result"; }
      }, function (e) { show(out, false, errText(e)); }).then(function () {
        if (btn) btn.disabled = false;
        tick(true);
      });
    });
    return form;
  }
  function button(text, cls, onclick) { return h("button", { type: "button", class: cls, onclick: onclick }, text); }
  function policySelect(id, value) {
    return h("select", { id: id }, POLICIES.map(function (p) { return h("option", { value: p, selected: p === value }, p); }));
  }
  function optNum(v) { return v === "" ? undefined : Number(v); }

  function topicConfigForm(prefix, initial, submitLabel, onsubmit) {
    var c = initial || {};
    var out = h("p", { class: "result" });
    var form = h("form", { id: prefix + "-form" },
      initial ? null : field("Name", h("input", { id: prefix + "-name", required: true, pattern: "[A-Za-z0-9_\\-]{1,127}", placeholder: "orders" })),
      field("Queues", h("input", { id: prefix + "-queues", type: "number", min: initial ? c.queues : 1, max: 256, value: c.queues || 4 })),
      field("Retention (hours)", h("input", { id: prefix + "-retention", type: "number", min: 0.001, step: "any", value: (c.retentionMs || 259200000) / 3600000 })),
      field("Max message bytes", h("input", { id: prefix + "-maxbytes", type: "number", min: 1, value: c.maxMessageBytes || 1048576 })),
      field("Max backlog msgs/queue", h("input", { id: prefix + "-backlog", type: "number", min: 1, placeholder: "none", value: c.maxBacklogMessages == null ? "" : c.maxBacklogMessages })),
      field("Max backlog bytes/queue", h("input", { id: prefix + "-backlogbytes", type: "number", min: 1, placeholder: "none", value: c.maxBacklogBytes == null ? "" : c.maxBacklogBytes })),
      field("Overflow policy", policySelect(prefix + "-policy", c.overflowPolicy || "reject")),
      h("button", { type: "submit" }, submitLabel));
    act(form, out, function () {
      var v = function (s) { return $("#" + prefix + "-" + s, form).value; };
      var backlog = optNum(v("backlog")), backlogBytes = optNum(v("backlogbytes"));
      var body = {
        queues: Number(v("queues")),
        retentionMs: Math.round(Number(v("retention")) * 3600000),
        maxMessageBytes: Number(v("maxbytes")),
        maxBacklogMessages: backlog === undefined ? null : backlog,
        maxBacklogBytes: backlogBytes === undefined ? null : backlogBytes,
        overflowPolicy: v("policy"),
      };
      var name = initial ? c.topic : v("name").trim();
      return onsubmit(name, body);
    });
    return h("div", null, form, out);
  }

  // ---- pages ---------------------------------------------------------------

  function overviewPage(view) {
    var tbody = h("div", { id: "topics-table" }, h("p", { class: "empty" }, "Loading…"));
    add(view,
      h("div", { class: "topbar" }, h("h1", null, "Overview")),
      h("div", { class: "stats" },
        stat("Topics", "stat-topics"), stat("Consumer groups", "stat-groups"), stat("Backlog (messages)", "stat-backlog"),
        stat("Backlog (bytes)", "stat-bytes"), stat("In (msg/s)", "stat-in"), stat("Out (msg/s)", "stat-out")),
      card("Topics", tbody),
      card("Create a topic", topicConfigForm("new-topic", null, "Create topic", function (name, body) {
        return api("PUT", "/v1/topics/" + enc(name), body).then(function (t) {
          return "Created topic " + t.topic + " with " + t.queues + " queues.";
        });
      })));
    return function refresh(alive) {
      return Promise.all([api("GET", "/v1/topics"), api("GET", "/v1/groups")]).then(function (r) {
        var topics = r[0].topics, groups = r[1].groups;
        return Promise.all(topics.map(function (t) {
          return api("GET", "/v1/topics/" + enc(t.topic)).catch(function () { return Object.assign({ queueStats: [], groups: [] }, t); });
        })).then(function (details) {
          if (!alive()) return;
          var totIn = 0, totOut = 0, anyRate = false;
          var rows = details.map(function (d) {
            var q = d.queueStats || [];
            var rr = rates("topic:" + d.topic, sum(q, function (x) { return x.sent; }), sum(q, function (x) { return x.delivered; }));
            if (rr.in !== null) { anyRate = true; totIn += rr.in; totOut += rr.out; }
            return {
              topic: d.topic, queues: d.queues, messages: sum(q, function (x) { return x.messages; }),
              bytes: sum(q, function (x) { return x.bytes; }), scheduled: sum(q, function (x) { return x.scheduled; }),
              dropped: sum(q, function (x) { return x.dropped; }), in: rr.in, out: rr.out, groups: d.groups || [],
            };
          });
          setText("stat-topics", num(topics.length));
          setText("stat-groups", num(groups.length));
          setText("stat-backlog", num(sum(rows, function (x) { return x.messages; })));
          setText("stat-bytes", bytes(sum(rows, function (x) { return x.bytes; })));
          setText("stat-in", anyRate ? rate(totIn) : "—");
          setText("stat-out", anyRate ? rate(totOut) : "—");
          fill(tbody, table([
            { label: "Topic", get: function (t) { return h("a", { href: "#/topics/" + enc(t.topic) }, t.topic); } },
            { label: "Queues", num: true, get: function (t) { return num(t.queues); } },
            { label: "Backlog", num: true, get: function (t) { return num(t.messages); } },
            { label: "Size", num: true, get: function (t) { return bytes(t.bytes); } },
            { label: "In msg/s", num: true, get: function (t) { return rate(t.in); } },
            { label: "Out msg/s", num: true, get: function (t) { return rate(t.out); } },
            { label: "Scheduled", num: true, get: function (t) { return num(t.scheduled); } },
            { label: "Dropped", num: true, get: function (t) { return num(t.dropped); } },
            { label: "Groups", get: function (t) {
              return t.groups.map(function (g, i) { return [i ? ", " : "", h("a", { href: "#/groups/" + enc(g) }, g)]; });
            } },
          ], rowsOf(rows, null, function (t) { return t.topic; }), "No topics yet: create one below."));
        });
      });
    };
  }

  function topicPage(view, topic) {
    var config = null;
    var info = h("div", null, h("p", { class: "empty" }, "Loading…"));
    var queuesEl = h("div", { id: "queues-table" });
    var queueSelects = [];
    function queueSelect(id, withAuto) {
      var s = h("select", { id: id }, withAuto ? h("option", { value: "" }, "auto") : null);
      queueSelects.push({ el: s, auto: withAuto });
      return s;
    }
    function syncQueues(n) {
      queueSelects.forEach(function (q) {
        var have = q.el.options.length - (q.auto ? 1 : 0);
        for (var i = have; i < n; i++) q.el.append(h("option", { value: String(i) }, String(i)));
      });
    }

    // send
    var sendOut = h("p", { class: "result", id: "send-result" });
    var sendForm = h("form", { id: "send-form", class: "stack" },
      field("Body", h("textarea", { id: "send-body", required: true, placeholder: "{\"hello\": \"world\"}" })),
      h("div", { class: "actions" },
        field("Tag", h("input", { id: "send-tag", placeholder: "TagA" })),
        field("Keys (comma-separated)", h("input", { id: "send-keys", placeholder: "order-17" })),
        field("Properties (k=v, …)", h("input", { id: "send-props", placeholder: "region=eu" })),
        field("Sharding key", h("input", { id: "send-sharding", placeholder: "user-42" })),
        field("Queue", queueSelect("send-queue", true)),
        field("Delay", h("input", { id: "send-delay", placeholder: "e.g. 10s" })),
        h("button", { type: "submit" }, "Send")));
    act(sendForm, sendOut, function () {
      var m = { body: $("#send-body").value };
      var tag = $("#send-tag").value.trim(); if (tag) m.tag = tag;
      var keys = list($("#send-keys").value); if (keys.length) m.keys = keys;
      var props = list($("#send-props").value);
      if (props.length) {
        m.properties = {};
        props.forEach(function (p) {
          var i = p.indexOf("=");
          if (i < 1) throw new Error("properties are k=v pairs: " + p);
          m.properties[p.slice(0, i).trim()] = p.slice(i + 1).trim();
        });
      }
      var sk = $("#send-sharding").value.trim(); if (sk) m.shardingKey = sk;
      var delay = $("#send-delay").value.trim(); if (delay) m.delayMs = parseDuration(delay);
      var q = $("#send-queue").value;
      return api("POST", "/v1/topics/" + enc(topic) + "/messages" + (q ? "?queue=" + q : ""), { messages: [m] }).then(function (r) {
        var x = r.results[0];
        return x.status + ": " + x.msgId + " on queue " + x.queue + (x.offset === null ? "" : " at offset " + x.offset);
      });
    });

    // browse
    var browseOut = h("div", { id: "browse-result" });
    var browseMsg = h("p", { class: "result" });
    var browseNext = null;
    function pull(offset) {
      var q = $("#browse-queue").value;
      var qs = "?max=" + enc($("#browse-max").value || "20");
      if (offset !== "") qs += "&offset=" + enc(offset);
      var group = $("#browse-group").value.trim();
      if (group) qs += "&group=" + enc(group);
      else if (offset === "") qs += "&offset=0";
      var filter = $("#browse-filter").value.trim();
      if (filter) qs += "&filter=" + enc(filter);
      return api("GET", "/v1/topics/" + enc(topic) + "/queues/" + q + "/messages" + qs).then(function (r) {
        browseNext = r.nextOffset;
        $("#browse-next").disabled = r.nextOffset >= r.maxOffset;
        fill(browseOut, messageTable(r.messages, "No messages at this position."));
        return "Queue " + q + ": " + r.messages.length + " message(s); next offset " + r.nextOffset + " of " + r.maxOffset +
          (r.skipped ? " (" + r.skipped + " skipped: removed by retention)" : "") + ".";
      });
    }
    var browseForm = h("form", { id: "browse-form" },
      field("Queue", queueSelect("browse-queue", false)),
      field("Offset", h("input", { id: "browse-offset", type: "number", min: 0, placeholder: "first" })),
      field("Max", h("input", { id: "browse-max", type: "number", min: 1, max: 1000, value: 20 })),
      field("As group (committed offset)", h("input", { id: "browse-group", placeholder: "optional" })),
      field("Filter", h("input", { id: "browse-filter", placeholder: "* or TagA || TagB or sql:…" })),
      h("button", { type: "submit" }, "Pull"),
      h("button", { type: "button", id: "browse-next", class: "secondary", disabled: true, onclick: function () {
        if (browseNext === null) return;
        $("#browse-offset").value = browseNext;
        pull(String(browseNext)).then(function (t) { show(browseMsg, true, t); }, function (e) { show(browseMsg, false, errText(e)); });
      } }, "Next page →"));
    act(browseForm, browseMsg, function () { return pull($("#browse-offset").value); });

    // detail of a clicked message
    var detail = h("div", { id: "message-detail" });
    function showMessage(m) {
      fill(detail, h("h3", null, "Message " + m.msgId), h("pre", { class: "detail" }, JSON.stringify(m, null, 2)));
      detail.scrollIntoView({ block: "nearest" });
    }
    function messageTable(messages, empty) {
      return table([
        { label: "Queue", num: true, get: function (m) { return m.queue; } },
        { label: "Offset", num: true, get: function (m) { return m.offset; } },
        { label: "Msg ID", cls: "mono", get: function (m) { return m.msgId; } },
        { label: "Tag", get: function (m) { return m.tag || ""; } },
        { label: "Keys", get: function (m) { return (m.keys || []).join(", "); } },
        { label: "Stored", get: function (m) { return time(m.storedAt); } },
        { label: "Body", cls: "body", get: preview, title: function (m) { return m.encoding === "base64" ? "" : m.body.slice(0, 2000); } },
      ], rowsOf(messages, showMessage, function (m) { return m.msgId; }), empty);
    }

    // query
    var queryOut = h("div", { id: "query-result" });
    var queryMsg = h("p", { class: "result" });
    var now = Date.now();
    var queryForm = h("form", { id: "query-form" },
      field("By", h("select", { id: "query-by", onchange: syncQuery },
        h("option", { value: "id" }, "Message ID"), h("option", { value: "key" }, "Key"), h("option", { value: "time" }, "Store time"))),
      field("Message ID or key", h("input", { id: "query-text" })),
      field("From", h("input", { id: "query-from", type: "datetime-local", step: 1, value: localInput(now - 3600000) })),
      field("To", h("input", { id: "query-to", type: "datetime-local", step: 1, value: localInput(now + 60000) })),
      field("Limit", h("input", { id: "query-limit", type: "number", min: 1, max: 1000, value: 100 })),
      h("button", { type: "submit" }, "Query"));
    function syncQuery() {
      var by = $("#query-by", queryForm).value;
      $("#query-text", queryForm).parentNode.hidden = by === "time";
      $("#query-from", queryForm).parentNode.hidden = by !== "time";
      $("#query-to", queryForm).parentNode.hidden = by !== "time";
    }
    syncQuery();
    act(queryForm, queryMsg, function () {
      var by = $("#query-by").value, text = $("#query-text").value.trim(), limit = $("#query-limit").value || "100";
      var base = "/v1/topics/" + enc(topic) + "/messages";
      if (by === "id") {
        if (!text) throw new Error("enter a message ID");
        return api("GET", base + "/" + enc(text)).then(function (m) {
          var groups = Object.keys(m.groups || {});
          fill(queryOut, messageTable([m], ""), h("h3", null, "State per consumer group"),
            table([
              { label: "Group", get: function (g) { return h("a", { href: "#/groups/" + enc(g) }, g); } },
              { label: "State", get: function (g) { return h("span", { class: m.groups[g] === "dlq" ? "pill bad" : "pill" }, m.groups[g]); } },
            ], rowsOf(groups), "No consumer group has seen this topic."));
          return "Found " + m.msgId + " on queue " + m.queue + " at offset " + m.offset + ".";
        });
      }
      var qs;
      if (by === "key") {
        if (!text) throw new Error("enter a key");
        qs = "?key=" + enc(text) + "&limit=" + enc(limit);
      } else {
        var from = fromLocalInput($("#query-from").value), to = fromLocalInput($("#query-to").value);
        if (isNaN(from) || isNaN(to)) throw new Error("pick both times");
        qs = "?from=" + from + "&to=" + to + "&limit=" + enc(limit);
      }
      return api("GET", base + qs).then(function (r) {
        fill(queryOut, messageTable(r.messages, "No messages match."));
        return r.messages.length + " message(s).";
      });
    });

    var editEl = h("div");
    var danger = h("div", { class: "actions" },
      button("Purge all messages", "danger", function () {
        if (!confirm("Delete every stored message of " + topic + "? Config and group offsets stay.")) return;
        api("POST", "/v1/topics/" + enc(topic) + "/purge").then(function () { tick(true); }, function (e) { alert(errText(e)); });
      }),
      button("Delete topic", "danger", function () {
        if (!confirm("Delete topic " + topic + " and all its data?")) return;
        api("DELETE", "/v1/topics/" + enc(topic)).then(function () { location.hash = "#/"; }, function (e) { alert(errText(e)); });
      }));

    add(view,
      h("div", { class: "topbar" }, h("h1", null, "Topic ", h("span", { class: "mono" }, topic)), h("a", { href: "#/" }, "← all topics")),
      h("div", { class: "cols" }, card("Configuration", info), card("Send a test message", sendForm, sendOut)),
      card("Queues", queuesEl),
      card("Browse (pull by offset)", browseForm, browseMsg, browseOut, detail),
      card("Query messages", queryForm, queryMsg, queryOut),
      card("Change configuration", editEl),
      card("Danger zone", danger));

    return function refresh(alive) {
      return api("GET", "/v1/topics/" + enc(topic)).then(function (d) {
        if (!alive()) return;
        var first = config === null;
        config = d;
        syncQueues(d.queues);
        fill(info, h("dl", { class: "kv" },
          h("dt", null, "Queues"), h("dd", null, d.queues),
          h("dt", null, "Retention"), h("dd", null, duration(d.retentionMs)),
          h("dt", null, "Max message size"), h("dd", null, bytes(d.maxMessageBytes)),
          h("dt", null, "Backlog bound / queue"), h("dd", null,
            d.maxBacklogMessages === null && d.maxBacklogBytes === null ? "none" :
              [d.maxBacklogMessages !== null ? num(d.maxBacklogMessages) + " msgs" : null,
                d.maxBacklogBytes !== null ? bytes(d.maxBacklogBytes) : null].filter(Boolean).join(", ") + " (" + d.overflowPolicy + ")"),
          h("dt", null, "Created"), h("dd", null, time(d.createdAt)),
          h("dt", null, "Consumer groups"), h("dd", null, (d.groups || []).length ? d.groups.map(function (g, i) {
            return [i ? ", " : "", h("a", { href: "#/groups/" + enc(g) }, g)];
          }) : "none yet")));
        var qs = d.queueStats.map(function (q) {
          var r = rates("queue:" + topic + "#" + q.queue, q.sent, q.delivered);
          return Object.assign({ in: r.in, out: r.out }, q);
        });
        fill(queuesEl, table([
          { label: "Queue", num: true, get: function (q) { return q.queue; } },
          { label: "Min offset", num: true, get: function (q) { return num(q.minOffset); } },
          { label: "Max offset", num: true, get: function (q) { return num(q.maxOffset); } },
          { label: "Messages", num: true, get: function (q) { return num(q.messages); } },
          { label: "Size", num: true, get: function (q) { return bytes(q.bytes); } },
          { label: "Scheduled", num: true, get: function (q) { return num(q.scheduled); } },
          { label: "Dropped", num: true, get: function (q) { return num(q.dropped); } },
          { label: "Expired", num: true, get: function (q) { return num(q.expired); } },
          { label: "In msg/s", num: true, get: function (q) { return rate(q.in); } },
          { label: "Out msg/s", num: true, get: function (q) { return rate(q.out); } },
        ], rowsOf(qs, null, function (q) { return "q" + q.queue; })));
        if (first) {
          fill(editEl, topicConfigForm("edit-topic", d, "Save", function (name, body) {
            return api("PUT", "/v1/topics/" + enc(name), body).then(function () { return "Saved."; });
          }));
        }
      });
    };
  }

  function groupsPage(view) {
    var listEl = h("div", { id: "groups-table" }, h("p", { class: "empty" }, "Loading…"));
    var out = h("p", { class: "result" });
    var form = h("form", { id: "group-form" },
      field("Name", h("input", { id: "group-name", required: true, pattern: "[A-Za-z0-9_\\-]{1,127}" })),
      field("Max reconsume times", h("input", { id: "group-max", type: "number", min: 0, value: 16 })),
      field("Retry delays (comma-separated, blank: default)", h("input", { id: "group-delays", placeholder: "10s, 30s, 1m" })),
      h("label", { class: "inline" }, h("input", { id: "group-orderly", type: "checkbox" }), "Orderly"),
      h("button", { type: "submit" }, "Save group"));
    act(form, out, function () {
      var name = $("#group-name").value.trim();
      var body = { maxReconsumeTimes: Number($("#group-max").value), orderly: $("#group-orderly").checked };
      var delays = list($("#group-delays").value);
      if (delays.length) body.retryDelaysMs = delays.map(parseDuration);
      return api("PUT", "/v1/groups/" + enc(name), body).then(function (g) { return "Saved group " + g.group + "."; });
    });
    add(view, h("div", { class: "topbar" }, h("h1", null, "Consumer groups")), card(null, listEl), card("Create or update a group", form, out));
    return function refresh(alive) {
      return api("GET", "/v1/groups").then(function (r) {
        return Promise.all(r.groups.map(function (g) {
          return api("GET", "/v1/groups/" + enc(g.group)).catch(function () { return Object.assign({ topics: {}, members: [] }, g); });
        }));
      }).then(function (groups) {
        if (!alive()) return;
        var rows = groups.map(function (g) {
          var all = [];
          Object.keys(g.topics || {}).forEach(function (t) { all = all.concat(g.topics[t]); });
          return {
            group: g.group, topics: Object.keys(g.topics || {}), lag: sum(all, function (s) { return s.lag; }),
            inflight: sum(all, function (s) { return s.inflight; }), retrying: sum(all, function (s) { return s.retrying; }),
            dlq: sum(all, function (s) { return s.dlq; }), members: (g.members || []).length, orderly: g.orderly, max: g.maxReconsumeTimes,
          };
        });
        fill(listEl, table([
          { label: "Group", get: function (g) { return h("a", { href: "#/groups/" + enc(g.group) }, g.group); } },
          { label: "Topics", get: function (g) { return g.topics.join(", "); } },
          { label: "Lag", num: true, get: function (g) { return num(g.lag); } },
          { label: "In flight", num: true, get: function (g) { return num(g.inflight); } },
          { label: "Retrying", num: true, get: function (g) { return num(g.retrying); } },
          { label: "DLQ", num: true, get: function (g) { return num(g.dlq); } },
          { label: "Members", num: true, get: function (g) { return num(g.members); } },
          { label: "Mode", get: function (g) { return g.orderly ? "orderly" : "concurrent"; } },
          { label: "Max reconsume", num: true, get: function (g) { return num(g.max); } },
        ], rowsOf(rows, null, function (g) { return g.group; }), "No consumer groups yet: they appear on first receive, pull or offset reset."));
      });
    };
  }

  function groupPage(view, group) {
    var info = h("div", null, h("p", { class: "empty" }, "Loading…"));
    var membersEl = h("div");
    var lagEl = h("div", { id: "lag" });
    var topicList = h("datalist", { id: "all-topics" });
    var resetOut = h("p", { class: "result", id: "reset-result" });
    var knownTopics = [];
    var resetForm = h("form", { id: "reset-form" },
      field("Topic", h("input", { id: "reset-topic", list: "all-topics", required: true, autocomplete: "off" })),
      field("Reset to", h("select", { id: "reset-mode", onchange: function () {
        $("#reset-time").parentNode.hidden = $("#reset-mode").value !== "time";
      } }, h("option", { value: "time" }, "a point in time"), h("option", { value: "earliest" }, "earliest"), h("option", { value: "latest" }, "latest"))),
      field("Time (first message stored at or after)", h("input", { id: "reset-time", type: "datetime-local", step: 1, value: localInput(Date.now() - 3600000) })),
      h("button", { type: "submit" }, "Reset offsets"), topicList);
    act(resetForm, resetOut, function () {
      var topic = $("#reset-topic").value.trim(), mode = $("#reset-mode").value;
      var body;
      if (mode === "time") {
        var t = fromLocalInput($("#reset-time").value);
        if (isNaN(t)) throw new Error("pick a time");
        body = { timestamp: t };
      } else body = { to: mode };
      var what = mode === "time" ? time(body.timestamp) : mode;
      if (!confirm("Move group " + group + " on " + topic + " to " + what + "? Messages in flight are handed out again.")) return undefined;
      return api("POST", "/v1/groups/" + enc(group) + "/topics/" + enc(topic) + "/offsets/reset", body).then(function (r) {
        return "Reset " + topic + " to " + what + ": " + r.offsets.map(function (o) { return "q" + o.queue + "→" + o.offset; }).join(", ");
      });
    });

    var dlqEl = h("div", { id: "dlq" });
    var dlqOut = h("p", { class: "result", id: "dlq-result" });
    var selected = new Set();
    function resend(ids) {
      api("POST", "/v1/groups/" + enc(group) + "/dlq/resend", ids ? { msgIds: ids } : {}).then(function (r) {
        r.resent.forEach(function (id) { selected.delete(id); });
        show(dlqOut, true, "Resent " + r.resent.length + " message(s) to " + group + ".");
        tick(true);
      }, function (e) { show(dlqOut, false, errText(e)); });
    }
    var dlqActions = h("div", { class: "actions" },
      button("Resend selected", "secondary", function () {
        if (!selected.size) { show(dlqOut, false, "Select messages first."); return; }
        resend(Array.from(selected));
      }),
      button("Resend all", "secondary", function () {
        if (confirm("Resend every dead letter of " + group + "?")) resend(null);
      }));

    add(view,
      h("div", { class: "topbar" }, h("h1", null, "Consumer group ", h("span", { class: "mono" }, group)), h("a", { href: "#/groups" }, "← all groups")),
      h("div", { class: "cols" }, card("Configuration", info), card("Members", membersEl)),
      card("Lag per queue", lagEl),
      card("Reset offsets", resetForm, resetOut),
      card("Dead-letter queue", dlqEl, dlqActions, dlqOut),
      card(null, h("div", { class: "actions" }, button("Delete group", "danger", function () {
        if (!confirm("Delete group " + group + "? Its offsets on the shards stay until the topic is deleted.")) return;
        api("DELETE", "/v1/groups/" + enc(group)).then(function () { location.hash = "#/groups"; }, function (e) { alert(errText(e)); });
      }))));

    return function refresh(alive) {
      return Promise.all([
        api("GET", "/v1/groups/" + enc(group)),
        api("GET", "/v1/groups/" + enc(group) + "/dlq/messages?limit=200"),
        api("GET", "/v1/topics"),
      ]).then(function (r) {
        if (!alive()) return;
        var g = r[0], dlq = r[1].messages, topics = r[2].topics.map(function (t) { return t.topic; });
        if (topics.join() !== knownTopics.join()) {
          knownTopics = topics;
          fill(topicList, topics.map(function (t) { return h("option", { value: t }); }));
        }
        var subscribed = Object.keys(g.topics || {}).sort();
        var rt = $("#reset-topic");
        if (rt && !rt.value && subscribed.length) rt.value = subscribed[0];
        fill(info, h("dl", { class: "kv" },
          h("dt", null, "Mode"), h("dd", null, g.orderly ? "orderly" : "concurrent"),
          h("dt", null, "Max reconsume times"), h("dd", null, g.maxReconsumeTimes),
          h("dt", null, "Retry delays"), h("dd", null, (g.retryDelaysMs || []).map(duration).join(", ")),
          h("dt", null, "Topics"), h("dd", null, subscribed.length ? subscribed.map(function (t, i) {
            return [i ? ", " : "", h("a", { href: "#/topics/" + enc(t) }, t)];
          }) : "none yet")));
        fill(membersEl, table([
          { label: "Client", cls: "mono", get: function (m) { return m.clientId; } },
          { label: "Topics", get: function (m) { return (m.topics || []).join(", "); } },
          { label: "Last heartbeat", get: function (m) { return duration(Date.now() - m.lastSeen) + " ago"; } },
        ], rowsOf(g.members || []), "No live members (members heartbeat; receive-only consumers do not show here)."));
        fill(lagEl, subscribed.length ? subscribed.map(function (t) {
          var stats = g.topics[t];
          var total = sum(stats, function (s) { return s.lag; });
          var hist = pushHistory(group + "\u0000" + t, total);
          return h("div", { class: "topic-lag", "data-topic": t },
            h("h3", null, h("a", { href: "#/topics/" + enc(t) }, t), " ", h("span", { class: "pill" }, "lag " + num(total))),
            h("div", { class: "chart-row" },
              h("div", null, barChart(stats.map(function (s) { return s.lag; }), stats.map(function (s) { return "q" + s.queue; }), "lag per queue of " + t),
                h("div", { class: "caption" }, "lag per queue")),
              h("div", null, sparkline(hist, "total lag of " + t), h("div", { class: "caption" }, "total lag, last " + hist.length + " refreshes"))),
            table([
              { label: "Queue", num: true, get: function (s) { return s.queue; } },
              { label: "Offset", num: true, get: function (s) { return num(s.offset); } },
              { label: "Max offset", num: true, get: function (s) { return num(s.maxOffset); } },
              { label: "Lag", num: true, get: function (s) { return num(s.lag); } },
              { label: "In flight", num: true, get: function (s) { return num(s.inflight); } },
              { label: "Retrying", num: true, get: function (s) { return num(s.retrying); } },
              { label: "DLQ", num: true, get: function (s) { return num(s.dlq); } },
            ], rowsOf(stats, null, function (s) { return t + "#" + s.queue; })));
        }) : h("p", { class: "empty" }, "This group consumes no topic yet. Reset its offsets on a topic below to start it there."));
        var ids = new Set(dlq.map(function (m) { return m.msgId; }));
        selected.forEach(function (id) { if (!ids.has(id)) selected.delete(id); });
        fill(dlqEl, table([
          { label: "", get: function (m) {
            return h("input", { type: "checkbox", checked: selected.has(m.msgId), "aria-label": "select " + m.msgId, onchange: function (ev) {
              if (ev.target.checked) selected.add(m.msgId); else selected.delete(m.msgId);
            } });
          } },
          { label: "Msg ID", cls: "mono", get: function (m) { return m.msgId; } },
          { label: "Topic", get: function (m) { return m.topic; } },
          { label: "Queue", num: true, get: function (m) { return m.queue; } },
          { label: "Offset", num: true, get: function (m) { return m.offset; } },
          { label: "Reconsumed", num: true, get: function (m) { return m.reconsumeTimes; } },
          { label: "Stored", get: function (m) { return time(m.storedAt); } },
          { label: "Body", cls: "body", get: preview },
        ], rowsOf(dlq, null, function (m) { return m.msgId; }), "The dead-letter queue is empty."));
      });
    };
  }

  function transactionsPage(view) {
    var txEl = h("div", { id: "tx-table" }, h("p", { class: "empty" }, "Loading…"));
    var txOut = h("p", { class: "result" });
    var pgEl = h("div", { id: "pg-table" });
    var pgOut = h("p", { class: "result" });
    var pgForm = h("form", { id: "pg-form" },
      field("Producer group", h("input", { id: "pg-name", required: true, pattern: "[A-Za-z0-9_\\-]{1,127}" })),
      field("Check URL", h("input", { id: "pg-url", type: "url", placeholder: "https://app.example.com/edgemq-check" })),
      field("Check after", h("input", { id: "pg-after", value: "6s" })),
      field("Check every", h("input", { id: "pg-interval", value: "60s" })),
      field("Max checks", h("input", { id: "pg-max", type: "number", min: 1, value: 15 })),
      field("Rotate signing secret", h("input", { id: "pg-rotate", type: "checkbox" })),
      h("button", { type: "submit" }, "Save producer group"));
    act(pgForm, pgOut, function () {
      var name = $("#pg-name").value.trim(), url = $("#pg-url").value.trim();
      return api("PUT", "/v1/producer-groups/" + enc(name), {
        checkUrl: url || null, checkAfterMs: parseDuration($("#pg-after").value), checkIntervalMs: parseDuration($("#pg-interval").value),
        maxChecks: Number($("#pg-max").value), rotateSecret: $("#pg-rotate").checked,
      }).then(function (r) {
        // The check-back signing secret is answered only when made (new group, or rotated): show it once.
        return "Saved producer group " + name + "." + (r.signingSecret ? " Signing secret for its check handler (shown once): " + r.signingSecret : "");
      });
    });
    function end(tx, how) {
      if (!confirm((how === "commit" ? "Commit" : "Roll back") + " transaction " + tx.txId + "?")) return;
      api("POST", "/v1/transactions/" + enc(tx.txId) + "/" + how).then(function (r) {
        show(txOut, true, tx.msgId + ": " + r.status + ".");
        tick(true);
      }, function (e) { show(txOut, false, errText(e)); });
    }
    add(view,
      h("div", { class: "topbar" }, h("h1", null, "Open transactions")),
      card("Half messages waiting for commit or rollback", txEl, txOut),
      card("Producer groups (check-back)", pgEl, pgForm, pgOut));
    return function refresh(alive) {
      return Promise.all([api("GET", "/v1/topics"), api("GET", "/v1/producer-groups")]).then(function (r) {
        return Promise.all(r[0].topics.map(function (t) {
          return api("GET", "/v1/topics/" + enc(t.topic) + "/transactions").then(function (x) {
            return x.transactions.map(function (tx) { return Object.assign({ topic: t.topic }, tx); });
          }, function () { return []; });
        })).then(function (lists) {
          if (!alive()) return;
          var txs = [].concat.apply([], lists).sort(function (a, b) { return a.createdAt - b.createdAt; });
          fill(txEl, table([
            { label: "Topic", get: function (t) { return h("a", { href: "#/topics/" + enc(t.topic) }, t.topic); } },
            { label: "Msg ID", cls: "mono", get: function (t) { return t.msgId; } },
            { label: "Producer group", get: function (t) { return t.producerGroup; } },
            { label: "Queue", num: true, get: function (t) { return t.queue; } },
            { label: "Age", num: true, get: function (t) { return duration(t.ageMs); } },
            { label: "Checks", num: true, get: function (t) { return num(t.checks); } },
            { label: "Next check", get: function (t) { return time(t.nextCheckAt); } },
            { label: "", get: function (t) {
              return h("div", { class: "actions" }, button("Commit", "secondary", function () { end(t, "commit"); }),
                button("Roll back", "danger", function () { end(t, "rollback"); }));
            } },
          ], rowsOf(txs, null, function (t) { return t.txId; }), "No open transactions."));
          fill(pgEl, table([
            { label: "Producer group", get: function (p) { return p.producerGroup; } },
            { label: "Check URL", cls: "mono", get: function (p) { return p.checkUrl || "none (rolled back after checks)"; } },
            { label: "After", num: true, get: function (p) { return duration(p.checkAfterMs); } },
            { label: "Every", num: true, get: function (p) { return duration(p.checkIntervalMs); } },
            { label: "Max checks", num: true, get: function (p) { return num(p.maxChecks); } },
          ], rowsOf(r[1].producerGroups || []), "No producer groups configured."));
        });
      });
    };
  }

  function tokensPage(view) {
    var out = h("p", { class: "result" });
    var tokenEl = h("div");
    var form = h("form", { id: "token-form" },
      field("Subject (who it is for)", h("input", { id: "token-sub", required: true, placeholder: "web-app" })),
      field("Publish to (topic patterns)", h("input", { id: "token-publish", placeholder: "orders*, audit" })),
      field("Subscribe to (topic patterns)", h("input", { id: "token-subscribe", placeholder: "orders*" })),
      field("As groups (patterns)", h("input", { id: "token-groups", placeholder: "web-*" })),
      field("Lifetime", h("input", { id: "token-ttl", value: "1h" })),
      h("button", { type: "submit" }, "Mint token"));
    act(form, out, function () {
      var body = {
        sub: $("#token-sub").value.trim(), publish: list($("#token-publish").value), subscribe: list($("#token-subscribe").value),
        groups: list($("#token-groups").value), ttlSeconds: Math.max(1, Math.round(parseDuration($("#token-ttl").value) / 1000)),
      };
      return api("POST", "/v1/tokens", body).then(function (r) {
        fill(tokenEl, h("textarea", { id: "token-value", readOnly: true, rows: 4, value: r.token }));
        return "Minted a token for " + body.sub + ", valid " + duration(body.ttlSeconds * 1000) + ". It is shown once.";
      });
    });
    add(view, h("div", { class: "topbar" }, h("h1", null, "Tokens")),
      card("Mint a scoped token", h("p", { class: "muted" }, "Patterns may end with *. Publish covers sends and transactions; subscribe covers pull, receive, ack and offsets for the listed groups."), form, out, tokenEl));
    return null;
  }

  // ---- shell: sign-in, routing, live refresh -------------------------------

  var page = null;
  var pageId = 0;
  var busy = false;
  var lastOk = 0;

  function status(text, bad) {
    var el = $("#status");
    el.textContent = text;
    el.className = "status" + (bad ? " bad" : "");
  }

  function tick(force) {
    if (!page || busy || (!force && document.hidden)) return;
    var id = pageId;
    busy = true;
    Promise.resolve().then(function () { return page(function () { return id === pageId; }); }).then(function () {
      lastOk = Date.now();
      if (id === pageId) status("live · updated " + time(lastOk).slice(11));
    }, function (e) {
      if (id === pageId) status(errText(e), true);
    }).then(function () { busy = false; });
  }

  function signOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    page = null;
    pageId++;
    route();
    if (message) $("#login-error").textContent = message;
  }

  function route() {
    var signedIn = !!sessionStorage.getItem(TOKEN_KEY);
    $("#login").hidden = signedIn;
    $("#nav").hidden = !signedIn;
    $("#logout").hidden = !signedIn;
    var view = $("#view");
    view.replaceChildren();
    pageId++;
    page = null;
    if (!signedIn) { status(""); $("#login-token").focus(); return; }
    var hash = location.hash || "#/";
    var m, nav = "overview";
    if ((m = /^#\/topics\/([^/]+)$/.exec(hash))) page = topicPage(view, decodeURIComponent(m[1]));
    else if (hash === "#/groups") { nav = "groups"; page = groupsPage(view); }
    else if ((m = /^#\/groups\/([^/]+)$/.exec(hash))) { nav = "groups"; page = groupPage(view, decodeURIComponent(m[1])); }
    else if (hash === "#/transactions") { nav = "transactions"; page = transactionsPage(view); }
    else if (hash === "#/tokens") { nav = "tokens"; page = tokensPage(view); }
    else page = overviewPage(view);
    document.querySelectorAll("#nav a").forEach(function (a) { a.classList.toggle("active", a.getAttribute("data-nav") === nav); });
    busy = false;
    if (page) tick(true); else status("");
  }

  $("#login-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var token = $("#login-token").value.trim();
    var err = $("#login-error");
    err.textContent = "";
    sessionStorage.setItem(TOKEN_KEY, token);
    api("GET", "/v1/topics").then(function () {
      $("#login-token").value = "";
      route();
    }, function (e) {
      sessionStorage.removeItem(TOKEN_KEY);
      err.textContent = e.status === 403 ? "That token is not the admin token." : errText(e);
    });
  });
  $("#logout").addEventListener("click", function () { signOut(""); });
  window.addEventListener("hashchange", route);
  document.addEventListener("visibilitychange", function () { if (!document.hidden) tick(true); });
  setInterval(tick, REFRESH_MS);
  route();
})();
`;
