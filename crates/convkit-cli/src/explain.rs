//! `convkit explain`: a convolution or pooling on a small input, worked step by step like a
//! textbook example (text, Markdown or JSON). Inputs are inline values or .npy files; the
//! arithmetic and its limits live in `convkit::explain`, the flag parsing is `convkit conv`'s.
//! [`explain_json_inline`] is the entry point for the web page: it never opens a file.

use crate::{e, parse_groups, CliResult, ConvArgs};
use clap::Args;
use convkit::explain::{explain_conv, explain_pool, Explanation, Limits, Op};
use convkit::npy::read_npy;
use convkit::{parse_list, Padding, PoolDesc, PoolKind};
use serde_json::{json, Value};
use std::path::Path;

/// Arguments of `convkit explain`. Every string field left empty (as `Default` and a JSON
/// request that omits it give) means the flag's default.
#[derive(Args, Debug, Default, Clone, serde::Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct ExplainArgs {
    /// Input: inline values ("1,2,0,-1,3,1"; rows separated by ';' for 2-D) or a .npy file
    #[arg(long, value_name = "VALUES|FILE.npy", allow_hyphen_values = true)]
    pub input: String,
    /// Weight, inline like the input or a .npy file (K, C/groups, kernel…)
    #[arg(long, value_name = "VALUES|FILE.npy", allow_hyphen_values = true)]
    pub weight: Option<String>,
    /// Bias: one value per output channel ("1" or "1,-2"), or a .npy file
    #[arg(long, value_name = "VALUES|FILE.npy", allow_hyphen_values = true)]
    pub bias: Option<String>,
    /// Shape of the inline input, N,C,spatial… (for channels, batches and 3-D)
    #[arg(long, value_name = "N,C,…")]
    pub input_shape: Option<String>,
    /// Shape of the inline weight, K,C/groups,kernel…
    #[arg(long, value_name = "K,C/G,…")]
    pub weight_shape: Option<String>,
    /// Stride per axis [default: 1; for pooling: the kernel]
    #[arg(long, value_name = "S")]
    pub stride: Option<String>,
    /// Padding: integers or valid | same | same-lower | full (as in `convkit conv`)
    #[arg(long, default_value = "0", value_name = "P")]
    pub padding: String,
    /// Values padded with: zeros | reflect | replicate | circular | symmetric | constant:V
    #[arg(long, default_value = "zeros", value_name = "M")]
    pub padding_mode: String,
    /// Dilation per axis
    #[arg(long, default_value = "1", value_name = "D")]
    pub dilation: String,
    /// Groups (divides input and output channels)
    #[arg(long, default_value = "1", value_name = "G")]
    pub groups: String,
    /// True convolution: reverse the kernel on every spatial axis
    #[arg(long)]
    pub flip: bool,
    /// Explain a pooling instead of a convolution: max | avg | global-max | global-avg
    #[arg(long, value_name = "KIND")]
    pub pool: Option<String>,
    /// Pooling window per axis
    #[arg(long, value_name = "K")]
    pub kernel: Option<String>,
    /// Pooling: round the output size up (PyTorch's rule)
    #[arg(long)]
    pub ceil_mode: bool,
    /// Average pooling: divide by the values inside the input only, not the padding
    #[arg(long)]
    pub exclude_pad: bool,
    /// Output format: text | markdown | json
    #[arg(long, default_value = "text", value_name = "F")]
    pub format: String,
}

/// Most characters an inline value list may have (1024 values of up to ~19 characters).
const MAX_INLINE_CHARS: usize = 20_000;
/// Most bytes of a .npy file explain reads (1024 f64 values are 8 KiB; headers are small).
const MAX_NPY_BYTES: u64 = 1 << 14;

pub fn after_help() -> String {
    let l = Limits::default();
    format!(
        "\
Values: inline numbers separated by commas are a 1-D signal (N=1, C=1); rows separated by ';'
are a 2-D image (\"1,2;3,4\"); --input-shape / --weight-shape reshape inline values for channels,
batches or 3-D (C order). A value ending in .npy is read as a file; arrays of rank 1 or 2 are taken
as one signal or image. An empty flag value means its default.
Text output: for each output, the patch over the padded input ([v] = padding, · = skipped by the
dilation) beside the kernel, the products, the sum and the result; then the output and the
output-size formula with its numbers. 3-D windows and several channels are shown slice by slice.
Limits: at most {} input values, {} weight values, {} outputs, {} products (or window taps) in
all and {} padded values; larger problems are refused (use convkit conv / convkit pool).
Padding and per-axis values follow `convkit conv` (see convkit --help).",
        l.max_input, l.max_weight, l.max_output, l.max_terms, l.max_padded
    )
}

pub fn run(a: ExplainArgs) -> CliResult<()> {
    let format = parse_format(&a.format)?;
    let ex = explain(&a, true)?;
    match format {
        Format::Text => print!("{}", ex.to_text()),
        Format::Markdown => print!("{}", ex.to_markdown()),
        Format::Json => {
            println!("{}", serde_json::to_string_pretty(&to_json(&ex)).map_err(|e| e.to_string())?)
        }
    }
    Ok(())
}

/// The explanation as the JSON the web page reads; inputs may name .npy files. The error is the
/// line the command line prints after `convkit: `.
#[allow(dead_code)] // the web page uses the inline-only entry point
pub fn explain_json(args: &ExplainArgs) -> CliResult<Value> {
    explain(args, true).map(|e| to_json(&e))
}

/// As [`explain_json`], but values must be inline: a .npy path is refused, so a server that
/// passes on requests never opens a file.
#[allow(dead_code)] // used by `convkit serve`
pub fn explain_json_inline(args: &ExplainArgs) -> CliResult<Value> {
    explain(args, false).map(|e| to_json(&e))
}

enum Format {
    Text,
    Markdown,
    Json,
}

fn parse_format(s: &str) -> CliResult<Format> {
    match or_default(s, "text").trim() {
        "text" => Ok(Format::Text),
        "markdown" | "md" => Ok(Format::Markdown),
        "json" => Ok(Format::Json),
        other => Err(format!("invalid format {other}: expected text, markdown or json")),
    }
}

fn or_default<'a>(s: &'a str, default: &'a str) -> &'a str {
    if s.trim().is_empty() {
        default
    } else {
        s
    }
}

fn given(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|v| !v.trim().is_empty())
}

/// A value as echoed in an error line: long inline lists are cut short.
fn short(s: &str) -> String {
    let s = s.trim();
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(37).collect::<String>())
    } else {
        s.to_string()
    }
}

fn is_file(s: &str) -> bool {
    s.trim().to_ascii_lowercase().ends_with(".npy")
}

/// A tensor read from a flag: its shape and values.
struct Values {
    shape: Vec<usize>,
    data: Vec<f64>,
}

/// Parse inline values: `a,b,c` (one row) or `a,b;c,d` (rows). The shape is `[W]` or `[H, W]`.
fn parse_inline(arg: &str, s: &str) -> CliResult<Values> {
    if s.len() > MAX_INLINE_CHARS {
        return Err(format!(
            "invalid {arg} ({} characters): explain reads at most {MAX_INLINE_CHARS} characters of inline values",
            s.len()
        ));
    }
    let mut rows: Vec<Vec<f64>> = Vec::new();
    let body = s.trim().trim_end_matches(';');
    if body.trim().is_empty() {
        return Err(format!("missing {arg}: give numbers separated by commas (rows separated by ';')"));
    }
    for row in body.split(';') {
        let vals = row
            .split(',')
            .map(|t| {
                let t = t.trim();
                let v: f64 = t.replace('−', "-").parse().map_err(|_| {
                    format!(
                        "invalid {arg} {}: '{t}' is not a number (numbers are separated by commas, rows by ';')",
                        short(s)
                    )
                })?;
                if v.is_finite() {
                    Ok(v)
                } else {
                    Err(format!("invalid {arg} {}: '{t}' is not a finite number", short(s)))
                }
            })
            .collect::<CliResult<Vec<f64>>>()?;
        if let Some(first) = rows.first() {
            if first.len() != vals.len() {
                return Err(format!(
                    "invalid {arg} {}: row {} has {} values where row 1 has {}",
                    short(s),
                    rows.len() + 1,
                    vals.len(),
                    first.len()
                ));
            }
        }
        rows.push(vals);
    }
    let shape = if rows.len() == 1 { vec![rows[0].len()] } else { vec![rows.len(), rows[0].len()] };
    Ok(Values { shape, data: rows.concat() })
}

fn read_file(arg: &str, s: &str, tool: &str) -> CliResult<Values> {
    let path = Path::new(s.trim());
    if let Ok(m) = std::fs::metadata(path) {
        if m.len() > MAX_NPY_BYTES {
            return Err(format!(
                "invalid {arg} {} ({} bytes): explain reads .npy files of at most {MAX_NPY_BYTES} bytes — use convkit {tool} for large inputs",
                path.display(),
                m.len()
            ));
        }
    }
    let t = read_npy(arg, path).map_err(e)?.to_f64();
    Ok(Values { shape: t.shape, data: t.data })
}

/// Read a tensor flag (inline or file) and give it a data shape: `shape_flag` reshapes inline
/// values; otherwise rank 1 or 2 gets a leading `1, 1`.
fn tensor(
    arg: &str,
    s: &str,
    shape_flag: Option<(&str, &str)>,
    files: bool,
    tool: &str,
) -> CliResult<Values> {
    let mut v = if is_file(s) {
        if !files {
            return Err(format!(
                "invalid {arg} {}: only inline values are accepted here, not files",
                short(s)
            ));
        }
        if let Some((name, _)) = shape_flag {
            return Err(format!("invalid {name}: a .npy {arg} has its own shape"));
        }
        read_file(arg, s, tool)?
    } else {
        parse_inline(arg, s)?
    };
    match shape_flag {
        Some((name, spec)) => {
            let shape = parse_list(name, spec).map_err(e)?;
            let n = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
            if n != Some(v.data.len()) {
                return Err(format!(
                    "invalid {name} {}: holds {} values but --{arg} has {}",
                    spec.trim(),
                    n.map_or("too many".to_string(), |n| n.to_string()),
                    v.data.len()
                ));
            }
            v.shape = shape;
        }
        None if v.shape.len() <= 2 => {
            let mut s = vec![1, 1];
            s.extend(&v.shape);
            v.shape = s;
        }
        None => {}
    }
    Ok(v)
}

fn explain(a: &ExplainArgs, files: bool) -> CliResult<Explanation> {
    let limits = Limits::default();
    let input = or_default(&a.input, "");
    if input.trim().is_empty() {
        return Err("missing input: give --input VALUES (e.g. \"1,2,0,-1,3,1\") or a .npy file".into());
    }
    match given(&a.pool) {
        None => {
            if let Some(k) = given(&a.kernel) {
                return Err(format!(
                    "invalid kernel {}: --kernel is for --pool (a convolution's kernel is its --weight)",
                    short(k)
                ));
            }
            if a.ceil_mode {
                return Err("invalid ceil-mode: only for --pool".into());
            }
            if a.exclude_pad {
                return Err("invalid exclude-pad: only for --pool avg".into());
            }
            let Some(weight) = given(&a.weight) else {
                return Err("missing weight: give --weight VALUES (or --pool max|avg --kernel K)".into());
            };
            let desc = ConvArgs {
                bias: None,
                stride: or_default(a.stride.as_deref().unwrap_or(""), "1").to_string(),
                padding: or_default(&a.padding, "0").to_string(),
                dilation: or_default(&a.dilation, "1").to_string(),
                groups: or_default(&a.groups, "1").to_string(),
                flip: a.flip,
                layout: "nchw".into(),
            }
            .conv_desc(or_default(&a.padding_mode, "zeros"))?;
            let x = tensor("input", input, given(&a.input_shape).map(|s| ("input-shape", s)), files, "conv")?;
            let w =
                tensor("weight", weight, given(&a.weight_shape).map(|s| ("weight-shape", s)), files, "conv")?;
            let b = match given(&a.bias) {
                None => None,
                Some(s) => {
                    let b = if is_file(s) {
                        if !files {
                            return Err(format!(
                                "invalid bias {}: only inline values are accepted here, not files",
                                short(s)
                            ));
                        }
                        read_file("bias", s, "conv")?
                    } else {
                        parse_inline("bias", s)?
                    };
                    if b.shape.len() != 1 {
                        return Err(format!(
                            "invalid bias shape {:?}: expected a 1-D array, one value per output channel",
                            b.shape
                        ));
                    }
                    Some(b.data)
                }
            };
            explain_conv(&desc, &x.data, &x.shape, &w.data, &w.shape, b.as_deref(), &limits).map_err(e)
        }
        Some(kind) => {
            let kind: PoolKind = kind.parse().map_err(e)?;
            for (flag, v) in [("weight", &a.weight), ("bias", &a.bias), ("weight-shape", &a.weight_shape)] {
                if let Some(v) = given(v) {
                    return Err(format!("invalid {flag} {}: pooling takes no {flag}", short(v)));
                }
            }
            if a.flip {
                return Err("invalid flip: pooling has no kernel to flip".into());
            }
            let groups = parse_groups(or_default(&a.groups, "1"))?;
            if groups != 1 {
                return Err(format!("invalid groups {groups}: pooling has no groups"));
            }
            let mode = or_default(&a.padding_mode, "zeros").trim();
            if mode != "zeros" && mode != "zero" {
                return Err(format!("invalid padding-mode {mode}: pooling pads with nothing that can win or count as a value; only zeros"));
            }
            let global = matches!(kind, PoolKind::GlobalMax | PoolKind::GlobalAvg);
            if a.exclude_pad && matches!(kind, PoolKind::Max | PoolKind::GlobalMax) {
                return Err(format!("invalid exclude-pad: only for --pool avg, not {kind}"));
            }
            let kernel = match (given(&a.kernel), global) {
                (Some(k), _) => parse_list("kernel", k).map_err(e)?,
                (None, true) => vec![1],
                (None, false) => return Err(format!("missing kernel: --pool {kind} needs --kernel K")),
            };
            let mut desc = PoolDesc::new(kind)
                .kernel(kernel)
                .padding(or_default(&a.padding, "0").parse::<Padding>().map_err(e)?)
                .dilation(parse_list("dilation", or_default(&a.dilation, "1")).map_err(e)?)
                .ceil_mode(a.ceil_mode)
                .count_include_pad(!a.exclude_pad);
            if let Some(s) = given(&a.stride) {
                desc = desc.stride(parse_list("stride", s).map_err(e)?);
            }
            let x = tensor("input", input, given(&a.input_shape).map(|s| ("input-shape", s)), files, "pool")?;
            explain_pool(&desc, &x.data, &x.shape, &limits).map_err(e)
        }
    }
}

/// A number for JSON: integers as integers, non-finite values (−∞ padding of max pooling,
/// NaN) as null.
fn num(v: f64) -> Value {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 9.007_199_254_740_992e15 {
        json!(v as i64)
    } else if v.is_finite() {
        json!(v)
    } else {
        Value::Null
    }
}

fn nums(v: &[f64]) -> Value {
    Value::Array(v.iter().map(|&x| num(x)).collect())
}

fn opt_nums(v: &Option<Vec<f64>>) -> Value {
    v.as_deref().map_or(Value::Null, nums)
}

fn opt_num(v: Option<f64>) -> Value {
    v.map_or(Value::Null, num)
}

/// The JSON contract of the web page (extra fields beyond it are allowed).
fn to_json(ex: &Explanation) -> Value {
    let steps: Vec<Value> = ex
        .steps
        .iter()
        .map(|s| {
            let terms: Vec<Value> = s
                .terms
                .iter()
                .map(|t| {
                    json!({
                        "c": t.c, "tap": t.tap, "padded": t.padded, "source": t.source,
                        "x": num(t.x), "w": opt_num(t.w), "product": opt_num(t.product),
                        "reads": t.reads, "weight_tap": t.weight_tap,
                    })
                })
                .collect();
            json!({
                "n": s.n, "k": s.k, "out": s.out, "sum": opt_num(s.sum), "bias": opt_num(s.bias),
                "value": num(s.value), "terms": terms,
                "divisor": opt_num(s.divisor), "argmax": s.argmax,
            })
        })
        .collect();
    let formula: Vec<Value> = ex
        .formula
        .iter()
        .map(|f| {
            let a = f.numbers;
            json!({
                "axis": f.axis, "input": a.input, "pad_begin": a.pad_begin, "pad_end": a.pad_end,
                "dilation": a.dilation, "kernel": a.kernel, "stride": a.stride, "output": a.output,
                "text": f.text, "ceil_mode": f.ceil_mode,
            })
        })
        .collect();
    json!({
        "op": ex.op.name(),
        "spatial_dims": ex.axes.len(),
        "input_shape": ex.input_shape,
        "weight_shape": ex.weight_shape,
        "output_shape": ex.output_shape,
        "input": nums(&ex.input),
        "weight": opt_nums(&ex.weight),
        "bias": opt_nums(&ex.bias),
        "output": nums(&ex.output),
        "pad_begin": ex.axes.iter().map(|a| a.pad_begin).collect::<Vec<_>>(),
        "pad_end": ex.axes.iter().map(|a| a.pad_end).collect::<Vec<_>>(),
        "padded_shape": ex.padded_shape,
        "padded": nums(&ex.padded),
        "padded_is_pad": ex.padded_is_pad,
        "kernel_applied": opt_nums(&ex.kernel_applied),
        "formula": formula,
        "steps": steps,
        "groups": ex.groups,
        "flip": ex.flip,
        "padding_mode": if ex.op == Op::Conv { Value::from(ex.padding_mode.to_string()) } else { Value::Null },
        "count_include_pad": if ex.op == Op::AvgPool { Value::from(ex.count_include_pad) } else { Value::Null },
        "ceil_mode": ex.ceil_mode,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_requests_mean_the_flag_defaults() {
        let a: ExplainArgs = serde_json::from_str(r#"{"input":"1,2,0,-1,3,1","weight":"2,-1,1"}"#).unwrap();
        let v = explain_json_inline(&a).unwrap();
        assert_eq!(v["output"], json!([0, 3, 4, -4]));
        let a: ExplainArgs = serde_json::from_str(
            r#"{"input":"1,2;3,4","weight":"1,0;0,1","stride":"1","padding":"same","padding-mode":"reflect"}"#,
        )
        .unwrap();
        // same padding of a 2×2 kernel on 2×2: total 1 per axis, at the end; reflect pads
        // row 2 with row 0 mirrored about row 1 → [[1,2,1],[3,4,3],[1,2,1]]; y = x[i,j] + x[i+1,j+1].
        let v = explain_json_inline(&a).unwrap();
        assert_eq!(v["output"], json!([5, 5, 5, 5]));
        assert!(serde_json::from_str::<ExplainArgs>(r#"{"inputs":"1"}"#).is_err());
        let a: ExplainArgs = serde_json::from_str(r#"{"input":"x.npy","weight":"1"}"#).unwrap();
        assert!(explain_json_inline(&a).unwrap_err().contains("only inline values"));
    }
}
