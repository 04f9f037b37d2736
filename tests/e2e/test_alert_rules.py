"""The alert rules in docs/prometheus-alerts.yml watch metrics the ledger really serves."""

from __future__ import annotations

import re
import time
from pathlib import Path

import yaml

from tests.e2e.conftest import Server

RULES = Path(__file__).resolve().parents[2] / "docs" / "prometheus-alerts.yml"
# PromQL's own words, and label names, that the expressions hold beside metric names.
_NOT_METRICS = {"max", "sum", "rate", "by", "platform", "view", "state", "status"}


def test_every_alert_watches_a_metric_the_ledger_serves(server: Server) -> None:
    rules = yaml.safe_load(RULES.read_text())["groups"][0]["rules"]
    assert {r["alert"] for r in rules} >= {
        "LedgerPlatformFailing",
        "LedgerViewFailing",
        "LedgerViewLagging",
        "LedgerStockOversold",
    }
    with server.client() as client:
        # A platform and a delivery waiting for it, so that its figures are served too.
        client.put("/platforms/shop", json={"type": "webhook", "warehouses": {"main": "m"}})
        body = {"movement_id": "m1", "sku": "SKU-1", "kind": "invoice", "quantity": "1"}
        client.post("/movements", json=body)
        deadline = time.monotonic() + 60
        while True:  # until the dispatcher has taken the platform on
            served = client.get("/metrics").text
            if "ledger_platform_failing{" in served or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    names = {line.split("{")[0].split(" ")[0] for line in served.splitlines() if line[:1] != "#"}
    for rule in rules:
        assert {"alert", "expr", "labels", "annotations"} <= set(rule), rule
        words = set(re.findall(r"[a-z_][a-z0-9_]*", re.sub(r'"[^"]*"|\[[^]]*\]', "", rule["expr"])))
        metrics = words - _NOT_METRICS
        assert metrics, rule["alert"]
        assert metrics <= names, (rule["alert"], metrics - names)
