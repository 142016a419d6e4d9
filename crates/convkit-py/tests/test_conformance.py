"""The PyTorch conformance cases through the Python API, compared as ../shared/conformance/run_cases.py
compares the CLI's outputs (same tolerance: 2e-4 for f32, 1e-9 for f64, relative to max(1, max|expected|);
indices exactly)."""
import json
import os
import pathlib

import numpy as np
import pytest

import convkit
from conftest import ROOT

TOL = {"f32": 2e-4, "f64": 1e-9}
OWN = ROOT / "crates" / "convkit-cli" / "tests" / "data" / "conformance"
SHARED = pathlib.Path(os.environ.get("CONVKIT_SHARED_CASES", ROOT.parent / "shared" / "conformance" / "cases"))


def case_ids(d):
    if not (d / "manifest.json").is_file():
        return []
    return json.loads((d / "manifest.json").read_text())


def run_case(c, d):
    """The outputs the CLI would write for this case, computed through the Python API."""
    a, i = c["args"], c["inputs"]
    load = lambda key: np.load(d / i[key])
    if c["op"] in ("conv", "conv_transpose"):
        kw = {k: a[k] for k in ("stride", "padding", "dilation", "groups", "layout") if k in a}
        if a.get("flip"):
            kw["flip"] = True
        bias = load("bias") if "bias" in i else None
        if c["op"] == "conv":
            if "padding_mode" in a:
                kw["padding_mode"] = a["padding_mode"]
            return {"output": convkit.conv(load("input"), load("weight"), bias, **kw)}
        if "output_padding" in a:
            kw["output_padding"] = a["output_padding"]
        return {"output": convkit.conv_transpose(load("input"), load("weight"), bias, **kw)}
    if c["op"] == "conv_backward":
        kw = {k: a[k] for k in ("stride", "padding", "dilation", "groups")}
        gx, gw, gb = convkit.conv_backward(load("input"), load("weight"), load("grad_output"), **kw)
        return {"grad_input": gx, "grad_weight": gw, "grad_bias": gb}
    if c["op"] == "pool":
        kw = {}
        if not a["kind"].startswith("global"):
            kw = dict(kernel=a["kernel"], stride=a["stride"], padding=a["padding"], dilation=a["dilation"],
                      count_include_pad=bool(a["count_include_pad"]), ceil_mode=bool(a["ceil_mode"]))
        if "indices" in c["expected"]:
            y, idx = convkit.pool(a["kind"], load("input"), return_indices=True, **kw)
            return {"output": y, "indices": idx}
        return {"output": convkit.pool(a["kind"], load("input"), **kw)}
    raise AssertionError(f"unknown op {c['op']}")


def check(d):
    c = json.loads((d / "case.json").read_text())
    got = run_case(c, d)
    for key, name in c["expected"].items():
        want = np.load(d / name)
        g = got[key]
        assert g.shape == want.shape, f"{key}: shape {g.shape} != {want.shape}"
        if key == "indices":
            assert g.dtype == np.int64
            assert np.array_equal(g, want), f"indices differ at {int((g != want).sum())} places"
            continue
        want_dt = np.float32 if c["dtype"] == "f32" else np.float64
        assert g.dtype == want_dt, f"{key}: dtype {g.dtype} != {np.dtype(want_dt)}"
        scale = max(1.0, float(np.abs(want).max()) if want.size else 1.0)
        err = float(np.abs(g.astype(np.float64) - want).max()) if want.size else 0.0
        assert err <= TOL[c["dtype"]] * scale, f"{key}: max abs error {err:.3g} (scale {scale:.3g})"


def test_shared_cases_present_or_skipped_with_reason():
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} not found: the shared conformance cases are not beside this clone")
    assert len(case_ids(SHARED)) >= 225


@pytest.mark.parametrize("cid", case_ids(OWN))
def test_own_case(cid):
    check(OWN / cid)


@pytest.mark.parametrize("cid", case_ids(SHARED))
def test_shared_case(cid):
    check(SHARED / cid)


def test_own_cases_exist():
    assert len(case_ids(OWN)) >= 80
