"""Bad inputs raise ValueError with the CLI's one-line message (compared with the real
`convkit` binary when one is built), never a Rust traceback or a panic."""
import os
import subprocess

import numpy as np
import pytest

import convkit
from conftest import ROOT

CLI = os.environ.get("CONVKIT_CLI", str(ROOT / "target" / "release" / "convkit"))


def cli_message(tmp_path, args, arrays):
    """The message `convkit` prints (without its 'convkit: ' prefix) for the same problem."""
    if not os.access(CLI, os.X_OK):
        return None
    paths = []
    for name, a in arrays:
        p = tmp_path / f"{name}.npy"
        np.save(p, a)
        paths.append(str(p))
    r = subprocess.run([CLI, *args[:1], *paths, *args[1:]], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stderr
    line = r.stderr.strip()
    assert "\n" not in line
    return line.removeprefix("convkit: ")


def x4(*shape, dtype=np.float32):
    return np.ones(shape, dtype)


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.complex64, object, np.float16])
def test_wrong_dtype(dtype):
    x = np.ones((1, 1, 4, 4)).astype(dtype)
    w = np.ones((1, 1, 3, 3), np.float32)
    with pytest.raises(ValueError) as e:
        convkit.conv(x, w)
    msg = str(e.value)
    assert msg.startswith("invalid input dtype ") and msg.endswith("expected float32 or float64"), msg
    assert str(np.dtype(dtype)) in msg
    with pytest.raises(ValueError, match="invalid weight dtype"):
        convkit.conv(w, x)
    with pytest.raises(ValueError, match="invalid input dtype"):
        convkit.pool("max", x, kernel=2)


@pytest.mark.parametrize("bad", [[1.0, 2.0], 3.0, "x.npy", None])
def test_non_array(bad):
    w = np.ones((1, 1, 3), np.float32)
    with pytest.raises(ValueError, match="expected a NumPy array of float32 or float64"):
        convkit.conv(bad, w)
    with pytest.raises(ValueError, match="invalid weight"):
        convkit.conv(np.ones((1, 1, 5), np.float32), bad)


CASES = [
    # (name, cli args after the files, python call, arrays)
    ("rank", ["conv", "-o", "/nonexistent/y.npy"], lambda x, w: convkit.conv(x, w),
     [("x", x4(4, 4)), ("w", x4(1, 1, 3, 3))]),
    ("weight rank", ["conv", "-o", "/nonexistent/y.npy"], lambda x, w: convkit.conv(x, w),
     [("x", x4(1, 1, 4, 4)), ("w", x4(1, 1, 3))]),
    ("groups", ["conv", "-o", "/nonexistent/y.npy", "--groups", "2"], lambda x, w: convkit.conv(x, w, groups=2),
     [("x", x4(1, 3, 8, 8)), ("w", x4(4, 1, 3, 3))]),
    ("groups zero", ["conv", "-o", "/nonexistent/y.npy", "--groups", "0"], lambda x, w: convkit.conv(x, w, groups=0),
     [("x", x4(1, 2, 8, 8)), ("w", x4(4, 2, 3, 3))]),
    ("zero stride", ["conv", "-o", "/nonexistent/y.npy", "--stride", "0"], lambda x, w: convkit.conv(x, w, stride=0),
     [("x", x4(1, 1, 8, 8)), ("w", x4(1, 1, 3, 3))]),
    ("zero stride per axis", ["conv", "-o", "/nonexistent/y.npy", "--stride", "1,0"],
     lambda x, w: convkit.conv(x, w, stride=(1, 0)), [("x", x4(1, 1, 8, 8)), ("w", x4(1, 1, 3, 3))]),
    ("no output", ["conv", "-o", "/nonexistent/y.npy"], lambda x, w: convkit.conv(x, w),
     [("x", x4(1, 1, 2, 2)), ("w", x4(1, 1, 3, 3))]),
    ("no output dilation", ["conv", "-o", "/nonexistent/y.npy", "--dilation", "4"],
     lambda x, w: convkit.conv(x, w, dilation=4), [("x", x4(1, 1, 8, 8)), ("w", x4(1, 1, 3, 3))]),
    ("negative padding", ["conv", "-o", "/nonexistent/y.npy", "--padding", "-1"],
     lambda x, w: convkit.conv(x, w, padding=-1), [("x", x4(1, 1, 8, 8)), ("w", x4(1, 1, 3, 3))]),
    ("padding word", ["conv", "-o", "/nonexistent/y.npy", "--padding", "sometimes"],
     lambda x, w: convkit.conv(x, w, padding="sometimes"), [("x", x4(1, 1, 8, 8)), ("w", x4(1, 1, 3, 3))]),
    ("padding mode", ["conv", "-o", "/nonexistent/y.npy", "--padding-mode", "mirror"],
     lambda x, w: convkit.conv(x, w, padding_mode="mirror"), [("x", x4(1, 1, 8, 8)), ("w", x4(1, 1, 3, 3))]),
    ("reflect too wide", ["conv", "-o", "/nonexistent/y.npy", "--padding", "3", "--padding-mode", "reflect"],
     lambda x, w: convkit.conv(x, w, padding=3, padding_mode="reflect"), [("x", x4(1, 1, 3, 3)), ("w", x4(1, 1, 3, 3))]),
    ("layout", ["conv", "-o", "/nonexistent/y.npy", "--layout", "hwcn"],
     lambda x, w: convkit.conv(x, w, layout="hwcn"), [("x", x4(1, 1, 8, 8)), ("w", x4(1, 1, 3, 3))]),
    ("transpose output padding", ["conv-transpose", "-o", "/nonexistent/y.npy", "--output-padding", "3", "--stride", "2"],
     lambda x, w: convkit.conv_transpose(x, w, stride=2, output_padding=3), [("x", x4(1, 2, 4, 4)), ("w", x4(2, 1, 3, 3))]),
    ("pool kernel too big", ["pool", "-o", "/nonexistent/y.npy", "--kernel", "5"],
     lambda x: convkit.pool("max", x, kernel=5), [("x", x4(1, 1, 4, 4))]),
]


@pytest.mark.parametrize("name,args,call,arrays", CASES, ids=[c[0] for c in CASES])
def test_same_message_as_cli(tmp_path, name, args, call, arrays):
    with pytest.raises(ValueError) as e:
        call(*[a for _, a in arrays])
    msg = str(e.value)
    assert "\n" not in msg and "panicked" not in msg and msg
    if args[0] == "pool":
        args = ["pool", "max", *args[1:]]
        files = arrays
        expected = None
        if os.access(CLI, os.X_OK):
            p = tmp_path / "x.npy"
            np.save(p, arrays[0][1])
            r = subprocess.run([CLI, "pool", "max", str(p), *args[2:]], capture_output=True, text=True, timeout=60)
            assert r.returncode == 2
            expected = r.stderr.strip().removeprefix("convkit: ")
    else:
        expected = cli_message(tmp_path, args, arrays)
    if expected is None:
        pytest.skip(f"{CLI} not built: message not compared with the CLI ({msg})")
    assert msg == expected


def test_messages_without_cli():
    """The key parts of the messages, checked even where no CLI binary is built."""
    x, w = x4(1, 3, 8, 8), x4(4, 1, 3, 3)
    with pytest.raises(ValueError, match=r"^invalid groups 2: must divide the 3 input channels"):
        convkit.conv(x, w, groups=2)
    with pytest.raises(ValueError, match=r"^invalid stride 0"):
        convkit.conv(x, x4(4, 3, 3, 3), stride=0)
    with pytest.raises(ValueError, match=r"^invalid threads 0"):
        convkit.conv(x, x4(4, 3, 3, 3), threads=0)
    with pytest.raises(ValueError, match=r"^invalid bias shape \[2, 2\]"):
        convkit.conv(x, x4(4, 3, 3, 3), x4(2, 2))
    with pytest.raises(ValueError, match=r"^bias has shape \[3\]"):
        convkit.conv(x, x4(4, 3, 3, 3), x4(3))
    with pytest.raises(ValueError, match=r"^grad_output has shape"):
        convkit.conv_backward(x, x4(4, 3, 3, 3), x4(1, 4, 5, 5))
    with pytest.raises(ValueError, match=r"^invalid pool kind median"):
        convkit.pool("median", x, kernel=2)
    with pytest.raises(ValueError, match=r"^invalid indices"):
        convkit.pool("avg", x, kernel=2, return_indices=True)
    with pytest.raises(ValueError, match=r"^invalid count-include-pad maybe"):
        convkit.pool("avg", x, kernel=2, count_include_pad="maybe")
    with pytest.raises(ValueError, match=r"^invalid stride 1.5"):
        convkit.conv(x, x4(4, 3, 3, 3), stride=1.5)
    with pytest.raises(ValueError, match=r"^missing output"):
        convkit.conv_backward(x, x4(4, 3, 3, 3), x4(1, 4, 6, 6), grad_input=False, grad_weight=False, grad_bias=False)
    plan = convkit.Conv(x4(4, 3, 3, 3), input_shape=(1, 3, 8, 8))
    with pytest.raises(ValueError, match=r"^input has shape \[1, 3, 9, 9\]: the plan was made for \[1, 3, 8, 8\]"):
        plan(x4(1, 3, 9, 9))
    with pytest.raises(ValueError, match=r"^invalid input dtype float64: the plan computes in float32"):
        plan(x4(1, 3, 8, 8, dtype=np.float64))


def test_memory_error():
    x = x4(1, 1, 2)
    w = x4(1, 1, 2)
    with pytest.raises(MemoryError):
        convkit.conv_transpose(x, w, stride=2**62)


def test_cli_vocabulary_accepted():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4, 9, 7)).astype(np.float32)
    w = rng.standard_normal((6, 2, 3, 2)).astype(np.float32)
    a = convkit.conv(x, w, stride=(2, 1), padding=(1, 0, 2, 1), groups=2, dilation=[1, 2])
    b = convkit.conv(x, w, stride="2,1", padding="1,0,2,1", groups="2", dilation="1,2")
    c = convkit.conv(x, w, stride=np.array([2, 1]), padding=[1, 0, 2, 1], groups=np.int64(2), dilation=(1, 2))
    assert a.shape == (2, 6, 5, 6)
    assert np.array_equal(a, b) and np.array_equal(a, c)
    assert np.array_equal(convkit.conv(x, w, groups=2, flip="true"), convkit.conv(x, w, groups=2, flip=True))
    assert np.array_equal(convkit.pool("avg", x, kernel=2, count_include_pad="false", padding=1),
                          convkit.pool("avg", x, kernel=2, count_include_pad=False, padding=1))


def test_layouts_and_orders_agree():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 10, 11))
    w = rng.standard_normal((4, 3, 3, 3))
    y = convkit.conv(x, w, padding="same")
    assert np.array_equal(convkit.conv(np.asfortranarray(x), w, padding="same"), y)
    assert np.array_equal(convkit.conv(x[:, :, ::1, :], np.asfortranarray(w), padding="same"), y)
    big = rng.standard_normal((2, 3, 20, 22))
    assert np.array_equal(convkit.conv(big[:, :, ::2, ::2], w), convkit.conv(np.ascontiguousarray(big[:, :, ::2, ::2]), w))
    yl = convkit.conv(x.transpose(0, 2, 3, 1), w, padding="same", layout="nhwc")
    assert np.array_equal(yl.transpose(0, 3, 1, 2), y)
    # A float32 weight with a float64 input is converted to float64, as the CLI converts files.
    assert convkit.conv(x, w.astype(np.float32)).dtype == np.float64
