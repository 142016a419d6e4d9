//! The pooling row kernels of [`crate::kernels::pool`] recompiled with AVX2 + FMA and with
//! AVX-512 F/BW/DQ/VL enabled: the same portable bodies (same operations, same order), so
//! the results equal the portable kernels' bit for bit, with the loops vectorized 8 or 16
//! `f32` lanes wide. Each safe wrapper asserts the CPU features, then calls its
//! `#[target_feature]` twin (the only `unsafe`); the bodies only index slices (checked).

use crate::isa::Isa;
use crate::kernels::pool::{self, PoolKernels};
use crate::scalar::Scalar;

/// One level's wrappers: `$isa` the level (whether the CPU runs it comes from
/// [`crate::isa::supported`]), `$feat` the features compiled in.
macro_rules! level {
    ($m:ident, $isa:expr, $feat:literal, $doc:literal) => {
        #[doc = $doc]
        mod $m {
            use super::*;

            /// The CPU has the features (detected once).
            /// The CPU runs this level (detected once, in [`crate::isa`]).
            fn has() -> bool {
                crate::isa::supported($isa)
            }

            #[target_feature(enable = $feat)]
            fn max_row_tf<T: Scalar, const S: usize, const K: usize>(acc: &mut [T], x: &[T], offs: &[usize]) {
                pool::max_row::<T, S, K>(acc, x, offs)
            }

            #[target_feature(enable = $feat)]
            fn max_run_tf<T: Scalar, const S: usize, const K: usize>(
                acc: &mut [T],
                n: usize,
                x: &[T],
                offs: &[usize],
                step: usize,
                ahead: usize,
            ) {
                pool::max_run::<T, S, K>(acc, n, x, offs, step, ahead)
            }

            #[target_feature(enable = $feat)]
            fn avg_row_tf<T: Scalar, const S: usize, const K: usize>(
                acc: &mut [f64],
                x: &[T],
                offs: &[usize],
            ) {
                pool::avg_row::<T, S, K>(acc, x, offs)
            }

            #[target_feature(enable = $feat)]
            fn avg_out_tf<T: Scalar>(y: &mut [T], acc: &[f64], row_div: f64, factors: &[f64]) {
                pool::avg_out::<T>(y, acc, row_div, factors)
            }

            #[target_feature(enable = $feat)]
            fn avg_scale_tf<T: Scalar>(y: &mut [T], acc: &[f64], scale: f64) {
                pool::avg_scale::<T>(y, acc, scale)
            }

            /// [`pool::max_row`] at this level; panics if the CPU lacks the features.
            pub fn max_row<T: Scalar, const S: usize, const K: usize>(
                acc: &mut [T],
                x: &[T],
                offs: &[usize],
            ) {
                assert!(has(), "CPU lacks {}", $feat);
                // SAFETY: the CPU has every feature the function is compiled with (checked
                // above); its body only indexes slices.
                unsafe { max_row_tf::<T, S, K>(acc, x, offs) }
            }

            /// [`pool::max_run`] at this level; panics if the CPU lacks the features.
            pub fn max_run<T: Scalar, const S: usize, const K: usize>(
                acc: &mut [T],
                n: usize,
                x: &[T],
                offs: &[usize],
                step: usize,
                ahead: usize,
            ) {
                assert!(has(), "CPU lacks {}", $feat);
                // SAFETY: as in `max_row`.
                unsafe { max_run_tf::<T, S, K>(acc, n, x, offs, step, ahead) }
            }

            /// [`pool::avg_row`] at this level; panics if the CPU lacks the features.
            pub fn avg_row<T: Scalar, const S: usize, const K: usize>(
                acc: &mut [f64],
                x: &[T],
                offs: &[usize],
            ) {
                assert!(has(), "CPU lacks {}", $feat);
                // SAFETY: as in `max_row`.
                unsafe { avg_row_tf::<T, S, K>(acc, x, offs) }
            }

            /// [`pool::avg_out`] at this level; panics if the CPU lacks the features.
            pub fn avg_out<T: Scalar>(y: &mut [T], acc: &[f64], row_div: f64, factors: &[f64]) {
                assert!(has(), "CPU lacks {}", $feat);
                // SAFETY: as in `max_row`.
                unsafe { avg_out_tf::<T>(y, acc, row_div, factors) }
            }

            /// [`pool::avg_scale`] at this level; panics if the CPU lacks the features.
            pub fn avg_scale<T: Scalar>(y: &mut [T], acc: &[f64], scale: f64) {
                assert!(has(), "CPU lacks {}", $feat);
                // SAFETY: as in `max_row`.
                unsafe { avg_scale_tf::<T>(y, acc, scale) }
            }

            /// This level's table.
            pub fn kernels<T: Scalar>() -> PoolKernels<T> {
                PoolKernels {
                    isa: $isa,
                    max_row: [max_row::<T, 1, 2>, max_row::<T, 1, 3>, max_row::<T, 2, 2>, max_row::<T, 2, 3>],
                    max_run: [max_run::<T, 1, 2>, max_run::<T, 1, 3>, max_run::<T, 2, 2>, max_run::<T, 2, 3>],
                    avg_row: [avg_row::<T, 1, 2>, avg_row::<T, 1, 3>, avg_row::<T, 2, 2>, avg_row::<T, 2, 3>],
                    avg_out: avg_out::<T>,
                    avg_scale: avg_scale::<T>,
                }
            }
        }
    };
}

level!(avx2, Isa::Avx2Fma, "avx2,fma", "AVX2 + FMA (256-bit vectors).");
level!(
    avx512,
    Isa::Avx512,
    "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma",
    "AVX-512 F/BW/DQ/VL (512-bit vectors)."
);

/// The AVX2 + FMA pooling kernels for `T` (call only where the CPU has them: they panic
/// otherwise).
pub fn avx2_kernels<T: Scalar>() -> PoolKernels<T> {
    avx2::kernels::<T>()
}

/// The AVX-512 pooling kernels for `T` (call only where the CPU has them: they panic
/// otherwise). For `f32` the max rows are the hand-written [`max_rows_f32`] kernels.
pub fn avx512_kernels<T: Scalar>() -> PoolKernels<T> {
    let mut k = avx512::kernels::<T>();
    let fast: [pool::MaxRowFn<f32>; 4] =
        [max_rows_f32::<1, 2>, max_rows_f32::<1, 3>, max_rows_f32::<2, 2>, max_rows_f32::<2, 3>];
    if let Some(fast) = (&fast as &dyn std::any::Any).downcast_ref::<[pool::MaxRowFn<T>; 4]>() {
        k.max_row = *fast;
    }
    let run: [pool::MaxRunFn<f32>; 4] =
        [max_run_f32::<1, 2>, max_run_f32::<1, 3>, max_run_f32::<2, 2>, max_run_f32::<2, 3>];
    if let Some(run) = (&run as &dyn std::any::Any).downcast_ref::<[pool::MaxRunFn<T>; 4]>() {
        k.max_run = *run;
    }
    k
}

/// The max rows kernel ([`pool::MaxRowFn`]) for `f32` with AVX-512: 16 outputs per vector
/// (a masked vector for the last ones), stride-2 taps deinterleaved with `vpermt2ps`.
///
/// The reference's fold `step(a, b)` (keep `a` if it is NaN, else take `b` if it is NaN or
/// greater, else keep `a`) picks the *leftmost* maximum of the taps, NaN counting above every
/// number and `±0` equal, so it is associative: the taps are combined as a tree in their
/// order (each row's `K` taps, rows in pairs, pairs of pairs, then into the accumulator),
/// which gives the same bits as the left-to-right scan with dependency chains a fraction as
/// long. Without NaNs `step(a, b)` is `vmaxps(b, a)` (`b > a ? b : a`: the earlier operand
/// stays when they are equal, `±0` included), one instruction instead of two compares and a
/// blend on the dependency chain; each block of 16 outputs is folded that way while one
/// unordered compare per pair of loads notes any NaN, and a block that met one is folded
/// again with the full `step`.
/// Panics if the CPU lacks AVX-512 or a row is shorter than its windows.
pub fn max_rows_f32<const S: usize, const K: usize>(acc: &mut [f32], x: &[f32], offs: &[usize]) {
    assert!(crate::isa::supported(Isa::Avx512), "CPU lacks AVX-512");
    let n = acc.len();
    if n == 0 {
        return;
    }
    let need = (n - 1) * S + K;
    assert!(
        offs.iter().all(|&o| o.checked_add(need).is_some_and(|e| e <= x.len())),
        "a row is shorter than its windows"
    );
    // SAFETY: the CPU has the features (checked above); every unmasked lane of every load
    // lies in `x[o..o + need]` or `acc` (checked above), masked-off lanes are not accessed.
    unsafe { max_rows_f32_tf::<S, K>(acc, x, offs, 0, false) }
}

/// The max run kernel ([`pool::MaxRunFn`]) for `f32` with AVX-512: [`max_rows_f32`] on each
/// output row of the run, the bounds checked once for the whole run.
/// Panics if the CPU lacks AVX-512, a row is shorter than its windows or `n` does not divide
/// `acc.len()`.
pub fn max_run_f32<const S: usize, const K: usize>(
    acc: &mut [f32],
    n: usize,
    x: &[f32],
    offs: &[usize],
    step: usize,
    ahead: usize,
) {
    assert!(crate::isa::supported(Isa::Avx512), "CPU lacks AVX-512");
    assert!(n > 0 && acc.len().is_multiple_of(n), "{} accumulators are not rows of {n}", acc.len());
    let rows = acc.len() / n;
    if rows == 0 {
        return;
    }
    // The last row's windows end at `o + (rows − 1)·step + need`.
    let need = (n - 1) * S + K;
    let last = (rows - 1).checked_mul(step).and_then(|s| s.checked_add(need));
    assert!(
        offs.iter().all(|&o| last.and_then(|l| o.checked_add(l)).is_some_and(|e| e <= x.len())),
        "a row is shorter than its windows"
    );
    // SAFETY: the CPU has the features (checked above); every window of row `r` lies in
    // `x[o + r·step..o + r·step + need]`, inside `x` (checked above for the last row, the
    // others start lower).
    unsafe { max_run_f32_tf::<S, K>(acc, n, x, offs, step, ahead) }
}

/// [`max_run_f32`] after its checks: one row at a time, the input rows `ahead` past each
/// asked for first.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
unsafe fn max_run_f32_tf<const S: usize, const K: usize>(
    acc: &mut [f32],
    n: usize,
    x: &[f32],
    offs: &[usize],
    step: usize,
    ahead: usize,
) {
    use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
    let span = ((n - 1) * S + K) * std::mem::size_of::<f32>();
    let end = x.as_ptr().add(x.len()).cast::<i8>();
    for (r, acc) in acc.chunks_exact_mut(n).enumerate() {
        let shift = r * step;
        if ahead > 0 {
            for &o in offs {
                let p = x.as_ptr().wrapping_add(o + shift + ahead).cast::<i8>();
                // A prefetch reads nothing the program sees and never faults; rows past the
                // end of `x` are not asked for all the same.
                let mut b = 0;
                while b < span && p.wrapping_add(b) < end {
                    _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(b));
                    b += 64;
                }
            }
        }
        max_rows_f32_tf::<S, K>(acc, x, offs, shift, true)
    }
}

#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
#[inline]
unsafe fn max_rows_f32_tf<const S: usize, const K: usize>(
    acc: &mut [f32],
    x: &[f32],
    offs: &[usize],
    shift: usize,
    fresh: bool,
) {
    use std::arch::x86_64::*;
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
    #[inline]
    fn step(a: __m512, b: __m512) -> __m512 {
        let ord = _mm512_cmp_ps_mask::<_CMP_ORD_Q>(a, a);
        let take = _mm512_mask_cmp_ps_mask::<_CMP_NLE_UQ>(ord, b, a);
        _mm512_mask_mov_ps(a, take, b)
    }
    /// The same fold where neither operand is NaN.
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
    #[inline]
    fn step_ordered(a: __m512, b: __m512) -> __m512 {
        _mm512_max_ps(b, a)
    }
    let n = acc.len();
    let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    let odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    let lanes = |count: usize| -> __mmask16 {
        if count >= 16 {
            !0
        } else {
            ((1u32 << count) - 1) as __mmask16
        }
    };
    let xp = x.as_ptr();
    let mut j = 0;
    while j < n {
        let cnt = (n - j).min(16);
        let m = lanes(cnt);
        // Elements of a row this block reads from its first: (cnt − 1)·S + K.
        let span = (cnt - 1) * S + K;
        // One row's taps folded with `f`; `nan` gathers the lanes where a load held a NaN.
        // SAFETY (all loads below): the caller checked `o + shift + (n − 1)·S + K ≤ x.len()`, and a
        // load at `base + e` is unmasked only for `e < span` (with the `base` shift of tap 2);
        // masked-off lanes load as 0.
        let row = |o: usize, f: fn(__m512, __m512) -> __m512, nan: &mut __mmask16| -> __m512 {
            let base = xp.add(o + shift + j * S);
            if S == 1 {
                let mut r = _mm512_maskz_loadu_ps(m, base);
                *nan |= _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(r, r);
                for k in 1..K {
                    let t = _mm512_maskz_loadu_ps(m, base.add(k));
                    *nan |= _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(t, t);
                    r = f(r, t);
                }
                r
            } else {
                let (m0, m1) = (lanes(span), lanes(span.saturating_sub(16)));
                let lo = _mm512_maskz_loadu_ps(m0, base);
                let hi = _mm512_maskz_loadu_ps(m1, base.add(16));
                *nan |= _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(lo, hi);
                let mut r = f(_mm512_permutex2var_ps(lo, even, hi), _mm512_permutex2var_ps(lo, odd, hi));
                if K == 3 {
                    // Tap 2 of window i is element 2i + 2: the even lanes from base + 2.
                    let (m2, m3) = (lanes(span - 2), lanes((span - 2).saturating_sub(16)));
                    let lo2 = _mm512_maskz_loadu_ps(m2, base.add(2));
                    let hi2 = _mm512_maskz_loadu_ps(m3, base.add(18));
                    *nan |= _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(lo2, hi2);
                    r = f(r, _mm512_permutex2var_ps(lo2, even, hi2));
                }
                r
            }
        };
        // The block's rows folded as a tree in their order, then into the accumulator.
        let fold = |v: __m512, f: fn(__m512, __m512) -> __m512, nan: &mut __mmask16| -> __m512 {
            let mut v = v;
            let mut quads = offs.chunks_exact(4);
            for q in &mut quads {
                let (a, b) = (row(q[0], f, nan), row(q[1], f, nan));
                let (c, d) = (row(q[2], f, nan), row(q[3], f, nan));
                v = f(v, f(f(a, b), f(c, d)));
            }
            let mut pairs = quads.remainder().chunks_exact(2);
            for p in &mut pairs {
                let (a, b) = (row(p[0], f, nan), row(p[1], f, nan));
                v = f(v, f(a, b));
            }
            if let [o] = pairs.remainder() {
                v = f(v, row(*o, f, nan));
            }
            v
        };
        let ap = acc.as_mut_ptr().add(j);
        // A fresh row starts from −∞ (what the caller would have filled it with) instead of
        // reading the output first.
        let v0 = if fresh { _mm512_set1_ps(f32::NEG_INFINITY) } else { _mm512_maskz_loadu_ps(m, ap) };
        let mut nan = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(v0, v0);
        let mut v = fold(v0, step_ordered, &mut nan);
        if nan != 0 {
            let mut again = 0;
            v = fold(v0, step, &mut again);
        }
        _mm512_mask_storeu_ps(ap, m, v);
        j += 16;
    }
}

/// [`pool::prefetch_rows`]: `prefetcht0` on every cache line of each range.
#[inline]
pub fn prefetch_rows<T>(x: &[T], offs: &[usize], ahead: usize, len: usize) {
    use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
    let bytes = len * std::mem::size_of::<T>();
    for &o in offs {
        let Some(row) = x.get(o + ahead..o + ahead + len) else { continue };
        let p = row.as_ptr().cast::<i8>();
        for b in (0..bytes).step_by(64) {
            // SAFETY: `p + b` lies inside `row` (b is below its size in bytes); a prefetch
            // reads nothing the program sees and never faults. SSE is baseline on x86-64.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(p.add(b)) };
        }
    }
}
