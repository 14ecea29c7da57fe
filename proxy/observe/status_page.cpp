// The status page's HTML, CSS and JavaScript. Everything the page shows comes from /status.json;
// text is inserted with textContent, never as HTML, since seed names come from the database.
#include "proxy/observe/status_page.hpp"

namespace seedproxy::proxy {
namespace {

constexpr std::string_view page = R"page(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>seedproxy</title>
<style>
  :root {
    --bg: #f6f7f9; --card: #ffffff; --ink: #1d2330; --muted: #687085; --line: #e3e6ec;
    --ok: #1f9d55; --bad: #d64545; --warn: #c98a0b; --accent: #3b6fd8;
    --virtual: #7a5cc2; --materializing: #c98a0b; --materialized: #1f9d55;
    --rolled_back: #8a8f9c; --declared: #3b6fd8;
  }
  * { box-sizing: border-box; }
  body { margin: 0; background: var(--bg); color: var(--ink);
         font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
  header { display: flex; flex-wrap: wrap; align-items: center; gap: 12px 28px;
           padding: 14px 28px; background: var(--card); border-bottom: 1px solid var(--line); }
  header h1 { font-size: 18px; margin: 0; letter-spacing: .2px; }
  header h1 small { color: var(--muted); font-weight: normal; margin-left: 6px; }
  .fact { color: var(--muted); }
  .fact b { color: var(--ink); font-variant-numeric: tabular-nums; }
  .badge { display: inline-block; padding: 2px 9px; border-radius: 999px; font-size: 12px;
           font-weight: 600; color: #fff; white-space: nowrap; }
  .badge.ok { background: var(--ok); } .badge.bad { background: var(--bad); }
  main { padding: 20px 28px 40px; max-width: 1200px; }
  section { background: var(--card); border: 1px solid var(--line); border-radius: 10px;
            padding: 16px 18px; margin-bottom: 20px; }
  h2 { font-size: 15px; margin: 0 0 12px; }
  h2 .count { color: var(--muted); font-weight: normal; }
  table { width: 100%; border-collapse: collapse; }
  th { text-align: left; font-size: 12px; color: var(--muted); font-weight: 600;
       text-transform: uppercase; letter-spacing: .4px; padding: 6px 8px;
       border-bottom: 1px solid var(--line); }
  td { padding: 8px; border-bottom: 1px solid var(--line); vertical-align: middle; }
  tr:last-child td { border-bottom: none; }
  .name { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 13px; }
  .sub { color: var(--muted); font-size: 12px; }
  .phase { background: var(--muted); }
  .phase.virtual { background: var(--virtual); }
  .phase.materializing { background: var(--materializing); }
  .phase.materialized { background: var(--materialized); }
  .phase.rolled_back { background: var(--rolled_back); }
  .phase.declared { background: var(--declared); }
  .reads { min-width: 220px; }
  .meter { height: 8px; background: var(--line); border-radius: 4px; overflow: hidden;
           margin-top: 4px; }
  .meter > div { height: 100%; background: var(--accent); transition: width .4s ease; }
  .meter.full > div { background: var(--ok); }
  .problem { color: var(--bad); font-size: 12px; }
  .column { min-width: 120px; font-variant-numeric: tabular-nums; }
  .column .meter > div { background: var(--materializing); }
  .column .meter.full > div { background: var(--materialized); }
  .column .meter.paused > div { background: var(--muted); }
  .job { padding: 12px 0; border-bottom: 1px solid var(--line); }
  .job:last-child { border-bottom: none; }
  .job .top { display: flex; justify-content: space-between; gap: 16px; flex-wrap: wrap; }
  .bar { height: 16px; background: var(--line); border-radius: 8px; overflow: hidden;
         margin: 8px 0 6px; position: relative; }
  .bar > div { height: 100%; background: linear-gradient(90deg, #3b6fd8, #5a8cf0);
               transition: width .6s ease; }
  .bar.unknown > div { width: 30% !important; opacity: .5; }
  .job.paused .bar > div { background: repeating-linear-gradient(135deg, #9aa1b1 0 8px,
                                                                  #b4bac7 8px 16px); }
  .job.failed .bar > div { background: var(--bad); }
  .step { background: var(--accent); }
  .step.materialized { background: var(--materialized); }
  .step.rolled_back { background: var(--rolled_back); }
  .step.backfilling, .step.verifying, .step.adding_column, .step.installing_trigger,
  .step.switching_to_coalesce, .step.switching_to_column, .step.not_started {
    background: var(--materializing); }
  .step.rolling_back { background: var(--rolled_back); }
  .step.paused { background: var(--muted); }
  .owner { color: var(--muted); font-size: 12px; margin-left: 8px; }
  .waiting { margin-top: 8px; padding: 8px 12px; border-radius: 6px; background: #fdf6e3;
             font-size: 13px; }
  .error { margin-top: 8px; padding: 8px 12px; border-radius: 6px; background: #fdecec;
           color: var(--bad); border: 1px solid #f3c4c4; font-size: 13px;
           white-space: pre-wrap; overflow-wrap: anywhere; }
  .numbers { display: flex; gap: 22px; flex-wrap: wrap; color: var(--muted); font-size: 13px;
             font-variant-numeric: tabular-nums; }
  .numbers b { color: var(--ink); }
  .empty { color: var(--muted); font-style: italic; }
  #stale { display: none; margin: 0 0 16px; padding: 10px 14px; border-radius: 8px;
           background: #fdecec; color: var(--bad); border: 1px solid #f3c4c4; }
</style>
</head>
<body>
<header>
  <h1>seedproxy <small id="version"></small></h1>
  <span class="fact">instance <b id="instance">–</b></span>
  <span class="fact">health <span id="health" class="badge">…</span></span>
  <span class="fact" id="health-reason"></span>
  <span class="fact">clients <b id="clients">–</b></span>
  <span class="fact">uptime <b id="uptime">–</b></span>
</header>
<main>
  <div id="stale">Cannot reach this proxy's /status.json; showing the last answer.</div>
  <section>
    <h2>Materializations <span class="count" id="jobs-count"></span></h2>
    <div id="jobs"><p class="empty">Loading…</p></div>
  </section>
  <section>
    <h2>Seeds <span class="count" id="seeds-count"></span></h2>
    <table>
      <thead><tr><th>Seed</th><th>Type</th><th>Phase</th><th class="reads">Reads in window</th>
      <th class="column">Column</th></tr></thead>
      <tbody id="seeds"><tr><td colspan="5" class="empty">Loading…</td></tr></tbody>
    </table>
  </section>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
function el(tag, props, ...children) {
  const node = document.createElement(tag);
  Object.assign(node, props || {});
  for (const child of children) {
    if (child !== null && child !== undefined) {
      node.append(child instanceof Node ? child : String(child));
    }
  }
  return node;
}
const number = (n) => Number(n).toLocaleString("en-US", { maximumFractionDigits: 1 });
function duration(seconds) {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) return "unknown";
  seconds = Math.max(0, Math.round(seconds));
  const d = Math.floor(seconds / 86400), h = Math.floor(seconds % 86400 / 3600),
        m = Math.floor(seconds % 3600 / 60), s = seconds % 60;
  if (d) return d + "d" + (h ? " " + h + "h" : "");
  if (h) return h + "h" + (m ? " " + m + "m" : "");
  if (m) return m + "m " + s + "s";
  return s + "s";
}
const key = (x) => [x.database, x.schema, x.table, x.attribute].join("\u0001");
const words = (name) => String(name).replace(/_/g, " ");
const percent = (fraction) => (fraction * 100).toFixed(1).replace(/\.0$/, "") + "%";
const knownFraction = (job) => job && job.fraction !== null && job.fraction !== undefined;
const label = (x) => x.database + " · " + x.entity + "." + x.attribute;

// How much of the seed is a real column: none while virtual, the backfill's progress while
// materializing, all of it once materialized.
function columnCell(seed, job) {
  const cell = el("td", { className: "column" });
  let fraction = null, paused = false;
  if (seed.phase === "materialized") {
    fraction = 1;
  } else if (seed.phase === "materializing" && knownFraction(job)) {
    fraction = job.fraction;
    paused = job.paused;
  }
  if (fraction === null) {
    cell.append(seed.phase === "materializing" ? "started" : "–");
    return cell;
  }
  const meter = el("div", { className: "meter" + (fraction >= 1 ? " full" : "") +
                                        (paused ? " paused" : "") }, el("div", {}));
  meter.firstChild.style.width = (fraction * 100).toFixed(1) + "%";
  cell.append(percent(fraction), meter);
  return cell;
}

function renderSeeds(seeds, jobs) {
  const jobOf = new Map(jobs.map((job) => [key(job), job]));
  $("seeds-count").textContent = "(" + seeds.length + ")";
  const rows = seeds.map((seed) => {
    const t = seed.threshold;
    let reads = el("div", {}, el("b", { className: "count" }, number(seed.reads_in_window)));
    if (t && t.policy === "threshold") {
      reads.append(" / " + number(t.reads) + " in " + duration(t.window_seconds));
      const fraction = t.reads > 0 ? Math.min(1, seed.reads_in_window / t.reads) : 1;
      const meter = el("div", { className: "meter" + (fraction >= 1 ? " full" : "") },
                       el("div", {}));
      meter.firstChild.style.width = (fraction * 100).toFixed(1) + "%";
      reads = el("div", {}, reads, meter);
    } else if (t) {
      reads.append(el("span", { className: "sub" }, "  (policy " + t.policy + ")"));
    }
    const row = el("tr", {},
      el("td", {}, el("div", { className: "name" }, seed.entity + "." + seed.attribute),
         el("div", { className: "sub" }, "database " + seed.database +
            (seed.cross_table ? " · cross-table" : "")),
         seed.dependencies ? el("div", { className: "sub" }, "reads " + seed.dependencies) : null,
         seed.materialize_refusal ?
             el("div", { className: "sub" }, "stays virtual: " + seed.materialize_refusal) : null,
         seed.problem ? el("div", { className: "problem" }, seed.problem) : null),
      el("td", { className: "name" }, seed.type),
      el("td", {}, el("span", { className: "badge phase " + seed.phase + (seed.inactive ? " bad" : "") },
                      words(seed.phase) + (seed.inactive ? " · inactive" : ""))),
      el("td", { className: "reads" }, reads),
      columnCell(seed, jobOf.get(key(seed))));
    row.dataset.seed = label(seed);
    row.dataset.phase = seed.phase;
    row.title = seed.expression;
    return row;
  });
  $("seeds").replaceChildren(...(rows.length ? rows :
      [el("tr", {}, el("td", { colSpan: 5, className: "empty" }, "No seeds declared."))]));
}

function renderJobs(jobs) {
  $("jobs-count").textContent = "(" + jobs.length + ")";
  const items = jobs.map((job) => {
    const known = knownFraction(job);
    const bar = el("div", { className: "bar" + (known ? "" : " unknown") }, el("div", {}));
    bar.firstChild.style.width = (known ? job.fraction * 100 : 0).toFixed(1) + "%";
    let eta = duration(job.eta_seconds);
    if (job.paused) eta = "paused";
    else if (job.error) eta = "stopped";
    const item = el("div", { className: "job" + (job.paused ? " paused" : "") +
                                         (job.error ? " failed" : "") },
      el("div", { className: "top" },
         el("span", {}, el("span", { className: "name" }, label(job)),
            job.owner ? el("span", { className: "owner" }, "on " + job.owner) : null),
         el("span", { className: "badge step " + job.step + (job.paused ? " paused" : "") },
            words(job.step) + (job.paused ? " · paused" : ""))),
      bar,
      el("div", { className: "numbers" },
         el("span", {}, el("b", { className: "percent" }, known ? percent(job.fraction) : "–"),
            " done"),
         el("span", {}, el("b", { className: "rows-done" }, number(job.rows_done)), " of ~",
            el("b", { className: "rows-total" }, number(job.rows_total)), " rows"),
         el("span", {}, el("b", { className: "rate" },
                           job.paused ? "–" : number(job.rows_per_second)), " rows/s"),
         el("span", {}, "ETA ", el("b", { className: "eta" }, eta))),
      job.waiting_for ? el("div", { className: "waiting" }, job.waiting_for) : null,
      job.error ? el("div", { className: "error" }, job.error) : null);
    item.dataset.seed = label(job);
    item.dataset.step = job.step;
    return item;
  });
  $("jobs").replaceChildren(...(items.length ? items :
      [el("p", { className: "empty" }, "No materialization running.")]));
}

function render(s) {
  $("version").textContent = s.version;
  $("instance").textContent = s.instance || "–";
  const health = $("health");
  health.textContent = s.health.ok ? "healthy" : "unhealthy";
  health.className = "badge " + (s.health.ok ? "ok" : "bad");
  $("health-reason").textContent = s.health.ok ? "" : s.health.reason;
  $("clients").textContent = number(s.clients.current) + " now · " + number(s.clients.total) +
      " total · " + number(s.clients.refused) + " refused";
  $("uptime").textContent = duration(s.uptime_seconds);
  renderJobs(s.materializations);
  renderSeeds(s.seeds, s.materializations);
}

async function poll() {
  try {
    const response = await fetch("status.json", { cache: "no-store" });
    if (!response.ok) throw new Error("HTTP " + response.status);
    render(await response.json());
    $("stale").style.display = "none";
    document.body.dataset.loaded = "true";
  } catch (error) {
    $("stale").style.display = "block";
  } finally {
    setTimeout(poll, 1000);
  }
}
poll();
</script>
</body>
</html>
)page";

}  // namespace

std::string_view status_page_html() noexcept { return page; }

}  // namespace seedproxy::proxy
