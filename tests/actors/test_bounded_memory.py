"""Bounded memory at scale gives the same results: a campaign tick's truth computed in
chunks equals the truth computed at once."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import small_config

import actors.truth
from actors import run_simulation


def _same(a, b) -> None:
    pd.testing.assert_frame_equal(a.metrics, b.metrics, check_exact=True)
    pd.testing.assert_frame_equal(a.truth, b.truth, check_exact=True)
    pd.testing.assert_frame_equal(a.decisions, b.decisions, check_exact=True)
    pd.testing.assert_frame_equal(a.events, b.events, check_exact=True)


def test_truth_in_chunks_equals_truth_at_once(small_inline_result,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(actors.truth, "TRUTH_CHUNK", 37)
    _same(run_simulation(small_config(), executor="inline", shards=1), small_inline_result)
