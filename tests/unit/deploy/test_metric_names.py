"""The Grafana dashboard and the Prometheus rules use the metric names the services
really expose: every raw ``meterwatch_*`` name they query is in the exposition that the
worker's, the API's and the notifier's own rendering code produces (from the counter
names the worker code increments), and every ``meterwatch:*`` name is a recording rule."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from api.metrics import ApiMetrics
from notifier.routes.metrics import render as notifier_render
from stream.metrics import WorkerMetrics
from stream.metrics import render as worker_render

ROOT = Path(__file__).resolve().parents[3]
OBS = ROOT / "deploy" / "observability"
RULES = yaml.safe_load((OBS / "prometheus" / "rules" / "meterwatch.rules.yml").read_text())
DASHBOARD = json.loads((OBS / "grafana" / "dashboards" / "meterwatch.json").read_text())
_NAME = re.compile(r"\b(meterwatch[a-zA-Z0-9_:]*)")


def _worker_metrics() -> WorkerMetrics:
    """A WorkerMetrics with every counter and gauge the worker code touches."""
    m = WorkerMetrics()
    source = "\n".join(f.read_text() for f in sorted((ROOT / "stream").glob("**/*.py")))
    for name in re.findall(r"(?:metrics|\bm)\.inc\(\s*\"([a-z_]+)\"", source):
        m.inc(name)
    for name in re.findall(r"(?:metrics|\bm)\.inc_labelled\(\s*\"([a-z_]+)\"", source):
        m.inc_labelled(name, "x")
    for name in re.findall(r"(?:metrics|\bm)\.set_gauge\(\s*\"([a-z_]+)\"", source):
        m.set_gauge(name, 1)
    assert {"readings_in", "dlq", "alerts"} <= set(m.counters) | set(m.labelled), "worker counters moved"
    return m


def exposed_names() -> set[str]:
    worker = _worker_metrics()
    text = worker_render(worker, "w1")
    api = ApiMetrics()
    api.observe("GET", "/v1/segments", 200, 0.01)
    pipeline = {"worker": {**{k: float(v) for k, v in worker.flat().items()}, "consumer_lag:w1": 0.0}}
    text += api.render(pipeline).decode()
    statuses = ("sent", "failed", "retry", "deferred", "suppressed", "gateway_down", "queued")
    text += notifier_render(
        {f"{c}_{s}": 1 for c in ("sms", "push") for s in statuses},
        {"due_queue": 0.0, "kafka_connected": 1.0, "kafka_lag": 0.0},
    ).decode()
    return {
        line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")
    }


def _rule_exprs() -> list[str]:
    return [r["expr"] for g in RULES["groups"] for r in g["rules"]]


def _dashboard_exprs() -> list[str]:
    return [t["expr"] for p in DASHBOARD["panels"] for t in p["targets"]]


def test_exposition_has_the_names_the_docs_promise() -> None:
    names = exposed_names()
    assert {
        "meterwatch_worker_readings_in_total",
        "meterwatch_worker_dlq_total",
        "meterwatch_worker_alerts_total",
        "meterwatch_worker_consumer_lag",
        "meterwatch_pipeline_readings_in_total",
        "meterwatch_api_request_duration_seconds_bucket",
        "meterwatch_notifier_notifications_total",
    } <= names


def test_rules_and_dashboard_use_real_names() -> None:
    real = exposed_names()
    recorded = {r["record"] for g in RULES["groups"] for r in g["rules"] if "record" in r}
    exprs = [re.sub(r'"[^"]*"', '""', e) for e in _rule_exprs() + _dashboard_exprs()]  # not label values
    used = {n for e in exprs for n in _NAME.findall(e)}
    unknown = {n for n in used if (n not in recorded if ":" in n else n not in real)}
    assert used and unknown == set()


def test_dashboard_shows_what_operations_need() -> None:
    titles = {p["title"] for p in DASHBOARD["panels"]}
    assert {
        "Readings per second",
        "Consumer lag per group",
        "Dead letters by reason",
        "Alerts per 100 customers by rule (24 h)",
        "Notifications by outcome",
        "API latency",
    } <= titles
    ids = [p["id"] for p in DASHBOARD["panels"]]
    assert len(ids) == len(set(ids))
    uids = {t["datasource"]["uid"] for p in DASHBOARD["panels"] for t in p["targets"]}
    provisioned = yaml.safe_load(
        (OBS / "grafana" / "provisioning" / "datasources" / "prometheus.yaml").read_text()
    )
    assert uids == {d["uid"] for d in provisioned["datasources"]}
