"""GET /metrics, scraped and parsed as Prometheus does, agrees with the request log."""

from __future__ import annotations

import collections

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from test_server import make_service
from leeroo_local.server import BackgroundServer, ServerSettings, create_app

HELLO = [{"role": "user", "content": "hello"}]


@pytest.fixture(scope="module")
def served(tmp_path_factory, tiny_dir):
    service = make_service(tmp_path_factory.mktemp("metrics"), tiny_dir)
    settings = ServerSettings(port=0)
    server = BackgroundServer(create_app(service, settings), settings).start()
    yield service, server.url
    server.stop()
    service.close()


def scrape(url: str) -> dict[str, list]:
    resp = httpx.get(url + "/metrics", timeout=10)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    return {f.name: f.samples for f in text_string_to_metric_families(resp.text)}


def value(samples, name: str, **labels) -> float:
    return sum(s.value for s in samples if s.name == name
               and all(s.labels.get(k) == v for k, v in labels.items()))


def test_metrics_match_the_request_log(served):
    service, url = served
    for expert, stream in (("tiny-1", False), ("tiny-2", True), ("tiny-1", True), ("auto", False)):
        body = {"model": expert, "messages": HELLO, "max_tokens": 4, "stream": stream}
        assert httpx.post(url + "/v1/chat/completions", json=body, timeout=60).status_code == 200
    assert httpx.post(url + "/v1/completions", timeout=60,
                      json={"model": "tiny-3", "prompt": "hi", "max_tokens": 3}).status_code == 200
    assert httpx.post(url + "/v1/chat/completions", timeout=60,
                      json={"model": "tiny-1", "messages": HELLO, "top_k": -1}).status_code == 422
    assert httpx.post(url + "/v1/chat/completions", timeout=60,
                      json={"model": "nope", "messages": HELLO}).status_code == 404

    rows = service.log.recent(100)
    metrics = scrape(url)
    requests = metrics["leeroo_requests"]
    assert value(requests, "leeroo_requests_total") == len(rows) == 7
    assert value(requests, "leeroo_requests_total", outcome="ok") == sum(not r["error"] for r in rows)
    assert value(requests, "leeroo_requests_total", kind="complete") == sum(
        r["kind"] == "complete" for r in rows)
    errors = metrics["leeroo_errors"]
    assert value(errors, "leeroo_errors_total", kind="refused_422") == 1
    assert value(errors, "leeroo_errors_total", kind="refused_404") == 1

    per_expert = collections.Counter(r["expert"] for r in rows if r["expert"])
    for expert, n in per_expert.items():
        assert value(metrics["leeroo_route_decisions"], "leeroo_route_decisions_total",
                     expert=expert) == n
    assert value(metrics["leeroo_route_decisions"], "leeroo_route_decisions_total",
                 how="policy") == 1  # the one `auto` request

    answered = [r for r in rows if not r["error"]]
    ttft = metrics["leeroo_time_to_first_token_seconds"]
    assert value(ttft, "leeroo_time_to_first_token_seconds_count") == sum(
        bool(r["ttft_s"]) for r in answered)
    assert value(ttft, "leeroo_time_to_first_token_seconds_sum") == pytest.approx(
        sum(r["ttft_s"] for r in answered), rel=1e-6)
    tokens = metrics["leeroo_tokens"]
    assert value(tokens, "leeroo_tokens_total", type="completion") == sum(
        r["completion_tokens"] for r in answered)
    assert value(metrics["leeroo_energy_joules"], "leeroo_energy_joules_total") == pytest.approx(
        sum(r["energy_j"] for r in answered), rel=1e-6)
    loads = sum(1 for r in answered if r["load_s"])
    assert value(metrics["leeroo_expert_loads"], "leeroo_expert_loads_total") == loads >= 3

    loaded = {s.labels["expert"]: s.value for s in metrics["leeroo_expert_loaded"]}
    assert set(loaded) == {"tiny-1", "tiny-2", "tiny-3"} and sum(loaded.values()) >= 1
    assert value(metrics["leeroo_queue_depth"], "leeroo_queue_depth") == 0
    assert value(metrics["leeroo_log_pending_rows"], "leeroo_log_pending_rows") == 0


def test_metrics_need_the_key_when_one_is_set(tmp_path, tiny_dir):
    service = make_service(tmp_path, tiny_dir)
    settings = ServerSettings(port=0, api_key="a-long-enough-key")
    server = BackgroundServer(create_app(service, settings), settings).start()
    try:
        assert httpx.get(server.url + "/metrics", timeout=10).status_code == 401
        ok = httpx.get(server.url + "/metrics", timeout=10,
                       headers={"authorization": "Bearer a-long-enough-key"})
        assert ok.status_code == 200 and "leeroo_requests_total" in ok.text
    finally:
        server.stop()
        service.close()
