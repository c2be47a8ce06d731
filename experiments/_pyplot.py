"""matplotlib's pyplot on the Agg backend (PNG files, no display needed), imported when a
plot is first drawn so that importing a plotting module stays cheap."""

from __future__ import annotations

from typing import Any


def pyplot() -> Any:
    """``matplotlib.pyplot`` with the Agg backend selected."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt
