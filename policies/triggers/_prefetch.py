"""A hint for compiled loops: load the cache line of an array element before it is used.

The trigger kernels visit subscribers in the order their events (or a price drop's
audience) come, so each visit reads a few rows of state at random: when the rows are not
in cache, the loop waits for memory once per array. A loop that knows which rows it will
visit a few steps ahead can ask for them now (:func:`prefetch`, LLVM's ``llvm.prefetch``
for reading into all cache levels), so that the loads overlap the work in between.

A prefetch decides nothing: it reads no value and cannot fault (an address that is not
mapped is ignored by the CPU), so a kernel computes the same with or without it; callers
still ask only for elements that exist (an index in range, and not a row of an array with
no columns). It can be used only inside ``numba.njit`` code.
"""

from __future__ import annotations

from typing import Any

from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

_I8P = ir.IntType(8).as_pointer()
_I32 = ir.IntType(32)
_PREFETCH_TYPE = ir.FunctionType(ir.VoidType(), [_I8P, _I32, _I32, _I32])


@intrinsic
def _prefetch(typingctx: Any, arr: Any, index: Any) -> Any:
    """``prefetch(arr, i)``: start loading the cache line of ``arr[i]`` (of ``arr[i, 0,
    ...]`` when ``arr`` has more dimensions: row ``i``'s first element). Numba only."""
    if not isinstance(arr, types.Array) or not isinstance(index, types.Integer):
        return None
    sig = types.void(arr, index)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        aryty, idxty = signature.args
        ary = context.make_array(aryty)(context, builder, args[0])
        idx = context.cast(builder, args[1], idxty, types.intp)
        zero = context.get_constant(types.intp, 0)
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary,
                                       [idx] + [zero] * (aryty.ndim - 1), wraparound=False)
        fn = cgutils.get_or_insert_function(builder.module, _PREFETCH_TYPE, "llvm.prefetch.p0")
        # read (0), keep in all cache levels (3), data cache (1)
        builder.call(fn, [builder.bitcast(ptr, _I8P), ir.Constant(_I32, 0),
                          ir.Constant(_I32, 3), ir.Constant(_I32, 1)])
        return context.get_dummy_value()

    return sig, codegen


#: :func:`_prefetch` as the kernels call it, ``prefetch(arr, i)`` (typed loosely: numba
#: passes the typing context itself).
prefetch: Any = _prefetch
