"""docs/service.md's examples run as written (a real nats-server, the mock Kafka)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from actors.service.partitioning import partition_of

ROOT = Path(__file__).resolve().parents[3]


def test_service_doc_examples_run(nats_server, capsys) -> None:
    text = (ROOT / "docs" / "service.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) == 5
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
    # the engine shard: a bad message dead-lettered, the reminder with its keyed arm
    assert out[3] == "time " + ns["step"].dead_letters[0].reason[:40]
    assert out[3].startswith("time expected")
    later = ns["later"].decisions
    assert later["trigger_id"].tolist() == [f"cart_abandonment_24h:7:{ns['t0']}"]
    assert later["arm"].tolist()[0] in ("plain", "question")
    assert 0 < later["propensity"].iloc[0] <= 1
    row = out[5].split()
    assert row[:3] == [later["trigger_id"].iloc[0], "fire", later["arm"].iloc[0]]
    assert float(row[3]) == pytest.approx(later["propensity"].iloc[0], abs=1e-6)


@pytest.mark.ray
def test_production_service_guide_runs(ray_session, tmp_path, monkeypatch, capsys) -> None:
    """docs/production.md section 7 up to the broker part: its code blocks and its
    ``triggerlab`` commands, in order, in one directory."""
    from actors.registry import make_policy
    from actors.service.decision_log import read_decision_log
    from actors.service.parity import comparable, reference_decisions
    from experiments.cli import main

    text = (ROOT / "docs" / "production.md").read_text(encoding="utf-8")
    section = text.split("## 7. Running the trigger service")[1]
    section = section.split("### Start it on a broker")[0]
    blocks = re.findall(r"```(python|bash)\n(.*?)```", section, re.S)
    assert [lang for lang, _ in blocks] == ["python", "bash", "python", "bash"]
    monkeypatch.chdir(tmp_path)
    ns: dict = {}
    outputs = []
    for lang, body in blocks:
        if lang == "python":
            exec(compile(body, "docs/production.md", "exec"), ns)
            continue
        for command in body.replace("\\\n", " ").splitlines():
            capsys.readouterr()
            assert main(shlex.split(command)[1:]) == 0, capsys.readouterr().err
            outputs.append(capsys.readouterr().out)
    serve, ope = outputs
    assert serve.splitlines()[0].startswith("serve: 2 shard(s) (ray) on Endpoint(file")
    assert serve.splitlines()[-1] == "serve: end of the log; checkpoint written"
    assert "| events 12,000 (" in serve and "dead letters 0 (bad 0, late 0, foreign 0)" in serve
    demo = ns["demo"]
    policy = make_policy("thompson", {"arm_names": ["plain", "question", "dont_miss"]},
                         decides="subject_style", reward="click", seed=0)
    ref = reference_decisions(demo.events, demo.subscribers, end=int(demo.events.time.max()),
                              policy=policy, seed=0)
    pd.testing.assert_frame_equal(comparable(read_decision_log("state/decisions")), ref)
    assert re.search(r"service decision log state/decisions: [\d,]+ fires chosen by thompson "
                     r"\(versions \[0\]\)", ope)
    assert set(re.findall(r"^(ips|snips|dm|dr) ", ope, re.M)) == {"ips", "snips", "dm", "dr"}
