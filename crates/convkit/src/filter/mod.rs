//! Image filtering on top of [`crate::conv`]: kernels by name or matrix ([`Filter::parse`]),
//! a [`FilterPlan`] that applies a stack of them to every channel of a planar image (a
//! depthwise convolution, `groups = channels`) in bounded memory, and [`RangeMap`] to turn the
//! responses back into pixels. Results match OpenCV's `filter2D` with the corresponding border
//! (`reflect` = `BORDER_REFLECT_101`, `symmetric` = `BORDER_REFLECT`, `replicate`,
//! `constant:V`/`zeros` = `BORDER_CONSTANT`, `circular` = `BORDER_WRAP`), except that an
//! even-sized kernel under `same` padding puts its extra row/column of padding at the end, as
//! everywhere in convkit (OpenCV's default anchor puts it at the start: use `same-lower`).
//!
//! ```
//! use convkit::filter::{Filter, FilterOptions, FilterPlan, Planar};
//! let img = Planar::<f32>::new(1, 3, 4, (0..12).map(|v| v as f32).collect()).unwrap();
//! let filters = [Filter::parse("sobel-x").unwrap()];
//! let plan = FilterPlan::new(&filters, &FilterOptions::default(), 1, 3, 4).unwrap();
//! let out = plan.run(&img, &mut |_, _| {}).unwrap();
//! // Reflect border (BORDER_REFLECT_101): a ramp of slope 1 has Sobel-x 8 inside, 0 at the sides.
//! assert_eq!(&out.data[4..8], &[0.0, 8.0, 8.0, 0.0]);
//! ```

mod kernel;
mod planar;
mod range;

pub use crate::kernels::responses::Level;
pub use kernel::{kernel_from_npy, named, parse_matrix, Filter, Kernel, MAX_NAMED_SIZE, NAMED_KERNELS};
pub use planar::{Interleaved, Planar};
pub use range::{quantize, RangeMap};

use crate::desc::{ConvDesc, PadMode, Padding};
use crate::error::{Error, Result};
use crate::geometry::pad_source;
use crate::isa;
use crate::kernels::responses::{best_response_kernels, Pair3};
use crate::plan::{ConvPlan, PlanOptions};
use crate::scalar::Scalar;
use crate::shape::{per_axis, ConvProblem};
use crate::tensor::Tensor;

/// How a stack of filters slides over the image. Stride applies once, to the last filter of
/// the stack (so `--stride 2` halves the image once however many filters are stacked);
/// dilation, padding and border apply to every filter.
///
/// ```
/// use convkit::filter::FilterOptions;
/// use convkit::{PadMode, Padding};
/// let o = FilterOptions::default().stride([2]).border(PadMode::Replicate);
/// assert_eq!((o.padding, o.border), (Padding::Same, PadMode::Replicate));
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct FilterOptions {
    /// Step between output pixels, one value or `[rows, cols]`.
    pub stride: Vec<usize>,
    /// Spacing between kernel taps, one value or `[rows, cols]`.
    pub dilation: Vec<usize>,
    /// Padding rule (default `same`: the output keeps the input size at stride 1).
    pub padding: Padding,
    /// What the padding reads (default `reflect`, OpenCV's default `BORDER_REFLECT_101`).
    pub border: PadMode,
    /// True convolution: reverse every kernel (filter2D correlates, as does the default).
    pub flip: bool,
    /// Output rows computed per tile; `None` picks a few rows, so that a tile stays in cache
    /// (about 192 Ki input values of new rows a tile, at least 4 rows).
    pub tile_rows: Option<usize>,
}

impl Default for FilterOptions {
    fn default() -> Self {
        FilterOptions {
            stride: vec![1],
            dilation: vec![1],
            padding: Padding::Same,
            border: PadMode::Reflect,
            flip: false,
            tile_rows: None,
        }
    }
}

impl FilterOptions {
    /// Set the stride (one value, or rows then columns).
    pub fn stride(mut self, v: impl AsRef<[usize]>) -> Self {
        self.stride = v.as_ref().to_vec();
        self
    }
    /// Set the dilation (one value, or rows then columns).
    pub fn dilation(mut self, v: impl AsRef<[usize]>) -> Self {
        self.dilation = v.as_ref().to_vec();
        self
    }
    /// Set the padding rule.
    pub fn padding(mut self, p: Padding) -> Self {
        self.padding = p;
        self
    }
    /// Set the border mode.
    pub fn border(mut self, b: PadMode) -> Self {
        self.border = b;
        self
    }
    /// Set true convolution.
    pub fn flip(mut self, f: bool) -> Self {
        self.flip = f;
        self
    }
    /// Set the tile height in output rows.
    pub fn tile_rows(mut self, rows: usize) -> Self {
        self.tile_rows = Some(rows);
        self
    }
}

/// One filter of a plan: the filter and its whole-image depthwise convolution problem.
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    /// The filter.
    pub filter: Filter,
    /// The convolution over the whole image, `(1, C, H, W)` by `(C, 1, kh, kw)` in `C` groups;
    /// it carries the resolved padding, output size, `params()` and receptive-field inputs.
    pub problem: ConvProblem,
    /// Whether it runs as two 1-D passes (a separable kernel whose border allows it).
    pub separable: bool,
}

impl Stage {
    /// Weights the stage actually uses per channel: `kh + kw` for a separable kernel,
    /// `kh·kw` otherwise, doubled for a gradient magnitude.
    pub fn params_per_channel(&self) -> u64 {
        let (r, c) = self.filter.size();
        let one = if self.separable { r + c } else { r * c } as u64;
        one * self.filter.kernels().len() as u64
    }
}

/// A stack of filters checked against an image size: every stage's padding, border limits and
/// output size resolved, so running it can only fail on memory.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterPlan {
    stages: Vec<Stage>,
    opts: FilterOptions,
    channels: usize,
}

impl FilterPlan {
    /// Check `filters` (applied in order) with `opts` against a `channels × height × width` image.
    pub fn new(
        filters: &[Filter],
        opts: &FilterOptions,
        channels: usize,
        height: usize,
        width: usize,
    ) -> Result<Self> {
        if filters.is_empty() {
            return Err(Error::arg("kernel", "''", "give at least one kernel"));
        }
        let stride = per_axis("stride", &opts.stride, 2, 1, 1)?;
        let dilation = per_axis("dilation", &opts.dilation, 2, 1, 1)?;
        if let Some(0) = opts.tile_rows {
            return Err(Error::arg("tile-rows", 0, "must be positive"));
        }
        let (mut h, mut w) = (height, width);
        let mut stages = Vec::with_capacity(filters.len());
        for (i, f) in filters.iter().enumerate() {
            if let Filter::Magnitude { x, y, .. } = f {
                if (x.rows(), x.cols()) != (y.rows(), y.cols()) {
                    return Err(Error::arg("kernel", f.name(), "magnitude kernels differ in size"));
                }
            }
            let (kh, kw) = f.size();
            let s = if i + 1 == filters.len() { stride.clone() } else { vec![1, 1] };
            let desc = ConvDesc::new()
                .stride(s)
                .dilation(&dilation)
                .padding(opts.padding.clone())
                .padding_mode(opts.border)
                .groups(channels)
                .flip(opts.flip);
            let problem = ConvProblem::new(&desc, &[1, channels, h, w], &[channels, 1, kh, kw])
                .map_err(|e| name_stage(e, f, filters.len()))?;
            let separable = match f {
                Filter::Linear(k) => k.factors().is_some_and(|(col, _)| {
                    // Constant padding of the intermediate is only exact if the column sums to 1.
                    !matches!(opts.border, PadMode::Constant(v) if v != 0.0)
                        || (col.iter().sum::<f64>() - 1.0).abs() < 1e-12
                }),
                Filter::Magnitude { .. } => false,
            };
            (h, w) = (problem.axes[0].output, problem.axes[1].output);
            stages.push(Stage { filter: f.clone(), problem, separable });
        }
        Ok(FilterPlan { stages, opts: opts.clone(), channels })
    }

    /// The stages, in order.
    pub fn stages(&self) -> &[Stage] {
        &self.stages
    }

    /// Output `(channels, height, width)`.
    pub fn output_size(&self) -> (usize, usize, usize) {
        let p = &self.stages[self.stages.len() - 1].problem;
        (self.channels, p.axes[0].output, p.axes[1].output)
    }

    /// For each output index along `axis` (0 rows, 1 columns), the input index at the centre of
    /// the window it was computed from (clamped into the image): where to take the alpha
    /// channel from when the filter changed the size.
    ///
    /// ```
    /// use convkit::filter::{Filter, FilterOptions, FilterPlan};
    /// let f = [Filter::parse("box:3").unwrap()];
    /// let plan = FilterPlan::new(&f, &FilterOptions::default().stride([2]), 1, 5, 5).unwrap();
    /// assert_eq!(plan.centres(1), vec![0, 2, 4]);
    /// ```
    pub fn centres(&self, axis: usize) -> Vec<usize> {
        let last = &self.stages[self.stages.len() - 1].problem.axes[axis];
        (0..last.output)
            .map(|o| {
                self.stages.iter().rev().fold(o, |i, st| {
                    let a = &st.problem.axes[axis];
                    let c = (i * a.stride + (a.effective_kernel() - 1) / 2) as isize - a.pad_begin as isize;
                    c.clamp(0, a.input as isize - 1) as usize
                })
            })
            .collect()
    }

    /// Apply the stack to `image`, one tile of output rows at a time; `progress(done, total)`
    /// is called after every tile with counts of output rows over all stages.
    pub fn run<T: Scalar>(&self, image: &Planar<T>, progress: &mut dyn FnMut(u64, u64)) -> Result<Planar<T>> {
        let (c, h, w) = self.output_size();
        let mut out = Planar::zeros(c, h, w)?;
        let mut sink = |r0, rows, tile: &[T]| {
            copy_tile(&mut out, r0, rows, tile);
            Ok(())
        };
        self.run_into(image, &mut sink, progress)?;
        Ok(out)
    }

    /// Apply the stack to the rows of `source` (a [`Planar`] image, or interleaved samples
    /// through [`Interleaved`]), handing the last stage's output to `sink` tile by tile, top to
    /// bottom, without ever holding the whole result: `sink(first_row, rows, tile)` gets
    /// `channels × rows × out_width` values, plane by plane. Intermediate stages of a stack
    /// are held whole. The values are those [`FilterPlan::run`] returns.
    pub fn run_into<T: Scalar>(
        &self,
        source: &dyn RowSource<T>,
        sink: &mut TileSink<'_, T>,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<()> {
        self.run_tiles(source, sink, None, progress)
    }

    /// The smallest and largest finite values (of `|v|` when `abs`) among the responses
    /// [`FilterPlan::run_into`] would hand out, or `(∞, −∞)` when there are none: what a
    /// min–max range needs before it can map the first tile. A gradient magnitude's extremes
    /// come from its two responses directly ([`magnitude_bounds`]), without the square roots
    /// or the magnitudes' tiles.
    ///
    /// [`magnitude_bounds`]: crate::kernels::responses::magnitude_bounds
    pub fn extremes(
        &self,
        source: &dyn RowSource<f32>,
        abs: bool,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<(f32, f32)> {
        let k = best_response_kernels::<f32>(isa::max_isa());
        // Both callbacks fold into the same pair.
        let ext = std::cell::Cell::new((f32::INFINITY, f32::NEG_INFINITY));
        let fold = |(l, h): (f32, f32)| {
            let (lo, hi) = ext.get();
            ext.set((if l < lo { l } else { lo }, if h > hi { h } else { hi }));
        };
        self.run_tiles(
            source,
            &mut |_, _, tile: &[f32]| {
                fold((k.bounds[usize::from(abs)])(tile));
                Ok(())
            },
            Some(&mut |b: (f32, f32)| fold(b)),
            progress,
        )?;
        Ok(ext.get())
    }

    /// [`FilterPlan::run_into`]; a last stage that is a gradient magnitude hands the
    /// extremes of its magnitudes (a tile's or a row's at a time) to `fused` instead, when
    /// given, and nothing to `sink`.
    fn run_tiles<T: Scalar>(
        &self,
        source: &dyn RowSource<T>,
        sink: &mut TileSink<'_, T>,
        mut fused: Option<&mut PairSink<'_, T>>,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<()> {
        let first = &self.stages[0].problem.axes;
        let (sc, sh, sw) = source.size();
        if (sc, sh, sw) != (self.channels, first[0].input, first[1].input) {
            return Err(Error::shape(
                "image",
                &[sc, sh, sw],
                format!("the plan is for {}x{}x{}", self.channels, first[0].input, first[1].input),
            ));
        }
        let total: u64 = self.stages.iter().map(|s| s.problem.axes[0].output as u64).sum();
        let mut done = 0u64;
        let mut cur: Option<Planar<T>> = None;
        let last = self.stages.len() - 1;
        for (i, st) in self.stages.iter().enumerate() {
            let src: &dyn RowSource<T> = match &cur {
                Some(p) => p,
                None => source,
            };
            let mut tick = |rows: usize| {
                done += rows as u64;
                progress(done, total);
            };
            if i == last {
                self.run_stage(st, src, sink, fused.take(), &mut tick)?;
            } else {
                let (ay, ax) = (&st.problem.axes[0], &st.problem.axes[1]);
                let mut next = Planar::zeros(self.channels, ay.output, ax.output)?;
                self.run_stage(
                    st,
                    src,
                    &mut |r0, rows, tile| {
                        copy_tile(&mut next, r0, rows, tile);
                        Ok(())
                    },
                    None,
                    &mut tick,
                )?;
                cur = Some(next);
            }
        }
        Ok(())
    }

    fn run_stage<T: Scalar>(
        &self,
        st: &Stage,
        src: &dyn RowSource<T>,
        sink: &mut TileSink<'_, T>,
        mut fused: Option<&mut PairSink<'_, T>>,
        tick: &mut dyn FnMut(usize),
    ) -> Result<()> {
        let (ay, ax) = (&st.problem.axes[0], &st.problem.axes[1]);
        let c = self.channels;
        let (_, src_height, src_width) = src.size();
        // A gradient magnitude of 3×3 kernels at stride and dilation 1 (Sobel, Scharr,
        // Prewitt as they are used) is computed row by row straight from the strip, both
        // responses and the magnitude (or its extremes) in one pass, without the two
        // responses' tiles ([`gradient3_magnitude`]); values as the convolutions give them
        // wherever their sums are exact (integer samples and weights).
        //
        // [`gradient3_magnitude`]: crate::kernels::responses::gradient3_magnitude
        let grad3: Option<Pair3<T>> = match &st.filter {
            Filter::Magnitude { x, y, .. }
                if st.filter.size() == (3, 3)
                    && [ay.stride, ax.stride, ay.dilation, ax.dilation] == [1; 4] =>
            {
                let taps = |k: &Kernel| {
                    let mut w = [T::ZERO; 9];
                    for (i, &v) in k.weights().iter().enumerate() {
                        // True convolution reverses both axes: tap i becomes tap 8 − i.
                        w[if self.opts.flip { 8 - i } else { i }] = T::from_f64(v);
                    }
                    w
                };
                Some([taps(x), taps(y)])
            }
            _ => None,
        };
        // Border columns go into the strip as it is filled when the border mirrors or repeats
        // the image (every pass of the tile then reads its input in place, with nothing staged,
        // and a separable column pass carries them to the row pass unchanged); a constant
        // border is left to the convolution, whose padded column pass would not give the
        // constant back, except for a gradient pair computed from the strip.
        let (pl, pr) = if grad3.is_none() && matches!(self.opts.border, PadMode::Zeros | PadMode::Constant(_))
        {
            (0, 0)
        } else {
            (ax.pad_begin, ax.pad_end)
        };
        let row_len = pl + src_width + pr;
        // Each border column and the column it copies (`None`: the constant).
        let border_cols: Vec<(usize, Option<usize>)> = (0..row_len)
            .filter(|&j| j < pl || j >= pl + src_width)
            .map(|j| (j, pad_source(j as isize - pl as isize, src_width, self.opts.border).map(|s| pl + s)))
            .collect();
        let tile =
            self.opts.tile_rows.unwrap_or_else(|| strip_rows(c, src_width, ay.stride)).clamp(1, ay.output);
        let weights: Vec<DepthwiseWeights<T>> =
            st.filter.kernels().iter().map(|k| DepthwiseWeights::new(k, c, st.separable)).collect();
        let pad_value = match self.opts.border {
            PadMode::Constant(v) => T::from_f64(v),
            _ => T::ZERO,
        };
        // Plans for the current tile height (every full tile shares one; the last may differ),
        // and buffers reused by every tile.
        let mut plans: Option<TilePlans<T>> = None;
        let mut strip: Vec<T> = Vec::new();
        let mut mags: Vec<T> = Vec::new();
        let rk = best_response_kernels::<T>(isa::max_isa());
        let (magnitude, magnitude_bounds) = (rk.magnitude, rk.magnitude_bounds);
        // The padded rows `held.0 .. held.0 + held.1` the strip holds from the previous tile:
        // the rows two tiles share are moved down, not read and converted again.
        let mut held: (isize, usize) = (0, 0);
        let mut r0 = 0;
        while r0 < ay.output {
            let r1 = (r0 + tile).min(ay.output);
            // Input rows (padded coordinates) the tile's windows read; rows outside the image
            // are filled here by the border rule, columns are left to the convolution.
            let p0 = (r0 * ay.stride) as isize - ay.pad_begin as isize;
            let n_in = (r1 - 1 - r0) * ay.stride + ay.effective_kernel();
            let plane = n_in * row_len;
            let len = c * plane;
            if strip.len() < len {
                strip
                    .try_reserve_exact(len - strip.len())
                    .map_err(|_| Error::too_large("tile", &[c, n_in, row_len]))?;
                strip.resize(len, T::ZERO);
            }
            // Rows already held move to their new places, channel by channel and row by row
            // (each moves down or stays, as tiles only advance and the layout only shrinks,
            // so no move overwrites a row still to be moved); the others are read from the
            // source, every channel of a row at once.
            let (h0, hn) = if n_in <= held.1 && p0 >= held.0 { held } else { (0, 0) };
            let reuse = |p: isize| (p >= h0 && p < h0 + hn as isize).then(|| (p - h0) as usize);
            for ch in 0..c {
                for q in 0..n_in {
                    if let Some(old) = reuse(p0 + q as isize) {
                        let (from, to) = ((ch * hn + old) * row_len, (ch * n_in + q) * row_len);
                        if from != to {
                            strip.copy_within(from..from + row_len, to);
                        }
                    }
                }
            }
            for q in 0..n_in {
                let p = p0 + q as isize;
                if reuse(p).is_some() {
                    continue;
                }
                let at = q * row_len;
                match pad_source(p, src_height, self.opts.border) {
                    Some(r) => {
                        src.write_row(r, &mut strip[at + pl..len], plane);
                        for ch in 0..c {
                            let row = &mut strip[ch * plane + at..][..row_len];
                            for &(j, from) in &border_cols {
                                row[j] = from.map_or(pad_value, |f| row[f]);
                            }
                        }
                    }
                    None => {
                        for ch in 0..c {
                            strip[ch * plane + at..][..row_len].fill(pad_value);
                        }
                    }
                }
            }
            held = (p0, n_in);
            let strip = &strip[..len];
            let rows = r1 - r0;
            let n = c * rows * ax.output;
            if let Some(w) = &grad3 {
                // Output row `r` of a channel reads the strip's rows `r .. r + 3`.
                let ow = ax.output;
                let window = |ch: usize, r: usize| {
                    let at = ch * plane + r * row_len;
                    let row = |q: usize| &strip[at + q * row_len..][..row_len];
                    [row(0), row(1), row(2)]
                };
                match fused.as_mut() {
                    Some(f) => {
                        for ch in 0..c {
                            for r in 0..rows {
                                f((rk.gradient3_bounds)(window(ch, r), w, ow));
                            }
                        }
                    }
                    None => {
                        mags.resize(n, T::ZERO);
                        for (i, out) in mags.chunks_exact_mut(ow).enumerate() {
                            (rk.gradient3)(window(i / rows, i % rows), w, out);
                        }
                        sink(r0, rows, &mags)?;
                    }
                }
                tick(rows);
                r0 = r1;
                continue;
            }
            if plans.as_ref().is_none_or(|tp| tp.n_in != n_in) {
                plans = Some(TilePlans::new(self, st, &weights, n_in, row_len, pl > 0 || pr > 0)?);
            }
            let tp = plans.as_mut().ok_or_else(|| Error::arg("kernel", "''", "internal: no tile plan"))?;
            tp.run(strip)?;
            let out: &[T] = match (&st.filter, tp.convs.as_slice()) {
                (Filter::Magnitude { .. }, [gx, gy]) if fused.is_some() => {
                    if let Some(f) = fused.as_mut() {
                        f((magnitude_bounds)(&gx.out[..n], &gy.out[..n]));
                    }
                    tick(rows);
                    r0 = r1;
                    continue;
                }
                (Filter::Magnitude { .. }, [gx, gy]) => {
                    mags.resize(n, T::ZERO);
                    (magnitude)(&gx.out[..n], &gy.out[..n], &mut mags);
                    &mags
                }
                (Filter::Linear(_), [y]) => &y.out[..n],
                _ => {
                    return Err(Error::arg("kernel", st.filter.name(), "internal: wrong number of responses"))
                }
            };
            sink(r0, rows, out)?;
            tick(rows);
            r0 = r1;
        }
        Ok(())
    }
}

/// Where the extremes of a gradient magnitude's values go instead of its tiles: `(lo, hi)` of
/// some of them at a time (as [`magnitude_bounds`] gives them).
///
/// [`magnitude_bounds`]: crate::kernels::responses::magnitude_bounds
type PairSink<'a, T> = dyn FnMut((T, T)) + 'a;

/// Where [`FilterPlan::run_into`] hands each tile: `(first_row, rows, values)`.
pub type TileSink<'a, T> = dyn FnMut(usize, usize, &[T]) -> Result<()> + 'a;

/// Rows of an image a [`FilterPlan`] reads: a [`Planar`] image, or [`Interleaved`] samples
/// converted as they are read.
pub trait RowSource<T> {
    /// `(channels, height, width)`.
    fn size(&self) -> (usize, usize, usize);
    /// Append row `row` of channel `channel` (`width` values) to `dst`.
    fn extend_row(&self, channel: usize, row: usize, dst: &mut Vec<T>);
    /// Write row `row` of every channel into `dst`, channel `ch`'s `width` values at
    /// `dst[ch * plane..]`: the values of [`RowSource::extend_row`], all channels in one
    /// pass over the row where the source can do that (interleaved samples).
    fn write_row(&self, row: usize, dst: &mut [T], plane: usize) {
        let (c, _, w) = self.size();
        let mut buf = Vec::with_capacity(w);
        for ch in 0..c {
            buf.clear();
            self.extend_row(ch, row, &mut buf);
            dst[ch * plane..][..w].swap_with_slice(&mut buf);
        }
    }
}

impl<T: Scalar> RowSource<T> for Planar<T> {
    fn size(&self) -> (usize, usize, usize) {
        (self.channels, self.height, self.width)
    }
    fn extend_row(&self, channel: usize, row: usize, dst: &mut Vec<T>) {
        dst.extend_from_slice(&self.plane(channel)[row * self.width..][..self.width]);
    }
    fn write_row(&self, row: usize, dst: &mut [T], plane: usize) {
        for ch in 0..self.channels {
            dst[ch * plane..][..self.width]
                .copy_from_slice(&self.plane(ch)[row * self.width..][..self.width]);
        }
    }
}

/// Values of the new input rows of a tile, across channels (768 KiB of `f32`): tiles of a
/// few rows of a wide image, so that a tile's strip, the column pass's output and the
/// responses are still in cache (L2, else L3) when the next step reads them. Measured on an
/// 8000×8000 RGB image (Zen 4, 1 MiB L2): 8 rows a tile beat 4, and 30 or more lost (the
/// strip then leaves the caches between the conversion and the passes).
const STRIP_VALUES: usize = 192 << 10;

/// Output rows per tile when [`FilterOptions::tile_rows`] is not set: as many as keep the
/// new input rows of a strip near [`STRIP_VALUES`], at least 4 (the rows shared with the
/// previous tile are moved down, not read again, and should stay a modest part of a strip).
fn strip_rows(channels: usize, width: usize, stride: usize) -> usize {
    let per_row = channels.saturating_mul(width).saturating_mul(stride).max(1);
    (STRIP_VALUES / per_row).max(4)
}

/// Copy a `channels × rows × width` tile into rows `r0..r0 + rows` of `out`.
fn copy_tile<T: Scalar>(out: &mut Planar<T>, r0: usize, rows: usize, tile: &[T]) {
    let (h, w) = (out.height, out.width);
    let n = rows * w;
    for (ch, part) in tile.chunks_exact(n).enumerate() {
        out.data[(ch * h + r0) * w..][..n].copy_from_slice(part);
    }
}

/// One kernel's convolution of a tile: a dense plan, or a column pass (into `mid`) then a row
/// pass; the response lands in `out`.
struct TileConv<T: Scalar> {
    first: ConvPlan<T>,
    second: Option<ConvPlan<T>>,
    mid: Vec<T>,
    out: Vec<T>,
}

/// The plans of every kernel of a stage for tiles of `n_in` input rows (made once, reused by
/// every tile of that height), their outputs and one shared workspace.
struct TilePlans<T: Scalar> {
    n_in: usize,
    convs: Vec<TileConv<T>>,
    ws: Vec<T>,
}

impl<T: Scalar> TilePlans<T> {
    fn new(
        fp: &FilterPlan,
        st: &Stage,
        weights: &[DepthwiseWeights<T>],
        n_in: usize,
        width: usize,
        padded: bool,
    ) -> Result<Self> {
        let (ay, ax) = (&st.problem.axes[0], &st.problem.axes[1]);
        let c = fp.channels;
        let (kh, kw) = st.filter.size();
        let x_shape = [1, c, n_in, width];
        // Columns already padded in the strip (`padded`) are read as they are.
        let cols = match padded {
            true => Padding::Valid,
            false => Padding::Explicit(vec![0, ax.pad_begin, 0, ax.pad_end]),
        };
        let desc = |stride: [usize; 2], dilation: [usize; 2], padding: Padding| {
            ConvDesc::new()
                .stride(stride)
                .dilation(dilation)
                .padding(padding)
                .padding_mode(fp.opts.border)
                .groups(c)
                .flip(fp.opts.flip)
        };
        let (s, d) = ([ay.stride, ax.stride], [ay.dilation, ax.dilation]);
        let opts = PlanOptions::new();
        let plan = |d: &ConvDesc, x: &[usize], w: &[T], ws: &[usize]| -> Result<(ConvPlan<T>, Vec<T>)> {
            let p = ConvProblem::new(d, x, ws)?;
            let plan = ConvPlan::new(&p, w, &opts)?;
            let y = crate::tensor::alloc("tile", &p.output_shape())?;
            Ok((plan, y))
        };
        let mut convs = Vec::with_capacity(weights.len());
        let mut ws_len = 0;
        for DepthwiseWeights { dense, factors } in weights {
            let conv = match factors {
                Some((col, row)) => {
                    let (first, mid) =
                        plan(&desc([s[0], 1], [d[0], 1], Padding::Valid), &x_shape, col, &[c, 1, kh, 1])?;
                    let mid_shape = first.problem().output_shape();
                    let (second, out) =
                        plan(&desc([1, s[1]], [1, d[1]], cols.clone()), &mid_shape, row, &[c, 1, 1, kw])?;
                    ws_len = ws_len.max(first.workspace_len()).max(second.workspace_len());
                    TileConv { first, second: Some(second), mid, out }
                }
                None => {
                    let (first, out) = plan(&desc(s, d, cols.clone()), &x_shape, dense, &[c, 1, kh, kw])?;
                    ws_len = ws_len.max(first.workspace_len());
                    TileConv { first, second: None, mid: Vec::new(), out }
                }
            };
            convs.push(conv);
        }
        let ws = crate::tensor::alloc("workspace", &[ws_len])?;
        Ok(TilePlans { n_in, convs, ws })
    }

    /// Every kernel's response to `strip` (`(1, C, n_in, W)`), each into its `out`.
    fn run(&mut self, strip: &[T]) -> Result<()> {
        for TileConv { first, second, mid, out } in &mut self.convs {
            match second {
                Some(second) => {
                    first.execute(strip, None, mid, &mut self.ws)?;
                    second.execute(mid, None, out, &mut self.ws)?;
                }
                None => first.execute(strip, None, out, &mut self.ws)?,
            }
        }
        Ok(())
    }
}

/// A kernel repeated once per channel: the `(C, 1, kh, kw)` weight of a depthwise convolution,
/// and for a separable kernel its `(C, 1, kh, 1)` column and `(C, 1, 1, kw)` row.
struct DepthwiseWeights<T> {
    dense: Vec<T>,
    factors: Option<(Vec<T>, Vec<T>)>,
}

impl<T: Scalar> DepthwiseWeights<T> {
    fn new(k: &Kernel, channels: usize, separable: bool) -> Self {
        let rep =
            |w: &[f64]| (0..channels).flat_map(|_| w.iter().map(|&v| T::from_f64(v))).collect::<Vec<T>>();
        let factors = if separable { k.factors().map(|(col, row)| (rep(col), rep(row))) } else { None };
        DepthwiseWeights { dense: rep(k.weights()), factors }
    }
}

/// Errors from checking one stage of a stack name the kernel when there are several.
fn name_stage(e: Error, f: &Filter, stack: usize) -> Error {
    match e {
        Error::InvalidArgument { arg, value, reason } if stack > 1 => {
            Error::InvalidArgument { arg, value, reason: format!("{reason} (at kernel {})", f.name()) }
        }
        e => e,
    }
}

/// The weight tensor `(K, 1, S, S')` of a filter bank: every kernel zero-padded to the largest
/// size with [`Kernel::embed`], so that one convolution of a 1-channel image gives one feature
/// map per kernel.
///
/// ```
/// use convkit::filter::{bank, Filter};
/// let k = |s: &str| match Filter::parse(s).unwrap() { Filter::Linear(k) => k, _ => unreachable!() };
/// let w = bank(&[k("sobel-x"), k("gaussian:1:5")]).unwrap();
/// assert_eq!(w.shape, vec![2, 1, 5, 5]);
/// ```
pub fn bank(kernels: &[Kernel]) -> Result<Tensor<f64>> {
    let rows =
        kernels.iter().map(Kernel::rows).max().ok_or_else(|| Error::arg("kernel", "''", "empty bank"))?;
    let cols = kernels.iter().map(Kernel::cols).max().unwrap_or(1);
    let mut data = Vec::new();
    for k in kernels {
        data.extend_from_slice(k.embed(rows, cols)?.weights());
    }
    Tensor::new(vec![kernels.len(), 1, rows, cols], data)
}
