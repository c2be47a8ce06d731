"""The README's "Policies" example runs as written (with stand-ins for the user's data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

README = Path(__file__).resolve().parents[2] / "README.md"


def test_policies_readme_example_runs() -> None:
    section = README.read_text(encoding="utf-8").split("## Policies", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    df = pd.DataFrame({
        "lifecycle_stage": ["prospect", "customer", "lapsed"], "engagement_score": [0.1, 0.5, 0.9],
        "conversion_readiness": 0.5, "educational_seeker": False, "price_sensitivity": 0.3,
        "days_since_engagement": 3.0, "preferred_hour": 9, "subscribed": True,
    })
    ns = {"rewards": np.random.default_rng(0).integers(0, 2, 1000), "subscribers_df": df,
          "clicks": np.array([0, 1, 0])}
    exec(code, ns)
    ts, restored = ns["ts"], ns["restored"]
    assert ts.successes.sum() + ts.failures.sum() == 1002
    np.testing.assert_array_equal(restored.successes, ts.successes)
    assert ns["lin"].A[:, 0, 0].sum() == 3 + 3 * 1.0       # bias column seen 3 times + ridge
