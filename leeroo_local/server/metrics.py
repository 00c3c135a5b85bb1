"""GET /metrics in Prometheus' text format: what operators of llama-server and vLLM scrape.

Counters and histograms are fed by the same rows the request log gets (Service.record_request),
so /metrics and `leeroo-local logs` never disagree; gauges (queue depth, loaded experts, the log's
backlog) are read from the service when scraped.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

from ..runtime.service import NAMED, Service

# Seconds to the first token: a warm expert is tens of milliseconds, a cold load seconds.
TTFT_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Tokens a second while decoding: CPU experts of 0.3-9B parameters, and GPUs.
RATE_BUCKETS = (1, 2, 5, 10, 20, 40, 80, 160, 320)


def outcome(error: str | None) -> tuple[str, str | None]:
    """(outcome, error kind) of a log row: ok, refused (with the HTTP status), cancelled, error
    (with the exception's class name)."""
    if not error:
        return "ok", None
    if error.startswith("refused ("):
        return "refused", "refused_" + error[len("refused ("):].split(")")[0]
    if error.startswith("cancelled"):
        return "cancelled", "cancelled"
    return "error", error.split(":")[0].strip() or "error"


class Metrics:
    """The registry of one served app; `observe` takes a request's log row."""

    def __init__(self, service: Service):
        self.registry = r = CollectorRegistry(auto_describe=True)
        self.requests = Counter("leeroo_requests", "Requests, by kind (chat, complete) and outcome "
                                "(ok, refused, cancelled, error).", ["kind", "outcome"], registry=r)
        self.errors = Counter("leeroo_errors", "Requests that did not end with an answer, by kind "
                              "of error (refused_STATUS, cancelled, or the error's class).",
                              ["kind"], registry=r)
        self.routes = Counter("leeroo_route_decisions", "Requests sent to each expert, by how it "
                              "was chosen (policy, named).", ["expert", "quant", "how"], registry=r)
        self.ttft = Histogram("leeroo_time_to_first_token_seconds", "From the expert's start on "
                              "the request to its first token.", ["expert"],
                              buckets=TTFT_BUCKETS, registry=r)
        self.rate = Histogram("leeroo_decode_tokens_per_second", "Decode speed of each answer.",
                              ["expert"], buckets=RATE_BUCKETS, registry=r)
        self.loads = Counter("leeroo_expert_loads", "Loads of an expert that a request waited for.",
                             ["expert"], registry=r)
        self.load_seconds = Counter("leeroo_expert_load_seconds", "Seconds requests waited for "
                                    "those loads.", ["expert"], registry=r)
        self.tokens = Counter("leeroo_tokens", "Tokens of prompts and completions.",
                              ["expert", "type"], registry=r)
        self.energy = Counter("leeroo_energy_joules", "Energy of the answers, measured (RAPL, "
                              "NVML) or estimated.", ["expert", "method"], registry=r)
        r.register(_Gauges(service))
        service.observers.append(self.observe)

    def observe(self, row: dict) -> None:
        result, route = row.get("result"), row.get("route")
        route = route or (result.route if result is not None else None)
        kind, error = outcome(row.get("error"))
        self.requests.labels(row.get("kind", ""), kind).inc()
        if error:
            self.errors.labels(error).inc()
        if route is not None:
            how = "named" if route.reason == NAMED else "policy"
            self.routes.labels(route.expert, route.quant, how).inc()
        if result is None:
            return
        expert, t = result.expert, result.timings
        if t.ttft_s:
            self.ttft.labels(expert).observe(t.ttft_s)
        if t.tokens_per_s:
            self.rate.labels(expert).observe(t.tokens_per_s)
        if t.load_s:
            self.loads.labels(expert).inc()
            self.load_seconds.labels(expert).inc(t.load_s)
        for name in ("prompt", "completion"):
            self.tokens.labels(expert, name).inc(result.tokens.get(name, 0))
        self.energy.labels(expert, result.energy.method).inc(result.energy.joules)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _Gauges:
    """What is true at scrape time: each expert's queue and load state, the log's backlog."""

    def __init__(self, service: Service):
        self.service = service

    def describe(self):
        return []  # read at scrape time; nothing to check at registration

    def collect(self):
        rows = self.service.status()
        families = {
            "queued": GaugeMetricFamily("leeroo_queue_depth", "Requests waiting for each expert.",
                                        labels=["expert"]),
            "loaded": GaugeMetricFamily("leeroo_expert_loaded", "1 while the expert is loaded.",
                                        labels=["expert"]),
            "busy": GaugeMetricFamily("leeroo_expert_busy", "1 while the expert answers.",
                                      labels=["expert"]),
        }
        for row in rows:
            for key, family in families.items():
                family.add_metric([row["expert"]], float(row[key]))
        yield from families.values()
        log = self.service.log_state()
        pending = GaugeMetricFamily("leeroo_log_pending_rows", "Request log rows waiting in "
                                    "memory for a database that cannot be written.")
        pending.add_metric([], float(log.get("pending", 0)))
        yield pending
