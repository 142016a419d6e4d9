//! Disjoint rectangular parts of a row-major matrix, written by different workers.
//!
//! Channels-first output is a `channels × positions` matrix; splitting it across threads by
//! output channels gives each worker a contiguous slice (see [`super::split_join`]), but
//! splitting by positions gives each worker a column range of every row, which no slice
//! expresses. [`split_cols`] hands each worker a [`Part`]: its column range of every row,
//! handed out one row at a time. This module and `team` (the fork-join) hold the only `unsafe`
//! outside the kernels: the ranges are disjoint by construction, so the rows handed out never
//! alias.
#![allow(unsafe_code)]

use crate::kernels::MAX_MR;
use std::marker::PhantomData;

/// A worker's columns `c0..c1` of every row of a `rows × cols` row-major matrix.
pub(crate) struct Part<'a, T> {
    ptr: *mut T,
    rows: usize,
    cols: usize,
    c0: usize,
    c1: usize,
    _borrow: PhantomData<&'a mut [T]>,
}

// SAFETY: a `Part` is an exclusive borrow of elements no other `Part` reaches (see
// `split_cols`), so sending it to another thread is like sending a `&mut [T]`.
unsafe impl<T: Send> Send for Part<'_, T> {}

impl<'a, T> Part<'a, T> {
    /// All of `y` (`rows × cols`, row-major) as one part.
    pub(crate) fn whole(y: &'a mut [T], (rows, cols): (usize, usize)) -> Self {
        assert_eq!(Some(y.len()), rows.checked_mul(cols), "matrix size");
        Part { ptr: y.as_mut_ptr(), rows, cols, c0: 0, c1: cols, _borrow: PhantomData }
    }

    /// Columns `c0..c1` of row `r` (panics if `r` is out of range).
    pub(crate) fn row(&mut self, r: usize) -> &mut [T] {
        assert!(r < self.rows, "row {r} of {}", self.rows);
        // SAFETY: `r < rows` and `c0 ≤ c1 ≤ cols`, so the range lies inside the matrix the
        // part was made from (`rows·cols` elements, checked in `split_cols`); no other part
        // reaches these columns, and `&mut self` keeps this row the only one borrowed.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(r * self.cols + self.c0), self.c1 - self.c0) }
    }

    /// Columns `col..col + len` (relative to the part) of rows `r0..r0 + n`, followed by
    /// `m − n` rows of `len` from `spare`: the destination rows of one `m`-row tile (the rest
    /// of the array empty).
    pub(crate) fn tile<'s>(
        &'s mut self,
        m: usize,
        (r0, n): (usize, usize),
        (col, len): (usize, usize),
        spare: &'s mut [T],
    ) -> [&'s mut [T]; MAX_MR] {
        assert!(
            n <= m && m <= MAX_MR && r0 + n <= self.rows && col + len <= self.c1 - self.c0,
            "tile outside the part"
        );
        let mut spare = spare.chunks_exact_mut(len.max(1));
        let ptr = self.ptr;
        let (cols, c0) = (self.cols, self.c0);
        std::array::from_fn(|i| {
            if i < n {
                // SAFETY: rows r0 + i < rows are distinct for distinct i, and the columns
                // c0 + col .. + len lie inside this part's range (checked above), so these
                // slices are disjoint and inside the matrix; `&'s mut self` keeps them the
                // only ones borrowed from this part.
                unsafe { std::slice::from_raw_parts_mut(ptr.add((r0 + i) * cols + c0 + col), len) }
            } else if i < m {
                spare.next().expect("spare rows for the tile")
            } else {
                Default::default()
            }
        })
    }

    /// First column of the part.
    #[cfg(test)]
    pub(crate) fn first_col(&self) -> usize {
        self.c0
    }
}

/// Run `f(t, part, ws_t)` for every worker `t < threads` with columns `cut(t)..cut(t + 1)` of
/// every row of `y` (`rows × cols`, row-major; `cut(0) = 0`, `cut(threads) = cols`,
/// non-decreasing) and the `t`-th run of `per_ws` elements of `ws`, recursively with
/// `team::join`, allocating nothing.
pub(crate) fn split_cols<T: Send, F>(
    y: &mut [T],
    (rows, cols): (usize, usize),
    ws: &mut [T],
    per_ws: usize,
    threads: usize,
    cut: &(dyn Fn(usize) -> usize + Sync),
    f: &F,
) where
    F: Fn(usize, Part<'_, T>, &mut [T]) + Sync,
{
    assert_eq!(Some(y.len()), rows.checked_mul(cols), "matrix size");
    let threads = threads.max(1);
    let mut prev = 0;
    for t in 0..=threads {
        let c = cut(t);
        assert!(c >= prev && c <= cols && (t > 0 || c == 0) && (t < threads || c == cols), "column cuts");
        prev = c;
    }
    struct Shared<T>(*mut T);
    // SAFETY: only used to build parts with disjoint column ranges (below).
    unsafe impl<T: Send> Sync for Shared<T> {}
    let shared = Shared(y.as_mut_ptr());
    #[allow(clippy::too_many_arguments)]
    fn go<T: Send, F: Fn(usize, Part<'_, T>, &mut [T]) + Sync>(
        shared: &Shared<T>,
        (rows, cols): (usize, usize),
        ws: &mut [T],
        per_ws: usize,
        (t0, t1): (usize, usize),
        cut: &(dyn Fn(usize) -> usize + Sync),
        f: &F,
    ) {
        if t1 - t0 == 1 {
            let part = Part { ptr: shared.0, rows, cols, c0: cut(t0), c1: cut(t1), _borrow: PhantomData };
            f(t0, part, &mut ws[..per_ws]);
            return;
        }
        let mid = (t0 + t1) / 2;
        let (wa, wb) = ws.split_at_mut((mid - t0) * per_ws);
        super::team::join(
            || go(shared, (rows, cols), wa, per_ws, (t0, mid), cut, f),
            || go(shared, (rows, cols), wb, per_ws, (mid, t1), cut, f),
        );
    }
    // Workers get the column ranges cut(t)..cut(t + 1), which are disjoint (the cuts were
    // checked non-decreasing above); `y` stays mutably borrowed until every worker returns.
    go(&shared, (rows, cols), ws, per_ws, (0, threads), cut, f);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_element_is_written_once_by_its_worker() {
        let (rows, cols) = (5, 37);
        let mut y = vec![usize::MAX; rows * cols];
        for threads in 1..=4 {
            let cut = |t: usize| cols * t / threads;
            split_cols(
                &mut y,
                (rows, cols),
                &mut [],
                0,
                threads,
                &cut,
                &|t, mut part: Part<'_, usize>, _| {
                    for r in 0..rows {
                        let c0 = part.first_col();
                        for (j, v) in part.row(r).iter_mut().enumerate() {
                            *v = (t << 32) | (r * cols + c0 + j);
                        }
                    }
                },
            );
            for (i, &v) in y.iter().enumerate() {
                let (t, idx) = (v >> 32, v & 0xffff_ffff);
                assert_eq!(idx, i);
                assert!(cut(t) <= i % cols && i % cols < cut(t + 1));
            }
        }
    }
}
