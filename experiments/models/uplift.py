"""Fit uplift models on a simulated randomized send/holdout and check them against the
simulator's true incremental effect.

:func:`simulate_uplift` runs one world: a campaign email to every subscriber each
``every_days`` days (no discount) up to ``send_day``; at ``send_day`` midnight UTC the
test email (a campaign with ``incentive``) goes to a random ``treated_share`` of the
subscribers still subscribed, the rest are held out; the world runs ``horizon_days``
more days. Recorded per subscriber subscribed at the send: history features from the
events up to the send (no peeking), the ``attributes`` columns of the subscriber table
at the send, sent or held out, the observed outcome (orders and revenue in
``(send, send + horizon_days]``), the truth (:func:`sim.incremental.incremental_orders`
of the email for *everyone*, and :func:`sim.truth.outlook`'s ``p_purchase`` without it)
and a random train/test split. Draws are keyed by (seed, subscriber, send day,
purpose ``assignment``), so a subscriber's group does not depend on the population's size.

:func:`uplift_report` fits :class:`~policies.segments.uplift.UpliftModel` and a purchase
propensity model (:func:`experiments.models.propensity.fit_propensity` on the held-out
training rows: the chance to buy within the window without the email) on the training
rows and compares, on the test rows, five rankings -- the model, the propensity model,
the truth (the true incremental orders), the true purchase probability and random -- by
the Spearman correlation with the truth, the Qini area
(:func:`policies.segments.qini.qini_area` of the observed outcome) and the true
incremental orders captured by sending to the top ``top`` share.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from policies.event_schema import EVENT_TYPES
from policies.events import EventBatch
from policies.segments import UpliftModel, history_features, qini_area, qini_curve
from sim import DAY, EmailBatch, Population, World
from sim.incremental import incremental_orders
from sim.presets import get_preset
from sim.rng import PURPOSES, KeyedRandom
from sim.truth import outlook

__all__ = ["PERSUADABLE", "UpliftSample", "captured", "plot_qini", "simulate_uplift",
           "uplift_report"]

#: Preset overrides of the "persuadable" world (docs/segments.md, "Uplift"): an inbox
#: that opens and clicks campaigns (open and click bases 0.5), purchase intent alike
#: across subscribers (Beta(15, 50): the retail mean 0.23, spread 0.05 instead of 0.15),
#: and a discount that multiplies the chance that a click ends in an order by
#: ``1 + 16 x incentive x price_sensitivity`` with price sensitivity U-shaped
#: (Beta(0.5, 0.5)): with a 30 % discount 1 to 5.8 times, by a trait that organic buying
#: does not depend on. (In the retail preset the email's orders and organic orders grow
#: with the same engagement and intent, so ranking by purchase propensity is nearly
#: ranking by uplift.)
PERSUADABLE: dict[str, float] = {"open_base_campaign": 0.5, "click_base_campaign": 0.5,
                                 "buy_base_campaign": 0.05, "incentive_buy_slope": 16.0,
                                 "intent_alpha": 15.0, "intent_beta": 50.0,
                                 "price_sensitivity_alpha": 0.5,
                                 "price_sensitivity_beta": 0.5}
_PURCHASE = EVENT_TYPES.code("purchase_completed")


@dataclass(frozen=True)
class UpliftSample:
    """A randomized send/holdout sample with truth; every Series/frame is indexed by
    ``subscriber`` (the subscribers subscribed at the send, ``now`` in s)."""

    now: int
    features: pd.DataFrame
    treated: pd.Series
    orders: pd.Series
    revenue: pd.Series
    truth: pd.DataFrame
    train: pd.Series
    treated_share: float
    horizon_days: int


def simulate_uplift(n: int, seed: int, *, preset: str | Mapping[str, Any] = "retail",
                    overrides: Mapping[str, Any] | None = None, send_day: int = 28,
                    every_days: int = 7, horizon_days: int = 7, treated_share: float = 0.5,
                    incentive: float = 0.3, train_share: float = 0.5,
                    attributes: tuple[str, ...] = ("price_sensitivity",)) -> UpliftSample:
    """Run the world and record the randomized sample (see the module)."""
    if not 0 < treated_share < 1 or not 0 < train_share < 1:
        raise ValueError(f"treated_share, train_share: expected values in (0, 1), got "
                         f"{treated_share}, {train_share}")
    if send_day < 1 or horizon_days < 1:
        raise ValueError(f"send_day, horizon_days: expected >= 1, got {send_day}, "
                         f"{horizon_days}")
    world = World(Population.generate(n, seed=seed,
                                      preset=get_preset(preset, **(overrides or {}))),
                  seed=seed)
    t = world.now
    ids = world.population.ids
    logs: list[EventBatch] = []
    for d in range(send_day):
        if d % every_days == 0:
            live = world.population.subscribed
            world.send(EmailBatch.make(ids[live], t, campaign=d, kind="campaign"))
        logs.append(world.step(t, t + DAY))
        t += DAY
    now = t
    pop = world.population
    email = EmailBatch.make(ids, now, campaign=send_day, kind="campaign", incentive=incentive)
    truth = incremental_orders(pop, now, email, horizon_days=horizon_days)
    truth["p_purchase"] = outlook(pop, now, horizon_days=horizon_days)["p_purchase"]
    live = pop.subscribed.copy()
    u = KeyedRandom(seed).uniforms(ids, send_day, PURPOSES["assignment"], k=2)
    sent = live & (u[:, 0] < treated_share)
    attrs = pop.to_pandas(now)[list(attributes)] if attributes else None
    world.send(email.take(np.flatnonzero(sent)))
    hist = EventBatch.concat(logs)
    for _ in range(horizon_days):
        logs.append(world.step(t, t + DAY))
        t += DAY
    after = EventBatch.concat(logs[send_day:])
    rows = ids[live]
    feats = history_features(hist, now, rows)
    if attrs is not None:
        feats = feats.join(attrs.loc[rows])
    buy = (after.type == _PURCHASE) & (after.time > now) & (after.time <= now + horizon_days * DAY)
    orders = np.bincount(after.subscriber[buy] - ids[0], minlength=len(ids)).astype(float)
    revenue = np.bincount(after.subscriber[buy] - ids[0],
                          weights=after.column("revenue")[buy], minlength=len(ids))
    index = pd.Index(rows, name="subscriber")
    keep = np.flatnonzero(live)
    return UpliftSample(
        now=now, features=feats, treated=pd.Series(sent[keep], index=index, name="treated"),
        orders=pd.Series(orders[keep], index=index, name="orders"),
        revenue=pd.Series(revenue[keep], index=index, name="revenue"),
        truth=truth.loc[rows], train=pd.Series(u[keep, 1] < train_share, index=index,
                                               name="train"),
        treated_share=treated_share, horizon_days=horizon_days)


def captured(score: np.ndarray, effect: np.ndarray, top: float) -> float:
    """Sum of ``effect`` over the ``top`` share of rows with the highest ``score``
    (``round(top n)`` rows; ties broken by row order)."""
    k = round(top * len(score))
    return float(np.asarray(effect)[np.argsort(-np.asarray(score), kind="stable")[:k]].sum())


def uplift_report(sample: UpliftSample, *, seed: int, method: str = "x", base: str = "hgb",
                  top: float = 0.3, attributes: tuple[str, ...] = ("price_sensitivity",),
                  propensity_model: str = "hgb") -> dict[str, Any]:
    """Fit on the training rows, compare four rankings on the test rows (see the module).

    Returns a dict of figures: ``n_train``, ``n_test``, ``fit_s`` (wall seconds of the
    uplift fit), ``propensity_fit_s``, ``spearman_<r>`` (with the true uplift),
    ``qini_<r>`` and ``captured_<r>`` (share of all true incremental orders of the test
    rows captured by the top ``top``; ``random`` is its expectation ``top``) for the
    rankings ``r``: model, propensity (the fitted model), truth, true_propensity (the
    simulator's true chance to buy within the window without the email: what a perfect
    propensity model would rank by) and random, ``true_uplift_total`` (orders), ``curves`` (Qini
    curve per ranking) and ``scores`` (a frame of the rankings' scores, test rows).
    """
    from scipy.stats import spearmanr

    from experiments.models.propensity import fit_propensity
    from policies.segments import PropensityScores

    tr = sample.train.to_numpy()
    f = sample.features
    t = sample.treated.to_numpy()
    y = sample.orders.to_numpy()
    model = UpliftModel(seed=seed, method=method, base=base,
                        treated_share=sample.treated_share, attributes=attributes)
    t0 = time.perf_counter()
    model.fit(f[tr], t[tr], y[tr])
    fit_s = time.perf_counter() - t0
    ctl = tr & ~t
    t0 = time.perf_counter()
    prop = fit_propensity(f[ctl], sample.orders[ctl] > 0, seed=seed, model=propensity_model)
    prop_s = time.perf_counter() - t0
    ft = f[~tr]
    truth = sample.truth.loc[ft.index, "uplift_orders"].to_numpy()
    rng = np.random.default_rng(np.random.SeedSequence([seed, PURPOSES["assignment"]]))
    scores = pd.DataFrame({
        "model": model.score(ft).to_numpy(),
        "propensity": PropensityScores({"p": prop}).score(ft)["p_p"].to_numpy(),
        "truth": truth,
        "true_propensity": sample.truth.loc[ft.index, "p_purchase"].to_numpy(),
        "random": rng.permutation(len(ft)).astype(np.float64),
    }, index=ft.index)
    tt, yt = t[~tr], y[~tr]
    out: dict[str, Any] = {"n_train": int(tr.sum()), "n_test": int((~tr).sum()),
                           "fit_s": fit_s, "propensity_fit_s": prop_s,
                           "true_uplift_total": float(truth.sum()), "top": top}
    for r in ("model", "propensity", "true_propensity"):
        out[f"spearman_{r}"] = float(spearmanr(scores[r], truth).statistic)
    curves = {}
    for r in scores.columns:
        curves[r] = qini_curve(scores[r].to_numpy(), tt, yt)
        out[f"qini_{r}"] = qini_area(curves[r])
        out[f"captured_{r}"] = (captured(scores[r].to_numpy(), truth, top) / truth.sum()
                                if r != "random" else top)
    out["curves"] = curves
    out["scores"] = scores
    return out


def plot_qini(curves: Mapping[str, pd.DataFrame], path: str | Path, *,
              title: str = "Qini curves") -> Path:
    """Write a PNG of Qini curves (incremental outcome per subscriber of the sample vs
    share targeted) with the random line of the first curve; returns the path."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    first = None
    for label, c in curves.items():
        n = float(c["n"].iloc[-1])
        ax.plot(c["share"], c["qini"] / n, label=label, lw=1.6)
        first = c if first is None else first
    if first is not None:
        end = float(first["qini"].iloc[-1] / first["n"].iloc[-1])
        ax.plot([0, 1], [0, end], ls="--", color="grey", label="random line")
    ax.set_xlabel("share of subscribers targeted (highest score first)")
    ax.set_ylabel("incremental orders per subscriber of the sample")
    ax.set_title(title)
    ax.legend(frameon=False)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, format="png", metadata={"Software": None})
    plt.close(fig)
    return out
