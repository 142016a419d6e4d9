//! The patch-matrix view of convolution: `im2col` lays every window out as a column,
//! `col2im` is its adjoint (overlapping patches are summed back).

use super::window_offsets;
use crate::geometry::{pad_value, tap_table, unravel};
use crate::scalar::Scalar;
use crate::shape::{data_strides, ConvProblem};

/// Columns `[N, C·∏kernel, ∏out]` (PyTorch's `unfold` order: channel-major rows, taps row-major).
/// The problem's padding mode, dilation, stride and flip apply; groups are ignored.
pub fn im2col<T: Scalar>(p: &ConvProblem, x: &[T], cols: &mut [T]) {
    let (xn, xc, xsp) = data_strides(p.layout, p.in_channels, &p.input_spatial());
    let tables: Vec<_> = p.axes.iter().map(|a| tap_table(a, p.flip, p.padding_mode)).collect();
    let kernel = p.kernel();
    let out_sp = p.output_spatial();
    let (taps, outs) = (kernel.iter().product::<usize>(), out_sp.iter().product::<usize>());
    let padv = T::from_f64(pad_value(p.padding_mode));
    let mut o = vec![0; out_sp.len()];
    let mut offs = Vec::new();
    for op in 0..outs {
        unravel(op, &out_sp, &mut o);
        window_offsets(&tables, &kernel, &o, &xsp, &mut offs);
        for n in 0..p.batch {
            for c in 0..p.in_channels {
                for (t, off) in offs.iter().enumerate() {
                    let row = c * taps + t;
                    cols[(n * p.in_channels * taps + row) * outs + op] =
                        off.map_or(padv, |i| x[n * xn + c * xc + i]);
                }
            }
        }
    }
}

/// Adjoint of [`im2col`]: sums every column entry back into the input element it was read
/// from (padding positions are dropped). `x` is overwritten.
pub fn col2im<T: Scalar>(p: &ConvProblem, cols: &[T], x: &mut [T]) {
    let (xn, xc, xsp) = data_strides(p.layout, p.in_channels, &p.input_spatial());
    let tables: Vec<_> = p.axes.iter().map(|a| tap_table(a, p.flip, p.padding_mode)).collect();
    let kernel = p.kernel();
    let out_sp = p.output_spatial();
    let (taps, outs) = (kernel.iter().product::<usize>(), out_sp.iter().product::<usize>());
    let mut acc = vec![0.0f64; x.len()];
    let mut o = vec![0; out_sp.len()];
    let mut offs = Vec::new();
    for op in 0..outs {
        unravel(op, &out_sp, &mut o);
        window_offsets(&tables, &kernel, &o, &xsp, &mut offs);
        for n in 0..p.batch {
            for c in 0..p.in_channels {
                for (t, off) in offs.iter().enumerate() {
                    if let Some(i) = off {
                        acc[n * xn + c * xc + i] +=
                            cols[(n * p.in_channels * taps + c * taps + t) * outs + op].to_f64();
                    }
                }
            }
        }
    }
    x.iter_mut().zip(&acc).for_each(|(d, s)| *d = T::from_f64(*s));
}
