"""``triggerlab ope --logs`` on the trigger service's decision log, with a feedback file."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from actors import PolicyConfig
from actors.registry import make_policy
from actors.service.endpoints import Endpoint
from actors.service.files import write_event_log
from actors.service.runner import ShardRunner
from actors.service.shard import ShardConfig
from experiments.cli import main
from policies.triggers import default_rules

ARMS = ["plain", "question", "dont_miss"]


@pytest.fixture(scope="module")
def service_log(tmp_path_factory):
    """A decision log whose fires a uniform policy chose (epsilon-greedy, epsilon 1), and
    feedback: a send with the 'question' subject earns 1, the others 0."""
    from experiments.loadtest.generator import behavior_stream

    s = behavior_stream(1500, 30_000, seed=4, source="synthetic")
    root = tmp_path_factory.mktemp("svc")
    write_event_log(root / "events.parquet", [s.events])
    cfg = ShardConfig(default_rules(), s.subscribers,
                      PolicyConfig("epsilon_greedy", {"arm_names": ARMS, "epsilon": 1.0}),
                      seed=2, grace=600)
    runner = ShardRunner(cfg, Endpoint.parse(str(root / "events.parquet")), shard=0,
                         partitions=[0], checkpoint_dir=str(root / "ck"))
    while runner.step().messages:
        pass
    runner.advance_to(int(s.events.time.max()) + 4 * 86400)
    runner.close()
    log = pd.concat([pd.read_parquet(p) for p in (root / "ck" / "decisions").rglob("*.parquet")])
    fires = log[log["kind"] == "fire"]
    fb = pd.DataFrame({"trigger_id": fires["trigger_id"],
                       "reward": (fires["arm"] == "question").astype(float)})
    fb.to_parquet(root / "feedback.parquet")
    return root, fires


def test_ope_reads_the_service_log(service_log, tmp_path, capsys) -> None:
    root, fires = service_log
    assert len(fires) > 150 and set(fires["arm"]) == set(ARMS)
    assert np.allclose(fires["propensity"], 1 / 3)
    pol = tmp_path / "mostly_question.yaml"
    pol.write_text("name: ab\narms: [question, plain, dont_miss]\nweights: [0.9, 0.05, 0.05]\n"
                   "decides: subject_style\n")
    capsys.readouterr()
    assert main(["ope", "--logs", str(root / "ck" / "decisions"), "--policy", str(pol),
                 "--feedback", str(root / "feedback.parquet")]) == 0
    out = capsys.readouterr().out
    assert f"{len(fires):,} fires chosen by epsilon_greedy (versions [0])" in out
    rows = {k: float(v) for k, v in re.findall(r"^(ips|snips|dm|dr)\s+([\d.]+)\s+\[", out, re.M)}
    assert set(rows) == {"ips", "snips", "dm", "dr"}
    # the truth: the share of these subscribers the target A/B sends 'question'
    target = make_policy("ab", {"arms": ["question", "plain", "dont_miss"],
                                "weights": [0.9, 0.05, 0.05]},
                         decides="subject_style", reward="click", seed=0)
    truth = float(np.mean(target.assign(fires["subscriber"].to_numpy("int64")) == 0))
    for method, value in rows.items():
        assert value == pytest.approx(truth, rel=0.2), method
    # IPS by hand: reward x 1[target's arm = logged arm] / propensity
    a = target.assign(fires["subscriber"].to_numpy("int64"))
    logged = fires["arm_index"].map({0: 1, 1: 0, 2: 2}).to_numpy()   # log order -> target's
    r = (fires["arm"] == "question").to_numpy(float)
    assert rows["ips"] == pytest.approx(float(np.mean(r * (a == logged) * 3)), abs=6e-6)
    assert f"observed value: {r.mean():.5f}" in out


@pytest.mark.parametrize(("extra", "message"), [
    ([], r"--feedback: a service decision log has no rewards"),
    (["--feedback", "{dir}/none.parquet"], r"--feedback: '.*none\.parquet' does not exist"),
    (["--feedback", "{bad}"], r"--feedback: expected columns trigger_id, reward; .* lacks "
                              r"\['reward'\]"),
    (["--feedback", "{nan}"], r"--feedback: reward: expected finite numbers"),
])
def test_bad_service_ope_input(service_log, tmp_path, capsys, extra, message) -> None:
    root, _ = service_log
    pol = tmp_path / "p.yaml"
    pol.write_text("name: ab\narms: [question, plain]\ndecides: subject_style\n")
    pd.DataFrame({"trigger_id": ["a"]}).to_csv(tmp_path / "bad.csv", index=False)
    pd.DataFrame({"trigger_id": ["a"], "reward": ["x"]}).to_csv(tmp_path / "nan.csv",
                                                               index=False)
    args = [a.format(dir=tmp_path, bad=tmp_path / "bad.csv", nan=tmp_path / "nan.csv")
            for a in extra]
    capsys.readouterr()
    assert main(["ope", "--logs", str(root / "ck" / "decisions"), "--policy", str(pol),
                 *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and re.search(message, err), err
