//! The demo network and its training, built only from convkit's operations: `conv`, `pool`
//! and their gradients `conv_backward` and `pool_backward` from the raw API; ReLU, softmax
//! and the SGD-with-momentum update are the only arithmetic done here.

use super::data::{dataset, Rng, CLASSES, SIDE};
use convkit::raw;
use convkit::{ConvDesc, Padding, PoolDesc, PoolKind, Scalar};

/// The stack in `convkit shape`'s grammar; [`Net`] runs exactly these layers.
#[allow(dead_code)] // used by the serve module and tests
pub const STACK: &str =
    "conv 8 k3 p1 bias; relu; maxpool k2; conv 16 k3 p1 bias; relu; maxpool k2; conv 6 k7 bias";
/// Layer names, in [`STACK`] order.
pub const LAYERS: [&str; 7] = ["conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "classifier"];
/// Parameter names and shapes, in [`Net::params`] order.
pub const PARAMS: [(&str, &[usize]); 6] = [
    ("conv1.weight", &[8, 1, 3, 3]),
    ("conv1.bias", &[8]),
    ("conv2.weight", &[16, 8, 3, 3]),
    ("conv2.bias", &[16]),
    ("classifier.weight", &[6, 16, 7, 7]),
    ("classifier.bias", &[6]),
];

const C1: usize = 8;
const C2: usize = 16;
const H1: usize = SIDE / 2;
const H2: usize = SIDE / 4;

type E = convkit::Error;

fn same() -> ConvDesc {
    ConvDesc::new().padding(Padding::Explicit(vec![1]))
}

fn pool2() -> PoolDesc {
    PoolDesc::new(PoolKind::Max).kernel([2])
}

/// The weights: `params[i]` has shape `PARAMS[i].1`.
#[derive(Debug, Clone, PartialEq)]
pub struct Net<T> {
    pub params: Vec<Vec<T>>,
}

/// Every intermediate of a forward pass over `n` images (all `(n, C, H, W)`, C order).
#[derive(Debug, Clone)]
pub struct Forward<T> {
    pub n: usize,
    pub x: Vec<T>,
    pub z1: Vec<T>,
    pub a1: Vec<T>,
    pub q1: Vec<T>,
    pub z2: Vec<T>,
    pub a2: Vec<T>,
    pub q2: Vec<T>,
    pub logits: Vec<T>,
}

impl<T> Forward<T> {
    /// Each layer's output with its shape `(C, H, W)` per image, in [`LAYERS`] order.
    pub fn layers(&self) -> [(&[T], [usize; 3]); 7] {
        [
            (&self.z1, [C1, SIDE, SIDE]),
            (&self.a1, [C1, SIDE, SIDE]),
            (&self.q1, [C1, H1, H1]),
            (&self.z2, [C2, H1, H1]),
            (&self.a2, [C2, H1, H1]),
            (&self.q2, [C2, H2, H2]),
            (&self.logits, [CLASSES.len(), 1, 1]),
        ]
    }
}

fn relu<T: Scalar>(z: &[T]) -> Vec<T> {
    z.iter().map(|&v| if v > T::ZERO { v } else { T::ZERO }).collect()
}

/// `g` where `z > 0`, else 0: the ReLU's gradient.
fn relu_back<T: Scalar>(g: &[T], z: &[T]) -> Vec<T> {
    g.iter().zip(z).map(|(&g, &z)| if z > T::ZERO { g } else { T::ZERO }).collect()
}

impl<T: Scalar> Net<T> {
    /// He-initialised weights (normal, std √(2/fan-in); √(1/fan-in) for the classifier), zero
    /// biases, from `seed`.
    pub fn init(seed: u64) -> Net<T> {
        let mut rng = Rng::new(seed.wrapping_mul(0x2545_f491_4f6c_dd1d).wrapping_add(1));
        let params = PARAMS
            .iter()
            .enumerate()
            .map(|(i, (_, shape))| {
                let n: usize = shape.iter().product();
                if shape.len() == 1 {
                    return vec![T::ZERO; n];
                }
                let fan_in: usize = shape[1..].iter().product();
                let gain = if i == 4 { 1.0 } else { 2.0 };
                let std = (gain / fan_in as f64).sqrt();
                (0..n).map(|_| T::from_f64(std * rng.normal())).collect()
            })
            .collect();
        Net { params }
    }

    /// The forward pass over `n` images `(n, 1, 28, 28)`.
    pub fn forward(&self, x: &[T], n: usize) -> Result<Forward<T>, E> {
        let p = &self.params;
        let shape = |c: usize, h: usize| [n, c, h, h];
        let z1 = raw::conv(x, &shape(1, SIDE), &p[0], PARAMS[0].1, Some(&p[1]), &same())?.data;
        let a1 = relu(&z1);
        let q1 = raw::pool(&a1, &shape(C1, SIDE), &pool2())?.0.data;
        let z2 = raw::conv(&q1, &shape(C1, H1), &p[2], PARAMS[2].1, Some(&p[3]), &same())?.data;
        let a2 = relu(&z2);
        let q2 = raw::pool(&a2, &shape(C2, H1), &pool2())?.0.data;
        let logits = raw::conv(&q2, &shape(C2, H2), &p[4], PARAMS[4].1, Some(&p[5]), &ConvDesc::new())?.data;
        Ok(Forward { n, x: x.to_vec(), z1, a1, q1, z2, a2, q2, logits })
    }

    /// Mean cross-entropy of `f`'s logits against `labels`, the number of correct predictions,
    /// and `∂loss/∂logits`.
    pub fn loss(f: &Forward<T>, labels: &[usize]) -> (f64, usize, Vec<T>) {
        let k = CLASSES.len();
        let mut loss = 0.0;
        let mut correct = 0;
        let mut g = vec![T::ZERO; f.logits.len()];
        for (i, &label) in labels.iter().enumerate().take(f.n) {
            let z: Vec<f64> = f.logits[i * k..][..k].iter().map(|v| v.to_f64()).collect();
            let m = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let sum: f64 = z.iter().map(|v| (v - m).exp()).sum();
            loss += sum.ln() + m - z[label];
            if argmax(&z) == label {
                correct += 1;
            }
            for j in 0..k {
                let p = (z[j] - m).exp() / sum;
                g[i * k + j] = T::from_f64((p - f64::from(u8::from(j == label))) / f.n as f64);
            }
        }
        (loss / f.n as f64, correct, g)
    }

    /// The gradient of the mean loss with respect to every parameter, in [`PARAMS`] order,
    /// given `∂loss/∂logits`: back through the stack with `conv_backward` and `pool_backward`.
    pub fn backward(&self, f: &Forward<T>, g_logits: &[T]) -> Result<Vec<Vec<T>>, E> {
        let p = &self.params;
        let n = f.n;
        let shape = |c: usize, h: usize| [n, c, h, h];
        let k = CLASSES.len();
        let (g_q2, g_w3, g_b3) = raw::conv_backward(
            &f.q2,
            &shape(C2, H2),
            &p[4],
            PARAMS[4].1,
            g_logits,
            &[n, k, 1, 1],
            &ConvDesc::new(),
        )?;
        let g_a2 = raw::pool_backward(&f.a2, &shape(C2, H1), &g_q2.data, &shape(C2, H2), &pool2())?.data;
        let g_z2 = relu_back(&g_a2, &f.z2);
        let (g_q1, g_w2, g_b2) =
            raw::conv_backward(&f.q1, &shape(C1, H1), &p[2], PARAMS[2].1, &g_z2, &shape(C2, H1), &same())?;
        let g_a1 = raw::pool_backward(&f.a1, &shape(C1, SIDE), &g_q1.data, &shape(C1, H1), &pool2())?.data;
        let g_z1 = relu_back(&g_a1, &f.z1);
        let (_, g_w1, g_b1) =
            raw::conv_backward(&f.x, &shape(1, SIDE), &p[0], PARAMS[0].1, &g_z1, &shape(C1, SIDE), &same())?;
        Ok(vec![g_w1.data, g_b1.data, g_w2.data, g_b2.data, g_w3.data, g_b3.data])
    }

    /// Predicted class of each image.
    pub fn predict(&self, x: &[T], n: usize) -> Result<Vec<usize>, E> {
        let f = self.forward(x, n)?;
        let k = CLASSES.len();
        Ok(f.logits.chunks(k).map(|z| argmax(&z.iter().map(|v| v.to_f64()).collect::<Vec<_>>())).collect())
    }
}

/// Index of the first largest value.
pub fn argmax(z: &[f64]) -> usize {
    let mut best = 0;
    for (i, &v) in z.iter().enumerate() {
        if v > z[best] {
            best = i;
        }
    }
    best
}

/// What to train and how.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub seed: u64,
    pub train_per_class: usize,
    pub test_per_class: usize,
    pub epochs: usize,
    pub batch: usize,
    pub lr: f64,
    /// The learning rate is multiplied by this after every epoch.
    pub lr_decay: f64,
    pub momentum: f64,
    pub noise: f64,
}

impl Default for Config {
    /// The demo's configuration (`convkit train-demo` with no options).
    fn default() -> Config {
        Config {
            seed: 1,
            train_per_class: 300,
            test_per_class: 100,
            epochs: 6,
            batch: 32,
            lr: 0.05,
            lr_decay: 0.6,
            momentum: 0.9,
            noise: 0.2,
        }
    }
}

/// A trained network with its record.
#[derive(Debug, Clone)]
pub struct Trained {
    pub net: Net<f32>,
    /// Mean training loss of every step, in order.
    pub step_loss: Vec<f64>,
    /// Mean training loss of every epoch.
    pub epoch_loss: Vec<f64>,
    /// Held-out accuracy, 0..1, and the held-out set size.
    pub accuracy: f64,
    pub test_len: usize,
    pub train_len: usize,
    /// The held-out images `(n, 1, 28, 28)` and labels.
    pub test_x: Vec<f32>,
    pub test_y: Vec<usize>,
}

/// The held-out set of `c` (a seed of its own, so it never overlaps the training stream).
pub fn test_set(c: &Config) -> (Vec<f32>, Vec<usize>) {
    dataset(c.test_per_class, c.seed.wrapping_add(0x7e57), c.noise)
}

/// Train from `c`'s seed: mini-batch SGD with momentum on the cross-entropy loss, the
/// learning rate decayed geometrically per epoch.
pub fn train(c: &Config) -> Result<Trained, E> {
    let (x, y) = dataset(c.train_per_class, c.seed, c.noise);
    let (test_x, test_y) = test_set(c);
    let mut net = Net::<f32>::init(c.seed);
    let mut velocity: Vec<Vec<f32>> = net.params.iter().map(|p| vec![0.0; p.len()]).collect();
    let pix = SIDE * SIDE;
    let mut order: Vec<usize> = (0..y.len()).collect();
    let mut rng = Rng::new(c.seed.wrapping_add(0x5eed));
    let (mut step_loss, mut epoch_loss) = (Vec::new(), Vec::new());
    let mom = c.momentum as f32;
    for epoch in 0..c.epochs {
        let lr = (c.lr * c.lr_decay.powi(epoch as i32)) as f32;
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i + 1));
        }
        let mut sum = 0.0;
        let mut steps = 0;
        for chunk in order.chunks(c.batch.max(1)) {
            let mut bx = Vec::with_capacity(chunk.len() * pix);
            for &i in chunk {
                bx.extend_from_slice(&x[i * pix..][..pix]);
            }
            let by: Vec<usize> = chunk.iter().map(|&i| y[i]).collect();
            let f = net.forward(&bx, chunk.len())?;
            let (loss, _, g) = Net::loss(&f, &by);
            let grads = net.backward(&f, &g)?;
            for ((p, v), g) in net.params.iter_mut().zip(&mut velocity).zip(&grads) {
                for ((p, v), &g) in p.iter_mut().zip(v.iter_mut()).zip(g) {
                    *v = mom * *v + g;
                    *p -= lr * *v;
                }
            }
            step_loss.push(loss);
            sum += loss;
            steps += 1;
        }
        epoch_loss.push(sum / steps.max(1) as f64);
    }
    let accuracy = accuracy(&net, &test_x, &test_y)?;
    Ok(Trained {
        net,
        step_loss,
        epoch_loss,
        accuracy,
        test_len: test_y.len(),
        train_len: y.len(),
        test_x,
        test_y,
    })
}

/// Fraction of `x` classified as `y`.
pub fn accuracy(net: &Net<f32>, x: &[f32], y: &[usize]) -> Result<f64, E> {
    let pix = SIDE * SIDE;
    let mut correct = 0;
    for (xs, ys) in x.chunks(200 * pix).zip(y.chunks(200)) {
        correct += net.predict(xs, ys.len())?.iter().zip(ys).filter(|(a, b)| a == b).count();
    }
    Ok(correct as f64 / y.len().max(1) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One training step's gradient, through the whole stack (conv, ReLU, max-pool twice,
    /// the classifier, softmax cross-entropy), against central differences of the loss, in
    /// f64. Every 5th parameter of every tensor is checked (every bias).
    #[test]
    fn gradient_matches_finite_differences() {
        let (x32, y) = dataset(1, 3, 0.2);
        let n = y.len();
        let x: Vec<f64> = x32.iter().map(|&v| f64::from(v)).collect();
        let net = Net::<f64>::init(3);
        let f = net.forward(&x, n).unwrap();
        let (_, _, g) = Net::loss(&f, &y);
        let grads = net.backward(&f, &g).unwrap();
        let h = 1e-6;
        let mut checked = 0;
        let mut worst: f64 = 0.0;
        for t in 0..PARAMS.len() {
            let step = if PARAMS[t].1.len() == 1 { 1 } else { 5 };
            for i in (0..net.params[t].len()).step_by(step) {
                let at = |d: f64| {
                    let mut m = net.clone();
                    m.params[t][i] += d;
                    Net::loss(&m.forward(&x, n).unwrap(), &y).0
                };
                let numeric = (at(h) - at(-h)) / (2.0 * h);
                let analytic = grads[t][i];
                let err = (numeric - analytic).abs() / (1e-4 + numeric.abs().max(analytic.abs()));
                worst = worst.max(err);
                assert!(err < 1e-5, "{}[{i}]: analytic {analytic:e}, numeric {numeric:e}", PARAMS[t].0);
                checked += 1;
            }
        }
        assert!(checked > 1000, "{checked}");
        eprintln!("{checked} gradients checked, worst relative error {worst:e}");
    }

    /// The demo's own configuration (not a shortened one) reaches 95 % on the held-out set,
    /// and its mean loss falls every epoch.
    #[test]
    fn demo_configuration_learns() {
        let c = Config::default();
        let t = train(&c).unwrap();
        eprintln!("accuracy {}, epoch losses {:?}", t.accuracy, t.epoch_loss);
        assert!(t.accuracy >= 0.95, "held-out accuracy {}", t.accuracy);
        assert_eq!(t.epoch_loss.len(), c.epochs);
        for w in t.epoch_loss.windows(2) {
            assert!(w[1] < w[0], "loss rose: {:?}", t.epoch_loss);
        }
        assert!(t.step_loss.iter().all(|l| l.is_finite()));
    }

    #[test]
    fn data_is_seeded_and_balanced() {
        let (a, ya) = dataset(4, 9, 0.2);
        let (b, yb) = dataset(4, 9, 0.2);
        assert_eq!((a.clone(), ya.clone()), (b, yb));
        let (c, _) = dataset(4, 10, 0.2);
        assert_ne!(a, c);
        for k in 0..CLASSES.len() {
            assert_eq!(ya.iter().filter(|&&l| l == k).count(), 4);
        }
    }
}
