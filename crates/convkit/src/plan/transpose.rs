//! Transposed convolution, planned once: the sub-pixel (phase) view.
//!
//! Output position `o` of a transposed convolution receives `x[i]·w[t]` wherever
//! `o = i·s + t·d − pad_begin`. Split the outputs by their phase `r = o mod s` on each axis:
//! within one phase, the taps that reach it are a fixed subset of the kernel (every
//! `s / gcd(s, d)`-th tap), and they read the input at consecutive offsets `q + c` spaced
//! `d / gcd(s, d)` apart. So each phase is an ordinary **stride-1 forward convolution** of the
//! input with a small, reordered kernel, which runs on the fast engine ([`ConvPlan`]: every
//! ISA level, every implementation family), and its result is scattered into every `s`-th
//! output. There are `∏s` phases; together they do exactly the multiply-adds of the
//! transposed convolution, no zero-stuffed input, no col2im accumulation. On the exact
//! implementations the sums are the reference's products in another order, so results are
//! exact on integer data, and bitwise identical for any thread count. Phases with 2×2 (or
//! 3×3) kernels and enough channels take Winograd unless exact results are asked for, as a
//! forward convolution would: DCGAN's 4×4 stride-2 kernel splits into four 2×2 phases.
//!
//! Only phases some tap reaches are planned (at most `kernel` per axis, whatever the stride);
//! outputs no tap reaches (stride larger than the dilated kernel) hold the bias alone. Negative effective padding (large `padding`) becomes outputs skipped at the start of
//! the phase's result, so every stride, dilation, padding, output padding, group count and
//! layout runs on plans.
//!
//! Why not GEMM + col2im: col2im writes every product into a `C·∏k × ∏in` column matrix, then
//! adds overlapping columns back together (memory traffic of `∏k` outputs per output), and
//! its sums need a fixed order to stay deterministic across threads. The phase split reuses
//! the forward engine's tuned tiles and writes each output once.

use super::{ConvPlan, PlanOptions};
use crate::desc::{ConvDesc, Padding};
use crate::error::Result;
use crate::scalar::Scalar;
use crate::shape::{data_strides, ConvProblem, ConvTransposeProblem};
use crate::tensor::{alloc, check_bias, check_len, check_workspace, line_round};

/// One axis of one phase: which outputs it produces and how its forward convolution reads.
#[derive(Debug, Clone)]
struct AxisPhase {
    /// The phase: outputs `o = q·s + r`.
    r: usize,
    /// Outputs of this phase, `q < count`.
    count: usize,
    /// Taps (unflipped kernel indices) of the forward convolution's kernel, in its order.
    taps: Vec<usize>,
    /// Forward convolution: dilation, padding begin and end.
    dilation: usize,
    pad: (usize, usize),
    /// Leading results of the forward convolution to skip (negative begin padding, or a
    /// group's common padding beyond this phase's own).
    skip: usize,
    /// This phase's own begin padding (negative: inputs to skip).
    off: i64,
    /// Size of the forward convolution's output on this axis.
    full: usize,
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// The phase `r` of axis `ax` (`r < min(stride, output)`).
fn axis_phase(ax: &crate::shape::Axis, r: usize) -> AxisPhase {
    let (s, d, k) = (ax.stride as i64, ax.dilation as i64, ax.kernel as i64);
    let pb = ax.pad_begin as i64;
    let count = (ax.output - r).div_ceil(ax.stride);
    // Taps t with (r + pb − t·d) ≡ 0 (mod s), ascending; input offset c_t = (r + pb − t·d) / s.
    let hits: Vec<i64> = (0..k).filter(|t| (r as i64 + pb - t * d).rem_euclid(s) == 0).collect();
    debug_assert!(!hits.is_empty(), "phase {r} is reached by no tap");
    let dd = (d / gcd(s as usize, d as usize) as i64).max(1);
    // The forward kernel runs the taps in reverse: kernel index j' reads x[q + c_last + j'·dd].
    let c_last = (r as i64 + pb - hits[hits.len() - 1] * d) / s;
    AxisPhase {
        r,
        count,
        taps: hits.iter().rev().map(|&t| t as usize).collect(),
        dilation: dd as usize,
        off: -c_last,
        // Set by the phase's group (`axis_groups`).
        pad: (0, 0),
        skip: 0,
        full: 0,
    }
}

/// The phases of one axis, grouped by kernel length: a group's phases read the input through
/// windows of the same shape, so they share one forward convolution (their kernels stacked as
/// output channels) once given common padding; each phase then skips its own leading results.
fn axis_groups(ax: &crate::shape::Axis, share_anyway: bool) -> Vec<Vec<AxisPhase>> {
    let mut rs: Vec<usize> = (0..ax.kernel)
        .map(|t| {
            (t as i128 * ax.dilation as i128 - ax.pad_begin as i128).rem_euclid(ax.stride as i128) as usize
        })
        .filter(|&r| r < ax.output)
        .collect();
    rs.sort_unstable();
    rs.dedup();
    let mut groups: Vec<Vec<AxisPhase>> = Vec::new();
    for ph in rs.into_iter().map(|r| axis_phase(ax, r)) {
        // Join a group only if the shared convolution stays (nearly) as short as the longest
        // member's own: phases offset by one input (DCGAN's 4×4 stride 2: 17 results for 16
        // outputs per axis, 13 % more multiply-adds in 2-D) run apart instead, unless
        // `share_anyway`.
        let fits = |g: &Vec<AxisPhase>| {
            let own = g.iter().chain([&ph]).map(|p| shared(ax, std::slice::from_ref(p)).2).max().unwrap_or(0);
            let joint = shared(ax, &[g.as_slice(), std::slice::from_ref(&ph)].concat()).2;
            g[0].taps.len() == ph.taps.len() && (share_anyway || joint <= own + own / 32)
        };
        match groups.iter_mut().find(|g| fits(g)) {
            Some(g) => g.push(ph),
            None => groups.push(vec![ph]),
        }
    }
    for g in &mut groups {
        let (pb, pe, full) = shared(ax, g);
        for ph in g.iter_mut() {
            ph.skip = (pb - ph.off) as usize;
            ph.pad = (pb as usize, pe as usize);
            ph.full = full;
        }
    }
    groups
}

/// The common padding (begin, end) and result length of one forward convolution serving the
/// phases `g` (same kernel length) on axis `ax`.
fn shared(ax: &crate::shape::Axis, g: &[AxisPhase]) -> (i64, i64, usize) {
    let span = (g[0].dilation * (g[0].taps.len() - 1)) as i64;
    let pb = g.iter().map(|ph| ph.off).max().unwrap_or(0).max(0);
    // Phase outputs `skip .. skip + count` must exist: `full = input + pb + pe − span`.
    let pe = g.iter().map(|ph| ph.count as i64 - ph.off - ax.input as i64 + span).max().unwrap_or(0).max(0);
    (pb, pe, (ax.input as i64 + pb + pe - span) as usize)
}

/// Phases sharing one forward convolution: each member's per-axis geometry, in the order of
/// their blocks of output channels (within each group of channels), and the plan.
struct Phase<T: Scalar> {
    members: Vec<Vec<AxisPhase>>,
    plan: ConvPlan<T>,
    /// Elements of the forward convolution's output.
    out_len: usize,
    /// `Some(pos)`: result channels ordered by output channel, member `m` at `pos[m]` among
    /// them ([`Ilv`]); `None`: by group, member, output channel.
    order: Option<Vec<usize>>,
}

/// One member of a phase group, as [`ConvTransposePlan::scatter`] reads it: its group's
/// forward result and that result's strides.
struct Member<'a, T> {
    buf: &'a [T],
    axes: &'a [AxisPhase],
    /// Members in its group, and its index there.
    nm: usize,
    mi: usize,
    /// Strides of the group's result: sample, channel, spatial.
    bn: usize,
    bc: usize,
    bsp: Vec<usize>,
    /// The group's channel order ([`Phase::order`]).
    order: Option<&'a [usize]>,
}

impl<T> Member<'_, T> {
    /// The result channel holding output channel `k` (groups' blocks of `nm·kg` channels).
    fn channel(&self, k: usize, kg: usize) -> usize {
        match self.order {
            Some(pos) => k * self.nm + pos[self.mi],
            None => (k / kg * self.nm + self.mi) * kg + k % kg,
        }
    }
}

/// The scatter's jobs: lists of members written together. With `stride = Some(s)` (channels-
/// first), a member of phase 0 along the last axis and its twins of phases 1 .. s − 1 there
/// (same outer phases and counts) form one job, in phase order, if all are present; every
/// other member is a job of its own.
fn phase_sets<T>(members: &[Member<'_, T>], stride: Option<usize>) -> Vec<Vec<usize>> {
    let mut used = vec![false; members.len()];
    let mut jobs = Vec::with_capacity(members.len());
    let Some(last) = members.first().map(|m| m.axes.len() - 1) else { return jobs };
    // Phase-0 members first, so each finds its twins wherever they are listed.
    let (first, rest): (Vec<usize>, Vec<usize>) =
        (0..members.len()).partition(|&i| members[i].axes[last].r == 0);
    for i in first.into_iter().chain(rest) {
        if used[i] {
            continue;
        }
        used[i] = true;
        let a = members[i].axes;
        let mut set = vec![i];
        if let (Some(s), 0) = (stride, a[last].r) {
            for r in 1..s {
                let twin = (0..members.len()).find(|&j| {
                    let b = members[j].axes;
                    !used[j]
                        && !set.contains(&j)
                        && b[last].r == r
                        && a[..last].iter().zip(&b[..last]).all(|(x, y)| (x.r, x.count) == (y.r, y.count))
                });
                match twin {
                    Some(j) => set.push(j),
                    None => {
                        set.truncate(1);
                        break;
                    }
                }
            }
            for &j in &set {
                used[j] = true;
            }
        }
        jobs.push(set);
    }
    jobs
}

/// Most phases along the last axis interleaved together (larger strides write each phase
/// apart).
const MAX_SET: usize = 16;

/// Largest total of the groups' results [`ConvTransposePlan`] holds at once.
const HOLD_BYTES: usize = 8 << 20;

/// Whether the phases of one output row fall in different groups (channels-first: the 3×3
/// stride-2 kernel's have 1 and 2 taps along the last axis; DCGAN's run apart) and all the
/// groups' results fit in [`HOLD_BYTES`]: then every group runs before one scatter
/// interleaves them, instead of each writing every `s`-th output of its rows.
fn holds_all<T: Scalar>(p: &ConvTransposeProblem, phases: &[Phase<T>]) -> bool {
    let last = p.axes.len() - 1;
    if p.layout != crate::Layout::Nchw || !(2..=MAX_SET).contains(&p.axes[last].stride) || phases.len() < 2 {
        return false;
    }
    let mut owner = Vec::new();
    let members: Vec<Member<'_, T>> = phases
        .iter()
        .enumerate()
        .flat_map(|(g, ph)| {
            owner.extend(std::iter::repeat_n(g, ph.members.len()));
            ph.members.iter().enumerate().map(move |(mi, axes)| Member {
                buf: &[],
                axes,
                nm: ph.members.len(),
                mi,
                bn: 0,
                bc: 0,
                bsp: vec![],
                order: ph.order.as_deref(),
            })
        })
        .collect();
    let across = phase_sets(&members, Some(p.axes[last].stride))
        .iter()
        .any(|set| set.iter().any(|&m| owner[m] != owner[set[0]]));
    let held: usize = phases.iter().map(|ph| ph.out_len).sum();
    across && held * std::mem::size_of::<T>() <= HOLD_BYTES
}

/// Largest stride along the last axis [`Ilv`] takes. Its tiles interleave `s` rows by
/// `log2(s)` rounds of permutes: at `s = 8` (`convT_1d_k16_s8`, Zen 4, `avx512`) those cost
/// what the separate pass over the result does (102.9 against 103.5 GFLOP/s, 5 alternating
/// rounds); at 2 (U-Net) they are cheap.
const ILV_MAX_STRIDE: usize = 4;

/// Fewest positions along the last axis for [`Ilv`] in 2-D: a tile's columns then cross at
/// most one row of the result.
const ILV_MIN_ROW: usize = crate::kernels::MAX_NR;

/// How one group's tiles go straight into the output, each as soon as it is final
/// ([`ConvPlan::execute_ilv`]), with no pass over the result afterwards. The last axis's `s`
/// phases of one output row (of one outer phase in 2-D) fill its outputs `s·h + d`, `d`
/// from `base` to `base + s − 1`, from result position `h`: ordered by `d`, the tile rows of
/// an output channel's phases interleave into consecutive outputs. Taken for one
/// channels-first group of rank at most 2 where every output belongs to a phase; several
/// threads split the output channels (whole weight blocks each, where a block holds whole
/// output channels' phases), so each writes its own output planes.
#[derive(Debug, Clone)]
struct Ilv {
    /// `d` of the first output phase of a row.
    base: i64,
    /// Per outer phase (one in 1-D): the outer axis's phase and skip (zeros in 1-D).
    outer: Vec<(usize, usize)>,
    /// Member `m`'s place among its output channel's result channels (by outer phase, then
    /// `d`).
    pos: Vec<usize>,
}

impl Ilv {
    fn new(p: &ConvTransposeProblem, per_axis: &[Vec<Vec<AxisPhase>>]) -> Option<Ilv> {
        let rank = p.axes.len();
        let s = p.axes[rank - 1].stride;
        if p.layout != crate::Layout::Nchw || rank > 2 || !(2..=ILV_MAX_STRIDE).contains(&s) {
            return None;
        }
        let lasts = &per_axis[rank - 1][0];
        if lasts.len() != s || (rank == 2 && lasts[0].full < ILV_MIN_ROW) {
            return None;
        }
        // `d = r − s·skip` of each last-axis phase: consecutive once sorted.
        let d: Vec<i64> = lasts.iter().map(|a| a.r as i64 - (s * a.skip) as i64).collect();
        let mut by_d: Vec<usize> = (0..s).collect();
        by_d.sort_by_key(|&i| d[i]);
        if by_d.iter().enumerate().any(|(i, &m)| d[m] != d[by_d[0]] + i as i64) {
            return None;
        }
        let rank_of: Vec<usize> = (0..s).map(|i| by_d.iter().position(|&m| m == i).unwrap_or(0)).collect();
        let outers: Vec<(usize, usize)> =
            if rank == 2 { per_axis[0][0].iter().map(|a| (a.r, a.skip)).collect() } else { vec![(0, 0)] };
        // Members run over the axes' phases row-major (the last axis fastest).
        let pos = (0..outers.len() * s).map(|m| m / s * s + rank_of[m % s]).collect();
        Some(Ilv { base: d[by_d[0]], outer: outers, pos })
    }
}

/// Elements of all the groups' results for the per-axis grouping `per_axis`.
fn held_len(p: &ConvTransposeProblem, per_axis: &[Vec<Vec<AxisPhase>>]) -> usize {
    // Each combination of one group per axis is one forward convolution whose output has
    // `batch · members · K` channels of `∏ full` positions; summed over the combinations,
    // that is `batch · K · ∏_axes Σ_groups (members · full)`.
    per_axis.iter().fold(p.batch * p.out_channels, |acc, gs| {
        acc.saturating_mul(gs.iter().map(|g| g.len() * g[0].full).sum::<usize>())
    })
}

/// Every group's result, each on whole cache lines.
fn held_results<T: Scalar>(phases: &[Phase<T>]) -> usize {
    phases.iter().map(|ph| line_round::<T>(ph.out_len)).sum()
}

/// The largest forward workspace of the groups.
fn inner_workspace<T: Scalar>(phases: &[Phase<T>]) -> usize {
    phases.iter().map(|ph| ph.plan.workspace_len()).max().unwrap_or(0)
}

/// Every group's result (each on whole cache lines) plus the largest forward workspace.
fn held_workspace<T: Scalar>(phases: &[Phase<T>]) -> usize {
    held_results(phases) + inner_workspace(phases)
}

/// A transposed convolution ready to run: each output phase planned as a forward convolution
/// on the fast engine, weights reordered once.
///
/// ```
/// use convkit::{plan::ConvTransposePlan, ConvTransposeDesc, ConvTransposeProblem, PlanOptions};
/// let p = ConvTransposeProblem::new(&ConvTransposeDesc::new().stride([2]), &[1, 1, 2], &[1, 1, 2]).unwrap();
/// let plan = ConvTransposePlan::new(&p, &[1.0f32, 10.0], &PlanOptions::new()).unwrap();
/// let mut y = vec![0.0; 4];
/// let mut ws = plan.workspace().unwrap();
/// plan.execute(&[1.0, 2.0], None, &mut y, &mut ws).unwrap();
/// assert_eq!(y, [1.0, 10.0, 2.0, 20.0]);
/// ```
pub struct ConvTransposePlan<T: Scalar> {
    problem: ConvTransposeProblem,
    /// `None`: the reference, with the weights kept as given.
    phases: Option<Vec<Phase<T>>>,
    /// Some outputs belong to no phase (stride beyond the dilated kernel): they hold the bias.
    fill: bool,
    /// Run every group before scattering (twins in different groups, results small enough).
    hold_all: bool,
    /// The single group's tiles go straight to the output ([`Ilv`]).
    ilv: Option<Ilv>,
    /// The interleave kernel of the plan's ISA level.
    interleave: crate::kernels::InterleaveFn<T>,
    weight: Vec<T>,
    threads: usize,
}

impl<T: Scalar> ConvTransposePlan<T> {
    /// Plan `problem` with `weight` (`(C, K/groups, kernel…)`). `opts.implementation` may be
    /// `reference`, `phase-split` (the default), or a forward implementation name
    /// (`gemm-tiled:avx2`…) that every phase is forced to use; the ISA cap, exactness and
    /// threads apply to every phase.
    pub fn new(problem: &ConvTransposeProblem, weight: &[T], opts: &PlanOptions) -> Result<Self> {
        check_len("weight", weight.len(), &problem.weight_shape())?;
        let (isa, threads) = opts.resolve()?;
        let interleave = crate::kernels::best_kernel_set::<T>(isa).interleave;
        if opts.implementation.as_deref() == Some("reference") {
            return Ok(ConvTransposePlan {
                problem: problem.clone(),
                phases: None,
                fill: false,
                hold_all: false,
                ilv: None,
                interleave,
                weight: weight.to_vec(),
                threads,
            });
        }
        let mut inner = opts.clone();
        if inner.implementation.as_deref() == Some("phase-split") {
            inner.implementation = None;
        }
        let p = problem;
        let rank = p.axes.len();
        // Only phases some tap reaches (at most `kernel` per axis, whatever the stride); the
        // outputs of the others hold the bias alone, filled before the phases run.
        // Phases run apart where sharing would add results. Along the last axis that leaves
        // each to write every `s`-th output, unless all the results can be held and
        // interleaved at once (`holds_all`): where they cannot, its phases share anyway.
        let grouping = |share_last: bool| -> Vec<Vec<Vec<AxisPhase>>> {
            p.axes.iter().enumerate().map(|(a, ax)| axis_groups(ax, share_last && a + 1 == rank)).collect()
        };
        let mut per_axis = grouping(false);
        if held_len(p, &per_axis) * std::mem::size_of::<T>() > HOLD_BYTES {
            per_axis = grouping(true);
        }
        let fill = p
            .axes
            .iter()
            .zip(&per_axis)
            .any(|(ax, gs)| gs.iter().map(Vec::len).sum::<usize>() < ax.stride.min(ax.output));
        let counts: Vec<usize> = per_axis.iter().map(Vec::len).collect();
        let total: usize = counts.iter().product();
        let mut ilv = (total == 1 && !fill).then(|| Ilv::new(p, &per_axis)).flatten();
        let mut phases = Vec::with_capacity(total);
        let mut idx = vec![0; rank];
        for f in 0..total {
            crate::geometry::unravel(f, &counts, &mut idx);
            let parts: Vec<&Vec<AxisPhase>> = (0..rank).map(|a| &per_axis[a][idx[a]]).collect();
            let sizes: Vec<usize> = parts.iter().map(|g| g.len()).collect();
            let mut m = vec![0; rank];
            let members = (0..sizes.iter().product())
                .map(|i| {
                    crate::geometry::unravel(i, &sizes, &mut m);
                    (0..rank).map(|a| parts[a][m[a]].clone()).collect()
                })
                .collect();
            phases.push(Self::phase(p, weight, members, &inner, ilv.as_ref().map(|l| l.pos.clone()))?);
        }
        if !phases.first().is_some_and(|ph| ph.plan.has_ilv(p.axes[rank - 1].stride)) {
            ilv = None;
        }
        Ok(ConvTransposePlan {
            problem: problem.clone(),
            ilv,
            hold_all: holds_all(p, &phases),
            interleave,
            phases: Some(phases),
            fill,
            weight: vec![],
            threads,
        })
    }

    /// Plan a group of phases: one forward problem whose weight `(M·K, C/groups, taps…)`
    /// stacks the members' reordered kernels, `M` blocks of `K/groups` channels per group.
    fn phase(
        p: &ConvTransposeProblem,
        w: &[T],
        members: Vec<Vec<AxisPhase>>,
        opts: &PlanOptions,
        order: Option<Vec<usize>>,
    ) -> Result<Phase<T>> {
        let axes = &members[0];
        let nm = members.len();
        let out_spatial: Vec<usize> = axes.iter().map(|a| a.full).collect();
        let out_len = p.batch * nm * p.out_channels * out_spatial.iter().product::<usize>();
        let (g, cg, kg) = (p.groups, p.in_channels / p.groups, p.out_channels / p.groups);
        let kernel: Vec<usize> = p.axes.iter().map(|a| a.kernel).collect();
        let fk: Vec<usize> = axes.iter().map(|a| a.taps.len()).collect();
        let (taps, ftaps) = (kernel.iter().product::<usize>(), fk.iter().product::<usize>());
        let mut wf = vec![T::ZERO; nm * p.out_channels * cg * ftaps];
        let mut j = vec![0; fk.len()];
        for (mi, mem) in members.iter().enumerate() {
            // Forward tap f (row-major over the phase kernel) ← transposed tap (flip applied).
            let src_tap: Vec<usize> = (0..ftaps)
                .map(|f| {
                    crate::geometry::unravel(f, &fk, &mut j);
                    (0..fk.len()).fold(0, |acc, a| {
                        let t = mem[a].taps[j[a]];
                        let t = if p.flip { kernel[a] - 1 - t } else { t };
                        acc * kernel[a] + t
                    })
                })
                .collect();
            for gi in 0..g {
                for c in 0..cg {
                    for kk in 0..kg {
                        let src = &w[((gi * cg + c) * kg + kk) * taps..][..taps];
                        let out = match &order {
                            Some(pos) => (gi * kg + kk) * nm + pos[mi],
                            None => (gi * nm + mi) * kg + kk,
                        };
                        let dst = &mut wf[(out * cg + c) * ftaps..][..ftaps];
                        for (d, &t) in dst.iter_mut().zip(&src_tap) {
                            *d = src[t];
                        }
                    }
                }
            }
        }
        let begin: Vec<usize> = axes.iter().map(|a| a.pad.0).collect();
        let end: Vec<usize> = axes.iter().map(|a| a.pad.1).collect();
        let desc = ConvDesc::new()
            .dilation(axes.iter().map(|a| a.dilation).collect::<Vec<_>>())
            .padding(Padding::asymmetric(&begin, &end))
            .groups(g)
            .layout(p.layout);
        let mut wshape = vec![nm * p.out_channels, cg];
        wshape.extend(&fk);
        let q = ConvProblem::new(&desc, &p.input_shape(), &wshape)?;
        debug_assert_eq!(q.output_spatial(), out_spatial);
        let plan = ConvPlan::new(&q, &wf, opts)?;
        Ok(Phase { members, plan, out_len, order })
    }

    /// `phase-split(…)` with the forward implementations its phases use, or `reference`.
    pub fn implementation(&self) -> String {
        let Some(phases) = &self.phases else { return "reference".into() };
        let mut names: Vec<String> = phases.iter().map(|ph| ph.plan.implementation()).collect();
        names.sort();
        names.dedup();
        format!("phase-split({})", names.join(", "))
    }

    /// The problem this plan computes.
    pub fn problem(&self) -> &ConvTransposeProblem {
        &self.problem
    }

    /// Worker threads the plan runs with.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Scratch elements [`ConvTransposePlan::execute`] needs: the largest phase's result plus
    /// its forward plan's workspace.
    pub fn workspace_len(&self) -> usize {
        crate::tensor::with_line_slack::<T>(self.phase_workspace())
    }

    /// The largest phase's result (rounded up to whole cache lines, so its forward plan's
    /// workspace starts on one too) plus that plan's workspace.
    fn phase_workspace(&self) -> usize {
        if self.hold_all {
            return self.phases.as_ref().map_or(0, |ps| held_workspace(ps));
        }
        self.phases.as_ref().map_or(0, |ps| {
            ps.iter().map(|ph| line_round::<T>(ph.out_len) + ph.plan.workspace_len()).max().unwrap_or(0)
        })
    }

    /// A workspace of the right size.
    pub fn workspace(&self) -> Result<Vec<T>> {
        alloc("workspace", &[self.workspace_len()])
    }

    /// Compute `y = conv_transpose(x) + bias`. `x` and `y` have the problem's input and output
    /// shapes.
    pub fn execute(&self, x: &[T], bias: Option<&[T]>, y: &mut [T], ws: &mut [T]) -> Result<()> {
        let p = &self.problem;
        check_len("input", x.len(), &p.input_shape())?;
        check_len("output", y.len(), &p.output_shape())?;
        check_bias(bias, p.out_channels)?;
        check_workspace(ws.len(), self.workspace_len())?;
        let Some(phases) = &self.phases else {
            crate::reference::conv_transpose(p, x, &self.weight, bias, y);
            return Ok(());
        };
        if self.fill {
            self.fill_bias(bias, y);
        }
        let ws = crate::tensor::line_aligned(ws, self.phase_workspace());
        if let (Some(ilv), [ph]) = (&self.ilv, &phases[..]) {
            let (held, scratch) = ws.split_at_mut(line_round::<T>(ph.out_len));
            let place = |tile, cols, pl: &mut _| self.ilv_place(ilv, ph, bias, tile, cols, pl);
            // Result channels `k..` of sample `n` fill output channels `k / members..` when `k`
            // starts an output channel's run of members.
            let (nm, plane) = (ph.members.len(), p.axes.iter().map(|a| a.output).product::<usize>());
            let cut =
                |n: usize, k: usize| k.is_multiple_of(nm).then(|| (n * p.out_channels + k / nm) * plane);
            ph.plan.execute_ilv(x, (&mut held[..ph.out_len], y), scratch, &place, &cut);
            return Ok(());
        }
        if self.hold_all {
            // Every group's result at once, so twins from different groups pair up.
            let mut bufs: Vec<&[T]> = Vec::with_capacity(phases.len());
            let inner = inner_workspace(phases);
            let (mut rest, scratch) = ws.split_at_mut(held_results(phases));
            for ph in phases {
                let (buf, more) = rest.split_at_mut(line_round::<T>(ph.out_len));
                let buf = &mut buf[..ph.out_len];
                ph.plan.execute(x, None, buf, &mut scratch[..inner])?;
                bufs.push(buf);
                rest = more;
            }
            let srcs: Vec<(&Phase<T>, &[T])> = phases.iter().zip(bufs).collect();
            self.scatter(&srcs, bias, y);
            return Ok(());
        }
        for ph in phases {
            let (buf, rest) = ws.split_at_mut(line_round::<T>(ph.out_len));
            let buf = &mut buf[..ph.out_len];
            ph.plan.execute(x, None, buf, rest)?;
            self.scatter(&[(ph, buf)], bias, y);
        }
        Ok(())
    }

    /// Where the tiles of result channels `k0 .. k0 + rows` of sample `n` at result positions
    /// `h .. h + lanes` go ([`Ilv`]), into `pl`.
    #[allow(clippy::too_many_arguments)]
    fn ilv_place(
        &self,
        ilv: &Ilv,
        ph: &Phase<T>,
        bias: Option<&[T]>,
        (n, k0, rows): (usize, usize, usize),
        (h, lanes): (usize, usize),
        pl: &mut crate::kernels::IlvPlace<T>,
    ) {
        let p = &self.problem;
        let rank = p.axes.len();
        let s = p.axes[rank - 1].stride;
        let nm = ph.members.len();
        (pl.s, pl.runs, pl.lanes, pl.d) = (s, rows / s, lanes, ilv.base as isize);
        pl.cols = p.axes[rank - 1].output;
        let i = if rank == 2 {
            let w = ph.members[0][1].full;
            (pl.width, pl.first, pl.rows, pl.step) = (w, h % w, p.axes[0].output, p.axes[0].stride);
            h / w
        } else {
            (pl.width, pl.first, pl.rows, pl.step) = (usize::MAX, h, 1, 0);
            0
        };
        // Run u: output channel k, outer phase o (members of one outer phase side by side).
        let (outer, mut k, mut o) = (nm / s, k0 / nm, k0 % nm / s);
        for u in 0..pl.runs {
            let (r0, skip0) = ilv.outer[o];
            let row = (pl.step * i + r0) as isize - (pl.step * skip0) as isize;
            pl.row[u] = row;
            pl.at[u] =
                ((n * p.out_channels + k) * pl.rows) as isize * pl.cols as isize + row * pl.cols as isize;
            pl.bias[u] = bias.map_or(T::ZERO, |b| b[k]);
            o += 1;
            if o == outer {
                (o, k) = (0, k + 1);
            }
        }
    }

    /// Every output the bias alone (zero without one), before the phases overwrite theirs.
    fn fill_bias(&self, bias: Option<&[T]>, y: &mut [T]) {
        let p = &self.problem;
        let k = p.out_channels;
        let outs: usize = p.axes.iter().map(|a| a.output).product();
        match (bias, p.layout) {
            (None, _) => y.fill(T::ZERO),
            (Some(b), crate::Layout::Nchw) => {
                for (i, plane) in y.chunks_exact_mut(outs).enumerate() {
                    plane.fill(b[i % k]);
                }
            }
            (Some(b), crate::Layout::Nhwc) => {
                for px in y.chunks_exact_mut(k) {
                    px.copy_from_slice(b);
                }
            }
        }
    }

    /// Write the outputs of the phase groups `srcs` (each with its forward result) into `y`,
    /// adding the bias. Channels-first, along a last axis of stride `s ≤ MAX_SET`, the members
    /// of phases 0 .. s − 1 there with the same outer phases ([`phase_sets`]), from one group
    /// or several, fill their output rows together through the interleave kernel; other
    /// members write every `s`-th output. Split by sample and channel planes (channels-first)
    /// or samples (channels-last) over the plan's threads.
    fn scatter(&self, srcs: &[(&Phase<T>, &[T])], bias: Option<&[T]>, y: &mut [T]) {
        let p = &self.problem;
        let k = p.out_channels;
        let kg = k / p.groups;
        let nchw = p.layout == crate::Layout::Nchw;
        let out_sp: Vec<usize> = p.axes.iter().map(|a| a.output).collect();
        let (_, _, ysp) = data_strides(p.layout, k, &out_sp);
        let rank = out_sp.len();
        let last = rank - 1;
        let members: Vec<Member<'_, T>> = srcs
            .iter()
            .flat_map(|&(ph, buf)| {
                let nm = ph.members.len();
                let full: Vec<usize> = ph.members[0].iter().map(|a| a.full).collect();
                let (bn, bc, bsp) = data_strides(p.layout, nm * k, &full);
                ph.members.iter().enumerate().map(move |(mi, axes)| Member {
                    buf,
                    axes,
                    nm,
                    mi,
                    bn,
                    bc,
                    bsp: bsp.clone(),
                    order: ph.order.as_deref(),
                })
            })
            .collect();
        let sets = nchw && (2..=MAX_SET).contains(&p.axes[last].stride);
        let jobs = phase_sets(&members, sets.then_some(p.axes[last].stride));
        let s = p.axes[last].stride;
        let units = p.batch * if nchw { k } else { 1 };
        let unit_len = y.len() / units;
        let threads = self.threads.min(units).max(1);
        let cut = |t: usize| units * t / threads * unit_len;
        crate::impls::split_join(y, &mut [], 0, threads, &cut, &|t, part, _| {
            let u0 = units * t / threads;
            let mut o = vec![0; rank];
            for (ui, plane) in part.chunks_exact_mut(unit_len).enumerate() {
                let u = u0 + ui;
                // Channels-first: one (n, k) plane; channels-last: one sample, all channels.
                let (n, kc) = if nchw { (u / k, u % k) } else { (u, 0) };
                // Where output row `row` of member `m` starts in `plane` and its result in its
                // buffer (the last axis's phase and skip included).
                let row_start = |row: usize, m: &Member<'_, T>, o: &mut [usize]| {
                    let mut rest = row;
                    for a in (0..last).rev() {
                        (o[a], rest) = (rest % m.axes[a].count, rest / m.axes[a].count);
                    }
                    let (mut yo, mut bo) =
                        (m.axes[last].r * ysp[last], n * m.bn + m.axes[last].skip * m.bsp[last]);
                    for a in 0..last {
                        yo += (o[a] * p.axes[a].stride + m.axes[a].r) * ysp[a];
                        bo += (o[a] + m.axes[a].skip) * m.bsp[a];
                    }
                    (yo, bo)
                };
                for set in &jobs {
                    let a = &members[set[0]];
                    let rows: usize = a.axes[..last].iter().map(|x| x.count).product();
                    if set.len() > 1 {
                        // Phases 0 .. s − 1 of the last axis: one output row from all of them.
                        let bv = bias.map_or(T::ZERO, |b| b[kc]);
                        let (mut counts, mut starts) = ([0; MAX_SET], [(0, 0); MAX_SET]);
                        for (i, &m) in set.iter().enumerate() {
                            counts[i] = members[m].axes[last].count;
                            // Where each member's rows start; 2-D and 1-D rows advance linearly.
                            starts[i] = row_start(0, &members[m], &mut o);
                        }
                        let counts = &counts[..set.len()];
                        let n = counts.iter().copied().min().unwrap_or(0);
                        let len =
                            counts.iter().enumerate().map(|(r, &c)| s * (c - 1) + r + 1).max().unwrap_or(0);
                        let linear = last <= 1;
                        let ystep = if last == 1 { p.axes[0].stride * ysp[0] } else { 0 };
                        let empty: &[T] = &[];
                        let mut srcs = [empty; MAX_SET];
                        for row in 0..rows {
                            let yo =
                                if linear { starts[0].0 + row * ystep } else { row_start(row, a, &mut o).0 };
                            for (i, (&m, &c)) in set.iter().zip(counts).enumerate() {
                                let b = &members[m];
                                let bo = if linear {
                                    starts[i].1 + if last == 1 { row * b.bsp[0] } else { 0 }
                                } else {
                                    row_start(row, b, &mut o).1
                                };
                                srcs[i] = &b.buf[bo + b.channel(kc, kg) * b.bc..][..c];
                            }
                            let srcs = &srcs[..set.len()];
                            let dst = &mut plane[yo..][..len];
                            (self.interleave)(srcs, bv, &mut dst[..s * n]);
                            for (r, src) in srcs.iter().enumerate() {
                                for j in n..src.len() {
                                    dst[s * j + r] = src[j] + bv;
                                }
                            }
                        }
                        continue;
                    }
                    for row in 0..rows {
                        let (yo, bo) = row_start(row, a, &mut o);
                        let (ystep, bstep) = (ysp[last] * p.axes[last].stride, a.bsp[last]);
                        let cnt = a.axes[last].count;
                        if nchw {
                            // Every `stride`-th element of the output row.
                            let bv = bias.map_or(T::ZERO, |b| b[kc]);
                            let src = &a.buf[bo + a.channel(kc, kg) * a.bc..][..cnt];
                            let dst = &mut plane[yo..][..(cnt - 1) * ystep + 1];
                            for (d, s) in dst.iter_mut().step_by(ystep).zip(src) {
                                *d = *s + bv;
                            }
                        } else {
                            let src = &a.buf[bo..][..(cnt - 1) * bstep + a.nm * k];
                            let dst = &mut plane[yo..][..(cnt - 1) * ystep + k];
                            for (d, s) in dst.chunks_mut(ystep).zip(src.chunks(bstep)) {
                                for gi in 0..p.groups {
                                    let (dg, sg) =
                                        (&mut d[gi * kg..][..kg], &s[a.channel(gi * kg, kg)..][..kg]);
                                    match bias {
                                        Some(b) => {
                                            for ((dv, &sv), &b) in dg.iter_mut().zip(sg).zip(&b[gi * kg..]) {
                                                *dv = sv + b;
                                            }
                                        }
                                        None => dg.copy_from_slice(sg),
                                    }
                                }
                            }
                        }
                    }
                }
            }
        });
    }
    /// Allocate the output and workspace and run once.
    pub fn run(&self, x: &[T], bias: Option<&[T]>) -> Result<Vec<T>> {
        let mut y = alloc("output", &self.problem.output_shape())?;
        let mut ws = self.workspace()?;
        self.execute(x, bias, &mut y, &mut ws)?;
        Ok(y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desc::ConvTransposeDesc;

    /// Group sizes (phases per shared convolution) of each axis, and each group's length;
    /// the last axis's phases sharing anyway when `share_last`.
    fn groups(
        desc: &ConvTransposeDesc,
        x: &[usize],
        w: &[usize],
        share_last: bool,
    ) -> Vec<Vec<(usize, usize)>> {
        let p = ConvTransposeProblem::new(desc, x, w).unwrap();
        let rank = p.axes.len();
        p.axes
            .iter()
            .enumerate()
            .map(|(a, ax)| {
                axis_groups(ax, share_last && a + 1 == rank).iter().map(|g| (g.len(), g[0].full)).collect()
            })
            .collect()
    }

    /// Whether a one-thread `f32` plan at the widest level sends its tiles straight into
    /// the output.
    fn interleaves(desc: &ConvTransposeDesc, x: &[usize], w: &[usize], threads: usize) -> bool {
        let p = ConvTransposeProblem::new(desc, x, w).unwrap();
        let wt = vec![1.0f32; p.weight_shape().iter().product()];
        ConvTransposePlan::new(&p, &wt, &PlanOptions::new().threads(threads)).unwrap().ilv.is_some()
    }

    #[test]
    fn tiles_go_straight_to_the_output_for_one_group_of_small_stride() {
        if !crate::isa::available().contains(&crate::isa::Isa::Avx512) {
            return;
        }
        // U-Net's 2×2 stride 2 on rows of 56, at any thread count.
        let d = ConvTransposeDesc::new().stride([2, 2]);
        assert!(interleaves(&d, &[1, 8, 6, 56], &[8, 4, 2, 2], 1));
        assert!(interleaves(&d, &[1, 8, 6, 56], &[8, 4, 2, 2], 2));
        // Rows of 20: a 16-column tile could cross two rows.
        assert!(!interleaves(&d, &[1, 8, 6, 20], &[8, 4, 2, 2], 1));
        // 1-D stride 4; stride 8 keeps the separate pass (`ILV_MAX_STRIDE`).
        let d = ConvTransposeDesc::new().stride([4]).padding(Padding::asymmetric(&[2], &[2]));
        assert!(interleaves(&d, &[1, 4, 100], &[4, 4, 8], 1));
        let d = ConvTransposeDesc::new().stride([8]).padding(Padding::asymmetric(&[4], &[4]));
        assert!(!interleaves(&d, &[1, 4, 100], &[4, 4, 16], 1));
        // Channels-last keeps the scatter.
        let d = ConvTransposeDesc::new().stride([2, 2]).layout(crate::Layout::Nhwc);
        assert!(!interleaves(&d, &[1, 6, 56, 8], &[8, 4, 2, 2], 1));
    }

    #[test]
    fn phases_share_a_convolution_only_when_it_wastes_little() {
        // DCGAN, 4×4 stride 2 padding 1 on 16×16: the two phases of an axis read windows one
        // input apart, so sharing costs 17 results for 16: they run apart (the last axis's
        // are interleaved from the held results), unless told to share.
        let d = ConvTransposeDesc::new().stride([2, 2]).padding(Padding::asymmetric(&[1, 1], &[1, 1]));
        assert_eq!(
            groups(&d, &[1, 3, 16, 16], &[3, 2, 4, 4], false),
            [[(1, 16), (1, 16)], [(1, 16), (1, 16)]]
        );
        assert_eq!(groups(&d, &[1, 3, 16, 16], &[3, 2, 4, 4], true), [vec![(1, 16), (1, 16)], vec![(2, 17)]]);
        // A kernel of 16 at stride 8 on 2000 inputs: eight phases, 2001 results for 2000.
        let d = ConvTransposeDesc::new().stride([8]).padding(Padding::asymmetric(&[4], &[4]));
        assert_eq!(groups(&d, &[1, 2, 2000], &[2, 2, 16], false), [vec![(8, 2001)]]);
        // 2×2 stride 2: every phase a 1×1 convolution over the same inputs, no waste.
        let d = ConvTransposeDesc::new().stride([2, 2]);
        assert_eq!(groups(&d, &[1, 2, 9, 9], &[2, 2, 2, 2], false), [vec![(2, 9)], vec![(2, 9)]]);
    }

    #[test]
    fn groups_are_held_together_only_for_twins_in_different_groups() {
        let holds = |desc: ConvTransposeDesc, x: &[usize], w: &[usize]| {
            let p = ConvTransposeProblem::new(&desc, x, w).unwrap();
            let wv = vec![1.0f32; w.iter().product()];
            ConvTransposePlan::new(&p, &wv, &PlanOptions::new().threads(1)).unwrap().hold_all
        };
        let pad = |b: &[usize]| Padding::asymmetric(b, b);
        // 3×3 stride 2: the last axis's phase 0 has one tap, phase 1 two.
        let d = ConvTransposeDesc::new().stride([2, 2]).padding(pad(&[1, 1])).output_padding([1, 1]);
        assert!(holds(d.clone(), &[1, 4, 9, 9], &[4, 4, 3, 3]));
        assert!(!holds(d.layout(crate::Layout::Nhwc), &[1, 9, 9, 4], &[4, 4, 3, 3]));
        // DCGAN: every phase apart, held; U-Net: twins share their group.
        let dcgan = || ConvTransposeDesc::new().stride([2, 2]).padding(pad(&[1, 1]));
        assert!(holds(dcgan(), &[1, 4, 9, 9], &[4, 4, 4, 4]));
        // A DCGAN layer whose four results exceed HOLD_BYTES (4 × 8 MiB): the last axis's
        // phases share one convolution (two groups, not four), interleaved in one pass.
        let p = ConvTransposeProblem::new(&dcgan(), &[32, 8, 16, 16], &[8, 256, 4, 4]).unwrap();
        let plan =
            ConvTransposePlan::new(&p, &vec![1.0f32; 8 * 256 * 16], &PlanOptions::new().threads(1)).unwrap();
        assert!(!plan.hold_all);
        assert_eq!(plan.phases.as_ref().map(Vec::len), Some(2));
        assert!(!holds(ConvTransposeDesc::new().stride([2, 2]), &[1, 4, 9, 9], &[4, 4, 2, 2]));
    }
}
