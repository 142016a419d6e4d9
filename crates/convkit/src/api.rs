//! The public operations, in two forms: over `ndarray` views (`ArrayView` in, `Array` out, any
//! dimension type) and, in [`raw`], over slices with explicit shapes. Both validate through
//! [`crate::shape`]; convolution runs through a [`crate::ConvPlan`], the rest through the
//! reference implementation.

use crate::desc::{ConvDesc, ConvTransposeDesc, PoolDesc, PoolKind};
use crate::error::{Error, Result};
use crate::scalar::Scalar;
use crate::tensor::Tensor;
use ndarray::{Array, Array1, Array3, ArrayView, ArrayView1, ArrayView3, Dimension, IxDyn};
use std::borrow::Cow;

/// The three gradients of a convolution.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvGrads<T, D: Dimension> {
    /// ∂L/∂input, shaped like the input.
    pub grad_input: Array<T, D>,
    /// ∂L/∂weight, shaped like the weight.
    pub grad_weight: Array<T, D>,
    /// ∂L/∂bias, one per output channel.
    pub grad_bias: Array1<T>,
}

fn contiguous<'a, T: Scalar, D: Dimension>(a: &'a ArrayView<'_, T, D>) -> Cow<'a, [T]> {
    match a.as_slice() {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(a.iter().copied().collect()),
    }
}

fn to_array<T, D: Dimension>(t: Tensor<T>) -> Result<Array<T, D>> {
    let shape = t.shape.clone();
    Array::from_shape_vec(IxDyn(&t.shape), t.data)
        .and_then(|a| a.into_dimensionality::<D>())
        .map_err(|e| Error::shape("output", &shape, e.to_string()))
}

/// Convolution (cross-correlation unless `desc.flip`) of `input` with `weight`, plus `bias`.
///
/// `input` is `(N, C, spatial…)` (or channels-last), `weight` is `(K, C/groups, kernel…)`.
///
/// ```
/// use convkit::{conv, ConvDesc};
/// use ndarray::array;
/// let x = array![[[1.0f32, 2.0, 0.0, -1.0, 3.0, 1.0]]];
/// let w = array![[[2.0f32, -1.0, 1.0]]];
/// let y = conv(x.view(), w.view(), None, &ConvDesc::new()).unwrap();
/// assert_eq!(y, array![[[0.0f32, 3.0, 4.0, -4.0]]]);
/// ```
pub fn conv<T: Scalar, D: Dimension>(
    input: ArrayView<T, D>,
    weight: ArrayView<T, D>,
    bias: Option<ArrayView1<T>>,
    desc: &ConvDesc,
) -> Result<Array<T, D>> {
    let b = bias.as_ref().map(|b| b.iter().copied().collect::<Vec<_>>());
    to_array(raw::conv(
        &contiguous(&input),
        input.shape(),
        &contiguous(&weight),
        weight.shape(),
        b.as_deref(),
        desc,
    )?)
}

/// Transposed convolution; `weight` is `(C, K/groups, kernel…)`.
///
/// ```
/// use convkit::{conv_transpose, ConvTransposeDesc};
/// use ndarray::array;
/// let x = array![[[1.0f64, 2.0]]];
/// let w = array![[[1.0f64, 10.0]]];
/// let y = conv_transpose(x.view(), w.view(), None, &ConvTransposeDesc::new().stride([2])).unwrap();
/// assert_eq!(y, array![[[1.0, 10.0, 2.0, 20.0]]]);
/// ```
pub fn conv_transpose<T: Scalar, D: Dimension>(
    input: ArrayView<T, D>,
    weight: ArrayView<T, D>,
    bias: Option<ArrayView1<T>>,
    desc: &ConvTransposeDesc,
) -> Result<Array<T, D>> {
    let b = bias.as_ref().map(|b| b.iter().copied().collect::<Vec<_>>());
    to_array(raw::conv_transpose(
        &contiguous(&input),
        input.shape(),
        &contiguous(&weight),
        weight.shape(),
        b.as_deref(),
        desc,
    )?)
}

/// Gradients of `conv(input, weight) + bias` with respect to input, weight and bias, given
/// `grad_output = ∂L/∂output`.
///
/// ```
/// use convkit::{conv_backward, ConvDesc};
/// use ndarray::array;
/// let x = array![[[1.0f64, 2.0, 3.0]]];
/// let w = array![[[1.0f64, -1.0]]];
/// let gy = array![[[1.0f64, 1.0]]];
/// let g = conv_backward(x.view(), w.view(), gy.view(), &ConvDesc::new()).unwrap();
/// assert_eq!(g.grad_input, array![[[1.0, 0.0, -1.0]]]);
/// assert_eq!(g.grad_weight, array![[[3.0, 5.0]]]);
/// assert_eq!(g.grad_bias, array![2.0]);
/// ```
pub fn conv_backward<T: Scalar, D: Dimension>(
    input: ArrayView<T, D>,
    weight: ArrayView<T, D>,
    grad_output: ArrayView<T, D>,
    desc: &ConvDesc,
) -> Result<ConvGrads<T, D>> {
    let (gx, gw, gb) = raw::conv_backward(
        &contiguous(&input),
        input.shape(),
        &contiguous(&weight),
        weight.shape(),
        &contiguous(&grad_output),
        grad_output.shape(),
        desc,
    )?;
    Ok(ConvGrads {
        grad_input: to_array(gx)?,
        grad_weight: to_array(gw)?,
        grad_bias: Array1::from_vec(gb.data),
    })
}

/// Max or average pooling (global kinds included).
///
/// ```
/// use convkit::{pool, PoolDesc, PoolKind};
/// use ndarray::array;
/// let x = array![[[1.0f32, 5.0, 2.0, 4.0, 3.0]]];
/// let y = pool(x.view(), &PoolDesc::new(PoolKind::Max).kernel([2]).ceil_mode(true)).unwrap();
/// assert_eq!(y, array![[[5.0f32, 4.0, 3.0]]]);
/// ```
pub fn pool<T: Scalar, D: Dimension>(input: ArrayView<T, D>, desc: &PoolDesc) -> Result<Array<T, D>> {
    to_array(raw::pool(&contiguous(&input), input.shape(), desc)?.0)
}

/// Max pooling that also returns, for every output, the flat index of the first maximum within
/// its `(n, c)` input plane (PyTorch's `return_indices`).
///
/// ```
/// use convkit::{max_pool_with_indices, PoolDesc, PoolKind};
/// use ndarray::array;
/// let x = array![[[1.0f32, 5.0, 2.0, 4.0]]];
/// let (y, i) = max_pool_with_indices(x.view(), &PoolDesc::new(PoolKind::Max).kernel([2])).unwrap();
/// assert_eq!(y, array![[[5.0f32, 4.0]]]);
/// assert_eq!(i, array![[[1i64, 3]]]);
/// ```
pub fn max_pool_with_indices<T: Scalar, D: Dimension>(
    input: ArrayView<T, D>,
    desc: &PoolDesc,
) -> Result<(Array<T, D>, Array<i64, D>)> {
    if !matches!(desc.kind, PoolKind::Max | PoolKind::GlobalMax) {
        return Err(Error::arg("indices", desc.kind, "indices exist for max pooling only"));
    }
    let (y, i) = raw::pool(&contiguous(&input), input.shape(), desc)?;
    let i = i.ok_or_else(|| Error::arg("indices", desc.kind, "not computed"))?;
    Ok((to_array(y)?, to_array(i)?))
}

/// Gradient of pooling with respect to its input, given `grad_output`.
///
/// ```
/// use convkit::{pool_backward, PoolDesc, PoolKind};
/// use ndarray::array;
/// let x = array![[[1.0f64, 5.0, 2.0, 4.0]]];
/// let gy = array![[[10.0f64, 20.0]]];
/// let gx = pool_backward(x.view(), gy.view(), &PoolDesc::new(PoolKind::Avg).kernel([2])).unwrap();
/// assert_eq!(gx, array![[[5.0, 5.0, 10.0, 10.0]]]);
/// ```
pub fn pool_backward<T: Scalar, D: Dimension>(
    input: ArrayView<T, D>,
    grad_output: ArrayView<T, D>,
    desc: &PoolDesc,
) -> Result<Array<T, D>> {
    to_array(raw::pool_backward(
        &contiguous(&input),
        input.shape(),
        &contiguous(&grad_output),
        grad_output.shape(),
        desc,
    )?)
}

/// The patch matrix `[N, C·∏kernel, ∏out]` of `input` for a window of size `kernel`
/// (PyTorch's `unfold`); `desc`'s stride, dilation, padding, padding mode and flip apply.
///
/// ```
/// use convkit::{im2col, ConvDesc};
/// use ndarray::array;
/// let x = array![[[1.0f32, 2.0, 3.0]]];
/// let cols = im2col(x.view(), &[2], &ConvDesc::new()).unwrap();
/// assert_eq!(cols, array![[[1.0f32, 2.0], [2.0, 3.0]]]);
/// ```
pub fn im2col<T: Scalar, D: Dimension>(
    input: ArrayView<T, D>,
    kernel: &[usize],
    desc: &ConvDesc,
) -> Result<Array3<T>> {
    to_array(raw::im2col(&contiguous(&input), input.shape(), kernel, desc)?)
}

/// Adjoint of [`im2col`] (PyTorch's `fold`): sums the columns back into an input of `input_shape`.
///
/// ```
/// use convkit::{col2im, ConvDesc};
/// use ndarray::array;
/// let cols = array![[[1.0f32, 2.0], [2.0, 3.0]]];
/// let x = col2im(cols.view(), &[1, 1, 3], &[2], &ConvDesc::new()).unwrap();
/// assert_eq!(x.into_raw_vec_and_offset().0, vec![1.0f32, 4.0, 3.0]);
/// ```
pub fn col2im<T: Scalar>(
    cols: ArrayView3<T>,
    input_shape: &[usize],
    kernel: &[usize],
    desc: &ConvDesc,
) -> Result<Array<T, IxDyn>> {
    to_array(raw::col2im(&contiguous(&cols), cols.shape(), input_shape, kernel, desc)?)
}

/// The same operations over plain slices with explicit shapes (C order), for callers without
/// ndarray. Results come back as [`Tensor`]s.
pub mod raw {
    use super::*;
    use crate::reference;
    use crate::shape::{ConvProblem, ConvTransposeProblem, PoolProblem};
    use crate::tensor::{alloc, check_bias, check_len};

    /// Convolution over slices. See [`crate::conv`].
    ///
    /// ```
    /// let y = convkit::raw::conv(&[1.0f32, 2.0, 3.0], &[1, 1, 3], &[1.0, 1.0], &[1, 1, 2], None,
    ///                            &convkit::ConvDesc::new()).unwrap();
    /// assert_eq!((y.shape, y.data), (vec![1, 1, 2], vec![3.0, 5.0]));
    /// ```
    pub fn conv<T: Scalar>(
        x: &[T],
        x_shape: &[usize],
        w: &[T],
        w_shape: &[usize],
        b: Option<&[T]>,
        desc: &ConvDesc,
    ) -> Result<Tensor<T>> {
        let p = ConvProblem::new(desc, x_shape, w_shape)?;
        check_len("input", x.len(), x_shape)?;
        check_len("weight", w.len(), w_shape)?;
        check_bias(b, p.out_channels)?;
        // The output first: a size that cannot be allocated is refused before any planning
        // (packing tables scale with the output's extent).
        let shape = p.output_shape();
        let mut y = alloc("output", &shape)?;
        let plan = crate::plan::ConvPlan::new(&p, w, &crate::plan::PlanOptions::new())?;
        let mut ws = plan.workspace()?;
        plan.execute(x, b, &mut y, &mut ws)?;
        Ok(Tensor { shape, data: y })
    }

    /// Transposed convolution over slices. See [`crate::conv_transpose`].
    ///
    /// ```
    /// let y = convkit::raw::conv_transpose(&[1.0f32, 2.0], &[1, 1, 2], &[1.0, 1.0], &[1, 1, 2], None,
    ///                                      &convkit::ConvTransposeDesc::new()).unwrap();
    /// assert_eq!(y.data, vec![1.0, 3.0, 2.0]);
    /// ```
    pub fn conv_transpose<T: Scalar>(
        x: &[T],
        x_shape: &[usize],
        w: &[T],
        w_shape: &[usize],
        b: Option<&[T]>,
        desc: &ConvTransposeDesc,
    ) -> Result<Tensor<T>> {
        let p = ConvTransposeProblem::new(desc, x_shape, w_shape)?;
        check_len("input", x.len(), x_shape)?;
        check_len("weight", w.len(), w_shape)?;
        check_bias(b, p.out_channels)?;
        // The output first: a size that cannot be allocated is refused before any planning.
        let shape = p.output_shape();
        let mut y = alloc("output", &shape)?;
        let plan = crate::plan::ConvTransposePlan::new(&p, w, &crate::plan::PlanOptions::new())?;
        let mut ws = plan.workspace()?;
        plan.execute(x, b, &mut y, &mut ws)?;
        Ok(Tensor { shape, data: y })
    }

    /// Convolution gradients over slices: `(grad_input, grad_weight, grad_bias)`. See [`crate::conv_backward`].
    ///
    /// ```
    /// let (gx, gw, gb) = convkit::raw::conv_backward(&[1.0f64, 2.0], &[1, 1, 2], &[3.0], &[1, 1, 1],
    ///     &[1.0, 1.0], &[1, 1, 2], &convkit::ConvDesc::new()).unwrap();
    /// assert_eq!((gx.data, gw.data, gb.data), (vec![3.0, 3.0], vec![3.0], vec![2.0]));
    /// ```
    pub fn conv_backward<T: Scalar>(
        x: &[T],
        x_shape: &[usize],
        w: &[T],
        w_shape: &[usize],
        gy: &[T],
        gy_shape: &[usize],
        desc: &ConvDesc,
    ) -> Result<(Tensor<T>, Tensor<T>, Tensor<T>)> {
        let p = ConvProblem::new(desc, x_shape, w_shape)?;
        check_len("input", x.len(), x_shape)?;
        check_len("weight", w.len(), w_shape)?;
        if gy_shape != p.output_shape().as_slice() {
            return Err(Error::shape(
                "grad_output",
                gy_shape,
                format!("expected the output shape {:?}", p.output_shape()),
            ));
        }
        check_len("grad_output", gy.len(), gy_shape)?;
        let mut gx = alloc("grad_input", x_shape)?;
        let mut gw = alloc("grad_weight", w_shape)?;
        let mut gb = alloc("grad_bias", &[p.out_channels])?;
        let gplan = crate::plan::GradInputPlan::new(&p, w, &crate::plan::PlanOptions::new())?;
        let mut ws = gplan.workspace()?;
        gplan.execute(gy, &mut gx, &mut ws)?;
        let wplan = crate::plan::GradWeightPlan::new(&p, &crate::plan::PlanOptions::new())?;
        let mut ws = wplan.workspace()?;
        wplan.execute(x, gy, &mut gw, &mut ws)?;
        crate::backward::grad_bias(&p, gy, &mut gb);
        Ok((
            Tensor { shape: x_shape.to_vec(), data: gx },
            Tensor { shape: w_shape.to_vec(), data: gw },
            Tensor { shape: vec![p.out_channels], data: gb },
        ))
    }

    /// Pooling over slices: the output, and for max kinds the indices of the maxima.
    ///
    /// ```
    /// use convkit::{PoolDesc, PoolKind};
    /// let (y, i) = convkit::raw::pool(&[1.0f32, 3.0, 2.0], &[1, 1, 3], &PoolDesc::new(PoolKind::GlobalMax)).unwrap();
    /// assert_eq!((y.data, i.unwrap().data), (vec![3.0], vec![1]));
    /// ```
    pub fn pool<T: Scalar>(
        x: &[T],
        x_shape: &[usize],
        desc: &PoolDesc,
    ) -> Result<(Tensor<T>, Option<Tensor<i64>>)> {
        let p = PoolProblem::new(desc, x_shape)?;
        check_len("input", x.len(), x_shape)?;
        let shape = p.output_shape();
        let mut y = alloc("output", &shape)?;
        let max = matches!(p.kind, PoolKind::Max);
        let mut idx = if max { Some(alloc::<i64>("indices", &shape)?) } else { None };
        let plan = crate::plan::PoolPlan::new(&p, &crate::plan::PlanOptions::new())?;
        let mut ws = plan.workspace()?;
        plan.execute(x, &mut y, idx.as_deref_mut(), &mut ws)?;
        Ok((Tensor { shape: shape.clone(), data: y }, idx.map(|data| Tensor { shape, data })))
    }

    /// Pooling gradient over slices. See [`crate::pool_backward`].
    ///
    /// ```
    /// use convkit::{PoolDesc, PoolKind};
    /// let gx = convkit::raw::pool_backward(&[1.0f32, 3.0], &[1, 1, 2], &[1.0], &[1, 1, 1],
    ///                                      &PoolDesc::new(PoolKind::GlobalMax)).unwrap();
    /// assert_eq!(gx.data, vec![0.0, 1.0]);
    /// ```
    pub fn pool_backward<T: Scalar>(
        x: &[T],
        x_shape: &[usize],
        gy: &[T],
        gy_shape: &[usize],
        desc: &PoolDesc,
    ) -> Result<Tensor<T>> {
        let p = PoolProblem::new(desc, x_shape)?;
        check_len("input", x.len(), x_shape)?;
        if gy_shape != p.output_shape().as_slice() {
            return Err(Error::shape(
                "grad_output",
                gy_shape,
                format!("expected the output shape {:?}", p.output_shape()),
            ));
        }
        check_len("grad_output", gy.len(), gy_shape)?;
        let mut gx = alloc("grad_input", x_shape)?;
        crate::plan::PoolPlan::new(&p, &crate::plan::PlanOptions::new())?.backward(x, gy, &mut gx)?;
        Ok(Tensor { shape: x_shape.to_vec(), data: gx })
    }

    fn patch_problem(x_shape: &[usize], kernel: &[usize], desc: &ConvDesc) -> Result<ConvProblem> {
        let c = match desc.layout {
            crate::Layout::Nchw => x_shape.get(1),
            crate::Layout::Nhwc => x_shape.last(),
        };
        let mut w_shape = vec![1, c.copied().unwrap_or(0)];
        w_shape.extend_from_slice(kernel);
        ConvProblem::new(&desc.clone().groups(1), x_shape, &w_shape)
    }

    /// [`crate::im2col`] over slices.
    ///
    /// ```
    /// let cols = convkit::raw::im2col(&[1.0f32, 2.0, 3.0], &[1, 1, 3], &[3], &convkit::ConvDesc::new()).unwrap();
    /// assert_eq!(cols.shape, vec![1, 3, 1]);
    /// ```
    pub fn im2col<T: Scalar>(
        x: &[T],
        x_shape: &[usize],
        kernel: &[usize],
        desc: &ConvDesc,
    ) -> Result<Tensor<T>> {
        let p = patch_problem(x_shape, kernel, desc)?;
        check_len("input", x.len(), x_shape)?;
        let rows = p.in_channels * kernel.iter().product::<usize>();
        let shape = vec![p.batch, rows, p.output_spatial().iter().product()];
        let mut cols = alloc("columns", &shape)?;
        reference::im2col(&p, x, &mut cols);
        Ok(Tensor { shape, data: cols })
    }

    /// [`crate::col2im`] over slices.
    ///
    /// ```
    /// let x = convkit::raw::col2im(&[1.0f32, 2.0, 3.0], &[1, 3, 1], &[1, 1, 3], &[3], &convkit::ConvDesc::new()).unwrap();
    /// assert_eq!(x.data, vec![1.0, 2.0, 3.0]);
    /// ```
    pub fn col2im<T: Scalar>(
        cols: &[T],
        cols_shape: &[usize],
        x_shape: &[usize],
        kernel: &[usize],
        desc: &ConvDesc,
    ) -> Result<Tensor<T>> {
        let p = patch_problem(x_shape, kernel, desc)?;
        let want =
            [p.batch, p.in_channels * kernel.iter().product::<usize>(), p.output_spatial().iter().product()];
        if cols_shape != want {
            return Err(Error::shape("columns", cols_shape, format!("expected {want:?}")));
        }
        check_len("columns", cols.len(), cols_shape)?;
        let mut x = alloc("input", x_shape)?;
        reference::col2im(&p, cols, &mut x);
        Ok(Tensor { shape: x_shape.to_vec(), data: x })
    }
}
