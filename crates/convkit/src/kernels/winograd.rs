//! Winograd transforms for 4×4 output tiles, portable and generic over the element type;
//! `x86_64` compiles the same code with AVX2 and with AVX-512 enabled.
//!
//! - F(4×4, 3×3), Lavin & Gray's points 0, ±1, ±2, ∞: a 6×6 input patch `d` becomes
//!   `V = Bᵀ d B`, a 3×3 kernel `g` becomes `U = G g Gᵀ`, and the 36 products `M = U ⊙ V`
//!   (summed over input channels by GEMMs) become a 4×4 output tile `Y = Aᵀ M A`: 36
//!   multiplications for 144.
//! - F(4×4, 2×2), points 0, ±1, 2, ∞: a 5×5 patch, 25 products, 25 multiplications for 64
//!   (2.56× fewer). Of the point sets tried (0, ±1 and one of ±2, ±1/2) these gave the
//!   smallest mean f32 error in a simulation, with integer `Bᵀ` and `Aᵀ`. The 2×2 phases of stride-2 transposed
//!   convolutions (DCGAN's 4×4, the 3×3 one's corner phase) are its main users.
//!
//! The transforms work on [`WL`] tiles at once ("lanes"), one array of lanes per patch
//! element, so that every operation is a vector operation across tiles. Patches and
//! transformed tiles are row-major with the patch side as row length (6 or 5), in arrays
//! sized for the larger one.

use crate::scalar::Scalar;

/// Tiles transformed together: one GEMM column panel (the Winograd implementation runs on
/// kernel sets whose tiles are this wide).
pub const WL: usize = 16;
/// One value per tile of a group of [`WL`] tiles.
pub type Lanes<T> = [T; WL];
/// Largest input patch side (`4 + 3 − 1`, F(4×4, 3×3)).
pub const WA: usize = 6;
/// Most transformed elements per tile (`6 × 6`).
pub const WX: usize = WA * WA;
/// Input patch side of F(4×4, 2×2) (`4 + 2 − 1`).
pub const WA2: usize = 5;
/// Output tile side.
pub const WM: usize = 4;

/// Input transform: `d[r·A + s]` (patch row `r`, column `s`, patch side `A`) to
/// `v[ξ·vstride..][..WL]` for `ξ = a·A + b`.
pub type WinoInFn<T> = fn(d: &[Lanes<T>; WX], v: &mut [T], vstride: usize);
/// Output transform: `m[ξ·mstride..][..WL]` to `y[u·4 + v]` (tile row `u`, column `v`), plus
/// `bias`.
pub type WinoOutFn<T> = fn(m: &[T], mstride: usize, bias: T, y: &mut [Lanes<T>; WM * WM]);
/// Patch gather for a run of tiles side by side in one band (4 columns apart, undilated
/// columns): `d[r·a + s][l] = x[p0 + r·row_step + s + 4·(l − l0)]` for `r, s < a` and lanes
/// `l0 ≤ l < l1`; other lanes are left as they are. Kernels panic if a read lies outside `x`.
pub type WinoGatherFn<T> =
    fn(x: &[T], p0: usize, row_step: usize, a: usize, lanes: (usize, usize), d: &mut [Lanes<T>; WX]);

/// Tile scatter for a run of whole output tiles side by side in one output row (undilated
/// columns): `dst[u·row_step + 4·(l − l0) + v] = y[u·4 + v][l]` for `u, v < 4` and lanes
/// `l0 ≤ l < l1`. Kernels panic if a write lies outside `dst`.
pub type WinoScatterFn<T> =
    fn(y: &[Lanes<T>; WM * WM], lanes: (usize, usize), dst: &mut [T], row_step: usize);

/// [`WinoScatterFn`], portable: element by element.
pub fn wino_scatter_generic<T: Scalar>(
    y: &[Lanes<T>; WM * WM],
    (l0, l1): (usize, usize),
    dst: &mut [T],
    row_step: usize,
) {
    for u in 0..WM {
        let row = &mut dst[u * row_step..][..WM * (l1 - l0)];
        for (j, out) in row.chunks_exact_mut(WM).enumerate() {
            for (v, o) in out.iter_mut().enumerate() {
                *o = y[u * WM + v][l0 + j];
            }
        }
    }
}

/// [`WinoGatherFn`], portable: element by element.
pub fn wino_gather_generic<T: Scalar>(
    x: &[T],
    p0: usize,
    row_step: usize,
    a: usize,
    (l0, l1): (usize, usize),
    d: &mut [Lanes<T>; WX],
) {
    assert!(a <= WA && l0 <= l1 && l1 <= WL, "patch side {a} or lanes {l0}..{l1} out of range");
    for r in 0..a {
        for s in 0..a {
            let row = &x[p0 + r * row_step + s..];
            for (j, lane) in d[r * a + s][l0..l1].iter_mut().enumerate() {
                *lane = row[4 * j];
            }
        }
    }
}

/// `Bᵀ` applied to six lane arrays (one column of the patch).
#[inline(always)]
pub(crate) fn bt<T: Scalar>(d: [&Lanes<T>; WA]) -> [Lanes<T>; WA] {
    let (c2, c4, c5) = (T::from_f64(2.0), T::from_f64(4.0), T::from_f64(5.0));
    let mut o = [[T::ZERO; WL]; WA];
    for l in 0..WL {
        let (d0, d1, d2, d3, d4, d5) = (d[0][l], d[1][l], d[2][l], d[3][l], d[4][l], d[5][l]);
        let p = d4 - c4 * d2;
        let q = d3 - c4 * d1;
        let r = d4 - d2;
        let s = c2 * (d3 - d1);
        o[0][l] = (d4 - c5 * d2) + c4 * d0;
        o[1][l] = p + q;
        o[2][l] = p - q;
        o[3][l] = r + s;
        o[4][l] = r - s;
        o[5][l] = (d5 - c5 * d3) + c4 * d1;
    }
    o
}

/// `Aᵀ` applied to six lane arrays.
#[inline(always)]
pub(crate) fn at<T: Scalar>(m: [&Lanes<T>; WA]) -> [Lanes<T>; WM] {
    let (c2, c4, c8) = (T::from_f64(2.0), T::from_f64(4.0), T::from_f64(8.0));
    let mut o = [[T::ZERO; WL]; WM];
    for l in 0..WL {
        let a = m[1][l] + m[2][l];
        let b = m[1][l] - m[2][l];
        let c = m[3][l] + m[4][l];
        let d = m[3][l] - m[4][l];
        o[0][l] = (m[0][l] + a) + c;
        o[1][l] = b + c2 * d;
        o[2][l] = a + c4 * c;
        o[3][l] = (b + c8 * d) + m[5][l];
    }
    o
}

/// `V = Bᵀ d B` for [`WL`] tiles (see [`WinoInFn`]).
#[inline(always)]
pub fn wino_input<T: Scalar>(d: &[Lanes<T>; WX], v: &mut [T], vstride: usize) {
    assert!(v.len() >= (WX - 1) * vstride + WL, "transformed input buffer too short");
    // Columns first (`cols[s][a]` = row `a` of `Bᵀ d`, column `s`), built in place: no
    // zeroed intermediate.
    let cols: [[Lanes<T>; WA]; WA] = std::array::from_fn(|s| bt(std::array::from_fn(|r| &d[r * WA + s])));
    for a in 0..WA {
        let row = bt(std::array::from_fn(|s| &cols[s][a]));
        for (b, r) in row.iter().enumerate() {
            v[(a * WA + b) * vstride..][..WL].copy_from_slice(r);
        }
    }
}

/// `Y = Aᵀ M A + bias` for [`WL`] tiles (see [`WinoOutFn`]).
#[inline(always)]
pub fn wino_output<T: Scalar>(m: &[T], mstride: usize, bias: T, y: &mut [Lanes<T>; WM * WM]) {
    assert!(m.len() >= (WX - 1) * mstride + WL, "GEMM result buffer too short");
    let lanes = |x: usize| -> &Lanes<T> { m[x * mstride..][..WL].try_into().expect("WL lanes") };
    // `cols[b][u]` = row `u` of `Aᵀ M`, column `b`.
    let cols: [[Lanes<T>; WM]; WA] = std::array::from_fn(|b| at(std::array::from_fn(|a| lanes(a * WA + b))));
    for u in 0..WM {
        let row = at(std::array::from_fn(|b| &cols[b][u]));
        for (v, r) in row.iter().enumerate() {
            for (o, &x) in y[u * WM + v].iter_mut().zip(r) {
                *o = x + bias;
            }
        }
    }
}

/// `Bᵀ` of F(4×4, 2×2) applied to five lane arrays (rows `2 −1 −2 1 0`, `0 −2 −1 1 0`,
/// `0 2 −3 1 0`, `0 −1 0 1 0`, `0 2 −1 −2 1`).
#[inline(always)]
pub(crate) fn bt2<T: Scalar>(d: [&Lanes<T>; WA2]) -> [Lanes<T>; WA2] {
    let (c2, c3) = (T::from_f64(2.0), T::from_f64(3.0));
    let mut o = [[T::ZERO; WL]; WA2];
    for l in 0..WL {
        let (d0, d1, d2, d3, d4) = (d[0][l], d[1][l], d[2][l], d[3][l], d[4][l]);
        let a = d3 - d1;
        o[0][l] = a + c2 * (d0 - d2);
        o[1][l] = a - (d1 + d2);
        o[2][l] = a + c3 * (d1 - d2);
        o[3][l] = a;
        o[4][l] = (d4 - d2) - c2 * a;
    }
    o
}

/// `Aᵀ` of F(4×4, 2×2) applied to five lane arrays (rows `1 1 1 1 0`, `0 1 −1 2 0`,
/// `0 1 1 4 0`, `0 1 −1 8 1`).
#[inline(always)]
pub(crate) fn at2<T: Scalar>(m: [&Lanes<T>; WA2]) -> [Lanes<T>; WM] {
    let (c2, c4, c8) = (T::from_f64(2.0), T::from_f64(4.0), T::from_f64(8.0));
    let mut o = [[T::ZERO; WL]; WM];
    for l in 0..WL {
        let s = m[1][l] + m[2][l];
        let t = m[1][l] - m[2][l];
        o[0][l] = (m[0][l] + s) + m[3][l];
        o[1][l] = t + c2 * m[3][l];
        o[2][l] = s + c4 * m[3][l];
        o[3][l] = (t + c8 * m[3][l]) + m[4][l];
    }
    o
}

/// `V = Bᵀ d B` of F(4×4, 2×2) for [`WL`] tiles (see [`WinoInFn`]; patch side 5).
#[inline(always)]
pub fn wino2_input<T: Scalar>(d: &[Lanes<T>; WX], v: &mut [T], vstride: usize) {
    const A: usize = WA2;
    assert!(v.len() >= (A * A - 1) * vstride + WL, "transformed input buffer too short");
    let cols: [[Lanes<T>; A]; A] = std::array::from_fn(|s| bt2(std::array::from_fn(|r| &d[r * A + s])));
    for a in 0..A {
        let row = bt2(std::array::from_fn(|s| &cols[s][a]));
        for (b, r) in row.iter().enumerate() {
            v[(a * A + b) * vstride..][..WL].copy_from_slice(r);
        }
    }
}

/// `Y = Aᵀ M A + bias` of F(4×4, 2×2) for [`WL`] tiles (see [`WinoOutFn`]; 25 rows of `m`).
#[inline(always)]
pub fn wino2_output<T: Scalar>(m: &[T], mstride: usize, bias: T, y: &mut [Lanes<T>; WM * WM]) {
    const A: usize = WA2;
    assert!(m.len() >= (A * A - 1) * mstride + WL, "GEMM result buffer too short");
    let lanes = |x: usize| -> &Lanes<T> { m[x * mstride..][..WL].try_into().expect("WL lanes") };
    let cols: [[Lanes<T>; WM]; A] = std::array::from_fn(|b| at2(std::array::from_fn(|a| lanes(a * A + b))));
    for u in 0..WM {
        let row = at2(std::array::from_fn(|b| &cols[b][u]));
        for (v, r) in row.iter().enumerate() {
            for (o, &x) in y[u * WM + v].iter_mut().zip(r) {
                *o = x + bias;
            }
        }
    }
}

/// Weight-gradient transform of F(3×3, 4×4): a 4×4 tile of the output gradient `h[i·4 + j]`
/// becomes `H = A h Aᵀ` (36 values, `u[ξ·ustride..][..WL]` for `ξ = a·6 + b`), with `A = (Aᵀ)ᵀ`
/// the 6×4 transpose of F(4×4, 3×3)'s output matrix (rows `1 0 0 0`, `1 1 1 1`, `1 −1 1 −1`,
/// `1 2 4 8`, `1 −2 4 −8`, `0 0 0 1`). See [`crate::impls::grad_weight_winograd`].
pub type WinoGradFn<T> = fn(h: &[Lanes<T>; WM * WM], u: &mut [T], ustride: usize);

/// `A` (6×4) applied to four lane arrays.
#[inline(always)]
fn a_col<T: Scalar>(h: [&Lanes<T>; WM]) -> [Lanes<T>; WA] {
    let (c2, c4, c8) = (T::from_f64(2.0), T::from_f64(4.0), T::from_f64(8.0));
    let mut o = [[T::ZERO; WL]; WA];
    for l in 0..WL {
        let (h0, h1, h2, h3) = (h[0][l], h[1][l], h[2][l], h[3][l]);
        let e = h0 + h2;
        let odd = h1 + h3;
        let e4 = h0 + c4 * h2;
        let o8 = c2 * h1 + c8 * h3;
        o[0][l] = h0;
        o[1][l] = e + odd;
        o[2][l] = e - odd;
        o[3][l] = e4 + o8;
        o[4][l] = e4 - o8;
        o[5][l] = h3;
    }
    o
}

/// `H = A h Aᵀ` for [`WL`] lanes (see [`WinoGradFn`]).
#[inline(always)]
pub fn wino_grad_dy<T: Scalar>(h: &[Lanes<T>; WM * WM], u: &mut [T], ustride: usize) {
    assert!(u.len() >= (WX - 1) * ustride + WL, "transformed gradient buffer too short");
    // Columns first (`cols[s][a]` = row `a` of `A h`, column `s`).
    let cols: [[Lanes<T>; WA]; WM] = std::array::from_fn(|s| a_col(std::array::from_fn(|r| &h[r * WM + s])));
    for a in 0..WA {
        let row = a_col(std::array::from_fn(|s| &cols[s][a]));
        for (b, r) in row.iter().enumerate() {
            u[(a * WA + b) * ustride..][..WL].copy_from_slice(r);
        }
    }
}

/// [`wino_grad_dy`], not inlined: the portable kernel.
pub fn wino_grad_dy_generic<T: Scalar>(h: &[Lanes<T>; WM * WM], u: &mut [T], ustride: usize) {
    wino_grad_dy(h, u, ustride)
}

/// The weight gradient's output transform, `z = Gᵀ M G` in `f64` for one output/input channel
/// pair: 36 sums `m[a·6 + b]` to the 3×3 gradient `z[i·3 + j]` (the `G` of [`wino_weight`]).
pub fn wino_grad_out(m: &[f64; WX]) -> [f64; 9] {
    let mut t = [[0.0; WA]; 3];
    for (i, row) in t.iter_mut().enumerate() {
        for (b, v) in row.iter_mut().enumerate() {
            *v = (0..WA).map(|a| WINO_G[a][i] * m[a * WA + b]).sum();
        }
    }
    std::array::from_fn(|x| {
        let (i, j) = (x / 3, x % 3);
        (0..WA).map(|b| t[i][b] * WINO_G[b][j]).sum()
    })
}

/// [`wino2_input`], not inlined: the portable kernel.
pub fn wino2_input_generic<T: Scalar>(d: &[Lanes<T>; WX], v: &mut [T], vstride: usize) {
    wino2_input(d, v, vstride)
}

/// [`wino2_output`], not inlined: the portable kernel.
pub fn wino2_output_generic<T: Scalar>(m: &[T], mstride: usize, bias: T, y: &mut [Lanes<T>; WM * WM]) {
    wino2_output(m, mstride, bias, y)
}

/// `G` of F(4, 2) (5×2).
pub(crate) const WINO2_G: [[f64; 2]; WA2] =
    [[0.5, 0.0], [-0.5, -0.5], [-1.0 / 6.0, 1.0 / 6.0], [1.0 / 6.0, 1.0 / 3.0], [0.0, 1.0]];

/// `U = G g Gᵀ` of F(4×4, 2×2) in `f64` for one 2×2 kernel `g` (row-major), as 25 values
/// `U[a·5 + b]` (the rest of the array zero).
pub fn wino2_weight(g: &[f64; 4]) -> [f64; WX] {
    const G: [[f64; 2]; WA2] = WINO2_G;
    let gg: [[f64; 2]; WA2] =
        std::array::from_fn(|a| std::array::from_fn(|j| G[a][0] * g[j] + G[a][1] * g[2 + j]));
    std::array::from_fn(|x| {
        if x >= WA2 * WA2 {
            return 0.0;
        }
        let (a, b) = (x / WA2, x % WA2);
        gg[a][0] * G[b][0] + gg[a][1] * G[b][1]
    })
}

/// Output channels one call of a fused F(2, 2) kernel computes ([`Wino1F2Fn`]).
pub const F2_ROWS: usize = 8;
/// Elements of `U` per phase channel of a fused F(2, 2) kernel's weight block: 3 per row.
pub const F2_U: usize = 3 * F2_ROWS;
/// Elements of `V` per phase channel and column panel ([`WL`] tiles of 2 outputs).
pub const F2_V: usize = 3 * WL;

/// Fused 1-D Winograd F(2, 2) over `phases` input rows (`fused-winograd-1d`): for every
/// column panel `q < panels` and row `i < rows.len() ≤` [`F2_ROWS`],
/// `M_ξ[l] = Σ_p u[(p·3 + ξ)·F2_ROWS + i] · v[(q·phases + p)·F2_V + ξ·WL + l]` (one fused
/// multiply-add per `p`, in order, from zero; `ξ < 3`, `l < WL`), then
/// `rows[i][q·2·WL + 2l] = (M_0[l] + M_1[l]) + bias[i]` and
/// `rows[i][q·2·WL + 2l + 1] = (M_1[l] + M_2[l]) + bias[i]` (no bias term if `None`). The
/// products stay in registers: no `M` is written.
pub type Wino1F2Fn<T> =
    fn(phases: usize, u: &[T], v: &[T], panels: usize, rows: &mut [&mut [T]], bias: Option<&[T]>);

/// 1-D input transform of F(4, 3) (`a = 6` inputs per tile) or F(4, 2) (`a = 5`) for [`WL`]
/// tiles: lanes `d[s]` (`s < a`) to `v[ξ·vstride..][..WL]` for `ξ < a`.
pub type Wino1InFn<T> = fn(a: usize, d: &[Lanes<T>; WA], v: &mut [T], vstride: usize);
/// 1-D output transform of F(4, 3) or F(4, 2): `m[ξ·mstride..][..WL]` (`ξ < a`) to the tiles'
/// outputs side by side, `y[4·l + u] = (Aᵀ m)[u][l] + bias` for every `4·l + u < y.len()`
/// (at most `4·WL`), plus `add[4·l + u]` after the bias when given (as long as `y`).
pub type Wino1OutFn<T> = fn(a: usize, m: &[T], mstride: usize, bias: T, add: Option<&[T]>, y: &mut [T]);

/// See [`Wino1InFn`].
#[inline(always)]
pub fn wino1_input<T: Scalar>(a: usize, d: &[Lanes<T>; WA], v: &mut [T], vstride: usize) {
    assert!(a == WA || a == WA2, "1-D tiles of {a} inputs");
    assert!(v.len() >= (a - 1) * vstride + WL, "transformed input buffer too short");
    if a == WA {
        for (x, o) in bt(std::array::from_fn(|s| &d[s])).iter().enumerate() {
            v[x * vstride..][..WL].copy_from_slice(o);
        }
    } else {
        for (x, o) in bt2(std::array::from_fn(|s| &d[s])).iter().enumerate() {
            v[x * vstride..][..WL].copy_from_slice(o);
        }
    }
}

/// `Aᵀ m` of [`Wino1OutFn`], without the bias: output `u` of every tile.
#[inline(always)]
pub fn wino1_tiles<T: Scalar>(a: usize, m: &[T], mstride: usize) -> [Lanes<T>; WM] {
    assert!(a == WA || a == WA2, "1-D tiles of {a} inputs");
    assert!(m.len() >= (a - 1) * mstride + WL, "GEMM result buffer too short");
    let lanes = |x: usize| -> &Lanes<T> { m[x * mstride..][..WL].try_into().expect("WL lanes") };
    if a == WA {
        at(std::array::from_fn(lanes))
    } else {
        at2(std::array::from_fn(lanes))
    }
}

/// See [`Wino1OutFn`].
#[inline(always)]
pub fn wino1_output<T: Scalar>(a: usize, m: &[T], mstride: usize, bias: T, add: Option<&[T]>, y: &mut [T]) {
    assert!(y.len() <= WL * WM, "more than {} outputs", WL * WM);
    let o = wino1_tiles(a, m, mstride);
    match add {
        None => {
            for (q, v) in y.iter_mut().enumerate() {
                *v = o[q % WM][q / WM] + bias;
            }
        }
        Some(add) => {
            let add = &add[..y.len()];
            for ((q, v), &e) in y.iter_mut().enumerate().zip(add) {
                *v = (o[q % WM][q / WM] + bias) + e;
            }
        }
    }
}

/// [`wino1_input`], not inlined: the portable kernel.
pub fn wino1_input_generic<T: Scalar>(a: usize, d: &[Lanes<T>; WA], v: &mut [T], vstride: usize) {
    wino1_input(a, d, v, vstride)
}

/// [`wino1_output`], not inlined: the portable kernel.
pub fn wino1_output_generic<T: Scalar>(
    a: usize,
    m: &[T],
    mstride: usize,
    bias: T,
    add: Option<&[T]>,
    y: &mut [T],
) {
    wino1_output(a, m, mstride, bias, add, y)
}

/// [`wino_input`], not inlined: the portable kernel.
pub fn wino_input_generic<T: Scalar>(d: &[Lanes<T>; WX], v: &mut [T], vstride: usize) {
    wino_input(d, v, vstride)
}

/// [`wino_output`], not inlined: the portable kernel.
pub fn wino_output_generic<T: Scalar>(m: &[T], mstride: usize, bias: T, y: &mut [Lanes<T>; WM * WM]) {
    wino_output(m, mstride, bias, y)
}

/// `G` of F(4×4, 3×3) (6×3).
pub(crate) const WINO_G: [[f64; 3]; WA] = [
    [1.0 / 4.0, 0.0, 0.0],
    [-1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0],
    [-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0],
    [1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0],
    [1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0],
    [0.0, 0.0, 1.0],
];

/// `U = G g Gᵀ` in `f64` for one 3×3 kernel `g` (row-major), as 36 values `U[a·6 + b]`.
pub fn wino_weight(g: &[f64; 9]) -> [f64; WX] {
    const G: [[f64; 3]; WA] = WINO_G;
    let mut gg = [[0.0; 3]; WA];
    for (a, row) in gg.iter_mut().enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            *v = (0..3).map(|i| G[a][i] * g[i * 3 + j]).sum();
        }
    }
    std::array::from_fn(|x| {
        let (a, b) = (x / WA, x % WA);
        (0..3).map(|j| gg[a][j] * G[b][j]).sum()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One tile through the F(4×4, 2×2) transforms equals the direct 2×2 correlation.
    #[test]
    fn transforms_compute_a_2x2_correlation() {
        let d: Vec<f64> = (0..WA2 * WA2).map(|i| ((i * 7 + 3) % 11) as f64 - 5.0).collect();
        let g: [f64; 4] = [2.0, -3.0, 1.0, 5.0];
        let mut lanes = [[0.0; WL]; WX];
        for (x, l) in lanes.iter_mut().enumerate().take(WA2 * WA2) {
            l[5] = d[x];
        }
        let mut v = vec![0.0; WX * WL];
        wino2_input_generic(&lanes, &mut v, WL);
        let u = wino2_weight(&g);
        let m: Vec<f64> = (0..WX * WL).map(|i| v[i] * u[i / WL]).collect();
        let mut y = [[0.0; WL]; WM * WM];
        wino2_output_generic(&m, WL, -0.25, &mut y);
        for oy in 0..WM {
            for ox in 0..WM {
                let want: f64 = (0..4).map(|t| g[t] * d[(oy + t / 2) * WA2 + ox + t % 2]).sum::<f64>() - 0.25;
                assert!(
                    (y[oy * WM + ox][5] - want).abs() < 1e-12,
                    "({oy}, {ox}): {} vs {want}",
                    y[oy * WM + ox][5]
                );
            }
        }
    }

    /// One tile through the weight-gradient transforms equals the direct gradient
    /// `Σ_ij h[i][j]·d[i + a][j + b]` of a 3×3 kernel (f64, exact up to rounding at 1e-12).
    #[test]
    fn grad_transforms_compute_a_3x3_weight_gradient() {
        let d: Vec<f64> = (0..WX).map(|i| ((i * 7 + 3) % 11) as f64 - 5.0).collect();
        let h: Vec<f64> = (0..16).map(|i| ((i * 5 + 2) % 9) as f64 - 4.0).collect();
        let mut dl = [[0.0; WL]; WX];
        let mut hl = [[0.0; WL]; WM * WM];
        for (x, l) in dl.iter_mut().enumerate() {
            l[7] = d[x];
        }
        for (x, l) in hl.iter_mut().enumerate() {
            l[7] = h[x];
        }
        let (mut v, mut u) = (vec![0.0; WX * WL], vec![0.0; WX * WL]);
        wino_input_generic(&dl, &mut v, WL);
        wino_grad_dy_generic(&hl, &mut u, WL);
        let m: [f64; WX] = std::array::from_fn(|x| v[x * WL + 7] * u[x * WL + 7]);
        let z = wino_grad_out(&m);
        for a in 0..3 {
            for b in 0..3 {
                let want: f64 = (0..16).map(|t| h[t] * d[(t / 4 + a) * WA + t % 4 + b]).sum();
                assert!((z[a * 3 + b] - want).abs() < 1e-12, "({a}, {b}): {} vs {want}", z[a * 3 + b]);
            }
        }
    }

    /// One tile through the three transforms equals the direct 3×3 correlation (f64, exact
    /// up to rounding at 1e-12).
    #[test]
    fn transforms_compute_a_3x3_correlation() {
        let d: Vec<f64> = (0..WX).map(|i| ((i * 7 + 3) % 11) as f64 - 5.0).collect();
        let g: [f64; 9] = std::array::from_fn(|i| ((i * 5 + 1) % 7) as f64 - 3.0);
        let mut lanes = [[0.0; WL]; WX];
        for (x, l) in lanes.iter_mut().enumerate() {
            l[3] = d[x];
        }
        let mut v = vec![0.0; WX * WL];
        wino_input_generic(&lanes, &mut v, WL);
        let u = wino_weight(&g);
        let m: Vec<f64> = (0..WX * WL).map(|i| v[i] * u[i / WL]).collect();
        let mut y = [[0.0; WL]; WM * WM];
        wino_output_generic(&m, WL, 0.5, &mut y);
        for oy in 0..WM {
            for ox in 0..WM {
                let want: f64 = (0..9).map(|t| g[t] * d[(oy + t / 3) * WA + ox + t % 3]).sum::<f64>() + 0.5;
                assert!(
                    (y[oy * WM + ox][3] - want).abs() < 1e-12,
                    "({oy}, {ox}): {} vs {want}",
                    y[oy * WM + ox][3]
                );
            }
        }
    }
}
