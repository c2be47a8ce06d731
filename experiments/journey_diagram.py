"""A journey drawn as a flowchart (matplotlib): entry, steps, paths and ends.

:func:`journey_figure` lays the compiled journey (:func:`~policies.triggers.compile_journey`)
out top to bottom: the entry, then each node on the row of its longest distance from the
entry (a journey is a finite graph without loops, so rows exist), branching nodes'
arrows labelled with their path (``happened`` / ``timed out``, a branch case's tests, a
split path's name and weight), and one "end" box where the journey's paths finish.
``exit`` steps and the journey-wide exit criteria are shown in red. The run report draws
one per journey rule (``journey_<rule>.png``); ``triggerlab validate RULES --diagrams DIR``
writes them for a rules file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from policies.triggers import Predicate, Rule, RuleSet
from policies.triggers.durations import format_duration
from policies.triggers.journeys import (
    KIND_BRANCH,
    KIND_EXIT,
    KIND_SEND,
    KIND_SPLIT,
    KIND_WAIT,
    KIND_WAIT_UNTIL,
    WAIT_SINCE,
    AttributeEntry,
    CatalogEntry,
    Inactivity,
    JourneyProgram,
    compile_journey,
)

__all__ = ["entry_text", "journey_figure", "journey_layout", "node_text", "path_label",
           "write_journey_diagrams"]

_OPS = {"min": ">=", "max": "<=", "equals": "="}
_COLORS = {KIND_SEND: "#dbe9f6", KIND_WAIT: "#f2f2f2", KIND_WAIT_UNTIL: "#fff2cc",
           KIND_BRANCH: "#e2f0d9", KIND_SPLIT: "#ead1f5", KIND_EXIT: "#f8cbad"}


def _tests(preds: tuple[Predicate, ...]) -> str:
    out = []
    for p in preds:
        value = p.value
        if p.op == "in":
            text = f"{p.column} in {list(value)}"
        else:
            text = f"{p.column} {_OPS[p.op]} {value:g}" if isinstance(value, float) else \
                f"{p.column} {_OPS[p.op]} {value}"
        out.append(text)
    return " & ".join(out)


def entry_text(rule: Rule) -> str:
    """What enters a subscriber into ``rule``'s journey, one or two short lines."""
    assert rule.journey is not None
    entry = rule.journey.entry
    if isinstance(entry, Inactivity):
        text = f"no {', '.join(entry.events)}\nfor {format_duration(entry.duration)}"
    elif isinstance(entry, AttributeEntry):
        text = f"becomes {_tests(entry.segment)}"
    elif isinstance(entry, CatalogEntry):
        who = " or ".join(f"{k} within {format_duration(v)}" for k, v in
                          (("viewed", entry.viewed), ("carted", entry.carted)) if v)
        text = f"{entry.event} ({who})" + (f"\n{_tests(entry.where)}" if entry.where else "")
    else:
        text = "\n".join(f"{c.event}" + (f" ({_tests(c.where)})" if c.where else "")
                         for c in rule.when)
    seg = f"\nif {_tests(rule.segment)}" if rule.segment else ""
    return f"entry: {text}{seg}"


def node_text(prog: JourneyProgram, i: int) -> str:
    """The box text of node ``i``."""
    kind, arg = int(prog.kind[i]), int(prog.arg[i])
    if kind == KIND_SEND:
        extra = [f"expire {format_duration(int(prog.expire[i]))}"] if prog.expire[i] >= 0 else []
        if prog.smart_sending[i] > 0:
            extra.append(f"skip if mailed in {format_duration(int(prog.smart_sending[i]))}")
        elif prog.smart_sending[i] == 0:
            extra.append("no smart sending")
        return f"send {prog.emails[arg]}" + "".join(f"\n{e}" for e in extra)
    if kind == KIND_WAIT:
        return f"wait {format_duration(arg)}"
    if kind == KIND_WAIT_UNTIL:
        events = [name for code, name in enumerate(_event_names())
                  if int(prog.events[i]) >> code & 1]
        since = WAIT_SINCE[int(prog.since[i])] if prog.since[i] >= 0 else "step"
        where = f"\n{_tests(prog.where[i])}" if prog.where[i] else ""
        return (f"wait until {' or '.join(events)}{where}\nwithin {format_duration(arg)}"
                f" (since {since.replace('_', ' ')})")
    if kind == KIND_BRANCH:
        return "branch"
    if kind == KIND_SPLIT:
        policy = prog.policy[i]
        return "split" + (f" by {policy}" if policy else " (A/B)")
    return "exit"


def _event_names() -> tuple[str, ...]:
    from policies.event_schema import EVENT_TYPES

    return tuple(EVENT_TYPES.names)


def path_label(prog: JourneyProgram, p: int) -> str:
    """The label of path ``p`` (a row of the path table): ``happened`` / ``timed out``, a
    branch case's tests or ``else``, a split path's name and weight."""
    name = prog.path_names[p]
    node = int(prog.path_node[p])
    kind = int(prog.kind[node])
    if kind == KIND_WAIT_UNTIL:
        return name.replace("_", " ")
    if kind == KIND_SPLIT:
        w = prog.path_weight[p]
        return name if np.isnan(w) else f"{name} {w:.0%}"
    if name == "else":
        return "else"
    tests = [_tests(prog.path_segment[p])] if prog.path_segment[p] else []
    if prog.path_entry[p]:
        tests.append("entry " + _tests(prog.path_entry[p]))
    return "\n& ".join(tests) or name


def _n(v: float) -> str:
    return f"{v:,.0f}" if float(v).is_integer() or v >= 100 else f"{v:,.1f}"


def _counted(prog: JourneyProgram, edges: list[tuple[int, int, str]],
             counts: dict[str, Any]) -> list[tuple[int, int, str]]:
    """``edges`` with each path's count and share of its node appended to its label."""
    paths = counts["paths"]
    out = []
    for a, b, label in edges:
        if prog.n_paths[a] > 0:
            first = int(prog.first_path[a])
            p = next(q for q in range(first, first + int(prog.n_paths[a]))
                     if int(prog.path_start[q]) == b
                     and path_label(prog, q) == label) - first
            n = paths.get((a, p), 0.0)
            total = sum(paths.get((a, q), 0.0) for q in range(int(prog.n_paths[a])))
            label += f"\n{_n(n)}" + (f" ({n / total:.0%})" if total > 0 else "")
        out.append((a, b, label))
    return out


def journey_layout(prog: JourneyProgram) -> tuple[np.ndarray, np.ndarray, list[tuple]]:
    """Rows and columns of the nodes, and the edges.

    Returns ``row`` (int (n,): longest distance from the first node, the entry being row
    -1 and the end ``row.max() + 1``), ``col`` (float (n,): position within the row,
    centred on 0) and ``edges``: ``(from, to, label)`` with ``to = -1`` for the end.
    """
    n = len(prog)
    edges: list[tuple[int, int, str]] = []
    for i in range(n):
        if prog.kind[i] == KIND_EXIT:
            continue
        if prog.n_paths[i] > 0:
            for p in range(int(prog.first_path[i]), int(prog.first_path[i] + prog.n_paths[i])):
                edges.append((i, int(prog.path_start[p]), path_label(prog, p)))
        else:
            edges.append((i, int(prog.next[i]), ""))
    row = np.zeros(n, np.int64)
    for _ in range(n):   # longest path relaxation on a graph without cycles
        changed = False
        for a, b, _label in edges:
            if b >= 0 and row[b] < row[a] + 1:
                row[b] = row[a] + 1
                changed = True
        if not changed:
            break
    col = np.zeros(n)
    for r in np.unique(row):
        members = np.flatnonzero(row == r)
        col[members] = np.arange(len(members)) - (len(members) - 1) / 2
    return row, col, edges


def journey_figure(rule: Rule, plt: Any, counts: dict[str, Any] | None = None,
                   caption: str = "") -> Any:
    """The flowchart of ``rule``'s journey as a matplotlib figure (``plt``:
    ``matplotlib.pyplot``). ``counts`` (optional: ``{"entered": n, "sent": {node: n},
    "paths": {(node, path): n}}``) are drawn on it: entries on the entry box, emails sent
    on each send, and on each path of a wait-until, branch or split the number that took
    it and its share of the node's; ``caption`` says where they come from."""
    prog = compile_journey(rule)
    row, col, edges = journey_layout(prog)
    if counts is not None:
        edges = _counted(prog, edges, counts)
    end_row = int(row.max()) + 1
    width = 2.6 * (max(np.unique(row, return_counts=True)[1]) + 1.2)
    fig, ax = plt.subplots(figsize=(max(6.0, width), 0.95 * (end_row + 2) + 0.8), dpi=100)
    ax.set_axis_off()
    n_skips = sum(1 for a, b, _ in edges if (row[b] if b >= 0 else end_row) - row[a] > 1)
    ax.set_xlim(col.min() - 0.9, col.max() + 1.5 + 0.22 * n_skips)
    ax.set_ylim(-(end_row + 0.6), 1.6)
    style = dict(ha="center", va="center", fontsize=8, zorder=3)

    def box(x: float, y: float, text: str, color: str) -> None:
        ax.text(x, y, text, bbox=dict(boxstyle="round,pad=0.4", fc=color, ec="0.35"), **style)

    lanes = [0]   # skip edges drawn so far: each gets its own lane to the right

    def arrow(x0: float, y0: float, x1: float, y1: float, label: str) -> None:
        head = dict(arrowstyle="->", color="0.35", lw=1)
        lx, ly = (x0 + x1) / 2, (y0 + y1) / 2
        if y0 - y1 > 1.5:   # passes other rows: a bracket in a lane right of them
            lane = max(x0, x1) + 0.75 + 0.22 * lanes[0]
            lanes[0] += 1
            ax.plot([x0, x0, lane, lane, x1], [y0 - 0.3, y0 - 0.42, y0 - 0.42, y1 + 0.42,
                                               y1 + 0.42], color="0.35", lw=1, zorder=2)
            ax.annotate("", xy=(x1, y1 + 0.28), xytext=(x1, y1 + 0.43), arrowprops=head,
                        zorder=2)
            lx = lane + 0.04
        else:
            ax.annotate("", xy=(x1, y1 + 0.28), xytext=(x0, y0 - 0.28), arrowprops=head,
                        zorder=2)
            if x0 == x1:   # a straight arrow: the label beside it
                lx = x0 + 0.06
        if label:
            ax.text(lx, ly, label, fontsize=7, color="#7f3f00", zorder=4,
                    ha="left" if lx > max(x0, x1) else "center", va="center",
                    bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.85))

    journey = rule.journey
    assert journey is not None
    entered = "" if counts is None else f"\n{_n(counts['entered'])} entered"
    box(0.0, 1.0, entry_text(rule) + entered, "white")
    arrow(0.0, 1.0, float(col[0]), -float(row[0]), "")
    for i in range(len(prog)):
        sent = ("" if counts is None or prog.kind[i] != KIND_SEND
                else f"\n{_n(counts['sent'].get(i, 0.0))} sent")
        box(float(col[i]), -float(row[i]), node_text(prog, i) + sent,
            _COLORS[int(prog.kind[i])])
    box(0.0, -float(end_row), "end", "white")
    for a, b, label in edges:
        x1, y1 = (0.0, -float(end_row)) if b < 0 else (float(col[b]), -float(row[b]))
        arrow(float(col[a]), -float(row[a]), x1, y1, label)
    exits = [f"{e.event}" + (f" (same {e.match})" if e.match else "") for e in journey.exits]
    exits += list(rule.exclude)
    notes = []
    if exits:
        notes.append("ends at any step on: " + ", ".join(exits))
    if journey.goal is not None:
        notes.append(f"goal: {journey.goal.event} within {format_duration(journey.goal.within)}")
    notes.append(f"at most {prog.max_sends} email(s) per entry")
    if caption:
        notes.append(caption)
    ax.set_title(f"{rule.id}\n" + "\n".join(notes), fontsize=8, color="0.2")
    fig.tight_layout()
    return fig


def write_journey_diagrams(rules: RuleSet, out: Path,
                           counts: dict[str, tuple[str, dict[str, Any]]] | None = None
                           ) -> list[Path]:
    """``journey_<rule>.png`` in ``out`` (created) for each journey of ``rules``; the paths
    written, in rule order (none without journeys). ``counts``: per rule id, the arm they
    come from and the counts to draw (:func:`journey_figure`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    journeys = [r for r in rules.rules if r.journey is not None]
    if not journeys:
        return []
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for rule in journeys:
        arm, drawn = (counts or {}).get(rule.id, ("", None))
        fig = journey_figure(rule, plt, drawn,
                             f"counts: arm {arm}, treatment group, mean per replication"
                             if drawn is not None else "")
        path = out / f"journey_{rule.id}.png"
        fig.savefig(path, format="png", metadata={"Software": None})
        plt.close(fig)
        written.append(path)
    return written
