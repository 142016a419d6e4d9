//! Images as planar (channel-first) float buffers, and the conversions from and to the
//! interleaved samples image codecs use, without depending on any image crate.

use crate::error::{Error, Result};
use crate::scalar::Scalar;
use crate::shape::checked_numel;

/// A `channels × height × width` image, channel planes one after the other, rows top-down.
///
/// ```
/// use convkit::filter::Planar;
/// // Two RGB pixels, interleaved as codecs deliver them.
/// let p = Planar::<f32>::from_interleaved(&[10u8, 20, 30, 40, 50, 60], 3, 1, 2).unwrap();
/// assert_eq!(p.plane(1), &[20.0, 50.0]);
/// assert_eq!(p.to_interleaved(|v| v as u8), vec![10, 20, 30, 40, 50, 60]);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Planar<T> {
    /// Number of channels.
    pub channels: usize,
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
    /// `channels·height·width` values, plane by plane.
    pub data: Vec<T>,
}

impl<T: Scalar> Planar<T> {
    /// Wrap `data`, checking that it holds `channels·height·width` values.
    pub fn new(channels: usize, height: usize, width: usize, data: Vec<T>) -> Result<Self> {
        let shape = [channels, height, width];
        let n = checked_numel("image", &shape)?;
        if n != data.len() {
            return Err(Error::shape("image", &shape, format!("needs {n} values, got {}", data.len())));
        }
        Ok(Planar { channels, height, width, data })
    }

    /// A zero image.
    pub fn zeros(channels: usize, height: usize, width: usize) -> Result<Self> {
        let shape = [channels, height, width];
        let n = checked_numel("image", &shape)?;
        let mut data = Vec::new();
        data.try_reserve_exact(n).map_err(|_| Error::too_large("image", &shape))?;
        data.resize(n, T::ZERO);
        Ok(Planar { channels, height, width, data })
    }

    /// De-interleave row-major `(height, width, channels)` samples (`u8`, `u16`, `f32`…), keeping
    /// their values (an 8-bit 255 stays 255.0).
    pub fn from_interleaved<S: Copy + Into<f64>>(
        samples: &[S],
        channels: usize,
        height: usize,
        width: usize,
    ) -> Result<Self> {
        if channels == 0 {
            return Err(Error::shape("image", &[height, width, channels], "has no channels"));
        }
        let shape = [channels, height, width];
        let n = checked_numel("image", &shape)?;
        if samples.len() != n {
            return Err(Error::shape(
                "image",
                &[height, width, channels],
                format!("needs {n} samples, got {}", samples.len()),
            ));
        }
        // Plane by plane, appended (no zero fill of fresh memory first).
        let mut data = Vec::new();
        data.try_reserve_exact(n).map_err(|_| Error::too_large("image", &shape))?;
        for c in 0..channels {
            data.extend(samples[c..].iter().step_by(channels).map(|&v| T::from_f64(v.into())));
        }
        Ok(Planar { channels, height, width, data })
    }

    /// Interleave into `(height, width, channels)` samples, converting each value with `f`.
    pub fn to_interleaved<S>(&self, mut f: impl FnMut(f64) -> S) -> Vec<S> {
        let plane = self.height * self.width;
        let mut out = Vec::with_capacity(self.data.len());
        match self.channels {
            1 => out.extend(self.data.iter().map(|v| f(v.to_f64()))),
            3 => {
                let (r, g, b) = (self.plane(0), self.plane(1), self.plane(2));
                for ((r, g), b) in r.iter().zip(g).zip(b) {
                    out.push(f(r.to_f64()));
                    out.push(f(g.to_f64()));
                    out.push(f(b.to_f64()));
                }
            }
            _ => {
                for i in 0..plane {
                    for c in 0..self.channels {
                        out.push(f(self.data[c * plane + i].to_f64()));
                    }
                }
            }
        }
        out
    }

    /// Channel `c`'s plane, row-major. Panics if `c` is out of range, like slice indexing.
    pub fn plane(&self, c: usize) -> &[T] {
        let n = self.height * self.width;
        &self.data[c * n..][..n]
    }

    /// The first `count` channels as their own image (e.g. colour without alpha).
    pub fn take_channels(&self, first: usize, count: usize) -> Result<Planar<T>> {
        if first.checked_add(count).is_none_or(|e| e > self.channels) || count == 0 {
            return Err(Error::arg(
                "channels",
                format!("{first}..{}", first.saturating_add(count)),
                format!("the image has {} channels", self.channels),
            ));
        }
        let n = self.height * self.width;
        Ok(Planar {
            channels: count,
            height: self.height,
            width: self.width,
            data: self.data[first * n..(first + count) * n].to_vec(),
        })
    }

    /// Stack the channels of `other` (same height and width) after this image's.
    pub fn append_channels(mut self, other: &Planar<T>) -> Result<Planar<T>> {
        if (other.height, other.width) != (self.height, self.width) {
            return Err(Error::shape(
                "image",
                &[other.channels, other.height, other.width],
                format!("cannot stack onto a {}x{} image", self.height, self.width),
            ));
        }
        self.data.extend_from_slice(&other.data);
        self.channels += other.channels;
        Ok(self)
    }

    /// Luma of an RGB image with the ITU-R BT.601 weights OpenCV's `cvtColor` uses,
    /// `0.299·R + 0.587·G + 0.114·B`, kept in floating point (not rounded to integer levels).
    ///
    /// ```
    /// use convkit::filter::Planar;
    /// let rgb = Planar::<f64>::new(3, 1, 1, vec![100.0, 200.0, 50.0]).unwrap();
    /// assert!((rgb.luma().unwrap().data[0] - 153.0).abs() < 1e-9);
    /// ```
    pub fn luma(&self) -> Result<Planar<T>> {
        if self.channels != 3 {
            return Err(Error::arg("grey", self.channels, "luma needs exactly 3 (RGB) channels"));
        }
        let (r, g, b) = (self.plane(0), self.plane(1), self.plane(2));
        let data = (0..r.len())
            .map(|i| T::from_f64(0.299 * r[i].to_f64() + 0.587 * g[i].to_f64() + 0.114 * b[i].to_f64()))
            .collect();
        Planar::new(1, self.height, self.width, data)
    }

    /// Nearest-neighbour resampling: output `(y, x)` takes input `(rows[y], cols[x])`. Used to
    /// carry an alpha channel through a filter that changed the image size.
    pub fn pick(&self, rows: &[usize], cols: &[usize]) -> Result<Planar<T>> {
        if rows.iter().any(|&r| r >= self.height) || cols.iter().any(|&c| c >= self.width) {
            return Err(Error::arg(
                "pick",
                format!("{}x{}", rows.len(), cols.len()),
                "index out of the image",
            ));
        }
        let mut out = Planar::zeros(self.channels, rows.len(), cols.len())?;
        let mut i = 0;
        for c in 0..self.channels {
            let p = self.plane(c);
            for &r in rows {
                for &col in cols {
                    out.data[i] = p[r * self.width + col];
                    i += 1;
                }
            }
        }
        Ok(out)
    }
}

/// Interleaved `(height, width, channels)` samples (`u8`, `u16`, `f32`…) read as planar rows
/// by [`super::FilterPlan::run_into`], converted as [`Planar::from_interleaved`] does, without
/// making the planar copy.
///
/// ```
/// use convkit::filter::{Interleaved, RowSource};
/// let px = [10u8, 20, 30, 40, 50, 60];
/// let src = Interleaved::new(&px, 3, 1, 2).unwrap();
/// let mut row: Vec<f32> = Vec::new();
/// RowSource::<f32>::extend_row(&src, 1, 0, &mut row);
/// assert_eq!(row, vec![20.0, 50.0]);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Interleaved<'a, S> {
    samples: &'a [S],
    channels: usize,
    height: usize,
    width: usize,
}

impl<'a, S> Interleaved<'a, S> {
    /// Wrap `samples`, checking that they hold `height·width·channels` values.
    pub fn new(samples: &'a [S], channels: usize, height: usize, width: usize) -> Result<Self> {
        if channels == 0 {
            return Err(Error::shape("image", &[height, width, channels], "has no channels"));
        }
        let n = checked_numel("image", &[height, width, channels])?;
        if samples.len() != n {
            return Err(Error::shape(
                "image",
                &[height, width, channels],
                format!("needs {n} samples, got {}", samples.len()),
            ));
        }
        Ok(Interleaved { samples, channels, height, width })
    }
}

impl<S: Copy + Into<f64>, T: Scalar> super::RowSource<T> for Interleaved<'_, S> {
    fn size(&self) -> (usize, usize, usize) {
        (self.channels, self.height, self.width)
    }
    fn extend_row(&self, channel: usize, row: usize, dst: &mut Vec<T>) {
        let n = self.width * self.channels;
        let px = &self.samples[row * n..][..n];
        dst.extend(px.chunks_exact(self.channels).map(|p| T::from_f64(p[channel].into())));
    }
    fn write_row(&self, row: usize, dst: &mut [T], plane: usize) {
        let n = self.width * self.channels;
        let px = &self.samples[row * n..][..n];
        match self.channels {
            1 => deinterleave::<S, T, 1>(px, dst, plane, self.width),
            3 => deinterleave::<S, T, 3>(px, dst, plane, self.width),
            4 => deinterleave::<S, T, 4>(px, dst, plane, self.width),
            c => {
                for ch in 0..c {
                    let d = &mut dst[ch * plane..][..self.width];
                    for (d, p) in d.iter_mut().zip(px.chunks_exact(c)) {
                        *d = T::from_f64(p[ch].into());
                    }
                }
            }
        }
    }
}

/// One row of `C`-channel pixels `px` to `C` planar rows of `width` values, `plane` apart in
/// `dst`, in one pass (a fixed channel count, so the loop vectorises).
fn deinterleave<S: Copy + Into<f64>, T: Scalar, const C: usize>(
    px: &[S],
    dst: &mut [T],
    plane: usize,
    width: usize,
) {
    let mut rows: [&mut [T]; C] = std::array::from_fn(|_| &mut [][..]);
    let mut rest = dst;
    for (ch, r) in rows.iter_mut().enumerate() {
        let (head, tail) = std::mem::take(&mut rest).split_at_mut(if ch + 1 < C { plane } else { width });
        *r = &mut head[..width];
        rest = tail;
    }
    for (i, p) in px.chunks_exact(C).enumerate() {
        for (r, &v) in rows.iter_mut().zip(p) {
            r[i] = T::from_f64(v.into());
        }
    }
}
