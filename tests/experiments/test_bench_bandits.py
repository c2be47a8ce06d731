"""The bandits benchmark runs end to end on a small problem and reports sane figures."""

from __future__ import annotations

import json

import numpy as np
import pytest

from experiments.bench import bandits
from experiments.bench._reward_tape import RewardTape, reward_tape_reference


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
    # paired comparison figures: per-seed regrets, their mean, s.e. and paired difference
    for name in ("beta_ts", "epsilon_greedy"):
        ours = np.array(figures[f"{name}_regret_per_seed"])
        theirs = np.array(figures[f"mabwiser_{name}_regret_per_seed"])
        assert ours.shape == theirs.shape == (2,)
        assert figures[f"{name}_regret"] == pytest.approx(ours.mean(), abs=1e-3)
        assert figures[f"mabwiser_{name}_regret"] == pytest.approx(theirs.mean(), abs=1e-3)
        assert figures[f"{name}_regret_se"] == pytest.approx(ours.std(ddof=1) / np.sqrt(2),
                                                             abs=1e-3)
        d = ours - theirs
        assert figures[f"{name}_regret_diff_vs_mabwiser"] == pytest.approx(d.mean(), abs=1e-3)
        assert figures[f"{name}_regret_diff_se"] == pytest.approx(d.std(ddof=1) / np.sqrt(2),
                                                                  abs=1e-3)


def test_bandits_benchmark_both_libraries_pull_exactly_the_horizon_from_one_tape(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Ours and MABWiser (K first-fit rounds + a short last batch) pull ``rounds`` times,
    and each arm's rewards in both runs are a prefix of that seed's tape."""
    mabwiser = pytest.importorskip("mabwiser.mab")
    logs: list[list[tuple[np.ndarray, np.ndarray]]] = []

    class Recording(RewardTape):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            logs.append([])

        def rewards(self, arms: np.ndarray) -> np.ndarray:
            out = super().rewards(arms)
            logs[-1].append((np.asarray(arms).copy(), out.copy()))
            return out

    monkeypatch.setattr(bandits, "RewardTape", Recording)
    bandits._run_ours(bandits.CONTEXT_FREE["beta_ts"], 3, 5000, 1000, 5000)
    bandits._run_mabwiser(mabwiser.LearningPolicy.ThompsonSampling(), 3, 5000, 1000)
    assert len(logs) == 2
    for log in logs:
        arms = np.concatenate([a for a, _ in log])
        rewards = np.concatenate([r for _, r in log])
        assert arms.size == 5000
        np.testing.assert_array_equal(
            rewards, reward_tape_reference(bandits.PROBS, 3, arms))
    assert [len(log) for log in logs] == [5, 6]      # MABWiser: first fit + 5 batches


def test_bandits_benchmark_compares_the_esp_rules_with_a_fixed_split(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """winning_path commits when its window ends, auto_winner when (if) a variant reaches
    90 % (not before 500 observations per arm, i.e. 5,000 rounds); both lose less than
    the fixed split, whose regret is the uniform one; winners and decision rounds are
    reported per seed (-1 and None: still testing)."""
    monkeypatch.setattr(bandits, "WINDOW_ROUNDS", 10_000)
    assert bandits.main(["--rounds", "40000", "--seeds", "2", "--contextual-rounds", "0",
                         "--policies", "ab,auto_winner,winning_path", "--no-mabwiser",
                         "--json"]) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert figures["ab_regret"] == pytest.approx(figures["uniform_random_regret"], rel=0.05)
    assert figures["winning_path_decided_at_round_per_seed"] == [10_000, 10_000]
    assert all(0 <= w < bandits.K for w in figures["winning_path_winner_per_seed"])
    for w, at in zip(figures["auto_winner_winner_per_seed"],
                     figures["auto_winner_decided_at_round_per_seed"], strict=True):
        assert (w, at) == (-1, None) or (0 <= w < bandits.K and 5_000 <= at < 40_000)
    for name in ("auto_winner", "winning_path"):
        assert figures[f"{name}_regret"] < figures["ab_regret"]


def test_bandits_benchmark_rejects_unknown_policy() -> None:
    with pytest.raises(SystemExit):
        bandits.main(["--policies", "nope"])
