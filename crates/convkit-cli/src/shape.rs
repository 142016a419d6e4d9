//! `convkit shape`: a layer stack (the grammar of [`convkit::stack`], or a built-in trunk) analysed
//! for an input shape: one row per layer with output shape, parameters, multiply-adds and
//! receptive field, then totals, as a table, markdown, JSON or CSV.

use crate::CliResult;
use clap::Args;
use convkit::stack::{analyse, measure_field, model, parse, Analysis, Row, GRAMMAR, MODELS};
use convkit::{parse_list, ReceptiveField};
use serde_json::{json, Value};

/// Arguments of `convkit shape`.
#[derive(Args, Debug, Default, Clone, serde::Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct ShapeArgs {
    /// Input shape N,C,spatial… with 1 to 3 spatial axes (default 1,3,224,224 with --model)
    #[arg(long, value_name = "SHAPE")]
    pub input: Option<String>,
    /// The stack, e.g. "conv 64 k7 s2 p3; bn; relu; maxpool k3 s2 p1" (grammar below)
    #[arg(long, value_name = "STACK")]
    pub layers: Option<String>,
    /// A built-in trunk: alexnet | vgg16 | resnet18 | resnet50 | mobilenetv2
    #[arg(long, value_name = "NAME")]
    pub model: Option<String>,
    /// Output: table | markdown | json | csv
    #[arg(long, default_value = "table", value_name = "F")]
    pub format: String,
    /// List the built-in models and exit
    #[arg(long)]
    pub list_models: bool,
    /// Also measure each axis's receptive field by back-propagating through the actual layers
    #[arg(long)]
    pub check: bool,
}

/// The `--help` text after the options: the grammar and examples.
pub fn after_help() -> String {
    let mut s = format!("Grammar (--layers):\n{GRAMMAR}\n\nModels (--model):\n");
    for (name, what) in MODELS {
        s += &format!("  {name:<12} {what}\n");
    }
    s += "
Columns: output shape; parameters (weights and biases, batch-norm weight and bias); multiply-adds;
receptive field per spatial axis; jump (effective stride); start (centre of the first output's
field in input coordinates, input position 0 being the first input's centre; Araujo et al.,
Distill 2019). A residual block's field is the union of its branches'. The field is not defined
past a transposed convolution with stride > 1 (shown as '-', null in JSON).

Examples:
  convkit shape --model resnet50
  convkit shape --input 1,3,32,32 --layers \"conv 16 k3 p1; bn; relu; maxpool k2; res(conv 16 k3 p1; bn | )\"
  convkit shape --input 1,1,100 --layers \"conv 8 k5 s2 d2; avgpool k2; convT 4 k2 s2\" --format json

Exit status: 0 on success, 2 on any bad input (one line on stderr, nothing on stdout).";
    s
}

enum Format {
    Table,
    Markdown,
    Json,
    Csv,
}

fn format_of(s: &str) -> CliResult<Format> {
    match s.trim() {
        "" | "table" => Ok(Format::Table),
        "markdown" | "md" => Ok(Format::Markdown),
        "json" => Ok(Format::Json),
        "csv" => Ok(Format::Csv),
        other => Err(format!("invalid format {other}: expected table, markdown, json or csv")),
    }
}

fn model_names() -> String {
    MODELS.iter().map(|m| m.0).collect::<Vec<_>>().join(", ")
}

/// Resolve the arguments into an analysed stack.
fn analysis(a: &ShapeArgs) -> CliResult<Analysis> {
    let text = match (&a.layers, &a.model) {
        (Some(_), Some(m)) => {
            return Err(format!("invalid model {m}: give either --layers or --model, not both"))
        }
        (None, None) => return Err("missing layers: give --layers \"STACK\" or --model NAME".into()),
        (Some(l), None) => l.clone(),
        (None, Some(m)) => model(m)
            .ok_or_else(|| format!("invalid model {m}: unknown; expected one of {}", model_names()))?,
    };
    let input = match &a.input {
        Some(s) => parse_list("input", s).map_err(|e| e.to_string())?,
        None if a.model.is_some() => vec![1, 3, 224, 224],
        None => return Err("missing input: give --input N,C,spatial… (e.g. 1,3,224,224)".into()),
    };
    let layers = parse(&text).map_err(|e| e.to_string())?;
    if layers.is_empty() {
        return Err(format!("invalid layers '{}': no layers", text.trim()));
    }
    analyse(&layers, &input).map_err(|e| e.to_string())
}

fn field_json(f: &Option<Vec<ReceptiveField>>) -> (Value, Value, Value) {
    match f {
        Some(f) => (
            f.iter().map(|r| r.size).collect(),
            f.iter().map(|r| r.jump).collect(),
            f.iter().map(|r| r.start).collect(),
        ),
        None => (Value::Null, Value::Null, Value::Null),
    }
}

fn row_json(r: &Row) -> Value {
    let (rf, jump, start) = field_json(&r.field);
    let mut v = json!({
        "index": r.index, "text": r.text, "op": r.op, "output": r.output,
        "params": r.params, "macs": r.macs, "rf": rf, "jump": jump, "start": start,
    });
    if let Some((m, s)) = &r.branches {
        v["main"] = m.iter().map(row_json).collect();
        v["shortcut"] = s.iter().map(row_json).collect();
    }
    v
}

fn to_json(a: &Analysis) -> Value {
    let (rf, jump, start) = field_json(&a.field);
    json!({
        "input": a.input,
        "layers": a.rows.iter().map(row_json).collect::<Vec<_>>(),
        "total": {"params": a.params, "macs": a.macs, "output": a.output, "rf": rf, "jump": jump, "start": start},
    })
}

/// The JSON report (the contract the web page reads); errors are the CLI's messages.
pub fn report_json(args: &ShapeArgs) -> CliResult<Value> {
    format_of(&args.format)?;
    Ok(to_json(&analysis(args)?))
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn si(n: u64) -> String {
    match n {
        0..=9_999 => n.to_string(),
        10_000..=999_999 => format!("{:.2}K", n as f64 / 1e3),
        1_000_000..=999_999_999 => format!("{:.2}M", n as f64 / 1e6),
        _ => format!("{:.2}G", n as f64 / 1e9),
    }
}

fn xs<T: ToString>(v: &[T]) -> String {
    v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join("x")
}

fn field_cells(f: &Option<Vec<ReceptiveField>>) -> [String; 3] {
    match f {
        Some(f) => [
            xs(&f.iter().map(|r| r.size).collect::<Vec<_>>()),
            xs(&f.iter().map(|r| r.jump).collect::<Vec<_>>()),
            xs(&f.iter().map(|r| r.start).collect::<Vec<_>>()),
        ],
        None => ["-".into(), "-".into(), "-".into()],
    }
}

const HEAD: [&str; 8] = ["#", "layer", "output", "params", "MACs", "rf", "jump", "start"];

fn cells(a: &Analysis, readable: bool) -> Vec<[String; 8]> {
    let n = |v: u64, f: fn(u64) -> String| if readable { f(v) } else { v.to_string() };
    let mut out: Vec<[String; 8]> = a
        .rows
        .iter()
        .map(|r| {
            let [rf, j, s] = field_cells(&r.field);
            [
                r.index.to_string(),
                r.text.clone(),
                xs(&r.output),
                n(r.params, thousands),
                n(r.macs, si),
                rf,
                j,
                s,
            ]
        })
        .collect();
    let [rf, j, s] = field_cells(&a.field);
    out.push(["total".into(), String::new(), xs(&a.output), n(a.params, thousands), n(a.macs, si), rf, j, s]);
    out
}

fn render(a: &Analysis, f: Format) -> String {
    match f {
        Format::Json => serde_json::to_string_pretty(&to_json(a)).unwrap_or_default() + "\n",
        Format::Csv => {
            let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
            let mut s = String::from("index,text,op,output,params,macs,rf,jump,start\n");
            for r in &a.rows {
                let [rf, j, st] = field_cells(&r.field);
                s += &format!(
                    "{},{},{},{},{},{},{rf},{j},{st}\n",
                    r.index,
                    q(&r.text),
                    r.op,
                    xs(&r.output),
                    r.params,
                    r.macs
                );
            }
            let [rf, j, st] = field_cells(&a.field);
            s += &format!("total,,,{},{},{},{rf},{j},{st}\n", xs(&a.output), a.params, a.macs);
            s
        }
        Format::Markdown => {
            let mut s = format!("input {}\n\n| {} |\n", xs(&a.input), HEAD.join(" | "));
            s += "|---:|---|---|---:|---:|---|---|---|\n";
            for c in cells(a, true) {
                let c: Vec<String> = c.iter().map(|x| x.replace('|', "\\|")).collect();
                s += &format!("| {} |\n", c.join(" | "));
            }
            s
        }
        Format::Table => {
            let rows = cells(a, true);
            // Long residual texts are cut in the table only (json/csv keep them whole).
            let clip = |t: &str| {
                if t.chars().count() > 56 {
                    t.chars().take(55).collect::<String>() + "…"
                } else {
                    t.to_string()
                }
            };
            let rows: Vec<[String; 8]> = rows
                .into_iter()
                .map(|mut r| {
                    r[1] = clip(&r[1]);
                    r
                })
                .collect();
            let w: Vec<usize> = (0..8)
                .map(|i| rows.iter().map(|r| r[i].chars().count()).chain([HEAD[i].len()]).max().unwrap_or(0))
                .collect();
            let line = |r: &[String]| {
                let mut s = String::new();
                for (i, c) in r.iter().enumerate() {
                    let pad = w[i] - c.chars().count();
                    if i == 0 || i == 3 || i == 4 {
                        s += &format!("{}{c}  ", " ".repeat(pad));
                    } else {
                        s += &format!("{c}{}  ", " ".repeat(pad));
                    }
                }
                s.trim_end().to_string() + "\n"
            };
            let mut s = format!("input {}\n", xs(&a.input));
            s += &line(&HEAD.map(String::from));
            for r in &rows {
                s += &line(r);
            }
            s
        }
    }
}

fn check_lines(a: &Analysis) -> CliResult<String> {
    let mut s = String::new();
    let Some(fields) = &a.field else {
        return Ok(
            "impulse check: skipped (no receptive field past a strided transposed convolution)\n".into()
        );
    };
    for (axis, f) in fields.iter().enumerate() {
        let m = measure_field(a, axis).map_err(|e| e.to_string())?;
        let Some(m) = m else { continue };
        let centre = f.start + m.output as f64 * f.jump as f64;
        let ok = m.size() == f.size && m.centre() == centre;
        s += &format!(
            "impulse check, axis {axis}: output {} of a 1-D copy ({} long) sees inputs {}..={}: size {}, centre {} ({})\n",
            m.output,
            m.input_len,
            m.first,
            m.last,
            m.size(),
            m.centre(),
            if ok { "agrees" } else { "DISAGREES" }
        );
        if !ok {
            return Err(format!(
                "invalid layers: impulse check disagrees on axis {axis}: measured size {} centre {}, computed {} and {centre}",
                m.size(),
                m.centre(),
                f.size
            ));
        }
    }
    Ok(s)
}

/// `convkit shape`.
pub fn run(a: ShapeArgs) -> CliResult<()> {
    if a.list_models {
        for (name, what) in MODELS {
            println!("{name:<12} {what}");
        }
        return Ok(());
    }
    let f = format_of(&a.format)?;
    let an = analysis(&a)?;
    let check = if a.check { check_lines(&an)? } else { String::new() };
    // Everything is computed before anything is printed: an error leaves stdout empty.
    if let Format::Json = f {
        let mut v = report_json(&a)?;
        if a.check {
            v["check"] = check.lines().collect();
        }
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        print!("{}{check}", render(&an, f));
    }
    Ok(())
}
