"""Keyed counter-based random numbers (Philox4x32-10).

Every random number of the simulator is a pure function of
``(seed, subscriber, step, purpose, index)``: the counter of a Philox4x32-10 block
cipher (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11) is built
from the subscriber id, a time step (a day number or a send time in seconds), a
purpose code and an index, and the key from the seed. Nothing depends on which shard
or process asks, or on how many other subscribers are simulated alongside, so

* simulating subscribers ``[0, n)`` in one piece equals simulating ``[0, n/2)`` and
  ``[n/2, n)`` separately, bit for bit;
* two runs that differ only in the emails they send draw the same organic randomness
  (common random numbers).

Draws that every subscriber needs at every step (daily session counts, state noise,
traits) use :meth:`KeyedRandom.dense_uniforms`: numpy's C Philox4x64 generator keyed by
``(seed, block of 4096 subscribers, step, purpose)``, whole blocks generated and sliced,
so they too are independent of the shard boundaries.

:func:`philox4x32` is the vectorized fast path (numpy ``uint64`` arithmetic);
:func:`philox4x32_reference` is the plain-Python specification it is tested against,
together with the published known-answer vectors of Random123. :meth:`KeyedRandom.uniforms`
and :meth:`KeyedRandom.bits` run a numba kernel (:func:`_keyed_table`: counters built,
enciphered and written out in one pass, the same integer arithmetic);
:meth:`KeyedRandom._word_table_reference` is the numpy path it is tested against.

Example
-------
>>> rng = KeyedRandom(7)
>>> u = rng.uniforms(np.array([0, 1, 2]), step=19000, purpose=PURPOSES["daily"], k=3)
>>> u.shape, bool(((u > 0) & (u < 1)).all())
((3, 3), True)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numba
import numpy as np

from policies.errors import SpecError

__all__ = [
    "BLOCK",
    "PURPOSES",
    "KeyedRandom",
    "check_seed",
    "normal_from_uniforms",
    "philox4x32",
    "philox4x32_reference",
]

_M32 = 0xFFFFFFFF
_PHILOX_M0 = 0xD2511F53
_PHILOX_M1 = 0xCD9E8D57
_PHILOX_W0 = 0x9E3779B9
_PHILOX_W1 = 0xBB67AE85
_ROUNDS = 10

#: Purpose codes: one independent stream family per use of randomness.
PURPOSES: dict[str, int] = {
    "population": 1,
    "daily": 2,
    "session_count": 3,
    "session_time": 4,
    "session": 5,
    "email": 6,
    "return": 7,
    "email_detail": 8,
    "assignment": 9,  # experiment tooling: send/holdout and train/test draws
    "catalog": 10,  # product traits (keyed by product, not subscriber)
    "catalog_day": 11,  # price drops and stock-outs of a day (keyed by product, day)
}


def check_seed(seed: object) -> int:
    """Validate a simulation seed: an int in [0, 2**63). Raises :class:`SpecError`."""
    if seed is None:
        raise SpecError("seed: expected an integer >= 0 (a seed is required), got None")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise SpecError(f"seed: expected an integer >= 0, got {seed!r}")
    if not 0 <= int(seed) < 2**63:
        raise SpecError(f"seed: expected an integer in [0, 2**63), got {seed!r}")
    return int(seed)


def philox4x32_reference(
    counter: tuple[int, int, int, int], key: tuple[int, int]
) -> tuple[int, int, int, int]:
    """Philox4x32-10 of one 128-bit counter under a 64-bit key (plain Python spec)."""
    c0, c1, c2, c3 = (int(c) & _M32 for c in counter)
    k0, k1 = (int(k) & _M32 for k in key)
    for r in range(_ROUNDS):
        if r:
            k0 = (k0 + _PHILOX_W0) & _M32
            k1 = (k1 + _PHILOX_W1) & _M32
        p0 = _PHILOX_M0 * c0
        p1 = _PHILOX_M1 * c2
        c0, c1, c2, c3 = (
            (p1 >> 32) ^ c1 ^ k0,
            p1 & _M32,
            (p0 >> 32) ^ c3 ^ k1,
            p0 & _M32,
        )
    return c0, c1, c2, c3


def philox4x32(
    c0: np.ndarray, c1: np.ndarray, c2: np.ndarray, c3: np.ndarray, key: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Vectorized Philox4x32-10.

    Parameters
    ----------
    c0, c1, c2, c3 : ndarray of uint64, shape (n,)
        The four 32-bit counter words (values must be < 2**32).
    key : (int, int)
        The two 32-bit key words.

    Returns
    -------
    Four uint64 arrays of shape (n,) holding the 32-bit output words.
    """
    return _philox_inplace(
        np.array(c0, np.uint64), np.array(c1, np.uint64), np.array(c2, np.uint64),
        np.array(c3, np.uint64), key,
    )


def _philox_inplace(
    x0: np.ndarray, x1: np.ndarray, x2: np.ndarray, x3: np.ndarray, key: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Philox4x32-10 overwriting its four fresh uint64 counter arrays."""
    m0 = np.uint64(_PHILOX_M0)
    m1 = np.uint64(_PHILOX_M1)
    mask = np.uint64(_M32)
    s32 = np.uint64(32)
    k0, k1 = int(key[0]) & _M32, int(key[1]) & _M32
    p0 = np.empty_like(x0)
    p1 = np.empty_like(x0)
    for r in range(_ROUNDS):
        if r:
            k0 = (k0 + _PHILOX_W0) & _M32
            k1 = (k1 + _PHILOX_W1) & _M32
        np.multiply(x0, m0, out=p0)
        np.multiply(x2, m1, out=p1)
        # new x0 = hi(p1) ^ x1 ^ k0 ; new x2 = hi(p0) ^ x3 ^ k1
        np.right_shift(p1, s32, out=x0)
        np.bitwise_xor(x0, x1, out=x0)
        np.bitwise_xor(x0, np.uint64(k0), out=x0)
        np.right_shift(p0, s32, out=x2)
        np.bitwise_xor(x2, x3, out=x2)
        np.bitwise_xor(x2, np.uint64(k1), out=x2)
        np.bitwise_and(p1, mask, out=x1)
        np.bitwise_and(p0, mask, out=x3)
    return x0, x1, x2, x3


@numba.njit(cache=True, nogil=True, inline="always")
def _philox_block(x0: np.uint64, x1: np.uint64, x2: np.uint64, x3: np.uint64, k0: np.uint64,
                  k1: np.uint64) -> tuple[np.uint64, np.uint64, np.uint64, np.uint64
                                          ]:  # pragma: no cover - compiled
    """Philox4x32-10 of one counter (words in uint64, < 2**32), as :func:`_philox_inplace`."""
    m0 = np.uint64(_PHILOX_M0)
    m1 = np.uint64(_PHILOX_M1)
    mask = np.uint64(_M32)
    s32 = np.uint64(32)
    w0 = np.uint64(_PHILOX_W0)
    w1 = np.uint64(_PHILOX_W1)
    for r in range(_ROUNDS):
        if r:
            k0 = (k0 + w0) & mask
            k1 = (k1 + w1) & mask
        p0 = x0 * m0
        p1 = x2 * m1
        x0 = (p1 >> s32) ^ x1 ^ k0
        x1 = p1 & mask
        x2 = (p0 >> s32) ^ x3 ^ k1
        x3 = p0 & mask
    return x0, x1, x2, x3


@numba.njit(cache=True, nogil=True, inline="always")
def _counter(sub: np.ndarray, step: np.ndarray, index: np.ndarray, pw: np.uint64, i: int
             ) -> tuple[np.uint64, np.uint64, np.uint64, np.uint64]:  # pragma: no cover
    """Counter words 0-3 (group 0) of row ``i``; ``step`` / ``index`` of one element apply
    to every row."""
    s_i = sub[i]
    c0 = np.uint64(s_i & 0xFFFFFFFF)
    c1 = np.uint64((s_i >> 32) & 0xFFFF) | pw
    c2 = np.uint64(step[i if step.shape[0] != 1 else 0] & 0xFFFFFFFF)
    c3 = np.uint64(index[i if index.shape[0] != 1 else 0] & 0xFFFFFF) << np.uint64(8)
    return c0, c1, c2, c3


@numba.njit(cache=True, nogil=True)
def _keyed_uniforms(sub: np.ndarray, step: np.ndarray, index: np.ndarray, purpose: int,
                    k0: int, k1: int, out: np.ndarray) -> None:  # pragma: no cover - compiled
    """Fill float64 ``out`` (n, k) with :meth:`KeyedRandom.uniforms`: ``(word + 0.5) / 2**32``
    (both operations exact) of the words of :meth:`KeyedRandom._word_table_reference`.

    Row ``i``, column ``4 g + w`` is output word ``w`` of the counter of subscriber
    ``sub[i]``, step ``step[i]``, index ``index[i]`` and group ``g``.
    """
    k = out.shape[1]
    key0 = np.uint64(k0 & _M32)
    key1 = np.uint64(k1 & _M32)
    pw = np.uint64((purpose & 0xFFFF) << 16)
    scale = 1.0 / 4294967296.0
    for i in range(sub.shape[0]):
        c0, c1, c2, c3 = _counter(sub, step, index, pw, i)
        for g in range((k + 3) // 4):
            x0, x1, x2, x3 = _philox_block(c0, c1, c2, c3 | np.uint64(g), key0, key1)
            col = 4 * g
            out[i, col] = (np.float64(x0) + 0.5) * scale
            if col + 1 < k:
                out[i, col + 1] = (np.float64(x1) + 0.5) * scale
            if col + 2 < k:
                out[i, col + 2] = (np.float64(x2) + 0.5) * scale
            if col + 3 < k:
                out[i, col + 3] = (np.float64(x3) + 0.5) * scale


@numba.njit(cache=True, nogil=True)
def _keyed_bits(sub: np.ndarray, step: np.ndarray, index: np.ndarray, purpose: int,
                k0: int, k1: int, out: np.ndarray) -> None:  # pragma: no cover - compiled
    """Fill uint64 ``out`` (n, k) with the words of :meth:`KeyedRandom.bits` (the layout
    of :func:`_keyed_uniforms`)."""
    k = out.shape[1]
    key0 = np.uint64(k0 & _M32)
    key1 = np.uint64(k1 & _M32)
    pw = np.uint64((purpose & 0xFFFF) << 16)
    for i in range(sub.shape[0]):
        c0, c1, c2, c3 = _counter(sub, step, index, pw, i)
        for g in range((k + 3) // 4):
            x0, x1, x2, x3 = _philox_block(c0, c1, c2, c3 | np.uint64(g), key0, key1)
            col = 4 * g
            out[i, col] = x0
            if col + 1 < k:
                out[i, col + 1] = x1
            if col + 2 < k:
                out[i, col + 2] = x2
            if col + 3 < k:
                out[i, col + 3] = x3


@dataclass(frozen=True)
class KeyedRandom:
    """Uniform random numbers keyed by ``(seed, subscriber, step, purpose, index)``.

    Parameters
    ----------
    seed : int
        Required; an integer in [0, 2**63). ``None`` raises :class:`SpecError`.

    Notes
    -----
    Counter layout (four 32-bit words): ``subscriber & 0xffffffff``;
    ``(subscriber >> 32) & 0xffff | purpose << 16``; ``step & 0xffffffff``;
    ``(index & 0xffffff) << 8 | group``. The key is two words derived from the seed
    by :class:`numpy.random.SeedSequence`. Subscriber ids must be in [0, 2**48).
    """

    seed: int
    _key: tuple[int, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        seed = check_seed(self.seed)
        words = np.random.SeedSequence(seed).generate_state(2, np.uint32)
        object.__setattr__(self, "_key", (int(words[0]), int(words[1])))

    @property
    def key(self) -> tuple[int, int]:
        """The 64-bit Philox key as two 32-bit words."""
        return self._key

    def dense_uniforms(self, start: int, stop: int, step: int, purpose: int, k: int = 1
                       ) -> np.ndarray:
        """Uniforms in (0, 1) for every subscriber of ``[start, stop)``, shape (n, k).

        The bulk path for draws that every subscriber needs each step (daily session
        counts, state noise, traits): numpy's Philox4x64 bit generator keyed by
        ``(seed, subscriber block of BLOCK ids, step, purpose)`` fills whole blocks, and
        the rows of ``[start, stop)`` are sliced out, so the result for a subscriber does
        not depend on the range asked for. Subscriber ids must be below ``2**24 * BLOCK``.
        """
        n = stop - start
        out = np.empty((max(n, 0), k), np.float64)
        if n <= 0:
            return out
        first, last = start // BLOCK, (stop - 1) // BLOCK
        tail = (int(step) & _M32) | ((int(purpose) & 0xFF) << 32)
        for b in range(first, last + 1):
            key = np.array([self._key64, tail | ((b & 0xFFFFFF) << 40)], np.uint64)
            g = np.random.Generator(np.random.Philox(key=key))
            lo, hi = max(start, b * BLOCK), min(stop, (b + 1) * BLOCK)
            block = g.random((hi - b * BLOCK, k))
            out[lo - start : hi - start] = block[lo - b * BLOCK :]
        out += 2.0**-54  # multiples of 2**-53 in [0, 1) -> open interval (0, 1)
        return out

    @property
    def _key64(self) -> int:
        return self._key[0] | (self._key[1] << 32)

    def _words(
        self,
        subscriber: np.ndarray,
        step: int | np.ndarray,
        purpose: int,
        groups: int,
        index: int | np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Output words, each of shape (n * groups,) laid out subscriber-major."""
        sub = np.asarray(subscriber, np.int64)
        n = sub.shape[0]
        su = sub.astype(np.uint64)
        c0 = su & np.uint64(_M32)
        c1 = ((su >> np.uint64(32)) & np.uint64(0xFFFF)) | np.uint64((purpose & 0xFFFF) << 16)
        c2 = np.broadcast_to(np.asarray(step, np.int64).astype(np.uint64) & np.uint64(_M32), (n,))
        idx = np.broadcast_to(np.asarray(index, np.int64).astype(np.uint64), (n,))
        c3 = (idx & np.uint64(0xFFFFFF)) << np.uint64(8)
        if groups > 1:
            g = np.arange(groups, dtype=np.uint64)
            c0 = np.repeat(c0, groups)
            c1 = np.repeat(c1, groups)
            c2 = np.repeat(c2, groups)
            c3 = (c3[:, None] | g[None, :]).ravel()
        else:
            c2 = c2.copy()
            c1 = c1.copy() if c1.base is not None else c1
        return _philox_inplace(c0, c1, c2, c3, self._key)

    def _word_table_reference(
        self,
        subscriber: np.ndarray,
        step: int | np.ndarray,
        purpose: int,
        k: int,
        index: int | np.ndarray,
        dtype: type[np.generic],
    ) -> np.ndarray:
        """The words of ``ceil(k / 4)`` counters per row as ``dtype``, shape (n, 4 * groups)
        (numpy; the specification of the compiled :meth:`bits` and :meth:`uniforms`).

        Row ``i``, column ``4 g + w`` is output word ``w`` of the counter with group ``g``.
        """
        n = len(subscriber)
        groups = max(1, -(-int(k) // 4))
        words = self._words(subscriber, step, purpose, groups, index)
        out = np.empty((n, groups, 4), dtype)
        for w in range(4):
            out[:, :, w] = words[w].reshape(n, groups)
        return out.reshape(n, 4 * groups)

    def _bits_reference(self, subscriber: np.ndarray, step: int | np.ndarray, purpose: int,
                        k: int = 4, index: int | np.ndarray = 0) -> np.ndarray:
        """:meth:`bits` by the numpy path (:meth:`_word_table_reference`)."""
        return self._word_table_reference(subscriber, step, purpose, k, index, np.uint64)[:, :k]

    def _uniforms_reference(self, subscriber: np.ndarray, step: int | np.ndarray,
                            purpose: int, k: int = 4, index: int | np.ndarray = 0
                            ) -> np.ndarray:
        """:meth:`uniforms` by the numpy path (:meth:`_word_table_reference`)."""
        flat = self._word_table_reference(subscriber, step, purpose, k, index, np.float64)
        flat += 0.5
        flat *= 1.0 / 4294967296.0
        return flat if k == flat.shape[1] else flat[:, :k]

    def _table(self, subscriber: np.ndarray, step: int | np.ndarray, purpose: int, k: int,
               index: int | np.ndarray, dtype: type[np.generic]) -> np.ndarray:
        """The compiled path of :meth:`bits` (uint64) and :meth:`uniforms` (float64)."""
        sub = np.ascontiguousarray(subscriber, np.int64).reshape(-1)
        n = sub.shape[0]
        steps = np.ascontiguousarray(step, np.int64).reshape(-1)
        idx = np.ascontiguousarray(index, np.int64).reshape(-1)
        for name, a in (("step", steps), ("index", idx)):
            if a.shape[0] not in (1, n):
                raise ValueError(f"{name}: expected a scalar or {n} values, got {a.shape[0]}")
        out = np.empty((n, max(int(k), 0)), dtype)
        if n and out.shape[1]:
            kernel = _keyed_uniforms if dtype is np.float64 else _keyed_bits
            kernel(sub, steps, idx, int(purpose), self._key[0], self._key[1], out)
        return out

    def bits(
        self,
        subscriber: np.ndarray,
        step: int | np.ndarray,
        purpose: int,
        k: int = 4,
        index: int | np.ndarray = 0,
    ) -> np.ndarray:
        """Raw 32-bit words, shape (n, k), dtype uint64 (values < 2**32).

        Row ``i``, column ``4 g + w`` is output word ``w`` of the counter with group ``g``.
        """
        return self._table(subscriber, step, purpose, k, index, np.uint64)

    def uniforms(
        self,
        subscriber: np.ndarray,
        step: int | np.ndarray,
        purpose: int,
        k: int = 4,
        index: int | np.ndarray = 0,
    ) -> np.ndarray:
        """Uniforms in the open interval (0, 1), shape (n, k), float64.

        ``(word + 0.5) / 2**32`` of the words of :meth:`bits`.

        Parameters
        ----------
        subscriber : ndarray of int64, shape (n,)
        step : int or ndarray (n,)
            The time key: a day number, a send time in seconds, ...
        purpose : int
            A code from :data:`PURPOSES`.
        k : int
            Uniforms per row.
        index : int or ndarray (n,)
            A further key (session number, campaign code); only its low 24 bits count.
        """
        return self._table(subscriber, step, purpose, k, index, np.float64)


#: Subscribers per block of :meth:`KeyedRandom.dense_uniforms`.
BLOCK = 4096


def normal_from_uniforms(u1: np.ndarray, u2: np.ndarray) -> np.ndarray:
    """Standard normal draws from two uniform arrays (Box-Muller, cosine branch)."""
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)
