//! The reference implementation: plain loops straight from the definitions, accumulating in
//! `f64`. It is slow on purpose and stays the oracle every faster path is tested against.
//!
//! All functions take a validated problem (see [`crate::shape`]) and contiguous buffers whose
//! lengths match the problem's shapes; the public API (`convkit::conv` and the rest) checks that.

mod conv;
mod im2col;
mod pool;

pub use conv::{conv_backward, conv_forward, conv_transpose};
pub use im2col::{col2im, im2col};
pub use pool::{pool_backward, pool_forward};

use crate::geometry::unravel;

/// For every tap of the window at output position `o` (multi-index), the spatial element offset
/// it reads (`None`: padding), in row-major tap order.
pub(crate) fn window_offsets(
    tables: &[Vec<Option<usize>>],
    kernel: &[usize],
    o: &[usize],
    spatial_strides: &[usize],
    out: &mut Vec<Option<usize>>,
) {
    out.clear();
    let taps: usize = kernel.iter().product();
    let mut t = vec![0; kernel.len()];
    for ti in 0..taps {
        unravel(ti, kernel, &mut t);
        let mut off = Some(0usize);
        for a in 0..kernel.len() {
            off = match (off, tables[a][o[a] * kernel[a] + t[a]]) {
                (Some(s), Some(i)) => Some(s + i * spatial_strides[a]),
                _ => None,
            };
        }
        out.push(off);
    }
}
