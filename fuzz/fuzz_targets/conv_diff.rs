//! Differential: a random convolution problem (rank 1 to 3, every parameter, small sizes),
//! planned with the default choice (the fastest implementation for it), against the f64
//! reference. Small-integer data: exact implementations must agree bit for bit, approximate ones
//! (Winograd, FFT) within 1e-5 of Σ|w·x|. Any mismatch is a crash.
#![no_main]
use arbitrary::{Arbitrary, Unstructured};
use convkit::{reference, ConvDesc, ConvPlan, ConvProblem, Layout, PadMode, Padding, PlanOptions};

fn problem(u: &mut Unstructured<'_>) -> arbitrary::Result<(ConvDesc, Vec<usize>, Vec<usize>, bool, u8)> {
    let rank = u.int_in_range(1..=3)?;
    let groups = u.int_in_range(1..=3usize)?;
    let cin = groups * u.int_in_range(1..=3usize)?;
    let cout = groups * u.int_in_range(1..=6usize)?;
    let n = u.int_in_range(1..=2usize)?;
    let mut xs = vec![n, cin];
    let mut ws = vec![cout, cin / groups];
    let (mut stride, mut dil, mut pads) = (vec![], vec![], vec![]);
    for _ in 0..rank {
        xs.push(u.int_in_range(1..=if rank == 1 { 40 } else { 14 })?);
        ws.push(u.int_in_range(1..=if rank == 1 { 17 } else { 7 })?);
        stride.push(u.int_in_range(1..=3usize)?);
        dil.push(u.int_in_range(1..=2usize)?);
    }
    let padding = match u.int_in_range(0..=4)? {
        0 => Padding::Valid,
        1 => Padding::Same,
        2 => Padding::SameLower,
        3 => Padding::Full,
        _ => {
            for _ in 0..2 * rank {
                pads.push(u.int_in_range(0..=4usize)?);
            }
            Padding::Explicit(pads)
        }
    };
    let mode = match u.int_in_range(0..=5)? {
        0 => PadMode::Zeros,
        1 => PadMode::Reflect,
        2 => PadMode::Replicate,
        3 => PadMode::Circular,
        4 => PadMode::Symmetric,
        _ => PadMode::Constant(u.int_in_range(-3..=3i8)? as f64),
    };
    let layout = if bool::arbitrary(u)? { Layout::Nhwc } else { Layout::Nchw };
    if layout == Layout::Nhwc {
        let c = xs.remove(1);
        xs.push(c);
    }
    let desc = ConvDesc::new()
        .stride(stride)
        .dilation(dil)
        .padding(padding)
        .padding_mode(mode)
        .groups(groups)
        .flip(bool::arbitrary(u)?)
        .layout(layout);
    Ok((desc, xs, ws, bool::arbitrary(u)?, u8::arbitrary(u)?))
}

fn ints(n: usize, seed: u8) -> Vec<f64> {
    let mut s = 0x9e37_79b9u32 ^ seed as u32;
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            ((s >> 24) % 9) as f64 - 4.0
        })
        .collect()
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok((desc, xs, ws, bias, seed)) = problem(&mut u) else { return };
    let Ok(p) = ConvProblem::new(&desc, &xs, &ws) else { return };
    let ny: usize = p.output_shape().iter().product();
    if ny > 1 << 16 {
        return;
    }
    let x = ints(xs.iter().product(), seed);
    let w = ints(ws.iter().product(), seed ^ 0x5a);
    let b = bias.then(|| ints(p.out_channels, seed ^ 0x33));
    let mut want = vec![0.0f64; ny];
    reference::conv_forward(&p, &x, &w, b.as_deref(), &mut want);
    // Σ|w·x| per output: the scale of the approximate algorithms' error.
    let (xa, wa): (Vec<f64>, Vec<f64>) = (x.iter().map(|v| v.abs()).collect(), w.iter().map(|v| v.abs()).collect());
    let ba = b.as_ref().map(|b| b.iter().map(|v| v.abs()).collect::<Vec<_>>());
    let mut scale = vec![0.0f64; ny];
    reference::conv_forward(&p, &xa, &wa, ba.as_deref(), &mut scale);

    let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
    let w32: Vec<f32> = w.iter().map(|&v| v as f32).collect();
    let b32: Option<Vec<f32>> = b.as_ref().map(|b| b.iter().map(|&v| v as f32).collect());
    let plan = ConvPlan::new(&p, &w32, &PlanOptions::new()).expect("the planner always has the reference");
    let got = plan.run(&x32, b32.as_deref()).expect("run");
    let name = plan.implementation();
    let exact = !(name.starts_with("winograd") || name.starts_with("fft"));
    for i in 0..ny {
        let (g, r) = (got[i] as f64, want[i]);
        if exact {
            assert!(g == r, "{p} with {name}: output {i} is {g}, the reference says {r}");
        } else {
            assert!((g - r).abs() <= 1e-5 * scale[i].max(1.0), "{p} with {name}: output {i} is {g}, the reference says {r}");
        }
    }
    // The f64 plan too: exact ones bit for bit.
    let plan64 = ConvPlan::new(&p, &w, &PlanOptions::new()).expect("f64 plan");
    let got64 = plan64.run(&x, b.as_deref()).expect("run f64");
    let name64 = plan64.implementation();
    if !(name64.starts_with("winograd") || name64.starts_with("fft")) {
        assert!(got64 == want, "{p} with {name64} (f64) differs from the reference");
    }
});
