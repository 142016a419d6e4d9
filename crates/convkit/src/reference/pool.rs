//! Reference max and average pooling and their gradients.

use super::unravel;
use crate::desc::PoolKind;
use crate::scalar::Scalar;
use crate::shape::{data_strides, Axis, PoolProblem};

/// One output window along one axis: the input indices it reads, and how many of its taps
/// fall inside input + padding (the ceil-mode overhang beyond that is never counted).
/// `first_tap` is PyTorch's starting index: the first tap at a non-negative position, which
/// names the maximum of a window lying wholly in the padding.
struct AxisWindow {
    inside: Vec<usize>,
    in_padded: usize,
    first_tap: usize,
}

/// Windows are computed arithmetically (in `i128`, so huge kernels or pads neither overflow nor
/// loop over taps that read nothing).
fn axis_windows(ax: &Axis) -> Vec<AxisWindow> {
    let (k, d) = (ax.kernel as i128, ax.dilation as i128);
    let (n, pb, pe) = (ax.input as i128, ax.pad_begin as i128, ax.pad_end as i128);
    let ceil_div = |a: i128| -((-a).div_euclid(d));
    // Taps t in 0..k with lo ≤ start + t·d ≤ hi.
    let taps = |start: i128, lo: i128, hi: i128| {
        (ceil_div(lo - start).max(0), (hi - start).div_euclid(d).min(k - 1))
    };
    (0..ax.output)
        .map(|o| {
            let start = o as i128 * ax.stride as i128 - pb;
            let (t0, t1) = taps(start, 0, n - 1);
            let (p0, p1) = taps(start, -pb, n + pe - 1);
            let first = ceil_div(-start).max(0);
            AxisWindow {
                inside: (t0..=t1).map(|t| (start + t * d) as usize).collect(),
                in_padded: (p1 - p0 + 1).max(0) as usize,
                first_tap: if first < k { (start + first * d) as usize } else { 0 },
            }
        })
        .collect()
}

/// Visit every output window: `f(output spatial offset, [(input spatial offset, flat plane index)],
/// divisor, index of an empty window's maximum)`. Taps are listed in row-major scan order.
fn for_each_window(p: &PoolProblem, mut f: impl FnMut(usize, &[(usize, usize)], f64, usize)) {
    let in_sp: Vec<usize> = p.axes.iter().map(|a| a.input).collect();
    let out_sp: Vec<usize> = p.axes.iter().map(|a| a.output).collect();
    let (_, _, xsp) = data_strides(p.layout, p.channels, &in_sp);
    let (_, _, ysp) = data_strides(p.layout, p.channels, &out_sp);
    let wins: Vec<Vec<AxisWindow>> = p.axes.iter().map(axis_windows).collect();
    let rank = in_sp.len();
    let outs: usize = out_sp.iter().product();
    let mut o = vec![0; rank];
    let mut taps = Vec::new();
    let mut t = vec![0; rank];
    for op in 0..outs {
        unravel(op, &out_sp, &mut o);
        let ws: Vec<&AxisWindow> = (0..rank).map(|a| &wins[a][o[a]]).collect();
        let counts: Vec<usize> = ws.iter().map(|w| w.inside.len()).collect();
        let divisor: f64 = if p.count_include_pad {
            ws.iter().map(|w| w.in_padded as f64).product()
        } else {
            counts.iter().map(|&c| c as f64).product()
        };
        taps.clear();
        let n: usize = counts.iter().product();
        for ti in 0..n {
            unravel(ti, &counts, &mut t);
            let (mut off, mut flat) = (0, 0);
            for a in 0..rank {
                let i = ws[a].inside[t[a]];
                off += i * xsp[a];
                flat = flat * in_sp[a] + i;
            }
            taps.push((off, flat));
        }
        let yoff: usize = o.iter().zip(&ysp).map(|(i, s)| i * s).sum();
        let empty_arg = (0..rank).fold(0, |flat, a| flat * in_sp[a] + ws[a].first_tap);
        f(yoff, &taps, divisor, empty_arg);
    }
}

/// Pool `x` into `y`; for max pooling also write the flat index (within each (n, c) plane of the
/// input) of the first maximum in scan order into `indices`. NaN propagates (first NaN wins).
/// A window lying wholly in the padding has as maximum the type's lowest finite value, as in
/// TensorFlow and ONNX Runtime (PyTorch gives −∞), with PyTorch's index: the first tap at a
/// non-negative position. Its average is 0 (or NaN, 0/0, when padding is not counted).
pub fn pool_forward<T: Scalar>(p: &PoolProblem, x: &[T], y: &mut [T], mut indices: Option<&mut [i64]>) {
    let in_sp: Vec<usize> = p.axes.iter().map(|a| a.input).collect();
    let out_sp: Vec<usize> = p.axes.iter().map(|a| a.output).collect();
    let (xn, xc, _) = data_strides(p.layout, p.channels, &in_sp);
    let (yn, yc, _) = data_strides(p.layout, p.channels, &out_sp);
    for_each_window(p, |yoff, taps, divisor, empty_arg| {
        for n in 0..p.batch {
            for c in 0..p.channels {
                let xb = n * xn + c * xc;
                let yi = n * yn + c * yc + yoff;
                match p.kind {
                    PoolKind::Max | PoolKind::GlobalMax => {
                        let Some(&(off0, flat0)) = taps.first() else {
                            y[yi] = T::LOWEST;
                            if let Some(ix) = indices.as_deref_mut() {
                                ix[yi] = empty_arg as i64;
                            }
                            continue;
                        };
                        let (mut best, mut arg) = (x[xb + off0], flat0);
                        for &(off, flat) in &taps[1..] {
                            let v = x[xb + off];
                            if !best.is_nan() && (v > best || v.is_nan()) {
                                best = v;
                                arg = flat;
                            }
                        }
                        y[yi] = best;
                        if let Some(ix) = indices.as_deref_mut() {
                            ix[yi] = arg as i64;
                        }
                    }
                    PoolKind::Avg | PoolKind::GlobalAvg => {
                        let s: f64 = taps.iter().map(|&(off, _)| x[xb + off].to_f64()).sum();
                        y[yi] = T::from_f64(s / divisor);
                    }
                }
            }
        }
    });
}

/// Gradient of pooling: `gx = ∂L/∂x` given `gy = ∂L/∂y` (max: routed to the first maximum).
pub fn pool_backward<T: Scalar>(p: &PoolProblem, x: &[T], gy: &[T], gx: &mut [T]) {
    let in_sp: Vec<usize> = p.axes.iter().map(|a| a.input).collect();
    let out_sp: Vec<usize> = p.axes.iter().map(|a| a.output).collect();
    let (xn, xc, _) = data_strides(p.layout, p.channels, &in_sp);
    let (yn, yc, _) = data_strides(p.layout, p.channels, &out_sp);
    let mut acc = vec![0.0f64; gx.len()];
    for_each_window(p, |yoff, taps, divisor, _| {
        for n in 0..p.batch {
            for c in 0..p.channels {
                let xb = n * xn + c * xc;
                let g = gy[n * yn + c * yc + yoff].to_f64();
                match p.kind {
                    PoolKind::Max | PoolKind::GlobalMax => {
                        // A window wholly in the padding took no input: no gradient flows.
                        let Some(&(off0, _)) = taps.first() else { continue };
                        let (mut best, mut arg) = (x[xb + off0], off0);
                        for &(off, _) in &taps[1..] {
                            let v = x[xb + off];
                            if !best.is_nan() && (v > best || v.is_nan()) {
                                best = v;
                                arg = off;
                            }
                        }
                        acc[xb + arg] += g;
                    }
                    PoolKind::Avg | PoolKind::GlobalAvg => {
                        for &(off, _) in taps {
                            acc[xb + off] += g / divisor;
                        }
                    }
                }
            }
        }
    });
    gx.iter_mut().zip(&acc).for_each(|(d, s)| *d = T::from_f64(*s));
}
