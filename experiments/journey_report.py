"""The run report's journeys: per-path funnels and the counts drawn on the flowcharts.

From ``journeys.parquet`` (:func:`actors.journey_book.journey_frame` per replication and
arm): for each journey of the spec's rules, a funnel table with one row per step outcome
(entered; each send fired, skipped, suppressed or expired; each path a wait-until,
branch or split took; each exit) and one column per arm that runs the journey, counting
the treatment group per replication (mean over replications; entries count every
group), and the counts the flowchart shows (:func:`diagram_counts`).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from experiments.journey_diagram import node_text, path_label
from experiments.results import Results
from experiments.spec import arm_rules
from policies.triggers import Rule, load_rules
from policies.triggers.journeys import JourneyProgram, compile_journey

__all__ = ["diagram_counts", "funnel_table", "journey_blocks", "journey_rules"]


def journey_rules(res: Results) -> list[Rule]:
    """The journeys of the spec's rules, in rule order."""
    if res.spec.rules is None:
        return []
    return [r for r in load_rules(res.spec.rules).rules if r.journey is not None]


def _shape(rule: Rule) -> tuple[str, ...]:
    """What a funnel's rows describe: the text of each node of ``rule``'s journey."""
    prog = compile_journey(rule)
    return tuple(f"{prog.labels[i]} {node_text(prog, i)}" for i in range(len(prog)))


def _arms_running(res: Results, rule: Rule) -> list[str]:
    """The arms whose version of ``rule`` has the same steps (same nodes, waits and
    emails; its entry, segment or email content may differ)."""
    out = []
    for arm in res.spec.arms:
        data = arm_rules(res.spec.rules, arm)
        if data and data.get("rules"):
            mine = load_rules(data)
            if rule.id in mine.ids and mine[rule.id].journey is not None \
                    and _shape(mine[rule.id]) == _shape(rule):
                out.append(arm.name)
    return out


def _outcome(prog: JourneyProgram, step: int, kind: str, path: int) -> str:
    if kind == "enter":
        return "entered"
    what = node_text(prog, step).split("\n")[0]
    if kind in ("branch", "split"):
        label = path_label(prog, int(prog.first_path[step]) + path).replace("\n", " ")
        return f"{prog.labels[step]} {what}: {label}"
    if kind == "exit":
        how = "exit" if what == "exit" else "ended here by an exit criterion"
        return f"{prog.labels[step]} {what}: {how}"
    return f"{prog.labels[step]} {what}: {kind}"


def funnel_table(res: Results, rule: Rule) -> pd.DataFrame:
    """Outcome rows (node order) x arms running ``rule`` with the same steps: mean count
    per replication, treatment group (entries: every group)."""
    assert res.journeys is not None
    prog = compile_journey(rule)
    arms = _arms_running(res, rule)
    j = res.journeys[(res.journeys["rule"] == rule.id) & res.journeys["arm"].isin(arms)
                     & res.journeys["group"].isin(["treatment", "all"])]
    if j.empty:
        return pd.DataFrame()
    per_rep = j.groupby(["arm", "step", "kind", "path", "path_name", "replication"],
                        sort=False)["count"].sum()
    reps = res.spec.replications
    mean = (per_rep.groupby(level=["arm", "step", "kind", "path", "path_name"]).sum()
            / reps).rename("mean").reset_index()
    order = {k: i for i, k in enumerate(("enter", "branch", "split", "fire", "skip",
                                         "suppress", "expire", "cancel", "exit"))}
    mean["order"] = mean["kind"].map(order)
    mean = mean.sort_values(["step", "order", "path"], kind="stable")
    mean["outcome"] = [_outcome(prog, int(s), k, int(p)) for s, k, p in
                       zip(mean["step"], mean["kind"], mean["path"], strict=True)]
    table = mean.pivot_table(index="outcome", columns="arm", values="mean", sort=False,
                             fill_value=0.0)
    return table[[a for a in arms if a in table.columns]]


def diagram_counts(res: Results, rule: Rule) -> tuple[str, dict[str, Any]] | None:
    """The counts to draw on ``rule``'s flowchart, from the first arm running it with the
    same steps (the control arm first), mean per replication, treatment group: ``(arm, {"entered":
    n, "sent": {node: n}, "paths": {(node, path): n}})``; None without data."""
    if res.journeys is None:
        return None
    arms = _arms_running(res, rule)
    arms = sorted(arms, key=lambda a: a != res.spec.control_arm)
    if not arms:
        return None
    arm = arms[0]
    j = res.journeys[(res.journeys["rule"] == rule.id) & (res.journeys["arm"] == arm)]
    reps = res.spec.replications
    treat = j[j["group"] == "treatment"]
    fires = treat[treat["kind"] == "fire"].groupby("step")["count"].sum() / reps
    taken = treat[treat["kind"].isin(["branch", "split"])].groupby(["step", "path"])[
        "count"].sum() / reps
    entered = j.loc[j["kind"] == "enter", "count"].sum() / reps
    return arm, {"entered": float(entered),
                 "sent": {int(k): float(v) for k, v in fires.items()},
                 "paths": {(int(s), int(p)): float(v) for (s, p), v in taken.items()}}


def journey_blocks(res: Results) -> list[tuple]:
    """The report's "Journeys" section (report blocks), one funnel table per journey."""
    rules = journey_rules(res)
    if res.journeys is None or not rules:
        return []
    reps = res.spec.replications
    out: list[tuple] = [("h2", "Journeys"), ("p", (
        "Per journey, what happened at each step: entries (every group), then each send "
        "fired, skipped by smart sending, suppressed by the cap or expired, and each path a "
        "wait-until, branch or split took, for the treatment group; mean per replication"
        + (f" over {reps}" if reps > 1 else "") + ". The flowcharts under Plots show the "
        "same counts on the control arm (or the first arm whose journey has the same "
        "steps). Arms that change a journey's steps are left out of its table."))]
    for rule in rules:
        table = funnel_table(res, rule)
        if table.empty:
            continue
        out.append(("h3", f"{rule.id}"))
        rows = [[outcome, *(_num(v) for v in table.loc[outcome])] for outcome in table.index]
        out.append(("table", ["step: outcome", *table.columns], rows))
    return out


def _num(v: float) -> str:
    return f"{v:,.0f}" if float(v).is_integer() or v >= 100 else f"{v:,.1f}"
