// The sandbox's status page (make dev only): GET /_sandbox/status every 2 s, drawn as a picture.
// Every value is set with textContent or an attribute: nothing from the response becomes markup.
// In AWS there is no /_sandbox (the page is not deployed); if it is ever served without one, it says so.

const REFRESH_MS = 2000;
const $ = (id) => document.getElementById(id);
const STATES = ["uploading", "ingesting", "ready", "failed"];
const ANSWERS = [["Failovers", "failovers"], ["Hedges", "hedges"], ["DegradedAnswers", "degraded"],
                 ["CuratedAnswers", "curated"], ["GreetingAnswered", "greetings"], ["BreakerOpened", "breakers opened"]];

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = String(text);
  return node;
}

// A horizontal bar: `value` of `max`, its width a fraction of the track (CSSOM, allowed by the CSP).
function bar(label, value, max, className) {
  const row = el("div", `bar-row ${className || ""}`);
  row.append(el("span", "bar-label", label));
  const track = el("span", "bar-track");
  const fill = el("span", "bar-fill");
  fill.style.width = `${Math.min(100, max > 0 ? (100 * value) / max : 0)}%`;
  track.append(fill);
  row.append(track, el("span", "bar-value", value));
  return row;
}

function breakerLights(targets) {
  const list = el("ul", "targets");
  for (const target of targets) {
    const item = el("li", "target");
    const light = el("span", `light ${target.breaker}`);
    light.dataset.state = target.breaker;
    light.title = `breaker ${target.breaker.replace("_", "-")}`;
    light.setAttribute("aria-label", light.title);
    item.append(light, el("span", "target-name", target.target));
    const counts = Object.entries(target.breakers).map(([state, n]) => `${n} ${state.replace("_", "-")}`).join(", ");
    const limit = target.limit === null ? "no environment yet" : `AIMD limit ${target.limit}`;
    item.append(el("span", "target-detail", `${limit}; in flight ${target.in_flight}` +
      (target.paused_s > 0 ? `; paused ${target.paused_s} s` : "") + (counts ? ` (${counts})` : "")));
    list.append(item);
  }
  return list;
}

function sparkline(series, bucketS) {
  const box = el("div", "sparkline");
  box.title = `failovers per ${bucketS} s, oldest first`;
  const max = Math.max(1, ...series);
  for (const count of series) {
    const column = el("span", "spark");
    column.style.height = `${(100 * count) / max}%`;
    column.title = String(count);
    box.append(column);
  }
  return box;
}

function ingestBar(ingest) {
  const total = STATES.reduce((sum, state) => sum + (ingest[state] || 0), 0);
  const stacked = el("div", "stacked");
  const legend = el("div", "legend");
  for (const state of STATES) {
    const count = ingest[state] || 0;
    if (total > 0 && count > 0) {
      const part = el("span", `part ${state}`);
      part.style.width = `${(100 * count) / total}%`;
      part.title = `${count} ${state}`;
      stacked.append(part);
    }
    const key = el("span", `key ${state}`, `${state} ${count}`);
    key.dataset.state = state;
    legend.append(key);
  }
  if (total === 0) stacked.append(el("span", "hint", "no documents"));
  return [stacked, legend];
}

function regionCard(name, region, report) {
  const card = el("section", `card region-card ${region.up ? "up" : "down"}`);
  card.dataset.region = name;
  const head = el("div", "card-head");
  head.append(el("h2", "", name), el("span", `badge ${region.up ? "up" : "down"}`, region.up ? "up" : "down"));
  card.append(head);

  card.append(el("h3", "", `Model targets (${region.environments} chat environments)`), breakerLights(region.targets));

  card.append(el("h3", "", `Answers, last ${Math.round(report.window_s / 60)} min`));
  const counts = el("dl", "counts");
  for (const [metric, label] of ANSWERS) {
    const pair = el("div", "count");
    pair.dataset.metric = metric;
    pair.append(el("dt", "", label), el("dd", "", region.answers[metric] ?? 0));
    counts.append(pair);
  }
  card.append(counts, sparkline(region.failovers, report.bucket_s));

  card.append(el("h3", "", "Jobs queue"));
  const queue = region.queue;
  const scale = Math.max(10, queue.depth, queue.in_flight, queue.dlq_depth);
  card.append(bar("waiting", queue.depth, scale, "queue-depth"), bar("in flight", queue.in_flight, scale),
              bar("DLQ", queue.dlq_depth, scale, queue.dlq_depth > 0 ? "alarm" : ""));
  card.append(el("p", "hint", queue.oldest_queued_job_s === null ? "no job waiting"
                                                                 : `oldest waiting job ${queue.oldest_queued_job_s} s`));

  card.append(el("h3", "", "Ingest"), ...ingestBar(region.ingest));
  return card;
}

function tokenGauges(tokens) {
  const list = $("token-users");
  list.replaceChildren();
  $("tokens-empty").hidden = tokens.users.length > 0;
  for (const user of tokens.users) {
    const item = el("li", "token-user");
    const budget = tokens.budget || 0;
    const gauge = el("meter", "gauge");
    gauge.min = 0;
    gauge.max = budget > 0 ? budget : Math.max(1, user.used);
    gauge.high = gauge.max * 0.8;
    gauge.value = user.used;
    const regions = Object.entries(user.by_region).map(([region, n]) => `${region} ${n}`).join(", ");
    item.append(el("span", "token-name", user.user), gauge,
                el("span", "token-count", budget > 0 ? `${user.used} / ${budget}` : `${user.used} (no budget)`),
                el("span", "hint", regions));
    list.append(item);
  }
}

function render(report) {
  $("status-error").hidden = true;
  $("regions").replaceChildren(...Object.entries(report.regions).map(([name, region]) => regionCard(name, region, report)));
  tokenGauges(report.tokens);
  $("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
}

function showError(text) {
  $("status-error").textContent = text;
  $("status-error").hidden = false;
}

async function refresh() {
  try {
    const response = await fetch("/_sandbox/status", { cache: "no-store" });
    const type = response.headers.get("Content-Type") || "";
    if (!response.ok || !type.startsWith("application/json")) {
      showError("local only: this page reads the sandbox's /_sandbox/status (make dev); it is not part of a deployment.");
      return;
    }
    render(await response.json());
  } catch (error) {
    showError(`the sandbox does not answer (${error.message}); retrying`);
  } finally {
    setTimeout(refresh, REFRESH_MS);
  }
}

refresh();
