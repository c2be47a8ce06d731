"""Build the notebooks from their reviewable sources in ``notebooks/src/``.

Each source is a Python file in the "percent" format (as Jupytext and VS Code read it):
a line ``# %%`` starts a code cell, ``# %% [markdown]`` a Markdown cell whose lines
are comments, and ``# %% tags=["parameters"]`` tags a cell. Everything before the first
marker is a header for readers of the source and is dropped. IPython magics are
written commented out (``# %matplotlib inline``) and uncommented in the notebook.

    python notebooks/_build.py           # write notebooks/NN_name.ipynb (no outputs)
    python notebooks/_build.py --check   # exit 1 if a notebook differs from its source

Cell ids are derived from the position, so a build is byte-for-byte reproducible.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
SRC = HERE / "src"
_MAGIC = re.compile(r"^# %[a-z]")
_MARK = re.compile(r"^# %%(?P<md> \[markdown\])?(?:\s+tags=(?P<tags>\[.*\]))?\s*$")


def parse(text: str) -> list[tuple[str, str, list[str]]]:
    """``(cell_type, source, tags)`` of every cell of a percent-format source."""
    cells: list[tuple[str, list[str], list[str]]] = []
    for line in text.splitlines():
        m = _MARK.match(line)
        if m:
            tags = json.loads(m.group("tags")) if m.group("tags") else []
            cells.append(("markdown" if m.group("md") else "code", [], tags))
        elif cells:
            cells[-1][1].append(line)
    out = []
    for kind, lines, tags in cells:
        if kind == "markdown":
            lines = [ln[2:] if ln.startswith("# ") else ln.lstrip("#") for ln in lines]
        else:  # IPython magics are commented out in the source: "# %matplotlib inline"
            lines = [ln[2:] if _MAGIC.match(ln) else ln for ln in lines]
        while lines and not lines[-1].strip():
            lines.pop()
        while lines and not lines[0].strip():
            lines.pop(0)
        out.append((kind, "\n".join(lines), tags))
    return out


def build(source: Path) -> nbformat.NotebookNode:
    """The notebook (without outputs) of one source file."""
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    for i, (kind, text, tags) in enumerate(parse(source.read_text(encoding="utf-8"))):
        cell = (nbformat.v4.new_markdown_cell(text) if kind == "markdown"
                else nbformat.v4.new_code_cell(text))
        cell.id = f"cell-{i:02d}"
        if tags:
            cell.metadata["tags"] = tags
        nb.cells.append(cell)
    nbformat.validate(nb)
    return nb


def target(source: Path) -> Path:
    """Where the notebook of ``source`` is written."""
    return HERE / f"{source.stem}.ipynb"


def sources() -> list[Path]:
    """The notebook sources, in order."""
    return sorted(SRC.glob("[0-9][0-9]_*.py"))


def render(source: Path) -> str:
    """The notebook file's text for ``source``."""
    return nbformat.writes(build(source)) + "\n"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for src in sources():
        text = render(src)
        out = target(src)
        if check:
            if not out.exists() or out.read_text(encoding="utf-8") != text:
                stale.append(out.name)
        else:
            out.write_text(text, encoding="utf-8")
            print(f"wrote {out.relative_to(HERE.parent)}")
    if stale:
        print("out of date (run python notebooks/_build.py): " + ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
