//! Run one convolution plan repeatedly, for profilers (`perf record`, callgrind):
//! `cargo run --release --example profile -- 1,64,56,56 64,64,3,3 1 1 1 1 [reps] [threads]`
//! (input shape, weight shape, stride, padding, dilation, groups).

use convkit::{parse_list, ConvDesc, ConvPlan, ConvProblem, Padding, PlanOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.len() < 6 {
        return Err("usage: profile INPUT WEIGHT STRIDE PADDING DILATION GROUPS [REPS] [THREADS]".into());
    }
    let desc = ConvDesc::new()
        .stride(parse_list("stride", &a[2])?)
        .padding(a[3].parse::<Padding>()?)
        .dilation(parse_list("dilation", &a[4])?)
        .groups(a[5].parse()?);
    let p = ConvProblem::new(&desc, &parse_list("input", &a[0])?, &parse_list("weight", &a[1])?)?;
    let reps: usize = a.get(6).map_or(Ok(20), |s| s.parse())?;
    let threads: usize = a.get(7).map_or(Ok(1), |s| s.parse())?;
    let w = vec![0.5f32; p.weight_shape().iter().product()];
    let x = vec![0.25f32; p.input_shape().iter().product()];
    let plan = ConvPlan::new(&p, &w, &PlanOptions::new().threads(threads))?;
    let mut y = vec![0f32; p.output_shape().iter().product()];
    let mut ws = plan.workspace()?;
    let t = std::time::Instant::now();
    for _ in 0..reps {
        plan.execute(&x, None, &mut y, &mut ws)?;
    }
    let s = t.elapsed().as_secs_f64() / reps as f64;
    println!(
        "{} {}: {:.3} ms, {:.1} GFLOP/s",
        p,
        plan.implementation(),
        s * 1e3,
        2.0 * p.macs() as f64 / s / 1e9
    );
    Ok(())
}
