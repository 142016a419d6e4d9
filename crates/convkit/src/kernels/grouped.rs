//! The grouped direct band kernel's contract ([`GroupBand`]) and its portable body: a band of
//! output rows of one group of a grouped convolution with few channels per group, read from
//! staged (padded, phase-split) input rows, vectorized across output columns.

use crate::scalar::Scalar;

/// Output channels per block of the packed weights: a group's `kg` output channels are
/// packed in blocks of `GROUP_KB` (the last block shorter), every level alike.
pub const GROUP_KB: usize = 4;

/// Elements a kernel may read past the last position a band needs, in the last row of the
/// last channel (SIMD kernels load whole vectors over the row's tail; lanes past `wout` are
/// discarded). Sources hold this many extra elements after the band.
pub const GROUP_SLACK: usize = 16;

/// A band of `rows` output rows of one group, from staged input.
///
/// Output `(k, r, ox)` (output channel `k < kg` of the group, band row `r`, column `ox`) is
/// `Σ_{ci, ky, kx} w(k, ci, ky, kx) · x[ci·chan + (r·sh + ky·dh)·pitch + cols[kx] + ox]`,
/// summed over `ci`, then `ky`, then `kx` in order, then `+ bias[k]`; it is written to
/// `y[k·plane + y0 + r·wout + ox]`. The weights are packed in blocks of [`GROUP_KB`] output
/// channels: block `b` (channels `k0 = b·GROUP_KB ..`, `kb = min(GROUP_KB, kg − k0)` of them)
/// starts at `k0·cg·kh·kw` and holds `[ci][ky][kx][kb]`.
pub struct GroupBand<'a, T> {
    /// Staged input: `cg` channels of `chan` elements, rows of `pitch`.
    pub x: &'a [T],
    /// Input channels per group.
    pub cg: usize,
    /// Elements per staged channel.
    pub chan: usize,
    /// Staged row length.
    pub pitch: usize,
    /// Per inner tap, its offset within a staged row for output column 0.
    pub cols: &'a [usize],
    /// Outer kernel size.
    pub kh: usize,
    /// Outer stride (in staged rows).
    pub sh: usize,
    /// Outer dilation (in staged rows).
    pub dh: usize,
    /// Packed weights of the group (see the type's documentation).
    pub w: &'a [T],
    /// Output channels per group.
    pub kg: usize,
    /// Per output channel of the group, added after the sums.
    pub bias: Option<&'a [T]>,
    /// Output rows in the band.
    pub rows: usize,
    /// Outputs per row.
    pub wout: usize,
    /// Elements per output plane (the distance between the group's output channels in `y`).
    pub plane: usize,
    /// Offset of the band's first output row within each plane.
    pub y0: usize,
}

impl<T> GroupBand<'_, T> {
    /// Check that every read lies in `x` (with `slack` elements allowed past the last needed
    /// one, for whole-vector loads), the weights and biases are complete and every write lies
    /// in `y` (`y_len` elements). Kernels rely on this; it panics otherwise.
    pub fn check(&self, slack: usize, y_len: usize) {
        let kw = self.cols.len();
        assert!(
            self.cg >= 1 && self.kg >= 1 && self.kh >= 1 && kw >= 1 && self.sh >= 1 && self.dh >= 1,
            "empty group or kernel"
        );
        let taps = self.cg.checked_mul(self.kh * kw).and_then(|t| t.checked_mul(self.kg));
        assert!(taps.is_some_and(|t| t <= self.w.len()), "grouped band weights incomplete");
        assert!(self.bias.is_none_or(|b| b.len() >= self.kg), "grouped band biases incomplete");
        if self.rows == 0 || self.wout == 0 {
            return;
        }
        let last_row = (self.rows - 1) * self.sh + (self.kh - 1) * self.dh;
        let end = last_row
            .checked_mul(self.pitch)
            .and_then(|o| o.checked_add((self.cg - 1).checked_mul(self.chan)?))
            .and_then(|o| o.checked_add(self.cols.iter().copied().max().unwrap_or(0)))
            .and_then(|o| o.checked_add(self.wout.checked_add(slack)?));
        assert!(end.is_some_and(|e| e <= self.x.len()), "grouped band reads past its source");
        assert!(self.wout <= self.pitch && self.chan >= (last_row + 1) * self.pitch, "staged rows overlap");
        let yend = (self.kg - 1)
            .checked_mul(self.plane)
            .and_then(|o| o.checked_add(self.y0))
            .and_then(|o| o.checked_add(self.rows.checked_mul(self.wout)?));
        assert!(yend.is_some_and(|e| e <= y_len), "grouped band writes past its output");
        assert!(self.y0 + self.rows * self.wout <= self.plane, "output planes overlap");
    }
}

/// Signature of a grouped band kernel: computes the band into `y` as [`GroupBand`] says.
pub type GroupedFn<T> = fn(&GroupBand<'_, T>, &mut [T]);

/// Columns of the portable kernel's blocks.
const GB: usize = 8;

/// `grouped_band:generic`: the portable grouped band kernel, [`GROUP_KB`] output channels ×
/// up to 8 columns per block, plain (unfused) multiply and add.
pub fn grouped_band<T: Scalar>(b: &GroupBand<'_, T>, y: &mut [T]) {
    b.check(0, y.len());
    let kw = b.cols.len();
    let taps = b.cg * b.kh * kw;
    for k0 in (0..b.kg).step_by(GROUP_KB) {
        let kb = GROUP_KB.min(b.kg - k0);
        let w = &b.w[k0 * taps..][..kb * taps];
        for r in 0..b.rows {
            for ox in (0..b.wout).step_by(GB) {
                let n = GB.min(b.wout - ox);
                let mut acc = [[T::ZERO; GB]; GROUP_KB];
                let mut wi = 0;
                for ci in 0..b.cg {
                    for ky in 0..b.kh {
                        let row = &b.x[ci * b.chan + (r * b.sh + ky * b.dh) * b.pitch + ox..];
                        for &c in b.cols {
                            let xs = &row[c..c + n];
                            for (a, &wv) in acc.iter_mut().zip(&w[wi..wi + kb]) {
                                for (s, &xv) in a.iter_mut().zip(xs) {
                                    *s = *s + wv * xv;
                                }
                            }
                            wi += kb;
                        }
                    }
                }
                for (j, a) in acc.iter().enumerate().take(kb) {
                    let k = k0 + j;
                    let bias = b.bias.map_or(T::ZERO, |bs| bs[k]);
                    let dst = &mut y[k * b.plane + b.y0 + r * b.wout + ox..][..n];
                    for (d, &s) in dst.iter_mut().zip(a) {
                        *d = if b.bias.is_some() { s + bias } else { s };
                    }
                }
            }
        }
    }
}
