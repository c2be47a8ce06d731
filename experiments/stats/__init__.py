"""Experiment statistics: tests, intervals, power, Bayesian comparison, sequential tests.

Conventions: arm ``a`` is control and ``b`` treatment; effects are ``b - a``; tests are
two-sided unless ``alternative`` says otherwise. Functions accept plain numbers or arrays
and raise :class:`policies.errors.StatsInputError` (a ``ValueError``) on bad input.
"""

from experiments.stats.bayes import expected_loss, prob_beat_control
from experiments.stats.bootstrap import BUILTIN_STATISTICS, bootstrap_ci
from experiments.stats.cuped import cuped, cuped_theta
from experiments.stats.frequentist import (
    adjust_pvalues,
    proportions_ztest,
    srm_test,
    welch_ttest,
)
from experiments.stats.heterogeneity import CochranQResult, cochran_q
from experiments.stats.intervals import (
    block_ttest,
    newcombe_diff_interval,
    normal_diff_test,
    poisson_rate_diff,
    wilson_interval,
)
from experiments.stats.power import mde_for_sample_size, sample_size_two_proportions
from experiments.stats.results import (
    BlockTTestResult,
    BootstrapResult,
    CupedResult,
    MSPRTResult,
    ProportionsTestResult,
    SRMResult,
    TTestResult,
    ZTestResult,
)
from experiments.stats.sequential import msprt

__all__ = [
    "BUILTIN_STATISTICS",
    "BlockTTestResult",
    "BootstrapResult",
    "CochranQResult",
    "CupedResult",
    "MSPRTResult",
    "ProportionsTestResult",
    "SRMResult",
    "TTestResult",
    "ZTestResult",
    "adjust_pvalues",
    "block_ttest",
    "bootstrap_ci",
    "cochran_q",
    "cuped",
    "cuped_theta",
    "expected_loss",
    "mde_for_sample_size",
    "msprt",
    "newcombe_diff_interval",
    "normal_diff_test",
    "poisson_rate_diff",
    "prob_beat_control",
    "proportions_ztest",
    "sample_size_two_proportions",
    "srm_test",
    "welch_ttest",
    "wilson_interval",
]
