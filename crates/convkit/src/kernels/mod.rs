//! Micro-kernels: the innermost loops, apart from the API. `generic` is portable Rust and
//! always built; `x86_64` holds the AVX2 and AVX-512 versions, the crate's only `unsafe` code
//! (with `impls/grid.rs` and `impls/team.rs`, see there). A [`KernelSet`] gathers one level's kernels and their
//! [`Geometry`]; plans pick one set ([`kernel_set`]) and read every block size from it.
//!
//! A GEMM micro-kernel computes one `mr × nr` tile `C = A·B` over a reduction of length `kc`
//! from packed panels: `a` holds `kc` groups of `mr` values (rows of the weight),
//! `b` holds `kc` groups of `nr` values (columns of the patch matrix).

pub mod generic;
pub mod grouped;
pub mod pool;
pub mod responses;
pub mod winograd;
#[cfg(target_arch = "x86_64")]
pub mod x86_64;

use crate::isa::{self, Isa};
use generic::{DwCopyFn, DwPlaneFn, DwRowFn, DwRowsFn, DwSplitFn};
use grouped::GroupedFn;
use winograd::{WinoGatherFn, WinoGradFn, WinoInFn, WinoOutFn, WinoScatterFn};

/// Most rows any kernel set's GEMM tile has (the size of [`TileDst`]'s row array).
pub const MAX_MR: usize = 16;
/// Most columns any kernel set's GEMM tile has (the size of stack arrays over a panel).
pub const MAX_NR: usize = 32;

/// The shape a kernel set's micro-kernels work in. Implementations take every block size
/// from here, never from a constant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Rows of a GEMM tile: the rows of a packed `A` (weight) panel (≤ [`MAX_MR`]).
    pub mr: usize,
    /// Columns of a GEMM tile: the width of a packed `B` panel (≤ [`MAX_NR`]).
    pub nr: usize,
    /// Elements of one vector register.
    pub lanes: usize,
}

/// Every micro-kernel an implementation needs, for one element type at one ISA level, and
/// the geometry they share. Chosen once when a plan is made ([`kernel_set`]); every slot is
/// filled (with the portable kernel where a level has nothing better), except the few
/// kernels only some levels have.
#[derive(Clone, Copy)]
pub struct KernelSet<T> {
    /// The level these kernels run at (the name implementations carry).
    pub isa: Isa,
    /// Tile and panel shape.
    pub geometry: Geometry,
    /// The packed `mr × nr` GEMM tile.
    pub gemm: GemmTile<T>,
    /// The packed tile computing only the first `nr / 2` columns (a short last panel).
    pub gemm_narrow: GemmTile<T>,
    /// The `mr × nr` tile with `A`'s rows `lda` apart instead of `mr`, where the level has
    /// one: `A` read in place (`pointwise`'s channels-first input).
    pub gemm_strided: Option<GemmStrided<T>>,
    /// The indirect `mr × nr` tile, and the one for at most `.0` live rows (small groups).
    pub gemm_indirect: GemmIndirect<T>,
    /// An indirect tile for blocks of at most `.0` live rows, cheaper than the full one.
    pub gemm_indirect_small: (usize, GemmIndirect<T>),
    /// Gathers runs of the source into a packed `B` panel.
    pub copy_panel: PanelCopy<T>,
    /// Transposes `nr` runs of the source into a packed `B` panel.
    pub transpose_panel: PanelTranspose<T>,
    /// Winograd F(4×4, 3×3) input and output transforms.
    pub wino: (WinoInFn<T>, WinoOutFn<T>),
    /// Winograd F(4×4, 2×2) input and output transforms.
    pub wino2: (WinoInFn<T>, WinoOutFn<T>),
    /// The 1-D transforms of F(4, 3) and F(4, 2) (`winograd-1d`).
    pub wino1: (winograd::Wino1InFn<T>, winograd::Wino1OutFn<T>),
    /// The fused 1-D F(2, 2) kernel (`fused-winograd-1d`), where the level has one.
    pub wino1_f2: Option<winograd::Wino1F2Fn<T>>,
    /// Winograd F(3×3, 4×4) output-gradient transform (the weight gradient's).
    pub wino_grad: WinoGradFn<T>,
    /// Winograd patch gather for runs of tiles side by side, where a level has one faster
    /// than element-by-element copies.
    pub wino_gather: Option<WinoGatherFn<T>>,
    /// Winograd output tile scatter for runs of whole tiles side by side, where a level has
    /// one faster than element-by-element copies.
    pub wino_scatter: Option<WinoScatterFn<T>>,
    /// Depthwise row kernel.
    pub dw_row: DwRowFn<T>,
    /// Depthwise band kernel.
    pub dw_plane: DwPlaneFn<T>,
    /// Direct 3×3 depthwise band kernel (constant padding, no staging), where a level has one.
    pub dw_rows: Option<DwRowsFn<T>>,
    /// Staging copy.
    pub dw_copy: DwCopyFn<T>,
    /// Stride-2 phase split.
    pub dw_split2: DwSplitFn<T>,
    /// Grouped direct band kernel (few channels per group), where a level has one that beats
    /// its GEMM tiles, and the most input × output channels per group it beats them on (every
    /// level measured ahead up to 8 × 8, the most `grouped-direct` takes; Zen 4).
    pub grouped: Option<(usize, GroupedFn<T>)>,
    /// FMA throughput probe: `iters` rounds of register-only FMAs and the FLOP of one round.
    pub fma_peak: Option<(FmaProbe, f64)>,
    /// Interleave of `s` rows into one, a bias added (transposed convolution's phases).
    pub interleave: InterleaveFn<T>,
    /// The GEMM tile whose tiles are interleaved into the output ([`GemmIlvFn`]), where the
    /// level has one.
    pub gemm_ilv: Option<GemmIlvFn<T>>,
}

impl<T> KernelSet<T> {
    /// The name of implementation family `family` running on this set, e.g.
    /// `gemm-tiled:avx512` (the one place such names are built).
    pub fn name(&self, family: &str) -> String {
        impl_name(family, self.isa)
    }
}

/// `family:level`, the name users force an implementation by.
pub fn impl_name(family: &str, isa: Isa) -> String {
    format!("{family}:{isa}")
}

/// An FMA throughput probe: runs `iters` rounds, returns a value depending on every FMA.
pub type FmaProbe = fn(iters: u64) -> f32;

/// Makes one level's `f32` kernel set.
type F32Set = (Isa, fn() -> KernelSet<f32>);

/// The `f32` kernel sets above `generic`, one line per level, lowest first.
const F32_SETS: &[F32Set] = &[
    #[cfg(target_arch = "x86_64")]
    (Isa::Avx2Fma, x86_64::avx2_set),
    #[cfg(target_arch = "x86_64")]
    (Isa::Avx512, x86_64::avx512_set),
];

/// The kernel set for element type `T` at exactly `isa`, if the CPU supports that level and
/// the level has kernels for `T` (`generic` always does).
pub fn kernel_set<T: 'static + crate::scalar::Scalar>(isa: Isa) -> Option<KernelSet<T>> {
    if !isa::supported(isa) {
        return None;
    }
    if isa == Isa::Generic {
        return Some(generic::kernel_set::<T>());
    }
    let make = F32_SETS.iter().find(|s| s.0 == isa)?.1;
    cast::<KernelSet<f32>, KernelSet<T>>(make())
}

/// The best kernel set for `T` at or below `cap`.
pub fn best_kernel_set<T: 'static + crate::scalar::Scalar>(cap: Isa) -> KernelSet<T> {
    isa::LEVELS
        .iter()
        .rev()
        .filter(|l| l.0 <= cap)
        .find_map(|l| kernel_set::<T>(l.0))
        .unwrap_or_else(generic::kernel_set::<T>)
}

/// `a` as a `B` when `A` and `B` are the same type (how an `f32` set becomes a `KernelSet<T>`
/// for `T = f32`, without `unsafe`).
fn cast<A: 'static, B: 'static>(a: A) -> Option<B> {
    let mut a = Some(a);
    (&mut a as &mut dyn std::any::Any).downcast_mut::<Option<B>>().and_then(Option::take)
}

/// The destination rows of a tile in scratch: `buf` cut into `mr` rows of `nr` (the rest of
/// the array empty).
pub fn scratch_rows<T>(buf: &mut [T], mr: usize, nr: usize) -> [&mut [T]; MAX_MR] {
    let mut rows = buf[..mr * nr].chunks_exact_mut(nr);
    std::array::from_fn(|_| rows.next().unwrap_or_default())
}

/// Where a tile kernel writes: row `i < mr` of the tile to `rows[i][..nr]` (straight into the
/// output, or into scratch), and what it does there.
pub struct TileDst<'a, T> {
    /// The tile's rows, at least `nr` elements each (`panels·nr` for [`GemmTile`]; kernels
    /// panic otherwise); rows from the set's `mr` on are not used (leave them empty).
    pub rows: [&'a mut [T]; MAX_MR],
    /// `C += A·B` onto the rows' contents instead of `C = A·B`.
    pub accumulate: bool,
    /// Added to row `i` after the sums (given with the last reduction block).
    pub bias: Option<[T; MAX_MR]>,
    /// Rows that matter: kernels may leave rows `live..` as they are (a block's last weight
    /// rows past its group's output channels).
    pub live: usize,
}

/// A GEMM tile kernel over `panels` column panels side by side: for panel `q`,
/// `C[i][q·nr + j] = Σ_p a[p*mr + i]·b[q·b_step + p*nr + j]` for a reduction of `kc`, into
/// `c` as it says (its rows then hold at least `panels·nr` elements).
pub type GemmTile<T> = fn(kc: usize, a: &[T], b: &[T], panels: (usize, usize), c: &mut TileDst<'_, T>);

/// Measure this machine's f32 FMA peak in GFLOP/s at the widest level the CPU has (a
/// property of the machine: `CONVKIT_MAX_ISA` does not lower it), with `threads` threads running an FMA-only loop for about `seconds` (the best of a few
/// rounds per thread, summed). Returns the level and the rate, or `None` where no level has
/// an FMA probe.
pub fn measure_fma_peak(threads: usize, seconds: f64) -> Option<(Isa, f64)> {
    let set = best_kernel_set::<f32>(isa::detected());
    let (probe, flop) = set.fma_peak?;
    let one = move || {
        let iters = 1u64 << 20;
        let mut best = 0.0f64;
        let start = std::time::Instant::now();
        while start.elapsed().as_secs_f64() < seconds {
            let t = std::time::Instant::now();
            std::hint::black_box(probe(std::hint::black_box(iters)));
            best = best.max(iters as f64 * flop / t.elapsed().as_secs_f64() / 1e9);
        }
        best
    };
    let total = std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads.max(1)).map(|_| s.spawn(one)).collect();
        hs.into_iter().map(|h| h.join().unwrap_or(0.0)).sum::<f64>()
    });
    Some((set.isa, total))
}

/// [`GemmTile`] with reduction step `p`'s `A` values at `a[p·lda..][..live rows]` (row `i` at
/// `a[p·lda + i]`): `a` needs `(kc − 1)·lda` elements plus the rows the kernel computes.
pub type GemmStrided<T> =
    fn(kc: usize, a: &[T], lda: usize, b: &[T], panels: (usize, usize), c: &mut TileDst<'_, T>);

/// A panel copy kernel: for every row `r`, for every run `(j0, s)`, copy `nr` elements from
/// `src[rows[r] + s..]` to `dst[r·nr + j0..]`, runs in order (a later run overwrites the
/// columns past its start). Requires `max(rows) + max(s) + nr ≤ src.len()` and
/// `(rows.len() − 1)·nr + max(j0) + nr ≤ dst.len()`; kernels panic otherwise.
pub type PanelCopy<T> = fn(src: &[T], rows: &[usize], runs: &[(usize, usize)], dst: &mut [T]);

/// An indirect GEMM tile kernel: as [`GemmTile`], but row `p` of panel `q < panels` of `B` is
/// read in place at `src[base + q·nr + offs[p]..][..nr]` instead of from a packed panel
/// (`offs.len() ≥ kc`). Kernels panic if a row lies outside `src`.
pub type GemmIndirect<T> =
    fn(kc: usize, a: &[T], src: &[T], base_panels: (usize, usize), offs: &[usize], c: &mut TileDst<'_, T>);

/// An interleave kernel: `dst[s·j + r] = srcs[r][j] + bias` for `r < s = srcs.len()` and
/// `j < dst.len() / s`; the rows of `s` output phases become one output row. Requires
/// `dst.len()` a multiple of `s` and every `srcs[r].len() ≥ dst.len() / s`; kernels panic
/// otherwise.
pub type InterleaveFn<T> = fn(srcs: &[&[T]], bias: T, dst: &mut [T]);

/// Where an interleaving store ([`generic::ilv_store`], [`GemmIlvFn`]) writes the tiles of one
/// row block: its first `runs·s` rows in runs
/// of `s` (the phases of one output row, in output order), `lanes` columns (result
/// positions). Column `j` is position `t = first + j` of a result laid out in rows of
/// `width`: result row `t / width`, place `c = t % width` in it. Row `r` of run `u` there, plus
/// `bias[u]`, is output `s·c + d + r` of output row `row[u] + step·(t / width)` of `rows`, each
/// `cols` long, the first starting at offset `at[u]` of `y` (rows `step` apart start
/// `step·cols` apart); it is written only if that row exists and `0 ≤ s·c + d + r < cols`.
/// Nothing else is written.
#[derive(Debug, Clone)]
pub struct IlvPlace<T> {
    /// Rows per run (phases per output row), `2 ≤ s`, `runs·s ≤ MAX_MR`.
    pub s: usize,
    /// Runs in the block.
    pub runs: usize,
    /// Columns that hold results (`≤` the rows' lengths).
    pub lanes: usize,
    /// Positions per result row (at least 16; any larger number for one row).
    pub width: usize,
    /// Place of column 0 in its result row (`< width`).
    pub first: usize,
    /// Output row length.
    pub cols: usize,
    /// Output rows (per channel plane).
    pub rows: usize,
    /// Output rows per result row.
    pub step: usize,
    /// Output offset of the first output phase.
    pub d: isize,
    /// Per run: the output row of column 0's result row (any integer)…
    pub row: [isize; MAX_RUNS],
    /// … and the offset where that row starts (outside `y` only if the row does not exist).
    pub at: [isize; MAX_RUNS],
    /// Added to every value of run `u`.
    pub bias: [T; MAX_RUNS],
}

/// Most runs an [`IlvPlace`] has (runs have at least two rows).
pub const MAX_RUNS: usize = MAX_MR / 2;

impl<T: crate::scalar::Scalar> IlvPlace<T> {
    /// An empty place.
    pub fn new() -> Self {
        IlvPlace {
            s: 2,
            runs: 0,
            lanes: 0,
            width: usize::MAX,
            first: 0,
            cols: 0,
            rows: 0,
            step: 0,
            d: 0,
            row: [0; MAX_RUNS],
            at: [0; MAX_RUNS],
            bias: [T::ZERO; MAX_RUNS],
        }
    }
}

impl<T> IlvPlace<T> {
    /// The same place for the columns from `n` on (column `n` becomes column 0).
    pub fn advance(&mut self, n: usize) {
        self.first += n;
        while self.first >= self.width {
            self.first -= self.width;
            for u in 0..self.runs {
                self.row[u] += self.step as isize;
                self.at[u] += (self.step * self.cols) as isize;
            }
        }
    }
}

impl<T: crate::scalar::Scalar> Default for IlvPlace<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// A GEMM tile kernel ([`GemmTile`], `mr` rows) whose tiles, instead of being stored into
/// `c`'s rows, go to `y` at `place` as [`generic::ilv_store`] would send rows holding them
/// (`place.lanes` columns from the first panel's); `c`'s rows are only read, to accumulate.
/// Kernels panic on runs of a length they lack.
pub type GemmIlvFn<T> = fn(
    kc: usize,
    a: &[T],
    b: &[T],
    panels: (usize, usize),
    c: &mut TileDst<'_, T>,
    place: &IlvPlace<T>,
    y: &mut [T],
);

/// A panel transpose kernel: `dst[p·nr + j] = src[rows[j] + p]` for `j < nr`, `p < len`:
/// `nr` runs of consecutive source elements become the rows of a packed panel
/// (`rows.len() = nr`). Requires `rows[j] + len ≤ src.len()` and `len·nr ≤ dst.len()`;
/// kernels panic otherwise.
pub type PanelTranspose<T> = fn(src: &[T], rows: &[usize], len: usize, dst: &mut [T]);
