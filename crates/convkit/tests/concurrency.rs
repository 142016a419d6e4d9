//! One plan shared by 8 threads, each executing it on its own data at the same time, gives
//! results bit-identical to serial runs: every plan type (convolution on each fast path,
//! transposed convolution, both gradients, pooling, filter stacks). `cargo test` runs a short
//! version; the soak (`cargo test --release -p convkit --test concurrency -- --ignored`) runs
//! 10^4 executions of each plan and prints its timings.

use convkit::filter::{Filter, FilterOptions, FilterPlan, Planar};
use convkit::{
    ConvDesc, ConvPlan, ConvProblem, ConvTransposeDesc, ConvTransposePlan, ConvTransposeProblem,
    GradInputPlan, GradWeightPlan, PadMode, Padding, PlanOptions, PoolDesc, PoolKind, PoolPlan, PoolProblem,
};
use std::time::Instant;

const THREADS: usize = 8;

/// Deterministic pseudo-random values in [-1, 1) (not integers: rounding must agree too).
fn data(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// One plan to share: `run(i)` executes it on the `i`-th thread's data and returns the
/// output's bits.
struct Shared<'a> {
    name: String,
    run: Box<dyn Fn(usize) -> Vec<u32> + Sync + 'a>,
}

/// Serial results first, then `THREADS` threads each executing `reps` times at once; every
/// result must equal the serial one bit for bit. Returns the executions per second.
fn check(s: &Shared<'_>, reps: usize) -> f64 {
    let serial: Vec<Vec<u32>> = (0..THREADS).map(|i| (s.run)(i)).collect();
    for i in 1..THREADS {
        assert_ne!(serial[0], serial[i], "{}: threads' data should differ", s.name);
    }
    let start = Instant::now();
    std::thread::scope(|scope| {
        for (i, want) in serial.iter().enumerate() {
            let s = &s;
            scope.spawn(move || {
                for r in 0..reps {
                    let got = (s.run)(i);
                    assert!(
                        got == *want,
                        "{}: thread {i}, execution {r} differs from the serial run",
                        s.name
                    );
                }
            });
        }
    });
    (THREADS * reps) as f64 / start.elapsed().as_secs_f64()
}

fn opts() -> PlanOptions {
    // More workers than this machine's cores, so every execution splits its work.
    PlanOptions::new().threads(3)
}

fn conv_plan(
    name: &str,
    desc: ConvDesc,
    x_shape: &[usize],
    w_shape: &[usize],
    o: PlanOptions,
) -> Shared<'static> {
    let p = ConvProblem::new(&desc, x_shape, w_shape).unwrap();
    let w = data(w_shape.iter().product(), 7);
    let b = data(p.out_channels, 8);
    let plan = ConvPlan::new(&p, &w, &o).unwrap();
    let xs: Vec<Vec<f32>> = (0..THREADS).map(|i| data(x_shape.iter().product(), 100 + i as u64)).collect();
    let name = format!("conv {name} {} ({})", p, plan.implementation());
    Shared {
        name,
        run: Box::new(move |i| {
            let mut y = vec![0.0; p.output_shape().iter().product()];
            let mut ws = plan.workspace().unwrap();
            plan.execute(&xs[i], Some(&b), &mut y, &mut ws).unwrap();
            bits(&y)
        }),
    }
}

fn plans() -> Vec<Shared<'static>> {
    let mut v = vec![
        conv_plan(
            "3x3 wide",
            ConvDesc::new().padding(Padding::Same),
            &[1, 16, 20, 20],
            &[16, 16, 3, 3],
            opts(),
        ),
        conv_plan(
            "3x3 same",
            ConvDesc::new().padding(Padding::Same),
            &[2, 8, 20, 20],
            &[16, 8, 3, 3],
            opts(),
        ),
        conv_plan(
            "3x3 exact",
            ConvDesc::new().padding(Padding::Same),
            &[2, 8, 20, 20],
            &[16, 8, 3, 3],
            opts().exact(true),
        ),
        conv_plan(
            "depthwise",
            ConvDesc::new().groups(8).padding(Padding::Same).padding_mode(PadMode::Reflect),
            &[1, 8, 24, 24],
            &[8, 1, 5, 5],
            opts(),
        ),
        conv_plan("pointwise", ConvDesc::new(), &[2, 16, 12, 12], &[24, 16, 1, 1], opts()),
        conv_plan(
            "large kernel",
            ConvDesc::new().padding(Padding::Same),
            &[1, 2, 64, 64],
            &[2, 2, 21, 21],
            opts(),
        ),
        conv_plan(
            "strided dilated",
            ConvDesc::new()
                .stride([2])
                .dilation([2])
                .groups(2)
                .padding(Padding::Same)
                .padding_mode(PadMode::Circular),
            &[1, 6, 19, 17],
            &[10, 3, 3, 3],
            opts().exact(true),
        ),
        conv_plan("1-D", ConvDesc::new().padding(Padding::Same), &[3, 4, 50], &[5, 4, 7], opts()),
        conv_plan("3-D", ConvDesc::new().padding(Padding::Same), &[1, 3, 8, 9, 10], &[4, 3, 3, 3, 3], opts()),
    ];

    // Transposed convolution.
    {
        let desc = ConvTransposeDesc::new().stride([2]).padding(Padding::Explicit(vec![1]));
        let (xs_shape, ws_shape) = ([2usize, 4, 11, 9], [4usize, 6, 3, 3]);
        let p = ConvTransposeProblem::new(&desc, &xs_shape, &ws_shape).unwrap();
        let w = data(ws_shape.iter().product(), 9);
        let plan = ConvTransposePlan::new(&p, &w, &opts()).unwrap();
        let xs: Vec<Vec<f32>> =
            (0..THREADS).map(|i| data(xs_shape.iter().product(), 200 + i as u64)).collect();
        v.push(Shared {
            name: format!("conv-transpose ({})", plan.implementation()),
            run: Box::new(move |i| {
                let mut y = vec![0.0; p.output_shape().iter().product()];
                let mut ws = plan.workspace().unwrap();
                plan.execute(&xs[i], None, &mut y, &mut ws).unwrap();
                bits(&y)
            }),
        });
    }

    // Gradients of a strided convolution.
    for (tag, desc) in [
        ("stride 1", ConvDesc::new().padding(Padding::Same)),
        ("stride 2", ConvDesc::new().stride([2]).padding(Padding::Explicit(vec![1]))),
    ] {
        let (x_shape, w_shape) = ([2usize, 6, 15, 13], [8usize, 6, 3, 3]);
        let p = ConvProblem::new(&desc, &x_shape, &w_shape).unwrap();
        let w = data(w_shape.iter().product(), 11);
        let gys: Vec<Vec<f32>> =
            (0..THREADS).map(|i| data(p.output_shape().iter().product(), 300 + i as u64)).collect();
        let xs: Vec<Vec<f32>> =
            (0..THREADS).map(|i| data(x_shape.iter().product(), 400 + i as u64)).collect();
        let gi = GradInputPlan::new(&p, &w, &opts()).unwrap();
        let gw = GradWeightPlan::<f32>::new(&p, &opts()).unwrap();
        let gys2 = gys.clone();
        let pi = p.clone();
        v.push(Shared {
            name: format!("grad-input {tag} ({})", gi.implementation()),
            run: Box::new(move |i| {
                let mut gx = vec![0.0; pi.input_shape().iter().product()];
                let mut ws = gi.workspace().unwrap();
                gi.execute(&gys[i], &mut gx, &mut ws).unwrap();
                bits(&gx)
            }),
        });
        v.push(Shared {
            name: format!("grad-weight {tag} ({})", gw.implementation()),
            run: Box::new(move |i| {
                let mut g = vec![0.0; p.weight_shape().iter().product()];
                let mut ws = gw.workspace().unwrap();
                gw.execute(&xs[i], &gys2[i], &mut g, &mut ws).unwrap();
                bits(&g)
            }),
        });
    }

    // Pooling: max with indices, average with padding.
    for kind in [PoolKind::Max, PoolKind::Avg] {
        let desc = PoolDesc::new(kind).kernel([3]).stride([2]).padding(Padding::Explicit(vec![1]));
        let x_shape = [2usize, 5, 23, 21];
        let p = PoolProblem::new(&desc, &x_shape).unwrap();
        let plan = PoolPlan::<f32>::new(&p, &opts()).unwrap();
        let xs: Vec<Vec<f32>> =
            (0..THREADS).map(|i| data(x_shape.iter().product(), 500 + i as u64)).collect();
        v.push(Shared {
            name: format!("pool {kind} ({})", plan.implementation()),
            run: Box::new(move |i| {
                let n = p.output_shape().iter().product();
                let mut y = vec![0.0; n];
                let mut idx = vec![0i64; n];
                let mut ws = plan.workspace().unwrap();
                let with_idx = (kind == PoolKind::Max).then_some(&mut idx[..]);
                plan.execute(&xs[i], &mut y, with_idx, &mut ws).unwrap();
                let mut b = bits(&y);
                b.extend(idx.iter().map(|&i| i as u32));
                b
            }),
        });
    }

    // A filter stack over a 3-channel image (tiles of 7 rows, so several tiles per run).
    {
        let filters = [Filter::parse("gaussian:1.5").unwrap(), Filter::parse("sobel").unwrap()];
        let fopts = FilterOptions::default().border(PadMode::Reflect).tile_rows(7);
        let (c, h, w) = (3, 41, 37);
        let plan = FilterPlan::new(&filters, &fopts, c, h, w).unwrap();
        let imgs: Vec<Planar<f32>> =
            (0..THREADS).map(|i| Planar::new(c, h, w, data(c * h * w, 600 + i as u64)).unwrap()).collect();
        v.push(Shared {
            name: "filter gaussian:1.5 + sobel".into(),
            run: Box::new(move |i| bits(&plan.run(&imgs[i], &mut |_, _| {}).unwrap().data)),
        });
    }
    v
}

#[test]
fn plans_shared_by_8_threads_match_serial_runs() {
    for s in plans() {
        let rate = check(&s, 4);
        eprintln!("{}: ok ({rate:.0} executions/s)", s.name);
    }
}

/// The soak: 10^4 executions of every plan, 8 threads at once (`--ignored`).
#[test]
#[ignore]
fn soak_10k_executions_per_plan() {
    let reps = 10_000usize.div_ceil(THREADS);
    let start = Instant::now();
    let mut total = 0;
    for s in plans() {
        let t = Instant::now();
        let rate = check(&s, reps);
        total += THREADS * reps;
        println!(
            "{:<80} {} executions in {:.1} s ({rate:.0}/s), all bit-identical",
            s.name,
            THREADS * reps,
            t.elapsed().as_secs_f64()
        );
    }
    println!(
        "soak: {total} executions in {:.1} s, all bit-identical to serial runs",
        start.elapsed().as_secs_f64()
    );
}
