"""Contiguous inputs are read in place: the extension records the data pointer of every array
it computed from, and for a C-contiguous input of the computing dtype that is the array's own
buffer. Other inputs (strided, Fortran-ordered, other dtype) are copied once into C order."""
import numpy as np

import convkit
from convkit import _convkit


def addresses():
    return _convkit._last_read_addresses()


def test_contiguous_float32_read_in_place():
    x = np.random.default_rng(0).standard_normal((2, 3, 16, 16)).astype(np.float32)
    w = np.ones((4, 3, 3, 3), np.float32)
    y = convkit.conv(x, w)
    xa, wa, _ = addresses()
    assert xa == x.ctypes.data
    assert wa == w.ctypes.data
    # A C-contiguous view into a bigger buffer (a batch slice) is read in place too.
    part = x[1:]
    convkit.conv(part, w)
    assert addresses()[0] == part.ctypes.data
    # The input is untouched and the output is a new array.
    assert not np.shares_memory(y, x)


def test_other_ops_read_in_place():
    x = np.ones((1, 2, 8, 8), np.float32)
    w = np.ones((2, 1, 3, 3), np.float32)
    convkit.conv_transpose(x, w)
    assert addresses()[:2] == (x.ctypes.data, w.ctypes.data)
    gy = np.ones((1, 2, 6, 6), np.float32)
    convkit.conv_backward(x, np.ones((2, 2, 3, 3), np.float32), gy)
    assert addresses()[0] == x.ctypes.data and addresses()[2] == gy.ctypes.data
    convkit.pool("max", x, kernel=2)
    assert addresses()[0] == x.ctypes.data
    plan = convkit.Conv(np.ones((2, 2, 3, 3), np.float32), input_shape=x.shape)
    plan(x)
    assert addresses()[0] == x.ctypes.data


def test_non_contiguous_copied():
    x = np.ones((1, 3, 16, 16), np.float32)
    w = np.ones((1, 3, 3, 3), np.float32)
    for v in (x[:, :, ::2, ::2], np.asfortranarray(x), x.astype(np.float64).astype(np.float32, order="F")):
        convkit.conv(v, w)
        assert addresses()[0] != v.ctypes.data
    # A float64 weight for a float32 input is converted: a copy.
    w64 = w.astype(np.float64)
    convkit.conv(x, w64)
    assert addresses()[0] == x.ctypes.data and addresses()[1] != w64.ctypes.data


def test_read_only_input_accepted_in_place():
    x = np.ones((1, 1, 8, 8), np.float32)
    x.setflags(write=False)
    convkit.conv(x, np.ones((1, 1, 3, 3), np.float32))
    assert addresses()[0] == x.ctypes.data
