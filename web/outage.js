// What the web UI does when neither region's API answers: the static help page (fallback.html, served by
// CloudFront from S3 with no API involved) shows the operators' curated answers, and probes each region's
// public /health with backoff until one answers. Pure parts first (tested with Node: tests/unit/web).

export const FIRST_PROBE_S = 5;   // never probe faster than this, whatever the backoff says
export const MAX_PROBE_S = 30;    // a user on the static page is back within about this long after a region returns
export const PROBE_TIMEOUT_MS = 5000;
const MAX_QUESTION = 500;
const MAX_ANSWER = 4000;

// The wait before probe number `attempt` (0 for the first): doubling from 5 s up to 30 s, each wait jittered
// by +-20 % so that the clients stuck on this page do not all knock at once when a region comes back.
export function probeDelayS(attempt, random = Math.random) {
  const base = Math.min(MAX_PROBE_S, FIRST_PROBE_S * 2 ** Math.max(0, attempt));
  return Math.max(FIRST_PROBE_S, base * (0.8 + 0.4 * random()));
}

// The curated answers file's entries fit to show: a question and an answer, both non-empty strings of sane
// length. Anything else (a malformed file, a wrong shape) yields no entries rather than a broken page.
export function curatedEntries(data) {
  const answers = data && Array.isArray(data.answers) ? data.answers : [];
  return answers.filter((entry) => entry
    && typeof entry.question === "string" && entry.question.trim() && entry.question.length <= MAX_QUESTION
    && typeof entry.answer === "string" && entry.answer.trim() && entry.answer.length <= MAX_ANSWER)
    .map((entry) => ({ question: entry.question.trim(), answer: entry.answer.trim() }));
}

// The index of the first endpoint whose /health answers 2xx within the timeout (all probed at once), or null.
export async function firstHealthy(endpoints, { fetchImpl = fetch, timeoutMs = PROBE_TIMEOUT_MS } = {}) {
  const probes = endpoints.map(async (base, index) => {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    try {
      const response = await fetchImpl(`${base.replace(/\/$/, "")}/health`,
                                       { cache: "no-store", signal: controller.signal });
      if (!response.ok) throw new Error(`health ${response.status}`);
      return index;
    } finally {
      clearTimeout(timer);
    }
  });
  try {
    return await Promise.any(probes);
  } catch (_) {
    return null;  // every probe failed: no region answers
  }
}

// True when this site itself answers (its curated answers file), so an API outage is not this browser being
// offline: only then is the static page worth switching to.
export async function siteAnswers(fetchImpl = fetch) {
  try {
    return (await fetchImpl("curated.json", { method: "HEAD", cache: "no-store" })).ok;
  } catch (_) {
    return false;
  }
}
