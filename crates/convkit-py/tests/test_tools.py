"""filter, shape and explain: the same results and messages as `convkit filter` (.npy out),
`convkit shape --format json` and `convkit explain --format json` (compared with the real binary
when one is built)."""
import json
import os
import subprocess

import numpy as np
import pytest

import convkit
from conftest import ROOT

CLI = os.environ.get("CONVKIT_CLI", str(ROOT / "target" / "release" / "convkit"))
needs_cli = pytest.mark.skipif(not os.access(CLI, os.X_OK), reason=f"{CLI} not built")


def run_cli(*args):
    r = subprocess.run([CLI, *map(str, args)], capture_output=True, text=True, timeout=120)
    return r.returncode, r.stdout, r.stderr.strip().removeprefix("convkit: ")


RNG = np.random.default_rng(7)
IMAGES = {
    "grey": RNG.random((37, 53)),
    "rgb32": RNG.random((29, 41, 3)).astype(np.float32),
    "two": RNG.random((16, 20, 2)).astype(np.float32),
}
FILTERS = [
    (["gaussian:1.5"], {}),
    (["sobel"], {"border": "replicate"}),
    (["1,0,-1;2,0,-2;1,0,-1", "box:3"], {"border": "circular", "stride": 2}),
    (["1,2,1"], {"border": "zeros", "padding": "valid", "dilation": 2}),
    (["laplacian"], {"border": "symmetric", "flip": True}),
    (["box:4"], {"border": "constant:0.25", "padding": "same-lower", "range": "clip"}),
    (["emboss"], {"range": "abs+minmax"}),
]


@needs_cli
@pytest.mark.parametrize("img", sorted(IMAGES))
@pytest.mark.parametrize("i", range(len(FILTERS)))
def test_filter_equals_cli(tmp_path, img, i):
    kernels, opts = FILTERS[i]
    x = IMAGES[img]
    got = convkit.filter(x, kernels, **opts)
    src, dst = tmp_path / "x.npy", tmp_path / "y.npy"
    np.save(src, x)
    args = ["filter", src, "-o", dst]
    for k in kernels:
        args += ["--kernel", k]
    for k, v in opts.items():
        if v is True:
            args.append("--" + k)
        else:
            args += ["--" + k, v]
    code, _, err = run_cli(*args)
    assert code == 0, err
    want = np.load(dst)
    assert got.dtype == want.dtype == x.dtype
    assert got.shape == want.shape
    assert np.array_equal(got, want), "not bit-identical to the CLI"


def test_filter_matches_depthwise_conv():
    x = IMAGES["rgb32"]
    k = np.array([[1, 2, 0], [0, 1, -1], [3, 0, 1]], np.float32)
    got = convkit.filter(x, k, border="reflect")
    w = np.repeat(k[None, None], 3, axis=0)
    ref = convkit.conv(x.transpose(2, 0, 1)[None], w, padding="same", padding_mode="reflect", groups=3)
    np.testing.assert_allclose(got, ref[0].transpose(1, 2, 0), rtol=1e-5, atol=1e-5)
    # A 1-D kernel array is one row, like a 1-D .npy kernel; integer arrays are exact weights.
    a = convkit.filter(x, np.array([1, 2, 1]))
    b = convkit.filter(x, "1,2,1")
    assert np.array_equal(a, b)
    assert convkit.filter(IMAGES["grey"], "box:3", stride=(2, 3)).shape == (19, 18)
    assert convkit.filter(x, "box:3", grey=True).shape == x.shape[:2]


def test_filter_errors():
    x = IMAGES["grey"]
    with pytest.raises(ValueError, match=r"^invalid border mirror"):
        convkit.filter(x, "box:3", border="mirror")
    with pytest.raises(ValueError, match=r"^invalid kernel"):
        convkit.filter(x, "blurry")
    with pytest.raises(ValueError, match=r"^invalid kernel"):
        convkit.filter(x, 3)
    with pytest.raises(ValueError, match=r"^input: shape \[2, 2, 2, 2\] is not an image"):
        convkit.filter(np.ones((2, 2, 2, 2)), "box:3")
    with pytest.raises(ValueError, match=r"^invalid grey: the input has 2 colour channels"):
        convkit.filter(IMAGES["two"], "box:3", grey=True)
    with pytest.raises(ValueError, match=r"^invalid range"):
        convkit.filter(x, "box:3", range="loud")
    with pytest.raises(ValueError, match=r"^invalid input dtype uint8"):
        convkit.filter(x.astype(np.uint8), "box:3")
    with pytest.raises(ValueError, match=r"^kernel has shape \[1, 1, 3\]"):
        convkit.filter(x, np.ones((1, 1, 3)))


@needs_cli
@pytest.mark.parametrize("opts", [
    {"input": "1,3,32,32", "layers": "conv 16 k3 p1; bn; relu; maxpool k2; res(conv 16 k3 p1; bn | )"},
    {"input": "1,1,100", "layers": "conv 8 k5 s2 d2; avgpool k2; convT 4 k2 s2"},
    {"model": "resnet18"},
    {"model": "mobilenetv2", "input": "2,3,160,160"},
])
def test_shape_equals_cli(opts):
    args = ["shape", "--format", "json"]
    for k, v in opts.items():
        args += ["--" + k, v]
    code, out, err = run_cli(*args)
    assert code == 0, err
    inp = opts.get("input")
    py_input = None if inp is None else tuple(int(v) for v in inp.split(","))
    got = convkit.shape(py_input, opts.get("layers"), model=opts.get("model"))
    assert got == json.loads(out)
    assert got == convkit.shape(inp, opts.get("layers"), model=opts.get("model"))


@needs_cli
@pytest.mark.parametrize("py,cli", [
    (dict(input=None, layers=None), ["--format", "json"]),
    (dict(input=(1, 3, 8), layers="conv 4 k9"), ["--input", "1,3,8", "--layers", "conv 4 k9"]),
    (dict(input="1,3,8", layers="conv 4 k3", model="vgg16"), ["--input", "1,3,8", "--layers", "conv 4 k3", "--model", "vgg16"]),
    (dict(input=None, layers=None, model="lenet"), ["--model", "lenet"]),
    (dict(input=(1, 3, 8), layers="warp 3"), ["--input", "1,3,8", "--layers", "warp 3"]),
])
def test_shape_errors_equal_cli(py, cli):
    code, _, err = run_cli("shape", *cli)
    assert code == 2
    with pytest.raises(ValueError) as e:
        convkit.shape(py["input"], py["layers"], model=py.get("model"))
    assert str(e.value) == err


def test_shape_structure():
    r = convkit.shape((1, 3, 32, 32), "conv 16 k3 p1; relu; maxpool k2")
    assert r["input"] == [1, 3, 32, 32]
    assert [l["output"] for l in r["layers"]] == [[1, 16, 32, 32], [1, 16, 32, 32], [1, 16, 16, 16]]
    assert r["total"]["params"] == 16 * 3 * 9  # no bias unless the token "bias" is given
    assert r["total"]["macs"] == 16 * 3 * 9 * 32 * 32


@needs_cli
@pytest.mark.parametrize("py,cli", [
    (dict(input="1,2,0,-1,3,1", weight="1,0,-1", stride=2, padding=1),
     ["--input", "1,2,0,-1,3,1", "--weight", "1,0,-1", "--stride", "2", "--padding", "1"]),
    (dict(input="1,2;3,4;5,6", weight="1,1;1,1", padding="same", padding_mode="reflect", bias="0.5"),
     ["--input", "1,2;3,4;5,6", "--weight", "1,1;1,1", "--padding", "same", "--padding-mode", "reflect", "--bias", "0.5"]),
    (dict(input="1,5,2,4,3,0,7", pool="max", kernel=3, stride=2, ceil_mode=True, padding=1),
     ["--input", "1,5,2,4,3,0,7", "--pool", "max", "--kernel", "3", "--stride", "2", "--ceil-mode", "--padding", "1"]),
    (dict(input="1,2,3,4,5,6,7,8", input_shape=(1, 2, 4), weight="1,2,3,4", weight_shape="2,1,2", groups=2, flip=True),
     ["--input", "1,2,3,4,5,6,7,8", "--input-shape", "1,2,4", "--weight", "1,2,3,4", "--weight-shape", "2,1,2", "--groups", "2", "--flip"]),
    (dict(input="1,2,3,4", pool="avg", kernel=2, padding=1, exclude_pad=True),
     ["--input", "1,2,3,4", "--pool", "avg", "--kernel", "2", "--padding", "1", "--exclude-pad"]),
])
def test_explain_equals_cli(py, cli):
    code, out, err = run_cli("explain", "--format", "json", *cli)
    assert code == 0, err
    py = dict(py)
    assert convkit.explain(py.pop("input"), py.pop("weight", None), **py) == json.loads(out)


def test_explain_arrays_are_values():
    a = convkit.explain(np.array([1.0, 2.0, 0.0, -1.0]), np.array([1.0, -1.0]), stride=1)
    b = convkit.explain("1,2,0,-1", "1,-1")
    assert a == b
    img = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], np.float32)
    assert convkit.explain(img, np.ones((1, 1, 2, 2))) == convkit.explain("1,2,3;4,5,6", "1,1;1,1")
    assert convkit.explain(np.arange(8.0).reshape(1, 2, 4), "1,1", weight_shape="2,1,1", groups=2) == \
        convkit.explain("0,1,2,3,4,5,6,7", "1,1", input_shape="1,2,4", weight_shape="2,1,1", groups=2)


@needs_cli
@pytest.mark.parametrize("py,cli", [
    (dict(input="1,2,3", weight="1,1,1,1,1"), ["--input", "1,2,3", "--weight", "1,1,1,1,1"]),
    (dict(input="1,2,3"), ["--input", "1,2,3"]),
    (dict(input="1,2,x", weight="1"), ["--input", "1,2,x", "--weight", "1"]),
    (dict(input="1,2,3", pool="max"), ["--input", "1,2,3", "--pool", "max"]),
    (dict(input="1,2,3", weight="1", stride=0), ["--input", "1,2,3", "--weight", "1", "--stride", "0"]),
    (dict(input=",".join(["1"] * 5000), weight="1"), ["--input", ",".join(["1"] * 5000), "--weight", "1"]),
])
def test_explain_errors_equal_cli(py, cli):
    code, _, err = run_cli("explain", *cli)
    assert code == 2
    py = dict(py)
    with pytest.raises(ValueError) as e:
        convkit.explain(py.pop("input"), py.pop("weight", None), **py)
    assert str(e.value) == err


def test_explain_unknown_option():
    with pytest.raises(ValueError, match=r"^invalid option strides"):
        convkit.explain("1,2,3", "1", strides=2)
