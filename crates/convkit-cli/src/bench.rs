//! `convkit bench`: time convolution plans on benchmark workloads (the suite format of
//! `bench/suite.json`), median of repeated runs, in GFLOP/s and percent of this machine's
//! measured FMA peak.

use clap::Args;
use convkit::backward::GradWeightPlan;
use convkit::kernels::measure_fma_peak;
use convkit::{ConvDesc, ConvPlan, ConvProblem, Padding, PlanOptions};
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
    /// reference; for backward_weight: grad-weight-gemm:LEVEL or reference)
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
    weight: Vec<usize>,
    desc: ConvDesc,
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
            let desc = ConvDesc::new()
                .stride(list(c, "stride", &name)?)
                .padding(Padding::Explicit(list(c, "padding", &name)?))
                .dilation(list(c, "dilation", &name)?)
                .groups(c.get("groups").and_then(Value::as_u64).unwrap_or(1) as usize);
            Ok(Case {
                pass: c.get("pass").and_then(Value::as_str).unwrap_or("forward").to_string(),
                input: list(c, "input", &name)?,
                weight: list(c, "weight", &name)?,
                desc,
                name,
            })
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
            weight: convkit::parse_list("weight", w).map_err(|e| e.to_string())?,
            desc: a.conv.conv_desc("zeros")?,
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
        let p =
            ConvProblem::new(&c.desc, &c.input, &c.weight).map_err(|e| format!("case {}: {e}", c.name))?;
        let w = pseudo_random(c.weight.iter().product(), 2);
        let flops = 2.0 * p.macs() as f64;
        // The data gradient runs as the equivalent forward convolution where one exists; the
        // weight gradient as its own plan.
        let timed = match c.pass.as_str() {
            "forward" => Some((p.clone(), w)),
            "backward_input" => convkit::backward::grad_input_as_conv(&p, &w),
            "backward_weight" => Some((p.clone(), w)),
            _ => None,
        };
        let Some((q, w)) = timed else {
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
        let x = pseudo_random(q.input_shape().iter().product(), 1);
        let p = q;
        for (&t, (_, peak)) in threads.iter().zip(&peaks) {
            let peak = peak.map(|p| p.1);
            let mut opts = PlanOptions::new().threads(t).exact(a.exact);
            if let Some(name) = &a.implementation {
                opts = opts.implementation(name);
            }
            let err = |e: convkit::Error| format!("case {}: {e}", c.name);
            let (name, wsb, times) = if c.pass == "backward_weight" {
                let plan = GradWeightPlan::new(&p, &opts).map_err(err)?;
                let gy = pseudo_random(p.output_shape().iter().product(), 3);
                let mut gw = vec![0f32; w.len()];
                let mut ws = plan.workspace().map_err(err)?;
                let times = time_runs(&a, || plan.execute(&x, &gy, &mut gw, &mut ws)).map_err(err)?;
                (plan.implementation(), plan.workspace_len() * 4, times)
            } else {
                let plan = ConvPlan::new(&p, &w, &opts).map_err(err)?;
                let mut y = vec![0f32; p.output_shape().iter().product()];
                let mut ws = plan.workspace().map_err(err)?;
                let times = time_runs(&a, || plan.execute(&x, None, &mut y, &mut ws)).map_err(err)?;
                (plan.implementation(), plan.workspace_len() * 4, times)
            };
            approximate |= name.starts_with("winograd");
            let mut times = times;
            let med = median(&mut times);
            let gflops = flops / med / 1e9;
            let pct = peak.map(|pk| 100.0 * gflops / pk);
            if a.json {
                println!(
                    "{}",
                    json!({"case": c.name, "threads": t, "implementation": name, "median_ms": med * 1e3,
                           "gflops": gflops, "percent_peak": pct, "workspace_bytes": wsb, "runs": times.len(),
                           "problem": p.to_string()})
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
            ConvProblem::new(&c.desc, &c.input, &c.weight).unwrap();
        }
    }
}
