"""convkit for Python: exact N-d convolution, transposed convolution, gradients, pooling and
image filtering on NumPy arrays, with the semantics and messages of the ``convkit`` command line.

Every keyword accepts what the matching CLI flag accepts: an int, a sequence of ints, or the
CLI's string (``"2,1"``, ``"same"``, ``"1,2,3,4"``, ``"true"``). Arrays are float32 or float64
(C- or F-ordered, or strided: a C-contiguous array is read in place, any other is copied once
into C order); outputs are new arrays in the input's dtype, indices are int64. Bad input raises
``ValueError`` with the CLI's one-line message (``MemoryError`` when an output cannot be
allocated). The GIL is released while convkit computes.
"""

from __future__ import annotations

import json as _json
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import numpy as np

from . import _convkit

__all__ = [
    "conv",
    "conv_transpose",
    "conv_backward",
    "pool",
    "filter",
    "shape",
    "explain",
    "Conv",
]

__version__ = "0.1.0"

IntOrInts = Union[int, Sequence[int], str]


def _opt(name: str, value: Any) -> str:
    """A per-axis option in the CLI's vocabulary: an int, a sequence of ints, or the CLI string.
    Anything else is passed on as its text, so the CLI's parser names it in its message."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"invalid {name} {value}: expected an integer, a sequence of integers or a string")
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (list, tuple, np.ndarray, range)):
        return ",".join(str(int(v)) if isinstance(v, (int, np.integer)) and not isinstance(v, bool) else str(v)
                        for v in value)
    raise ValueError(f"invalid {name} {value!r}: expected an integer, a sequence of integers or a string")


def _flag(name: str, value: Any) -> bool:
    """A switch: a bool, or the CLI's true/false words."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, str):
        v = value.strip()
        if v in ("true", "1", "yes"):
            return True
        if v in ("false", "0", "no"):
            return False
    if isinstance(value, (int, np.integer)) and int(value) in (0, 1):
        return bool(value)
    raise ValueError(f"invalid {name} {value}: expected true or false")


def _word(name: str, value: Any) -> str:
    if isinstance(value, str):
        return value
    raise ValueError(f"invalid {name} {value!r}: expected a string")


def _threads(value: Any) -> Optional[int]:
    if value is None:
        return None
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    raise ValueError(f"invalid threads {value}: expected a positive integer")


def conv(
    x: np.ndarray,
    w: np.ndarray,
    bias: Optional[np.ndarray] = None,
    *,
    stride: IntOrInts = 1,
    padding: IntOrInts = 0,
    dilation: IntOrInts = 1,
    groups: Union[int, str] = 1,
    padding_mode: str = "zeros",
    flip: Union[bool, str] = False,
    layout: str = "nchw",
    threads: Optional[int] = None,
    exact: Union[bool, str] = False,
) -> np.ndarray:
    """Convolution (cross-correlation unless ``flip``) of ``x`` (N, C, spatial...) with ``w``
    (K, C/groups, kernel...), plus ``bias`` (K,): ``convkit conv``."""
    return _convkit.conv(
        x, w, bias, _opt("stride", stride), _opt("padding", padding), _opt("dilation", dilation),
        _opt("groups", groups), _word("padding-mode", padding_mode), _flag("flip", flip),
        _word("layout", layout), _threads(threads), _flag("exact", exact),
    )


def conv_transpose(
    x: np.ndarray,
    w: np.ndarray,
    bias: Optional[np.ndarray] = None,
    *,
    stride: IntOrInts = 1,
    padding: IntOrInts = 0,
    output_padding: IntOrInts = 0,
    dilation: IntOrInts = 1,
    groups: Union[int, str] = 1,
    flip: Union[bool, str] = False,
    layout: str = "nchw",
    threads: Optional[int] = None,
) -> np.ndarray:
    """Transposed convolution; ``w`` is (C, K/groups, kernel...): ``convkit conv-transpose``."""
    return _convkit.conv_transpose(
        x, w, bias, _opt("stride", stride), _opt("padding", padding),
        _opt("output-padding", output_padding), _opt("dilation", dilation), _opt("groups", groups),
        _flag("flip", flip), _word("layout", layout), _threads(threads),
    )


def conv_backward(
    x: np.ndarray,
    w: np.ndarray,
    grad_output: np.ndarray,
    *,
    stride: IntOrInts = 1,
    padding: IntOrInts = 0,
    dilation: IntOrInts = 1,
    groups: Union[int, str] = 1,
    padding_mode: str = "zeros",
    flip: Union[bool, str] = False,
    layout: str = "nchw",
    grad_input: Union[bool, str] = True,
    grad_weight: Union[bool, str] = True,
    grad_bias: Union[bool, str] = True,
    threads: Optional[int] = None,
) -> Tuple[Optional[np.ndarray], Optional[np.ndarray], Optional[np.ndarray]]:
    """Gradients of ``conv(x, w)`` given ``grad_output``: ``(grad_input, grad_weight, grad_bias)``,
    ``None`` for those not asked for: ``convkit conv-backward``."""
    return _convkit.conv_backward(
        x, w, grad_output, _opt("stride", stride), _opt("padding", padding), _opt("dilation", dilation),
        _opt("groups", groups), _word("padding-mode", padding_mode), _flag("flip", flip),
        _word("layout", layout), _flag("grad-input", grad_input), _flag("grad-weight", grad_weight),
        _flag("grad-bias", grad_bias), _threads(threads),
    )


def pool(
    kind: str,
    x: np.ndarray,
    *,
    kernel: Optional[IntOrInts] = None,
    stride: Optional[IntOrInts] = None,
    padding: IntOrInts = 0,
    dilation: IntOrInts = 1,
    ceil_mode: Union[bool, str] = False,
    count_include_pad: Union[bool, str] = True,
    return_indices: Union[bool, str] = False,
    layout: str = "nchw",
) -> Union[np.ndarray, Tuple[np.ndarray, np.ndarray]]:
    """Pooling, ``kind`` max | avg | global-max | global-avg: ``convkit pool``. ``stride``
    defaults to the kernel; with ``return_indices`` returns ``(output, indices)`` (int64 flat
    indices within each (n, c) plane)."""
    cip = "true" if _flag("count-include-pad", count_include_pad) else "false"
    return _convkit.pool(
        _word("pool kind", kind), x, "1" if kernel is None else _opt("kernel", kernel),
        None if stride is None else _opt("stride", stride), _opt("padding", padding),
        _opt("dilation", dilation), _flag("ceil-mode", ceil_mode), cip,
        _flag("return_indices", return_indices), _word("layout", layout),
    )


def _kernel(k: Any) -> Any:
    if isinstance(k, str):
        return k
    if isinstance(k, np.ndarray):
        if k.dtype.kind in "iub":
            return k.astype(np.float64)
        return k
    raise ValueError(f"invalid kernel {k!r}: expected a spec string (a name, an inline matrix or a .npy path) "
                     "or a 1-D or 2-D array of weights")


def filter(
    image: np.ndarray,
    kernels: Union[str, np.ndarray, Sequence[Union[str, np.ndarray]]],
    *,
    border: str = "reflect",
    stride: IntOrInts = 1,
    dilation: IntOrInts = 1,
    padding: IntOrInts = "same",
    range: Optional[str] = None,
    grey: Union[bool, str] = False,
    flip: Union[bool, str] = False,
    threads: Optional[int] = None,
) -> np.ndarray:
    """Filter an (H, W) or (H, W, C) image with named or inline kernels (or weight arrays),
    applied in order, each channel on its own: ``convkit filter IMAGE.npy -o OUT.npy``. Returns
    the raw responses, (H', W') for one channel and (H', W', C) otherwise, in the image's dtype;
    ``range`` (clip | abs | minmax | abs+minmax, white = 1.0) maps them first."""
    if isinstance(kernels, (str, np.ndarray)):
        ks = [_kernel(kernels)]
    elif isinstance(kernels, (list, tuple)):
        ks = [_kernel(k) for k in kernels]
    else:
        raise ValueError(f"invalid kernel {kernels!r}: expected a spec string, an array, or a list of them")
    return _convkit.filter(
        image, ks, _word("border", border), _opt("stride", stride), _opt("dilation", dilation),
        _opt("padding", padding), None if range is None else _word("range", range), _flag("grey", grey),
        _flag("flip", flip), _threads(threads),
    )


def shape(input: Optional[IntOrInts], layers: Optional[str] = None, *, model: Optional[str] = None) -> Dict[str, Any]:
    """Layer-stack arithmetic: the structure of ``convkit shape --format json`` (input, one entry
    per layer with output shape, params, macs, receptive field, and totals). ``input`` is
    N,C,spatial... (default 1,3,224,224 with a ``model``); ``layers`` the stack grammar, or
    ``model`` a built-in trunk (alexnet | vgg16 | resnet18 | resnet50 | mobilenetv2)."""
    args: Dict[str, Any] = {"format": "json"}
    if input is not None:
        args["input"] = _opt("input", input)
    if layers is not None:
        args["layers"] = _word("layers", layers)
    if model is not None:
        args["model"] = _word("model", model)
    return _json.loads(_convkit.shape_json(_json.dumps(args)))


_EXPLAIN_LISTS = ("stride", "padding", "dilation", "groups", "kernel", "input_shape", "weight_shape")
_EXPLAIN_WORDS = ("padding_mode", "pool")
_EXPLAIN_FLAGS = ("flip", "ceil_mode", "exclude_pad")


def _values(name: str, v: Any, shape_key: str, options: Dict[str, Any], args: Dict[str, Any]) -> str:
    """An explain tensor: inline values or a .npy path as the CLI takes them, or an array (rank
    1 or 2 as one signal or image, like a .npy file; higher ranks keep their shape)."""
    if isinstance(v, str):
        return v
    if isinstance(v, np.ndarray):
        if v.dtype not in (np.float32, np.float64):
            raise ValueError(f"invalid {name} dtype {v.dtype}: expected float32 or float64")
        if shape_key in options:
            raise ValueError(f"invalid {shape_key.replace('_', '-')}: an array {name} has its own shape")
        if v.ndim == 0 or v.size == 0:
            raise ValueError(f"{name} has shape {list(v.shape)}: expected a non-empty array")
        if v.ndim == 1:
            return ",".join(repr(float(x)) for x in v)
        if v.ndim == 2:
            return ";".join(",".join(repr(float(x)) for x in row) for row in v)
        args[shape_key.replace("_", "-")] = ",".join(str(d) for d in v.shape)
        return ",".join(repr(float(x)) for x in v.ravel())
    raise ValueError(f"invalid {name} {v!r}: expected an array, inline values or a .npy path")


def explain(input: Union[np.ndarray, str], weight: Optional[Union[np.ndarray, str]] = None, **options: Any) -> Dict[str, Any]:
    """A convolution or pooling on a small input, worked step by step: the structure of
    ``convkit explain --format json``. Options are the CLI's flags with underscores: bias,
    stride, padding, padding_mode, dilation, groups, flip, pool, kernel, ceil_mode, exclude_pad,
    input_shape, weight_shape."""
    known = set(_EXPLAIN_LISTS + _EXPLAIN_WORDS + _EXPLAIN_FLAGS + ("bias",))
    for k in options:
        if k not in known:
            raise ValueError(f"invalid option {k}: expected one of {', '.join(sorted(known))}")
    args: Dict[str, Any] = {"format": "json"}
    args["input"] = _values("input", input, "input_shape", options, args)
    if weight is not None:
        args["weight"] = _values("weight", weight, "weight_shape", options, args)
    for k, v in options.items():
        if v is None:
            continue
        key = k.replace("_", "-")
        if k == "bias":
            if isinstance(v, np.ndarray):
                if v.ndim != 1:
                    raise ValueError(f"invalid bias shape {list(v.shape)}: expected a 1-D array, one value per output channel")
                v = ",".join(repr(float(x)) for x in v)
            args[key] = _opt("bias", v) if not isinstance(v, str) else v
        elif k in _EXPLAIN_LISTS:
            args[key] = _opt(key, v)
        elif k in _EXPLAIN_WORDS:
            args[key] = _word(key, v)
        else:
            args[key] = _flag(key, v)
    return _json.loads(_convkit.explain_json(_json.dumps(args)))


class Conv:
    """A convolution planned once for one input shape: the weights are packed and the
    implementation chosen when the plan is made; ``plan(x)`` then only computes.

    >>> plan = Conv(w, input_shape=(1, 3, 224, 224), padding="same")
    >>> y = plan(x)
    >>> plan.implementation
    'gemm-tiled:avx512'
    """

    def __init__(
        self,
        w: np.ndarray,
        bias: Optional[np.ndarray] = None,
        *,
        input_shape: IntOrInts,
        stride: IntOrInts = 1,
        padding: IntOrInts = 0,
        dilation: IntOrInts = 1,
        groups: Union[int, str] = 1,
        padding_mode: str = "zeros",
        flip: Union[bool, str] = False,
        layout: str = "nchw",
        threads: Optional[int] = None,
        exact: Union[bool, str] = False,
    ) -> None:
        self._plan = _convkit.ConvPlanPy(
            w, bias, _opt("input-shape", input_shape), _opt("stride", stride), _opt("padding", padding),
            _opt("dilation", dilation), _opt("groups", groups), _word("padding-mode", padding_mode),
            _flag("flip", flip), _word("layout", layout), _threads(threads), _flag("exact", exact),
        )

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self._plan(x)

    @property
    def implementation(self) -> str:
        """The chosen implementation, e.g. ``gemm-tiled:avx512``."""
        return self._plan.implementation

    @property
    def input_shape(self) -> Tuple[int, ...]:
        return tuple(self._plan.input_shape)

    @property
    def output_shape(self) -> Tuple[int, ...]:
        return tuple(self._plan.output_shape)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self._plan.dtype)

    @property
    def threads(self) -> int:
        return self._plan.threads

    def __repr__(self) -> str:
        return (f"convkit.Conv(input_shape={self.input_shape}, output_shape={self.output_shape}, "
                f"dtype={self.dtype}, implementation={self.implementation!r})")
