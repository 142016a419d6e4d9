//! The reference implementation as a plan entry (single-threaded, f64 accumulation).

use super::ConvImpl;
use crate::scalar::Scalar;
use crate::shape::ConvProblem;

/// Plain loops from the definition; see [`crate::reference`].
pub struct Reference<T> {
    p: ConvProblem,
    w: Vec<T>,
}

impl<T: Scalar> Reference<T> {
    /// Keep a copy of the weights.
    pub fn new(p: &ConvProblem, w: &[T]) -> Self {
        Reference { p: p.clone(), w: w.to_vec() }
    }
}

impl<T: Scalar> ConvImpl<T> for Reference<T> {
    fn name(&self) -> String {
        "reference".into()
    }
    fn workspace(&self, _threads: usize) -> usize {
        0
    }
    fn execute(&self, x: &[T], bias: Option<&[T]>, y: &mut [T], _ws: &mut [T], _threads: usize) {
        crate::reference::conv_forward(&self.p, x, &self.w, bias, y);
    }
}
