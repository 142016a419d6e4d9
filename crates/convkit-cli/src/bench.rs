//! `convkit bench`: time convolution, transposed convolution and pooling plans on benchmark
//! workloads (the suite format of `bench/suite.json`), median of repeated runs, in GFLOP/s and
//! percent of this machine's measured FMA peak. Cases of a pass it does not know are skipped
//! with a line on stderr.

use clap::Args;
use convkit::backward::GradWeightPlan;
use convkit::kernels::measure_fma_peak;
use convkit::plan::ConvTransposePlan;
use convkit::{
    ConvDesc, ConvPlan, ConvProblem, ConvTransposeDesc, ConvTransposeProblem, Padding, PlanOptions, PoolDesc,
    PoolKind, PoolPlan, PoolProblem,
};
use serde_json::{json, Value};
use std::time::Instant;

/// The suite shipped with convkit (a copy of the shared benchmark suite).
const DEFAULT_SUITE: &str = include_str!("../../../bench/suite.json");

#[derive(Args)]
pub struct BenchArgs {
    /// Suite file (JSON, convbench format); default: the built-in suite
    suite: Option<std::path::PathBuf>,
    /// Only these cases (comma-separated names)
    #[arg(long, value_name = "NAMES")]
    cases: Option<String>,
    /// Thread counts to measure, comma-separated
    #[arg(long, default_value = "1,2", value_name = "T")]
    threads: String,
    /// Force an implementation (e.g. winograd:avx512, gemm-tiled:avx2, gemm-tiled:generic,
    /// reference; for backward_weight: grad-weight-winograd:LEVEL, grad-weight-gemm:LEVEL or
    /// reference; for transpose:
    /// phase-split or a forward name). `reference` applies to every case, `pool-direct` to
    /// the maxpool/avgpool cases only, any other name to the convolution cases only (pooling
    /// then runs its automatic choice)
    #[arg(long, value_name = "NAME")]
    implementation: Option<String>,
    /// Only exact algorithms (no Winograd; also CONVKIT_EXACT=1)
    #[arg(long)]
    exact: bool,
    /// Minimum measuring time per case and thread count, in seconds
    #[arg(long, default_value = "1.0", value_name = "S")]
    min_time: f64,
    /// Minimum number of timed runs per case and thread count
    #[arg(long, default_value = "5", value_name = "N")]
    min_iters: usize,
    /// Print JSON lines instead of a table
    #[arg(long)]
    json: bool,
    /// Only measure the machine's FMA peak
    #[arg(long)]
    peak: bool,
    /// One case from the command line: input shape (N,C,spatial…) …
    #[arg(long, value_name = "SHAPE", requires = "weight")]
    input: Option<String>,
    /// … and weight shape (K,C/groups,kernel…); stride, padding, dilation, groups, flip and
    /// layout come from the convolution flags
    #[arg(long, value_name = "SHAPE", requires = "input")]
    weight: Option<String>,
    #[command(flatten)]
    conv: crate::ConvArgs,
}

struct Case {
    name: String,
    pass: String,
    input: Vec<usize>,
    op: Op,
}

/// What a case times, by its pass.
enum Op {
    /// `forward`, `backward_input`, `backward_weight`.
    Conv { weight: Vec<usize>, desc: ConvDesc },
    /// `transpose` (weight in ConvTranspose order).
    Transpose { weight: Vec<usize>, desc: ConvTransposeDesc },
    /// `maxpool`, `avgpool` (floor mode; average counts the padding).
    Pool { desc: PoolDesc },
    /// A pass this version does not know: skipped.
    Unknown,
}

impl Case {
    /// The pass's problem checked, as the thing to time.
    fn problem(&self) -> Result<Problem, String> {
        let err = |e: convkit::Error| format!("case {}: {e}", self.name);
        Ok(match &self.op {
            Op::Conv { weight, desc } => {
                Problem::Conv(ConvProblem::new(desc, &self.input, weight).map_err(err)?)
            }
            Op::Transpose { weight, desc } => {
                Problem::Transpose(ConvTransposeProblem::new(desc, &self.input, weight).map_err(err)?)
            }
            Op::Pool { desc } => Problem::Pool(PoolProblem::new(desc, &self.input).map_err(err)?),
            Op::Unknown => Problem::Unknown,
        })
    }
}

enum Problem {
    Conv(ConvProblem),
    Transpose(ConvTransposeProblem),
    Pool(PoolProblem),
    Unknown,
}

fn list(v: &Value, key: &str, name: &str) -> Result<Vec<usize>, String> {
    v.get(key)
        .and_then(Value::as_array)
        .and_then(|a| a.iter().map(|x| x.as_u64().map(|x| x as usize)).collect::<Option<Vec<_>>>())
        .ok_or_else(|| format!("invalid suite case {name}: '{key}' must be a list of non-negative integers"))
}

fn parse_suite(text: &str, origin: &str) -> Result<Vec<Case>, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("invalid suite {origin}: {e}"))?;
    let cases = v
        .get("cases")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("invalid suite {origin}: no 'cases' list"))?;
    cases
        .iter()
        .map(|c| {
            let name = c.get("name").and_then(Value::as_str).unwrap_or("?").to_string();
            let pass = c.get("pass").and_then(Value::as_str).unwrap_or("forward").to_string();
            let groups = c.get("groups").and_then(Value::as_u64).unwrap_or(1) as usize;
            let op = match pass.as_str() {
                "forward" | "backward_input" | "backward_weight" => Op::Conv {
                    weight: list(c, "weight", &name)?,
                    desc: ConvDesc::new()
                        .stride(list(c, "stride", &name)?)
                        .padding(Padding::Explicit(list(c, "padding", &name)?))
                        .dilation(list(c, "dilation", &name)?)
                        .groups(groups),
                },
                "transpose" => Op::Transpose {
                    weight: list(c, "weight", &name)?,
                    desc: ConvTransposeDesc::new()
                        .stride(list(c, "stride", &name)?)
                        .padding(Padding::Explicit(list(c, "padding", &name)?))
                        .dilation(list(c, "dilation", &name)?)
                        .output_padding(list(c, "output_padding", &name)?)
                        .groups(groups),
                },
                "maxpool" | "avgpool" => Op::Pool {
                    desc: PoolDesc::new(if pass == "maxpool" { PoolKind::Max } else { PoolKind::Avg })
                        .kernel(list(c, "kernel", &name)?)
                        .stride(list(c, "stride", &name)?)
                        .padding(Padding::Explicit(list(c, "padding", &name)?))
                        .ceil_mode(false)
                        .count_include_pad(true),
                },
                _ => Op::Unknown,
            };
            let input = if matches!(op, Op::Unknown) { Vec::new() } else { list(c, "input", &name)? };
            Ok(Case { pass, input, op, name })
        })
        .collect()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn pseudo_random(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        })
        .collect()
}

pub fn run(a: BenchArgs) -> Result<(), String> {
    let threads = convkit::parse_list("threads", &a.threads).map_err(|e| e.to_string())?;
    if threads.contains(&0) {
        return Err(format!("invalid threads {}: counts must be at least 1", a.threads));
    }
    if !(a.min_time.is_finite() && a.min_time >= 0.0) {
        return Err(format!("invalid min-time {}: expected seconds ≥ 0", a.min_time));
    }
    // The peak at the widest vector level the CPU has (whatever CONVKIT_MAX_ISA caps the
    // plans at), so "% peak" always compares with what the machine can do.
    let peaks: Vec<(usize, Option<(convkit::Isa, f64)>)> =
        threads.iter().map(|&t| (t, measure_fma_peak(t, 0.3))).collect();
    for (t, p) in &peaks {
        if a.json {
            // A number, or null where there is no SIMD FMA kernel to measure with.
            println!(
                "{}",
                json!({"peak_threads": t, "peak_gflops": p.map(|p| p.1), "peak_isa": p.map(|p| p.0.to_string())})
            );
        } else {
            match p {
                Some((isa, p)) => println!("FMA peak ({isa}), {t} thread(s): {p:.1} GFLOP/s"),
                None => println!("FMA peak, {t} thread(s): n/a (no SIMD FMA kernel on this CPU)"),
            }
        }
    }
    if a.peak {
        return Ok(());
    }
    if a.conv.bias.is_some() {
        return Err("invalid bias: bench times convolutions without a bias".into());
    }
    let mut cases = if let (Some(i), Some(w)) = (&a.input, &a.weight) {
        vec![Case {
            name: "command-line".into(),
            pass: "forward".into(),
            input: convkit::parse_list("input", i).map_err(|e| e.to_string())?,
            op: Op::Conv {
                weight: convkit::parse_list("weight", w).map_err(|e| e.to_string())?,
                desc: a.conv.conv_desc("zeros")?,
            },
        }]
    } else if let Some(path) = &a.suite {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read suite {}: {e}", path.display()))?;
        parse_suite(&text, &path.display().to_string())?
    } else {
        parse_suite(DEFAULT_SUITE, "built-in")?
    };
    if let Some(names) = &a.cases {
        let want: Vec<&str> = names.split(',').map(str::trim).collect();
        if let Some(bad) = want.iter().find(|n| !cases.iter().any(|c| &c.name == *n)) {
            return Err(format!("invalid cases {names}: no case named {bad}"));
        }
        cases.retain(|c| want.contains(&c.name.as_str()));
    }
    if !a.json {
        println!(
            "{:<28} {:>3} {:<24} {:>10} {:>9} {:>7} {:>12}",
            "case", "thr", "implementation", "median ms", "GFLOP/s", "% peak", "workspace B"
        );
    }
    let mut approximate = false;
    for c in &cases {
        let problem = c.problem()?;
        if let Problem::Unknown = problem {
            eprintln!("convkit bench: skipping case {}: unknown pass '{}'", c.name, c.pass);
            continue;
        }
        // The data gradient runs as the equivalent forward convolution where one exists; the
        // weight gradient as its own plan.
        let timed = match (&problem, c.pass.as_str()) {
            (Problem::Conv(p), "backward_input") => {
                let w = pseudo_random(p.weight_shape().iter().product(), 2);
                convkit::backward::grad_input_as_conv(p, &w).map(|(q, w)| (Problem::Conv(q), w))
            }
            (Problem::Conv(p), _) => {
                Some((Problem::Conv(p.clone()), pseudo_random(p.weight_shape().iter().product(), 2)))
            }
            (Problem::Transpose(p), _) => {
                Some((Problem::Transpose(p.clone()), pseudo_random(p.weight_shape().iter().product(), 2)))
            }
            (Problem::Pool(p), _) => Some((Problem::Pool(p.clone()), Vec::new())),
            (Problem::Unknown, _) => None,
        };
        let Some((problem, w)) = timed else {
            if a.json {
                println!(
                    "{}",
                    json!({"case": c.name, "pass": c.pass, "skipped": "no fast path for this pass"})
                );
            } else {
                println!("{:<28} {:>3} skipped: {} has no fast path", c.name, "-", c.pass);
            }
            continue;
        };
        let (flops, input_shape, text) = match &problem {
            Problem::Conv(p) => (2.0 * p.macs() as f64, p.input_shape(), p.to_string()),
            Problem::Transpose(p) => {
                // 2·N·C·∏in·(K/groups)·∏kernel, as the suite defines it.
                let ins: f64 = p.axes.iter().map(|ax| ax.input as f64).product();
                let ks: f64 = p.axes.iter().map(|ax| ax.kernel as f64).product();
                let kg = (p.out_channels / p.groups) as f64;
                let flops = 2.0 * p.batch as f64 * p.in_channels as f64 * ins * kg * ks;
                (
                    flops,
                    p.input_shape(),
                    format!("transpose {:?} weight {:?}", p.input_shape(), p.weight_shape()),
                )
            }
            Problem::Pool(p) => {
                // N·C·∏out·∏kernel: one compare or add per window tap.
                let outs: f64 = p.axes.iter().map(|ax| ax.output as f64).product();
                let ks: f64 = p.axes.iter().map(|ax| ax.kernel as f64).product();
                let flops = p.batch as f64 * p.channels as f64 * outs * ks;
                let kernel: Vec<usize> = p.axes.iter().map(|ax| ax.kernel).collect();
                (flops, p.input_shape(), format!("{} {:?} kernel {kernel:?}", c.pass, p.input_shape()))
            }
            Problem::Unknown => unreachable!("unknown passes are skipped above"),
        };
        let mut x_buf = LineBuf::from(&pseudo_random(input_shape.iter().product(), 1));
        let x: &[f32] = x_buf.get();
        for (&t, (_, peak)) in threads.iter().zip(&peaks) {
            let peak = peak.map(|p| p.1);
            let mut opts = PlanOptions::new().threads(t).exact(a.exact);
            let pool = matches!(problem, Problem::Pool(_));
            if let Some(name) = &a.implementation {
                if name == "reference" || (name == "pool-direct") == pool {
                    opts = opts.implementation(name);
                }
            }
            let err = |e: convkit::Error| format!("case {}: {e}", c.name);
            let (name, wsb, times) = match &problem {
                Problem::Conv(p) if c.pass == "backward_weight" => {
                    let plan = GradWeightPlan::new(p, &opts).map_err(err)?;
                    let mut gy_buf = LineBuf::from(&pseudo_random(p.output_shape().iter().product(), 3));
                    let gy: &[f32] = gy_buf.get();
                    let mut gw_buf = LineBuf::zeros(w.len());
                    let gw = gw_buf.get();
                    let mut ws = plan.workspace().map_err(err)?;
                    let times = time_runs(&a, || plan.execute(x, gy, gw, &mut ws)).map_err(err)?;
                    (plan.implementation(), plan.workspace_len() * 4, times)
                }
                Problem::Conv(p) => {
                    let plan = ConvPlan::new(p, &w, &opts).map_err(err)?;
                    let mut y_buf = LineBuf::zeros(p.output_shape().iter().product());
                    let y = y_buf.get();
                    let mut ws = plan.workspace().map_err(err)?;
                    let times = time_runs(&a, || plan.execute(x, None, y, &mut ws)).map_err(err)?;
                    (plan.implementation(), plan.workspace_len() * 4, times)
                }
                Problem::Transpose(p) => {
                    let plan = ConvTransposePlan::new(p, &w, &opts).map_err(err)?;
                    let mut y_buf = LineBuf::zeros(p.output_shape().iter().product());
                    let y = y_buf.get();
                    let mut ws = plan.workspace().map_err(err)?;
                    let times = time_runs(&a, || plan.execute(x, None, y, &mut ws)).map_err(err)?;
                    (plan.implementation(), plan.workspace_len() * 4, times)
                }
                Problem::Pool(p) => {
                    let plan = PoolPlan::new(p, &opts).map_err(err)?;
                    let mut y_buf = LineBuf::zeros(p.output_shape().iter().product());
                    let y = y_buf.get();
                    let mut ws = plan.workspace().map_err(err)?;
                    let times = time_runs(&a, || plan.execute(x, y, None, &mut ws)).map_err(err)?;
                    (plan.implementation(), plan.workspace_len() * 4, times)
                }
                Problem::Unknown => unreachable!("unknown passes are skipped above"),
            };
            approximate |= name.contains("winograd");
            let mut times = times;
            let med = median(&mut times);
            let gflops = flops / med / 1e9;
            let pct = peak.map(|pk| 100.0 * gflops / pk);
            if a.json {
                println!(
                    "{}",
                    json!({"case": c.name, "threads": t, "implementation": name, "median_ms": med * 1e3,
                           "gflops": gflops, "percent_peak": pct, "workspace_bytes": wsb, "runs": times.len(),
                           "problem": text})
                );
            } else {
                println!(
                    "{:<28} {:>3} {:<24} {:>10.3} {:>9.1} {:>7} {:>12}",
                    c.name,
                    t,
                    name,
                    med * 1e3,
                    gflops,
                    pct.map_or("-".into(), |p| format!("{p:.0}%")),
                    wsb
                );
            }
        }
    }
    if approximate && !a.json {
        println!(
            "winograd: GFLOP/s and % peak count the direct algorithm's 2·MACs (an effective rate; \
             it multiplies less); --exact measures without it"
        );
    }
    Ok(())
}

/// A buffer whose data starts on a 64-byte cache line, as PyTorch's and ONNX Runtime's
/// tensors do (a `Vec` of this size is 16-byte aligned). The peers are timed on aligned
/// tensors, and a misaligned output makes two threads writing neighbouring columns share the
/// cache line at every boundary between their parts.
struct LineBuf {
    v: Vec<f32>,
    off: usize,
    len: usize,
}

impl LineBuf {
    fn zeros(len: usize) -> Self {
        let v = vec![0f32; len + 16];
        let off = v.as_ptr().align_offset(64).min(16);
        LineBuf { v, off, len }
    }

    fn from(data: &[f32]) -> Self {
        let mut b = Self::zeros(data.len());
        b.get().copy_from_slice(data);
        b
    }

    fn get(&mut self) -> &mut [f32] {
        &mut self.v[self.off..][..self.len]
    }
}

/// One warm-up run, then timed runs until both `min_iters` runs and `min_time` seconds.
fn time_runs(a: &BenchArgs, mut run: impl FnMut() -> convkit::Result<()>) -> convkit::Result<Vec<f64>> {
    run()?;
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < a.min_iters || start.elapsed().as_secs_f64() < a.min_time {
        let t0 = Instant::now();
        run()?;
        times.push(t0.elapsed().as_secs_f64());
    }
    Ok(times)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_suite_parses_and_every_case_is_a_valid_problem() {
        let cases = parse_suite(DEFAULT_SUITE, "built-in").unwrap();
        assert!(cases.len() >= 16);
        for c in cases {
            assert!(!matches!(c.problem().unwrap(), Problem::Unknown), "{}", c.name);
        }
    }

    #[test]
    fn pool_cases_parse_and_unknown_passes_are_kept_for_skipping() {
        let text = r#"{"cases": [
            {"name": "mp", "pass": "maxpool", "input": [1, 2, 9, 9], "kernel": [3, 3], "stride": [2, 2], "padding": [1, 1]},
            {"name": "ap", "pass": "avgpool", "input": [1, 2, 8], "kernel": [2], "stride": [2], "padding": [0]},
            {"name": "new", "pass": "something_new", "whatever": true}
        ]}"#;
        let cases = parse_suite(text, "test").unwrap();
        let Problem::Pool(p) = cases[0].problem().unwrap() else { panic!("maxpool is a pool") };
        assert_eq!((p.kind, p.output_shape()), (PoolKind::Max, vec![1, 2, 5, 5]));
        let Problem::Pool(p) = cases[1].problem().unwrap() else { panic!("avgpool is a pool") };
        assert!(p.kind == PoolKind::Avg && p.count_include_pad);
        assert!(matches!(cases[2].problem().unwrap(), Problem::Unknown));
    }
}
