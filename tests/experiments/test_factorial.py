"""Factorial designs and their analysis (experiments.factorial, experiments.stats.factorial):
the designs' algebra (fractions, defining relations, resolution, aliases) on known
designs and on generated ones; the analysis recovers what noise-free data contain exactly
(an effect plus its aliases in a fraction) and covers the truth at its level with noise;
bad input is refused with a message."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from experiments.factorial import Factor, fractional_factorial, full_factorial
from experiments.stats.factorial import analyze_factorial
from policies.errors import SpecError, StatsInputError


def _two_level(k: int) -> list[Factor]:
    names = ["subject", "content", "cta", "hour", "tone", "image", "preheader", "footer"]
    return [Factor(names[i], ("off", "on")) for i in range(k)]


# -- designs ----------------------------------------------------------------------------


def test_a_full_factorial_has_every_cell_once_in_standard_order() -> None:
    d = full_factorial([Factor("subject", ("plain", "urgency")),
                        Factor("cta", ("shop", "save", "see"))])
    assert d.cells.tolist() == [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2]]
    assert d.is_full and d.resolution is None and d.defining_relation() == []
    assert d.frame()["cta"].tolist() == ["shop", "save", "see"] * 2
    assert len(d.estimable()) == 3  # two main effects, one interaction


@pytest.mark.parametrize(("k", "generators", "runs", "resolution", "relation", "estimable"), [
    (4, ["D=ABC"], 8, 4, ["ABCD"], 7),            # 4 mains + 3 pairs of aliased 2-ways
    (5, ["E=ABCD"], 16, 5, ["ABCDE"], 15),         # every main effect and 2-way clear
    (5, ["D=AB", "E=AC"], 8, 3, ["ABD", "ACE", "BCDE"], 7),
    (6, ["E=ABC", "F=BCD"], 16, 4, ["ABCE", "ADEF", "BCDF"], 13),
    (7, ["D=AB", "E=AC", "F=BC", "G=ABC"], 8, 3,
     ["ABD", "ACE", "AFG", "BCF", "BEG", "CDG", "DEF", "ABCG", "ABEF", "ACDF", "ADEG", "BCDE",
      "BDFG", "CEFG", "ABCDEFG"], 7),
])
def test_known_fractions(k, generators, runs, resolution, relation, estimable) -> None:
    d = fractional_factorial(_two_level(k), generators)
    assert len(d.cells) == runs and len({tuple(c) for c in d.cells.tolist()}) == runs
    assert d.resolution == resolution
    assert d.defining_relation() == relation
    assert len(d.estimable()) == estimable


def test_the_half_fraction_of_four_factors_aliases_two_way_interactions_in_pairs() -> None:
    d = fractional_factorial(_two_level(4), ["D=ABC"])
    table = d.alias_table()
    assert table.set_index("effect")["aliased_with"].to_dict() == {
        "subject": "", "content": "", "cta": "", "hour": "",
        "subject:content": "cta:hour", "subject:cta": "content:hour",
        "subject:hour": "content:cta"}
    assert table.set_index("effect").loc["subject", "all_aliases"] == "BCD"


@st.composite
def _fractions(draw):
    base = draw(st.integers(2, 5))
    p = draw(st.integers(1, 3))
    gens = []
    for g in range(p):
        right = draw(st.lists(st.integers(0, base - 1), min_size=2, max_size=base,
                              unique=True))
        gens.append(f"{'ABCDEFGH'[base + g]}={''.join('ABCDEFGH'[i] for i in sorted(right))}")
    return base + p, gens


@settings(max_examples=150, deadline=None)
@given(spec=_fractions())
def test_generated_fractions_obey_their_defining_relation(spec) -> None:
    """Every word of the defining relation multiplies to +1 on every run; main effects are
    balanced and mutually orthogonal (resolution >= III); an effect and each alias have
    the same -1/+1 column on the runs; designs with a word of length < 3 are refused."""
    k, gens = spec
    try:
        d = fractional_factorial(_two_level(k), gens)
    except SpecError as e:
        assert "aliased" in str(e) or "defined twice" in str(e)
        return
    x = 2 * d.cells - 1
    assert len(d.cells) == 2 ** (k - len(gens))
    for w in d.words:
        assert (np.prod(x[:, sorted(w)], axis=1) == 1).all()
    assert (x.sum(axis=0) == 0).all()
    assert (x.T @ x == len(x) * np.eye(k)).all()
    assert d.resolution == min(len(w) for w in d.words) >= 3
    for members, _ in d.estimable():
        col = np.prod(x[:, list(members)], axis=1)
        for alias in d.aliases(members):
            assert (np.prod(x[:, list(alias)], axis=1) == col).all()


BAD_DESIGNS = [
    (lambda: Factor("subject", ("a",)), "levels: expected a list of at least two"),
    (lambda: Factor("subject", ("a", "a")), "repeated level"),
    (lambda: Factor("sub ject", ("a", "b")), "expected an identifier"),
    (lambda: full_factorial([]), "expected a non-empty list of Factor"),
    (lambda: full_factorial([Factor("a", ("x", "y")), Factor("a", ("x", "y"))]),
     "repeated factor name"),
    (lambda: fractional_factorial([Factor("a", ("x", "y", "z")), *_two_level(3)], ["D=AB"]),
     "needs two levels"),
    (lambda: fractional_factorial(_two_level(4), "D=ABC"), "expected a non-empty list"),
    (lambda: fractional_factorial(_two_level(4), ["D=A*B*C"]), "not of the form"),
    (lambda: fractional_factorial(_two_level(4), ["C=AB"]), "must define one of the generated"),
    (lambda: fractional_factorial(_two_level(4), ["D=AD"]), "must name distinct base"),
    (lambda: fractional_factorial(_two_level(4), ["D=A"]), "would alias two main effects"),
    (lambda: fractional_factorial(_two_level(3), ["B=A", "C=A"]), "leave 1 base factor"),
    (lambda: fractional_factorial(_two_level(5), ["D=AB", "E=AB"]), "resolution II"),
    (lambda: fractional_factorial(_two_level(5), ["D=ABC", "D=AB"]), "defined twice"),
]


@pytest.mark.parametrize(("build", "message"), BAD_DESIGNS)
def test_bad_designs_are_refused_with_a_message(build, message) -> None:
    with pytest.raises(SpecError, match=message):
        build()


# -- analysis ---------------------------------------------------------------------------


def _truth(design, mu_of) -> pd.DataFrame:
    grid = full_factorial(list(design.factors)).frame()
    return grid.assign(truth=[mu_of(row) for row in grid.to_dict("records")])


def _units(design, truth: pd.DataFrame, per_cell: int, rng=None) -> pd.DataFrame:
    """``per_cell`` units in each design cell; outcomes: the cell's true mean (no noise)
    or 0/1 draws from it."""
    cells = design.frame()
    mu = cells.merge(truth, how="left", on=design.names)["truth"].to_numpy()
    df = cells.loc[cells.index.repeat(per_cell)].reset_index(drop=True)
    m = np.repeat(mu, per_cell)
    df["y"] = m if rng is None else (rng.random(len(m)) < m).astype(np.int64)
    return df


def _mu_with_interactions(r: dict) -> float:
    on = {k: v == "on" for k, v in r.items()}
    return (0.05 + 0.01 * on["subject"] + 0.004 * on["content"] - 0.003 * on["cta"]
            + 0.006 * (on["subject"] and on["content"]) + 0.002 * (on["cta"] and on["hour"])
            + 0.003 * (on["subject"] and on["cta"] and on["hour"]))


def test_a_full_factorial_estimates_every_effect_exactly_from_noise_free_data() -> None:
    d = full_factorial(_two_level(4))
    truth = _truth(d, _mu_with_interactions)
    r = analyze_factorial(_units(d, truth, 3), d, "y", truth=truth)
    assert len(r.effects) == 4 + 6
    assert np.allclose(r.effects["estimate"], r.effects["truth"], atol=1e-12)
    got = r.effects.set_index("effect")["truth"]
    assert got["subject"] == pytest.approx(0.01 + 0.006 / 2 + 0.003 / 4)
    assert got["subject:content"] == pytest.approx(0.006)
    assert r.best["levels"] == r.best["true_best"]


def test_a_fraction_estimates_each_effect_plus_its_aliases() -> None:
    """D = ABC: subject:content is aliased with cta:hour, content's main effect with the
    subject:cta:hour three-way; noise-free data give exactly truth_with_aliases, which
    differs from the effect's own truth where an alias is not zero."""
    d = fractional_factorial(_two_level(4), ["D=ABC"])
    truth = _truth(d, _mu_with_interactions)
    r = analyze_factorial(_units(d, truth, 5), d, "y", truth=truth).effects.set_index("effect")
    assert np.allclose(r["estimate"], r["truth_with_aliases"], atol=1e-12)
    sc = r.loc["subject:content"]
    assert sc["aliased_with"] == "cta:hour"
    assert sc["truth"] == pytest.approx(0.006)  # its own difference of differences
    # plus cta:hour's: 0.002, and half the three-way's 0.003 (it applies with subject on)
    assert sc["truth_with_aliases"] == pytest.approx(0.006 + 0.002 + 0.003 / 2)
    # the three-way subject:cta:hour is aliased with content's main effect
    assert r.loc["content", "truth_with_aliases"] != pytest.approx(r.loc["content", "truth"])


def test_multi_level_factors_and_the_logistic_model() -> None:
    d = full_factorial([Factor("subject", ("plain", "urgency")),
                        Factor("cta", ("shop", "save", "see"))])
    truth = _truth(d, lambda r: 0.1 + 0.05 * (r["subject"] == "urgency")
                   + 0.03 * (r["cta"] == "save")
                   + 0.04 * (r["subject"] == "urgency" and r["cta"] == "see"))
    df = _units(d, truth, 4000, np.random.default_rng(3))
    lin = analyze_factorial(df, d, "y", truth=truth)
    log = analyze_factorial(df, d, "y", truth=truth, model="logistic")
    assert list(lin.effects["level"]) == ["urgency", "save", "see", "urgency:save",
                                          "urgency:see"]
    # a saturated model: both fit the cell means, so the contrasts agree
    assert np.allclose(lin.effects["estimate"], log.effects["estimate"], atol=1e-9)
    assert np.allclose(lin.effects["standard_error"], log.effects["standard_error"], rtol=0.05)
    assert lin.best["true_best"] == {"subject": "urgency", "cta": "see"}
    assert (lin.cells["fitted"].diff().dropna() <= 0).all()  # best first


def test_intervals_cover_the_truth_at_their_level() -> None:
    """Over 200 simulated tests of a 2**(4-1) fraction, the 90 % intervals of the 7
    contrasts cover what each estimates about 90 % of the time."""
    d = fractional_factorial(_two_level(4), ["D=ABC"])
    truth = _truth(d, _mu_with_interactions)
    rng = np.random.default_rng(11)
    hits = []
    for _ in range(200):
        e = analyze_factorial(_units(d, truth, 600, rng), d, "y", truth=truth,
                              alpha=0.1).effects
        hits.append(((e["ci_low"] <= e["truth_with_aliases"])
                     & (e["truth_with_aliases"] <= e["ci_high"])).to_numpy())
    cover = np.mean(hits)
    assert 0.86 <= cover <= 0.94, cover


def test_multiple_testing_is_corrected_over_all_contrasts() -> None:
    d = full_factorial(_two_level(3))
    truth = _truth(d, lambda r: 0.2)
    df = _units(d, truth, 300, np.random.default_rng(5))
    for method in ("holm", "bh", "bonferroni"):
        e = analyze_factorial(df, d, "y", correction=method).effects
        assert (e["p_adjusted"] >= e["p_value"] - 1e-15).all()
    e = analyze_factorial(df, d, "y", correction="bonferroni").effects
    assert np.allclose(e["p_adjusted"], np.minimum(1, e["p_value"] * len(e)))


def _frame() -> tuple:
    d = full_factorial(_two_level(2))
    truth = _truth(d, lambda r: 0.3)
    return d, truth, _units(d, truth, 20, np.random.default_rng(0))


BAD_ANALYSES = [
    (lambda d, t, df: analyze_factorial(df.drop(columns="content"), d, "y"),
     r"missing factor column\(s\) \['content'\]"),
    (lambda d, t, df: analyze_factorial(df, d, "z"), "no outcome column 'z'"),
    (lambda d, t, df: analyze_factorial(df.assign(subject="maybe"), d, "y"),
     r"data\['subject'\]: 80 value\(s\) not among the levels \['off', 'on'\]: 'maybe'"),
    (lambda d, t, df: analyze_factorial(df.assign(y=np.nan), d, "y"), "not finite numbers"),
    (lambda d, t, df: analyze_factorial(df.assign(y=2), d, "y", model="logistic"),
     "needs 0/1 outcomes"),
    (lambda d, t, df: analyze_factorial(df[df.subject == "off"], d, "y"),
     r"2 cell\(s\) of the design have no units \(first: subject=on, content=off\)"),
    (lambda d, t, df: analyze_factorial(df, fractional_factorial(_two_level(3), ["C=AB"]),
                                        "y"), r"missing factor column\(s\) \['cta'\]"),
    (lambda d, t, df: analyze_factorial(df.assign(cta="off"),
                                        fractional_factorial(_two_level(3), ["C=AB"]), "y"),
     r"unit\(s\) in cells outside the design"),
    (lambda d, t, df: analyze_factorial(df.iloc[[0, -1]], full_factorial(_two_level(1)), "y"),
     "2 units for a model of 2 parameters"),
    (lambda d, t, df: analyze_factorial(df, d, "y", truth=t.head(3)), "1 of the 4 cells"),
    (lambda d, t, df: analyze_factorial(df, d, "y", truth=t.drop(columns="truth")),
     "a 'truth' column"),
    (lambda d, t, df: analyze_factorial(df, d, "y", model="probit"), "model"),
    (lambda d, t, df: analyze_factorial(df, d, "y", correction="sidak"), "correction"),
    (lambda d, t, df: analyze_factorial(df, d, "y", alpha=1.5), "alpha"),
    (lambda d, t, df: analyze_factorial(df.to_dict(), d, "y"), "expected a DataFrame"),
]


@pytest.mark.parametrize(("call", "message"), BAD_ANALYSES)
def test_bad_analyses_are_refused_with_a_message(call, message) -> None:
    d, truth, df = _frame()
    with pytest.raises(StatsInputError, match=message):
        call(d, truth, df)


def test_every_two_way_contrast_is_a_difference_of_differences() -> None:
    """The interaction's weights: +1 at (l, m), -1 at (ref, m) and (l, ref), +1 at
    (ref, ref), each averaged over the other factors."""
    from experiments.stats.factorial import _contrasts

    d = full_factorial([*_two_level(2), Factor("cta", ("a", "b", "c"))])
    grid = d.cells
    W, labels = _contrasts(d, grid, [(0, 2)])
    for w, lb in zip(W, labels, strict=True):
        lv = 1 if lb["level"].endswith("b") else 2
        for cell, weight in zip(grid.tolist(), w, strict=True):
            want = {(1, lv): 1, (0, lv): -1, (1, 0): -1, (0, 0): 1}.get((cell[0], cell[2]), 0)
            assert weight == pytest.approx(want / 2)  # two levels of the other factor
    assert list(itertools.chain(*[[lb["effect"]] for lb in labels])) == ["subject:cta"] * 2


# -- plots ------------------------------------------------------------------------------


def test_the_plots_draw_every_level_and_contrast() -> None:
    import matplotlib.pyplot as plt

    from experiments.factorial_plots import effects_plot, interaction_plot

    d = fractional_factorial(_two_level(4), ["D=ABC"])
    truth = _truth(d, _mu_with_interactions)
    r = analyze_factorial(_units(d, truth, 200, np.random.default_rng(2)), d, "y", truth=truth)
    fig = interaction_plot(r, "subject", "content")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["off", "on"]
    assert len(ax.get_legend().get_texts()) == 2
    dashed = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
    assert len(dashed) == 2  # the truth of each subject level
    plt.close(fig)
    fig = effects_plot(r)
    ax = fig.axes[0]
    assert len(ax.get_yticklabels()) == len(r.effects) == 7
    assert "truth with aliases" in [t.get_text() for t in ax.get_legend().get_texts()]
    plt.close(fig)
    with pytest.raises(StatsInputError, match="factor 'tone': expected one of"):
        interaction_plot(r, "tone", "subject")
    with pytest.raises(StatsInputError, match="must differ"):
        interaction_plot(r, "subject", "subject")


def test_the_docs_example_runs_and_finds_the_interaction() -> None:
    """docs/multivariate.md's examples run as printed; the factorial one's aliased
    interaction is found and its truth is what the page says; the policy's rewards
    update one level of each of its three elements."""
    import contextlib
    import io
    import re
    from pathlib import Path

    page = (Path(__file__).resolve().parents[2] / "docs" / "multivariate.md").read_text()
    code = re.findall(r"```python\n(.*?)```", page, re.S)
    assert len(code) == 2
    scope: dict = {}
    policy_scope: dict = {}
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(code[0], "docs/multivariate.md", "exec"), scope)
        exec(compile(code[1], "docs/multivariate.md", "exec"), policy_scope)
    assert policy_scope["policy"].arm_names[:2] == ("plain:grid:shop", "plain:grid:save")
    assert policy_scope["policy"].successes.sum() == policy_scope["orders"].sum() * 3
    e = scope["result"].effects.set_index("effect")
    assert e.loc["subject:discount", "aliased_with"] == "content:cta"
    assert e.loc["subject:discount", "truth_with_aliases"] == pytest.approx(0.006)
    assert bool(e.loc["discount", "significant"])
    assert scope["result"].best["true_best"] == {"subject": "urgency", "content": "story",
                                                 "cta": "shop", "discount": "ten_pct"}


def test_the_docs_design_table_is_what_the_code_builds() -> None:
    import re
    from pathlib import Path

    page = (Path(__file__).resolve().parents[2] / "docs" / "multivariate.md").read_text()
    rows = re.findall(r"^\| 2\*\*\((\d)-(\d)\), (.*?) \| (\d+) \| ([IV]+) \|", page, re.M)
    assert len(rows) == 5
    roman = {"III": 3, "IV": 4, "V": 5}
    for k, p, gens, cells, res in rows:
        d = fractional_factorial(_two_level(int(k)), re.findall(r"`(\w=\w+)`", gens))
        assert len(d.generators) == int(p)
        assert (len(d.cells), d.resolution) == (int(cells), roman[res])
