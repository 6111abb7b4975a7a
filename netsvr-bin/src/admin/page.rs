//! The status page at `/`: one self-contained HTML document (inline CSS and JS, no external
//! assets) that reads `/api/v1/status` every 2 seconds.
//!
//! When a token is configured, open the page as `/?token=<token>`: the server accepts the
//! query parameter on `/` only, and the page's script sends it on as
//! `Authorization: Bearer <token>` with every fetch. The token then sits in the browser's
//! address bar and history; use a loopback listener or a tunnel for anything sensitive.
//! The page inserts server data with `textContent` only, and a strict
//! Content-Security-Policy forbids any other origin.

use hyper::StatusCode;
use hyper::header::{self, HeaderValue};

use super::http::{Resp, respond};

/// The page's Content-Security-Policy: its own inline script and style, fetches to itself.
const CSP: &str = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The document.
const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>netsvr status</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; background: #fafafa; }
  h1 { font-size: 1.4em; margin: 0 0 .2em; }
  h2 { font-size: 1.1em; margin: 1.5em 0 .4em; }
  .meta { color: #666; }
  .big { display: flex; gap: 2em; margin: 1em 0; }
  .big div { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: .6em 1.2em; }
  .big b { display: block; font-size: 2em; }
  table { border-collapse: collapse; background: #fff; }
  th, td { border: 1px solid #ddd; padding: .25em .7em; text-align: right; }
  th:first-child, td:first-child { text-align: left; }
  .bad { color: #b00; font-weight: bold; }
  .ok { color: #070; }
  #error { color: #b00; }
</style>
</head>
<body>
<h1>netsvr</h1>
<div class="meta">node <span id="node">?</span> &middot; version <span id="version">?</span>
  &middot; up <span id="uptime">?</span> &middot; <span id="state">?</span></div>
<div id="error"></div>
<div class="big">
  <div>connections<b id="connections">&ndash;</b></div>
  <div>customers<b id="customers">&ndash;</b></div>
  <div>topics<b id="topics">&ndash;</b></div>
</div>
<h2>Sinks</h2>
<table>
  <thead><tr><th>name</th><th>state</th><th>queued</th><th>capacity</th>
    <th>delivered</th><th>retried</th><th>dropped</th></tr></thead>
  <tbody id="sinks"></tbody>
</table>
<h2>Counters</h2>
<table><tbody id="counters"></tbody></table>
<h2>Limits</h2>
<table><tbody id="limits"></tbody></table>
<script>
"use strict";
const token = new URLSearchParams(location.search).get("token");
const headers = token ? { "Authorization": "Bearer " + token } : {};
const $ = (id) => document.getElementById(id);

function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = String(text);
  if (cls) td.className = cls;
  row.appendChild(td);
}

function fillPairs(body, object) {
  body.replaceChildren();
  for (const [key, value] of Object.entries(object || {})) {
    const tr = document.createElement("tr");
    cell(tr, key);
    cell(tr, value);
    body.appendChild(tr);
  }
}

function duration(secs) {
  const d = Math.floor(secs / 86400), h = Math.floor(secs % 86400 / 3600);
  const m = Math.floor(secs % 3600 / 60), s = secs % 60;
  return (d ? d + "d " : "") + (d || h ? h + "h " : "") + m + "m " + s + "s";
}

function render(s) {
  $("node").textContent = s.node + " (" + s.node_addr + ")";
  $("version").textContent = s.version;
  $("uptime").textContent = duration(s.uptime_secs);
  $("state").textContent = s.shutting_down ? "shutting down" : "serving";
  $("state").className = s.shutting_down ? "bad" : "ok";
  $("connections").textContent = s.connections;
  $("customers").textContent = s.customers;
  $("topics").textContent = s.topics;
  const sinks = $("sinks");
  sinks.replaceChildren();
  for (const k of s.sinks) {
    const tr = document.createElement("tr");
    cell(tr, k.name);
    cell(tr, k.healthy ? "healthy" : "UNHEALTHY", k.healthy ? "ok" : "bad");
    for (const f of ["queued", "capacity", "delivered", "retried", "dropped"]) cell(tr, k[f]);
    sinks.appendChild(tr);
  }
  fillPairs($("counters"), s.counters);
  fillPairs($("limits"), s.limits || { limiter: "reports no limits" });
}

async function refresh() {
  try {
    const r = await fetch("/api/v1/status", { headers, cache: "no-store" });
    if (!r.ok) throw new Error("HTTP " + r.status + (r.status === 401 ? " (open the page as /?token=...)" : ""));
    render(await r.json());
    $("error").textContent = "";
  } catch (e) {
    $("error").textContent = "status unavailable: " + e.message;
  }
}

refresh();
setInterval(refresh, 2000);
</script>
</body>
</html>
"#;

/// The status page response.
pub(crate) fn page() -> Resp {
    html(PAGE, HeaderValue::from_static(CSP))
}

/// A self-contained HTML page with its Content-Security-Policy, no MIME sniffing and no
/// referrer (the status page and the demo page).
pub(crate) fn html(body: impl Into<bytes::Bytes>, csp: HeaderValue) -> Resp {
    let mut resp = respond(StatusCode::OK, "text/html; charset=utf-8", body);
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}
