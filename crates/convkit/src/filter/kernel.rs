//! 2-D filter kernels and the `--kernel` vocabulary: the named bank (`sobel-x`, `gaussian:1.5`…),
//! inline matrices (`"1,0,-1;2,0,-2;1,0,-1"`) and `.npy` files. Every constructor checks its
//! input (sizes, finiteness) and returns an error naming the spec instead of panicking.

use crate::error::{Error, Result};
use crate::npy::read_npy;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

/// Largest side a named kernel may have: keeps `gaussian:1e9` an error, not an allocation failure.
pub const MAX_NAMED_SIZE: usize = 2049;

/// A 2-D kernel of `f64` weights applied by cross-correlation (the deep-learning and
/// OpenCV `filter2D` convention), optionally known to be separable into a column and a row.
///
/// ```
/// use convkit::filter::Kernel;
/// let k = Kernel::new("diff", 1, 3, vec![-1.0, 0.0, 1.0]).unwrap();
/// assert_eq!((k.rows(), k.cols(), k.sum()), (1, 3, 0.0));
/// assert!(Kernel::new("bad", 1, 2, vec![1.0, f64::NAN]).is_err());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Kernel {
    name: String,
    rows: usize,
    cols: usize,
    weights: Vec<f64>,
    factors: Option<(Vec<f64>, Vec<f64>)>,
}

impl Kernel {
    /// A dense `rows × cols` kernel from row-major `weights`, which must be finite.
    pub fn new(name: impl Into<String>, rows: usize, cols: usize, weights: Vec<f64>) -> Result<Self> {
        let name = name.into();
        if rows == 0 || cols == 0 {
            return Err(Error::arg("kernel", &name, format!("is empty ({rows}x{cols})")));
        }
        let n = rows.checked_mul(cols).ok_or_else(|| Error::too_large("kernel", &[rows, cols]))?;
        if n != weights.len() {
            return Err(Error::arg(
                "kernel",
                &name,
                format!("{rows}x{cols} needs {n} weights, got {}", weights.len()),
            ));
        }
        if let Some(v) = weights.iter().find(|v| !v.is_finite()) {
            return Err(Error::arg("kernel", &name, format!("weights must be finite, found {v}")));
        }
        Ok(Kernel { name, rows, cols, weights, factors: None })
    }

    /// The separable kernel `column ⊗ row` (weight `(i, j)` is `column[i]·row[j]`), which the
    /// filter runs as two 1-D passes.
    ///
    /// ```
    /// use convkit::filter::Kernel;
    /// let k = Kernel::separable("smooth", vec![1.0, 2.0, 1.0], vec![-1.0, 0.0, 1.0]).unwrap();
    /// assert_eq!(&k.weights()[..3], &[-1.0, 0.0, 1.0]);
    /// assert!(k.factors().is_some());
    /// ```
    pub fn separable(name: impl Into<String>, column: Vec<f64>, row: Vec<f64>) -> Result<Self> {
        let name = name.into();
        let (r, c) = (column.len(), row.len());
        let outer = column.iter().flat_map(|a| row.iter().map(move |b| a * b)).collect();
        let mut k = Kernel::new(name, r, c, outer)?;
        k.factors = Some((column, row));
        Ok(k)
    }

    /// The name the kernel was made from (its `--kernel` spec).
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Number of rows (height).
    pub fn rows(&self) -> usize {
        self.rows
    }
    /// Number of columns (width).
    pub fn cols(&self) -> usize {
        self.cols
    }
    /// Row-major weights.
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }
    /// The column and row factors of a separable kernel.
    pub fn factors(&self) -> Option<(&[f64], &[f64])> {
        self.factors.as_ref().map(|(c, r)| (&c[..], &r[..]))
    }
    /// Sum of the weights: 1 for smoothing kernels, 0 for derivatives.
    pub fn sum(&self) -> f64 {
        self.weights.iter().sum()
    }

    /// This kernel zero-padded to `rows × cols` so that, under `same` padding, it reads the same
    /// pixels as before (the centre keeps its `same` position, `(k−1)/2` rounded down). Used to
    /// stack kernels of different sizes into one filter bank.
    ///
    /// ```
    /// use convkit::filter::Kernel;
    /// let k = Kernel::new("d", 1, 2, vec![1.0, -1.0]).unwrap().embed(3, 3).unwrap();
    /// assert_eq!(k.weights(), &[0.0, 0.0, 0.0, 0.0, 1.0, -1.0, 0.0, 0.0, 0.0]);
    /// ```
    pub fn embed(&self, rows: usize, cols: usize) -> Result<Kernel> {
        if rows < self.rows || cols < self.cols {
            return Err(Error::arg(
                "kernel",
                &self.name,
                format!("{}x{} does not fit in {rows}x{cols}", self.rows, self.cols),
            ));
        }
        let r0 = (rows - 1) / 2 - (self.rows - 1) / 2;
        let c0 = (cols - 1) / 2 - (self.cols - 1) / 2;
        let n = rows.checked_mul(cols).ok_or_else(|| Error::too_large("kernel", &[rows, cols]))?;
        let mut w = vec![0.0; n];
        for (i, row) in self.weights.chunks(self.cols).enumerate() {
            w[(r0 + i) * cols + c0..][..self.cols].copy_from_slice(row);
        }
        Kernel::new(self.name.clone(), rows, cols, w)
    }

    /// The matrix as text, one line per row, values right-aligned (`"-1  0  1"`), for display.
    pub fn to_matrix_string(&self) -> String {
        let cells: Vec<String> = self.weights.iter().map(|&v| fmt_weight(v)).collect();
        let width = cells.iter().map(|c| c.chars().count()).max().unwrap_or(1);
        cells
            .chunks(self.cols)
            .map(|row| row.iter().map(|c| format!("{c:>width$}")).collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// A weight printed briefly: integers as such, others with up to four significant decimals.
fn fmt_weight(v: f64) -> String {
    if v == v.round() && v.abs() < 1e9 {
        format!("{}", v as i64)
    } else {
        let s = format!("{v:.4}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        if s == "-0" {
            "0".into()
        } else {
            s.to_string()
        }
    }
}

/// One entry of a `--kernel` stack: a linear kernel, or the gradient magnitude of a pair of
/// derivative kernels (`sobel`, `scharr`, `prewitt`).
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// Cross-correlation with one kernel.
    Linear(Kernel),
    /// `sqrt(x² + y²)` of the responses to two kernels of the same size.
    Magnitude {
        /// The spec it came from (`sobel`).
        name: String,
        /// Horizontal-derivative kernel.
        x: Kernel,
        /// Vertical-derivative kernel.
        y: Kernel,
    },
}

impl Filter {
    /// The spec this filter was made from.
    pub fn name(&self) -> &str {
        match self {
            Filter::Linear(k) => k.name(),
            Filter::Magnitude { name, .. } => name,
        }
    }

    /// The kernels it convolves with (one, or two for a magnitude).
    pub fn kernels(&self) -> Vec<&Kernel> {
        match self {
            Filter::Linear(k) => vec![k],
            Filter::Magnitude { x, y, .. } => vec![x, y],
        }
    }

    /// Kernel size `(rows, cols)`.
    pub fn size(&self) -> (usize, usize) {
        match self {
            Filter::Linear(k) => (k.rows(), k.cols()),
            Filter::Magnitude { x, .. } => (x.rows(), x.cols()),
        }
    }

    /// Parse a `--kernel` spec: a name from [`NAMED_KERNELS`] with optional `:`-separated
    /// parameters, an inline matrix (rows separated by `;`, values by `,`, `a/b` fractions
    /// allowed), or the path of a 1-D or 2-D `.npy` file of weights.
    ///
    /// ```
    /// use convkit::filter::Filter;
    /// let f = Filter::parse("1,0,-1;2,0,-2;1,0,-1").unwrap();
    /// assert_eq!(f.size(), (3, 3));
    /// assert_eq!(Filter::parse("gaussian:1").unwrap().size(), (7, 7));
    /// assert!(Filter::parse("1,2;3").is_err());
    /// assert!(Filter::parse("blurry").is_err());
    /// ```
    pub fn parse(spec: &str) -> Result<Filter> {
        let s = spec.trim();
        if s.is_empty() {
            return Err(Error::arg(
                "kernel",
                "''",
                "expected a name, a matrix like 1,0,-1;2,0,-2 or a .npy file",
            ));
        }
        if s.to_ascii_lowercase().ends_with(".npy") {
            return Ok(Filter::Linear(kernel_from_npy(Path::new(s))?));
        }
        let first = s.chars().next().unwrap_or(' ');
        if s.contains([',', ';']) || first.is_ascii_digit() || "+-.".contains(first) {
            return Ok(Filter::Linear(parse_matrix(s)?));
        }
        named(s)
    }
}

impl FromStr for Filter {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Filter::parse(s)
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The named kernels with their parameter syntax and a one-line description, for `--help`.
pub const NAMED_KERNELS: &[(&str, &str)] = &[
    ("identity", "1x1 [1]: the input unchanged"),
    ("box:N", "NxN mean (default N=3), separable"),
    (
        "gaussian:SIGMA[:SIZE]",
        "Gaussian blur (default SIGMA=1; SIZE defaults to round(6*SIGMA+1) made odd, as OpenCV), separable",
    ),
    ("sobel-x, sobel-y", "3x3 Sobel derivatives ([-1,0,1;-2,0,2;-1,0,1] and its transpose)"),
    ("sobel", "Sobel gradient magnitude sqrt(x^2+y^2)"),
    ("scharr-x, scharr-y, scharr", "3x3 Scharr derivatives ([-3,0,3;-10,0,10;-3,0,3]) and magnitude"),
    ("prewitt-x, prewitt-y, prewitt", "3x3 Prewitt derivatives ([-1,0,1] in every row) and magnitude"),
    ("laplacian", "3x3 Laplacian [0,1,0;1,-4,1;0,1,0]"),
    ("laplacian8", "3x3 Laplacian with diagonals [1,1,1;1,-8,1;1,1,1]"),
    ("sharpen", "[0,-1,0;-1,5,-1;0,-1,0]"),
    ("emboss", "[-2,-1,0;-1,1,1;0,1,2]"),
    ("unsharp:SIGMA:AMOUNT", "unsharp mask (1+AMOUNT)*identity - AMOUNT*gaussian:SIGMA (default 1:1)"),
    ("vertical-edge", "[1,0,-1;1,0,-1;1,0,-1]: responds to vertical edges"),
    ("horizontal-edge", "[1,1,1;0,0,0;-1,-1,-1]: responds to horizontal edges"),
    (
        "motion:LEN:ANGLE",
        "LENxLEN line of length LEN at ANGLE degrees counter-clockwise from horizontal (default 9:0)",
    ),
];

/// The names (without parameters) the bank knows.
const NAMES: &[&str] = &[
    "identity",
    "box",
    "gaussian",
    "sobel-x",
    "sobel-y",
    "sobel",
    "scharr-x",
    "scharr-y",
    "scharr",
    "prewitt-x",
    "prewitt-y",
    "prewitt",
    "laplacian",
    "laplacian8",
    "sharpen",
    "emboss",
    "unsharp",
    "vertical-edge",
    "horizontal-edge",
    "motion",
];

/// A named kernel from the bank, e.g. `named("gaussian:2")`, `named("sobel")`.
///
/// ```
/// use convkit::filter::{named, Filter};
/// let Filter::Linear(k) = named("box:2").unwrap() else { panic!() };
/// assert_eq!(k.weights(), &[0.25; 4]);
/// ```
pub fn named(spec: &str) -> Result<Filter> {
    let spec = spec.trim();
    let mut parts = spec.split(':');
    let name = parts.next().unwrap_or("").to_ascii_lowercase();
    let params: Vec<&str> = parts.collect();
    let bad = |reason: String| Error::arg("kernel", spec, reason);
    let arity = |max: usize, syntax: &str| -> Result<()> {
        if params.len() > max {
            Err(bad(format!("too many parameters: expected {syntax}")))
        } else {
            Ok(())
        }
    };
    let num = |i: usize, what: &str, default: f64| -> Result<f64> {
        match params.get(i) {
            None => Ok(default),
            Some(p) => match p.trim().parse::<f64>() {
                Ok(v) if v.is_finite() => Ok(v),
                _ => Err(bad(format!("{what} must be a finite number, got '{p}'"))),
            },
        }
    };
    let size = |i: usize, what: &str, default: usize| -> Result<usize> {
        match params.get(i) {
            None => Ok(default),
            Some(p) => match p.trim().parse::<usize>() {
                Ok(v) if (1..=MAX_NAMED_SIZE).contains(&v) => Ok(v),
                _ => Err(bad(format!("{what} must be an integer from 1 to {MAX_NAMED_SIZE}, got '{p}'"))),
            },
        }
    };
    let dense = |rows: usize, w: &[f64]| Kernel::new(spec, rows, w.len() / rows, w.to_vec());
    let pair = |x: [f64; 9]| -> Result<(Kernel, Kernel)> {
        let y = transpose3(&x);
        Ok((dense(3, &x)?, dense(3, &y)?))
    };
    let lin = |k: Result<Kernel>| k.map(Filter::Linear);
    const SOBEL: [f64; 9] = [-1.0, 0.0, 1.0, -2.0, 0.0, 2.0, -1.0, 0.0, 1.0];
    const SCHARR: [f64; 9] = [-3.0, 0.0, 3.0, -10.0, 0.0, 10.0, -3.0, 0.0, 3.0];
    const PREWITT: [f64; 9] = [-1.0, 0.0, 1.0, -1.0, 0.0, 1.0, -1.0, 0.0, 1.0];
    let derivative = |w: &[f64; 9], axis: &str| -> Result<Filter> {
        arity(0, &name)?;
        let (x, y) = pair(*w)?;
        Ok(match axis {
            "x" => Filter::Linear(x),
            "y" => Filter::Linear(y),
            _ => Filter::Magnitude {
                name: spec.to_string(),
                x: Kernel { name: format!("{spec}-x"), ..x },
                y: Kernel { name: format!("{spec}-y"), ..y },
            },
        })
    };
    match name.as_str() {
        "identity" => {
            arity(0, "identity")?;
            lin(dense(1, &[1.0]))
        }
        "box" => {
            arity(1, "box:N")?;
            let n = size(0, "N", 3)?;
            let f = vec![1.0 / n as f64; n];
            lin(Kernel::separable(spec, f.clone(), f))
        }
        "gaussian" => {
            arity(2, "gaussian:SIGMA[:SIZE]")?;
            let sigma = num(0, "SIGMA", 1.0)?;
            let n =
                gaussian_size(sigma, params.get(1).map(|_| size(1, "SIZE", 1)).transpose()?).map_err(bad)?;
            let g = gaussian_1d(sigma, n);
            lin(Kernel::separable(spec, g.clone(), g))
        }
        "sobel-x" => derivative(&SOBEL, "x"),
        "sobel-y" => derivative(&SOBEL, "y"),
        "sobel" => derivative(&SOBEL, "magnitude"),
        "scharr-x" => derivative(&SCHARR, "x"),
        "scharr-y" => derivative(&SCHARR, "y"),
        "scharr" => derivative(&SCHARR, "magnitude"),
        "prewitt-x" => derivative(&PREWITT, "x"),
        "prewitt-y" => derivative(&PREWITT, "y"),
        "prewitt" => derivative(&PREWITT, "magnitude"),
        "laplacian" => {
            arity(0, "laplacian")?;
            lin(dense(3, &[0.0, 1.0, 0.0, 1.0, -4.0, 1.0, 0.0, 1.0, 0.0]))
        }
        "laplacian8" => {
            arity(0, "laplacian8")?;
            lin(dense(3, &[1.0, 1.0, 1.0, 1.0, -8.0, 1.0, 1.0, 1.0, 1.0]))
        }
        "sharpen" => {
            arity(0, "sharpen")?;
            lin(dense(3, &[0.0, -1.0, 0.0, -1.0, 5.0, -1.0, 0.0, -1.0, 0.0]))
        }
        "emboss" => {
            arity(0, "emboss")?;
            lin(dense(3, &[-2.0, -1.0, 0.0, -1.0, 1.0, 1.0, 0.0, 1.0, 2.0]))
        }
        "vertical-edge" => {
            arity(0, "vertical-edge")?;
            lin(dense(3, &[1.0, 0.0, -1.0, 1.0, 0.0, -1.0, 1.0, 0.0, -1.0]))
        }
        "horizontal-edge" => {
            arity(0, "horizontal-edge")?;
            lin(dense(3, &[1.0, 1.0, 1.0, 0.0, 0.0, 0.0, -1.0, -1.0, -1.0]))
        }
        "unsharp" => {
            arity(2, "unsharp:SIGMA:AMOUNT")?;
            let sigma = num(0, "SIGMA", 1.0)?;
            let amount = num(1, "AMOUNT", 1.0)?;
            let n = gaussian_size(sigma, None).map_err(bad)?;
            let g = gaussian_1d(sigma, n);
            let mut w: Vec<f64> = g.iter().flat_map(|a| g.iter().map(move |b| -amount * a * b)).collect();
            w[(n / 2) * n + n / 2] += 1.0 + amount;
            lin(Kernel::new(spec, n, n, w))
        }
        "motion" => {
            arity(2, "motion:LEN:ANGLE")?;
            let len = size(0, "LEN", 9)?;
            let angle = num(1, "ANGLE", 0.0)?;
            lin(Kernel::new(spec, len, len, motion(len, angle)))
        }
        _ => Err(bad(format!("unknown kernel name; known names: {}", NAMES.join(", ")))),
    }
}

fn transpose3(w: &[f64; 9]) -> [f64; 9] {
    let mut t = [0.0; 9];
    for i in 0..3 {
        for j in 0..3 {
            t[j * 3 + i] = w[i * 3 + j];
        }
    }
    t
}

/// Gaussian kernel size: `size` if given, else OpenCV's rule for 8-bit images, round(6σ+1) made odd.
fn gaussian_size(sigma: f64, size: Option<usize>) -> std::result::Result<usize, String> {
    if sigma <= 0.0 {
        return Err(format!("SIGMA must be positive, got {sigma}"));
    }
    match size {
        Some(n) => Ok(n),
        None => {
            let n = (sigma * 6.0 + 1.0).round();
            if n > MAX_NAMED_SIZE as f64 {
                Err(format!("SIGMA {sigma} needs a {n}-tap kernel, more than {MAX_NAMED_SIZE}"))
            } else {
                Ok(n as usize | 1)
            }
        }
    }
}

/// Normalised samples of a Gaussian of `sigma` at `n` taps centred on `(n−1)/2`.
fn gaussian_1d(sigma: f64, n: usize) -> Vec<f64> {
    let c = (n as f64 - 1.0) / 2.0;
    let g: Vec<f64> = (0..n).map(|i| (-(i as f64 - c).powi(2) / (2.0 * sigma * sigma)).exp()).collect();
    let s: f64 = g.iter().sum();
    g.into_iter().map(|v| v / s).collect()
}

/// An anti-aliased line of length `len` through the centre of a `len × len` kernel at `angle`
/// degrees counter-clockwise from horizontal (image rows grow downwards), normalised to sum 1.
/// A cell's weight is `(1 − distance from the line)` times how much of it the segment covers.
fn motion(len: usize, angle: f64) -> Vec<f64> {
    let (s, c) = angle.to_radians().sin_cos();
    let centre = (len as f64 - 1.0) / 2.0;
    let half = len as f64 / 2.0;
    let mut w = vec![0.0; len * len];
    for i in 0..len {
        for j in 0..len {
            let (dx, dy) = (j as f64 - centre, centre - i as f64);
            let along = dx * c + dy * s;
            let across = (-dx * s + dy * c).abs();
            let cover = (half - along.abs() + 0.5).clamp(0.0, 1.0);
            w[i * len + j] = (1.0 - across).max(0.0) * cover;
        }
    }
    let sum: f64 = w.iter().sum();
    // The centre cell always lies on the line, so the sum is at least 1.
    w.iter_mut().for_each(|v| *v /= sum);
    // Remove the rounding noise of sin/cos at multiples of 90° (e.g. 1e-17 weights).
    w.iter_mut().for_each(|v| {
        if v.abs() < 1e-12 {
            *v = 0.0
        }
    });
    w
}

/// Parse an inline matrix: rows separated by `;`, values by `,` (or spaces); each value a
/// finite number or a fraction `a/b`. `"1,2,1"` is a 1×3 row; `"1;2;1"` a 3×1 column.
///
/// ```
/// use convkit::filter::parse_matrix;
/// let k = parse_matrix("1/4, 1/2, 1/4").unwrap();
/// assert_eq!(k.weights(), &[0.25, 0.5, 0.25]);
/// assert!(parse_matrix("1,2;3,4,5").is_err());
/// ```
pub fn parse_matrix(spec: &str) -> Result<Kernel> {
    let s = spec.trim();
    let s = s.strip_suffix(';').unwrap_or(s);
    let bad = |reason: String| Error::arg("kernel", spec.trim(), reason);
    let mut rows: Vec<Vec<f64>> = Vec::new();
    for (r, row) in s.split(';').enumerate() {
        let cells: Vec<&str> = if row.contains(',') {
            row.split(',').map(str::trim).collect()
        } else {
            row.split_whitespace().collect()
        };
        if cells.is_empty() || cells.iter().any(|c| c.is_empty()) {
            return Err(bad(format!("row {} has an empty value", r + 1)));
        }
        let vals = cells.iter().map(|c| parse_weight(c).map_err(bad)).collect::<Result<Vec<f64>>>()?;
        if let Some(first) = rows.first() {
            if first.len() != vals.len() {
                return Err(bad(format!(
                    "ragged matrix: row {} has {} values, row 1 has {}",
                    r + 1,
                    vals.len(),
                    first.len()
                )));
            }
        }
        rows.push(vals);
    }
    let (r, c) = (rows.len(), rows[0].len());
    Kernel::new(spec.trim(), r, c, rows.concat())
}

fn parse_weight(c: &str) -> std::result::Result<f64, String> {
    let num = |t: &str| t.trim().parse::<f64>().map_err(|_| format!("'{c}' is not a number"));
    let v = match c.split_once('/') {
        Some((a, b)) => num(a)? / num(b)?,
        None => num(c)?,
    };
    if v.is_finite() {
        Ok(v)
    } else {
        Err(format!("weights must be finite, got '{c}'"))
    }
}

/// Read a kernel from a `.npy` file: shape `(cols,)` is a 1-row kernel, `(rows, cols)` a 2-D one.
pub fn kernel_from_npy(path: &Path) -> Result<Kernel> {
    let a = read_npy("kernel", path)?.to_f64();
    let (r, c) = match a.shape[..] {
        [c] => (1, c),
        [r, c] => (r, c),
        _ => return Err(Error::shape("kernel", &a.shape, "a kernel .npy must be 1-D or 2-D")),
    };
    if r == 0 || c == 0 {
        return Err(Error::shape("kernel", &a.shape, "is empty"));
    }
    Kernel::new(path.display().to_string(), r, c, a.data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn motion_lines_follow_the_angle() {
        let h = motion(3, 0.0);
        assert_eq!(h, vec![0.0, 0.0, 0.0, 1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0, 0.0, 0.0, 0.0]);
        let v = motion(3, 90.0);
        assert_eq!(v, vec![0.0, 1.0 / 3.0, 0.0, 0.0, 1.0 / 3.0, 0.0, 0.0, 1.0 / 3.0, 0.0]);
        // 45°: up and to the right, so the top-right and bottom-left corners carry weight.
        let d = motion(3, 45.0);
        assert!(d[2] > 0.0 && d[6] > 0.0 && d[0] == 0.0 && d[8] == 0.0);
        assert!((d.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn gaussian_sizes_follow_opencv() {
        assert_eq!(gaussian_size(1.0, None), Ok(7));
        assert_eq!(gaussian_size(0.8, None), Ok(7));
        assert_eq!(gaussian_size(2.0, None), Ok(13));
        assert!(gaussian_size(0.0, None).is_err());
        assert!(gaussian_size(1e9, None).is_err());
    }

    #[test]
    fn weights_print_briefly() {
        assert_eq!(fmt_weight(-2.0), "-2");
        assert_eq!(fmt_weight(0.25), "0.25");
        assert_eq!(fmt_weight(1.0 / 3.0), "0.3333");
        assert_eq!(fmt_weight(-1e-9), "0");
    }
}
