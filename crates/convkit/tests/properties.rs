//! Property tests for convkit: random convolution and pooling problems (ranks 1-3, batches,
//! groups, stride, dilation, explicit asymmetric and named padding, every padding mode, flip,
//! both layouts, f32 and f64) checked against mathematical identities and against a naive
//! oracle written here from the definitions (explicitly padded array, then loops), independent
//! of the library's reference internals.

use convkit::impls::candidates;
use convkit::{
    col2im, conv, conv_backward, conv_transpose, im2col, max_pool_with_indices, pool, pool_backward,
    ConvDesc, ConvPlan, ConvProblem, ConvTransposeDesc, Layout, PadMode, Padding, PlanOptions, PoolDesc,
    PoolKind, PoolProblem,
};
use ndarray::{array, Array2, ArrayD, Axis as NdAxis, Dimension, IxDyn, Slice};
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;

// ------------------------------------------------------------------------------------------
// Configuration and deterministic data
// ------------------------------------------------------------------------------------------

/// Proptest config: `cases` cases, no regression files written into the source tree.
fn cfg(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        max_global_rejects: 100_000,
        ..ProptestConfig::default()
    }
}

/// SplitMix64: tensor contents are drawn from a seed the strategy generates.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform integer in `lo..=hi`, as f64.
    fn int(&mut self, lo: i64, hi: i64) -> f64 {
        (lo + (self.next() % (hi - lo + 1) as u64) as i64) as f64
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A tensor of small integers in `lo..=hi`.
fn ints(shape: &[usize], rng: &mut Rng, lo: i64, hi: i64) -> ArrayD<f64> {
    ArrayD::from_shape_fn(IxDyn(shape), |_| rng.int(lo, hi))
}

/// A tensor of pairwise distinct integers (a random permutation, centred on 0).
fn distinct(shape: &[usize], rng: &mut Rng) -> ArrayD<f64> {
    let n: usize = shape.iter().product();
    let mut v: Vec<f64> = (0..n).map(|i| i as f64 - (n / 2) as f64).collect();
    for i in (1..n).rev() {
        let j = rng.below(i + 1);
        v.swap(i, j);
    }
    ArrayD::from_shape_vec(IxDyn(shape), v).unwrap()
}

fn dot(a: &ArrayD<f64>, b: &ArrayD<f64>) -> f64 {
    assert_eq!(a.shape(), b.shape());
    a.iter().zip(b.iter()).map(|(x, y)| x * y).sum()
}

// ------------------------------------------------------------------------------------------
// Layouts
// ------------------------------------------------------------------------------------------

fn data_shape(layout: Layout, n: usize, c: usize, sp: &[usize]) -> Vec<usize> {
    let mut s = vec![n];
    if layout == Layout::Nchw {
        s.push(c);
    }
    s.extend_from_slice(sp);
    if layout == Layout::Nhwc {
        s.push(c);
    }
    s
}

/// An NCHW array re-laid out as `layout` (contiguous).
fn from_nchw<T: Clone>(x: &ArrayD<T>, layout: Layout) -> ArrayD<T> {
    match layout {
        Layout::Nchw => x.clone(),
        Layout::Nhwc => {
            let nd = x.ndim();
            let mut perm = vec![0];
            perm.extend(2..nd);
            perm.push(1);
            x.view().permuted_axes(perm).as_standard_layout().into_owned()
        }
    }
}

/// An array in `layout` re-laid out as NCHW (contiguous).
fn to_nchw<T: Clone>(x: &ArrayD<T>, layout: Layout) -> ArrayD<T> {
    match layout {
        Layout::Nchw => x.clone(),
        Layout::Nhwc => {
            let nd = x.ndim();
            let mut perm = vec![0, nd - 1];
            perm.extend(1..nd - 1);
            x.view().permuted_axes(perm).as_standard_layout().into_owned()
        }
    }
}

// ------------------------------------------------------------------------------------------
// Independent geometry: padding resolution, placement counting, validity
// ------------------------------------------------------------------------------------------

/// Per-axis (begin, end) padding, resolved from the documented rules.
fn resolve_pads(padding: &Padding, input: &[usize], eff: &[usize], stride: &[usize]) -> Vec<(usize, usize)> {
    let rank = input.len();
    (0..rank)
        .map(|a| match padding {
            Padding::Explicit(v) if v.len() == 1 => (v[0], v[0]),
            Padding::Explicit(v) if v.len() == rank => (v[a], v[a]),
            Padding::Explicit(v) => {
                assert_eq!(v.len(), 2 * rank);
                (v[a], v[rank + a])
            }
            Padding::Valid => (0, 0),
            Padding::Full => (eff[a] - 1, eff[a] - 1),
            Padding::Same | Padding::SameLower => {
                let out = input[a].div_ceil(stride[a]);
                let need = (out - 1) * stride[a] + eff[a];
                let total = need.saturating_sub(input[a]);
                let (small, big) = (total / 2, total - total / 2);
                if *padding == Padding::Same {
                    (small, big)
                } else {
                    (big, small)
                }
            }
        })
        .collect()
}

/// Number of window placements `start = o*stride - pb` (o = 0, 1, ...) whose whole effective
/// window `[start, start + eff)` lies inside `[-pb, input + pe)`.
fn count_placements(input: usize, eff: usize, stride: usize, pb: usize, pe: usize) -> usize {
    let mut n = 0usize;
    loop {
        let start = (n * stride) as isize - pb as isize;
        let lo_ok = start >= -(pb as isize);
        let hi_ok = start + eff as isize <= (input + pe) as isize;
        if lo_ok && hi_ok {
            n += 1;
        } else {
            return n;
        }
    }
}

/// Where padded position `p` (relative to the first input element) reads from, built from the
/// pictures in the documentation: `None` is the padding constant. Only called within the
/// mode's documented pad limits, which it asserts.
fn pad_src(p: isize, n: usize, mode: PadMode) -> Option<usize> {
    let ni = n as isize;
    if (0..ni).contains(&p) {
        return Some(p as usize);
    }
    let i = match mode {
        PadMode::Zeros | PadMode::Constant(_) => return None,
        PadMode::Replicate => {
            if p < 0 {
                0
            } else {
                ni - 1
            }
        }
        // dcb|abcd|cba: -1 -> 1, n -> n-2
        PadMode::Reflect => {
            if p < 0 {
                -p
            } else {
                2 * (ni - 1) - p
            }
        }
        // cba|abcd|dcb: -1 -> 0, n -> n-1
        PadMode::Symmetric => {
            if p < 0 {
                -p - 1
            } else {
                2 * ni - 1 - p
            }
        }
        // bcd|abcd|abc: -1 -> n-1, n -> 0
        PadMode::Circular => {
            if p < 0 {
                p + ni
            } else {
                p - ni
            }
        }
    };
    assert!((0..ni).contains(&i), "pad_src({p}, {n}, {mode}) out of the mode's limits");
    Some(i as usize)
}

fn mode_allows(mode: PadMode, input: usize, pb: usize, pe: usize) -> bool {
    match mode {
        PadMode::Reflect => pb < input && pe < input,
        PadMode::Symmetric | PadMode::Circular => pb <= input && pe <= input,
        _ => true,
    }
}

fn pad_value(mode: PadMode) -> f64 {
    match mode {
        PadMode::Constant(v) => v,
        _ => 0.0,
    }
}

// ------------------------------------------------------------------------------------------
// Random convolution problems
// ------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Case {
    batch: usize,
    groups: usize,
    cin: usize,
    cout: usize,
    spatial: Vec<usize>,
    kernel: Vec<usize>,
    stride: Vec<usize>,
    dilation: Vec<usize>,
    padding: Padding,
    mode: PadMode,
    flip: bool,
    layout: Layout,
    seed: u64,
}

impl Case {
    fn rank(&self) -> usize {
        self.spatial.len()
    }
    fn effs(&self) -> Vec<usize> {
        (0..self.rank()).map(|a| self.dilation[a] * (self.kernel[a] - 1) + 1).collect()
    }
    fn pads(&self) -> Vec<(usize, usize)> {
        resolve_pads(&self.padding, &self.spatial, &self.effs(), &self.stride)
    }
    fn out_sizes(&self) -> Vec<usize> {
        let (effs, pads) = (self.effs(), self.pads());
        (0..self.rank())
            .map(|a| count_placements(self.spatial[a], effs[a], self.stride[a], pads[a].0, pads[a].1))
            .collect()
    }
    fn valid(&self) -> bool {
        let pads = self.pads();
        self.out_sizes().iter().all(|&o| o > 0)
            && (0..self.rank()).all(|a| mode_allows(self.mode, self.spatial[a], pads[a].0, pads[a].1))
    }
    fn desc(&self) -> ConvDesc {
        ConvDesc::new()
            .stride(&self.stride)
            .dilation(&self.dilation)
            .padding(self.padding.clone())
            .padding_mode(self.mode)
            .groups(self.groups)
            .flip(self.flip)
            .layout(self.layout)
    }
    fn x_shape_nchw(&self) -> Vec<usize> {
        data_shape(Layout::Nchw, self.batch, self.cin, &self.spatial)
    }
    fn x_shape(&self) -> Vec<usize> {
        data_shape(self.layout, self.batch, self.cin, &self.spatial)
    }
    fn w_shape(&self) -> Vec<usize> {
        let mut s = vec![self.cout, self.cin / self.groups];
        s.extend_from_slice(&self.kernel);
        s
    }
    fn y_shape_nchw(&self) -> Vec<usize> {
        data_shape(Layout::Nchw, self.batch, self.cout, &self.out_sizes())
    }
    fn rng(&self) -> Rng {
        Rng(self.seed)
    }
}

#[derive(Clone)]
struct Gen {
    ranks: (usize, usize),
    min_size: usize,
    max_size: [usize; 3],
    max_batch: usize,
    max_groups: usize,
    max_stride: usize,
    max_kernel: usize,
    modes: Vec<PadMode>,
    named: bool,
}

const ALL_MODES: [PadMode; 6] = [
    PadMode::Zeros,
    PadMode::Constant(0.0),
    PadMode::Reflect,
    PadMode::Symmetric,
    PadMode::Replicate,
    PadMode::Circular,
];
const LINEAR_MODES: [PadMode; 5] =
    [PadMode::Zeros, PadMode::Reflect, PadMode::Symmetric, PadMode::Replicate, PadMode::Circular];

impl Gen {
    fn new() -> Self {
        Gen {
            ranks: (1, 3),
            min_size: 1,
            max_size: [8, 5, 4],
            max_batch: 2,
            max_groups: 3,
            max_stride: 3,
            max_kernel: 3,
            modes: ALL_MODES.to_vec(),
            named: true,
        }
    }
    fn modes(mut self, m: &[PadMode]) -> Self {
        self.modes = m.to_vec();
        self
    }
    fn sizes(mut self, min: usize, max: [usize; 3]) -> Self {
        self.min_size = min;
        self.max_size = max;
        self
    }
    fn ranks(mut self, lo: usize, hi: usize) -> Self {
        self.ranks = (lo, hi);
        self
    }
    fn max_stride(mut self, s: usize) -> Self {
        self.max_stride = s;
        self
    }
    fn max_groups(mut self, g: usize) -> Self {
        self.max_groups = g;
        self
    }

    /// Every generated case, valid or not.
    fn any(self) -> BoxedStrategy<Case> {
        let g = self;
        (g.ranks.0..=g.ranks.1)
            .prop_flat_map(move |rank| {
                let g = g.clone();
                let padding = {
                    let explicit = prop_oneof![
                        3 => prop::collection::vec(0usize..=2, 2 * rank).prop_map(Padding::Explicit),
                        1 => (0usize..=2).prop_map(Padding::uniform),
                        1 => prop::collection::vec(0usize..=2, rank).prop_map(Padding::Explicit),
                    ];
                    if g.named {
                        prop_oneof![
                            3 => explicit,
                            1 => prop::sample::select(vec![
                                Padding::Valid,
                                Padding::Same,
                                Padding::SameLower,
                                Padding::Full
                            ]),
                        ]
                        .boxed()
                    } else {
                        explicit.boxed()
                    }
                };
                let mode = (prop::sample::select(g.modes.clone()), -2i32..=2).prop_map(|(m, v)| match m {
                    PadMode::Constant(_) => PadMode::Constant(v as f64),
                    m => m,
                });
                let geometry = (
                    prop::collection::vec(g.min_size..=g.max_size[rank - 1], rank),
                    prop::collection::vec(1..=g.max_kernel, rank),
                    prop::collection::vec(1..=g.max_stride, rank),
                    prop::collection::vec(1usize..=2, rank),
                    padding,
                );
                let channels = (1..=g.max_batch, 1..=g.max_groups, 1usize..=2, 1usize..=2);
                let rest = (
                    mode,
                    any::<bool>(),
                    prop::sample::select(vec![Layout::Nchw, Layout::Nhwc]),
                    any::<u64>(),
                );
                (geometry, channels, rest).prop_map(
                    |(
                        (spatial, kernel, stride, dilation, padding),
                        (batch, groups, cm, km),
                        (mode, flip, layout, seed),
                    )| Case {
                        batch,
                        groups,
                        cin: groups * cm,
                        cout: groups * km,
                        spatial,
                        kernel,
                        stride,
                        dilation,
                        padding,
                        mode,
                        flip,
                        layout,
                        seed,
                    },
                )
            })
            .boxed()
    }

    /// Valid cases only (by the independent predicate above).
    fn valid(self) -> BoxedStrategy<Case> {
        self.any().prop_filter("invalid problem", Case::valid).boxed()
    }
}

// ------------------------------------------------------------------------------------------
// Naive oracle and library wrappers
// ------------------------------------------------------------------------------------------

/// The NCHW input padded explicitly per the mode.
fn pad_oracle(x: &ArrayD<f64>, pads: &[(usize, usize)], mode: PadMode) -> ArrayD<f64> {
    let sh = x.shape().to_vec();
    let rank = sh.len() - 2;
    let mut psh = sh.clone();
    for a in 0..rank {
        psh[2 + a] += pads[a].0 + pads[a].1;
    }
    let cval = pad_value(mode);
    ArrayD::from_shape_fn(IxDyn(&psh), |ix| {
        let mut src = vec![ix[0], ix[1]];
        for a in 0..rank {
            match pad_src(ix[2 + a] as isize - pads[a].0 as isize, sh[2 + a], mode) {
                Some(i) => src.push(i),
                None => return cval,
            }
        }
        x[IxDyn(&src)]
    })
}

/// Convolution from the definition: NCHW input, `(K, C/g, k...)` weight, NCHW output.
fn oracle_conv(c: &Case, x: &ArrayD<f64>, w: &ArrayD<f64>, b: Option<&[f64]>) -> ArrayD<f64> {
    let rank = c.rank();
    let xp = pad_oracle(x, &c.pads(), c.mode);
    let (cg, kg) = (c.cin / c.groups, c.cout / c.groups);
    ArrayD::from_shape_fn(IxDyn(&c.y_shape_nchw()), |ix| {
        let (n, k) = (ix[0], ix[1]);
        let g = k / kg;
        let mut acc = b.map_or(0.0, |b| b[k]);
        for ci in 0..cg {
            for t in ndarray::indices(IxDyn(&c.kernel)) {
                let mut xi = vec![n, g * cg + ci];
                let mut wi = vec![k, ci];
                for a in 0..rank {
                    let tt = if c.flip { c.kernel[a] - 1 - t[a] } else { t[a] };
                    xi.push(ix[2 + a] * c.stride[a] + tt * c.dilation[a]);
                    wi.push(t[a]);
                }
                acc += xp[IxDyn(&xi)] * w[IxDyn(&wi)];
            }
        }
        acc
    })
}

/// The library's convolution on NCHW data, run in the case's layout.
fn lib_conv<T: convkit::Scalar>(c: &Case, x: &ArrayD<T>, w: &ArrayD<T>, b: Option<&[T]>) -> ArrayD<T> {
    let xl = from_nchw(x, c.layout);
    let bias = b.map(ndarray::ArrayView1::from);
    let y = conv(xl.view(), w.view(), bias, &c.desc()).expect("conv on a valid problem");
    to_nchw(&y, c.layout)
}

/// |got - want| <= tol * max(1, |want|) elementwise (NaN matches NaN).
fn close(got: &ArrayD<f64>, want: &ArrayD<f64>, tol: f64) -> Result<(), String> {
    if got.shape() != want.shape() {
        return Err(format!("shape {:?} != {:?}", got.shape(), want.shape()));
    }
    for ((i, g), w) in got.indexed_iter().zip(want.iter()) {
        let ok = (g.is_nan() && w.is_nan()) || (g - w).abs() <= tol * w.abs().max(1.0);
        if !ok {
            return Err(format!("at {:?}: got {g}, want {w}\ngot  {got}\nwant {want}", i.slice()));
        }
    }
    Ok(())
}

macro_rules! prop_close {
    ($got:expr, $want:expr, $tol:expr, $($ctx:tt)*) => {
        if let Err(e) = close(&$got, &$want, $tol) {
            return Err(TestCaseError::fail(format!("{}: {}", format!($($ctx)*), e)));
        }
    };
}

/// Central finite-difference gradient of `sum(gy * f(v))` with respect to `v`. Output
/// differences are taken elementwise (identical outputs, e.g. both NaN or both the lowest
/// value of an empty window, contribute nothing), so huge constant outputs do not cancel badly.
fn fd_grad(
    f: impl Fn(&ArrayD<f64>) -> ArrayD<f64>,
    v: &ArrayD<f64>,
    gy: &ArrayD<f64>,
    h: f64,
) -> ArrayD<f64> {
    let mut g = ArrayD::zeros(v.raw_dim());
    for (i, gi) in g.indexed_iter_mut() {
        let (mut vp, mut vm) = (v.clone(), v.clone());
        vp[&i] += h;
        vm[&i] -= h;
        let (yp, ym) = (f(&vp), f(&vm));
        assert_eq!(yp.shape(), gy.shape());
        let mut s = 0.0;
        for ((a, b), w) in yp.iter().zip(ym.iter()).zip(gy.iter()) {
            let same = a == b || (a.is_nan() && b.is_nan());
            if !same {
                s += w * (a - b);
            }
        }
        *gi = s / (2.0 * h);
    }
    g
}

// ------------------------------------------------------------------------------------------
// 1. Output size = number of kernel placements (and validation agrees with the documented rules)
// ------------------------------------------------------------------------------------------

fn check_output_size(c: &Case) -> Result<(), TestCaseError> {
    let res = ConvProblem::new(&c.desc(), &c.x_shape(), &c.w_shape());
    prop_assert_eq!(res.is_ok(), c.valid(), "validity disagrees: {:?} -> {:?}", c, res);
    let Ok(p) = res else { return Ok(()) };
    let (pads, effs) = (c.pads(), c.effs());
    for a in 0..c.rank() {
        let ax = &p.axes[a];
        prop_assert_eq!((ax.pad_begin, ax.pad_end), pads[a], "pads of axis {}", a);
        let count = count_placements(c.spatial[a], effs[a], c.stride[a], pads[a].0, pads[a].1);
        prop_assert_eq!(ax.output, count, "output size of axis {}", a);
        match c.padding {
            Padding::Same | Padding::SameLower => {
                prop_assert_eq!(count, c.spatial[a].div_ceil(c.stride[a]), "same padding keeps ceil(in/s)")
            }
            Padding::Full if c.stride[a] == 1 => prop_assert_eq!(count, c.spatial[a] + effs[a] - 1),
            _ => {}
        }
    }
    let want = data_shape(c.layout, c.batch, c.cout, &c.out_sizes());
    prop_assert_eq!(p.output_shape(), want.clone());
    let x = ArrayD::<f64>::zeros(IxDyn(&c.x_shape()));
    let w = ArrayD::<f64>::zeros(IxDyn(&c.w_shape()));
    let y = conv(x.view(), w.view(), None, &c.desc()).unwrap();
    prop_assert_eq!(y.shape(), &want[..]);
    Ok(())
}

proptest! {
    #![proptest_config(cfg(4000))]
    #[test]
    fn p01_output_size_counts_kernel_placements(c in Gen::new().any()) {
        check_output_size(&c)?;
    }
}

// ------------------------------------------------------------------------------------------
// 0. The library's convolution equals the naive oracle (every mode, bias, flip, layout)
// ------------------------------------------------------------------------------------------

/// Every implementation in the plan list that accepts the problem at the machine's ISA
/// (forced by name, one thread) also equals the oracle, in element type `T`.
fn check_every_impl<T: convkit::Scalar>(
    c: &Case,
    x: &ArrayD<f64>,
    w: &ArrayD<f64>,
    b: &[f64],
    want: &ArrayD<f64>,
) -> Result<(), TestCaseError> {
    let p = ConvProblem::new(&c.desc(), &c.x_shape(), &c.w_shape()).unwrap();
    let xl: Vec<T> = from_nchw(x, c.layout).iter().map(|&v| T::from_f64(v)).collect();
    let wv: Vec<T> = w.iter().map(|&v| T::from_f64(v)).collect();
    let bv: Vec<T> = b.iter().map(|&v| T::from_f64(v)).collect();
    let want = from_nchw(want, c.layout);
    for cand in candidates::<T>() {
        // Approximate implementations (Winograd) are checked against a bound in winograd.rs.
        if !cand.exact || cand.supports(&p, convkit::isa::max_isa()).is_err() {
            continue;
        }
        let opts = PlanOptions::new().implementation(&cand.name).threads(1);
        let plan = ConvPlan::new(&p, &wv, &opts).unwrap();
        let y = plan.run(&xl, Some(&bv)).unwrap();
        let y =
            ArrayD::from_shape_vec(IxDyn(&p.output_shape()), y.iter().map(|v| v.to_f64()).collect()).unwrap();
        prop_close!(y, want, 0.0, "{} ({}) on {:?}", cand.name, T::NAME, c);
    }
    Ok(())
}

fn check_against_oracle(c: &Case) -> Result<(), TestCaseError> {
    let mut rng = c.rng();
    let x = ints(&c.x_shape_nchw(), &mut rng, -3, 3);
    let w = ints(&c.w_shape(), &mut rng, -3, 3);
    let b: Vec<f64> = (0..c.cout).map(|_| rng.int(-3, 3)).collect();
    let want = oracle_conv(c, &x, &w, Some(&b));
    let got = lib_conv(c, &x, &w, Some(&b));
    prop_close!(got, want, 0.0, "{:?}", c);
    let got32 = lib_conv(
        c,
        &x.mapv(|v| v as f32),
        &w.mapv(|v| v as f32),
        Some(&b.iter().map(|&v| v as f32).collect::<Vec<_>>()),
    );
    prop_close!(got32.mapv(|v| v as f64), want, 0.0, "f32 {:?}", c);
    check_every_impl::<f64>(c, &x, &w, &b, &want)?;
    check_every_impl::<f32>(c, &x, &w, &b, &want)?;
    Ok(())
}

proptest! {
    #![proptest_config(cfg(1000))]
    #[test]
    fn p00_conv_matches_naive_oracle(c in Gen::new().valid()) {
        check_against_oracle(&c)?;
    }

    /// Long inner rows: the fast paths' interior blocks and tile edges.
    #[test]
    fn p00b_conv_matches_naive_oracle_on_long_rows(c in Gen::new().ranks(1, 2).sizes(1, [70, 24, 1]).valid()) {
        check_against_oracle(&c)?;
    }
}

// ------------------------------------------------------------------------------------------
// 2. Linearity for the linear padding modes
// ------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(cfg(1000))]
    #[test]
    fn p02_conv_is_linear_in_the_input(
        c in Gen::new().modes(&LINEAR_MODES).valid(),
        a in -3i32..=3,
        b in -3i32..=3,
    ) {
        let mut rng = c.rng();
        let x1 = ints(&c.x_shape_nchw(), &mut rng, -3, 3);
        let x2 = ints(&c.x_shape_nchw(), &mut rng, -3, 3);
        let w = ints(&c.w_shape(), &mut rng, -3, 3);
        let (a, b) = (a as f64, b as f64);
        let lhs = lib_conv(&c, &(&x1 * a + &x2 * b), &w, None);
        let rhs = lib_conv(&c, &x1, &w, None) * a + lib_conv(&c, &x2, &w, None) * b;
        prop_close!(lhs, rhs, 1e-9, "{:?} a={} b={}", c, a, b);
    }
}

// ------------------------------------------------------------------------------------------
// 3. Translation equivariance away from the borders (stride 1, ranks 1-2)
// ------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(cfg(1000))]
    #[test]
    fn p03_conv_commutes_with_shifts_away_from_borders(
        c in Gen::new().ranks(1, 2).sizes(3, [10, 6, 1]).max_stride(1).valid(),
        axis_pick in 0usize..2,
    ) {
        let ax = axis_pick % c.rank();
        let mut rng = c.rng();
        let n_in = c.spatial[ax];
        let mut zsh = c.x_shape_nchw();
        zsh[2 + ax] += 1;
        let z = ints(&zsh, &mut rng, -3, 3);
        let w = ints(&c.w_shape(), &mut rng, -3, 3);
        // x = z[0..n], xs = z[1..n+1]: xs is x shifted one position towards the start.
        let x = z.slice_axis(NdAxis(2 + ax), Slice::from(0..n_in)).to_owned();
        let xs = z.slice_axis(NdAxis(2 + ax), Slice::from(1..n_in + 1)).to_owned();
        let y = lib_conv(&c, &x, &w, None);
        let ys = lib_conv(&c, &xs, &w, None);
        let (pb, eff) = (c.pads()[ax].0, c.effs()[ax]);
        for (i, v) in ys.indexed_iter() {
            let o = i[2 + ax];
            // ys[o] reads z[o+1-pb ..][..eff] and y[o+1] reads the same; both windows must lie
            // inside their inputs: o >= pb and o + 1 - pb + eff <= n.
            if o >= pb && o + 1 + eff <= n_in + pb {
                let mut j = i.slice().to_vec();
                j[2 + ax] += 1;
                prop_assert_eq!(*v, y[IxDyn(&j)], "at {:?}, axis {}, {:?}", i.slice(), ax, c);
            }
        }
    }
}

// ------------------------------------------------------------------------------------------
// 4. Adjoint: <conv(x), y> = <x, conv_transpose(y)> with zero padding
// ------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(cfg(1500))]
    #[test]
    fn p04_conv_transpose_is_the_adjoint_of_conv(c in Gen::new().modes(&[PadMode::Zeros]).valid()) {
        // Named padding is resolved by the transposed problem itself: valid and full depend on
        // the kernel only; same / same-lower are unambiguous when the forward input is a
        // multiple of the stride and the window spans at least a stride (total pad eff - s).
        if matches!(c.padding, Padding::Same | Padding::SameLower) {
            for a in 0..c.rank() {
                prop_assume!(c.spatial[a] % c.stride[a] == 0 && c.effs()[a] >= c.stride[a]);
            }
        }
        let mut rng = c.rng();
        let x = from_nchw(&ints(&c.x_shape_nchw(), &mut rng, -3, 3), c.layout);
        let w = ints(&c.w_shape(), &mut rng, -3, 3);
        let cx = conv(x.view(), w.view(), None, &c.desc()).unwrap();
        let y = ints(cx.shape(), &mut rng, -3, 3);
        let (pads, effs, outs) = (c.pads(), c.effs(), c.out_sizes());
        let mut op = Vec::new();
        for a in 0..c.rank() {
            let base = (outs[a] as isize - 1) * c.stride[a] as isize - pads[a].0 as isize - pads[a].1 as isize
                + effs[a] as isize;
            let o = c.spatial[a] as isize - base;
            prop_assume!(o >= 0 && o < c.stride[a].max(c.dilation[a]) as isize);
            op.push(o as usize);
        }
        let td = ConvTransposeDesc::new()
            .stride(&c.stride)
            .dilation(&c.dilation)
            .padding(c.padding.clone())
            .output_padding(&op)
            .groups(c.groups)
            .flip(c.flip)
            .layout(c.layout);
        let ty = conv_transpose(y.view(), w.view(), None, &td).unwrap();
        prop_assert_eq!(ty.shape(), x.shape());
        let (l, r) = (dot(&cx, &y), dot(&x, &ty));
        prop_assert!((l - r).abs() <= 1e-9 * l.abs().max(1.0), "<conv x, y> = {} but <x, convT y> = {}; {:?}", l, r, c);
        // The transposed convolution's bias is added to every output of its channel.
        let bias: Vec<f64> = (0..c.cin).map(|_| rng.int(-3, 3)).collect();
        let tyb = conv_transpose(y.view(), w.view(), Some(ndarray::ArrayView1::from(&bias)), &td).unwrap();
        let tyb = to_nchw(&tyb, c.layout);
        let ty = to_nchw(&ty, c.layout);
        for (i, v) in tyb.indexed_iter() {
            prop_assert_eq!(*v, ty[&i] + bias[i[1]]);
        }
    }
}

// ------------------------------------------------------------------------------------------
// 5. conv_backward against central finite differences
// ------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(cfg(400))]
    #[test]
    fn p05_conv_backward_matches_finite_differences(c in Gen::new().sizes(1, [6, 4, 3]).valid()) {
        let mut rng = c.rng();
        // Everything in the case's layout: gradients are layout-shaped.
        let x = ints(&c.x_shape(), &mut rng, -3, 3);
        let w = ints(&c.w_shape(), &mut rng, -3, 3);
        let b = ints(&[c.cout], &mut rng, -3, 3);
        let d = c.desc();
        let f = |x: &ArrayD<f64>, w: &ArrayD<f64>, b: &ArrayD<f64>| {
            let b1 = b.view().into_dimensionality::<ndarray::Ix1>().unwrap();
            conv(x.view(), w.view(), Some(b1), &d).unwrap()
        };
        let y = f(&x, &w, &b);
        let gy = ints(y.shape(), &mut rng, -3, 3);
        let g = conv_backward(x.view(), w.view(), gy.view(), &d).unwrap();
        let h = 1e-3;
        let fx = fd_grad(|v| f(v, &w, &b), &x, &gy, h);
        let fw = fd_grad(|v| f(&x, v, &b), &w, &gy, h);
        let fb = fd_grad(|v| f(&x, &w, v), &b, &gy, h);
        prop_close!(g.grad_input, fx, 1e-6, "grad_input {:?}", c);
        prop_close!(g.grad_weight, fw, 1e-6, "grad_weight {:?}", c);
        prop_close!(g.grad_bias.into_dyn(), fb, 1e-6, "grad_bias {:?}", c);
    }
}

// ------------------------------------------------------------------------------------------
// Random pooling problems
// ------------------------------------------------------------------------------------------

/// Resolved (kernel, stride, dilation, (begin, end) pads) per axis.
type PoolGeometry = (Vec<usize>, Vec<usize>, Vec<usize>, Vec<(usize, usize)>);

#[derive(Debug, Clone)]
struct PoolCase {
    kind: PoolKind,
    batch: usize,
    channels: usize,
    spatial: Vec<usize>,
    kernel: Vec<usize>,
    stride: Vec<usize>,
    dilation: Vec<usize>,
    padding: Padding,
    ceil: bool,
    include_pad: bool,
    layout: Layout,
    seed: u64,
}

impl PoolCase {
    fn rank(&self) -> usize {
        self.spatial.len()
    }
    fn desc(&self) -> PoolDesc {
        PoolDesc::new(self.kind)
            .kernel(&self.kernel)
            .stride(&self.stride)
            .dilation(&self.dilation)
            .padding(self.padding.clone())
            .ceil_mode(self.ceil)
            .count_include_pad(self.include_pad)
            .layout(self.layout)
    }
    fn x_shape(&self) -> Vec<usize> {
        data_shape(self.layout, self.batch, self.channels, &self.spatial)
    }
    fn global(&self) -> bool {
        matches!(self.kind, PoolKind::GlobalMax | PoolKind::GlobalAvg)
    }
    /// Resolved (kernel, stride, dilation, pads) per axis, independently of the library.
    fn geometry(&self) -> PoolGeometry {
        let r = self.rank();
        if self.global() {
            return (self.spatial.clone(), vec![1; r], vec![1; r], vec![(0, 0); r]);
        }
        let stride = if self.stride.is_empty() { self.kernel.clone() } else { self.stride.clone() };
        let effs: Vec<usize> = (0..r).map(|a| self.dilation[a] * (self.kernel[a] - 1) + 1).collect();
        let pads = resolve_pads(&self.padding, &self.spatial, &effs, &stride);
        (self.kernel.clone(), stride, self.dilation.clone(), pads)
    }
    /// Input positions (possibly in the padding) of the taps of output `o` along axis `a`.
    fn taps(&self, a: usize, o: usize) -> Vec<isize> {
        let (k, s, d, p) = self.geometry();
        (0..k[a]).map(|t| (o * s[a] + t * d[a]) as isize - p[a].0 as isize).collect()
    }
}

fn pool_cases(max_size: [usize; 3], max_batch: usize, kinds: Vec<PoolKind>) -> BoxedStrategy<PoolCase> {
    (1usize..=3)
        .prop_flat_map(move |rank| {
            let padding = prop_oneof![
                3 => prop::collection::vec(0usize..=2, 2 * rank).prop_map(Padding::Explicit),
                1 => (0usize..=1).prop_map(Padding::uniform),
                1 => prop::sample::select(vec![Padding::Valid, Padding::Same, Padding::SameLower, Padding::Full]),
            ];
            let stride = prop_oneof![
                1 => Just(vec![]),
                3 => prop::collection::vec(1usize..=3, rank),
            ];
            (
                (
                    prop::sample::select(kinds.clone()),
                    1..=max_batch,
                    1usize..=2,
                    prop::collection::vec(1..=max_size[rank - 1], rank),
                ),
                (
                    prop::collection::vec(1usize..=3, rank),
                    stride,
                    prop::collection::vec(1usize..=2, rank),
                    padding,
                ),
                (any::<bool>(), any::<bool>(), prop::sample::select(vec![Layout::Nchw, Layout::Nhwc]), any::<u64>()),
            )
                .prop_map(
                    |(
                        (kind, batch, channels, spatial),
                        (kernel, stride, dilation, padding),
                        (ceil, include_pad, layout, seed),
                    )| PoolCase {
                        kind,
                        batch,
                        channels,
                        spatial,
                        kernel,
                        stride,
                        dilation,
                        padding,
                        ceil,
                        include_pad,
                        layout,
                        seed,
                    },
                )
        })
        .prop_filter("invalid pooling", |p| PoolProblem::new(&p.desc(), &p.x_shape()).is_ok())
        .boxed()
}

/// For each output (NCHW multi-index over the output array `shape`), the in-input taps (NCHW
/// spatial multi-indices, in row-major scan order) and the count of taps inside input + padding.
fn pool_windows(pc: &PoolCase, out_sp: &[usize]) -> Vec<(Vec<usize>, Vec<Vec<usize>>, usize)> {
    let r = pc.rank();
    let (k, _, _, pads) = pc.geometry();
    let mut res = Vec::new();
    for o in ndarray::indices(IxDyn(out_sp)) {
        let per_axis: Vec<Vec<isize>> = (0..r).map(|a| pc.taps(a, o[a])).collect();
        let mut inside = Vec::new();
        let mut in_padded = 0;
        for t in ndarray::indices(IxDyn(&k)) {
            let pos: Vec<isize> = (0..r).map(|a| per_axis[a][t[a]]).collect();
            if (0..r)
                .all(|a| pos[a] >= -(pads[a].0 as isize) && pos[a] < (pc.spatial[a] + pads[a].1) as isize)
            {
                in_padded += 1;
            }
            if (0..r).all(|a| pos[a] >= 0 && pos[a] < pc.spatial[a] as isize) {
                inside.push(pos.iter().map(|&p| p as usize).collect());
            }
        }
        res.push((o.slice().to_vec(), inside, in_padded));
    }
    res
}

// ------------------------------------------------------------------------------------------
// Pooling forward against an oracle (extra: output sizes and values)
// ------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(cfg(1500))]
    #[test]
    fn p06a_pool_matches_naive_oracle(
        pc in pool_cases([8, 5, 4], 2, vec![PoolKind::Max, PoolKind::Avg, PoolKind::GlobalMax, PoolKind::GlobalAvg])
    ) {
        let mut rng = Rng(pc.seed);
        let x = ints(&data_shape(Layout::Nchw, pc.batch, pc.channels, &pc.spatial), &mut rng, -3, 3);
        let y = to_nchw(&pool(from_nchw(&x, pc.layout).view(), &pc.desc()).unwrap(), pc.layout);
        // Output size: floor mode counts whole placements in input + padding; ceil mode also
        // keeps a last partial window if it starts inside the input or the begin padding.
        let (k, s, d, pads) = pc.geometry();
        for a in 0..pc.rank() {
            let eff = d[a] * (k[a] - 1) + 1;
            let full = count_placements(pc.spatial[a], eff, s[a], pads[a].0, pads[a].1);
            let want = if pc.ceil && !pc.global() {
                // Ceil mode adds the one partial window that rounding up creates (when the
                // placements do not tile the padded input exactly), unless it would start in
                // the end padding (PyTorch: "the last pooling starts inside the image").
                let span = pc.spatial[a] + pads[a].0 + pads[a].1 - eff;
                let partial = span % s[a] != 0 && full * s[a] < pc.spatial[a] + pads[a].0;
                full + partial as usize
            } else {
                full
            };
            prop_assert_eq!(y.shape()[2 + a], want, "output size of axis {}, {:?}", a, pc);
        }
        let avg = matches!(pc.kind, PoolKind::Avg | PoolKind::GlobalAvg);
        let out_sp = y.shape()[2..].to_vec();
        let wins = pool_windows(&pc, &out_sp);
        for n in 0..pc.batch {
            for ch in 0..pc.channels {
                for (o, inside, in_padded) in &wins {
                    let vals: Vec<f64> = inside
                        .iter()
                        .map(|t| { let mut i = vec![n, ch]; i.extend(t); x[IxDyn(&i)] })
                        .collect();
                    let want = if avg {
                        let div = if pc.include_pad { *in_padded } else { inside.len() } as f64;
                        vals.iter().sum::<f64>() / div
                    } else {
                        vals.iter().copied().fold(f64::MIN, f64::max)
                    };
                    let mut i = vec![n, ch];
                    i.extend(o);
                    let got = y[IxDyn(&i)];
                    prop_assert!(got == want || (got.is_nan() && want.is_nan()) || (got - want).abs() < 1e-12,
                        "at {:?}: got {}, want {}; {:?}", i, got, want, pc);
                }
            }
        }
    }
}

// ------------------------------------------------------------------------------------------
// 6. Pooling gradients against finite differences
// ------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(cfg(800))]
    #[test]
    fn p06_pool_backward_matches_finite_differences(
        pc in pool_cases([7, 4, 3], 2, vec![PoolKind::Max, PoolKind::Avg, PoolKind::GlobalMax, PoolKind::GlobalAvg])
    ) {
        let mut rng = Rng(pc.seed);
        let max = matches!(pc.kind, PoolKind::Max | PoolKind::GlobalMax);
        // Distinct values 1 apart keep every argmax stable under a 1e-3 perturbation.
        let x = if max { distinct(&pc.x_shape(), &mut rng) } else { ints(&pc.x_shape(), &mut rng, -3, 3) };
        let d = pc.desc();
        let y = pool(x.view(), &d).unwrap();
        let gy = ints(y.shape(), &mut rng, -3, 3);
        let gx = pool_backward(x.view(), gy.view(), &d).unwrap();
        let fx = fd_grad(|v| pool(v.view(), &d).unwrap(), &x, &gy, 1e-3);
        prop_close!(gx, fx, 1e-6, "{:?}", pc);
    }
}

// ------------------------------------------------------------------------------------------
// 7. flip = cross-correlation with the kernel reversed on every spatial axis
// ------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(cfg(1000))]
    #[test]
    fn p07_flip_equals_xcorr_with_reversed_kernel(c in Gen::new().valid()) {
        let mut rng = c.rng();
        let x = ints(&c.x_shape_nchw(), &mut rng, -3, 3);
        let w = ints(&c.w_shape(), &mut rng, -3, 3);
        let b: Vec<f64> = (0..c.cout).map(|_| rng.int(-3, 3)).collect();
        let wr = w
            .slice_each_axis(|ax| if ax.axis.index() >= 2 { Slice::new(0, None, -1) } else { Slice::from(..) })
            .to_owned();
        let mut cf = c.clone();
        cf.flip = true;
        let mut cx = c.clone();
        cx.flip = false;
        let yf = lib_conv(&cf, &x, &w, Some(&b));
        let yx = lib_conv(&cx, &x, &wr, Some(&b));
        prop_close!(yf, yx, 0.0, "{:?}", c);
    }
}

// ------------------------------------------------------------------------------------------
// 8. Max-pool indices point at the (first) maximum inside the window
// ------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(cfg(1500))]
    #[test]
    fn p08_max_pool_indices_point_at_the_first_maximum(
        pc in pool_cases([8, 5, 4], 2, vec![PoolKind::Max, PoolKind::GlobalMax])
    ) {
        let mut rng = Rng(pc.seed);
        // Few distinct values: many ties.
        let x = ints(&data_shape(Layout::Nchw, pc.batch, pc.channels, &pc.spatial), &mut rng, -2, 2);
        let (y, idx) = max_pool_with_indices(from_nchw(&x, pc.layout).view(), &pc.desc()).unwrap();
        let (y, idx) = (to_nchw(&y, pc.layout), to_nchw(&idx, pc.layout));
        let plane: usize = pc.spatial.iter().product();
        let flat = |t: &[usize]| t.iter().zip(&pc.spatial).fold(0, |f, (&i, &n)| f * n + i);
        let wins = pool_windows(&pc, &y.shape()[2..]);
        // The gradient is routed to the very element the index names (ties included).
        let gy = ints(y.shape(), &mut rng, -3, 3);
        let gx = to_nchw(
            &pool_backward(from_nchw(&x, pc.layout).view(), from_nchw(&gy, pc.layout).view(), &pc.desc()).unwrap(),
            pc.layout,
        );
        let mut routed = ArrayD::<f64>::zeros(x.raw_dim());
        for n in 0..pc.batch {
            for ch in 0..pc.channels {
                for (o, inside, _) in &wins {
                    let mut oi = vec![n, ch];
                    oi.extend(o);
                    if !inside.is_empty() {
                        let mut xi = vec![n, ch];
                        let mut f = idx[IxDyn(&oi)] as usize;
                        let mut sp = vec![0; pc.rank()];
                        for a in (0..pc.rank()).rev() {
                            sp[a] = f % pc.spatial[a];
                            f /= pc.spatial[a];
                        }
                        xi.extend(sp);
                        routed[IxDyn(&xi)] += gy[IxDyn(&oi)];
                    }
                }
            }
        }
        prop_close!(gx, routed, 0.0, "max-pool gradient vs indices {:?}", pc);
        for n in 0..pc.batch {
            for ch in 0..pc.channels {
                for (o, inside, _) in &wins {
                    let mut oi = vec![n, ch];
                    oi.extend(o);
                    let (v, i) = (y[IxDyn(&oi)], idx[IxDyn(&oi)]);
                    if inside.is_empty() {
                        prop_assert_eq!(v, f64::MIN, "window wholly in the padding at {:?}", oi);
                        continue;
                    }
                    prop_assert!(i >= 0 && (i as usize) < plane, "index {} outside the plane at {:?}; {:?}", i, oi, pc);
                    let i = i as usize;
                    let pos = inside.iter().position(|t| flat(t) == i);
                    prop_assert!(pos.is_some(), "index {} not in the window at {:?}; {:?}", i, oi, pc);
                    let at = |t: &Vec<usize>| { let mut j = vec![n, ch]; j.extend(t); x[IxDyn(&j)] };
                    prop_assert_eq!(at(&inside[pos.unwrap()]), v, "x[index] != output at {:?}", oi);
                    for t in inside {
                        prop_assert!(at(t) <= v, "output {} is not the window maximum at {:?}", v, oi);
                        if flat(t) < i {
                            prop_assert!(at(t) < v, "an earlier tap {:?} ties the maximum at {:?}; {:?}", t, oi, pc);
                        }
                    }
                }
            }
        }
    }
}

// ------------------------------------------------------------------------------------------
// 9. im2col + matrix product = conv (groups 1); col2im is the adjoint of im2col
// ------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(cfg(1000))]
    #[test]
    fn p09_im2col_matmul_is_conv_and_col2im_is_its_adjoint(c in Gen::new().max_groups(1).valid()) {
        let mut rng = c.rng();
        let x = ints(&c.x_shape_nchw(), &mut rng, -3, 3);
        let w = ints(&c.w_shape(), &mut rng, -3, 3);
        let xl = from_nchw(&x, c.layout);
        let d = c.desc();
        let cols = im2col(xl.view(), &c.kernel, &d).unwrap();
        let taps: usize = c.kernel.iter().product();
        let outs = c.out_sizes();
        let nout: usize = outs.iter().product();
        prop_assert_eq!(cols.shape(), &[c.batch, c.cin * taps, nout][..]);
        let wm: Array2<f64> = w.clone().into_shape_with_order((c.cout, c.cin * taps)).unwrap();
        let mut y = ArrayD::zeros(IxDyn(&c.y_shape_nchw()));
        for n in 0..c.batch {
            let yn = wm.dot(&cols.index_axis(NdAxis(0), n));
            let yn = yn.into_shape_with_order(data_shape(Layout::Nchw, 1, c.cout, &outs)[1..].to_vec()).unwrap();
            y.index_axis_mut(NdAxis(0), n).assign(&yn);
        }
        let want = lib_conv(&c, &x, &w, None);
        prop_close!(y, want, 0.0, "im2col·W vs conv {:?}", c);

        // Adjoint of the linear part (constant padding makes im2col affine: subtract im2col(0)).
        let zero = ArrayD::<f64>::zeros(xl.raw_dim());
        let cols0 = im2col(zero.view(), &c.kernel, &d).unwrap();
        if !matches!(c.mode, PadMode::Constant(v) if v != 0.0) {
            prop_assert!(cols0.iter().all(|&v| v == 0.0), "im2col(0) != 0 for a linear mode");
        }
        let cr = ints(cols.shape(), &mut rng, -3, 3).into_dimensionality::<ndarray::Ix3>().unwrap();
        let back = col2im(cr.view(), &c.x_shape(), &c.kernel, &d).unwrap();
        prop_assert_eq!(back.shape(), &c.x_shape()[..]);
        let lin = (&cols - &cols0).into_dyn();
        let (l, r) = (dot(&lin, &cr.into_dyn()), dot(&xl, &back));
        prop_assert!((l - r).abs() <= 1e-9 * l.abs().max(1.0), "<im2col x, c> = {} but <x, col2im c> = {}; {:?}", l, r, c);
    }
}

// ------------------------------------------------------------------------------------------
// 10. f32 and f64 agree exactly on small integers
// ------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(cfg(800))]
    #[test]
    fn p10_f32_equals_f64_on_small_integers(c in Gen::new().valid()) {
        let mut rng = c.rng();
        let x = ints(&c.x_shape_nchw(), &mut rng, -3, 3);
        let w = ints(&c.w_shape(), &mut rng, -3, 3);
        let b: Vec<f64> = (0..c.cout).map(|_| rng.int(-3, 3)).collect();
        let (x32, w32) = (x.mapv(|v| v as f32), w.mapv(|v| v as f32));
        let b32: Vec<f32> = b.iter().map(|&v| v as f32).collect();
        let y64 = lib_conv(&c, &x, &w, Some(&b));
        let y32 = lib_conv(&c, &x32, &w32, Some(&b32)).mapv(|v| v as f64);
        prop_close!(y32, y64, 0.0, "conv {:?}", c);
        let xl = from_nchw(&x, c.layout);
        let gy = ints(&data_shape(c.layout, c.batch, c.cout, &c.out_sizes()), &mut rng, -3, 3);
        let g64 = conv_backward(xl.view(), w.view(), gy.view(), &c.desc()).unwrap();
        let g32 = conv_backward(xl.mapv(|v| v as f32).view(), w32.view(), gy.mapv(|v| v as f32).view(), &c.desc()).unwrap();
        prop_close!(g32.grad_input.mapv(|v| v as f64), g64.grad_input, 0.0, "grad_input {:?}", c);
        prop_close!(g32.grad_weight.mapv(|v| v as f64), g64.grad_weight, 0.0, "grad_weight {:?}", c);
        prop_close!(g32.grad_bias.mapv(|v| v as f64).into_dyn(), g64.grad_bias.into_dyn(), 0.0, "grad_bias {:?}", c);
    }
}

// ------------------------------------------------------------------------------------------
// 11. NHWC equals NCHW after permuting axes
// ------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(cfg(1000))]
    #[test]
    fn p11_nhwc_equals_permuted_nchw(c in Gen::new().valid()) {
        let mut rng = c.rng();
        let x = ints(&c.x_shape_nchw(), &mut rng, -3, 3);
        let w = ints(&c.w_shape(), &mut rng, -3, 3);
        let b: Vec<f64> = (0..c.cout).map(|_| rng.int(-3, 3)).collect();
        let gy = ints(&c.y_shape_nchw(), &mut rng, -3, 3);
        let bv = ndarray::ArrayView1::from(&b);
        let (mut cn, mut ch) = (c.clone(), c.clone());
        cn.layout = Layout::Nchw;
        ch.layout = Layout::Nhwc;
        let (dn, dh) = (cn.desc(), ch.desc());
        let xh = from_nchw(&x, Layout::Nhwc);
        let gyh = from_nchw(&gy, Layout::Nhwc);

        let yn = conv(x.view(), w.view(), Some(bv), &dn).unwrap();
        let yh = conv(xh.view(), w.view(), Some(bv), &dh).unwrap();
        prop_close!(to_nchw(&yh, Layout::Nhwc), yn, 0.0, "conv {:?}", c);

        let gn = conv_backward(x.view(), w.view(), gy.view(), &dn).unwrap();
        let gh = conv_backward(xh.view(), w.view(), gyh.view(), &dh).unwrap();
        prop_close!(to_nchw(&gh.grad_input, Layout::Nhwc), gn.grad_input, 0.0, "grad_input {:?}", c);
        prop_close!(gh.grad_weight, gn.grad_weight, 0.0, "grad_weight {:?}", c);
        prop_close!(gh.grad_bias.into_dyn(), gn.grad_bias.into_dyn(), 0.0, "grad_bias {:?}", c);

        let coln = im2col(x.view(), &c.kernel, &dn.clone().groups(1)).unwrap();
        let colh = im2col(xh.view(), &c.kernel, &dh.clone().groups(1)).unwrap();
        prop_close!(colh.into_dyn(), coln.into_dyn(), 0.0, "im2col {:?}", c);

        // conv_transpose of the output back (explicit pads only; named ones are resolved differently).
        if let Padding::Explicit(_) = c.padding {
            let td = |l| ConvTransposeDesc::new().stride(&c.stride).dilation(&c.dilation).padding(c.padding.clone())
                .groups(c.groups).flip(c.flip).layout(l);
            let tn = conv_transpose(gy.view(), w.view(), None, &td(Layout::Nchw));
            let th = conv_transpose(gyh.view(), w.view(), None, &td(Layout::Nhwc));
            prop_assert_eq!(tn.is_ok(), th.is_ok());
            if let (Ok(tn), Ok(th)) = (tn, th) {
                prop_close!(to_nchw(&th, Layout::Nhwc), tn, 0.0, "conv_transpose {:?}", c);
            }
        }
    }

    #[test]
    fn p11b_pooling_nhwc_equals_permuted_nchw(
        pc in pool_cases([8, 5, 4], 2, vec![PoolKind::Max, PoolKind::Avg, PoolKind::GlobalMax, PoolKind::GlobalAvg])
    ) {
        let mut rng = Rng(pc.seed);
        let x = ints(&data_shape(Layout::Nchw, pc.batch, pc.channels, &pc.spatial), &mut rng, -2, 2);
        let (mut pn, mut ph) = (pc.clone(), pc.clone());
        pn.layout = Layout::Nchw;
        ph.layout = Layout::Nhwc;
        let xh = from_nchw(&x, Layout::Nhwc);
        let yn = pool(x.view(), &pn.desc()).unwrap();
        let yh = pool(xh.view(), &ph.desc()).unwrap();
        prop_close!(to_nchw(&yh, Layout::Nhwc), yn, 0.0, "pool {:?}", pc);
        let gy = ints(yn.shape(), &mut rng, -3, 3);
        let gn = pool_backward(x.view(), gy.view(), &pn.desc()).unwrap();
        let gh = pool_backward(xh.view(), from_nchw(&gy, Layout::Nhwc).view(), &ph.desc()).unwrap();
        prop_close!(to_nchw(&gh, Layout::Nhwc), gn, 0.0, "pool_backward {:?}", pc);
        if matches!(pc.kind, PoolKind::Max | PoolKind::GlobalMax) {
            let (_, i_n) = max_pool_with_indices(x.view(), &pn.desc()).unwrap();
            let (_, i_h) = max_pool_with_indices(xh.view(), &ph.desc()).unwrap();
            prop_assert_eq!(to_nchw(&i_h, Layout::Nhwc), i_n);
        }
    }
}

// ------------------------------------------------------------------------------------------
// Fixed regression examples
// ------------------------------------------------------------------------------------------

#[test]
fn worked_example_1d_cross_correlation() {
    let x = array![[[1.0f64, 2.0, 0.0, -1.0, 3.0, 1.0]]];
    let w = array![[[2.0f64, -1.0, 1.0]]];
    let y = conv(x.view(), w.view(), None, &ConvDesc::new()).unwrap();
    assert_eq!(y, array![[[0.0, 3.0, 4.0, -4.0]]]);
    // True convolution reverses the kernel: [1, -1, 2].
    let y = conv(x.view(), w.view(), None, &ConvDesc::new().flip(true)).unwrap();
    assert_eq!(y, array![[[-1.0, 0.0, 7.0, -2.0]]]);
}

/// 3x3 input [[1,2,3],[4,5,6],[7,8,9]] padded by hand, then a valid convolution.
#[test]
fn worked_example_2d_padding_modes() {
    let x = array![[[[1.0f64, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]]];
    let w = array![[[[1.0f64, 0.0, -2.0], [3.0, 1.0, 0.0], [0.0, -1.0, 2.0]]]];
    let reflect = array![
        [5.0, 4.0, 5.0, 6.0, 5.0],
        [2.0, 1.0, 2.0, 3.0, 2.0],
        [5.0, 4.0, 5.0, 6.0, 5.0],
        [8.0, 7.0, 8.0, 9.0, 8.0],
        [5.0, 4.0, 5.0, 6.0, 5.0],
    ];
    let replicate = array![
        [1.0, 1.0, 2.0, 3.0, 3.0],
        [1.0, 1.0, 2.0, 3.0, 3.0],
        [4.0, 4.0, 5.0, 6.0, 6.0],
        [7.0, 7.0, 8.0, 9.0, 9.0],
        [7.0, 7.0, 8.0, 9.0, 9.0],
    ];
    let circular = array![
        [9.0, 7.0, 8.0, 9.0, 7.0],
        [3.0, 1.0, 2.0, 3.0, 1.0],
        [6.0, 4.0, 5.0, 6.0, 4.0],
        [9.0, 7.0, 8.0, 9.0, 7.0],
        [3.0, 1.0, 2.0, 3.0, 1.0],
    ];
    // With one pad, symmetric (edge repeated) coincides with replicate.
    let symmetric = replicate.clone();
    let constant = array![
        [-1.0, -1.0, -1.0, -1.0, -1.0],
        [-1.0, 1.0, 2.0, 3.0, -1.0],
        [-1.0, 4.0, 5.0, 6.0, -1.0],
        [-1.0, 7.0, 8.0, 9.0, -1.0],
        [-1.0, -1.0, -1.0, -1.0, -1.0],
    ];
    // Two pads: symmetric reads rows/cols [1,0,0,1,2,2,1], reflect [2,1,0,1,2,1,0].
    let by_index = |ix: [usize; 7]| ndarray::Array2::from_shape_fn((7, 7), |(i, j)| x[[0, 0, ix[i], ix[j]]]);
    let symmetric2 = by_index([1, 0, 0, 1, 2, 2, 1]);
    let reflect2 = by_index([2, 1, 0, 1, 2, 1, 0]);
    assert_eq!(symmetric2.row(0).to_vec(), vec![5.0, 4.0, 4.0, 5.0, 6.0, 6.0, 5.0]);
    assert_eq!(reflect2.row(0).to_vec(), vec![9.0, 8.0, 7.0, 8.0, 9.0, 8.0, 7.0]);
    for (mode, pad, padded) in [
        (PadMode::Reflect, 1, reflect),
        (PadMode::Replicate, 1, replicate),
        (PadMode::Circular, 1, circular),
        (PadMode::Symmetric, 1, symmetric),
        (PadMode::Constant(-1.0), 1, constant),
        (PadMode::Symmetric, 2, symmetric2),
        (PadMode::Reflect, 2, reflect2),
    ] {
        let d = ConvDesc::new().padding(Padding::uniform(pad)).padding_mode(mode);
        let got = conv(x.view(), w.view(), None, &d).unwrap();
        let padded = padded.insert_axis(NdAxis(0)).insert_axis(NdAxis(0));
        let want = conv(padded.view(), w.view(), None, &ConvDesc::new().padding(Padding::Valid)).unwrap();
        assert_eq!(got, want, "{mode} pad {pad}");
        // And against the oracle's own padding.
        let pads = vec![(pad, pad); 2];
        assert_eq!(
            pad_oracle(&x.clone().into_dyn(), &pads, mode),
            padded.clone().into_dyn(),
            "{mode} pad {pad}"
        );
    }
    // The centre output reads no padding: sum(w * x) = 1 - 6 + 12 + 5 - 8 + 18 = 22.
    let d = ConvDesc::new().padding(Padding::uniform(1)).padding_mode(PadMode::Reflect);
    let y = conv(x.view(), w.view(), None, &d).unwrap();
    assert_eq!(y[[0, 0, 1, 1]], 22.0);
    // Its top-left corner reads the reflected rows: [[5,4,5],[2,1,2],[5,4,5]] * w
    // = 5 - 10 + 6 + 1 - 4 + 10 = 8.
    assert_eq!(y[[0, 0, 0, 0]], 8.0);
}

/// BUG: with ceil_mode the library can return FEWER pooling windows than with floor mode.
/// Input length 4, kernel 2, stride 2, padding begin 0 / end 2: floor mode has 3 windows
/// (padded positions 0-1, 2-3, 4-5; the last lies wholly in the end padding). Ceil mode
/// computes ceil((6-2)/2)+1 = 3 and then applies PyTorch's "last window must start inside the
/// image" rule, which drops the last *full* window, giving 2. PyTorch never meets this case
/// (it requires pad <= kernel/2); the rule should only drop the extra partial window that ceil
/// rounding adds, so ceil mode should give 3 here, never fewer windows than floor mode.
#[test]
/// Regression: ceil mode once dropped a full window lying in the end padding, giving fewer
/// outputs than floor mode.
fn pool_ceil_mode_keeps_a_full_window_in_the_end_padding() {
    let desc = |ceil| {
        PoolDesc::new(PoolKind::Max)
            .kernel([2])
            .stride([2])
            .padding(Padding::asymmetric(&[0], &[2]))
            .ceil_mode(ceil)
    };
    let floor = PoolProblem::new(&desc(false), &[1, 1, 4]).unwrap();
    let ceil = PoolProblem::new(&desc(true), &[1, 1, 4]).unwrap();
    assert_eq!(floor.axes[0].output, 3);
    assert!(
        ceil.axes[0].output >= floor.axes[0].output,
        "ceil mode gives {} windows, floor mode {}",
        ceil.axes[0].output,
        floor.axes[0].output
    );
    // Symmetric padding, kernel 1, input 2, pad 1: floor 4 windows, ceil 3.
    let d = |ceil| PoolDesc::new(PoolKind::Avg).kernel([1]).padding(Padding::uniform(1)).ceil_mode(ceil);
    let f = PoolProblem::new(&d(false), &[1, 1, 2]).unwrap().axes[0].output;
    let c = PoolProblem::new(&d(true), &[1, 1, 2]).unwrap().axes[0].output;
    assert!(c >= f, "ceil mode gives {c} windows, floor mode {f}");
}
