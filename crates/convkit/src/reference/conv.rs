//! Reference convolution, its gradients and the transposed convolution.

use super::window_offsets;
use crate::geometry::{pad_value, tap_table, unravel};
use crate::scalar::Scalar;
use crate::shape::{data_strides, ConvProblem, ConvTransposeProblem};

/// Output element offsets of a data tensor: `(batch, channel, spatial strides)`.
struct Strides {
    n: usize,
    c: usize,
    sp: Vec<usize>,
}

fn strides(p_layout: crate::Layout, channels: usize, spatial: &[usize]) -> Strides {
    let (n, c, sp) = data_strides(p_layout, channels, spatial);
    Strides { n, c, sp }
}

/// Walk every (sample, output position) of a convolution with the taps its window reads,
/// calling `f(n, flat output position, output spatial offset, tap input offsets)`.
fn for_each_window(
    p: &ConvProblem,
    xs: &Strides,
    ys: &Strides,
    mut f: impl FnMut(usize, usize, &[Option<usize>]),
) {
    let tables: Vec<_> = p.axes.iter().map(|a| tap_table(a, p.flip, p.padding_mode)).collect();
    let kernel = p.kernel();
    let out_sp = p.output_spatial();
    let outs: usize = out_sp.iter().product();
    let mut o = vec![0; out_sp.len()];
    let mut offs = Vec::new();
    for op in 0..outs {
        unravel(op, &out_sp, &mut o);
        window_offsets(&tables, &kernel, &o, &xs.sp, &mut offs);
        let yoff: usize = o.iter().zip(&ys.sp).map(|(i, s)| i * s).sum();
        f(op, yoff, &offs);
    }
}

/// `y = conv(x, w) + b`. `y` has the problem's output shape.
pub fn conv_forward<T: Scalar>(p: &ConvProblem, x: &[T], w: &[T], b: Option<&[T]>, y: &mut [T]) {
    let xs = strides(p.layout, p.in_channels, &p.input_spatial());
    let ys = strides(p.layout, p.out_channels, &p.output_spatial());
    let cg = p.in_channels / p.groups;
    let kg = p.out_channels / p.groups;
    let taps: usize = p.kernel().iter().product();
    let padv = pad_value(p.padding_mode);
    for_each_window(p, &xs, &ys, |_, yoff, offs| {
        for n in 0..p.batch {
            for k in 0..p.out_channels {
                let g = k / kg;
                let mut acc = b.map_or(0.0, |b| b[k].to_f64());
                for ci in 0..cg {
                    let xbase = n * xs.n + (g * cg + ci) * xs.c;
                    let wrow = &w[(k * cg + ci) * taps..][..taps];
                    for (wv, off) in wrow.iter().zip(offs) {
                        let xv = off.map_or(padv, |o| x[xbase + o].to_f64());
                        acc += xv * wv.to_f64();
                    }
                }
                y[n * ys.n + k * ys.c + yoff] = T::from_f64(acc);
            }
        }
    });
}

/// Gradients of `y = conv(x, w) + b` given `gy = ∂L/∂y`. Each requested output is overwritten.
pub fn conv_backward<T: Scalar>(
    p: &ConvProblem,
    x: &[T],
    w: &[T],
    gy: &[T],
    gx: Option<&mut [T]>,
    gw: Option<&mut [T]>,
    gb: Option<&mut [T]>,
) {
    let xs = strides(p.layout, p.in_channels, &p.input_spatial());
    let ys = strides(p.layout, p.out_channels, &p.output_spatial());
    let cg = p.in_channels / p.groups;
    let kg = p.out_channels / p.groups;
    let taps: usize = p.kernel().iter().product();
    let padv = pad_value(p.padding_mode);
    let mut ax = vec![0.0f64; if gx.is_some() { x.len() } else { 0 }];
    let mut aw = vec![0.0f64; if gw.is_some() { w.len() } else { 0 }];
    let mut ab = vec![0.0f64; p.out_channels];
    let (want_x, want_w) = (gx.is_some(), gw.is_some());
    for_each_window(p, &xs, &ys, |_, yoff, offs| {
        for n in 0..p.batch {
            for k in 0..p.out_channels {
                let g = k / kg;
                let gv = gy[n * ys.n + k * ys.c + yoff].to_f64();
                ab[k] += gv;
                for ci in 0..cg {
                    let xbase = n * xs.n + (g * cg + ci) * xs.c;
                    let wbase = (k * cg + ci) * taps;
                    for (t, off) in offs.iter().enumerate() {
                        if want_w {
                            aw[wbase + t] += gv * off.map_or(padv, |o| x[xbase + o].to_f64());
                        }
                        if let (true, Some(o)) = (want_x, off) {
                            ax[xbase + o] += gv * w[wbase + t].to_f64();
                        }
                    }
                }
            }
        }
    });
    let store = |dst: &mut [T], src: &[f64]| dst.iter_mut().zip(src).for_each(|(d, s)| *d = T::from_f64(*s));
    if let Some(gx) = gx {
        store(gx, &ax);
    }
    if let Some(gw) = gw {
        store(gw, &aw);
    }
    if let Some(gb) = gb {
        store(gb, &ab);
    }
}

/// `y = conv_transpose(x, w) + b`: every input element scatters `x·w` over the output window it
/// would have been computed from; positions cropped by the padding are dropped.
pub fn conv_transpose<T: Scalar>(p: &ConvTransposeProblem, x: &[T], w: &[T], b: Option<&[T]>, y: &mut [T]) {
    let in_sp: Vec<usize> = p.axes.iter().map(|a| a.input).collect();
    let out_sp: Vec<usize> = p.axes.iter().map(|a| a.output).collect();
    let kernel: Vec<usize> = p.axes.iter().map(|a| a.kernel).collect();
    let xs = strides(p.layout, p.in_channels, &in_sp);
    let ys = strides(p.layout, p.out_channels, &out_sp);
    let cg = p.in_channels / p.groups;
    let kg = p.out_channels / p.groups;
    let taps: usize = kernel.iter().product();
    // tables[a][i * k + t]: output index input i reaches through tap t (None: cropped).
    let tables: Vec<Vec<Option<usize>>> = p
        .axes
        .iter()
        .map(|ax| {
            let mut t = Vec::with_capacity(ax.input * ax.kernel);
            for i in 0..ax.input {
                for tap in 0..ax.kernel {
                    let tt = if p.flip { ax.kernel - 1 - tap } else { tap };
                    let o = (i * ax.stride + tt * ax.dilation) as isize - ax.pad_begin as isize;
                    t.push((o >= 0 && (o as usize) < ax.output).then_some(o as usize));
                }
            }
            t
        })
        .collect();
    let mut acc = vec![0.0f64; y.len()];
    let ins: usize = in_sp.iter().product();
    let mut i = vec![0; in_sp.len()];
    let mut offs = Vec::new();
    for ip in 0..ins {
        unravel(ip, &in_sp, &mut i);
        window_offsets(&tables, &kernel, &i, &ys.sp, &mut offs);
        let xoff: usize = i.iter().zip(&xs.sp).map(|(a, s)| a * s).sum();
        for n in 0..p.batch {
            for c in 0..p.in_channels {
                let g = c / cg;
                let xv = x[n * xs.n + c * xs.c + xoff].to_f64();
                for ko in 0..kg {
                    let k = g * kg + ko;
                    let wrow = &w[(c * kg + ko) * taps..][..taps];
                    let ybase = n * ys.n + k * ys.c;
                    for (wv, off) in wrow.iter().zip(&offs) {
                        if let Some(o) = off {
                            acc[ybase + o] += xv * wv.to_f64();
                        }
                    }
                }
            }
        }
    }
    if let Some(b) = b {
        let outs: usize = out_sp.iter().product();
        let mut o = vec![0; out_sp.len()];
        for op in 0..outs {
            unravel(op, &out_sp, &mut o);
            let yoff: usize = o.iter().zip(&ys.sp).map(|(a, s)| a * s).sum();
            for n in 0..p.batch {
                for (k, bv) in b.iter().enumerate() {
                    acc[n * ys.n + k * ys.c + yoff] += bv.to_f64();
                }
            }
        }
    }
    y.iter_mut().zip(&acc).for_each(|(d, s)| *d = T::from_f64(*s));
}
