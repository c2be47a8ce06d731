"""Model fits run on one thread here: scikit-learn's OpenMP loops (gradient boosting,
k-means) slow down by an order of magnitude when the machine's cores are busy with
other test workers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sklearn.cluster
import sklearn.ensemble
from threadpoolctl import threadpool_limits

# threadpoolctl limits only the thread pools already loaded: load scikit-learn's now
_LOADED = (sklearn.cluster.KMeans, sklearn.ensemble.HistGradientBoostingClassifier)


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    with threadpool_limits(limits=1):
        yield
