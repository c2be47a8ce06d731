"""The flow rows of the calibration: the shipped journeys against published flow figures.

:func:`run_flows` simulates the default population for 30 days through the runtime
(:func:`actors.run_simulation`, inline, 1-hour ticks) with the shipped journey set
(``policies/triggers/example_journeys.yaml``: a cart-abandonment series, a win-back after
30 days of silence, a price-drop alert fanned out from the world's catalog events and a
welcome series) and the weekly newsletter, no holdout, attribution window 5 days (Klaviyo's
default). :func:`flow_metrics` measures, per email of a journey (each email gets at most
one open, click and order in the simulator, so per-email counts are unique rates):

* ``cart_series_placed_order``: orders attributed to the cart series per email sent;
* ``winback_click``: clicks per win-back email;
* ``winback_reactivation``: win-back recipients who place any order (organic included)
  within 14 days of their first win-back email (the journey's goal window), per recipient;
* ``price_drop_click``: clicks per price-drop alert.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import pandas as pd

from sim.clock import DAY

__all__ = ["FLOW_ROWS", "REACTIVATION_DAYS", "FlowRun", "flow_metrics", "run_flows"]

_KLAVIYO = "Klaviyo 2024 Benchmark Report (2023 data)"

#: (metric key, label, published figure, low, high, source) -- the flow rows of
#: docs/calibration.md.
FLOW_ROWS: tuple[tuple[str, str, str, float, float, str], ...] = (
    ("cart_series_placed_order", "abandoned-cart flow placed-order rate per email",
     "3.33 % average", 0.015, 0.07, f"{_KLAVIYO}, as quoted by secondary pages"),
    ("winback_click", "win-back flow click rate per email",
     "2.60 % (lapsed purchaser); 4–7 %", 0.015, 0.07,
     "Omnisend Ecommerce Statistics Report H1 2021; Klaviyo blog \"Measuring flow "
     "performance\" (undated)"),
    ("winback_reactivation", "win-back recipients ordering within 14 d",
     "3–10 % (best 10–15 %)", 0.02, 0.15,
     "retention-marketing blog (Propel, 2026): a practitioners' figure, not a study"),
    ("price_drop_click", "price-drop alert click rate per email",
     "none published; all flows 5.31 % (top 10 %: 12.98 %)", 0.03, 0.13,
     f"{_KLAVIYO}, all flows (no price-drop figure found)"),
)
#: Days after a first win-back email in which an order counts as a reactivation.
REACTIVATION_DAYS = 14


@dataclass
class FlowRun:
    """What :func:`flow_metrics` needs of a flows run: the per-source metric totals,
    the win-back's first send per recipient and every purchase."""

    totals: pd.Series          # (source, metric) -> value
    winback_first: pd.Series   # subscriber -> time of the first win-back email, s
    purchases: pd.DataFrame    # subscriber, time
    end: int                   # the run's end, s


def run_flows(subscribers: int = 20_000, *, seed: int = 2024, days: int = 30,
              preset: str = "retail") -> FlowRun:
    """Simulate the shipped journeys (see the module docstring) and keep what the flow
    rows measure."""
    from actors import CampaignConfig, SimulationConfig, run_simulation
    from policies.triggers import load_rules

    rules = load_rules(str(resources.files("policies.triggers").joinpath(
        "example_journeys.yaml")))
    cfg = SimulationConfig(seed=seed, subscribers=subscribers, preset=preset,
                           days=float(days), tick_seconds=3600, rules=rules,
                           campaign=CampaignConfig(every_days=7, local_hour=10),
                           holdout_fraction=0.0, reward="order",
                           reward_window_seconds=5 * DAY, record_decisions=True,
                           record_events=True)
    res = run_simulation(cfg, progress=False)
    totals = res.metrics.groupby(["source", "metric"])["value"].sum()
    d = res.decisions
    assert d is not None and res.events is not None
    wb = d[d["source"] == "winback"]
    first = wb.groupby("subscriber")["time"].min()
    ev = res.events
    buys = ev.loc[ev["type"] == "purchase_completed", ["subscriber", "time"]].reset_index(drop=True)
    return FlowRun(totals, first, buys, int(cfg.start + days * DAY))


def flow_metrics(run: FlowRun) -> dict[str, float]:
    """Measured flow rates keyed like :data:`FLOW_ROWS`, plus each journey's sends
    (``<rule>_sends``) and the win-back recipients counted (NaN: nothing to measure)."""
    t = run.totals

    def per_email(source: str, metric: str) -> float:
        sends = float(t.get((source, "sends"), 0.0))
        return float(t.get((source, metric), 0.0)) / sends if sends else float("nan")

    out = {f"{r}_sends": float(t.get((r, "sends"), 0.0))
           for r in ("cart_series", "winback", "price_drop_alert", "welcome_series")}
    out["cart_series_placed_order"] = per_email("cart_series", "orders")
    out["winback_click"] = per_email("winback", "clicks")
    out["price_drop_click"] = per_email("price_drop_alert", "clicks")
    # recipients whose first win-back email leaves the whole window inside the run
    first = run.winback_first[run.winback_first + REACTIVATION_DAYS * DAY <= run.end]
    out["winback_recipients"] = float(len(first))
    if len(first):
        buys = run.purchases.merge(first.rename("first").reset_index(), on="subscriber")
        hit = buys[(buys["time"] > buys["first"])
                   & (buys["time"] <= buys["first"] + REACTIVATION_DAYS * DAY)]
        out["winback_reactivation"] = float(hit["subscriber"].nunique() / len(first))
    else:
        out["winback_reactivation"] = float("nan")
    return out
