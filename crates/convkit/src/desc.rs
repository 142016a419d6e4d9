//! Plain descriptors of a convolution, transposed convolution or pooling: what the caller
//! asks for, before it is checked against tensor shapes (that happens in [`crate::shape`]).
//! Also the parsers for the command line's vocabulary (`"2,1"`, `"same"`, `"reflect"`…),
//! kept here so the library, the CLI and later front ends share one grammar.

use crate::error::{Error, Result};
use std::fmt;
use std::str::FromStr;

/// How far the input is padded on each side of each spatial axis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Padding {
    /// Explicit amounts. One value: every side of every axis; one per axis: symmetric;
    /// twice the number of axes: all begins, then all ends (ONNX `pads` order).
    Explicit(Vec<usize>),
    /// No padding.
    Valid,
    /// Output size `ceil(in / stride)`; the total padding is split evenly, the odd extra at the end.
    Same,
    /// As [`Padding::Same`], the odd extra at the start.
    SameLower,
    /// `dilation·(kernel−1)` on each side: every partial overlap produces an output.
    Full,
}

impl Default for Padding {
    fn default() -> Self {
        Padding::Explicit(vec![0])
    }
}

impl Padding {
    /// The same amount on every side of every axis.
    pub fn uniform(p: usize) -> Self {
        Padding::Explicit(vec![p])
    }

    /// Separate begin and end amounts per axis.
    pub fn asymmetric(begin: &[usize], end: &[usize]) -> Self {
        Padding::Explicit(begin.iter().chain(end).copied().collect())
    }
}

impl FromStr for Padding {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim() {
            "valid" => Ok(Padding::Valid),
            "same" | "same-upper" => Ok(Padding::Same),
            "same-lower" => Ok(Padding::SameLower),
            "full" => Ok(Padding::Full),
            other => parse_list("padding", other).map(Padding::Explicit),
        }
    }
}

impl fmt::Display for Padding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Padding::Explicit(v) => write!(f, "{}", join(v)),
            Padding::Valid => f.write_str("valid"),
            Padding::Same => f.write_str("same"),
            Padding::SameLower => f.write_str("same-lower"),
            Padding::Full => f.write_str("full"),
        }
    }
}

/// The values the input is padded with.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum PadMode {
    /// Zeros.
    #[default]
    Zeros,
    /// A constant value.
    Constant(f64),
    /// Mirror without repeating the edge (`dcb|abcd|cba`); each pad must be smaller than the axis.
    Reflect,
    /// Mirror repeating the edge (`cba|abcd|dcb`, NumPy's `symmetric`); pad ≤ axis size.
    Symmetric,
    /// Repeat the edge value (`aaa|abcd|ddd`).
    Replicate,
    /// Wrap around (`bcd|abcd|abc`); pad ≤ axis size.
    Circular,
}

impl FromStr for PadMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        Ok(match s {
            "zeros" | "zero" => PadMode::Zeros,
            "reflect" => PadMode::Reflect,
            "symmetric" => PadMode::Symmetric,
            "replicate" | "edge" => PadMode::Replicate,
            "circular" | "wrap" => PadMode::Circular,
            _ => {
                if let Some(v) = s.strip_prefix("constant:") {
                    let v: f64 = v
                        .parse()
                        .map_err(|_| Error::arg("padding-mode", s, "constant:V needs a number V"))?;
                    if !v.is_finite() {
                        return Err(Error::arg("padding-mode", s, "the constant must be finite"));
                    }
                    PadMode::Constant(v)
                } else {
                    return Err(Error::arg(
                        "padding-mode",
                        s,
                        "expected zeros, constant:V, reflect, symmetric, replicate or circular",
                    ));
                }
            }
        })
    }
}

impl fmt::Display for PadMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PadMode::Zeros => f.write_str("zeros"),
            PadMode::Constant(v) => write!(f, "constant:{v}"),
            PadMode::Reflect => f.write_str("reflect"),
            PadMode::Symmetric => f.write_str("symmetric"),
            PadMode::Replicate => f.write_str("replicate"),
            PadMode::Circular => f.write_str("circular"),
        }
    }
}

/// Where the channel axis sits in data tensors. Weights always keep their own order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layout {
    /// `(N, C, D, H, W)`: channels first (PyTorch's default).
    #[default]
    Nchw,
    /// `(N, D, H, W, C)`: channels last.
    Nhwc,
}

impl FromStr for Layout {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "nchw" | "ncw" | "ncdhw" | "channels-first" => Ok(Layout::Nchw),
            "nhwc" | "nwc" | "ndhwc" | "channels-last" => Ok(Layout::Nhwc),
            _ => Err(Error::arg("layout", s, "expected nchw or nhwc")),
        }
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layout::Nchw => "nchw",
            Layout::Nhwc => "nhwc",
        })
    }
}

/// A convolution (cross-correlation unless `flip`), PyTorch semantics.
///
/// Per-axis options (`stride`, `dilation`) hold one value for every axis or one per axis;
/// an empty list means the default 1.
///
/// ```
/// use convkit::{ConvDesc, Padding};
/// let d = ConvDesc::new().stride([2]).padding(Padding::Same).groups(1);
/// assert_eq!(d.stride, vec![2]);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ConvDesc {
    /// Step between kernel placements, per axis.
    pub stride: Vec<usize>,
    /// Spacing between kernel taps, per axis (effective kernel `d·(k−1)+1`).
    pub dilation: Vec<usize>,
    /// Padding amounts or a named rule.
    pub padding: Padding,
    /// The values padded with.
    pub padding_mode: PadMode,
    /// Number of groups; divides input and output channels.
    pub groups: usize,
    /// Reverse the kernel on every spatial axis: true convolution instead of cross-correlation.
    pub flip: bool,
    /// Data layout of input and output.
    pub layout: Layout,
}

impl Default for ConvDesc {
    fn default() -> Self {
        ConvDesc {
            stride: vec![1],
            dilation: vec![1],
            padding: Padding::default(),
            padding_mode: PadMode::Zeros,
            groups: 1,
            flip: false,
            layout: Layout::Nchw,
        }
    }
}

macro_rules! builders {
    ($t:ty { $($vec:ident),* } { $($field:ident : $ft:ty),* }) => {
        impl $t {
            $(
                #[doc = concat!("Set `", stringify!($vec), "` (one value for all axes, or one per axis).")]
                pub fn $vec(mut self, v: impl AsRef<[usize]>) -> Self {
                    self.$vec = v.as_ref().to_vec();
                    self
                }
            )*
            $(
                #[doc = concat!("Set `", stringify!($field), "`.")]
                pub fn $field(mut self, v: $ft) -> Self {
                    self.$field = v;
                    self
                }
            )*
        }
    };
}

impl ConvDesc {
    /// The default: stride 1, dilation 1, no padding, one group, cross-correlation, NCHW.
    pub fn new() -> Self {
        Self::default()
    }
}
builders!(ConvDesc { stride, dilation } { padding: Padding, padding_mode: PadMode, groups: usize, flip: bool, layout: Layout });

/// A transposed convolution (the adjoint of [`ConvDesc`]'s convolution with zero padding).
///
/// Weight shape `(C, K/groups, kernel…)`. Output size per axis
/// `(in−1)·s − pb − pe + d·(k−1) + 1 + output_padding`.
///
/// ```
/// use convkit::ConvTransposeDesc;
/// let d = ConvTransposeDesc::new().stride([2]).output_padding([1]);
/// assert_eq!(d.output_padding, vec![1]);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ConvTransposeDesc {
    /// Stride of the forward convolution this is the transpose of.
    pub stride: Vec<usize>,
    /// Dilation, per axis.
    pub dilation: Vec<usize>,
    /// Padding of the forward convolution: cropped from the output (begin at the start, end at the end).
    pub padding: Padding,
    /// Extra size added at the end of each axis (< max(stride, dilation)).
    pub output_padding: Vec<usize>,
    /// Number of groups.
    pub groups: usize,
    /// Reverse the kernel on every spatial axis.
    pub flip: bool,
    /// Data layout of input and output.
    pub layout: Layout,
}

impl Default for ConvTransposeDesc {
    fn default() -> Self {
        ConvTransposeDesc {
            stride: vec![1],
            dilation: vec![1],
            padding: Padding::default(),
            output_padding: vec![0],
            groups: 1,
            flip: false,
            layout: Layout::Nchw,
        }
    }
}

impl ConvTransposeDesc {
    /// Defaults: stride 1, dilation 1, no padding or output padding, one group, NCHW.
    pub fn new() -> Self {
        Self::default()
    }
}
builders!(ConvTransposeDesc { stride, dilation, output_padding } { padding: Padding, groups: usize, flip: bool, layout: Layout });

/// Which reduction a pooling layer applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolKind {
    /// Maximum over the window (padding never wins).
    Max,
    /// Mean over the window.
    Avg,
    /// Maximum over the whole spatial extent.
    GlobalMax,
    /// Mean over the whole spatial extent.
    GlobalAvg,
}

impl FromStr for PoolKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim() {
            "max" => Ok(PoolKind::Max),
            "avg" | "average" => Ok(PoolKind::Avg),
            "global-max" => Ok(PoolKind::GlobalMax),
            "global-avg" => Ok(PoolKind::GlobalAvg),
            _ => Err(Error::arg("pool kind", s, "expected max, avg, global-max or global-avg")),
        }
    }
}

impl fmt::Display for PoolKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PoolKind::Max => "max",
            PoolKind::Avg => "avg",
            PoolKind::GlobalMax => "global-max",
            PoolKind::GlobalAvg => "global-avg",
        })
    }
}

/// A pooling layer, PyTorch semantics.
///
/// An empty `stride` means "equal to the kernel". Global kinds ignore kernel, stride,
/// padding and dilation and reduce every spatial axis to size 1.
///
/// ```
/// use convkit::{PoolDesc, PoolKind};
/// let d = PoolDesc::new(PoolKind::Max).kernel([2]).ceil_mode(true);
/// assert!(d.stride.is_empty());
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PoolDesc {
    /// Reduction.
    pub kind: PoolKind,
    /// Window size per axis.
    pub kernel: Vec<usize>,
    /// Step per axis; empty = kernel.
    pub stride: Vec<usize>,
    /// Padding (never part of a maximum; counted by `avg` when `count_include_pad`).
    pub padding: Padding,
    /// Spacing between window taps.
    pub dilation: Vec<usize>,
    /// Round the output size up (a last window starting past input + begin padding is dropped).
    pub ceil_mode: bool,
    /// For `avg`: divide by the taps inside input + padding (true) or inside the input only.
    pub count_include_pad: bool,
    /// Data layout of input and output.
    pub layout: Layout,
}

impl PoolDesc {
    /// A pooling of the given kind with kernel 1, stride = kernel, no padding.
    pub fn new(kind: PoolKind) -> Self {
        PoolDesc {
            kind,
            kernel: vec![1],
            stride: vec![],
            padding: Padding::default(),
            dilation: vec![1],
            ceil_mode: false,
            count_include_pad: true,
            layout: Layout::Nchw,
        }
    }
}
builders!(PoolDesc { kernel, stride, dilation } { padding: Padding, ceil_mode: bool, count_include_pad: bool, layout: Layout });

/// Parse a comma-separated list of non-negative integers (`"3"`, `"2,1,1"`).
pub fn parse_list(arg: &str, s: &str) -> Result<Vec<usize>> {
    let s = s.trim();
    if s.is_empty() {
        return Err(Error::arg(arg, "''", "expected one or more integers"));
    }
    s.split(',')
        .map(|p| {
            p.trim()
                .parse::<usize>()
                .map_err(|_| Error::arg(arg, s, "expected non-negative integers separated by commas"))
        })
        .collect()
}

pub(crate) fn join(v: &[usize]) -> String {
    v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_cli_vocabulary() {
        assert_eq!("same".parse::<Padding>().unwrap(), Padding::Same);
        assert_eq!("1,2,3,4".parse::<Padding>().unwrap(), Padding::Explicit(vec![1, 2, 3, 4]));
        assert!("1,-2".parse::<Padding>().is_err());
        assert!("".parse::<Padding>().is_err());
        assert_eq!("constant:2.5".parse::<PadMode>().unwrap(), PadMode::Constant(2.5));
        assert!("constant:nan".parse::<PadMode>().is_err());
        assert!("mirror".parse::<PadMode>().is_err());
        assert_eq!("NHWC".parse::<Layout>().unwrap(), Layout::Nhwc);
        assert_eq!(Padding::asymmetric(&[1, 2], &[3, 4]), Padding::Explicit(vec![1, 2, 3, 4]));
    }
}
