"""Plots of a parameter search (:class:`experiments.tuning.TuneResult`).

* :func:`history_plot` -- the observed metric of each trial in order, the best feasible
  so far, trials that break the guardrail marked, the true value of each trial beside it;
* :func:`partial_dependence_plot` -- per parameter, the partial dependence of the metric
  on it under a Gaussian-process model of the trials (scikit-learn), with the trials
  themselves.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from experiments._pyplot import pyplot
from experiments.analysis import LOWER_IS_BETTER
from experiments.tuning_spec import TuneSpec
from policies.triggers import parse_duration

__all__ = ["history_plot", "numeric_values", "partial_dependence_plot"]

_DPI = 110


def numeric_values(t: TuneSpec, table: pd.DataFrame) -> pd.DataFrame:
    """The parameters of each trial as numbers (durations in hours)."""
    out = pd.DataFrame(index=table.index)
    for p in t.parameters:
        col = table[p.name]
        out[p.name] = (col.map(lambda v: parse_duration(v) / 3600.0) if p.kind == "duration"
                       else col.astype(float))
    return out


def _label(t: TuneSpec, name: str) -> str:
    p = next(x for x in t.parameters if x.name == name)
    return f"{name} (hours)" if p.kind == "duration" else name


def history_plot(result: Any, t: TuneSpec) -> Any:
    """Observed metric per trial (x: broke the guardrail), each trial's true value, and
    the best feasible so far by the objective."""
    plt = pyplot()
    tab = result.trials
    fig, ax = plt.subplots(figsize=(7.0, 4.2), dpi=_DPI)
    ok = tab["feasible"].astype(bool).to_numpy()
    ax.scatter(tab["trial"][ok], tab["metric"][ok], color="C0", label="trial (observed)")
    if (~ok).any():
        ax.scatter(tab["trial"][~ok], tab["metric"][~ok], marker="x", color="C3",
                   label="broke the guardrail")
    ax.scatter(tab["trial"], tab["metric_truth"], marker="_", s=120, color="0.4",
               label="true value")
    best = tab[t.objective_column].where(ok)
    best = best.cummin() if t.metric in LOWER_IS_BETTER else best.cummax()
    ax.step(tab["trial"], best, where="post", color="C1",
            label=f"best feasible so far ({t.objective})")
    if t.objective_column in result.baseline:
        ax.axhline(result.baseline[t.objective_column], color="0.6", ls="--", lw=1,
                   label=f"the arm as declared ({t.objective})")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("trial")
    ax.set_ylabel(t.metric)
    ax.legend(frameon=False, fontsize=8)
    ax.set_title(f"tuning {t.arm}: {t.metric}")
    fig.tight_layout()
    return fig


def partial_dependence_plot(result: Any, t: TuneSpec) -> Any:
    """Per parameter: the partial dependence of the objective (the true or the observed
    metric) under a Gaussian process fitted to the trials (Matern kernel with a noise
    term, inputs scaled to the declared ranges), and the trials."""
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

    plt = pyplot()
    tab = result.trials
    x = numeric_values(t, tab).to_numpy(float)
    y = tab[t.objective_column].to_numpy(float)
    n = len(t.parameters)
    fig, axes = plt.subplots(1, n, figsize=(3.4 * n, 3.4), dpi=_DPI, squeeze=False)
    scale = np.array([3600.0 if p.kind == "duration" else 1.0 for p in t.parameters])
    lo = np.array([p.low for p in t.parameters]) / scale  # the declared ranges
    span = np.array([p.high for p in t.parameters]) / scale - lo
    gp = None
    if len(tab) >= 3 and np.isfinite(y).all():
        import warnings

        from sklearn.exceptions import ConvergenceWarning

        kernel = ConstantKernel() * Matern(length_scale=np.full(n, 0.3), nu=2.5) + WhiteKernel()
        with warnings.catch_warnings():  # few, noisy trials: a bound reached is expected
            warnings.simplefilter("ignore", ConvergenceWarning)
            gp = GaussianProcessRegressor(kernel=kernel, normalize_y=True,
                                          n_restarts_optimizer=2,
                                          random_state=0).fit((x - lo) / span, y)
    for j, p in enumerate(t.parameters):
        ax = axes[0, j]
        ax.scatter(x[:, j], y, s=14, color="C0", alpha=0.7, label="trials")
        if gp is not None:  # the average prediction over the trials, column j set to v
            grid = np.linspace(0.0, 1.0, 41)
            z = (x - lo) / span
            avg = []
            for v in grid:
                zz = z.copy()
                zz[:, j] = v
                avg.append(float(gp.predict(zz).mean()))
            ax.plot(grid * span[j] + lo[j], avg, color="C1", label="partial dependence")
        ax.set_xlim(lo[j] - 0.02 * span[j], lo[j] + 1.02 * span[j])
        ax.set_xlabel(_label(t, p.name))
        if j == 0:
            ax.set_ylabel(f"{t.metric} ({t.objective})")
            ax.legend(frameon=False, fontsize=8)
    fig.suptitle(f"tuning {t.arm}: {t.metric} (Gaussian-process model of the trials)",
                 fontsize=10)
    fig.tight_layout()
    return fig
