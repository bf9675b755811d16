// The static help page (fallback.html): the operators' curated answers and the regions' status, then back to
// the app when a region's /health answers. It shows no user data and calls no API but the public /health.

import { FIRST_PROBE_S, curatedEntries, firstHealthy, probeDelayS } from "./outage.js";

const $ = (id) => document.getElementById(id);
const probe = { endpoints: [], attempt: 0, timer: null, lastAt: 0, running: false };

function regionName(url) {
  return url.replace(/^https:\/\/[^.]+\.execute-api\.([^.]+)\..*/, "$1");
}

async function showCuratedAnswers() {
  let entries = [];
  try {
    const response = await fetch("curated.json", { cache: "no-store" });
    if (response.ok) entries = curatedEntries(await response.json());
  } catch (_) { /* no file, or not JSON: the empty note says so */ }
  const list = $("curated");
  list.replaceChildren();
  for (const { question, answer } of entries) {
    const term = document.createElement("dt");
    term.textContent = question;
    const detail = document.createElement("dd");
    detail.textContent = answer;
    list.append(term, detail);
  }
  $("curated-empty").hidden = entries.length > 0;
}

function schedule() {
  clearTimeout(probe.timer);
  const delayS = probeDelayS(probe.attempt);
  probe.attempt += 1;
  probe.timer = setTimeout(check, delayS * 1000);
  return delayS;
}

async function check() {
  if (probe.running) return;
  probe.running = true;
  $("check-now").disabled = true;
  probe.lastAt = Date.now();
  $("probe-status").textContent = `Checking ${probe.endpoints.length} region(s)…`;
  const healthy = await firstHealthy(probe.endpoints);
  probe.running = false;
  if (healthy !== null) {
    $("probe-status").textContent = `${regionName(probe.endpoints[healthy])} answers again: back to the app…`;
    location.replace("./");
    return;
  }
  const waitS = schedule();
  const at = new Date(Date.now() + waitS * 1000).toLocaleTimeString();
  $("probe-status").textContent = `Checked ${new Date(probe.lastAt).toLocaleTimeString()}: `
    + `${probe.endpoints.map(regionName).join(", ")} not answering. Next check around ${at}.`;
  // "Check now" too stays at least FIRST_PROBE_S apart from the last probe.
  setTimeout(() => { $("check-now").disabled = false; }, FIRST_PROBE_S * 1000);
}

async function main() {
  $("check-now").disabled = true;
  $("check-now").addEventListener("click", () => {
    if (Date.now() - probe.lastAt >= FIRST_PROBE_S * 1000) check();
  });
  await showCuratedAnswers();
  const response = await fetch("config.json", { cache: "no-store" });
  if (!response.ok) throw new Error("config.json is missing");
  probe.endpoints = (await response.json()).apiEndpoints || [];
  const waitS = schedule();
  $("probe-status").textContent = `Checking the regions again in about ${Math.round(waitS)} s.`;
  setTimeout(() => { $("check-now").disabled = false; }, FIRST_PROBE_S * 1000);
}

main().catch((error) => {
  $("probe-status").textContent = `This page could not check the regions: ${error.message}`;
});
