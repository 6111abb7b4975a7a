// Drives the admin demo page (/demo) of a running netsvr in the system Chromium, headless,
// through playwright-core. Run by netsvr-bin/tests/browser.rs, which starts the binary and
// passes everything in the environment:
//
//   NETSVR_DEMO_ADMIN       admin base URL, e.g. http://127.0.0.1:40123
//   NETSVR_DEMO_TOKEN       admin bearer token ("" for none)
//   NETSVR_DEMO_SCENARIO    "broadcast" (default) or "topics"
//   NETSVR_DEMO_SCREENSHOT  where to save a PNG of the first tab
//   NETSVR_DEMO_CHROMIUM    the browser (default /usr/bin/chromium)
//   NETSVR_DEMO_EXPECT_DEFLATE  "1": every tab must have negotiated permessage-deflate
//
// Prints progress lines, then `RESULT {json}` and exits 0, or prints `FAILED: why` and exits 1.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const env = process.env;
const admin = required("NETSVR_DEMO_ADMIN").replace(/\/$/, "");
const token = env.NETSVR_DEMO_TOKEN || "";
const scenario = env.NETSVR_DEMO_SCENARIO || "broadcast";
const screenshot = env.NETSVR_DEMO_SCREENSHOT || "";
const executablePath = env.NETSVR_DEMO_CHROMIUM || "/usr/bin/chromium";
const expectDeflate = env.NETSVR_DEMO_EXPECT_DEFLATE === "1";
const WAIT = 5000;
const unique = `${Date.now().toString(36)}-${process.pid}`;

function required(name) {
  const v = env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
}

function check(cond, message) {
  if (!cond) throw new Error(message);
}

const authHeaders = token ? { Authorization: `Bearer ${token}` } : {};

async function api(path, body) {
  const r = await fetch(admin + path, {
    method: body === undefined ? "GET" : "POST",
    headers: { ...authHeaders, ...(body === undefined ? {} : { "Content-Type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  check(r.ok, `${path} answered ${r.status}: ${text}`);
  return JSON.parse(text);
}

async function until(what, fn, ms = WAIT) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// The texts of the tab's log entries of one kind ("in", "out", "reply", "cmd", "sys").
function logTexts(page, kind) {
  return page.$$eval(`#log li[data-kind="${kind}"] .text`, (els) => els.map((e) => e.textContent));
}

async function waitReceived(page, name, text) {
  try {
    await page.waitForFunction(
      (t) => Array.from(document.querySelectorAll('#log li[data-kind="in"] .text')).some((e) => e.textContent === t),
      text,
      { timeout: WAIT, polling: 50 },
    );
  } catch (e) {
    const got = (await logTexts(page, "in")).map((t) => (t.length > 80 ? t.slice(0, 80) + "…" : t));
    throw new Error(`${name} did not receive a ${text.length}-byte message (its log: ${JSON.stringify(got)})`);
  }
}

async function openTab(context, name, problems) {
  const page = await context.newPage();
  page.on("pageerror", (e) => problems.push(`${name}: page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`${name}: console error: ${m.text()}`);
  });
  const url = `${admin}/demo${token ? `?token=${encodeURIComponent(token)}` : ""}`;
  const resp = await page.goto(url);
  check(resp && resp.ok(), `${name}: GET /demo answered ${resp && resp.status()}`);
  await page.click("#connect");
  await page.waitForSelector('#state[data-state="open"]', { timeout: WAIT });
  const extensions = (await page.textContent("#extensions")) || "";
  console.log(`${name}: connected, extensions: ${extensions}`);
  return { page, extensions };
}

async function broadcastScenario(tabs, result) {
  const [one, two] = tabs.map((t) => t.page);
  // A short message published through the JSON command API reaches both tabs.
  const hello = `hello from the admin API ${unique}`;
  const sent = await api("/api/v1/broadcast", { data: hello });
  check(sent.delivered === 2, `broadcast delivered to ${sent.delivered} connections, not 2`);
  await waitReceived(one, "tab 1", hello);
  await waitReceived(two, "tab 2", hello);
  console.log("broadcast: both tabs received it");
  result.broadcast = true;

  // A larger, repetitive payload (compressible) arrives intact.
  const large = `${"netsvr demo payload, compress me please. ".repeat(100)}${unique}`;
  check(large.length > 1024, "payload too small");
  await api("/api/v1/broadcast", { data: large });
  await waitReceived(one, "tab 1", large);
  await waitReceived(two, "tab 2", large);
  console.log(`large payload: ${large.length} bytes intact in both tabs`);
  result.large_bytes = large.length;

  // A message typed in tab 1 reaches the gateway: its counters move by exactly it.
  const before = (await api("/api/v1/status")).counters;
  const typed = `typed in tab 1 ${unique}`;
  await one.fill("#send-text", typed);
  await one.click("#send");
  const outs = await logTexts(one, "out");
  check(outs.includes(typed), `tab 1 did not log its own message: ${JSON.stringify(outs)}`);
  const after = await until("the gateway to count tab 1's message", async () => {
    const c = (await api("/api/v1/status")).counters;
    return c.messages_in > before.messages_in ? c : null;
  });
  result.messages_in_delta = after.messages_in - before.messages_in;
  result.bytes_in_delta = after.bytes_in - before.bytes_in;
  result.typed_bytes = Buffer.byteLength(typed);
  // The page's live counter catches up within its 2 s refresh.
  await one.waitForFunction(
    (n) => Number(document.getElementById("count-messages-in").textContent) >= n,
    after.messages_in,
    { timeout: WAIT, polling: 100 },
  );
  result.page_counter_updated = true;
  console.log(`typed message counted by the gateway (messages_in +${result.messages_in_delta})`);
}

async function topicsScenario(tabs, result) {
  const [one, two] = tabs.map((t) => t.page);
  check(await one.isVisible("#commands"), "the client command form is hidden");
  // A topic outside the allowed prefixes is refused, and the reply is shown as a failure.
  await one.fill("#topic", `forbidden-${unique}`);
  await one.click("#subscribe");
  await one.waitForSelector("#log li.reply.failed", { timeout: WAIT });
  result.refused_reply = (await logTexts(one, "reply"))[0];
  console.log(`tab 1 refused: ${result.refused_reply}`);

  const topic = `demo-${unique}`;
  await one.fill("#topic", topic);
  await one.click("#subscribe");
  await one.waitForSelector("#log li.reply.ok", { timeout: WAIT });
  result.subscribe_reply = await one.textContent("#log li.reply.ok .text");
  console.log(`tab 1 subscribed: ${result.subscribe_reply}`);

  const news = `news for ${topic}`;
  const sent = await api("/api/v1/publish", { topics: [topic], data: news });
  check(sent.delivered === 1, `publish delivered to ${sent.delivered} connections, not 1`);
  await waitReceived(one, "tab 1", news);
  // Messages to one connection arrive in order: once tab 2 has this later broadcast, the
  // topic message would have arrived before it had it been sent there.
  const marker = `after the publish ${unique}`;
  await api("/api/v1/broadcast", { data: marker });
  await waitReceived(two, "tab 2", marker);
  const twoGot = await logTexts(two, "in");
  check(!twoGot.includes(news), "tab 2 (not subscribed) received the topic message");
  result.topic_only_subscriber = true;
  console.log("topic publish reached tab 1 only");

  // Unsubscribed through the form, tab 1 gets no more of the topic.
  await one.click("#unsubscribe");
  await until("the unsubscribe reply", async () => (await logTexts(one, "reply")).length === 3);
  const unsub = (await logTexts(one, "reply"))[2];
  check(unsub.includes('"ok":true'), `unsubscribe failed: ${unsub}`);
  const again = await api("/api/v1/publish", { topics: [topic], data: `${news} again` });
  check(again.delivered === 0, `publish after unsubscribe delivered to ${again.delivered}`);
  result.unsubscribed = true;
  console.log("tab 1 unsubscribed");
}

async function main() {
  const profile = mkdtempSync(join(tmpdir(), "netsvr-chromium-"));
  const result = { scenario };
  const problems = [];
  let context;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath,
      headless: true,
      args: [
        "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
      ],
      viewport: { width: 1000, height: 900 },
      timeout: 20000,
    });
    const tabs = [await openTab(context, "tab 1", problems), await openTab(context, "tab 2", problems)];
    result.extensions = tabs.map((t) => t.extensions);
    if (expectDeflate) {
      for (const [i, t] of tabs.entries()) {
        check(t.extensions.includes("permessage-deflate"), `tab ${i + 1} negotiated "${t.extensions}", not permessage-deflate`);
      }
    }
    const status = await api("/api/v1/status");
    check(status.connections === 2, `the gateway holds ${status.connections} connections, not 2`);
    if (expectDeflate) {
      check(status.deflate_connections === 2, `the gateway counts ${status.deflate_connections} deflate connections, not 2`);
    }
    if (scenario === "topics") await topicsScenario(tabs, result);
    else await broadcastScenario(tabs, result);
    if (screenshot) {
      await tabs[0].page.screenshot({ path: screenshot, fullPage: true });
      result.screenshot = screenshot;
      console.log(`screenshot: ${screenshot}`);
    }
    check(problems.length === 0, `the page reported problems:\n${problems.join("\n")}`);
    console.log(`RESULT ${JSON.stringify(result)}`);
  } finally {
    if (context) await context.close().catch(() => {});
    rmSync(profile, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.log(`FAILED: ${e && e.message ? e.message : e}`);
    process.exit(1);
  },
);
