//! Micro-kernels: the innermost loops, apart from the API. `generic` is portable Rust and
//! always built; `x86_64` holds the AVX2/FMA versions, the crate's only `unsafe` code.
//!
//! A GEMM micro-kernel computes one `MR × NR` tile `C = A·B` over a reduction of length `kc`
//! from packed panels: `a` holds `kc` groups of `MR` values (rows of the weight),
//! `b` holds `kc` groups of `NR` values (columns of the patch matrix).

pub mod generic;
pub mod winograd;
#[cfg(target_arch = "x86_64")]
pub mod x86_64;

/// Rows of a GEMM tile (output channels).
pub const MR: usize = 6;
/// Columns of a GEMM tile (output positions).
pub const NR: usize = 16;

/// Where a tile kernel writes: row `i` of the tile to `rows[i][..NR]` (straight into the
/// output, or into scratch), and what it does there.
pub struct TileDst<'a, T> {
    /// The tile's rows, at least `NR` elements each (`panels·NR` for [`GemmTile`]; kernels
    /// panic otherwise).
    pub rows: [&'a mut [T]; MR],
    /// `C += A·B` onto the rows' contents instead of `C = A·B`.
    pub accumulate: bool,
    /// Added to row `i` after the sums (given with the last reduction block).
    pub bias: Option<[T; MR]>,
    /// Rows that matter: kernels may leave rows `live..` as they are (a block's last weight
    /// rows past its group's output channels).
    pub live: usize,
}

/// A GEMM tile kernel over `panels` column panels side by side: for panel `q`,
/// `C[i][q·NR + j] = Σ_p a[p*MR + i]·b[q·b_step + p*NR + j]` for a reduction of `kc`, into
/// `c` as it says (its rows then hold at least `panels·NR` elements).
pub type GemmTile<T> = fn(kc: usize, a: &[T], b: &[T], panels: (usize, usize), c: &mut TileDst<'_, T>);

/// Measure this machine's f32 FMA peak in GFLOP/s with `threads` threads running an
/// FMA-only loop for about `seconds` (the best of a few rounds per thread, summed).
/// Returns `None` where there is no SIMD FMA kernel for this CPU.
pub fn measure_fma_peak(threads: usize, seconds: f64) -> Option<f64> {
    #[cfg(target_arch = "x86_64")]
    if crate::isa::max_isa() >= crate::isa::Isa::Avx2Fma {
        let one = move || {
            let iters = 1u64 << 20;
            let mut best = 0.0f64;
            let start = std::time::Instant::now();
            while start.elapsed().as_secs_f64() < seconds {
                let t = std::time::Instant::now();
                std::hint::black_box(x86_64::f32_fma_peak_avx2_fma(std::hint::black_box(iters)));
                best = best.max(iters as f64 * 192.0 / t.elapsed().as_secs_f64() / 1e9);
            }
            best
        };
        let total = std::thread::scope(|s| {
            let hs: Vec<_> = (0..threads.max(1)).map(|_| s.spawn(one)).collect();
            hs.into_iter().map(|h| h.join().unwrap_or(0.0)).sum::<f64>()
        });
        return Some(total);
    }
    let _ = (threads, seconds);
    None
}

/// A panel copy kernel: for every row `r`, for every run `(j0, s)`, copy `NR` elements from
/// `src[rows[r] + s..]` to `dst[r·NR + j0..]`, runs in order (a later run overwrites the
/// columns past its start). Requires `max(rows) + max(s) + NR ≤ src.len()` and
/// `(rows.len() − 1)·NR + max(j0) + NR ≤ dst.len()`; kernels panic otherwise.
pub type PanelCopy<T> = fn(src: &[T], rows: &[usize], runs: &[(usize, usize)], dst: &mut [T]);

/// An indirect GEMM tile kernel: as [`GemmTile`], but row `p` of panel `q < panels` of `B` is
/// read in place at `src[base + q·NR + offs[p]..][..NR]` instead of from a packed panel
/// (`offs.len() ≥ kc`). Kernels panic if a row lies outside `src`.
pub type GemmIndirect<T> =
    fn(kc: usize, a: &[T], src: &[T], base_panels: (usize, usize), offs: &[usize], c: &mut TileDst<'_, T>);

/// A panel transpose kernel: `dst[p·NR + j] = src[rows[j] + p]` for `j < NR`, `p < len`:
/// `NR` runs of consecutive source elements become the rows of a packed panel. Requires
/// `rows[j] + len ≤ src.len()` and `len·NR ≤ dst.len()`; kernels panic otherwise.
pub type PanelTranspose<T> = fn(src: &[T], rows: &[usize; NR], len: usize, dst: &mut [T]);
