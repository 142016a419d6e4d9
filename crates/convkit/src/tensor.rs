//! A minimal owned tensor (shape + contiguous row-major data) for callers without ndarray,
//! and checked allocation of result buffers.

use crate::error::{Error, Result};
use crate::shape::checked_numel;

/// An owned, contiguous, row-major (C order) tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor<T> {
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
    /// `shape.iter().product()` elements in C order.
    pub data: Vec<T>,
}

impl<T> Tensor<T> {
    /// Wrap `data` as a tensor of `shape`, checking the element count.
    pub fn new(shape: Vec<usize>, data: Vec<T>) -> Result<Self> {
        let n = checked_numel("tensor", &shape)?;
        if n != data.len() {
            return Err(Error::shape("tensor", &shape, format!("needs {n} elements, got {}", data.len())));
        }
        Ok(Tensor { shape, data })
    }
}

/// A zero-filled buffer for a tensor of `shape`, or an error if it cannot be allocated.
pub(crate) fn alloc<T: Clone + Default>(what: &str, shape: &[usize]) -> Result<Vec<T>> {
    let n = checked_numel(what, shape)?;
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| Error::too_large(what, shape))?;
    v.resize(n, T::default());
    Ok(v)
}

/// Check that a caller's slice holds exactly the elements its shape says.
pub(crate) fn check_len(arg: &str, len: usize, shape: &[usize]) -> Result<()> {
    let n = checked_numel(arg, shape)?;
    if n == len {
        Ok(())
    } else {
        Err(Error::shape(arg, shape, format!("needs {n} elements, the slice has {len}")))
    }
}

/// Check that a bias holds one value per output channel (`k` of them).
pub(crate) fn check_bias<T>(b: Option<&[T]>, k: usize) -> Result<()> {
    match b {
        Some(b) if b.len() != k => {
            Err(Error::shape("bias", &[b.len()], format!("expected {k} values, one per output channel")))
        }
        _ => Ok(()),
    }
}

/// Check that a caller's workspace holds at least the `need` elements a plan asked for.
/// Bytes of a cache line: implementations' scratch starts on one, so that threads writing
/// neighbouring parts of it do not share a line at every boundary.
const LINE: usize = 64;

/// `need` workspace elements plus the slack [`line_aligned`] may skip (none when `need` is 0).
pub(crate) fn with_line_slack<T>(need: usize) -> usize {
    if need == 0 {
        0
    } else {
        need + LINE / std::mem::size_of::<T>().max(1)
    }
}

/// `n` elements rounded up to whole cache lines.
pub(crate) fn line_round<T>(n: usize) -> usize {
    let per = (LINE / std::mem::size_of::<T>().max(1)).max(1);
    n.div_ceil(per) * per
}

/// The `need` elements of `ws` (at least [`with_line_slack`]`(need)` long) from its first
/// element on a cache line.
pub(crate) fn line_aligned<T>(ws: &mut [T], need: usize) -> &mut [T] {
    let slack = with_line_slack::<T>(need) - need;
    let off = ws.as_ptr().align_offset(LINE).min(slack);
    &mut ws[off..][..need]
}

pub(crate) fn check_workspace(len: usize, need: usize) -> Result<()> {
    if len < need {
        Err(Error::arg("workspace", len, format!("needs {need} elements (see workspace_len)")))
    } else {
        Ok(())
    }
}
