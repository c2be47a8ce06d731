"""Email response with known ground truth.

An :class:`EmailBatch` describes emails delivered: subscriber, send time (s), a
campaign/rule code, the email kind (campaign or trigger type) and the variant
features (subject style, content strategy, personalization level, urgency, incentive,
send hour). :func:`probabilities` gives the true probabilities behind every draw;
:func:`sample` draws the events with delays (always after the send), and
:func:`sample_reference` specifies it one email at a time. The three stay in one module
(about 900 lines, over this codebase's usual 500) on purpose: the model's formulas, the
vectorized sampler and its plain-Python reference must change together. The world's
send path evaluates the same formulas on fewer rows (:mod:`sim.response_sparse`: only
what each email's events need, the same events bit for bit).

The model, per email (logits are natural-log odds; ``seg`` is the subscriber's hidden
segment, :data:`~sim.presets.SEGMENTS`):

* **human open**: ``logit(open_base[kind]) + open_engagement_slope (eng - 0.5)
  + subject_open_effects[style, seg] + hour match + urgency_open_gain urgency
  + satisfaction_weight (2 sat - 1) + kind_open_offsets[kind]`` where the hour match is
  ``hour_match_gain (exp(-dh^2 / 2 w^2) - 0.3)`` for ``dh`` hours between send hour and
  preferred hour, and ``sat = sigmoid(satisfaction_sensitivity NPE)`` (fatigue);
* **machine open** (mail-privacy proxies): a proxy user's mail is opened by a machine
  with probability ``machine_open_probability`` a few minutes after delivery. The
  observed open is the machine open if there is one (the proxy caches the message),
  else the human open: ``P(open) = m + (1 - m) h``. Machines never click.
* **click | human open**: ``logit(click_base[kind]) + click_engagement_slope (eng - 0.5)
  + strategy_match_click_gain [strategy fits seg] + personalization_click_gain
  personalization min(1, eng / threshold) + urgency_click_gain urgency
  + kind_click_offsets[kind] + 0.5 satisfaction_weight (2 sat - 1)``, plus for an email
  with a call to action ``c`` (``cta``, :data:`~sim.presets.CALLS_TO_ACTION`)
  ``cta_click_effects[c] + subject_cta_click_effects[style, c]`` and
  ``offer_cta_incentive_click_gain`` if ``c`` is ``see_offer`` and the email has a
  discount (interactions: docs/domain.md, "Interactions between email elements");
* **purchase | click**: for a cart reminder while a cart is open,
  ``cart_buy_given_click (0.15 + 0.85 exp(-age / intent_decay_hours)) (0.5 + intent)``
  plus ``returner_buy_boost`` if the subscriber would come back on their own; else
  ``buy_base (intent / 0.2)``; both times ``1 + incentive_buy_slope incentive
  price_sensitivity`` and capped at 0.95. Revenue is the cart value (cart reminders) or
  a log-normal order value, less the incentive. The incentive's term is x ``(1 +
  subject_discount_buy_gain[style])``: a deadline subject makes a discount more
  persuasive (a subject x discount interaction).
* **unsubscribe**: ``unsubscribe_base[kind] exp(-unsubscribe_npe_beta NPE)
  (1.6 - eng)``, x ``urgency_unsubscribe_factor`` if urgent.
* **journeys** (docs/domain.md, "Responses to journeys"): the k-th email of a series
  (``series_index`` k) loses ``series_open_decay k`` of open logit and
  ``series_click_decay k`` of click logit, costs ``series_npe_cost k`` more NPE and
  unsubscribes x ``1 + series_unsubscribe_gain k``; an alert (``alert_product`` p,
  ``drop_fraction`` f) gains ``alert_interest_click_gain s + alert_drop_click_gain f`` of
  click logit (``s``: :func:`category_interest` in p's category), its drop acts on the
  purchase like a discount, its click views p and its purchase buys p at the value x
  ``(1 - f)``; a :func:`lapsed` subscriber gets ``lapsed_open_offset`` of open logit,
  P(purchase | click) x ``lapsed_buy_factor`` and unsubscribes x
  ``lapsed_unsubscribe_factor``. At the fields' defaults (0, -1, 0) nothing changes.
* **margin** of an order: revenue (net of the discount) less ``list value (1 - margin
  rate)`` of the bought category (the catalog's, or ``margin_rate_mean``).
* **fatigue** (RecSim's net positive exposure): every delivered email changes
  ``NPE += -npe_email_cost - npe_clickbait_cost 2 (clickbait - 0.5) + noise`` where
  clickbait is the style's score (+0.3 if urgent). Clickbait and frequency buy opens
  and clicks now (style and urgency effects) and cost engagement and unsubscribes later.

The probabilities are of a response at any time after delivery. When each response
lands (open, click and purchase delays) is :mod:`sim.delays`, whose constants the
samplers use; :func:`sim.delays.within_window` gives the probability that a response
lands within a window (the basis on which the runtime counts responses).

Emails to unsubscribed subscribers are not delivered: all probabilities are 0. With the
run's catalog, ``p_purchase`` counts only purchases of products in stock when they land
(the world drops the others); the draws never depend on the catalog.
Incrementality: for a cart reminder ``p_purchase_anyway`` is 1 when the subscriber's
cart would come back on its own (an organic return is scheduled), so
``p_incremental_purchase = p_purchase (1 - p_purchase_anyway)`` differs from the raw
conversion ``p_purchase``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from policies.errors import SpecError
from policies.event_schema import category_code
from sim import _events as E
from sim._events import T
from sim._scalar import np_round
from sim.catalog import PRODUCTS_PER_CATEGORY, Catalog
from sim.delays import (
    CHECKOUT_DELAY_S,
    MACHINE_OPEN_DELAY_S,
    MIN_CLICK_DELAY_S,
    MIN_OPEN_DELAY_S,
    OPEN_DELAY_SIGMA,
    UNSUBSCRIBE_DELAY_S,
    UNSUBSCRIBE_NO_OPEN_S,
    VIEW_DELAY_S,
)
from sim.population import Population
from sim.presets import (
    CALLS_TO_ACTION,
    CONTENT_STRATEGIES,
    EMAIL_KINDS,
    LIFECYCLE_STAGES,
    SEGMENTS,
    SUBJECT_STYLES,
)
from sim.response_terms import (
    VIEW_ANY_SHARE,
    VIEW_SECOND_SHARE,
    VIEW_TOP_SHARE,
    category_interest,
    lapsed,
    p_in_stock,
)
from sim.rng import PURPOSES, KeyedRandom, normal_from_uniforms

__all__ = [
    "NATURAL_STRATEGY",
    "VIEW_ANY_SHARE",
    "VIEW_SECOND_SHARE",
    "VIEW_TOP_SHARE",
    "EmailBatch",
    "category_interest",
    "lapsed",
    "npe_update",
    "probabilities",
    "sample",
    "sample_reference",
    "segments",
]

_STAGE = {name: i for i, name in enumerate(LIFECYCLE_STAGES)}
#: The content strategy that fits each response segment (the rule-based personalization's
#: choice, docs/domain.md): an email with it earns ``strategy_match_click_gain``.
NATURAL_STRATEGY: dict[str, str] = {
    "new": "onboarding_education",
    "low": "reengagement",
    "ready": "conversion_focused",
    "seeker": "educational_nurturing",
    "engaged": "general_engagement",
    "other": "general_engagement",
}
#: code of the natural content strategy of each segment code (SEGMENTS order)
_NATURAL_STRATEGY = np.array([CONTENT_STRATEGIES.index(NATURAL_STRATEGY[s]) for s in SEGMENTS],
                             np.int64)
_CART = EMAIL_KINDS.index("cart_abandonment")
_LINK_PRODUCT = category_code("link_type", "product")
_LINK_CATEGORY = category_code("link_type", "category")
_LINK_CONTENT = category_code("link_type", "content")
_LINK_CART = category_code("link_type", "cart")
_SEE_OFFER = CALLS_TO_ACTION.index("see_offer")
_N_U = 20
_MACHINE = MACHINE_OPEN_DELAY_S
_VIEW = VIEW_DELAY_S


def _bcast(name: str, value: Any, n: int, dtype: Any) -> np.ndarray:
    arr = np.asarray(value)
    if arr.ndim and arr.shape != (n,):
        raise SpecError(f"EmailBatch.{name}: expected length {n}, got {len(arr)}")
    return np.broadcast_to(arr.astype(dtype), (n,))


def _codes(name: str, values: Any, vocab: Sequence[str], n: int, allow_none: bool = False
           ) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype.kind in "US" or arr.dtype == object:
        lookup = {v: i for i, v in enumerate(vocab)}
        flat = np.atleast_1d(arr).ravel()
        out = np.empty(len(flat), np.int64)
        for i, v in enumerate(flat):
            if v is None and allow_none:
                out[i] = -1
            elif v in lookup:
                out[i] = lookup[v]
            else:
                raise SpecError(f"{name}: expected one of {', '.join(vocab)}, got {v!r}")
        arr = out.reshape(arr.shape)
    arr = _bcast(name, arr, n, np.int64).copy()
    lo = -1 if allow_none else 0
    if n and (arr.min() < lo or arr.max() >= len(vocab)):
        bad = arr[(arr < lo) | (arr >= len(vocab))][0]
        raise SpecError(f"{name}: expected codes in [{lo}, {len(vocab)}), got {int(bad)}")
    return arr


@dataclass(frozen=True, eq=False)
class EmailBatch:
    """Emails delivered, one row per email (arrays of shape (n,)).

    Parameters
    ----------
    subscriber : int64
    time : int64
        Delivery time, seconds since the epoch (UTC).
    campaign : int64
        Campaign or rule code (>= 0); copied to ``campaign_id`` of response events.
        Its low 16 bits key the email's random numbers.
    kind : int64
        Code into :data:`~sim.presets.EMAIL_KINDS`.
    subject_style : int64
        Code into :data:`~sim.presets.SUBJECT_STYLES`.
    strategy : int64
        Code into :data:`~sim.presets.CONTENT_STRATEGIES`, -1 for none.
    personalization : int64
        0 standard, 1 high.
    urgency : bool
    incentive : float64
        Discount fraction in [0, 1).
    send_hour : int64
        Local delivery hour 0..23, or -1 to derive it from ``time`` and the subscriber's
        UTC offset.
    cta : int64, optional
        Call to action: code into :data:`~sim.presets.CALLS_TO_ACTION`, -1 for the
        email kind's own button (no call-to-action effect). Default -1.
    series_index : int64, optional
        Which email of its journey instance this is: 0 for the first (and for any
        one-off email or campaign), k for the (k + 1)-th. Default 0.
    alert_product : int64, optional
        Product id of a price-drop or back-in-stock alert (its category is
        ``alert_product // PRODUCTS_PER_CATEGORY``), -1 for no alert. Default -1.
    drop_fraction : float64, optional
        The alert's price drop, a fraction of the old price in [0, 1) (0: none, e.g. a
        back-in-stock alert). Default 0.

    Use :meth:`make` to build one from names with broadcasting. With the four optional
    fields at their defaults an email responds exactly as before they existed.
    """

    subscriber: np.ndarray
    time: np.ndarray
    campaign: np.ndarray
    kind: np.ndarray
    subject_style: np.ndarray
    strategy: np.ndarray
    personalization: np.ndarray
    urgency: np.ndarray
    incentive: np.ndarray
    send_hour: np.ndarray
    series_index: np.ndarray = field(default_factory=lambda: np.array(0))
    alert_product: np.ndarray = field(default_factory=lambda: np.array(-1))
    drop_fraction: np.ndarray = field(default_factory=lambda: np.array(0.0))
    cta: np.ndarray = field(default_factory=lambda: np.array(-1))

    def __post_init__(self) -> None:
        n = len(np.atleast_1d(self.subscriber))
        sub = np.ascontiguousarray(np.atleast_1d(self.subscriber), np.int64)
        object.__setattr__(self, "subscriber", sub)
        for name, dtype in (("time", np.int64), ("campaign", np.int64), ("kind", np.int64),
                            ("subject_style", np.int64), ("strategy", np.int64),
                            ("personalization", np.int64), ("urgency", bool),
                            ("incentive", np.float64), ("send_hour", np.int64),
                            ("series_index", np.int64), ("alert_product", np.int64),
                            ("drop_fraction", np.float64), ("cta", np.int64)):
            arr = np.asarray(getattr(self, name))
            if arr.ndim == 0:
                arr = np.broadcast_to(arr, (n,))
            if len(arr) != n:
                raise SpecError(f"EmailBatch.{name}: expected length {n}, got {len(arr)}")
            object.__setattr__(self, name, np.ascontiguousarray(arr, dtype))
        checks = (
            ("campaign", self.campaign.min() < 0 if n else False, "codes >= 0"),
            ("kind", n and (self.kind.min() < 0 or self.kind.max() >= len(EMAIL_KINDS)),
             f"codes in [0, {len(EMAIL_KINDS)})"),
            ("subject_style",
             n and (self.subject_style.min() < 0
                    or self.subject_style.max() >= len(SUBJECT_STYLES)),
             f"codes in [0, {len(SUBJECT_STYLES)})"),
            ("strategy",
             n and (self.strategy.min() < -1
                    or self.strategy.max() >= len(CONTENT_STRATEGIES)),
             f"codes in [-1, {len(CONTENT_STRATEGIES)})"),
            ("personalization", n and not np.isin(self.personalization, (0, 1)).all(), "0 or 1"),
            ("incentive",
             n and not ((self.incentive >= 0) & (self.incentive < 1)).all(), "values in [0, 1)"),
            ("send_hour", n and (self.send_hour.min() < -1 or self.send_hour.max() > 23),
             "hours in 0..23 or -1"),
            ("series_index", n and self.series_index.min() < 0, "indices >= 0"),
            ("alert_product", n and self.alert_product.min() < -1, "product ids >= 0 or -1"),
            ("drop_fraction",
             n and not ((self.drop_fraction >= 0) & (self.drop_fraction < 1)).all(),
             "fractions in [0, 1)"),
            ("cta", n and (self.cta.min() < -1 or self.cta.max() >= len(CALLS_TO_ACTION)),
             f"codes in [-1, {len(CALLS_TO_ACTION)})"),
        )
        for name, bad, expected in checks:
            if bad:
                raise SpecError(f"EmailBatch.{name}: expected {expected}, got "
                                f"{getattr(self, name)[:5].tolist()}...")

    @classmethod
    def make(
        cls,
        subscriber: Any,
        time: Any,
        *,
        campaign: Any = 0,
        kind: Any = "campaign",
        subject_style: Any = "plain",
        strategy: Any = None,
        personalization: Any = 0,
        urgency: Any = False,
        incentive: Any = 0.0,
        send_hour: Any = -1,
        series_index: Any = 0,
        alert_product: Any = -1,
        drop_fraction: Any = 0.0,
        cta: Any = None,
    ) -> EmailBatch:
        """Build a batch; names or codes; scalars broadcast to every email."""
        sub = np.atleast_1d(np.asarray(subscriber, np.int64))
        n = len(sub)
        if strategy is None:
            strategy_codes = np.full(n, -1, np.int64)
        else:
            strategy_codes = _codes("strategy", strategy, CONTENT_STRATEGIES, n,
                                    allow_none=True)
        return cls(
            subscriber=sub,
            time=_bcast("time", time, n, np.int64),
            campaign=_bcast("campaign", campaign, n, np.int64),
            kind=_codes("kind", kind, EMAIL_KINDS, n),
            subject_style=_codes("subject_style", subject_style, SUBJECT_STYLES, n),
            strategy=strategy_codes,
            personalization=_bcast("personalization", personalization, n, np.int64),
            urgency=_bcast("urgency", urgency, n, bool),
            incentive=_bcast("incentive", incentive, n, np.float64),
            send_hour=_bcast("send_hour", send_hour, n, np.int64),
            series_index=_bcast("series_index", series_index, n, np.int64),
            alert_product=_bcast("alert_product", alert_product, n, np.int64),
            drop_fraction=_bcast("drop_fraction", drop_fraction, n, np.float64),
            cta=(np.full(n, -1, np.int64) if cta is None
                 else _codes("cta", cta, CALLS_TO_ACTION, n, allow_none=True)),
        )

    def __len__(self) -> int:
        return len(self.subscriber)

    def take(self, idx: Any) -> EmailBatch:
        """Rows selected by an index array, slice or mask."""
        return EmailBatch(**{f: getattr(self, f)[idx] for f in _FIELDS})

    def _rows(self, idx: np.ndarray) -> EmailBatch:
        """:meth:`take` of an int64 index array without the checks (the rows of a valid
        batch are valid)."""
        out = object.__new__(EmailBatch)
        for f in _FIELDS:
            object.__setattr__(out, f, getattr(self, f)[idx])
        return out

    @classmethod
    def concat(cls, parts: Sequence[EmailBatch]) -> EmailBatch:
        """Concatenate batches."""
        if not parts:
            return cls.make(np.zeros(0, np.int64), 0)
        return EmailBatch(**{f: np.concatenate([getattr(p, f) for p in parts])
                             for f in _FIELDS})

    def to_pandas(self) -> pd.DataFrame:
        """The batch as a DataFrame with names for kind, style and strategy."""
        df = pd.DataFrame({f: getattr(self, f) for f in _FIELDS})
        df["kind"] = np.array(EMAIL_KINDS, dtype=object)[self.kind]
        df["subject_style"] = np.array(SUBJECT_STYLES, dtype=object)[self.subject_style]
        df["strategy"] = np.array([*CONTENT_STRATEGIES, None], dtype=object)[self.strategy]
        df["cta"] = np.array([*CALLS_TO_ACTION, None], dtype=object)[self.cta]
        return df


_FIELDS = ("subscriber", "time", "campaign", "kind", "subject_style", "strategy",
           "personalization", "urgency", "incentive", "send_hour", "series_index",
           "alert_product", "drop_fraction", "cta")


def segments(pop: Population, row: np.ndarray) -> np.ndarray:
    """Hidden response segment (index into SEGMENTS) of population rows, int64."""
    eng = pop.engagement[row]
    ready = np.clip(1.6 * pop.intent[row] + 0.25 * (pop.cart_value[row] > 0), 0.0, 1.0)
    return np.select(
        [
            pop.lifecycle[row] == _STAGE["new_subscriber"],
            eng < 0.3,
            ready > 0.7,
            pop.educational_seeker[row],
            eng > 0.7,
        ],
        [0, 1, 2, 3, 4],
        default=5,
    ).astype(np.int64)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def _local_hour(pop: Population, row: np.ndarray, emails: EmailBatch) -> np.ndarray:
    derived = ((emails.time + pop.utc_offset_minutes[row].astype(np.int64) * 60) // 3600) % 24
    return np.where(emails.send_hour >= 0, emails.send_hour, derived)


def _check_alerts(pop: Population, emails: EmailBatch) -> None:
    """Raise :class:`SpecError` for an alert product outside the preset's categories."""
    alert = emails.alert_product >= 0
    if alert.any():
        alert_cat = np.where(alert, emails.alert_product // PRODUCTS_PER_CATEGORY, -1)
        if alert_cat.max() >= pop.preset.n_categories:
            bad = int(emails.alert_product[alert_cat >= pop.preset.n_categories][0])
            raise SpecError(f"EmailBatch.alert_product: expected ids below "
                            f"{pop.preset.n_categories * PRODUCTS_PER_CATEGORY}, got {bad}")


def _open_terms(pop: Population, row: np.ndarray, emails: EmailBatch) -> dict[str, np.ndarray]:
    """What every email's open and unsubscribe draws need, shape (n,) each: float64
    ``eng``, ``sat`` (satisfaction), ``dh`` (hours), ``p_human``,
    ``p_machine``, ``p_unsub``; int64 ``seg``; bool ``gone`` (lapsed). The first part of
    :func:`probabilities` (the rest depends on a human open)."""
    p = pop.preset
    eng = pop.engagement[row].astype(np.float64)
    npe = pop.npe[row].astype(np.float64)
    live = pop.subscribed[row].astype(np.float64)
    seg = segments(pop, row)
    kind = emails.kind
    triggered = kind != 0
    k = emails.series_index.astype(np.float64)
    later = emails.series_index > 0
    gone = lapsed(pop, row, emails.time)
    hour = _local_hour(pop, row, emails)
    dh = np.abs(hour - pop.preferred_hour[row].astype(np.int64))
    dh = np.minimum(dh, 24 - dh).astype(np.float64)
    hour_term = p.hour_match_gain * (np.exp(-(dh**2) / (2 * p.hour_match_width_hours**2)) - 0.3)
    sat = _sigmoid(p.satisfaction_sensitivity * npe)
    subj = np.asarray(p.subject_open_effects, np.float64)[emails.subject_style, seg]
    urg = emails.urgency.astype(np.float64)
    open_logit = (
        np.where(triggered, _logit(p.open_base_triggered), _logit(p.open_base_campaign))
        + p.open_engagement_slope * (eng - 0.5)
        + subj
        + hour_term
        + p.urgency_open_gain * urg
        + p.satisfaction_weight * (2 * sat - 1)
        + np.asarray(p.kind_open_offsets, np.float64)[kind]
    )
    # novelty decay along a journey, and a lapsed subscriber's own (lower) response
    open_logit = np.where(later, open_logit - p.series_open_decay * k, open_logit)
    open_logit = np.where(gone, open_logit + p.lapsed_open_offset, open_logit)
    p_human = _sigmoid(open_logit) * live
    p_machine = pop.privacy_proxy[row] * p.machine_open_probability * live
    unsub_base = np.where(triggered, p.unsubscribe_base_triggered, p.unsubscribe_base_campaign)
    unsub = (unsub_base * np.exp(-p.unsubscribe_npe_beta * npe) * (1.6 - eng)
             * np.where(emails.urgency, p.urgency_unsubscribe_factor, 1.0))
    unsub = np.where(later, unsub * (1.0 + p.series_unsubscribe_gain * k), unsub)
    unsub = np.where(gone, unsub * p.lapsed_unsubscribe_factor, unsub)
    p_unsub = np.minimum(unsub, 0.5) * live
    return {"eng": eng, "sat": sat, "dh": dh, "seg": seg, "gone": gone, "p_human": p_human,
            "p_machine": p_machine, "p_unsub": p_unsub}


def probabilities(pop: Population, emails: EmailBatch, catalog: Catalog | None = None
                  ) -> dict[str, np.ndarray]:
    """The true probabilities behind every draw, from the current state.

    Parameters
    ----------
    pop : Population
        The recipients' state at delivery (not changed).
    emails : EmailBatch
    catalog : Catalog, optional
        The run's catalog (:attr:`sim.world.World.catalog`): gives each category's margin
        rate and which products are in stock when a purchase lands. Without it every
        category has the margin rate ``margin_rate_mean`` and everything is in stock.
        The draws of :func:`sample` do not depend on it.

    Returns
    -------
    dict of str -> ndarray, shape (n,)
        float64: ``p_open`` (observed: machine or human), ``p_human_open``,
        ``p_machine_open``, ``p_click_given_open`` (given a human open), ``p_click``,
        ``p_purchase_given_click``, ``p_in_stock`` (the chance that what the purchase
        names is in stock when it lands: :func:`sim.state.valid_mask` drops it
        otherwise), ``p_purchase`` (an order that the world keeps:
        ``p_click p_purchase_given_click p_in_stock``), ``order_value`` (currency paid if
        bought: net of the email's discount and of an alert's price drop),
        ``expected_revenue``, ``discount_value`` (currency the email's discount gives
        up per order), ``expected_discount``, ``margin_rate`` (of the category bought),
        ``order_margin`` (currency per order: revenue less unit cost, negative when the
        discounts exceed the margin), ``expected_margin``, ``p_unsubscribe``,
        ``p_purchase_anyway``, ``p_incremental_purchase``, ``alert_interest`` (the
        recipient's interest in an alert's category, 0 without an alert) and
        ``hour_distance`` (hours); int64 ``segment``; bool ``cart_open`` and ``lapsed``.
    """
    row = pop.index_of(emails.subscriber)
    _check_alerts(pop, emails)
    return _click_terms(pop, row, emails, _open_terms(pop, row, emails), catalog)


def _click_terms(pop: Population, row: np.ndarray, emails: EmailBatch,
                 o: dict[str, np.ndarray], catalog: Catalog | None) -> dict[str, np.ndarray]:
    """:func:`probabilities` given the open terms ``o`` of the same emails
    (:func:`_open_terms`); ``row``: their population rows, int64 (n,)."""
    p = pop.preset
    eng, sat, dh, seg, gone = o["eng"], o["sat"], o["dh"], o["seg"], o["gone"]
    p_human, p_machine = o["p_human"], o["p_machine"]
    intent = pop.intent[row].astype(np.float64)
    kind = emails.kind
    triggered = kind != 0
    k = emails.series_index.astype(np.float64)
    later = emails.series_index > 0
    alert = emails.alert_product >= 0
    alert_cat = np.where(alert, emails.alert_product // PRODUCTS_PER_CATEGORY, -1)
    drop = emails.drop_fraction
    urg = emails.urgency.astype(np.float64)
    match = (emails.strategy >= 0) & (emails.strategy == _NATURAL_STRATEGY[seg])
    pers = emails.personalization * np.minimum(1.0, eng / p.personalization_engagement_threshold)
    click_logit = (
        np.where(triggered, _logit(p.click_base_triggered), _logit(p.click_base_campaign))
        + p.click_engagement_slope * (eng - 0.5)
        + p.strategy_match_click_gain * match
        + p.personalization_click_gain * pers
        + p.urgency_click_gain * urg
        + np.asarray(p.kind_click_offsets, np.float64)[kind]
        + 0.5 * p.satisfaction_weight * (2 * sat - 1)
    )
    click_logit = np.where(later, click_logit - p.series_click_decay * k, click_logit)
    # the call to action and its interactions with the subject and the discount
    has_cta = emails.cta >= 0
    if has_cta.any():
        cta = np.maximum(emails.cta, 0)
        cta_term = (np.asarray(p.cta_click_effects, np.float64)[cta]
                    + np.asarray(p.subject_cta_click_effects, np.float64)[emails.subject_style,
                                                                        cta]
                    + p.offer_cta_incentive_click_gain
                    * ((emails.cta == _SEE_OFFER) & (emails.incentive > 0)))
        click_logit = np.where(has_cta, click_logit + cta_term, click_logit)
    interest = np.where(alert, category_interest(pop, row, alert_cat), 0.0)
    click_logit = np.where(alert, click_logit + p.alert_interest_click_gain * interest
                           + p.alert_drop_click_gain * drop, click_logit)
    p_ctr = _sigmoid(click_logit)
    cart_value = pop.cart_value[row].astype(np.float64)
    cart_open = (kind == _CART) & (cart_value > 0)
    age_h = np.maximum(emails.time - pop.cart_time[row], 0) / 3600.0
    decay = np.exp(-age_h / p.intent_decay_hours)
    returner = (pop.return_time[row] > emails.time).astype(np.float64)
    # an alert's price drop acts on the purchase like a discount of its size
    discount = np.where(alert & (drop > 0),
                        1.0 - (1.0 - emails.incentive) * (1.0 - drop), emails.incentive)
    # a deadline subject makes a discount more persuasive (subject x discount interaction)
    deadline = 1.0 + np.asarray(p.subject_discount_buy_gain, np.float64)[emails.subject_style]
    incentive_mult = (1.0 + p.incentive_buy_slope * discount * pop.price_sensitivity[row]
                      * deadline)
    q_cart = p.cart_buy_given_click * (0.15 + 0.85 * decay) * (0.5 + intent) + (
        p.returner_buy_boost * returner
    )
    q_other = np.where(triggered, p.buy_base_triggered, p.buy_base_campaign) * (intent / 0.2)
    q_raw = np.where(cart_open, q_cart, q_other) * incentive_mult
    q_raw = np.where(gone, q_raw * p.lapsed_buy_factor, q_raw)
    q = np.minimum(q_raw, 0.95)
    # list value of the order; what is paid is net of an alert's drop and the discount
    list_value = np.where(cart_open, cart_value, p.order_value_mean)
    paid_list = np.where(alert & (drop > 0), list_value * (1.0 - drop), list_value)
    value = paid_list * (1.0 - emails.incentive)
    category = np.where(cart_open & (pop.cart_product[row] >= 0),
                        pop.cart_product[row].astype(np.int64) // PRODUCTS_PER_CATEGORY,
                        np.where(alert, alert_cat, pop.top_category[row].astype(np.int64)))
    if catalog is None:
        margin_rate = np.full(len(emails), p.margin_rate_mean)
        in_stock = np.ones(len(emails))
    else:
        margin_rate = catalog.category_margin_rate[category]
        in_stock = p_in_stock(pop, row, emails, catalog, cart_open, alert, dh)
    margin = value - list_value * (1.0 - margin_rate)
    p_click = p_human * p_ctr
    p_purchase = p_click * q * in_stock
    p_unsub = o["p_unsub"]
    anyway = np.where(cart_open, returner, 0.0)
    disc_value = paid_list * emails.incentive
    return {
        "p_open": p_machine + (1.0 - p_machine) * p_human,
        "p_human_open": p_human,
        "p_machine_open": p_machine.astype(np.float64),
        "p_click_given_open": p_ctr,
        "p_click": p_click,
        "p_purchase_given_click": q,
        "p_in_stock": in_stock,
        "p_purchase": p_purchase,
        "order_value": value,
        "expected_revenue": p_purchase * value,
        "discount_value": disc_value,
        "expected_discount": p_purchase * disc_value,
        "margin_rate": margin_rate,
        "order_margin": margin,
        "expected_margin": p_purchase * margin,
        "p_unsubscribe": p_unsub,
        "p_purchase_anyway": anyway,
        "p_incremental_purchase": p_purchase * (1.0 - anyway),
        "alert_interest": interest,
        "segment": seg,
        "hour_distance": dh,
        "cart_open": cart_open,
        "lapsed": gone,
    }


#: columns of the (n, 20) draw table filled for every email (stage 1) and only for
#: emails that are clicked or unsubscribe from (stage 2, purpose ``email_detail``)
_STAGE1 = np.array([0, 1, 2, 3, 4, 5, 15, 19])
_STAGE2 = np.array([6, 7, 8, 9, 10, 11, 12, 13, 14, 16, 17, 18])


def _occurrence_reference(emails: EmailBatch) -> np.ndarray:
    """Occurrence of each email's key (subscriber, send time, campaign & 0xFFFF) among the
    earlier rows of the batch with that key (in key-sorted, then row order), int64 (n,)."""
    n = len(emails)
    occ = np.zeros(n, np.int64)
    if n > 1:
        keys = np.stack([emails.subscriber, emails.time, emails.campaign & 0xFFFF], axis=1)
        order = np.lexsort(keys.T[::-1])
        sk = keys[order]
        same = np.all(sk[1:] == sk[:-1], axis=1)
        if same.any():
            run = np.zeros(n, np.int64)
            for i in range(1, n):
                run[i] = run[i - 1] + 1 if same[i - 1] else 0
            occ[order] = run
    return occ


def _distinct(emails: EmailBatch) -> bool:
    """Whether the subscribers strictly increase (a campaign to a list of ids): then every
    email's key and every population row is distinct."""
    sub = emails.subscriber
    return len(sub) < 2 or bool((sub[1:] > sub[:-1]).all())


def _draw_index(emails: EmailBatch) -> np.ndarray:
    """The ``index`` key of each email's uniforms, int64 (n,): ``(campaign & 0xFFFF) << 8``
    or the low 8 bits of the occurrence of the email's key in the batch."""
    occ = (np.zeros(len(emails), np.int64) if _distinct(emails)
           else _occurrence_reference(emails))
    return ((emails.campaign & 0xFFFF) << 8) | (occ & 0xFF)


def _email_uniforms(rng: KeyedRandom, emails: EmailBatch, pr: dict[str, np.ndarray]
                    ) -> np.ndarray:
    """The (n, 20) uniforms behind every email's outcomes.

    Keyed by (subscriber, send time, campaign & 0xFFFF, occurrence of that key in the
    batch). Detail draws (click delay, link, purchase, revenue, unsubscribe time) are made
    only for emails whose stage-1 draws say they are clicked or unsubscribed from; the
    other rows hold 0.5 there and are never read.
    """
    n = len(emails)
    index = _draw_index(emails)
    u = np.full((n, _N_U), 0.5)
    u[:, _STAGE1] = rng.uniforms(emails.subscriber, emails.time, PURPOSES["email"], k=8,
                                 index=index)
    need = ((u[:, 1] < pr["p_human_open"]) & (u[:, 5] < pr["p_click_given_open"])) | (
        u[:, 15] < pr["p_unsubscribe"]
    )
    if need.any():
        rows = np.flatnonzero(need)
        u[np.ix_(rows, _STAGE2)] = rng.uniforms(
            emails.subscriber[rows], emails.time[rows], PURPOSES["email_detail"], k=12,
            index=index[rows],
        )
    return u


def npe_update(pop: Population, emails: EmailBatch, u: np.ndarray) -> None:
    """Apply the fatigue (NPE) change of delivered emails in place (``u``: their (n, 20)
    uniforms)."""
    npe_noise_update(pop, emails, u[:, 19])


def npe_noise_update(pop: Population, emails: EmailBatch, noise: np.ndarray) -> None:
    """Apply the fatigue (NPE) change of delivered emails in place; ``noise``: float64 (n,),
    each email's fatigue-noise uniform (column 19 of its uniforms). The reference of
    :func:`sim.response_sparse.apply_fatigue`."""
    p = pop.preset
    row = pop.index_of(emails.subscriber)
    live = pop.subscribed[row]
    cb = np.clip(np.asarray(p.subject_clickbait, np.float64)[emails.subject_style]
                 + 0.3 * emails.urgency, 0.0, 1.0)
    delta = (-p.npe_email_cost - p.npe_clickbait_cost * 2.0 * (cb - 0.5)
             + p.npe_noise * (2.0 * noise - 1.0)) * live
    later = emails.series_index > 0
    if later.any():  # a journey's later emails cost more (fatigue along a series)
        delta = np.where(later, delta - p.series_npe_cost * emails.series_index * live, delta)
    np.add.at(pop.npe, row, delta.astype(np.float32))


def _draw(pop: Population, emails: EmailBatch, pr: dict[str, np.ndarray], u: np.ndarray
          ) -> dict[str, np.ndarray]:
    """All outcome variables of every email (vectorized): :func:`_draw_open` and
    :func:`_draw_click`, both on every row."""
    d = _draw_open(pop, emails, pr, u)
    return {**d, **_draw_click(pop, emails, pr, u, d["t_human"], d["human"])}


def _draw_open(pop: Population, emails: EmailBatch, pr: dict[str, np.ndarray], u: np.ndarray
               ) -> dict[str, np.ndarray]:
    """Open, click and unsubscribe outcomes of every email, shape (n,) each: bool
    ``machine``, ``human``, ``click``, ``unsub``; int64 times (s) ``t_human``,
    ``t_machine``, ``t_unsub`` (each read only where its outcome happens)."""
    p = pop.preset
    t = emails.time
    machine = u[:, 0] < pr["p_machine_open"]
    human = u[:, 1] < pr["p_human_open"]
    spread = np.exp(OPEN_DELAY_SIGMA * normal_from_uniforms(u[:, 2], u[:, 3]))
    delay = p.open_delay_median_hours * 3600.0 * spread * (1.0 + pr["hour_distance"] / 6.0)
    t_human = t + np.maximum(float(MIN_OPEN_DELAY_S), delay).astype(np.int64)
    t_machine = t + _MACHINE[0] + np.floor(u[:, 4] * _MACHINE[1]).astype(np.int64)
    click = human & (u[:, 5] < pr["p_click_given_open"])
    unsub = u[:, 15] < pr["p_unsubscribe"]
    t_unsub = (np.where(human, t_human, t + UNSUBSCRIBE_NO_OPEN_S) + UNSUBSCRIBE_DELAY_S[0]
               + np.floor(u[:, 16] * UNSUBSCRIBE_DELAY_S[1]).astype(np.int64))
    return {"machine": machine, "human": human, "t_human": t_human, "t_machine": t_machine,
            "click": click, "unsub": unsub, "t_unsub": t_unsub}


def _draw_click(pop: Population, emails: EmailBatch, pr: dict[str, np.ndarray], u: np.ndarray,
                t_human: np.ndarray, human: np.ndarray) -> dict[str, np.ndarray]:
    """What follows a click, shape (n,) each (read only where the email is clicked):
    int64 ``t_click``, ``link``, ``t_view``, ``category``, ``product``, ``t_buy``,
    ``token``, ``bought``; float64 ``view_top`` (s), ``revenue``; bool ``buy``.
    ``t_human`` and ``human``: :func:`_draw_open`'s."""
    p = pop.preset
    row = pop.index_of(emails.subscriber)
    click = human & (u[:, 5] < pr["p_click_given_open"])
    t_click = t_human + np.maximum(float(MIN_CLICK_DELAY_S),
                                   -np.log(u[:, 6]) * p.click_delay_mean_s).astype(np.int64)
    alert = emails.alert_product >= 0
    link = np.where(
        pr["cart_open"],
        _LINK_CART,
        np.where(alert, _LINK_PRODUCT,
                 np.where((emails.subject_style == SUBJECT_STYLES.index("learn"))
                          | (emails.strategy == CONTENT_STRATEGIES.index("educational_nurturing")),
                          _LINK_CONTENT,
                          np.where(u[:, 7] < 0.85, _LINK_PRODUCT, _LINK_CATEGORY))),
    )
    t_view = t_click + _VIEW[0] + np.floor(u[:, 8] * _VIEW[1]).astype(np.int64)
    view_top = np.round(30.0 + (-np.log(u[:, 9])) * p.time_on_page_mean_s, 1)
    # the product viewed after a click: an alert's product, else one of the top category
    cat = pop.top_category[row].astype(np.int64)
    product = cat * 1000 + np.floor(u[:, 10] * 1000).astype(np.int64)
    if alert.any():
        product = np.where(alert, emails.alert_product, product)
        cat = np.where(alert, emails.alert_product // PRODUCTS_PER_CATEGORY, cat)
    buy = click & (u[:, 11] < pr["p_purchase_given_click"])
    t_buy = t_view + CHECKOUT_DELAY_S + (-np.log(u[:, 12])
                                         * p.purchase_delay_mean_s).astype(np.int64)
    z = normal_from_uniforms(u[:, 13], u[:, 14])
    lognorm = np.exp(p.order_value_sigma * z - 0.5 * p.order_value_sigma**2)
    revenue = np.round(np.where(pr["cart_open"], pr["order_value"],
                                pr["order_value"] * lognorm), 2)
    token = np.where(pr["cart_open"], pop.cart_seq[row].astype(np.int64), -1)
    # what a purchase buys: the cart's product, else the product viewed after the click
    bought = np.where(pr["cart_open"], pop.cart_product[row].astype(np.int64), product)
    return {"t_click": t_click, "link": link, "t_view": t_view, "view_top": view_top,
            "category": cat, "product": product, "buy": buy, "t_buy": t_buy,
            "revenue": revenue, "token": token, "bought": bought}


def sample(
    pop: Population, emails: EmailBatch, rng: KeyedRandom
) -> tuple[E.Events, dict[str, np.ndarray], np.ndarray]:
    """Draw the response events of ``emails`` (all strictly after their send time).

    Returns ``(events, probabilities, uniforms)``; state is not changed (see
    :func:`npe_update` and :mod:`sim.state`).
    """
    pr = probabilities(pop, emails)
    u = _email_uniforms(rng, emails, pr)
    return _assemble(emails, pr, _draw(pop, emails, pr, u)), pr, u


def _assemble(emails: EmailBatch, pr: dict[str, np.ndarray], d: dict[str, np.ndarray]
              ) -> E.Events:
    """The response events of ``emails`` from their outcomes ``d`` (:func:`_draw`), by type
    (opens, clicks, views, add-to-carts, checkouts, purchases, unsubscribes), each in
    email order."""
    sub, camp = emails.subscriber, emails.campaign
    opened = d["machine"] | d["human"]
    t_open = np.where(d["machine"], d["t_machine"], d["t_human"])
    c, b, x = d["click"], d["buy"], d["unsub"]
    cart = pr["cart_open"]
    other_buy = b & ~cart
    parts = [
        E.part(sub[opened], t_open[opened], T.email_open, campaign_id=camp[opened],
               machine=d["machine"][opened].astype(np.int64)),
        E.part(sub[c], d["t_click"][c], T.email_click, campaign_id=camp[c],
               link_type=d["link"][c]),
        E.part(sub[c], d["t_view"][c], T.product_view, campaign_id=camp[c],
               category=d["category"][c], product_id=d["product"][c],
               time_on_page=d["view_top"][c]),
        E.part(sub[other_buy], d["t_buy"][other_buy] - 90, T.add_to_cart,
               campaign_id=camp[other_buy], cart_value=d["revenue"][other_buy],
               items=1.0, category=d["category"][other_buy],
               product_id=d["bought"][other_buy]),
        E.part(sub[b], d["t_buy"][b] - 30, T.checkout_started, campaign_id=camp[b],
               cart_value=d["revenue"][b]),
        E.part(sub[b], d["t_buy"][b], T.purchase_completed, campaign_id=camp[b],
               revenue=d["revenue"][b], cart_value=d["revenue"][b], token=d["token"][b],
               product_id=d["bought"][b]),
        E.part(sub[x], d["t_unsub"][x], T.unsubscribe, campaign_id=camp[x]),
    ]
    return E.build(parts)


def sample_reference(
    pop: Population, emails: EmailBatch, rng: KeyedRandom
) -> list[dict[str, Any]]:
    """Plain-Python specification of :func:`sample`: one email at a time, scalar math
    (numpy's kernels and rounding, see :mod:`sim._scalar`)."""
    p = pop.preset
    pr = probabilities(pop, emails)
    u = _email_uniforms(rng, emails, pr)
    out: list[dict[str, Any]] = []
    learn = SUBJECT_STYLES.index("learn")
    edu = CONTENT_STRATEGIES.index("educational_nurturing")
    for i in range(len(emails)):
        sub, t, camp = int(emails.subscriber[i]), int(emails.time[i]), int(emails.campaign[i])
        row = sub - pop.start
        ui = u[i]
        machine = ui[0] < pr["p_machine_open"][i]
        human = ui[1] < pr["p_human_open"][i]
        z = np.sqrt(-2 * np.log(ui[2])) * np.cos(2 * math.pi * ui[3])
        delay = (p.open_delay_median_hours * 3600.0 * np.exp(OPEN_DELAY_SIGMA * z)
                 * (1.0 + pr["hour_distance"][i] / 6.0))
        t_human = t + int(max(float(MIN_OPEN_DELAY_S), delay))
        if machine:
            out.append({"subscriber": sub,
                        "time": t + _MACHINE[0] + math.floor(ui[4] * _MACHINE[1]),
                        "type": T.email_open, "campaign_id": camp, "machine": 1})
        elif human:
            out.append({"subscriber": sub, "time": t_human, "type": T.email_open,
                        "campaign_id": camp, "machine": 0})
        if human and ui[5] < pr["p_click_given_open"][i]:
            t_click = t_human + int(max(float(MIN_CLICK_DELAY_S),
                                        -np.log(ui[6]) * p.click_delay_mean_s))
            cart = bool(pr["cart_open"][i])
            alert = int(emails.alert_product[i])
            if cart:
                link = _LINK_CART
            elif alert >= 0:
                link = _LINK_PRODUCT
            elif emails.subject_style[i] == learn or emails.strategy[i] == edu:
                link = _LINK_CONTENT
            else:
                link = _LINK_PRODUCT if ui[7] < 0.85 else _LINK_CATEGORY
            out.append({"subscriber": sub, "time": t_click, "type": T.email_click,
                        "campaign_id": camp, "link_type": link})
            t_view = t_click + _VIEW[0] + math.floor(ui[8] * _VIEW[1])
            cat = int(pop.top_category[row])
            viewed = cat * 1000 + math.floor(ui[10] * 1000)
            if alert >= 0:
                cat, viewed = alert // PRODUCTS_PER_CATEGORY, alert
            out.append({"subscriber": sub, "time": t_view, "type": T.product_view,
                        "campaign_id": camp, "category": cat,
                        "product_id": viewed,
                        "time_on_page": np_round(30.0 + (-np.log(ui[9])) * p.time_on_page_mean_s,
                                              1)})
            if ui[11] < pr["p_purchase_given_click"][i]:
                t_buy = t_view + CHECKOUT_DELAY_S + int(-np.log(ui[12])
                                                        * p.purchase_delay_mean_s)
                zz = np.sqrt(-2 * np.log(ui[13])) * np.cos(2 * math.pi * ui[14])
                if cart:
                    revenue = np_round(float(pr["order_value"][i]), 2)
                    token = int(pop.cart_seq[row])
                    bought = int(pop.cart_product[row])
                else:
                    revenue = np_round(float(pr["order_value"][i]) * np.exp(
                        p.order_value_sigma * zz - 0.5 * p.order_value_sigma**2), 2)
                    token = -1
                    bought = viewed
                    out.append({"subscriber": sub, "time": t_buy - 90, "type": T.add_to_cart,
                                "campaign_id": camp, "cart_value": revenue, "items": 1.0,
                                "category": cat, "product_id": bought})
                out.append({"subscriber": sub, "time": t_buy - 30,
                            "type": T.checkout_started, "campaign_id": camp,
                            "cart_value": revenue})
                out.append({"subscriber": sub, "time": t_buy, "type": T.purchase_completed,
                            "campaign_id": camp, "revenue": revenue, "cart_value": revenue,
                            "token": token, "product_id": bought})
        if ui[15] < pr["p_unsubscribe"][i]:
            base_t = t_human if human else t + UNSUBSCRIBE_NO_OPEN_S
            out.append({"subscriber": sub, "time": base_t + UNSUBSCRIBE_DELAY_S[0]
                        + math.floor(ui[16] * UNSUBSCRIBE_DELAY_S[1]),
                        "type": T.unsubscribe, "campaign_id": camp})
    return out
