"""Issue 19, "nothing silently does nothing": rules that can never fire, bad subscriber
tables.

Tables of (input, expected message): rules refused at load (a ``where`` column no event
carries, a ``segment`` test no subscriber can pass), subscriber tables refused by both
engines with the column, row and value, and the warnings and diagnostics of rules that
cannot fire on the data the engine was given (same in both engines, through updates and
checkpoints).
"""

from __future__ import annotations

import copy
import pickle
import re
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest
from trigger_helpers import DAY, T0, events

from policies import register_event_column
from policies.errors import InvalidEventError, RuleError, RuleWarning, TriggerLabValueError
from policies.event_schema import column_kind
from policies.subscriber_schema import LIFECYCLE_STAGES, SUBSCRIBER_COLUMNS, check_subscriber_table
from policies.triggers import (
    Condition,
    Predicate,
    Rule,
    TriggerEngine,
    default_rules,
    load_rules,
)
from policies.triggers.diagnostics import DIAGNOSTIC_COLUMNS

ENGINES = ("reference", "fast")
both_engines = pytest.mark.parametrize("engine_name", ENGINES)

CART: dict[str, Any] = {
    "id": "cart", "type": "cart_abandonment",
    "when": [{"event": "add_to_cart", "within": "60m"}], "delay": "1h", "expire": "3d",
}
STAGES = ", ".join(LIFECYCLE_STAGES)


def _rules(segment: Any = None, where: Any = None, **rule: Any) -> dict[str, Any]:
    r = copy.deepcopy({**CART, **rule})
    if segment is not None:
        r["segment"] = segment
    if where is not None:
        r["when"][0]["where"] = where
    return {"rules": [r]}


# ---------------------------------------------------------------------------
# refused at load: certainly wrong whatever the data

BAD_RULES = [
    # a segment value outside a documented vocabulary (the example)
    ("stage-vip", _rules({"lifecycle_stage": {"in": ["vip"]}}),
     rf"^rules\[0\]\.segment\.lifecycle_stage\.in\[0\]: expected one of {STAGES}, got "
     r"'vip'; no subscriber can have it$"),
    ("stage-second", _rules({"lifecycle_stage": {"in": ["customer", "vip"]}}),
     r"^rules\[0\]\.segment\.lifecycle_stage\.in\[1\]: .* got 'vip'"),
    ("stage-bare-typo", _rules({"lifecycle_stage": "prospects"}),
     r"^rules\[0\]\.segment\.lifecycle_stage: expected one of .*, got 'prospects' \(did you "
     r"mean 'prospect'\?\); no subscriber can have it$"),
    ("stage-case", _rules({"lifecycle_stage": {"equals": "Customer"}}),
     r"^rules\[0\]\.segment\.lifecycle_stage\.equals: .*got 'Customer' \(did you mean "
     r"'customer'\?\)"),
    ("stage-code", _rules({"lifecycle_stage": {"in": [1, 2]}}),
     r"lifecycle_stage\.in\[0\]: expected one of .*, got 1;"),
    ("stage-min", _rules({"lifecycle_stage": {"min": 1}}),
     r"^rules\[0\]\.segment\.lifecycle_stage\.min: lifecycle_stage is a category: test it "
     r"with equals or in, got min 1$"),
    # bounds no documented value passes
    ("score-min", _rules({"engagement_score": {"min": 1.5}}),
     r"^rules\[0\]\.segment\.engagement_score\.min: no subscriber can pass: engagement_score "
     r"is a number in \[0, 1\], got min 1\.5$"),
    ("score-max", _rules({"engagement_score": {"max": -0.1}}),
     r"engagement_score\.max: no subscriber can pass: .* got max -0\.1$"),
    ("readiness-min", _rules({"conversion_readiness": {"min": 2}}),
     r"conversion_readiness\.min: no subscriber can pass"),
    ("days-max", _rules({"days_since_engagement": {"max": -1}}),
     r"days_since_engagement\.max: no subscriber can pass: days_since_engagement is a number "
     r">= 0, got max -1$"),
    ("hour-min", _rules({"preferred_hour": {"min": 24}}),
     r"preferred_hour\.min: .*a whole number in \[0, 23\], got min 24$"),
    ("offset-min", _rules({"utc_offset_minutes": {"min": 1441}}),
     r"utc_offset_minutes\.min: no subscriber can pass"),
    ("purchases-max", _rules({"n_purchases": {"max": -1}}), r"n_purchases\.max: "),
    ("cart-value-max", _rules({"cart_value": {"max": -5}}), r"cart_value\.max: "),
    ("subscribed-min", _rules({"subscribed": {"min": 2}}),
     r"subscribed\.min: no subscriber can pass: subscribed is true or false, got min 2$"),
    # values of the wrong type or outside the domain
    ("score-word", _rules({"engagement_score": {"in": ["high"]}}),
     r"engagement_score\.in\[0\]: expected a number in \[0, 1\], got 'high'; no subscriber"),
    ("score-bool", _rules({"engagement_score": {"equals": True}}),
     r"engagement_score\.equals: expected a number in \[0, 1\], got True"),
    ("score-out", _rules({"engagement_score": 2}),
     r"^rules\[0\]\.segment\.engagement_score: expected a number in \[0, 1\], got 2;"),
    ("hour-fraction", _rules({"preferred_hour": 8.5}),
     r"preferred_hour: expected a whole number in \[0, 23\], got 8\.5"),
    ("hour-24", _rules({"preferred_hour": {"in": [8, 24]}}), r"preferred_hour\.in\[1\]: "),
    ("top-negative", _rules({"top_category": -1}), r"top_category: expected a whole number >= 0"),
    ("subscribed-word", _rules({"subscribed": "yes"}),
     r"subscribed: expected true or false, got 'yes'"),
    ("seeker-maybe", _rules({"educational_seeker": {"in": [True, "maybe"]}}),
     r"educational_seeker\.in\[1\]: expected true or false, got 'maybe'"),
    ("subscribed-2", _rules({"subscribed": 2}), r"subscribed: expected true or false, got 2"),
    # where on a column no event carries
    ("where-typo", _rules(where={"cart_vlaue": {"min": 25}}),
     r"^rules\[0\]\.when\[0\]\.where\.cart_vlaue: unknown event data column 'cart_vlaue' "
     r"\(did you mean 'cart_value'\?\); known: cart_value, .* \(declare yours with "
     r"register_event_column\('cart_vlaue', 'float'\) or register_categories\)$"),
    ("where-case", _rules(where={"Cart_Value": {"min": 25}}),
     r"where\.Cart_Value: unknown event data column 'Cart_Value' \(did you mean 'cart_value'"),
    ("where-undeclared", _rules(where={"page_url": 3}),
     r"where\.page_url: unknown event data column 'page_url'; known: "),
    ("where-word-first", _rules(where={"coupon": "SPRING"}),
     r"where\.coupon: unknown event data column"),  # the column, not 'expected a number'
    ("where-second-condition", {"rules": [{**CART, "when": [
        {"event": "add_to_cart", "within": "1h"},
        {"event": "product_view", "within": "1h", "where": {"time_on_pgae": {"min": 3}}}]}]},
     r"^rules\[0\]\.when\[1\]\.where\.time_on_pgae: .*did you mean 'time_on_page'"),
    # the ones that were refused before (kept)
    ("where-category-word", _rules(where={"link_type": "produkt"}),
     r"where\.link_type: unknown category 'produkt'"),
    ("min-above-max", _rules(where={"cart_value": {"min": 30, "max": 20}}),
     r"expected min <= max"),
]


@pytest.mark.parametrize(("data", "message"), [c[1:] for c in BAD_RULES],
                         ids=[c[0] for c in BAD_RULES])
def test_rules_that_can_never_fire_are_refused(data: dict, message: str) -> None:
    with pytest.raises(RuleError, match=message):
        load_rules(data)


GOOD_RULES = [
    ("score-bounds", {"engagement_score": {"min": 1.0}}),
    ("score-max-0", {"engagement_score": {"max": 0}}),
    ("score-in", {"engagement_score": {"in": [0, 0.5, 1]}}),
    ("hour-edges", {"preferred_hour": {"in": [0, 23]}}),
    ("hour-float-whole", {"preferred_hour": 8.0}),
    ("offset-edges", {"utc_offset_minutes": {"min": -1440, "max": 1440}}),
    ("subscribed-true", {"subscribed": True}),
    ("subscribed-1", {"subscribed": 1}),
    ("subscribed-max-0", {"subscribed": {"max": 0}}),
    ("stage-every", {"lifecycle_stage": {"in": list(LIFECYCLE_STAGES)}}),
    ("signup-any", {"signup_time": {"min": -5}}),
    ("custom-column", {"tier": {"in": ["gold", "platinum"]}}),
    ("custom-numeric", {"ltv": {"min": 1e9}}),
    ("no-segment", {}),
]


@pytest.mark.parametrize("segment", [c[1] for c in GOOD_RULES], ids=[c[0] for c in GOOD_RULES])
def test_segments_some_subscriber_can_pass_load(segment: dict) -> None:
    assert load_rules(_rules(segment)).ids == ("cart",)


def test_dataclasses_refuse_the_same() -> None:
    """Rules built in Python get the same checks (paths relative to the object)."""
    when = (Condition("add_to_cart", 60),)
    with pytest.raises(RuleError, match=r"^segment\.lifecycle_stage\.in\[1\]: .*got 'vip'"):
        Rule("r", "cart_abandonment", when, delay=0, expire=0,
             segment=(Predicate("lifecycle_stage", "in", ("customer", "vip")),))
    with pytest.raises(RuleError, match=r"^segment\.engagement_score\.min: no subscriber"):
        Rule("r", "cart_abandonment", when, delay=0, expire=0,
             segment=(Predicate("engagement_score", "min", 3),))
    with pytest.raises(RuleError, match=r"^where\.cart_vlaue: unknown event data column"):
        Condition("add_to_cart", 60, where=(Predicate("cart_vlaue", "min", 1),))


def test_declared_columns_may_be_tested() -> None:
    register_event_column("i19_coupon_amount", "float")
    register_event_column("i19_coupon_amount", "float")  # idempotent
    register_event_column("i19_store", "int")
    rules = load_rules(_rules(where={"i19_coupon_amount": {"min": 5}, "i19_store": {"in": [3]}}))
    assert column_kind("i19_store") == "int"
    subs = pd.DataFrame({"utc_offset_minutes": [0]}, index=pd.Index([1], name="subscriber"))
    batch = events((1, T0, "add_to_cart", {"i19_coupon_amount": 6.0, "i19_store": 3}))
    for name in ENGINES:
        d = TriggerEngine(rules, subscribers=subs, engine=name).process(batch, until=T0 + DAY)
        assert d.kind.tolist() == [0], name  # fired


@pytest.mark.parametrize(("args", "message"), [
    (("cart_value", "int"), r"^cart_value: already declared as 'float', not 'int'$"),
    (("link_type", "float"), r"^link_type: already declared as 'int'"),
    (("time", "float"), r"^column: expected a data column name, got 'time'"),
    (("no such", "float"), r"^column: expected a data column name"),
    (("x_i19", "text"), r"^kind: expected 'float' or 'int', got 'text'"),
])
def test_register_event_column_refuses(args: tuple, message: str) -> None:
    with pytest.raises(InvalidEventError, match=message):
        register_event_column(*args)


# ---------------------------------------------------------------------------
# subscriber tables: every column the engine reads, checked the same in both engines

SEGMENTED = _rules({"lifecycle_stage": {"in": ["prospect", "customer"]},
                    "engagement_score": {"min": 0.3}, "subscribed": True,
                    "preferred_hour": {"max": 20}, "days_since_engagement": {"max": 14},
                    "score": {"min": 1}})


def _table(ids: list[int] | None = None, **cols: Any) -> pd.DataFrame:
    """Two valid subscribers (or ``len(ids)``), with ``cols`` replacing columns."""
    n = len(ids) if ids is not None else len(next(iter(cols.values()), [0, 0]))
    base: dict[str, Any] = {
        "lifecycle_stage": ["prospect"] * n, "engagement_score": [0.5] * n,
        "subscribed": [True] * n, "preferred_hour": [9] * n,
        "days_since_engagement": [1.0] * n, "score": [2.0] * n,
        "utc_offset_minutes": [0] * n,
    }
    base.update(cols)
    return pd.DataFrame(base, index=pd.Index(ids or list(range(1, n + 1)), name="subscriber"))


BAD_TABLES = [
    # the two examples
    ("score-word", _table(engagement_score=[0.2, "high"]),
     r"^subscribers\.engagement_score\[1\]: expected a number in \[0, 1\] or missing, got "
     r"'high' \(subscriber 2\)$"),
    ("offset-10000", _table(utc_offset_minutes=[0, 10_000]),
     r"^subscribers\.utc_offset_minutes\[1\]: expected whole minutes in \[-1440, 1440\] or "
     r"missing, got 10000 \(subscriber 2\)$"),
    # numbers that are not
    ("score-text-number", _table(engagement_score=["0.5", 0.3]),
     r"engagement_score\[0\]: .*got '0\.5' \(subscriber 1\)$"),
    ("score-several", _table(engagement_score=[0.2, "high", "x"]),
     r"engagement_score\[1\]: .*got 'high' \(subscriber 2; 2 bad rows\)$"),
    ("score-inf", _table(engagement_score=[0.1, np.inf]), r"engagement_score\[1\]: .*got inf"),
    ("score-minus-inf", _table(engagement_score=[-np.inf, 0.1]), r"\[0\]: .*got -inf"),
    ("score-bools", _table(engagement_score=[True, False]),
     r"engagement_score\[0\]: .*got True \(subscriber 1; 2 bad rows\)$"),
    ("score-above", _table(engagement_score=[0.5, 1.5]), r"engagement_score\[1\]: .*got 1\.5"),
    ("score-below", _table(engagement_score=[-0.1, 0.5]), r"engagement_score\[0\]: .*-0\.1"),
    ("score-timestamps", _table(engagement_score=pd.to_datetime(["2024-01-01", "2024-01-02"])),
     r"engagement_score\[0\]: expected a number .*got Timestamp"),
    ("days-negative", _table(days_since_engagement=[1.0, -2.0]),
     r"days_since_engagement\[1\]: expected a number >= 0 or missing, got -2\.0"),
    ("hour-fraction", _table(preferred_hour=[8.5, 9.0]),
     r"preferred_hour\[0\]: expected a whole number in \[0, 23\] or missing, got 8\.5"),
    ("hour-25", _table(preferred_hour=[9, 25]), r"preferred_hour\[1\]: .*got 25"),
    ("hour-text", _table(preferred_hour=["9", "10"]), r"preferred_hour\[0\]: .*got '9'"),
    ("offset-fraction", _table(utc_offset_minutes=[0.0, 30.5]), r"\[1\]: .*got 30\.5"),
    ("offset-inf", _table(utc_offset_minutes=[0.0, -np.inf]), r"\[1\]: .*got -inf"),
    # categories outside their vocabulary, booleans that are not
    ("stage-vip", _table(lifecycle_stage=["prospect", "vip"]),
     rf"^subscribers\.lifecycle_stage\[1\]: expected one of {STAGES} or missing, got 'vip' "
     r"\(subscriber 2\)$"),
    ("stage-case", _table(lifecycle_stage=["Prospect", "prospect"]), r"\[0\]: .*'Prospect'"),
    ("stage-codes", _table(lifecycle_stage=[1, 3]),
     r"lifecycle_stage\[0\]: expected one of .* got 1 \(subscriber 1; 2 bad rows\)"),
    ("stage-bools", _table(lifecycle_stage=[True, True]), r"lifecycle_stage\[0\]: .*got True"),
    ("stage-categorical", _table(lifecycle_stage=pd.Categorical(["prospect", "VIP"])),
     r"lifecycle_stage\[1\]: .*got 'VIP'"),
    ("subscribed-words", _table(subscribed=["yes", "no"]),
     r"subscribed\[0\]: expected true, false or missing, got 'yes'"),
    ("subscribed-2", _table(subscribed=[1, 2]), r"subscribed\[1\]: .*got 2 \(subscriber 2\)$"),
    # a column of the user's own that a segment tests with min/max
    ("custom-words", _table(score=["a", 3.0]),
     r"^subscribers\.score\[0\]: expected a number or missing \(a segment tests it with "
     r"min/max\), got 'a' \(subscriber 1\)$"),
    ("custom-bools", _table(score=[True, False]), r"score\[0\]: .*got True"),
    # the row is named by position and id
    ("ids-named", _table(ids=[100, 7, 300], engagement_score=[0.1, 0.2, "x"]),
     r"engagement_score\[2\]: .*got 'x' \(subscriber 300\)$"),
    ("duplicate-column", pd.concat([_table(), _table()[["score"]]], axis=1),
     r"^subscribers\.score: duplicate column name$"),
]


@both_engines
@pytest.mark.parametrize(("table", "message"), [c[1:] for c in BAD_TABLES],
                         ids=[c[0] for c in BAD_TABLES])
def test_bad_tables_name_column_row_and_value(engine_name: str, table: pd.DataFrame,
                                              message: str) -> None:
    with pytest.raises(TriggerLabValueError, match=message):
        TriggerEngine(SEGMENTED, subscribers=table, engine=engine_name)
    engine = TriggerEngine(SEGMENTED, subscribers=_table(), engine=engine_name)
    before = engine.diagnostics()
    with pytest.raises(TriggerLabValueError, match=message):
        engine.update_subscribers(table)
    assert engine.diagnostics().equals(before)  # nothing of the bad table was taken


GOOD_TABLES = [
    ("missing-cells", _table(engagement_score=[np.nan, 0.5], lifecycle_stage=[None, "lapsed"],
                             subscribed=[None, True], score=[np.nan, None])),
    ("nullable-dtypes", _table(engagement_score=pd.array([pd.NA, 0.4], dtype="Float64"),
                               utc_offset_minutes=pd.array([pd.NA, -300], dtype="Int64"),
                               subscribed=pd.array([pd.NA, True], dtype="boolean"))),
    ("string-dtype", _table(lifecycle_stage=pd.array(["prospect", None], dtype="string"))),
    ("categorical", _table(lifecycle_stage=pd.Categorical(["prospect", "customer"]))),
    ("whole-floats", _table(preferred_hour=[8.0, np.nan], utc_offset_minutes=[-60.0, 60.0])),
    ("ints-for-bools", _table(subscribed=[0, 1])),
    ("edges", _table(engagement_score=[0.0, 1.0], utc_offset_minutes=[-1440, 1440],
                     preferred_hour=[0, 23])),
    ("custom-inf", _table(score=[np.inf, -np.inf])),
    ("unread-columns", _table(conversion_readiness=["x", "y"], n_purchases=[-1, 2.5],
                              tier=[object(), 3])),
    ("no-columns", pd.DataFrame(index=pd.Index([1, 2], name="subscriber"))),
    ("empty", _table(ids=[]).iloc[:0]),
]


@both_engines
@pytest.mark.parametrize("table", [c[1] for c in GOOD_TABLES], ids=[c[0] for c in GOOD_TABLES])
def test_tables_the_engine_accepts(engine_name: str, table: pd.DataFrame) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuleWarning)
        engine = TriggerEngine(SEGMENTED, subscribers=table, engine=engine_name)
        engine.update_subscribers(table)
    assert engine.diagnostics().shape == (1, len(DIAGNOSTIC_COLUMNS))


def test_the_check_alone_covers_every_documented_column() -> None:
    """Without a column list, every documented column present is checked (other callers
    than the engine)."""
    good = {"lifecycle_stage": "lapsed", "engagement_score": 0.1, "conversion_readiness": 1,
            "educational_seeker": False, "price_sensitivity": 0.0,
            "days_since_engagement": 0.0, "preferred_hour": 23, "utc_offset_minutes": -1440,
            "subscribed": True, "top_category": 0, "second_category": 11,
            "signup_time": 1_700_000_000, "n_purchases": 0, "cart_value": 0.0,
            "last_engaged_at": 1_700_000_000}
    assert set(good) == set(SUBSCRIBER_COLUMNS)
    df = pd.DataFrame([good], index=pd.Index([5], name="subscriber"))
    check_subscriber_table(df)
    for column, bad in [("conversion_readiness", 1.01), ("price_sensitivity", "low"),
                        ("top_category", -1), ("second_category", 2.5), ("n_purchases", -3),
                        ("cart_value", -0.01), ("educational_seeker", "no"),
                        ("signup_time", 1.5), ("last_engaged_at", "yesterday")]:
        with pytest.raises(TriggerLabValueError,
                           match=rf"^subscribers\.{column}\[0\]: expected .* \(subscriber 5\)$"):
            check_subscriber_table(df.assign(**{column: [bad]}))


# ---------------------------------------------------------------------------
# data-dependent: warnings and diagnostics, the same from both engines

def _warned(make: Any, *args: Any, **kwargs: Any) -> tuple[Any, list[str]]:
    """``make(*args, **kwargs)`` and the RuleWarnings it issued."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = make(*args, **kwargs)
    texts = [str(w.message) for w in caught if issubclass(w.category, RuleWarning)]
    return out, texts


TIER = _rules({"tier": {"in": ["gold", "platnum"]}})
WARN_CASES = [
    # (rules, table, expected warning regex or None, in_segment, missing, unseen)
    ("stage-column-missing", default_rules(), _table().drop(columns="lifecycle_stage"),
     r"^rule 'cart_abandonment_24h' cannot fire: its segment tests 'lifecycle_stage', a "
     r"column no subscriber table given to the engine has$", 0, "lifecycle_stage", ""),
    ("column-misspelled-in-table", _rules({"lifecycle_stage": "customer"}),
     _table().rename(columns={"lifecycle_stage": "lifecyclestage"}),
     r"tests 'lifecycle_stage', .* has \(did you mean 'lifecyclestage'\?\)$", 0,
     "lifecycle_stage", ""),
    ("custom-column-missing", TIER, _table(),
     r"^rule 'cart' cannot fire: its segment tests 'tier'", 0, "tier", ""),
    ("no-value-present", _rules({"tier": {"in": ["platnum"]}}), _table(tier=["gold", "silver"]),
     r"^rule 'cart' cannot fire: no subscriber has tier in \['platnum'\] \(of 2 "
     r"subscribers\)$", 0, "", "tier='platnum'"),
    ("stage-absent", _rules({"lifecycle_stage": "lapsed"}), _table(),
     r"no subscriber has lifecycle_stage = 'lapsed' \(of 2 subscribers\)$", 0, "",
     "lifecycle_stage='lapsed'"),
    ("one-value-absent", TIER, _table(tier=["gold", "silver"]), None, 1, "",
     "tier='platnum'"),
    ("nobody-passes-together", _rules({"lifecycle_stage": "prospect",
                                       "engagement_score": {"min": 0.9}}), _table(),
     r"^rule 'cart' cannot fire: none of the 2 subscribers passes its segment "
     r"\(lifecycle_stage = 'prospect', engagement_score >= 0\.9\)$", 0, "", ""),
    ("score-missing-cells", _rules({"engagement_score": {"min": 0.1}}),
     _table(engagement_score=[np.nan, None]), r"none of the 2 subscribers passes", 0, "", ""),
    ("fine", default_rules(), _table(), None, 2, "", "lifecycle_stage='customer'"),
    ("no-segment", _rules(), _table().drop(columns="lifecycle_stage"), None, 2, "", ""),
    ("empty-table", TIER, _table(ids=[]).iloc[:0], None, 0, "tier", ""),
]


@both_engines
@pytest.mark.parametrize(("rules", "table", "warning", "count", "missing", "unseen"),
                         [c[1:] for c in WARN_CASES], ids=[c[0] for c in WARN_CASES])
def test_rules_that_cannot_fire_on_the_table_warn(engine_name: str, rules: Any,
                                                  table: pd.DataFrame, warning: str | None,
                                                  count: int, missing: str,
                                                  unseen: str) -> None:
    engine, texts = _warned(TriggerEngine, rules, subscribers=table, engine=engine_name)
    diag = engine.diagnostics()
    first = diag.iloc[0]
    assert (int(first["in_segment"]), first["missing_columns"],
            first["unseen_values"]) == (count, missing, unseen)
    if warning is None:
        assert texts == [] and first["warning"] == ""
    else:
        assert len(texts) >= 1 and re.search(warning, texts[0]), texts
        assert first["warning"] == texts[0]


def test_warnings_follow_the_data_and_are_not_repeated() -> None:
    rules = _rules({"engagement_score": {"min": 0.6}})
    for name in ENGINES:
        engine, texts = _warned(TriggerEngine, rules, subscribers=_table(), engine=name)
        assert len(texts) == 1, name
        _, texts = _warned(engine.update_subscribers, _table())
        assert texts == [], "the same warning again"
        _, texts = _warned(engine.update_subscribers, _table(ids=[2], engagement_score=[0.7]))
        assert texts == [] and engine.diagnostics()["in_segment"].tolist() == [1]
        assert engine.diagnostics()["warning"].tolist() == [""]
        # the only passing subscriber drops out: the rule cannot fire again
        _, texts = _warned(engine.update_subscribers, _table(ids=[2], engagement_score=[0.1]))
        assert len(texts) == 1 and "none of the 2 subscribers" in texts[0]


@both_engines
def test_diagnostics_survive_checkpoints(engine_name: str) -> None:
    rules = _rules({"tier": {"in": ["gold", "platnum"]}})
    engine, _ = _warned(TriggerEngine, rules, subscribers=_table(tier=["gold", None]),
                        engine=engine_name)
    engine.process(events((1, T0, "add_to_cart")), until=T0 + DAY)
    state = pickle.loads(pickle.dumps(engine.state_dict()))
    restored = TriggerEngine.from_state_dict(state)
    assert restored.diagnostics().equals(engine.diagnostics())
    # a later update that removes the only gold subscriber warns on the restored engine
    _, texts = _warned(restored.update_subscribers, _table(ids=[1], tier=["silver"]))
    assert len(texts) == 1 and "none of the 2 subscribers passes" in texts[0]
    # checkpoints written before diagnostics existed: no false alarms
    del state["segment_watch"]
    old = TriggerEngine.from_state_dict(state)
    assert old.diagnostics().loc["cart", "warning"] == ""
    assert old.diagnostics().loc["cart", "in_segment"] == 1


def test_both_engines_give_the_same_diagnostics() -> None:
    from experiments.synthetic import generate_subscribers

    table = generate_subscribers(400, np.random.default_rng(3))
    data = {"rules": [
        {**CART, "id": f"r{i}", "segment": seg} for i, seg in enumerate([
            {"lifecycle_stage": {"in": ["prospect", "lapsed"]}, "engagement_score": {"min": .5}},
            {"tier": "gold"},
            {"engagement_score": {"min": 0.99}},
            {"preferred_hour": {"in": [3, 4]}, "subscribed": True},
            {},
        ])]}
    tables = {}
    for name in ENGINES:
        engine, _ = _warned(TriggerEngine, data, subscribers=table, engine=name)
        _warned(engine.update_subscribers, table.iloc[:50].assign(engagement_score=1.0))
        tables[name] = engine.diagnostics()
    assert tables["fast"].equals(tables["reference"])
    assert tables["fast"]["in_segment"].tolist()[4] == 400
    assert tables["fast"].loc["r1", "missing_columns"] == "tier"
