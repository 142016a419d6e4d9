//! Index geometry shared by the reference and the fast paths: where a padded position reads
//! from, the value padding holds, the per-axis tap tables of a sliding window, and flat-index
//! arithmetic. A leaf module: it depends only on the problem's description.

use crate::desc::PadMode;
use crate::shape::Axis;

/// Where padded position `p` (which may be negative or past the end) reads from in an axis of
/// size `n`; `None` means the padding constant. Validation guarantees the mode's pad limits.
pub(crate) fn pad_source(p: isize, n: usize, mode: PadMode) -> Option<usize> {
    let ni = n as isize;
    if (0..ni).contains(&p) {
        return Some(p as usize);
    }
    let i = match mode {
        PadMode::Zeros | PadMode::Constant(_) => return None,
        PadMode::Replicate => p.clamp(0, ni - 1),
        PadMode::Circular => p.rem_euclid(ni),
        PadMode::Reflect => {
            if n == 1 {
                0
            } else {
                // Mirror about the edge elements, period 2(n−1).
                let period = 2 * (ni - 1);
                let q = p.rem_euclid(period);
                if q < ni {
                    q
                } else {
                    period - q
                }
            }
        }
        PadMode::Symmetric => {
            // Mirror about the edges themselves, period 2n.
            let q = p.rem_euclid(2 * ni);
            if q < ni {
                q
            } else {
                2 * ni - 1 - q
            }
        }
    };
    Some(i as usize)
}

/// The value padding positions hold.
pub(crate) fn pad_value(mode: PadMode) -> f64 {
    match mode {
        PadMode::Constant(v) => v,
        _ => 0.0,
    }
}

/// For one axis of a sliding window: `table[o * kernel + t]` is the input index kernel tap `t`
/// of output `o` reads (`None`: padding constant). `flip` reverses the taps.
pub(crate) fn tap_table(ax: &Axis, flip: bool, mode: PadMode) -> Vec<Option<usize>> {
    let mut table = Vec::with_capacity(ax.output * ax.kernel);
    for o in 0..ax.output {
        for t in 0..ax.kernel {
            let tt = if flip { ax.kernel - 1 - t } else { t };
            let p = (o * ax.stride + tt * ax.dilation) as isize - ax.pad_begin as isize;
            table.push(pad_source(p, ax.input, mode));
        }
    }
    table
}

/// Split flat index `i` over `dims` (row-major) into `out`.
pub(crate) fn unravel(mut i: usize, dims: &[usize], out: &mut [usize]) {
    for a in (0..dims.len()).rev() {
        out[a] = i % dims[a];
        i /= dims[a];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_modes_read_the_documented_elements() {
        // abcd padded by 3 on each side.
        let read = |mode| -> Vec<Option<usize>> { (-3..7).map(|p| pad_source(p, 4, mode)).collect() };
        let s = |v: &[usize]| v.iter().map(|&i| Some(i)).collect::<Vec<_>>();
        assert_eq!(read(PadMode::Reflect), s(&[3, 2, 1, 0, 1, 2, 3, 2, 1, 0]));
        assert_eq!(read(PadMode::Symmetric), s(&[2, 1, 0, 0, 1, 2, 3, 3, 2, 1]));
        assert_eq!(read(PadMode::Replicate), s(&[0, 0, 0, 0, 1, 2, 3, 3, 3, 3]));
        assert_eq!(read(PadMode::Circular), s(&[1, 2, 3, 0, 1, 2, 3, 0, 1, 2]));
        assert_eq!(read(PadMode::Zeros)[0], None);
        assert_eq!(read(PadMode::Zeros)[3], Some(0));
    }
}
