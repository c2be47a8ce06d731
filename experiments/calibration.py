"""The 30-day calibration run: the default population against docs/calibration.md.

:func:`run_calibration` simulates the default (``retail``) preset for 30 days on
15-minute ticks with a weekly campaign (every subscribed subscriber, plain subject,
Tuesday-style send at 15:00 UTC) and the three reference trigger rules driven through
the real :class:`~policies.triggers.TriggerEngine`; fired triggers are delivered at
the next tick boundary. :func:`calibration_table` compares the measured rates with the
published ranges, one row per range of docs/calibration.md, with the source of each row.

Measured as a mailbox provider would: opens and clicks are unique per email
(machine opens included, as in the published figures), unsubscribe and placed-order
rates are per delivered email; cart abandonment is the share of ``add_to_cart``
events of the first 23 days not followed by a purchase of that subscriber within 7
days.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from policies.checks import check_int
from policies.errors import SpecError
from policies.event_schema import EVENT_TYPES
from policies.events import EventBatch
from sim.clock import DAY, SimClock
from sim.population import Population
from sim.presets import EMAIL_KINDS
from sim.response import EmailBatch
from sim.world import World

if TYPE_CHECKING:
    from experiments.flow_calibration import FlowRun

__all__ = [
    "CALIBRATION_ROWS",
    "MAX_DAYS",
    "MAX_SUBSCRIBERS",
    "MIN_DAYS",
    "CalibrationRun",
    "calibration_table",
    "check_calibration",
    "run_calibration",
]

_KLAVIYO = "Klaviyo 2024 Benchmark Report (2023 data)"
_MAILCHIMP = "Mailchimp benchmarks page, data updated Oct 2019"

#: (metric key, label, published figure, low, high, source) -- the rows of docs/calibration.md.
CALIBRATION_ROWS: tuple[tuple[str, str, str, float, float, str], ...] = (
    ("campaign_open", "campaign email open rate", "22.71 %", 0.15, 0.30, _MAILCHIMP),
    ("campaign_click", "campaign click rate per delivered", "2.91 %", 0.015, 0.045,
     _MAILCHIMP),
    ("campaign_click_to_open", "click-to-open", "≈ 12.8 % (derived)", 0.08, 0.18,
     "derived from the two rows above"),
    ("campaign_unsubscribe", "unsubscribe per delivered campaign email", "0.25 %", 0.001,
     0.005, "Mailchimp 2019 and March 2018"),
    ("cart_abandonment", "cart abandonment (carts not purchased)", "70.19 %", 0.60, 0.80,
     "Baymard Institute (≈ 50 studies), via secondary pages"),
    ("triggered_open", "flow (triggered) email open", "≈ 52 % (top 10 %: 68 %)", 0.40, 0.70,
     _KLAVIYO),
    ("triggered_click", "flow click", "≈ 5.3 % (top 10 %: 13 %)", 0.03, 0.13, _KLAVIYO),
    ("triggered_placed_order", "flow placed-order rate per recipient",
     "1.71 % median (top 10 %: 5.71 %)", 0.01, 0.06, _KLAVIYO),
)

#: Days after an ``add_to_cart`` in which a purchase counts (cart abandonment).
FOLLOW_DAYS = 7
#: Fewest simulated days: carts of the first day are followed for :data:`FOLLOW_DAYS`
#: days, so a shorter run measures no cart abandonment at all (and the first campaign
#: goes out on day 2).
MIN_DAYS = FOLLOW_DAYS + 1
#: Most simulated days (a year) and subscribers (memory) a calibration run accepts.
MAX_DAYS = 365
MAX_SUBSCRIBERS = 10_000_000

_T = {name: EVENT_TYPES.code(name) for name in
      ("email_open", "email_click", "purchase_completed", "unsubscribe", "add_to_cart")}
_CAMPAIGN_HOUR_UTC = 15


@dataclass
class CalibrationRun:
    """Everything a calibration run produced."""

    events: EventBatch
    emails: EmailBatch
    rule_ids: tuple[str, ...]
    days: int
    subscribers: int
    start: int
    #: The shipped journeys' run (:func:`experiments.flow_calibration.run_flows`); None:
    #: the table has no flow rows.
    flows: FlowRun | None = None

    def metrics(self) -> dict[str, float]:
        """Measured rates (probabilities) keyed like :data:`CALIBRATION_ROWS`, plus extras."""
        ev, em = self.events, self.emails
        send_key = _key(em.subscriber, em.campaign)
        campaign = em.kind == 0
        triggered = ~campaign
        out: dict[str, float] = {}
        is_email = ev.column("campaign_id") >= 0
        ev_key = _key(ev.subscriber, ev.column("campaign_id"))

        def unique_rate(type_name: str, sends: np.ndarray) -> tuple[float, int]:
            sel = is_email & (ev.type == _T[type_name])
            hit = np.isin(send_key[sends], np.unique(ev_key[sel]))
            return float(hit.mean()) if hit.size else float("nan"), int(hit.sum())

        for label, sends in (("campaign", campaign), ("triggered", triggered)):
            out[f"{label}_sends"] = float(sends.sum())
            out[f"{label}_open"], opens = unique_rate("email_open", sends)
            out[f"{label}_click"], clicks = unique_rate("email_click", sends)
            out[f"{label}_click_to_open"] = clicks / opens if opens else float("nan")
            out[f"{label}_unsubscribe"], _ = unique_rate("unsubscribe", sends)
            out[f"{label}_placed_order"], _ = unique_rate("purchase_completed", sends)
            sel = is_email & (ev.type == _T["purchase_completed"])
            rev = ev.column("revenue")[sel]
            ok = np.isin(ev_key[sel], send_key[sends])
            out[f"{label}_revenue_per_recipient"] = (
                float(rev[ok].sum() / sends.sum()) if sends.sum() else float("nan")
            )
        for k, name in enumerate(EMAIL_KINDS[1:], start=1):
            sends = em.kind == k
            if sends.any():
                out[f"{name}_sends"] = float(sends.sum())
                out[f"{name}_placed_order"], _ = unique_rate("purchase_completed", sends)
        out["cart_abandonment"] = _cart_abandonment(ev, self.start, self.days)
        return out


def _key(sub: np.ndarray, campaign: np.ndarray) -> np.ndarray:
    return sub.astype(np.int64) * 1_000_003 + campaign.astype(np.int64)


def _cart_abandonment(ev: EventBatch, start: int, days: int,
                      follow_days: int = FOLLOW_DAYS) -> float:
    carts = ev.type == _T["add_to_cart"]
    cutoff = start + (days - follow_days) * DAY
    cs, ct = ev.subscriber[carts], ev.time[carts]
    keep = ct < cutoff
    cs, ct = cs[keep], ct[keep]
    buys = ev.type == _T["purchase_completed"]
    bs, bt = ev.subscriber[buys], ev.time[buys]
    order = np.lexsort((bt, bs))
    bs, bt = bs[order], bt[order]
    # first purchase of the same subscriber at or after the cart time
    key_b = bs.astype(np.float64) * 1e10 + (bt - start)
    key_c = cs.astype(np.float64) * 1e10 + (ct - start)
    pos = np.searchsorted(key_b, key_c, side="left")
    ok = pos < len(bs)
    pos = np.minimum(pos, max(len(bs) - 1, 0))
    bought = ok & (bs[pos] == cs) & (bt[pos] - ct <= follow_days * DAY) if len(bs) else ok
    return float(1.0 - bought.mean()) if len(cs) else float("nan")


def check_calibration(subscribers: int, days: int, *, tick: int = 900) -> None:
    """The calibration run's size, checked before anything is simulated.

    ``subscribers`` in [1, :data:`MAX_SUBSCRIBERS`], ``days`` in [:data:`MIN_DAYS`,
    :data:`MAX_DAYS`] (fewer days measure no cart abandonment), ``tick`` in [1, 86400]
    seconds; a :class:`~policies.errors.SpecError` naming the option otherwise.
    """
    check_int("subscribers", subscribers, error=SpecError, low=1, high=MAX_SUBSCRIBERS)
    check_int("days", days, error=SpecError, low=MIN_DAYS, high=MAX_DAYS,
              what=f"an integer in [{MIN_DAYS}, {MAX_DAYS}] (carts are followed for "
                   f"{FOLLOW_DAYS} days: a shorter run measures no cart abandonment)")
    check_int("tick", tick, error=SpecError, low=1, high=DAY)


def run_calibration(
    subscribers: int = 30_000,
    *,
    seed: int = 2024,
    days: int = 30,
    tick: int = 900,
    preset: str = "retail",
    engine: str = "fast",
) -> CalibrationRun:
    """Simulate the calibration scenario and return its events and emails.

    Raises :class:`~policies.errors.SpecError` for arguments out of range
    (:func:`check_calibration`).
    """
    check_calibration(subscribers, days, tick=tick)
    from policies.triggers import TriggerEngine, default_rules

    pop = Population.generate(subscribers, seed=seed, preset=preset)
    world = World(pop, seed=seed)
    rules = default_rules()
    rule_ids = rules.ids
    kind_of_rule = np.array(
        [EMAIL_KINDS.index(r.type) if r.type in EMAIL_KINDS else EMAIL_KINDS.index(
            "other_trigger") for r in rules.rules], np.int64)
    urgent_rule = np.array([bool(dict(r.content).get("apply_urgency", False))
                            for r in rules.rules])
    trig = TriggerEngine(rules, subscribers=world.subscribers(), engine=engine)
    clock = SimClock(start=world.now, step=tick)
    start = world.now
    end = start + days * DAY
    campaign_times = [start - start % DAY + d * DAY + _CAMPAIGN_HOUR_UTC * 3600
                      for d in range(1, days, 7)]
    events: list[EventBatch] = []
    emails: list[EmailBatch] = []
    last_day = start // DAY
    while clock.now < end:
        t0, t1 = clock.advance()
        batch = world.step(t0, t1)
        events.append(batch)
        if t1 // DAY != last_day:
            last_day = t1 // DAY
            trig.update_subscribers(world.subscribers())
        decisions = trig.process(batch, until=t1)
        fires = decisions.of_kind("fire")
        subscribed = world.population.subscribed
        out: list[EmailBatch] = []
        if len(fires):
            live = subscribed[fires.subscriber - pop.start]
            sub, rule = fires.subscriber[live], fires.rule[live]
            day_index = (t1 - start) // DAY
            out.append(EmailBatch.make(
                sub, t1, campaign=(rule + 1) * 1000 + day_index, kind=kind_of_rule[rule],
                urgency=urgent_rule[rule],
            ))
        if t1 in campaign_times:
            ids = world.population.ids[subscribed]
            out.append(EmailBatch.make(ids, t1, campaign=1 + campaign_times.index(t1),
                                       kind="campaign"))
        for e in out:
            world.send(e)
            emails.append(e)
    return CalibrationRun(
        events=EventBatch.concat(events),
        emails=EmailBatch.concat(emails),
        rule_ids=rule_ids,
        days=days,
        subscribers=subscribers,
        start=start,
    )


def calibration_table(run: CalibrationRun) -> pd.DataFrame:
    """One row per range of docs/calibration.md: simulated vs published, with its source
    (the flow rows too when ``run.flows`` is set).

    ``no_data`` says why a rate could not be measured (``simulated`` is NaN, ``ok``
    False): e.g. no triggered email was sent; empty for measured rows.
    """
    m = run.metrics()
    specs = CALIBRATION_ROWS
    if run.flows is not None:
        from experiments.flow_calibration import FLOW_ROWS, flow_metrics

        m = {**m, **flow_metrics(run.flows)}
        specs = CALIBRATION_ROWS + FLOW_ROWS
    rows = []
    for key, label, figure, low, high, source in specs:
        value = m[key]
        rows.append({"metric": label, "key": key, "simulated": value, "published": figure,
                     "low": low, "high": high, "ok": bool(low <= value <= high),
                     "source": source, "no_data": _no_data(run, m, key, value)})
    return pd.DataFrame(rows)


def _no_data(run: CalibrationRun, m: dict[str, float], key: str, value: float) -> str:
    """Why the rate ``key`` is NaN ("" when it was measured)."""
    if value == value:
        return ""
    if key == "cart_abandonment":
        days = run.days - FOLLOW_DAYS
        return (f"no add_to_cart in the first {days} day(s) of {run.days} (carts are "
                f"followed for {FOLLOW_DAYS} days)" if days > 0 else
                f"a run of {run.days} days leaves no day of carts to follow for "
                f"{FOLLOW_DAYS} days")
    if key == "winback_reactivation":
        return ("no win-back recipient whose 14-day window fits in the run" if
                m.get("winback_sends") else "no win-back email was sent")
    for rule in ("cart_series", "winback", "price_drop_alert"):
        if key.startswith(rule.split("_alert")[0]) and not m.get(f"{rule}_sends"):
            return f"the {rule} journey sent no email"
    label = key.split("_", 1)[0]
    if not m.get(f"{label}_sends"):
        return f"no {label} email was sent"
    if key.endswith("click_to_open"):
        return f"no {label} email was opened"
    return f"no {label} email was measured"
