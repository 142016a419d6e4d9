//! Writing a trace out for people: plain text laid out like a textbook's worked example, and
//! Markdown (the same pieces as tables and code blocks).

use super::{Explanation, Op, Step, Term};
use crate::shape::Axis;
use std::fmt::Write as _;

/// A number as a worked example writes it: integers without a decimal point, a true minus
/// sign (`−1`), short decimals as they are and long ones rounded to 4 places with `≈`.
///
/// ```
/// use convkit::explain::format_number;
/// assert_eq!(format_number(-1.0), "−1");
/// assert_eq!(format_number(2.5), "2.5");
/// assert_eq!(format_number(1.0 / 3.0), "≈0.3333");
/// ```
pub fn format_number(v: f64) -> String {
    let s = if v.is_nan() {
        return "NaN".into();
    } else if v.is_infinite() {
        return if v > 0.0 { "∞".into() } else { "−∞".into() };
    } else if v == 0.0 {
        "0".to_string()
    } else if v.abs() >= 1e9 || v.abs() < 1e-4 {
        let e = format!("{v:e}");
        if e.len() > 10 {
            format!("≈{v:.3e}")
        } else {
            e
        }
    } else if v.fract() == 0.0 {
        format!("{}", v as i64)
    } else {
        let short = format!("{v}");
        if short.len() <= 8 {
            short
        } else {
            let r = format!("{v:.4}");
            format!("≈{}", r.trim_end_matches('0').trim_end_matches('.'))
        }
    };
    s.replace('-', "−")
}

/// A factor in a product: negatives in parentheses, padding in brackets.
fn factor(v: f64, pad: bool) -> String {
    let s = format_number(v);
    if pad {
        format!("[{s}]")
    } else if s.starts_with('−') || s.starts_with('≈') {
        format!("({s})")
    } else {
        s
    }
}

/// One slice of a window: its label, the patch cells and the kernel cells.
type Slice = (String, Vec<Vec<String>>, Vec<Vec<String>>);

fn width(s: &str) -> usize {
    s.chars().count()
}

fn pad_left(s: &str, w: usize) -> String {
    format!("{}{s}", " ".repeat(w.saturating_sub(width(s))))
}

fn list(v: &[usize]) -> String {
    format!("{v:?}")
}

/// The output-size formula of one axis with its numbers filled in.
pub(super) fn formula_text(a: &Axis, ceil: bool) -> String {
    let inner = format!(
        "({} + {} + {} − {}·({} − 1) − 1) / {}",
        a.input, a.pad_begin, a.pad_end, a.dilation, a.kernel, a.stride
    );
    if !ceil {
        return format!("⌊{inner}⌋ + 1 = {}", a.output);
    }
    // For the text only: whether PyTorch's ceil-mode rule dropped the last window.
    let span =
        (a.input + a.pad_begin + a.pad_end).saturating_sub(a.dilation.saturating_mul(a.kernel - 1) + 1);
    let rounded_up = span.div_ceil(a.stride) + 1;
    if rounded_up == a.output {
        format!("⌈{inner}⌉ + 1 = {}", a.output)
    } else {
        format!(
            "⌈{inner}⌉ + 1 − 1 = {} (the last window would start past the input and its begin \
             padding, so it is dropped)",
            a.output
        )
    }
}

/// Lines of a tensor printed plane by plane, NumPy style: `[a, b, c]` for one axis, a
/// bracketed grid for two; leading axes (and spatial axes beyond the last two) label planes.
fn array_lines(shape: &[usize], data: &[f64], names: [&str; 2]) -> Vec<String> {
    let sp = &shape[2..];
    let (rows, cols) = match sp.len() {
        1 => (1, sp[0]),
        _ => (sp[sp.len() - 2], sp[sp.len() - 1]),
    };
    let plane = rows * cols;
    let planes = data.len() / plane.max(1);
    let cells: Vec<String> = data.iter().map(|&v| format_number(v)).collect();
    let w = cells.iter().map(|c| width(c)).max().unwrap_or(1);
    let mut lead = shape[..shape.len() - sp.len().min(2)].to_vec();
    if sp.len() == 1 {
        lead = shape[..2].to_vec();
    }
    let mut out = Vec::new();
    let mut idx = vec![0; lead.len()];
    for pl in 0..planes {
        super::unravel(pl, &lead, &mut idx);
        if planes > 1 {
            let mut label: Vec<String> =
                idx.iter().take(2).zip(names).map(|(i, n)| format!("{n}={i}")).collect();
            label.extend(idx.iter().skip(2).enumerate().map(|(a, i)| format!("axis {a}={i}")));
            out.push(format!("[{}]", label.join(", ")));
        }
        let c = &cells[pl * plane..][..plane];
        if sp.len() == 1 {
            out.push(format!("[{}]", c.join(", ")));
        } else {
            for r in 0..rows {
                let row: Vec<String> = c[r * cols..][..cols].iter().map(|s| pad_left(s, w)).collect();
                let open = if r == 0 { "[[" } else { " [" };
                let close = if r + 1 == rows { "]]" } else { "]," };
                out.push(format!("{open}{}{close}", row.join(", ")));
            }
        }
    }
    out
}

/// A grid of cells, right-aligned in columns of width `w`.
fn grid_rows(cells: &[Vec<String>], w: usize) -> Vec<String> {
    cells.iter().map(|r| r.iter().map(|c| pad_left(c, w)).collect::<Vec<_>>().join("  ")).collect()
}

fn cells_width(grids: &[&Vec<Vec<String>>]) -> usize {
    grids.iter().flat_map(|g| g.iter().flatten()).map(|c| width(c)).max().unwrap_or(1)
}

impl Explanation {
    fn rank(&self) -> usize {
        self.axes.len()
    }

    fn title(&self) -> String {
        let what = match self.op {
            Op::Conv if self.flip => "Convolution (kernel flipped on every axis)",
            Op::Conv => "Cross-correlation (what deep-learning libraries call convolution)",
            Op::MaxPool if self.global => "Global max pooling",
            Op::MaxPool => "Max pooling",
            Op::AvgPool if self.global => "Global average pooling",
            Op::AvgPool => "Average pooling",
        };
        format!("{what}, {}-D", self.rank())
    }

    fn settings(&self) -> String {
        let per = |f: fn(&Axis) -> usize| list(&self.axes.iter().map(f).collect::<Vec<_>>());
        let mut s = Vec::new();
        if self.op != Op::Conv {
            s.push(format!("kernel {}", per(|a| a.kernel)));
        }
        s.push(format!("stride {}", per(|a| a.stride)));
        s.push(format!("dilation {}", per(|a| a.dilation)));
        let pads = format!("padding begin {} end {}", per(|a| a.pad_begin), per(|a| a.pad_end));
        match self.op {
            Op::Conv => {
                s.push(format!("{pads} ({})", self.padding_mode));
                s.push(format!("groups {}", self.groups));
            }
            Op::MaxPool => s.push(format!("{pads} (never the maximum)")),
            Op::AvgPool => {
                s.push(pads);
                s.push(
                    if self.count_include_pad {
                        "the divisor counts padding"
                    } else {
                        "the divisor counts input values only"
                    }
                    .into(),
                );
            }
        }
        if self.ceil_mode {
            s.push("ceil mode".into());
        }
        s.join(" · ")
    }

    /// `y[…]` naming an output: the spatial position, prefixed by batch and channel when
    /// there is more than one of either.
    fn out_label(&self, st: &Step) -> String {
        let mut idx = Vec::new();
        if self.output_shape[0] > 1 || self.output_shape[1] > 1 {
            idx.extend([st.n, st.k]);
        }
        idx.extend(&st.out);
        format!("y[{}]", idx.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", "))
    }

    fn in_label(&self, n: usize, c: usize, pos: &[usize]) -> String {
        let mut idx = Vec::new();
        if self.input_shape[0] > 1 || self.input_shape[1] > 1 {
            idx.extend([n, c]);
        }
        idx.extend(pos);
        format!("x[{}]", idx.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", "))
    }

    /// Per-axis padded positions the window of `st` spans (clipped to the padded input).
    fn span(&self, st: &Step) -> Vec<std::ops::Range<usize>> {
        self.axes
            .iter()
            .enumerate()
            .map(|(a, ax)| {
                let start = st.out[a] * ax.stride;
                start..(start + ax.effective_kernel()).min(self.padded_shape[a])
            })
            .collect()
    }

    /// The patch over the padded input for channel `c` and, for convolution, the kernel laid
    /// over the same cells; both as 2-D cell grids per slice of the leading spatial axes.
    fn patch_and_kernel(&self, st: &Step, c: usize, ci: usize) -> Vec<Slice> {
        let span = self.span(st);
        let rank = self.rank();
        let plane: usize = self.padded_shape.iter().product();
        let taps: usize = self.axes.iter().map(|a| a.kernel).product();
        let kernel: Vec<usize> = self.axes.iter().map(|a| a.kernel).collect();
        let lens: Vec<usize> = span.iter().map(|r| r.len()).collect();
        let inner = if rank == 1 { 1 } else { 2 };
        let lead = &lens[..rank - inner];
        let nlead: usize = lead.iter().product();
        let (rows, cols) = if rank == 1 { (1, lens[0]) } else { (lens[rank - 2], lens[rank - 1]) };
        let mut out = Vec::new();
        let mut li = vec![0; lead.len()];
        for l in 0..nlead {
            super::unravel(l, lead, &mut li);
            let mut patch = vec![vec![String::new(); cols]; rows];
            let mut kern = vec![vec![String::new(); cols]; rows];
            for r in 0..rows {
                for col in 0..cols {
                    let mut off: Vec<usize> = li.clone();
                    if rank > 1 {
                        off.push(r);
                    }
                    off.push(col);
                    let pos: Vec<usize> = (0..rank).map(|a| span[a].start + off[a]).collect();
                    let tap: Option<Vec<usize>> = (0..rank)
                        .map(|a| {
                            let d = self.axes[a].dilation;
                            (off[a].is_multiple_of(d) && off[a] / d < kernel[a]).then_some(off[a] / d)
                        })
                        .collect();
                    let Some(tap) = tap else {
                        patch[r][col] = "·".into();
                        kern[r][col] = "·".into();
                        continue;
                    };
                    let q = (st.n * self.input_shape[1] + c) * plane
                        + pos.iter().zip(&self.padded_shape).fold(0, |acc, (&p, &d)| acc * d + p);
                    let v = format_number(self.padded[q]);
                    patch[r][col] = if self.padded_is_pad[q] { format!("[{v}]") } else { v };
                    if let Some(ka) = &self.kernel_applied {
                        let cg = self.input_shape[1] / self.groups;
                        let t = tap.iter().zip(&kernel).fold(0, |acc, (&i, &d)| acc * d + i);
                        kern[r][col] = format_number(ka[(st.k * cg + ci) * taps + t]);
                    }
                }
            }
            let label = if lead.is_empty() {
                String::new()
            } else {
                let p: Vec<String> = li
                    .iter()
                    .enumerate()
                    .map(|(a, &i)| format!("axis {a} = {}", span[a].start + i))
                    .collect();
                format!("slice {}", p.join(", "))
            };
            out.push((label, patch, kern));
        }
        out
    }

    /// `1·2 + 2·(−1) + 0·1` for convolution terms.
    fn products(terms: &[&Term]) -> String {
        terms
            .iter()
            .map(|t| format!("{}·{}", factor(t.x, t.source.is_none()), factor(t.w.unwrap_or(0.0), false)))
            .collect::<Vec<_>>()
            .join(" + ")
    }

    /// The step's arithmetic on one line: products, `max(…)` or `(… ) / n`.
    fn expression(&self, st: &Step) -> String {
        match self.op {
            Op::Conv => Self::products(&st.terms.iter().collect::<Vec<_>>()),
            Op::MaxPool => {
                let v: Vec<String> =
                    st.terms.iter().filter(|t| t.source.is_some()).map(|t| format_number(t.x)).collect();
                if v.is_empty() {
                    "max() of a window wholly in the padding".into()
                } else {
                    format!("max({})", v.join(", "))
                }
            }
            Op::AvgPool => {
                let v: Vec<String> = st
                    .terms
                    .iter()
                    .filter(|t| self.count_include_pad || t.source.is_some())
                    .map(|t| {
                        if t.source.is_none() {
                            format!("[{}]", format_number(t.x))
                        } else {
                            factor(t.x, false)
                        }
                    })
                    .collect();
                let num = if v.is_empty() { "0".to_string() } else { v.join(" + ") };
                format!("({num}) / {}", format_number(st.divisor.unwrap_or(0.0)))
            }
        }
    }

    fn step_lines(&self, st: &Step) -> Vec<String> {
        let mut out = vec![format!("{}:", self.out_label(st))];
        let cg = if self.op == Op::Conv { self.input_shape[1] / self.groups } else { 1 };
        let first_c = st.terms.first().map_or(st.k, |t| t.c);
        let mut channel_sums = Vec::new();
        for ci in 0..cg {
            let c = first_c + ci;
            let ind = if cg > 1 {
                out.push(format!("  input channel {c}:"));
                "    "
            } else {
                "  "
            };
            let slices = self.patch_and_kernel(st, c, ci);
            let conv = self.op == Op::Conv;
            for (label, patch, kern) in &slices {
                if !label.is_empty() {
                    out.push(format!("{ind}{label}:"));
                }
                let w = if conv { cells_width(&[patch, kern]) } else { cells_width(&[patch]) };
                let (p, k) = (grid_rows(patch, w), grid_rows(kern, w));
                if self.rank() == 1 {
                    out.push(format!("{ind}{}  {}", if conv { "patch " } else { "window" }, p[0]));
                    if conv {
                        out.push(format!("{ind}kernel  {}", k[0]));
                    }
                } else {
                    let pw = p.first().map_or(0, |r| width(r)).max(5);
                    if conv {
                        out.push(format!("{ind}{}   kernel", pad_right("patch", pw)));
                        for (a, b) in p.iter().zip(&k) {
                            out.push(format!("{ind}{}   {b}", pad_right(a, pw)));
                        }
                    } else {
                        out.push(format!("{ind}window"));
                        out.extend(p.iter().map(|r| format!("{ind}{r}")));
                    }
                }
            }
            if conv {
                let terms: Vec<&Term> = st.terms.iter().filter(|t| t.c == c).collect();
                let s: f64 = terms.iter().map(|t| t.product.unwrap_or(0.0)).sum();
                channel_sums.push(s);
                out.push(format!("{ind}{} = {}", Self::products(&terms), format_number(s)));
            }
        }
        match self.op {
            Op::Conv => {
                let sum = st.sum.unwrap_or(0.0);
                let label = self.out_label(st);
                if cg > 1 {
                    let parts: Vec<String> = channel_sums.iter().map(|&s| factor(s, false)).collect();
                    let head = if st.bias.is_some() { "sum".to_string() } else { label.clone() };
                    out.push(format!("  {head} = {} = {}", parts.join(" + "), format_number(sum)));
                }
                if let Some(b) = st.bias {
                    out.push(format!(
                        "  {label} = {} + {} (bias) = {}",
                        factor(sum, false),
                        factor(b, false),
                        format_number(st.value)
                    ));
                }
            }
            Op::MaxPool => match st.argmax {
                Some(i) => {
                    let t = &st.terms[i];
                    out.push(format!(
                        "  {} = {}, at {}{}",
                        self.expression(st),
                        format_number(st.value),
                        self.in_label(st.n, t.c, t.source.as_deref().unwrap_or(&[])),
                        if st.terms.iter().any(|t| t.source.is_none()) {
                            " (padding never wins)"
                        } else {
                            ""
                        }
                    ));
                }
                None => out.push(format!(
                    "  the window lies wholly in the padding: {} = {} (the lowest finite value, as \
                     TensorFlow and ONNX Runtime give; PyTorch gives −∞)",
                    self.out_label(st),
                    format_number(st.value)
                )),
            },
            Op::AvgPool => out.push(format!("  {} = {}", self.expression(st), format_number(st.value))),
        }
        out
    }

    fn formula_header(&self) -> &'static str {
        if self.ceil_mode {
            "out = ⌈(in + pad_begin + pad_end − dilation·(kernel − 1) − 1) / stride⌉ + 1"
        } else {
            "out = ⌊(in + pad_begin + pad_end − dilation·(kernel − 1) − 1) / stride⌋ + 1"
        }
    }

    fn padded_lines(&self) -> Vec<String> {
        let mut shape = self.input_shape[..2].to_vec();
        shape.extend(&self.padded_shape);
        let cells: Vec<String> = self
            .padded
            .iter()
            .zip(&self.padded_is_pad)
            .map(|(&v, &p)| if p { format!("[{}]", format_number(v)) } else { format_number(v) })
            .collect();
        let w = cells.iter().map(|c| width(c)).max().unwrap_or(1);
        let sp = &self.padded_shape;
        let cols = sp[sp.len() - 1];
        let rows = if sp.len() > 1 { sp[sp.len() - 2] } else { 1 };
        let plane = rows * cols;
        let lead = &shape[..shape.len() - sp.len().min(2)];
        let planes = cells.len() / plane;
        let mut out = Vec::new();
        let mut idx = vec![0; lead.len()];
        for pl in 0..planes {
            super::unravel(pl, lead, &mut idx);
            if planes > 1 {
                let mut l: Vec<String> = vec![format!("n={}", idx[0]), format!("c={}", idx[1])];
                l.extend(idx.iter().skip(2).enumerate().map(|(a, i)| format!("axis {a}={i}")));
                out.push(format!("[{}]", l.join(", ")));
            }
            let c: Vec<Vec<String>> =
                (0..rows).map(|r| cells[pl * plane + r * cols..][..cols].to_vec()).collect();
            out.extend(grid_rows(&c, w));
        }
        out
    }

    fn has_padding(&self) -> bool {
        self.axes.iter().any(|a| a.pad_begin > 0 || a.pad_end > 0)
    }

    /// The worked example as plain text.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "{}", self.title());
        let _ = writeln!(s, "{}", self.settings());
        let _ = writeln!(s);
        let block = |s: &mut String, head: String, lines: Vec<String>| {
            let _ = writeln!(s, "{head}");
            for l in lines {
                let _ = writeln!(s, "  {l}");
            }
        };
        block(
            &mut s,
            format!("input x, shape {}:", list(&self.input_shape)),
            array_lines(&self.input_shape, &self.input, ["n", "c"]),
        );
        if let (Some(ws), Some(w)) = (&self.weight_shape, &self.weight) {
            block(&mut s, format!("weight w, shape {}:", list(ws)), array_lines(ws, w, ["k", "c"]));
            if self.flip {
                let ka = self.kernel_applied.as_deref().unwrap_or(&[]);
                block(
                    &mut s,
                    "kernel as applied (w reversed on every spatial axis):".into(),
                    array_lines(ws, ka, ["k", "c"]),
                );
            }
        }
        if let Some(b) = &self.bias {
            let _ = writeln!(
                s,
                "bias b: [{}]",
                b.iter().map(|&v| format_number(v)).collect::<Vec<_>>().join(", ")
            );
        }
        if self.has_padding() {
            block(
                &mut s,
                format!("padded input, spatial shape {} ([v] = padding):", list(&self.padded_shape)),
                self.padded_lines(),
            );
        }
        let _ = writeln!(s);
        let dil = self.axes.iter().any(|a| a.dilation > 1);
        let mut legend = Vec::new();
        if self.has_padding() {
            legend.push("[v] = padding");
        }
        if dil {
            legend.push("· = skipped by the dilation");
        }
        let _ = writeln!(
            s,
            "For each output, the {} over the padded input{}:",
            if self.op == Op::Conv { "patch under the kernel" } else { "window" },
            if legend.is_empty() { String::new() } else { format!(" ({})", legend.join(", ")) }
        );
        for st in &self.steps {
            for l in self.step_lines(st) {
                let _ = writeln!(s, "{l}");
            }
        }
        let _ = writeln!(s);
        block(
            &mut s,
            format!("output y, shape {}:", list(&self.output_shape)),
            array_lines(&self.output_shape, &self.output, ["n", if self.op == Op::Conv { "k" } else { "c" }]),
        );
        let _ = writeln!(s);
        let _ = writeln!(s, "output size per axis: {}", self.formula_header());
        for f in &self.formula {
            let _ = writeln!(s, "  axis {}: out = {}", f.axis, f.text);
        }
        s
    }

    /// The worked example as Markdown: the same pieces as tables and code blocks.
    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        let code = |s: &mut String, lines: Vec<String>| {
            let _ = writeln!(s, "```text");
            for l in lines {
                let _ = writeln!(s, "{l}");
            }
            let _ = writeln!(s, "```\n");
        };
        let _ = writeln!(s, "## {}\n\n{}\n", self.title(), self.settings());
        let _ = writeln!(s, "### Input x, shape `{}`\n", list(&self.input_shape));
        code(&mut s, array_lines(&self.input_shape, &self.input, ["n", "c"]));
        if let (Some(ws), Some(w)) = (&self.weight_shape, &self.weight) {
            let _ = writeln!(s, "### Weight w, shape `{}`\n", list(ws));
            code(&mut s, array_lines(ws, w, ["k", "c"]));
            if self.flip {
                let _ = writeln!(s, "Kernel as applied (w reversed on every spatial axis):\n");
                code(&mut s, array_lines(ws, self.kernel_applied.as_deref().unwrap_or(&[]), ["k", "c"]));
            }
        }
        if let Some(b) = &self.bias {
            let _ = writeln!(
                s,
                "Bias b: `[{}]`\n",
                b.iter().map(|&v| format_number(v)).collect::<Vec<_>>().join(", ")
            );
        }
        if self.has_padding() {
            let _ = writeln!(
                s,
                "### Padded input, spatial shape `{}` (`[v]` = padding)\n",
                list(&self.padded_shape)
            );
            code(&mut s, self.padded_lines());
        }
        let _ = writeln!(s, "### Steps\n");
        let _ = writeln!(s, "| output | window (padded positions) | arithmetic | result |");
        let _ = writeln!(s, "|---|---|---|---|");
        for st in &self.steps {
            let win: Vec<String> =
                self.span(st).iter().map(|r| format!("{}–{}", r.start, r.end.saturating_sub(1))).collect();
            let _ = writeln!(
                s,
                "| `{}` | {} | `{}` | **{}** |",
                self.out_label(st),
                win.join(" × "),
                self.expression(st),
                format_number(st.value)
            );
        }
        let _ = writeln!(s, "\n### Worked windows\n");
        code(&mut s, self.steps.iter().flat_map(|st| self.step_lines(st)).collect());
        let _ = writeln!(s, "### Output y, shape `{}`\n", list(&self.output_shape));
        code(
            &mut s,
            array_lines(&self.output_shape, &self.output, ["n", if self.op == Op::Conv { "k" } else { "c" }]),
        );
        let _ = writeln!(s, "### Output size\n\n`{}`\n", self.formula_header());
        let _ = writeln!(s, "| axis | in | pad begin | pad end | dilation | kernel | stride | out |");
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
        for f in &self.formula {
            let a = f.numbers;
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | `{}` |",
                f.axis, a.input, a.pad_begin, a.pad_end, a.dilation, a.kernel, a.stride, f.text
            );
        }
        s
    }
}

fn pad_right(s: &str, w: usize) -> String {
    format!("{s}{}", " ".repeat(w.saturating_sub(width(s))))
}
