#!/usr/bin/env python3
"""Generate the `fast_*` PyTorch parity cases in crates/convkit-cli/tests/data/conformance.

They reach the implementations the shared cases miss: Winograd (3x3 stride 1, >= 16 channels;
2-D, dilated, channels-last, 3-D with flip, and a data gradient), pointwise (1x1 on 7x7
maps, channels-last) and the fused 1-D F(2, 2) (kernel twice the stride), plus a weight
gradient large enough for several GEMM blocks. Expected
values are computed by PyTorch in float64 from the float32 inputs, like the shared cases.

Needs torch and numpy (e.g. the peers' virtual environment: ~/.cache/convkit-peer-venv);
`cargo test` only reads the committed files.
"""
import json, os, sys
import numpy as np
import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(__file__), '..', 'crates', 'convkit-cli', 'tests', 'data', 'conformance')
rng = np.random.default_rng(20261123)


def u(*shape):
    return rng.uniform(-1, 1, size=shape).astype(np.float32)


def conv(x, w, b, stride, padding, dilation, flip):
    """PyTorch convolution (cross-correlation) in float64, NCHW; `flip` reverses the kernel."""
    x, w = torch.from_numpy(x).double(), torch.from_numpy(w).double()
    if flip:
        w = torch.flip(w, dims=list(range(2, w.dim())))
    f = {3: F.conv1d, 4: F.conv2d, 5: F.conv3d}[x.dim()]
    bb = None if b is None else torch.from_numpy(b).double()
    return f(x, w, bb, stride=stride, padding=padding, dilation=dilation)


def to_last(a):
    return np.ascontiguousarray(np.moveaxis(a, 1, -1))


def save(cid, op, args, inputs, expected, note):
    d = os.path.join(OUT, cid)
    os.makedirs(d, exist_ok=True)
    for k, v in {**inputs, **expected}.items():
        np.save(os.path.join(d, k + '.npy'), v)
    case = {'id': cid, 'op': op, 'args': args,
            'inputs': {k: k + '.npy' for k in inputs},
            'expected': {k[len('expected_'):]: k + '.npy' for k in expected},
            'dtype': 'f32', 'note': note}
    with open(os.path.join(d, 'case.json'), 'w') as f:
        json.dump(case, f, indent=1)
    return cid


def fwd(cid, n, c, k, sp, kernel, padding, dilation=1, flip=False, layout='nchw', note='', stride=1):
    x, w, b = u(n, c, *sp), u(k, c, *kernel), u(k)
    y = conv(x, w, b, stride, padding, dilation, flip).numpy()
    args = {'stride': ','.join([str(stride)] * len(sp)), 'padding': ','.join([str(padding)] * len(sp)),
            'dilation': ','.join([str(dilation)] * len(sp)), 'groups': 1, 'padding_mode': 'zeros',
            'flip': flip, 'layout': layout}
    if layout == 'nhwc':
        x, y = to_last(x), to_last(y)
    return save(cid, 'conv', args, {'input': x, 'weight': w, 'bias': b}, {'expected_output': y}, note)


def bwd(cid, n, c, k, sp, note):
    x, w = u(n, c, *sp), u(k, c, 3, 3)
    xt = torch.from_numpy(x).double().requires_grad_()
    wt = torch.from_numpy(w).double().requires_grad_()
    bt = torch.zeros(k, dtype=torch.float64, requires_grad=True)
    y = F.conv2d(xt, wt, bt, padding=1)
    gy = u(*y.shape)
    y.backward(torch.from_numpy(gy).double())
    args = {'stride': '1,1', 'padding': '1,1', 'dilation': '1,1', 'groups': 1}
    return save(cid, 'conv_backward', args, {'input': x, 'weight': w, 'grad_output': gy},
                {'expected_grad_input': xt.grad.numpy(), 'expected_grad_weight': wt.grad.numpy(),
                 'expected_grad_bias': bt.grad.numpy()}, note)


ids = [
    fwd('fast_wino2d', 2, 24, 20, (13, 11), (3, 3), 1, note='winograd, 2-D'),
    fwd('fast_wino2d_dil2_nhwc', 1, 16, 32, (17, 15), (3, 3), 2, dilation=2, layout='nhwc',
        note='winograd, dilation 2 (phases), channels-last'),
    fwd('fast_wino3d_flip', 1, 16, 18, (5, 9, 10), (3, 3, 3), 1, flip=True,
        note='winograd, 3-D (depth taps in the reduction), true convolution'),
    fwd('fast_pointwise7', 2, 64, 40, (7, 7), (1, 1), 0, note='pointwise, 49 positions'),
    fwd('fast_pointwise_nhwc', 1, 24, 32, (9, 10), (1, 1), 0, layout='nhwc', note='pointwise, channels-last'),
    bwd('fast_bwd2d', 2, 16, 24, (12, 12), 'grad_input by winograd, grad_weight by the GEMM'),
    fwd('fast_fused1d_s5', 2, 2, 24, (403,), (10,), 2, flip=True, stride=5,
        note='fused-winograd-1d (AVX2, AVX-512): kernel twice the stride, 10 phase channels, true convolution'),
]
man = os.path.join(OUT, 'manifest.json')
listed = [i for i in json.load(open(man)) if not i.startswith('fast_')] + ids
with open(man, 'w') as f:
    json.dump(listed, f, indent=1)
print('wrote', ', '.join(ids))
