"""convkit on Dask: ``conv`` and ``filter`` over ``dask.array.Array`` chunked along batch and
spatial axes, equal to the whole-array result of :func:`convkit.conv` / :func:`convkit.filter`.

Each block is computed by convkit on its chunk plus a halo taken from its neighbours with
``map_overlap``. The halo is what the block's outputs read: ``pad_begin`` before the chunk and
``dilation*(kernel-1) - pad_begin`` after it (the padding resolved by convkit for the whole
array). Dask's own ``boundary`` modes are not used for the padding, since their names do not mean
convkit's (Dask's ``reflect`` repeats the edge pixel, convkit's does not): at the array's edges a
block is padded by convkit itself with the whole array's padding amounts and border mode. The
exception is ``circular``, whose padding is the other end of the array: there Dask's ``periodic``
halo supplies exactly those values.

With stride ``s``, output ``o`` belongs to the block holding input ``o*s``: every chunk along a
strided axis must start at a multiple of ``s`` (all chunks but the last are multiples of ``s``),
otherwise a ``ValueError`` says how to rechunk. Every chunk must also hold the halo. The channel
axis is made one chunk, and a chunk whose block would give fewer than 16 outputs along an axis
is merged into its neighbour (convkit computes such short rows with other code, whose sums round
differently; merged, every block runs the kernels the whole array runs, so the result is
bit-identical).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

import convkit
from convkit import _convkit, _flag, _kernel, _opt, _threads, _word

__all__ = ["conv", "filter"]


def _dask_array():
    try:
        import dask.array as da
    except ImportError as e:  # pragma: no cover - exercised only without dask
        raise ImportError("convkit.dask needs dask: pip install 'dask[array]'") from e
    return da


class _Axis:
    """One spatial axis of one stage: the geometry convkit resolved for the whole array, and
    for each chunk the outputs it produces and the input range they read."""

    def __init__(self, name: str, geometry: Sequence[int], chunks: Sequence[int], circular: bool):
        n_in, k, s, d, pb, pe, n_out = geometry
        self.n_in, self.stride, self.pb, self.pe, self.n_out = n_in, s, pb, pe, n_out
        self.eff = d * (k - 1) + 1
        self.circular = circular
        starts = np.cumsum((0,) + tuple(chunks))
        self.blocks: List[Tuple[int, int, int, int]] = []  # (o0, o1, lo, hi) per chunk
        for j, c in enumerate(chunks):
            r0, r1 = int(starts[j]), int(starts[j + 1])
            if r0 % s:
                raise ValueError(
                    f"invalid chunks {tuple(chunks)} along {name}: a chunk starts at {r0}, not a multiple "
                    f"of the stride {s}; rechunk that axis to multiples of {s}"
                )
            last = j == len(chunks) - 1
            o0 = min(r0 // s, n_out)
            o1 = n_out if last else min(-(-r1 // s), n_out)
            o1 = max(o1, o0)
            lo = o0 * s - pb
            hi = (o1 - 1) * s - pb + self.eff if o1 > o0 else lo
            self.blocks.append((o0, o1, lo, hi))
        # The halo: the most any chunk reads before its start or after its end.
        before = max([r0 - b[2] for r0, b in zip(starts, self.blocks) if b[1] > b[0]] + [0])
        after = max([b[3] - r1 for r1, b in zip(starts[1:], self.blocks) if b[1] > b[0]] + [0])
        self.depth = int(max(before, after))
        self.out_chunks = tuple(b[1] - b[0] for b in self.blocks)
        self.starts = starts
        if self.depth > min(chunks):
            # map_overlap would rechunk, and the blocks would no longer be these.
            raise ValueError(
                f"invalid chunks {tuple(chunks)} along {name}: every chunk must hold at least the "
                f"{self.depth} values of the halo the kernel reads; rechunk to larger chunks"
            )

    def local(self, j: int, length: int) -> Tuple[slice, int, int, int, int]:
        """For chunk j, given its data with halo (``length`` values): the slice of the data the
        outputs read, the padding convkit adds before and after it, and how many outputs to drop
        at each end.

        Real padding is added only at the array's edges (for circular, the periodic halo holds
        the wrapped values instead). Where the whole array is padded, a block side without real
        padding gets one stride of padding whose outputs are dropped: convkit then plans the
        same kernels for the block as for the whole array (some SIMD kernels exist only for
        padded problems, and their sums are ordered differently), so results are bit-identical.
        """
        o0, o1, lo, hi = self.blocks[j]
        r0 = int(self.starts[j])
        if self.circular:
            first = r0 - self.depth  # the periodic halo is always there
            a, b = lo, hi
        else:
            first = max(r0 - self.depth, 0)
            a, b = max(lo, 0), min(hi, self.n_in)
        if not (first <= a and b - first <= length):
            raise RuntimeError("convkit.dask internal error: halo too small")
        before, after = a - lo, hi - b
        drop0 = drop1 = 0
        if self.pb + self.pe > 0:
            if before == 0:
                before, drop0 = self.stride, 1
            if after == 0:
                # Padding enough for one more window, whose output is dropped.
                after, drop1 = self.stride, 1
        return slice(a - first, b - first), before, after, drop0, drop1


# Fewest outputs a block may give along an axis (unless the axis is one block): convkit's SIMD
# kernels compute a row narrower than a vector (16 float32, 8 float64 at AVX-512), or narrower
# than 8 outputs for the padded 3x3 kernels, by other code whose sums round differently.
MIN_BLOCK_OUTPUTS = 16


def _settle_chunks(geometry: Sequence[int], chunks: Sequence[int]) -> Tuple[int, ...]:
    """The chunks along one axis with every block that gives only a few outputs merged into its
    neighbour, so each block runs the same kernels as the whole array would."""
    n_in, k, s, d, pb, pe, n_out = geometry
    chunks = list(chunks)
    while len(chunks) > 1:
        starts = np.cumsum([0] + chunks)
        counts = []
        for j in range(len(chunks)):
            o0 = min(int(starts[j]) // s, n_out)
            o1 = n_out if j == len(chunks) - 1 else min(-(-int(starts[j + 1]) // s), n_out)
            counts.append(max(o1 - o0, 0))
        small = [j for j, n in enumerate(counts) if 0 < n < MIN_BLOCK_OUTPUTS]
        if not small:
            break
        j = small[-1]
        i = j - 1 if j > 0 else j + 1
        lo, hi = min(i, j), max(i, j)
        chunks[lo:hi + 1] = [chunks[lo] + chunks[hi]]
    return tuple(chunks)


def _settled(x, spatial: Sequence[int], geometry: Sequence[Sequence[int]]):
    new = {ax: _settle_chunks(g, x.chunks[ax]) for ax, g in zip(spatial, geometry)}
    if any(new[ax] != x.chunks[ax] for ax in new):
        x = x.rechunk(new)
    return x


def _pad_spec(before: Sequence[int], after: Sequence[int]) -> str:
    return ",".join(str(v) for v in list(before) + list(after))


def _overlap(x, spatial: Sequence[int], axes: Sequence[_Axis], out_chunks, dtype, block: Callable):
    """map_overlap over the spatial axes with each axis's halo; ``block(data, slices, before,
    after)`` computes one block from its data, the slice per spatial axis and the padding."""
    da = _dask_array()
    depth = {i: 0 for i in range(x.ndim)}
    boundary: Dict[int, Any] = {i: "none" for i in range(x.ndim)}
    for ax, a in zip(spatial, axes):
        depth[ax] = a.depth
        if a.circular and a.depth:
            boundary[ax] = "periodic"

    def run(data, block_id=None):
        slices: List[slice] = [slice(None)] * data.ndim
        before, after, empty = [], [], False
        crop: List[slice] = [slice(None)] * data.ndim
        for ax, a in zip(spatial, axes):
            j = block_id[ax]
            o0, o1, _, _ = a.blocks[j]
            if o1 == o0:
                empty = True
            sl, b, e, d0, d1 = a.local(j, data.shape[ax])
            slices[ax] = sl
            before.append(b)
            after.append(e)
            crop[ax] = slice(d0, d0 + (o1 - o0))
        if empty:
            shape = [c[block_id[i]] for i, c in enumerate(out_chunks)]
            return np.empty(shape, dtype)
        y = block(data[tuple(slices)], before, after)
        out = y[tuple(crop)]
        return out if out.base is None else np.ascontiguousarray(out)

    return da.map_overlap(
        run, x, depth=depth, boundary=boundary, trim=False, chunks=out_chunks, dtype=dtype,
        meta=np.empty((0,) * x.ndim, dtype),
    )


def _check(x, what: str):
    da = _dask_array()
    if not isinstance(x, da.Array):
        raise ValueError(f"invalid {what} {type(x).__name__}: expected a dask.array.Array")
    if x.dtype not in (np.float32, np.float64):
        raise ValueError(f"invalid {what} dtype {x.dtype}: expected float32 or float64")


def conv(
    x,
    w: np.ndarray,
    bias: Optional[np.ndarray] = None,
    *,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: Any = 1,
    padding_mode: str = "zeros",
    flip: Any = False,
    layout: str = "nchw",
    threads: Optional[int] = None,
    exact: Any = False,
):
    """:func:`convkit.conv` of a dask array ``x`` (chunked along batch and spatial axes) by the
    NumPy weight ``w``: a dask array equal to ``convkit.conv`` of the whole array."""
    _check(x, "input")
    w = np.asarray(w) if not isinstance(w, np.ndarray) else w
    opts = dict(
        stride=_opt("stride", stride), padding=_opt("padding", padding), dilation=_opt("dilation", dilation),
        groups=_opt("groups", groups), padding_mode=_word("padding-mode", padding_mode), layout=_word("layout", layout),
    )
    geo, out_shape = _convkit.conv_geometry(list(x.shape), list(w.shape), opts["stride"], opts["padding"],
                                            opts["dilation"], opts["groups"], opts["padding_mode"], opts["layout"])
    nhwc = layout.strip().lower() in ("nhwc", "nwc", "ndhwc", "channels-last")
    c_axis = x.ndim - 1 if nhwc else 1
    spatial = [i for i in range(1, x.ndim) if i != c_axis]
    x = x.rechunk({c_axis: -1})
    circular = opts["padding_mode"].strip() in ("circular", "wrap")
    x = _settled(x, spatial, geo)
    axes = [_Axis(f"axis {ax}", g, x.chunks[ax], circular) for ax, g in zip(spatial, geo)]
    out_chunks = list(x.chunks)
    out_chunks[c_axis] = (out_shape[c_axis],)
    for ax, a in zip(spatial, axes):
        out_chunks[ax] = a.out_chunks
    flip_b, exact_b, threads_n = _flag("flip", flip), _flag("exact", exact), _threads(threads)
    s = ",".join(str(a.stride) for a in axes)

    def block(data, before, after):
        return convkit.conv(
            np.ascontiguousarray(data), w, bias, stride=s, padding=_pad_spec(before, after),
            dilation=opts["dilation"], groups=opts["groups"], padding_mode=opts["padding_mode"], flip=flip_b,
            layout=opts["layout"], threads=threads_n, exact=exact_b,
        )

    return _overlap(x, spatial, axes, tuple(out_chunks), x.dtype, block)


def filter(
    image,
    kernels: Any,
    *,
    border: str = "reflect",
    stride: Any = 1,
    dilation: Any = 1,
    padding: Any = "same",
    range: Optional[str] = None,
    grey: Any = False,
    flip: Any = False,
    threads: Optional[int] = None,
):
    """:func:`convkit.filter` of a dask array ``image`` ((H, W) or (H, W, C), chunked along H and
    W): a dask array equal to ``convkit.filter`` of the whole image. A stack of kernels runs as
    one overlapped pass per kernel (the stride on the last). ``range`` and ``grey`` are not
    supported here (min-max ranges need the whole image): map the result yourself."""
    _check(image, "input")
    if range is not None:
        raise ValueError(f"invalid range {range}: convkit.dask.filter returns raw responses; map them yourself")
    if _flag("grey", grey):
        raise ValueError("invalid grey: convert to grey before convkit.dask.filter")
    if isinstance(kernels, (str, np.ndarray)):
        ks = [_kernel(kernels)]
    elif isinstance(kernels, (list, tuple)):
        ks = [_kernel(k) for k in kernels]
    else:
        raise ValueError(f"invalid kernel {kernels!r}: expected a spec string, an array, or a list of them")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]  # one channel gives (H', W'), as convkit.filter does
    if image.ndim not in (2, 3):
        raise ValueError(f"input: shape {list(image.shape)} is not an image; expected (H, W) or (H, W, C), channels last")
    b, st, dl, pd = _word("border", border), _opt("stride", stride), _opt("dilation", dilation), _opt("padding", padding)
    flip_b, threads_n = _flag("flip", flip), _threads(threads)
    c = image.shape[2] if image.ndim == 3 else 1
    stages = _convkit.filter_geometry(ks, b, st, dl, pd, c, image.shape[0], image.shape[1])
    circular = b.strip() in ("circular", "wrap")
    x = image.rechunk({2: -1}) if image.ndim == 3 else image
    for i, (k, geo) in enumerate(zip(ks, stages)):
        x = _settled(x, (0, 1), geo)
        axes = [_Axis(name, g, x.chunks[ax], circular) for ax, name, g in zip((0, 1), ("rows", "columns"), geo)]
        out_chunks = list(x.chunks)
        out_chunks[0], out_chunks[1] = axes[0].out_chunks, axes[1].out_chunks
        s = ",".join(str(a.stride) for a in axes)

        def block(data, before, after, k=k, s=s):
            return convkit.filter(
                np.ascontiguousarray(data), k, border=b, stride=s, dilation=dl, padding=_pad_spec(before, after),
                flip=flip_b, threads=threads_n,
            )

        x = _overlap(x, (0, 1), axes, tuple(out_chunks), x.dtype, block)
    return x
