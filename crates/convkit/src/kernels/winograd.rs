//! Winograd F(4×4, 3×3) transforms (Lavin & Gray's points 0, ±1, ±2, ∞), portable and
//! generic over the element type; `x86_64` compiles the same code with AVX2 enabled.
//!
//! A 6×6 input patch `d` becomes `V = Bᵀ d B`, a 3×3 kernel `g` becomes `U = G g Gᵀ`, and the
//! 36 products `M = U ⊙ V` (summed over input channels by GEMMs) become a 4×4 output tile
//! `Y = Aᵀ M A`. The transforms work on [`WL`] tiles at once ("lanes"), one array of lanes per
//! patch element, so that every operation is a vector operation across tiles.

use crate::scalar::Scalar;

/// Tiles transformed together: one GEMM column panel (the Winograd implementation runs on
/// kernel sets whose tiles are this wide).
pub const WL: usize = 16;
/// One value per tile of a group of [`WL`] tiles.
pub type Lanes<T> = [T; WL];
/// Input patch side (`4 + 3 − 1`).
pub const WA: usize = 6;
/// Transformed elements per tile (`6 × 6`).
pub const WX: usize = WA * WA;
/// Output tile side.
pub const WM: usize = 4;

/// Input transform: `d[r·6 + s]` (patch row `r`, column `s`) to `v[ξ·vstride..][..WL]` for
/// `ξ = a·6 + b`.
pub type WinoInFn<T> = fn(d: &[Lanes<T>; WX], v: &mut [T], vstride: usize);
/// Output transform: `m[ξ·mstride..][..WL]` to `y[u·4 + v]` (tile row `u`, column `v`), plus
/// `bias`.
pub type WinoOutFn<T> = fn(m: &[T], mstride: usize, bias: T, y: &mut [Lanes<T>; WM * WM]);

/// `Bᵀ` applied to six lane arrays (one column of the patch).
#[inline(always)]
fn bt<T: Scalar>(d: [&Lanes<T>; WA]) -> [Lanes<T>; WA] {
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
fn at<T: Scalar>(m: [&Lanes<T>; WA]) -> [Lanes<T>; WM] {
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

/// [`wino_input`], not inlined: the portable kernel.
pub fn wino_input_generic<T: Scalar>(d: &[Lanes<T>; WX], v: &mut [T], vstride: usize) {
    wino_input(d, v, vstride)
}

/// [`wino_output`], not inlined: the portable kernel.
pub fn wino_output_generic<T: Scalar>(m: &[T], mstride: usize, bias: T, y: &mut [Lanes<T>; WM * WM]) {
    wino_output(m, mstride, bias, y)
}

/// `U = G g Gᵀ` in `f64` for one 3×3 kernel `g` (row-major), as 36 values `U[a·6 + b]`.
pub fn wino_weight(g: &[f64; 9]) -> [f64; WX] {
    const G: [[f64; 3]; WA] = [
        [1.0 / 4.0, 0.0, 0.0],
        [-1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0],
        [-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0],
        [1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0],
        [1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0],
        [0.0, 0.0, 1.0],
    ];
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
