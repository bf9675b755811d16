"""web/outage.js (the static fallback's pure parts) run by Node: the probe backoff never polls faster than every
few seconds and caps near 30 s, the curated answers file is shown only as question/answer text, and the /health
probe finds the first region that answers (a fake fetch: no network)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.unit.web.node import run_module


def run(script: str) -> Any:
    """Runs an ES module that imports web/outage.js as `outage` and prints one JSON value."""
    return run_module("outage.js", "outage", script)


def test_the_probe_waits_at_least_5_s_doubles_and_caps_near_30_s_with_jitter() -> None:
    delays = run(
        "const low = () => 0, high = () => 0.999999, mid = () => 0.5;\n"
        "console.log(JSON.stringify([0, 1, 2, 3, 4, 10].map((n) => "
        "[outage.probeDelayS(n, low), outage.probeDelayS(n, mid), outage.probeDelayS(n, high)])));"
    )
    assert [mid for _, mid, _ in delays] == [5, 10, 20, 30, 30, 30]
    assert all(low >= 5 for low, _, _ in delays)  # never faster than every few seconds, even jittered down
    assert delays[1][0] == pytest.approx(8) and delays[1][2] == pytest.approx(12, abs=1e-4)  # +-20 %
    assert max(high for _, _, high in delays) <= 36


def test_curated_entries_keep_only_question_and_answer_text() -> None:
    data = {
        "answers": [
            {"question": "  Is it down? ", "answer": " Yes, for now. ", "extra": "<b>dropped</b>"},
            {"question": "", "answer": "no question"},
            {"question": "no answer"},
            {"question": 3, "answer": "not text"},
            {"question": "too long?", "answer": "x" * 4001},
            None,
        ]
    }
    entries = run(f"console.log(JSON.stringify(outage.curatedEntries({json.dumps(data)})));")
    assert entries == [{"question": "Is it down?", "answer": "Yes, for now."}]
    assert run("console.log(JSON.stringify([null, {}, {answers: 'x'}, []].map(outage.curatedEntries)));") == [
        [],
        [],
        [],
        [],
    ]


def test_first_healthy_is_the_first_region_whose_health_answers_and_null_when_none_does() -> None:
    results = run(
        """
const calls = [];
const fake = (up) => async (url, options) => {
  calls.push([url, options.cache]);
  if (!up.some((base) => url.startsWith(base))) throw new TypeError("Failed to fetch");
  return { ok: true, status: 200 };
};
const endpoints = ["https://a.example/v1/", "https://b.example/v1"];
const none = await outage.firstHealthy(endpoints, { fetchImpl: fake([]) });
const second = await outage.firstHealthy(endpoints, { fetchImpl: fake(["https://b.example"]) });
const failing = await outage.firstHealthy(endpoints, { fetchImpl: async () => ({ ok: false, status: 503 }) });
const hanging = await outage.firstHealthy(["https://c.example"], {
  timeoutMs: 50,
  fetchImpl: (url, { signal }) => new Promise((_, reject) => {
    signal.addEventListener("abort", () => reject(new Error("aborted")));
  }),
});
console.log(JSON.stringify({ none, second, failing, hanging, calls }));
"""
    )
    assert results["none"] is None and results["failing"] is None and results["hanging"] is None
    assert results["second"] == 1
    assert ["https://a.example/v1/health", "no-store"] in results["calls"]
    assert ["https://b.example/v1/health", "no-store"] in results["calls"]
