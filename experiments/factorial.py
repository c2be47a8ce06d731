"""Factorial designs: several email elements tested at once (docs/multivariate.md).

A :class:`Factor` is one element of an email (subject style, content layout, call to
action, send hour) with two or more *levels*, the first of which is the reference. A
*cell* is one combination of levels. :func:`full_factorial` has every cell;
:func:`fractional_factorial` has a 1/2**p fraction of the cells of k two-level factors,
chosen by p *generators* such as ``"D=ABC"`` (factors are named by letters in order: the
level of factor D in a cell is the product of A's, B's and C's in the -1/+1 coding, the
reference level being -1). The generators' *words* (``ABCD``) and all their products
(letters that appear an even number of times cancel) form the *defining relation*; its
shortest word's length is the design's *resolution*, and an effect's *aliases* are its
products with the words: effects the fraction cannot tell apart. Resolution III aliases
main effects with two-way interactions; IV keeps main effects clear of them but aliases
two-way interactions in pairs; V keeps main effects and two-way interactions clear of
each other.
"""

from __future__ import annotations

import itertools
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from policies.errors import SpecError

__all__ = ["Design", "Factor", "cell_names", "design_from_mapping", "effect_name",
           "fractional_factorial", "full_factorial"]

#: Letters naming factors in generators, in factor order.
LETTERS = string.ascii_uppercase
_GENERATOR = re.compile(r"^\s*([A-Z])\s*=\s*([A-Z]+)\s*$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Factor:
    """One element and its levels (strings, distinct, at least two; the first is the
    reference level effects are measured against)."""

    name: str
    levels: tuple[str, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise SpecError(f"factor name: expected an identifier (letters, digits, _), got "
                            f"{self.name!r}")
        levels = tuple(self.levels) if isinstance(self.levels, list | tuple) else None
        if levels is None or len(levels) < 2 or not all(
                isinstance(v, str) and v for v in levels):
            raise SpecError(f"factor {self.name!r}: levels: expected a list of at least two "
                            f"non-empty strings, got {self.levels!r}")
        if len(set(levels)) != len(levels):
            raise SpecError(f"factor {self.name!r}: levels: repeated level in {list(levels)}")
        object.__setattr__(self, "levels", levels)


def effect_name(factors: Sequence[Factor], members: Sequence[int]) -> str:
    """An effect's name: its factors' names joined by ``:`` (``subject:content``)."""
    return ":".join(factors[i].name for i in members)


@dataclass(frozen=True, eq=False)
class Design:
    """The cells a test assigns units to.

    Attributes
    ----------
    factors : tuple of Factor
    cells : numpy.ndarray, shape (n_cells, n_factors), int64
        Level index of each factor in each cell (0: reference), in standard order.
    generators : tuple of str
        ``"D=ABC"``-style generators of a fractional design; empty for a full factorial.
    """

    factors: tuple[Factor, ...]
    cells: np.ndarray
    generators: tuple[str, ...] = ()
    words: tuple[frozenset[int], ...] = field(default=(), repr=False)

    @property
    def is_full(self) -> bool:
        return not self.generators

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.factors]

    @property
    def resolution(self) -> int | None:
        """Length of the shortest word of the defining relation (None: a full
        factorial, nothing aliased)."""
        return min(len(w) for w in self.words) if self.words else None

    def defining_relation(self) -> list[str]:
        """The words (in letters), shortest first: ``["ABCD"]`` for ``D=ABC``."""
        return [self._letters(w) for w in sorted(self.words, key=lambda w: (len(w), sorted(w)))]

    def aliases(self, members: Sequence[int]) -> list[tuple[int, ...]]:
        """The effects aliased with the effect of factors ``members`` (indices), shortest
        first; empty for a full factorial."""
        e = frozenset(members)
        out = {tuple(sorted(e ^ w)) for w in self.words}
        return sorted(out, key=lambda m: (len(m), m))

    def estimable(self, max_order: int = 2) -> list[tuple[tuple[int, ...], list[tuple[int, ...]]]]:
        """Main effects and interactions up to ``max_order`` the design can estimate:
        ``(effect, aliases up to max_order)``, one per alias class (the first in order
        names it); an interaction aliased with a lower-order effect is left out."""
        k = len(self.factors)
        seen: set[tuple[int, ...]] = set()
        out = []
        for order in range(1, max_order + 1):
            for members in itertools.combinations(range(k), order):
                if members in seen:
                    continue
                aliases = self.aliases(members)
                if any(len(a) < order for a in aliases):
                    continue  # confounded with a lower-order effect
                seen.update(a for a in aliases if len(a) <= max_order)
                out.append((members, [a for a in aliases if len(a) <= max_order]))
        return out

    def frame(self) -> pd.DataFrame:
        """The cells as level names, one column per factor, index ``cell``."""
        cols = {f.name: np.asarray(f.levels, dtype=object)[self.cells[:, i]]
                for i, f in enumerate(self.factors)}
        return pd.DataFrame(cols, index=pd.RangeIndex(len(self.cells), name="cell"))

    def alias_table(self, max_order: int = 2) -> pd.DataFrame:
        """Every estimable effect up to ``max_order`` with its aliases up to that order
        (by factor names) and in letters with all of them."""
        rows = []
        for members, aliases in self.estimable(max_order):
            rows.append({"effect": effect_name(self.factors, members),
                         "aliased_with": ", ".join(effect_name(self.factors, a)
                                                   for a in aliases),
                         "all_aliases": ", ".join(self._letters(a) for a in
                                                  self.aliases(members))})
        return pd.DataFrame(rows, columns=["effect", "aliased_with", "all_aliases"])

    def _letters(self, members: Sequence[int] | frozenset[int]) -> str:
        return "".join(LETTERS[i] for i in sorted(members))


def _check_factors(factors: Sequence[Factor]) -> tuple[Factor, ...]:
    if not isinstance(factors, list | tuple) or not factors or not all(
            isinstance(f, Factor) for f in factors):
        raise SpecError(f"factors: expected a non-empty list of Factor, got {factors!r}")
    names = [f.name for f in factors]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise SpecError(f"factors: repeated factor name(s) {dup}")
    if len(factors) > len(LETTERS):
        raise SpecError(f"factors: at most {len(LETTERS)}, got {len(factors)}")
    return tuple(factors)


def full_factorial(factors: Sequence[Factor]) -> Design:
    """Every combination of levels, in standard order (the first factor varies slowest).

    >>> d = full_factorial([Factor("subject", ("plain", "urgency")),
    ...                     Factor("cta", ("shop", "see", "save"))])
    >>> len(d.cells), d.resolution
    (6, None)
    """
    fs = _check_factors(factors)
    grid = np.array(list(itertools.product(*(range(len(f.levels)) for f in fs))), np.int64)
    return Design(fs, grid.reshape(-1, len(fs)))


def fractional_factorial(factors: Sequence[Factor], generators: Sequence[str]) -> Design:
    """The 2**(k - p) fraction of k two-level factors given by p generators.

    Parameters
    ----------
    factors : sequence of Factor
        Two levels each; the first k - p are the *base* factors (a full factorial of
        them), the last p are generated.
    generators : sequence of str
        One per generated factor, in order: ``"D=ABC"`` sets factor D's -1/+1 level to
        the product of A's, B's and C's (letters name factors in order; the right side
        names two or more base factors).

    Raises
    ------
    SpecError
        A factor with other than two levels, a generator that is malformed, defines a
        base factor or a factor twice, names a generated factor on its right side or
        fewer than two factors (which would alias two main effects), or a defining
        relation with a word of length two.

    >>> fs = [Factor(n, ("a", "b")) for n in ("subject", "content", "cta", "hour")]
    >>> d = fractional_factorial(fs, ["D=ABC"])
    >>> len(d.cells), d.resolution, d.defining_relation()
    (8, 4, ['ABCD'])
    """
    fs = _check_factors(factors)
    k = len(fs)
    for f in fs:
        if len(f.levels) != 2:
            raise SpecError(f"factor {f.name!r}: a fractional factorial needs two levels, "
                            f"got {len(f.levels)}")
    if isinstance(generators, str) or not isinstance(generators, list | tuple) or not generators:
        raise SpecError(f"generators: expected a non-empty list like ['D=ABC'], got "
                        f"{generators!r}")
    p = len(generators)
    base = k - p
    if base < 2:
        raise SpecError(f"generators: {p} generators for {k} factors leave {base} base "
                        "factor(s); at least two are needed")
    columns = {}
    words = []
    for g in generators:
        m = _GENERATOR.match(g) if isinstance(g, str) else None
        if m is None:
            raise SpecError(f"generators: {g!r} is not of the form 'D=ABC'")
        left, right = LETTERS.index(m.group(1)), [LETTERS.index(c) for c in m.group(2)]
        if left < base or left >= k:
            raise SpecError(f"generators: {g!r} must define one of the generated factors "
                            f"{', '.join(LETTERS[base:k])} (the last {p}, in order)")
        if left in columns:
            raise SpecError(f"generators: factor {LETTERS[left]} is defined twice")
        if any(r >= base for r in right) or len(set(right)) != len(right):
            raise SpecError(f"generators: {g!r}: the right side must name distinct base "
                            f"factors among {LETTERS[:base]}")
        if len(right) < 2:
            raise SpecError(f"generators: {g!r} would alias two main effects; name at "
                            "least two base factors")
        columns[left] = right
        words.append(frozenset([left, *right]))
    relation = set()
    for r in range(1, p + 1):
        for combo in itertools.combinations(words, r):
            w: frozenset[int] = frozenset()
            for x in combo:
                w = w ^ x
            relation.add(w)
    if min(len(w) for w in relation) < 3:
        short = min(relation, key=len)
        raise SpecError(f"generators: the defining relation has the word "
                        f"{''.join(LETTERS[i] for i in sorted(short))}: two main effects "
                        "would be aliased (resolution II)")
    signs = np.array(list(itertools.product((-1, 1), repeat=base)), np.int64)
    full = np.empty((len(signs), k), np.int64)
    full[:, :base] = signs
    for left, right in columns.items():
        full[:, left] = np.prod(signs[:, right], axis=1)
    return Design(fs, (full > 0).astype(np.int64), tuple(g.replace(" ", "") for g in generators),
                  tuple(relation))


def design_from_mapping(value: Any, where: str = "factorial") -> Design:
    """The design a spec's ``factorial:`` mapping describes: ``elements`` (factor name ->
    its levels, in order) and optionally ``generators`` (a 2**(k-p) fraction's, e.g.
    ``["C=AB"]``); a full factorial without them. Errors are SpecErrors under ``where``.
    """
    if not isinstance(value, dict) or set(value) - {"elements", "generators"}:
        raise SpecError(f"{where}: expected a mapping with elements (and optionally "
                        f"generators), got {value!r}")
    elements = value.get("elements")
    if not isinstance(elements, dict) or len(elements) < 2:
        raise SpecError(f"{where}.elements: expected a mapping of at least two element "
                        f"names to their levels, got {elements!r}")
    try:
        factors = [Factor(str(name), levels) for name, levels in elements.items()]
        generators = value.get("generators")
        if generators is None:
            return full_factorial(factors)
        return fractional_factorial(factors, generators)
    except SpecError as exc:
        raise SpecError(f"{where}: {exc}") from None


def cell_names(design: Design) -> list[str]:
    """Each cell's levels joined by ``:`` (the arm names of a combination policy)."""
    frame = design.frame()
    return [":".join(row) for row in frame.itertuples(index=False)]
