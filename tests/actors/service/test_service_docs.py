"""docs/service.md's examples run as written (a real nats-server, the mock Kafka)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from actors.service.partitioning import partition_of

ROOT = Path(__file__).resolve().parents[3]


def test_service_doc_examples_run(nats_server, capsys) -> None:
    text = (ROOT / "docs" / "service.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) == 4
    ns: dict = {}
    for block in blocks:
        exec(compile(block, "docs/service.md", "exec"), ns)
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("2 time expected seconds since the epoch")
    assert out[1].startswith("3 message not an Arrow IPC stream nor a JSON object")
    owned = int(np.isin(partition_of(np.arange(100), 4), [0, 1]).sum())
    assert out[2] == f"[0, 1] {owned}"
    assert ns["decoded"].events.subscriber.tolist() == [7]
    assert len(ns["got"]) == 100                         # Kafka: every JSON event
    # the watermark example: released in time order, the reminder decided by `until`
    assert ns["released"].type_names() == ["add_to_cart", "product_view"]
    assert ns["until"] == ns["t0"] + 25 * 3600 - 300
    assert ns["reminders"].to_pandas()["rule"].tolist() == ["cart_abandonment_24h"]
