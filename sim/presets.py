"""Population presets: documented parameter sets, as data.

A preset is a :class:`Preset` (a frozen dataclass of numbers). Every field declares
what it is (probability, rate, ...), its unit and where its default comes from: the
docs/calibration.md row it was tuned to, or ``"assumption"`` when no published figure pins
it down (:func:`parameter_table` lists them all). Presets are picked by name
(:data:`PRESETS`) and overridden field by field; invalid values raise
:class:`~policies.errors.SpecError` naming the parameter, what was expected and what
was received.

Example
-------
>>> p = get_preset("retail", session_rate_per_day=0.3)
>>> p.session_rate_per_day
0.3
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

# Subject styles and content strategies are the policies' vocabulary (defined once in
# policies.base): their positions are the codes emails carry from policy to simulator.
from policies.base import CALLS_TO_ACTION, CONTENT_STRATEGIES, SUBJECT_STYLES
from policies.checks import expected, is_real
from policies.errors import SpecError

# Lifecycle stages (codes are positions) are the subscriber table's vocabulary, defined
# once in policies.subscriber_schema.
from policies.subscriber_schema import LIFECYCLE_STAGES

__all__ = [
    "CALLS_TO_ACTION",
    "CONTENT_STRATEGIES",
    "EMAIL_KINDS",
    "LIFECYCLE_STAGES",
    "PRESETS",
    "SEGMENTS",
    "SUBJECT_STYLES",
    "Preset",
    "get_preset",
    "parameter_table",
]

#: What an email is: a campaign or the trigger type that sent it.
EMAIL_KINDS: tuple[str, ...] = (
    "campaign",
    "cart_abandonment",
    "browse_abandonment",
    "engagement_momentum",
    "welcome",
    "reactivation",
    "other_trigger",
)
#: Hidden response segments used by the variant x segment interaction tables, in
#: priority order: new subscribers, low engagement (< 0.3), ready to convert
#: (readiness > 0.7), educational seekers, highly engaged (> 0.7), everyone else.
SEGMENTS: tuple[str, ...] = ("new", "low", "ready", "seeker", "engaged", "other")

_CAL_OPEN = "docs/calibration.md: campaign email open rate (15-30 %)"
_CAL_CLICK = "docs/calibration.md: campaign click rate per delivered (1.5-4.5 %)"
_CAL_CTO = "docs/calibration.md: click-to-open (8-18 %)"
_CAL_UNSUB = "docs/calibration.md: unsubscribe per delivered campaign email (0.1-0.5 %)"
_CAL_FLOW_OPEN = "docs/calibration.md: flow (triggered) email open (40-70 %)"
_CAL_FLOW_CLICK = "docs/calibration.md: flow click (3-13 %)"
_CAL_FLOW_ORDER = "docs/calibration.md: flow placed-order rate per recipient (1-6 %)"
_CAL_CART = "docs/calibration.md: cart abandonment (60-80 %)"
_CAL_RPR = "docs/calibration.md: revenue per recipient (order of magnitude)"
_CAL_MPP = "docs/calibration.md notes: opens inflated by mail-privacy proxies"
_CAL_NPE = "docs/calibration.md notes: RecSim net positive exposure"
_CAL_MARGIN = "docs/calibration.md notes: gross margins by industry (order of magnitude)"
_CAL_ALERT = ("docs/calibration.md: price-drop alert click rate per email (3-13 %); the split "
               "between interest and drop is an assumption")
_ASSUME = "assumption"


def _p(default: Any, kind: str, source: str, doc: str) -> Any:
    return field(default=default, metadata={"kind": kind, "source": source, "doc": doc})


def _table(rows: list[list[float]]) -> tuple[tuple[float, ...], ...]:
    return tuple(tuple(r) for r in rows)


@dataclass(frozen=True)
class Preset:
    """All numbers behind a simulated population, its behavior and its email response.

    Kinds: ``probability`` in [0, 1]; ``rate`` >= 0; ``positive`` > 0; ``real`` any
    finite number; ``mix`` a mapping lifecycle stage -> share summing to 1;
    ``weights`` non-negative numbers, not all zero; ``matrix`` a table of finite numbers.
    """

    # -- population ---------------------------------------------------------
    lifecycle_mix: Mapping[str, float] | tuple[tuple[str, float], ...] = _p(
        (("new_subscriber", 0.08), ("prospect", 0.42), ("new_customer", 0.10),
         ("customer", 0.28), ("lapsed", 0.12)),
        "mix", _ASSUME, "share of subscribers in each lifecycle stage at generation",
    )
    engagement_alpha: float = _p(2.0, "positive", _CAL_OPEN, "Beta(a, b) of engagement")
    engagement_beta: float = _p(2.6, "positive", _CAL_OPEN, "Beta(a, b) of engagement")
    lapsed_engagement_factor: float = _p(0.5, "probability", _ASSUME,
                                         "engagement multiplier of lapsed subscribers")
    intent_alpha: float = _p(1.5, "positive", _CAL_CART, "Beta(a, b) of purchase intent")
    intent_beta: float = _p(5.0, "positive", _CAL_CART, "Beta(a, b) of purchase intent")
    educational_share: float = _p(0.25, "probability", _ASSUME,
                                  "share of educational seekers")
    privacy_proxy_share: float = _p(0.15, "probability", _CAL_MPP,
                                    "share using a mail-privacy proxy (machine opens)")
    price_sensitivity_alpha: float = _p(2.0, "positive", _ASSUME, "Beta(a, b)")
    price_sensitivity_beta: float = _p(2.0, "positive", _ASSUME, "Beta(a, b)")
    n_categories: int = _p(12, "positive", _ASSUME, "number of product categories")
    preferred_hour_weights: tuple[float, ...] = _p(
        (0.2, 0.1, 0.1, 0.1, 0.1, 0.3, 0.8, 1.5, 2.2, 2.0, 1.4, 1.2,
         1.8, 1.4, 1.0, 0.9, 1.0, 1.3, 1.8, 2.4, 2.6, 1.9, 1.0, 0.5),
        "weights", _ASSUME, "distribution of the preferred local hour 0..23",
    )
    utc_offsets_minutes: tuple[float, ...] = _p(
        (-300.0, -360.0, -420.0, -480.0), "real", _ASSUME, "time zones (US)")
    utc_offset_weights: tuple[float, ...] = _p(
        (0.47, 0.29, 0.07, 0.17), "weights", _ASSUME, "population share per time zone")
    max_signup_age_days: float = _p(730.0, "positive", _ASSUME, "oldest signup, days")
    new_subscriber_days: float = _p(14.0, "positive", _ASSUME,
                                    "days a new subscriber stays 'new_subscriber'")
    lapse_after_days: float = _p(120.0, "positive", _ASSUME,
                                 "days without purchase before a customer lapses")
    # -- organic behavior ---------------------------------------------------
    session_rate_per_day: float = _p(0.09, "rate", _CAL_CART,
                                     "site sessions per subscriber-day at engagement 0.5")
    session_engagement_slope: float = _p(1.6, "rate", _ASSUME,
                                         "rate multiplier = 0.2 + slope * engagement")
    hour_spread_hours: float = _p(3.0, "positive", _ASSUME,
                                  "sd of session start hour around the preferred hour")
    views_mean_extra: float = _p(2.2, "rate", _ASSUME, "mean extra product views per session")
    time_on_page_mean_s: float = _p(38.0, "positive", _ASSUME, "mean time on a page, s")
    cart_probability: float = _p(0.55, "probability", _CAL_CART,
                                 "P(add to cart | session) at intent 1")
    session_purchase_probability: float = _p(0.14, "probability", _CAL_CART,
                                             "P(purchase in the session | cart)")
    checkout_start_probability: float = _p(0.35, "probability", _ASSUME,
                                           "P(checkout started | cart not bought)")
    return_probability: float = _p(0.08, "probability", _CAL_CART,
                                   "P(abandoned cart bought later with no email)")
    return_delay_mean_hours: float = _p(30.0, "positive", _ASSUME,
                                        "mean delay of an organic cart return, h")
    cart_clear_probability: float = _p(0.08, "probability", _ASSUME,
                                       "P(abandoned cart explicitly cleared later)")
    item_price_mean: float = _p(38.0, "positive", _CAL_RPR, "mean item price, currency")
    item_price_sigma: float = _p(0.6, "positive", _ASSUME, "log-sd of item price")
    # -- catalog (sim.catalog; docs/catalog.md) -------------------------------
    category_price_share: float = _p(0.3, "probability", _ASSUME,
                                     "share of the item-price log-variance between categories")
    margin_rate_mean: float = _p(0.40, "probability", _CAL_MARGIN,
                                 "mean gross margin rate of a category, of the list price")
    margin_rate_spread: float = _p(0.15, "probability", _CAL_MARGIN,
                                   "category margin rates uniform in mean +- spread")
    price_drop_rate_per_day: float = _p(0.01, "probability", _ASSUME,
                                        "P(a product's sale starts on a given day)")
    price_drop_min: float = _p(0.05, "probability", _ASSUME,
                               "smallest sale depth, fraction of the list price")
    price_drop_max: float = _p(0.40, "probability", _ASSUME,
                               "largest sale depth (depth uniform in [min, max])")
    price_drop_mean_days: float = _p(3.0, "positive", _ASSUME,
                                     "mean sale length (exponential, 1 h to 14 d), days")
    stockout_rate_per_day: float = _p(0.005, "probability", _ASSUME,
                                      "P(a product's stock-out starts on a given day)")
    restock_mean_days: float = _p(4.0, "positive", _ASSUME,
                                  "mean stock-out length (exponential, 1 h to 14 d), days")
    intent_reversion_per_day: float = _p(0.08, "probability", _ASSUME,
                                         "daily pull of intent back to its base")
    intent_noise_per_day: float = _p(0.04, "rate", _ASSUME,
                                     "daily intent noise (uniform half-width)")
    intent_after_purchase: float = _p(0.4, "probability", _ASSUME,
                                      "intent multiplier right after a purchase")
    engagement_drift_per_day: float = _p(0.03, "probability", _CAL_NPE,
                                         "daily pull of engagement to its fatigue-set target")
    engagement_open_bump: float = _p(0.01, "rate", _ASSUME, "engagement gain per human open")
    engagement_click_bump: float = _p(0.03, "rate", _ASSUME, "engagement gain per click")
    # -- email response -----------------------------------------------------
    open_base_campaign: float = _p(0.14, "probability", _CAL_OPEN,
                                   "P(human open) of a campaign at engagement 0.5")
    open_base_triggered: float = _p(0.35, "probability", _CAL_FLOW_OPEN,
                                    "P(human open) of a triggered email at engagement 0.5")
    open_engagement_slope: float = _p(3.0, "real", _CAL_OPEN,
                                      "logit change of P(open) per unit engagement")
    machine_open_probability: float = _p(0.92, "probability", _CAL_MPP,
                                         "P(proxy opens | proxy user)")
    click_base_campaign: float = _p(0.20, "probability", _CAL_CTO,
                                    "P(click | human open) of a campaign")
    click_base_triggered: float = _p(0.085, "probability", _CAL_FLOW_CLICK,
                                     "P(click | human open) of a triggered email")
    click_engagement_slope: float = _p(1.2, "real", _ASSUME, "logit per unit engagement")
    hour_match_gain: float = _p(0.45, "real", _ASSUME,
                                "logit gain of opens sent at the preferred hour")
    hour_match_width_hours: float = _p(2.0, "positive", _ASSUME,
                                       "width of the send-hour match bump, h")
    subject_open_effects: tuple[tuple[float, ...], ...] = _p(
        _table([  # new    low   ready seeker engaged other   (SEGMENTS)
            [0.00, 0.00, 0.00, 0.00, 0.00, 0.00],    # plain
            [0.05, -0.30, 0.05, 0.00, 0.40, 0.10],   # first_name
            [-0.10, 0.40, 0.00, -0.20, -0.30, -0.05],  # dont_miss
            [-0.10, 0.00, 0.45, -0.25, -0.15, 0.00],  # limited_time
            [0.35, -0.10, -0.20, 0.45, -0.05, -0.02],  # learn
            [0.10, 0.10, -0.05, 0.10, 0.00, 0.12],   # question
        ]),
        "matrix", _ASSUME, "open logit effect of subject style (rows) x segment (cols)",
    )
    subject_clickbait: tuple[float, ...] = _p(
        (0.3, 0.3, 0.8, 0.8, 0.2, 0.5), "weights", _CAL_NPE,
        "clickbait score of each subject style, in [0, 1]",
    )
    kind_open_offsets: tuple[float, ...] = _p(
        (0.0, 0.45, 0.0, 0.3, 0.3, 0.0, 0.0), "real", _CAL_FLOW_OPEN,
        "open logit offset of each email kind (EMAIL_KINDS order); reactivation: the "
        "win-back rows of docs/calibration.md",
    )
    kind_click_offsets: tuple[float, ...] = _p(
        (0.0, 0.35, 0.0, 0.5, 0.0, 0.7, 0.0), "real", _CAL_FLOW_CLICK,
        "click logit offset of each email kind (EMAIL_KINDS order); reactivation: the "
        "win-back rows of docs/calibration.md",
    )
    strategy_match_click_gain: float = _p(0.35, "real", _ASSUME,
                                          "click logit gain when content fits the segment")
    personalization_click_gain: float = _p(0.30, "real", _ASSUME,
                                           "click logit gain of high personalization, engaged")
    personalization_engagement_threshold: float = _p(0.6, "probability", _ASSUME,
                                                     "engagement above which it helps fully")
    # -- interactions between email elements (docs/domain.md, "Interactions") --
    cta_click_effects: tuple[float, ...] = _p(
        (0.10, -0.10, -0.05), "real", _ASSUME,
        "click logit effect of each call to action (CALLS_TO_ACTION order); none: 0",
    )
    subject_cta_click_effects: tuple[tuple[float, ...], ...] = _p(
        _table([  # shop_now see_offer learn_more   (CALLS_TO_ACTION)
            [0.00, 0.00, 0.00],      # plain
            [0.00, 0.00, 0.00],      # first_name
            [0.10, 0.05, -0.10],     # dont_miss
            [0.20, 0.05, -0.20],     # limited_time
            [-0.15, -0.10, 0.25],    # learn
            [-0.05, 0.00, 0.10],     # question
        ]),
        "matrix", _ASSUME,
        "click logit interaction of subject style (rows) x call to action (cols): a "
        "button that keeps the subject's promise gains, one that breaks it loses",
    )
    offer_cta_incentive_click_gain: float = _p(
        0.40, "real", _ASSUME,
        "click logit gain of the see_offer button on an email with a discount",
    )
    subject_discount_buy_gain: tuple[float, ...] = _p(
        (0.0, 0.0, 0.4, 0.8, 0.0, 0.0), "real", _ASSUME,
        "deadline subject x discount: the discount's purchase effect x (1 + gain) for "
        "each subject style (SUBJECT_STYLES order)",
    )
    urgency_open_gain: float = _p(0.12, "real", _CAL_NPE, "open logit gain of urgency")
    urgency_click_gain: float = _p(0.25, "real", _CAL_NPE, "click logit gain of urgency")
    satisfaction_weight: float = _p(0.8, "real", _CAL_NPE,
                                    "open logit per unit of (2 satisfaction - 1)")
    npe_discount_per_day: float = _p(0.85, "probability", _CAL_NPE,
                                     "daily memory discount of net positive exposure")
    npe_email_cost: float = _p(0.2, "rate", _CAL_NPE, "NPE lost per email (frequency)")
    npe_clickbait_cost: float = _p(0.35, "rate", _CAL_NPE,
                                   "NPE change per email = -cost * 2 (clickbait - 0.5)")
    npe_noise: float = _p(0.05, "rate", _CAL_NPE, "NPE noise per email (uniform half-width)")
    satisfaction_sensitivity: float = _p(1.0, "positive", _CAL_NPE,
                                         "satisfaction = sigmoid(sensitivity * NPE)")
    buy_base_campaign: float = _p(0.05, "probability", _CAL_RPR,
                                  "P(purchase | click) of a campaign at intent 0.2")
    buy_base_triggered: float = _p(0.18, "probability", _CAL_FLOW_ORDER,
                                   "P(purchase | click) of browse/other triggers at intent 0.2")
    cart_buy_given_click: float = _p(0.75, "probability", _CAL_FLOW_ORDER,
                                     "P(purchase | click) of a cart reminder, fresh cart")
    intent_decay_hours: float = _p(24.0, "positive", _ASSUME,
                                   "e-folding time of cart intent after abandonment, h")
    returner_buy_boost: float = _p(0.3, "probability", _ASSUME,
                                   "extra P(purchase | click) of would-return subscribers")
    incentive_buy_slope: float = _p(2.5, "rate", _ASSUME,
                                    "purchase multiplier 1 + slope * incentive * price_sens")
    # -- responses to series, alerts and lapsed subscribers (docs/domain.md) ---
    series_open_decay: float = _p(0.25, "rate", _ASSUME,
                                  "open logit lost per earlier email of the journey instance")
    series_click_decay: float = _p(0.15, "rate", _ASSUME,
                                   "click logit lost per earlier email of the journey instance")
    series_npe_cost: float = _p(0.1, "rate", _CAL_NPE,
                                "extra NPE lost by the k-th email of a series: cost * k")
    series_unsubscribe_gain: float = _p(0.3, "rate", _ASSUME,
                                        "P(unsubscribe) multiplier 1 + gain * series index")
    alert_interest_click_gain: float = _p(0.75, "rate", _CAL_ALERT,
                                          "click logit per unit of the subscriber's view "
                                          "share of the alert product's category")
    alert_drop_click_gain: float = _p(1.0, "rate", _CAL_ALERT,
                                      "click logit per unit of the alert's drop fraction")
    lapsed_inactive_days: float = _p(60.0, "positive", _ASSUME,
                                     "days without engagement after which a subscriber "
                                     "is lapsed for the email response")
    lapsed_open_offset: float = _p(-0.5, "real", _ASSUME,
                                   "open logit offset of an email to a lapsed subscriber")
    lapsed_buy_factor: float = _p(0.5, "probability", _ASSUME,
                                  "P(purchase | click) multiplier of a lapsed subscriber")
    lapsed_unsubscribe_factor: float = _p(2.0, "positive", _ASSUME,
                                          "P(unsubscribe) multiplier of a lapsed subscriber")
    order_value_mean: float = _p(80.0, "positive", _CAL_RPR, "mean non-cart order value")
    order_value_sigma: float = _p(0.5, "positive", _ASSUME, "log-sd of order value")
    unsubscribe_base_campaign: float = _p(0.0022, "probability", _CAL_UNSUB,
                                          "P(unsubscribe) per campaign email, neutral NPE")
    unsubscribe_base_triggered: float = _p(0.0012, "probability", _ASSUME,
                                           "P(unsubscribe) per triggered email")
    unsubscribe_npe_beta: float = _p(0.9, "rate", _CAL_NPE,
                                     "P(unsubscribe) multiplier exp(-beta * NPE)")
    urgency_unsubscribe_factor: float = _p(1.4, "positive", _CAL_NPE,
                                           "P(unsubscribe) multiplier of urgent emails")
    open_delay_median_hours: float = _p(1.5, "positive", _ASSUME, "median human open delay")
    click_delay_mean_s: float = _p(90.0, "positive", _ASSUME, "mean open-to-click delay, s")
    purchase_delay_mean_s: float = _p(900.0, "positive", _ASSUME,
                                      "mean click-to-purchase delay, s")

    def __post_init__(self) -> None:
        for f in fields(self):
            _check(f.name, f.metadata["kind"], getattr(self, f.name), self)

    def mix(self) -> dict[str, float]:
        """The lifecycle mix as a dict stage -> share."""
        return dict(_mix_items(self.lifecycle_mix))


def _mix_items(value: Any) -> list[tuple[str, float]]:
    if isinstance(value, Mapping):
        return [(k, v) for k, v in value.items()]
    return [(k, v) for k, v in value]


def _finite(name: str, value: Any, what: str) -> float:
    if not isinstance(value, int | float) or not is_real(value):  # Python numbers only
        raise expected(SpecError, name, what, value)
    return float(value)


#: Vector parameters with one entry per word of a vocabulary: (what, vocabulary).
_VECTOR_LENGTHS: dict[str, tuple[str, tuple[str, ...]]] = {
    "kind_open_offsets": ("offsets (one per email kind)", EMAIL_KINDS),
    "kind_click_offsets": ("offsets (one per email kind)", EMAIL_KINDS),
    "cta_click_effects": ("effects (one per call to action)", CALLS_TO_ACTION),
    "subject_discount_buy_gain": ("gains (one per subject style)", SUBJECT_STYLES),
}


def _check(name: str, kind: str, value: Any, preset: Preset) -> None:
    if kind == "probability":
        v = _finite(name, value, "a probability in [0, 1]")
        if not 0.0 <= v <= 1.0:
            raise expected(SpecError, name, "a probability in [0, 1]", value)
    elif kind == "rate":
        v = _finite(name, value, "a rate >= 0")
        if v < 0:
            raise expected(SpecError, name, "a rate >= 0", value)
    elif kind == "positive":
        v = _finite(name, value, "a number > 0")
        if v <= 0:
            raise expected(SpecError, name, "a number > 0", value)
    elif kind == "real":
        if isinstance(value, tuple | list):
            for i, x in enumerate(value):
                _finite(f"{name}[{i}]", x, "a finite number")
            if name in _VECTOR_LENGTHS and len(value) != len(_VECTOR_LENGTHS[name][1]):
                what, vocab = _VECTOR_LENGTHS[name]
                raise SpecError(f"{name}: expected {len(vocab)} {what}, got {len(value)}")
        else:
            _finite(name, value, "a finite number")
    elif kind == "weights":
        if not isinstance(value, tuple | list) or not value:
            raise expected(SpecError, name, "a non-empty list of weights", value)
        for i, x in enumerate(value):
            v = _finite(f"{name}[{i}]", x, "a weight >= 0")
            if v < 0:
                raise expected(SpecError, f"{name}[{i}]", "a weight >= 0", x)
        if sum(float(x) for x in value) <= 0:
            raise expected(SpecError, name, "weights with a positive sum", value)
        if name == "preferred_hour_weights" and len(value) != 24:
            raise SpecError(f"{name}: expected 24 weights (hours 0..23), got {len(value)}")
        if name == "subject_clickbait":
            if len(value) != len(SUBJECT_STYLES):
                raise SpecError(
                    f"{name}: expected {len(SUBJECT_STYLES)} scores, got {len(value)}")
            for i, x in enumerate(value):
                if x > 1:
                    raise expected(SpecError, f"{name}[{i}]", "a score in [0, 1]", x)
        if name == "utc_offset_weights" and len(value) != len(preset.utc_offsets_minutes):
            raise SpecError(
                f"{name}: expected {len(preset.utc_offsets_minutes)} weights (one per "
                f"utc_offsets_minutes entry), got {len(value)}"
            )
    elif kind == "mix":
        try:
            items = _mix_items(value)
        except (TypeError, ValueError):
            raise expected(SpecError, name, "a mapping lifecycle stage -> share", value) from None
        for stage, share in items:
            if stage not in LIFECYCLE_STAGES:
                raise SpecError(
                    f"{name}: unknown lifecycle stage {stage!r}; expected one of "
                    f"{', '.join(LIFECYCLE_STAGES)}"
                )
            v = _finite(f"{name}[{stage!r}]", share, "a share in [0, 1]")
            if not 0 <= v <= 1:
                raise expected(SpecError, f"{name}[{stage!r}]", "a share in [0, 1]", share)
        total = sum(float(s) for _, s in items)
        if abs(total - 1.0) > 1e-6:
            raise SpecError(f"{name}: expected shares summing to 1, got {total:g}")
    elif kind == "matrix":
        shape = (len(SUBJECT_STYLES),
                 len(CALLS_TO_ACTION) if name == "subject_cta_click_effects" else len(SEGMENTS))
        if (
            not isinstance(value, tuple | list)
            or len(value) != shape[0]
            or any(not isinstance(r, tuple | list) or len(r) != shape[1] for r in value)
        ):
            raise expected(SpecError, name, f"a {shape[0]} x {shape[1]} table", value)
        for i, row in enumerate(value):
            for j, x in enumerate(row):
                _finite(f"{name}[{i}][{j}]", x, "a finite number")
    if name == "price_drop_max" and not preset.price_drop_min <= value < 1.0:
        lo = preset.price_drop_min
        raise expected(SpecError, name, f"a fraction in [price_drop_min={lo:g}, 1)", value)
    if name == "n_categories" and (not isinstance(value, int) or value > 127):
        raise expected(SpecError, name, "an integer in [1, 127]", value)


#: Named presets. ``retail`` is the default calibrated population; ``low_engagement``
#: is an older, colder list (same response model) for robustness experiments.
PRESETS: dict[str, Preset] = {
    "retail": Preset(),
    "low_engagement": Preset(engagement_alpha=1.4, engagement_beta=3.6,
                             lifecycle_mix=(("new_subscriber", 0.03), ("prospect", 0.45),
                                            ("new_customer", 0.05), ("customer", 0.22),
                                            ("lapsed", 0.25))),
}


def get_preset(preset: str | Preset | Mapping[str, Any] = "retail", **overrides: Any) -> Preset:
    """Resolve a preset name (or a Preset, or a mapping of overrides on ``retail``).

    Unknown names or fields raise :class:`SpecError`; values are validated.
    """
    if isinstance(preset, Preset):
        base = preset
    elif isinstance(preset, str):
        if preset not in PRESETS:
            raise expected(SpecError, "preset", f"one of {', '.join(sorted(PRESETS))}", preset)
        base = PRESETS[preset]
    elif isinstance(preset, Mapping):
        return get_preset("retail", **{**dict(preset), **overrides})
    else:
        raise expected(SpecError, "preset", "a name, a Preset or a mapping", preset)
    if not overrides:
        return base
    known = {f.name for f in fields(Preset)}
    for key in overrides:
        if key not in known:
            raise SpecError(f"preset.{key}: unknown parameter (known: {', '.join(sorted(known))})")
    return replace(base, **overrides)


def parameter_table(preset: Preset | None = None) -> list[dict[str, Any]]:
    """Rows ``{parameter, value, kind, source, doc}`` documenting every default."""
    p = preset or PRESETS["retail"]
    return [
        {
            "parameter": f.name,
            "value": getattr(p, f.name),
            "kind": f.metadata["kind"],
            "source": f.metadata["source"],
            "doc": f.metadata["doc"],
        }
        for f in fields(Preset)
    ]
