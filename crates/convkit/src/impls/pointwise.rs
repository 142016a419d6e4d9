//! `pointwise`: 1×1 (pointwise) convolutions as the transposed GEMM
//! `Yᵀ[P, K] = Xᵀ[P, C] · Wᵀ[C, K]`, output positions as the tile's `mr` rows and output
//! channels as its `nr` columns.
//!
//! That orientation suits two cases `gemm-tiled` (channels as rows, positions as columns)
//! handles poorly: channels-last data, where `Yᵀ` *is* the output and `Xᵀ` the input, so
//! tiles go straight into it; and channels-first layers with few positions (the 7×7 maps at
//! the end of ResNet-50), where a last partial panel of positions would waste most of a tile
//! (49 positions are 3 panels of 16 columns and one of 1; as rows of 16-row tiles, 4 blocks of
//! 12 or 13, each run by a kernel of exactly its rows).
//!
//! Per sample: the input is cut into blocks of at most `mr` positions, as even as possible.
//! Where the level has a tile reading `A` rows at any stride (`KernelSet::gemm_strided`) and
//! the input is channels-first at stride 1, the tiles read the blocks in place (one row per
//! channel); on `resnet50_1x1_7_reduce` (Zen 4, AVX-512) that ran 108.6 → 111.2 GFLOP/s at
//! 1 thread and 212.3 → 220.3 at 2, where each worker had packed the whole input. Otherwise
//! the blocks are packed (`[block][c][mr]`): once, shared by the workers, or by each worker
//! into its own copy when the copies are small (`PRIVATE_PACK_BYTES`). Then, for each reduction block of 256
//! channels, each worker sweeps its panels of `nr` output channels (packed at plan time), in
//! chunks of `PANEL_CHUNK` per tile call, over every position block. Channels-last output
//! with a whole number of `nr`-channel panels takes the tiles directly, and the bias after the
//! last block; otherwise tiles accumulate in a `P × K` buffer copied (channels-first:
//! transposed) into place at the end, with the bias. Workers split the output channels by
//! panels; every output is summed in the same order whatever the split.

use super::grid::{split_cols, Part};
use super::{split_join, ConvImpl};
use crate::kernels::{KernelSet, TileDst};
use crate::scalar::Scalar;
use crate::shape::{data_strides, ConvProblem};
use crate::Layout;

/// Channels-first problems with this many positions or more, or a whole number of `nr`-position
/// panels, stay with `gemm-tiled` (whose panels of positions are then all or nearly all full,
/// and which writes channels-first rows directly).
pub const MAX_FIRST_POSITIONS: usize = 128;

/// Reduction block: a `KC × nr` weight panel slice (L1) and `KC × mr` input block.
const KC: usize = 256;

/// Weight panels one tile call covers (the kernel's `panels`): a position block is loaded
/// once per chunk and the call's checks are paid once for all of them. On
/// `resnet50_1x1_7_reduce` (Zen 4, AVX-512), one tile call per panel ran at 102 GFLOP/s
/// (1 thread) and 160 (2 threads); chunks of 4 at 107 and 178; of 8 at 108 and 176.
const PANEL_CHUNK: usize = 4;

/// Several workers each pack the whole input when their copies together take at most this
/// many bytes (every worker reads every position block). A shared copy packed in parts makes
/// each worker write lines the other read on the previous call, and read the other's part
/// from its cache: on `resnet50_1x1_7_reduce` (2 threads, Zen 4) packing took 10.5 % of the
/// time shared and 6.6 % private (each worker packing all of it), and the whole layer ran at
/// 177 GFLOP/s shared against 189 private.
const PRIVATE_PACK_BYTES: usize = 4 << 20;

/// The packed input's slice of one reduction block is swept once per weight panel while it
/// is at most this large (half of L2).
const A_SLICE_BYTES: usize = 256 << 10;

/// `Ok` for ungrouped 1×1 convolutions without padding (any stride), channels-last, or
/// channels-first with fewer than [`MAX_FIRST_POSITIONS`] output positions per sample, not a
/// multiple of the tile width `nr`.
pub fn supports(p: &ConvProblem, nr: usize) -> Result<(), String> {
    if p.axes.iter().any(|a| a.kernel != 1 || a.pad_begin != 0 || a.pad_end != 0) {
        return Err("needs a 1×1 kernel without padding".into());
    }
    if p.groups != 1 {
        return Err(format!("{} groups, needs 1", p.groups));
    }
    let outs: usize = p.output_spatial().iter().product();
    if p.layout == Layout::Nchw && (outs >= MAX_FIRST_POSITIONS || outs.is_multiple_of(nr)) {
        return Err(format!("channels-first with {outs} positions (gemm-tiled's panels fit)"));
    }
    if outs == 0 {
        return Err("no output positions".into());
    }
    Ok(())
}

/// Pointwise convolution for one problem, weights packed as `nr`-channel panels.
pub struct Pointwise<T> {
    p: ConvProblem,
    ks: KernelSet<T>,
    /// The kernel set's tile rows (positions) and columns (output channels).
    mr: usize,
    nr: usize,
    c: usize,
    k: usize,
    outs: usize,
    /// Blocks of `mr` positions.
    pblocks: usize,
    /// Panels of `nr` output channels.
    kpanels: usize,
    /// `Wᵀ`: `[reduction block][k panel][kc][nr]`, columns past `K` zero.
    packed: Vec<T>,
    /// Input offset (within a sample, channel 0) of output position `q`.
    pos: Vec<usize>,
    /// Input strides: per sample, per channel.
    xs: (usize, usize),
    /// Output position `q` reads input offset `q` of each channel (channels-first, stride 1).
    contiguous: bool,
    /// The tiles read the input in place (`KernelSet::gemm_strided`, rows a channel apart)
    /// instead of a packed copy: contiguous input, every block at least 4 positions (the
    /// fewest rows a tile computes).
    in_place: bool,
}

impl<T: Scalar> Pointwise<T> {
    /// Pack `w` (`(K, C, 1…)`) for kernel set `ks`.
    pub fn new(p: &ConvProblem, w: &[T], ks: KernelSet<T>) -> Self {
        let (mr, nr) = (ks.geometry.mr, ks.geometry.nr);
        let (c, k) = (p.in_channels, p.out_channels);
        let kpanels = k.div_ceil(nr);
        let mut packed = vec![T::ZERO; kpanels * nr * c];
        for r0 in (0..c).step_by(KC) {
            let kc = KC.min(c - r0);
            for q in 0..kpanels {
                let block = &mut packed[(r0 * kpanels + q * kc) * nr..][..kc * nr];
                for j in 0..nr.min(k - q * nr) {
                    for r in 0..kc {
                        block[r * nr + j] = w[(q * nr + j) * c + r0 + r];
                    }
                }
            }
        }
        let out_sp = p.output_spatial();
        let outs: usize = out_sp.iter().product();
        let (xn, xc, xsp) = data_strides(p.layout, c, &p.input_spatial());
        let rank = out_sp.len();
        let mut o = vec![0; rank];
        let pos: Vec<usize> = (0..outs)
            .map(|q| {
                crate::geometry::unravel(q, &out_sp, &mut o);
                (0..rank).map(|a| o[a] * p.axes[a].stride * xsp[a]).sum()
            })
            .collect();
        let contiguous = p.layout == Layout::Nchw && pos.iter().enumerate().all(|(q, &o)| o == q);
        let pblocks = outs.div_ceil(mr);
        let in_place = contiguous && ks.gemm_strided.is_some() && outs / pblocks >= 4;
        Pointwise {
            contiguous,
            in_place,
            ks,
            mr,
            nr,
            c,
            k,
            outs,
            pblocks,
            kpanels,
            packed,
            pos,
            xs: (xn, xc),
            p: p.clone(),
        }
    }

    /// First position and position count of block `pb`: the positions in `pblocks` blocks as
    /// even as possible (49 positions in 16-row tiles: 12 + 12 + 12 + 13 rather than
    /// 16 + 16 + 16 + 1, whose last tile would cost as much as 4 rows: the kernel sets run
    /// tiles of the live rows, and a tile's cost is about one FMA per row and step).
    fn block(&self, pb: usize) -> (usize, usize) {
        let q0 = pb * self.outs / self.pblocks;
        (q0, (pb + 1) * self.outs / self.pblocks - q0)
    }

    /// Packed input of one sample: `[position block][c][self.mr]` (none when read in place).
    fn a_len(&self) -> usize {
        if self.in_place {
            0
        } else {
            self.pblocks * self.c * self.mr
        }
    }

    /// Tiles go straight into the output: channels-last with whole panels of channels.
    fn direct(&self) -> bool {
        self.p.layout == Layout::Nhwc && self.k.is_multiple_of(self.nr)
    }

    /// Otherwise the `P × kpanels·self.nr` accumulation buffer, copied out at the end.
    fn acc_len(&self) -> usize {
        if self.direct() {
            0
        } else {
            self.outs * self.kpanels * self.nr
        }
    }

    /// Whether each of `threads` workers packs the whole input into its own copy: with
    /// several workers, when the copies together stay within [`PRIVATE_PACK_BYTES`].
    fn private_pack(&self, threads: usize) -> bool {
        threads > 1
            && !self.in_place
            && self.a_len() * threads * std::mem::size_of::<T>() <= PRIVATE_PACK_BYTES
    }

    /// Per worker: spare tile rows (a chunk of panels wide), then its packed input if packing is private.
    fn per_thread(&self, threads: usize) -> usize {
        self.mr * self.nr * PANEL_CHUNK + if self.private_pack(threads) { self.a_len() } else { 0 }
    }

    /// Pack position blocks `bs` of sample `x` into `a` (those blocks only).
    fn pack(&self, x: &[T], bs: (usize, usize), a: &mut [T]) {
        let (_, xc) = self.xs;
        for (bi, blk) in a.chunks_exact_mut(self.c * self.mr).enumerate() {
            let (q0, live) = self.block(bs.0 + bi);
            if self.contiguous {
                // Channels-first at stride 1: a block's positions are one run of each channel.
                // Blocks are copied `mr` wide where the source has that many values (a fixed
                // size, a vector move rather than a `memcpy` call of 12 or 13 values; the
                // lanes past `live` then hold the next block's positions, rows no tile call
                // of this block stores), else `live` values and zeros.
                for (ci, dst) in blk.chunks_exact_mut(self.mr).enumerate() {
                    let src = &x[ci * xc + q0..];
                    if !copy_fixed(dst, src) {
                        dst[..live].copy_from_slice(&src[..live]);
                        dst[live..].fill(T::ZERO);
                    }
                }
                continue;
            }
            for (ci, dst) in blk.chunks_exact_mut(self.mr).enumerate() {
                for (i, d) in dst.iter_mut().enumerate() {
                    *d = if i < live { x[ci * xc + self.pos[q0 + i]] } else { T::ZERO };
                }
            }
        }
    }

    /// Panels `qs` of output channels for every position block into `part` (rows:
    /// positions; columns: this worker's output channels); `a` is the packed input, or the
    /// sample's input where it is read in place.
    fn compute(
        &self,
        a: &[T],
        bias: Option<&[T]>,
        qs: (usize, usize),
        part: &mut Part<'_, T>,
        spare: &mut [T],
    ) {
        let c = self.c;
        let last_block = c.div_ceil(KC) - 1;
        for (bi, r0) in (0..c).step_by(KC).enumerate() {
            let kc = KC.min(c - r0);
            // Each chunk of weight panels (L2) sweeps every position block while the blocks'
            // slice of the packed input stays in L2; past that, each position block (L1)
            // sweeps the worker's chunks of weight panels instead, so the input streams through
            // once. One tile call covers a chunk of panels ([`PANEL_CHUNK`]).
            let mut tiles = |pb: usize, q: usize| {
                let np = PANEL_CHUNK.min(qs.1 - q);
                let (q0, live) = self.block(pb);
                let rows = part.tile(self.mr, (q0, live), ((q - qs.0) * self.nr, np * self.nr), spare);
                let mut dst = TileDst { rows, accumulate: bi > 0, bias: None, live };
                let b = &self.packed[(r0 * self.kpanels + q * kc) * self.nr..][..np * kc * self.nr];
                match self.ks.gemm_strided.filter(|_| self.in_place) {
                    Some(gemm) => {
                        gemm(kc, &a[r0 * self.xs.1 + q0..], self.xs.1, b, (np, kc * self.nr), &mut dst)
                    }
                    None => {
                        let ab = &a[(pb * c + r0) * self.mr..][..kc * self.mr];
                        (self.ks.gemm)(kc, ab, b, (np, kc * self.nr), &mut dst)
                    }
                }
            };
            if self.pblocks * kc * self.mr * std::mem::size_of::<T>() <= A_SLICE_BYTES {
                for q in (qs.0..qs.1).step_by(PANEL_CHUNK) {
                    for pb in 0..self.pblocks {
                        tiles(pb, q);
                    }
                }
            } else {
                for pb in 0..self.pblocks {
                    for q in (qs.0..qs.1).step_by(PANEL_CHUNK) {
                        tiles(pb, q);
                    }
                }
            }
            // Output written directly takes the bias after the last block; the accumulation
            // buffer gets it when copied out.
            if bi == last_block && self.direct() {
                if let Some(bias) = bias {
                    for q in 0..self.outs {
                        for (v, &bv) in part.row(q).iter_mut().zip(&bias[qs.0 * self.nr..]) {
                            *v = *v + bv;
                        }
                    }
                }
            }
        }
    }
}

impl<T: Scalar> ConvImpl<T> for Pointwise<T> {
    fn name(&self) -> String {
        self.ks.name("pointwise")
    }

    fn workspace(&self, threads: usize) -> usize {
        let threads = threads.max(1);
        let shared = if self.private_pack(threads) { 0 } else { self.a_len() };
        shared + self.acc_len() + self.per_thread(threads) * threads
    }

    fn execute(&self, x: &[T], bias: Option<&[T]>, y: &mut [T], ws: &mut [T], threads: usize) {
        let threads = threads.max(1);
        let private = self.private_pack(threads);
        let (a, rest) = ws.split_at_mut(if private { 0 } else { self.a_len() });
        let (acc, spare) = rest.split_at_mut(self.acc_len());
        let (xn, _) = self.xs;
        let (k, outs, kp) = (self.k, self.outs, self.kpanels);
        let block = self.c * self.mr;
        for n in 0..self.p.batch {
            let xs = &x[n * xn..];
            if !private && !self.in_place {
                let cut = |t: usize| (self.pblocks * t / threads) * block;
                split_join(a, &mut [], 0, threads, &cut, &|t, part, _| {
                    self.pack(xs, (self.pblocks * t / threads, self.pblocks * (t + 1) / threads), part)
                });
            }
            let a = if self.in_place { xs } else { &*a };
            let yn = &mut y[n * k * outs..][..k * outs];
            // The output itself (`P × K`), or the buffer (`P × kpanels·self.nr`) copied out below.
            let direct = self.direct();
            let (mat, cols) = if direct { (&mut *yn, k) } else { (&mut *acc, kp * self.nr) };
            let cut = |t: usize| (kp * t / threads * self.nr).min(cols);
            let per = self.per_thread(threads);
            split_cols(mat, (outs, cols), spare, per, threads, &cut, &|t, mut part, spare| {
                let (spare, own) = spare.split_at_mut(self.mr * self.nr * PANEL_CHUNK);
                let a = if private {
                    self.pack(xs, (0, self.pblocks), own);
                    &*own
                } else {
                    a
                };
                self.compute(a, bias, (kp * t / threads, kp * (t + 1) / threads), &mut part, spare)
            });
            let acc = &*acc;
            let at = |q: usize, kk: usize| acc[q * kp * self.nr + kk] + bias.map_or(T::ZERO, |b| b[kk]);
            if self.p.layout == Layout::Nchw {
                // Transposed: output channel rows, split by channels.
                let cut = |t: usize| (k * t / threads) * outs;
                let ld = kp * self.nr;
                split_join(yn, &mut [], 0, threads, &cut, &|t, rows, _| {
                    let k0 = k * t / threads;
                    // Blocks of 16 channel rows: each position reads 16 adjacent values of
                    // `acc` and writes one column of the block.
                    for (bi, blk) in rows.chunks_mut(16 * outs).enumerate() {
                        let kb = k0 + bi * 16;
                        for q in 0..outs {
                            let src = &acc[q * ld + kb..][..blk.len() / outs];
                            for (i, &v) in src.iter().enumerate() {
                                blk[i * outs + q] = v;
                            }
                        }
                        if let Some(b) = bias {
                            for (i, row) in blk.chunks_exact_mut(outs).enumerate() {
                                let bv = b[kb + i];
                                row.iter_mut().for_each(|v| *v = *v + bv);
                            }
                        }
                    }
                });
            } else if !direct {
                for (q, row) in yn.chunks_exact_mut(k).enumerate() {
                    for (kk, v) in row.iter_mut().enumerate() {
                        *v = at(q, kk);
                    }
                }
            }
        }
    }
}

/// `dst.copy_from_slice(&src[..dst.len()])` for the tile heights of the kernel sets (16 and
/// 6) as fixed-size copies; false (nothing copied) for other lengths or a short `src`.
#[inline(always)]
fn copy_fixed<T: Copy>(dst: &mut [T], src: &[T]) -> bool {
    fn fixed<T: Copy, const N: usize>(dst: &mut [T], src: &[T]) -> bool {
        match (<&mut [T; N]>::try_from(dst), src.get(..N).and_then(|s| <&[T; N]>::try_from(s).ok())) {
            (Ok(d), Some(s)) => {
                *d = *s;
                true
            }
            _ => false,
        }
    }
    match dst.len() {
        16 => fixed::<T, 16>(dst, src),
        6 => fixed::<T, 6>(dst, src),
        _ => false,
    }
}
