"""convkit.dask: blocks with halos from map_overlap, convkit's own border handling at the array's
edges, stride-aligned chunks; results bit-identical to convkit on the whole array, on the local
threaded scheduler and on a real dask.distributed cluster (two worker processes on 127.0.0.1)."""
import numpy as np
import pytest

da = pytest.importorskip("dask.array")

import convkit
import convkit.dask as cd

BORDERS = ["reflect", "symmetric", "replicate", "circular", "zeros", "constant:0.5"]
MODES = ["zeros", "reflect", "replicate", "circular", "symmetric", "constant:-1.25"]


@pytest.mark.parametrize("border", BORDERS)
@pytest.mark.parametrize("kernels,opts", [
    ("sobel", {}),
    ("gaussian:1", {"dilation": 2}),
    (["1,2,1;0,1,0;1,-1,1", "box:4"], {"stride": 2}),
    ("1,0,-1;2,0,-2;1,0,-1", {"padding": "valid"}),
    ("laplacian", {"padding": "full", "flip": True}),
    ("box:3", {"padding": (1, 2, 0, 3), "dilation": (1, 2)}),
    ("emboss", {"padding": "same-lower", "stride": (2, 3)}),
])
def test_filter_threaded(border, kernels, opts):
    rng = np.random.default_rng(3)
    for img, chunks in ((rng.random((150, 133, 3), dtype=np.float32), (48, 42, 3)), (rng.random((97, 120)), (30, 60))):
        want = convkit.filter(img, kernels, border=border, **opts)
        got = cd.filter(da.from_array(img, chunks=chunks), kernels, border=border, **opts)
        assert got.shape == want.shape
        got = got.compute(scheduler="threads")
        assert got.dtype == want.dtype
        assert np.array_equal(got, want)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("opts", [
    {"padding": "same"}, {"padding": 1, "dilation": 2}, {"padding": "same", "stride": 2},
    {"padding": "valid"}, {"padding": (1, 0, 2, 1)},
])
def test_conv_threaded(mode, opts):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((6, 4, 50, 46)).astype(np.float32)
    for w, groups in ((rng.standard_normal((8, 4, 3, 3)).astype(np.float32), 1),
                      (rng.standard_normal((4, 1, 3, 3)).astype(np.float32), 4),
                      (rng.standard_normal((6, 2, 5, 3)).astype(np.float32), 2)):
        b = rng.standard_normal(w.shape[0]).astype(np.float32)
        want = convkit.conv(x, w, b, groups=groups, padding_mode=mode, **opts)
        got = cd.conv(da.from_array(x, chunks=(2, 4, 26, 24)), w, b, groups=groups, padding_mode=mode, **opts)
        assert got.shape == want.shape
        assert np.array_equal(got.compute(scheduler="threads"), want)


def test_conv_nhwc_1d_3d():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 30, 28, 3))
    w = rng.standard_normal((5, 3, 3, 3))
    want = convkit.conv(x, w, padding="same", padding_mode="reflect", layout="nhwc")
    got = cd.conv(da.from_array(x, chunks=(2, 10, 14, 3)), w, padding="same", padding_mode="reflect", layout="nhwc")
    assert np.array_equal(got.compute(scheduler="threads"), want)
    x1 = rng.standard_normal((3, 2, 200)).astype(np.float32)
    w1 = rng.standard_normal((4, 2, 7)).astype(np.float32)
    want = convkit.conv(x1, w1, padding="same", padding_mode="circular", dilation=3)
    got = cd.conv(da.from_array(x1, chunks=(1, 2, 64)), w1, padding="same", padding_mode="circular", dilation=3)
    assert np.array_equal(got.compute(scheduler="threads"), want)
    x3 = rng.standard_normal((2, 2, 12, 14, 16)).astype(np.float32)
    w3 = rng.standard_normal((3, 2, 3, 3, 3)).astype(np.float32)
    want = convkit.conv(x3, w3, padding=1, padding_mode="replicate", stride=2)
    got = cd.conv(da.from_array(x3, chunks=(1, 2, 6, 8, 8)), w3, padding=1, padding_mode="replicate", stride=2)
    assert np.array_equal(got.compute(scheduler="threads"), want)


def test_errors():
    x = da.zeros((2, 1, 128, 128), chunks=(1, 1, 65, 64), dtype=np.float32)
    w = np.ones((1, 1, 3, 3), np.float32)
    with pytest.raises(ValueError, match=r"^invalid chunks \(65, 63\) along axis 2: a chunk starts at 65, not a multiple of the stride 2"):
        cd.conv(x, w, stride=2)
    with pytest.raises(ValueError, match=r"every chunk must hold at least the 20 values of the halo"):
        cd.conv(da.zeros((1, 1, 128, 128), chunks=(1, 1, 64, 16), dtype=np.float32), w, padding="same", dilation=20)
    # A last block of a few outputs is merged into its neighbour (same result as the whole).
    img = np.random.default_rng(0).random((100, 100), dtype=np.float32)
    got = cd.filter(da.from_array(img, chunks=(50, 95)), "1,0,-1;2,0,-2;1,0,-1", padding="valid")
    assert got.chunks[1] == (98,)
    assert np.array_equal(got.compute(), convkit.filter(img, "1,0,-1;2,0,-2;1,0,-1", padding="valid"))
    with pytest.raises(ValueError, match=r"^invalid input ndarray: expected a dask.array.Array"):
        cd.conv(np.zeros((1, 1, 8, 8), np.float32), w)
    with pytest.raises(ValueError, match=r"^invalid input dtype int64"):
        cd.conv(da.zeros((1, 1, 8, 8), dtype=np.int64), w)
    with pytest.raises(ValueError, match=r"^invalid groups 2: must divide the 1 input channels"):
        cd.conv(x, w, groups=2)
    with pytest.raises(ValueError, match=r"^invalid padding-mode mirror"):
        cd.conv(x, w, padding_mode="mirror")
    with pytest.raises(ValueError, match=r"^invalid border mirror"):
        cd.filter(da.zeros((64, 64), chunks=32), "box:3", border="mirror")
    with pytest.raises(ValueError, match=r"^invalid range"):
        cd.filter(da.zeros((64, 64), chunks=32), "box:3", range="clip")


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1", dashboard_address=None,
    )
    c = distributed.Client(cluster)
    try:
        yield c
    finally:
        c.close()
        cluster.close()


@pytest.mark.parametrize("border", BORDERS)
def test_filter_on_cluster_4096(client, border):
    """A 4096×4096 image in 1024×1024 chunks, generated on the workers; the dilated case too."""
    d = da.random.default_rng(11).random((4096, 4096), chunks=1024, dtype=np.float32)
    img = d.compute()
    assert client.scheduler.address.startswith("tcp://127.0.0.1:")
    for kernels, opts in (("1,2,-1;0,3,1;2,-2,1", {}), ("gaussian:1", {"dilation": 2})):
        got = cd.filter(d, kernels, border=border, **opts).compute()
        want = convkit.filter(img, kernels, border=border, **opts)
        assert got.dtype == want.dtype and got.shape == want.shape == (4096, 4096)
        assert np.array_equal(got, want), f"{border} {kernels} {opts}"


@pytest.mark.parametrize("mode", MODES)
def test_conv_batch_on_cluster(client, mode):
    """A batch of 64 images chunked by batch (8 per chunk), at dilation 1 and 2."""
    rng = np.random.default_rng(12)
    x = rng.standard_normal((64, 3, 96, 96)).astype(np.float32)
    w = rng.standard_normal((16, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(16).astype(np.float32)
    dx = da.from_array(x, chunks=(8, 3, 96, 96))
    for dilation in (1, 2):
        got = cd.conv(dx, w, b, padding="same", padding_mode=mode, dilation=dilation).compute()
        want = convkit.conv(x, w, b, padding="same", padding_mode=mode, dilation=dilation)
        assert got.shape == want.shape == (64, 16, 96, 96)
        assert np.array_equal(got, want), f"{mode} dilation {dilation}"
