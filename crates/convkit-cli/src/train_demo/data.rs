//! The demo's data, generated procedurally so nothing is downloaded: 28×28 grey images of six
//! shape classes at random positions and sizes, with Gaussian noise, from a seeded generator.

/// Image side in pixels.
pub const SIDE: usize = 28;
/// Class names, in label order.
pub const CLASSES: [&str; 6] = ["horizontal", "vertical", "diagonal", "cross", "ring", "blob"];

/// A small deterministic generator (SplitMix64): the same seed gives the same stream on every
/// machine, which the reproducibility of the whole demo rests on.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x6a09_e667_f3bc_c909)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[lo, hi)`.
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }

    /// An integer in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.uniform() * n as f64) as usize % n.max(1)
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform();
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// Ink coverage of a stroke whose centre line is `d` pixels away, `half` its half-width:
/// 1 inside, 0 outside, a one-pixel soft edge.
fn stroke(d: f64, half: f64) -> f64 {
    (half + 0.5 - d).clamp(0.0, 1.0)
}

/// One image of class `label`, row-major, values around 0..1 plus noise.
pub fn image(label: usize, rng: &mut Rng, noise: f64) -> Vec<f32> {
    let cx = rng.range(9.0, 19.0);
    let cy = rng.range(9.0, 19.0);
    let half_len = rng.range(6.0, 10.0);
    let half_w = rng.range(0.7, 1.4);
    let radius = rng.range(4.5, 7.5);
    let sigma = rng.range(2.2, 3.5);
    let ink = rng.range(0.7, 1.0);
    let slope = if rng.uniform() < 0.5 { 1.0 } else { -1.0 };
    let mut img = vec![0f32; SIDE * SIDE];
    for (i, px) in img.iter_mut().enumerate() {
        let (y, x) = ((i / SIDE) as f64 - cy, (i % SIDE) as f64 - cx);
        let bar = |along: f64, across: f64| {
            if along.abs() <= half_len {
                stroke(across.abs(), half_w)
            } else {
                0.0
            }
        };
        let v = match label {
            0 => bar(x, y),
            1 => bar(y, x),
            2 => {
                let s = std::f64::consts::FRAC_1_SQRT_2;
                bar((x + slope * y) * s, (x - slope * y) * s)
            }
            3 => bar(x, y).max(bar(y, x)),
            4 => stroke(((x * x + y * y).sqrt() - radius).abs(), half_w),
            _ => (-(x * x + y * y) / (2.0 * sigma * sigma)).exp(),
        };
        *px = (ink * v + noise * rng.normal()) as f32;
    }
    img
}

/// A balanced set: `per_class` images of every class in a seeded random order, as
/// `(images N×28×28, labels)`.
pub fn dataset(per_class: usize, seed: u64, noise: f64) -> (Vec<f32>, Vec<usize>) {
    let mut rng = Rng::new(seed);
    let mut labels: Vec<usize> = (0..per_class * CLASSES.len()).map(|i| i % CLASSES.len()).collect();
    // Fisher–Yates.
    for i in (1..labels.len()).rev() {
        labels.swap(i, rng.below(i + 1));
    }
    let mut images = Vec::with_capacity(labels.len() * SIDE * SIDE);
    for &l in &labels {
        images.extend(image(l, &mut rng, noise));
    }
    (images, labels)
}
