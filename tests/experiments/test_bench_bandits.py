"""The bandits benchmark runs end to end on a small problem and reports sane figures."""

from __future__ import annotations

import json

import pytest

from experiments.bench import bandits


def test_bandits_benchmark_small(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("mabwiser")
    assert bandits.main(["--rounds", "20000", "--seeds", "2", "--contextual-rounds", "4000",
                         "--policies", "beta_ts,epsilon_greedy", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert figures["uniform_random_regret"] == pytest.approx(400.0)
    for name in ("beta_ts", "epsilon_greedy"):
        assert 0 < figures[f"{name}_regret"] < figures["uniform_random_regret"]
        assert figures[f"{name}_rounds_per_s"] > 0
        assert figures[f"mabwiser_{name}_regret"] > 0
        assert figures[f"{name}_speedup_vs_mabwiser"] == pytest.approx(
            figures[f"{name}_rounds_per_s"] / figures[f"mabwiser_{name}_rounds_per_s"])
    for name in ("linucb", "linear_ts", "logistic_ts"):
        assert figures[f"{name}_d20_regret"] < figures[f"{name}_d20_random_regret"]


def test_bandits_benchmark_rejects_unknown_policy() -> None:
    with pytest.raises(SystemExit):
        bandits.main(["--policies", "nope"])
