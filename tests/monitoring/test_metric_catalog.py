"""The API serves the metrics of the catalog, and the runbook documents every one."""

from __future__ import annotations

import re
from pathlib import Path

from tests.monitoring.conftest import parse_metrics
from tests.support import Api
from vocalborn.monitoring import catalog

OPERATIONS = Path(__file__).parents[2] / "docs" / "OPERATIONS.md"


def test_the_api_serves_its_catalog_metrics_and_no_others(api: Api) -> None:
    api.client.get("/health")  # at least one request to count
    served = {name for (name, _labels) in parse_metrics(api.client.get("/metrics").text)}
    ours = {name for name in served if not name.startswith("process_")}
    # read at scrape time and present only when there is something to say
    optional = {"vocalborn_health_check_timestamp_seconds", "vocalborn_websocket_connections"}
    # the stream's and consumers' (only with NATS_URL and a stream), dead letters (only when some):
    # tests/events/test_event_metrics.py reads them
    optional |= {
        "vocalborn_events_stream_messages",
        "vocalborn_events_stream_bytes",
        "vocalborn_events_consumer_pending",
        "vocalborn_events_consumer_ack_pending",
        "vocalborn_events_consumer_redelivered",
        "vocalborn_event_dead_letters",
    }
    assert ours <= catalog.exposed_names("api")
    assert catalog.exposed_names("api") - optional <= ours


def test_the_runbook_documents_every_metric_with_its_type_and_labels() -> None:
    text = OPERATIONS.read_text()
    for spec in catalog.METRICS:
        row = re.search(rf"^\|\s*`{re.escape(spec.name)}`\s*\|(.*)$", text, re.M)
        assert row, f"{spec.name} is not in the metrics table of docs/OPERATIONS.md"
        cells = row.group(1)
        assert spec.kind in cells, spec.name
        for label in spec.labels:
            assert label in cells, (spec.name, label)
