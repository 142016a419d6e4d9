//! Receptive-field arithmetic over a stack of layers, one axis at a time.

/// One layer of a stack, along one axis, for receptive-field arithmetic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerAxis {
    /// Kernel size.
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
    /// Dilation.
    pub dilation: usize,
    /// Padding at the start of the axis.
    pub pad_begin: usize,
}

/// Receptive field of one output of a layer stack, along one axis, in input coordinates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReceptiveField {
    /// Size r: how many input positions one output sees.
    pub size: u64,
    /// Jump j: distance in the input between neighbouring outputs (the effective stride).
    pub jump: u64,
    /// Centre of the first output's field, input position 0 being the first input's centre.
    pub start: f64,
}

/// Receptive field after each layer of a stack: `j_l = j_{l−1}·s_l`,
/// `r_l = r_{l−1} + (k_eff,l − 1)·j_{l−1}`, `start_l = start_{l−1} + ((k_eff,l − 1)/2 − p_l)·j_{l−1}`.
///
/// ```
/// use convkit::{receptive_field, LayerAxis};
/// let l = |s| LayerAxis { kernel: 3, stride: s, dilation: 1, pad_begin: 0 };
/// let rf = receptive_field(&[l(1), l(2), l(1)]);
/// assert_eq!(rf.last().unwrap().size, 9);
/// ```
pub fn receptive_field(layers: &[LayerAxis]) -> Vec<ReceptiveField> {
    let mut cur = ReceptiveField::INPUT;
    layers
        .iter()
        .map(|l| {
            cur = cur.then(l);
            cur
        })
        .collect()
}

impl ReceptiveField {
    /// The field of the input itself: one position, jump 1, centred on position 0.
    pub const INPUT: ReceptiveField = ReceptiveField { size: 1, jump: 1, start: 0.0 };

    /// The field after one more layer `l` (one step of [`receptive_field`]'s recurrence), with
    /// saturating arithmetic so absurd stacks cannot overflow.
    ///
    /// ```
    /// use convkit::{LayerAxis, ReceptiveField};
    /// let f = ReceptiveField::INPUT.then(&LayerAxis { kernel: 7, stride: 2, dilation: 1, pad_begin: 3 });
    /// assert_eq!((f.size, f.jump, f.start), (7, 2, 0.0));
    /// ```
    pub fn then(&self, l: &LayerAxis) -> ReceptiveField {
        let eff = (l.dilation as u64).saturating_mul(l.kernel.max(1) as u64 - 1).saturating_add(1);
        ReceptiveField {
            size: self.size.saturating_add((eff - 1).saturating_mul(self.jump)),
            jump: self.jump.saturating_mul(l.stride as u64),
            start: self.start + ((eff - 1) as f64 / 2.0 - l.pad_begin as f64) * self.jump as f64,
        }
    }
}
