//! `convkit._convkit`: the compiled half of the `convkit` Python package. Arrays come in as NumPy
//! arrays (float32 or float64; C-contiguous ones are read in place, others copied once into C
//! order); options come in as the command line's strings (the pure-Python wrapper turns ints and
//! sequences into them) and are parsed by the same functions as the CLI, so values and error
//! messages are the CLI's. Every computation runs with the GIL released; errors become
//! `ValueError` (`MemoryError` when an output cannot be allocated), and a panic becomes a
//! `RuntimeError`, never a Rust traceback.

use convkit::filter::{Filter, FilterOptions, FilterPlan, Kernel, Planar, RangeMap};
use convkit::plan::{GradInputPlan, GradWeightPlan};
use convkit::{
    parse_list, ConvDesc, ConvPlan, ConvProblem, ConvTransposeDesc, ConvTransposePlan, ConvTransposeProblem,
    Layout, PadMode, Padding, PlanOptions, PoolDesc, PoolKind, Scalar, Tensor,
};
use convkit_cli::explain::{self, ExplainArgs};
use convkit_cli::shape::{self, ShapeArgs};
use numpy::ndarray::{ArrayD, IxDyn};
use numpy::{
    Element, IntoPyArray, PyArrayDescrMethods, PyArrayDyn, PyArrayMethods, PyUntypedArray,
    PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyMemoryError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyString;
use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Mutex;

type Res<T> = Result<T, Fail>;

/// An error on its way to Python: the CLI's one-line message and the exception class.
enum Fail {
    Value(String),
    Memory(String),
    Internal(String),
}

impl From<convkit::Error> for Fail {
    fn from(e: convkit::Error) -> Self {
        match e {
            convkit::Error::TooLarge { .. } => Fail::Memory(e.to_string()),
            _ => Fail::Value(e.to_string()),
        }
    }
}

impl From<String> for Fail {
    fn from(s: String) -> Self {
        Fail::Value(s)
    }
}

impl From<Fail> for PyErr {
    fn from(f: Fail) -> PyErr {
        match f {
            Fail::Value(m) => PyValueError::new_err(m),
            Fail::Memory(m) => PyMemoryError::new_err(m),
            Fail::Internal(m) => PyRuntimeError::new_err(m),
        }
    }
}

/// Run `f` without the GIL; a panic inside becomes an error instead of crossing into Python.
fn compute<R: Send>(py: Python<'_>, f: impl FnOnce() -> Res<R> + Send) -> Res<R> {
    py.allow_threads(|| match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let what = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".into());
            Err(Fail::Internal(format!("convkit internal error: {what}")))
        }
    })
}

thread_local! {
    /// Address of the data the last call computed from, for each array argument it read: lets
    /// the tests check that contiguous inputs are read in place.
    static LAST_READ: Cell<[usize; 3]> = const { Cell::new([0; 3]) };
}

fn record_read(slot: usize, ptr: *const u8) {
    LAST_READ.with(|c| {
        let mut v = c.get();
        v[slot] = ptr as usize;
        c.set(v);
    });
}

/// The data pointers the last call on this thread computed from (input, weight, grad_output).
#[pyfunction]
fn _last_read_addresses() -> (usize, usize, usize) {
    let v = LAST_READ.with(|c| c.get());
    (v[0], v[1], v[2])
}

/// The element types convkit computes in.
#[derive(Clone, Copy, PartialEq, Debug)]
enum DType {
    F32,
    F64,
}

trait Elem: Scalar + Element + Send + Sync + Into<f64> {
    const DTYPE: DType;
    /// A value of the other float type, converted as the CLI converts a .npy (f64 → f32 rounds).
    fn from_f64_exact(v: f64) -> Self;
}
impl Elem for f32 {
    const DTYPE: DType = DType::F32;
    fn from_f64_exact(v: f64) -> Self {
        v as f32
    }
}
impl Elem for f64 {
    const DTYPE: DType = DType::F64;
    fn from_f64_exact(v: f64) -> Self {
        v
    }
}

/// Describe a Python object for a message: its dtype for arrays, its type name otherwise.
fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "object".into())
}

/// The dtype of an array argument, or the error naming the argument.
fn dtype_of(arg: &str, obj: &Bound<'_, PyAny>) -> Res<DType> {
    let Ok(a) = obj.downcast::<PyUntypedArray>() else {
        return Err(Fail::Value(format!(
            "invalid {arg} {}: expected a NumPy array of float32 or float64",
            type_name(obj)
        )));
    };
    let dt = a.dtype();
    let py = obj.py();
    if dt.is_equiv_to(&numpy::dtype::<f32>(py)) {
        Ok(DType::F32)
    } else if dt.is_equiv_to(&numpy::dtype::<f64>(py)) {
        Ok(DType::F64)
    } else {
        let name = dt.to_string();
        Err(Fail::Value(format!("invalid {arg} dtype {name}: expected float32 or float64")))
    }
}

/// An array argument as C-order data of type `T`: borrowed in place when it is C-contiguous
/// and already `T`, otherwise copied once (converted like the CLI converts a .npy of the other
/// float type: f64 → f32 rounds).
struct Data<'py, T: Elem> {
    shape: Vec<usize>,
    /// Keeps the borrow of the NumPy array alive while `data` points into it.
    _guard: Option<numpy::PyReadonlyArrayDyn<'py, T>>,
    ptr: *const T,
    owned: Option<Vec<T>>,
    len: usize,
}

impl<T: Elem> Data<'_, T> {
    fn slice(&self) -> &[T] {
        match &self.owned {
            Some(v) => v,
            // SAFETY: `ptr`/`len` come from `as_slice()` of the readonly borrow held in `_guard`,
            // which lives as long as `self`.
            None => unsafe { std::slice::from_raw_parts(self.ptr, self.len) },
        }
    }
}

/// A convolution's weight (positional argument 1) and optional bias (one value per output
/// channel), read as `T`.
#[allow(clippy::type_complexity)]
fn read_weight_bias<'py, T: Elem>(
    w: &Bound<'py, PyAny>,
    b: Option<&Bound<'py, PyAny>>,
) -> Res<(Data<'py, T>, Option<Data<'py, T>>)> {
    let wd = read_array::<T>("weight", Some(1), w)?;
    let bd = b.map(|b| read_array::<T>("bias", None, b)).transpose()?;
    if let Some(b) = &bd {
        check_bias_rank(&b.shape)?;
    }
    Ok((wd, bd))
}

fn read_array<'py, T: Elem>(arg: &str, slot: Option<usize>, obj: &Bound<'py, PyAny>) -> Res<Data<'py, T>> {
    let dt = dtype_of(arg, obj)?;
    let want = T::DTYPE;
    let shape: Vec<usize> = obj.downcast::<PyUntypedArray>().map_err(|e| e.to_string())?.shape().to_vec();
    let d = if dt == want {
        let a = obj.downcast::<PyArrayDyn<T>>().map_err(|e| e.to_string())?;
        let ro = a.try_readonly().map_err(|e| Fail::Value(format!("invalid {arg}: {e}")))?;
        // `as_slice` also accepts Fortran order, whose memory is not the C order convkit reads.
        match ro.as_slice().ok().filter(|_| ro.is_c_contiguous()) {
            Some(s) => {
                let (ptr, len) = (s.as_ptr(), s.len());
                Data { shape, ptr, len, owned: None, _guard: Some(ro) }
            }
            None => {
                let v: Vec<T> = ro.as_array().iter().copied().collect();
                Data { shape, ptr: std::ptr::null(), len: v.len(), owned: Some(v), _guard: None }
            }
        }
    } else {
        let v: Vec<T> = match dt {
            DType::F32 => {
                let a = obj.downcast::<PyArrayDyn<f32>>().map_err(|e| e.to_string())?;
                let ro = a.try_readonly().map_err(|e| Fail::Value(format!("invalid {arg}: {e}")))?;
                ro.as_array().iter().map(|&x| T::from_f64_exact(x as f64)).collect()
            }
            DType::F64 => {
                let a = obj.downcast::<PyArrayDyn<f64>>().map_err(|e| e.to_string())?;
                let ro = a.try_readonly().map_err(|e| Fail::Value(format!("invalid {arg}: {e}")))?;
                ro.as_array().iter().map(|&x| T::from_f64_exact(x)).collect()
            }
        };
        Data { shape, ptr: std::ptr::null(), len: v.len(), owned: Some(v), _guard: None }
    };
    if let Some(slot) = slot {
        record_read(slot, d.slice().as_ptr() as *const u8);
    }
    Ok(d)
}

fn to_numpy<'py, T: Element>(py: Python<'py>, t: Tensor<T>) -> Res<Bound<'py, PyAny>> {
    let a = ArrayD::from_shape_vec(IxDyn(&t.shape), t.data).map_err(|e| Fail::Internal(e.to_string()))?;
    Ok(a.into_pyarray(py).into_any())
}

fn e(err: convkit::Error) -> Fail {
    err.into()
}

fn parse_groups(s: &str) -> Res<usize> {
    s.trim()
        .parse::<usize>()
        .ok()
        .filter(|&g| g > 0)
        .ok_or_else(|| Fail::Value(format!("invalid groups {s}: expected a positive integer")))
}

fn conv_desc(
    stride: &str,
    padding: &str,
    dilation: &str,
    groups: &str,
    padding_mode: &str,
    flip: bool,
    layout: &str,
) -> Res<ConvDesc> {
    Ok(ConvDesc::new()
        .stride(parse_list("stride", stride).map_err(e)?)
        .dilation(parse_list("dilation", dilation).map_err(e)?)
        .padding(padding.parse::<Padding>().map_err(e)?)
        .padding_mode(padding_mode.parse::<PadMode>().map_err(e)?)
        .groups(parse_groups(groups)?)
        .flip(flip)
        .layout(layout.parse::<Layout>().map_err(e)?))
}

fn plan_options(threads: Option<i64>, exact: bool) -> Res<PlanOptions> {
    let mut o = PlanOptions::new().exact(exact);
    if let Some(n) = threads {
        if n < 1 {
            return Err(Fail::Value(format!("invalid threads {n}: must be at least 1")));
        }
        o = o.threads(n as usize);
    }
    Ok(o)
}

fn check_bias_rank(shape: &[usize]) -> Res<()> {
    if shape.len() != 1 {
        return Err(Fail::Value(format!(
            "invalid bias shape {shape:?}: expected a 1-D array, one value per output channel"
        )));
    }
    Ok(())
}

/// The input's dtype decides the computation's (as the CLI: other float inputs are converted).
macro_rules! by_dtype {
    ($x:expr, $f:ident($($a:expr),*)) => {
        match dtype_of("input", $x)? {
            DType::F32 => $f::<f32>($($a),*),
            DType::F64 => $f::<f64>($($a),*),
        }
    };
}

#[pyfunction]
#[pyo3(signature = (x, w, bias, stride, padding, dilation, groups, padding_mode, flip, layout, threads, exact))]
#[allow(clippy::too_many_arguments)]
fn conv<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    w: &Bound<'py, PyAny>,
    bias: Option<&Bound<'py, PyAny>>,
    stride: &str,
    padding: &str,
    dilation: &str,
    groups: &str,
    padding_mode: &str,
    flip: bool,
    layout: &str,
    threads: Option<i64>,
    exact: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let desc = conv_desc(stride, padding, dilation, groups, padding_mode, flip, layout)?;
    let opts = plan_options(threads, exact)?;
    fn go<'py, T: Elem>(
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        w: &Bound<'py, PyAny>,
        b: Option<&Bound<'py, PyAny>>,
        desc: &ConvDesc,
        opts: &PlanOptions,
    ) -> Res<Bound<'py, PyAny>> {
        let xd = read_array::<T>("input", Some(0), x)?;
        let (wd, bd) = read_weight_bias::<T>(w, b)?;
        let p = ConvProblem::new(desc, &xd.shape, &wd.shape)?;
        let (xs, ws, bs) = (xd.slice(), wd.slice(), bd.as_ref().map(|b| b.slice()));
        let y = compute(py, || {
            let plan = ConvPlan::new(&p, ws, opts)?;
            Ok(Tensor { shape: p.output_shape(), data: plan.run(xs, bs)? })
        })?;
        to_numpy(py, y)
    }
    Ok(by_dtype!(x, go(py, x, w, bias, &desc, &opts))?)
}

#[pyfunction]
#[pyo3(signature = (x, w, bias, stride, padding, output_padding, dilation, groups, flip, layout, threads))]
#[allow(clippy::too_many_arguments)]
fn conv_transpose<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    w: &Bound<'py, PyAny>,
    bias: Option<&Bound<'py, PyAny>>,
    stride: &str,
    padding: &str,
    output_padding: &str,
    dilation: &str,
    groups: &str,
    flip: bool,
    layout: &str,
    threads: Option<i64>,
) -> PyResult<Bound<'py, PyAny>> {
    let d = conv_desc(stride, padding, dilation, groups, "zeros", flip, layout)?;
    let desc = ConvTransposeDesc::new()
        .stride(d.stride)
        .dilation(d.dilation)
        .padding(d.padding)
        .output_padding(parse_list("output-padding", output_padding).map_err(e)?)
        .groups(d.groups)
        .flip(d.flip)
        .layout(d.layout);
    let opts = plan_options(threads, false)?;
    fn go<'py, T: Elem>(
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        w: &Bound<'py, PyAny>,
        b: Option<&Bound<'py, PyAny>>,
        desc: &ConvTransposeDesc,
        opts: &PlanOptions,
    ) -> Res<Bound<'py, PyAny>> {
        let xd = read_array::<T>("input", Some(0), x)?;
        let (wd, bd) = read_weight_bias::<T>(w, b)?;
        let p = ConvTransposeProblem::new(desc, &xd.shape, &wd.shape)?;
        let (xs, ws, bs) = (xd.slice(), wd.slice(), bd.as_ref().map(|b| b.slice()));
        let y = compute(py, || {
            let plan = ConvTransposePlan::new(&p, ws, opts)?;
            Ok(Tensor { shape: p.output_shape(), data: plan.run(xs, bs)? })
        })?;
        to_numpy(py, y)
    }
    Ok(by_dtype!(x, go(py, x, w, bias, &desc, &opts))?)
}

type Grads<'py> = (Option<Bound<'py, PyAny>>, Option<Bound<'py, PyAny>>, Option<Bound<'py, PyAny>>);

#[pyfunction]
#[pyo3(signature = (x, w, grad_output, stride, padding, dilation, groups, padding_mode, flip, layout, grad_input, grad_weight, grad_bias, threads))]
#[allow(clippy::too_many_arguments)]
fn conv_backward<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    w: &Bound<'py, PyAny>,
    grad_output: &Bound<'py, PyAny>,
    stride: &str,
    padding: &str,
    dilation: &str,
    groups: &str,
    padding_mode: &str,
    flip: bool,
    layout: &str,
    grad_input: bool,
    grad_weight: bool,
    grad_bias: bool,
    threads: Option<i64>,
) -> PyResult<Grads<'py>> {
    if !grad_input && !grad_weight && !grad_bias {
        return Err(PyValueError::new_err(
            "missing output: ask for at least one of grad_input, grad_weight, grad_bias",
        ));
    }
    let desc = conv_desc(stride, padding, dilation, groups, padding_mode, flip, layout)?;
    let opts = plan_options(threads, false)?;
    let want = [grad_input, grad_weight, grad_bias];
    fn go<'py, T: Elem>(
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        w: &Bound<'py, PyAny>,
        gy: &Bound<'py, PyAny>,
        desc: &ConvDesc,
        opts: &PlanOptions,
        want: [bool; 3],
    ) -> Res<Grads<'py>> {
        let xd = read_array::<T>("input", Some(0), x)?;
        let wd = read_array::<T>("weight", Some(1), w)?;
        let gyd = read_array::<T>("grad_output", Some(2), gy)?;
        let p = ConvProblem::new(desc, &xd.shape, &wd.shape)?;
        if gyd.shape != p.output_shape() {
            return Err(Fail::Value(format!(
                "grad_output has shape {:?}: expected the output shape {:?}",
                gyd.shape,
                p.output_shape()
            )));
        }
        let (xs, ws, gys) = (xd.slice(), wd.slice(), gyd.slice());
        let (x_shape, w_shape) = (xd.shape.clone(), wd.shape.clone());
        type Out<T> = (Option<Tensor<T>>, Option<Tensor<T>>, Option<Tensor<T>>);
        let (gx, gw, gb): Out<T> = compute(py, || {
            let alloc = |what: &str, shape: &[usize]| -> Res<Vec<T>> {
                let n: usize = shape.iter().product();
                let mut v = Vec::new();
                v.try_reserve_exact(n)
                    .map_err(|_| Fail::Memory(format!("{what} of shape {shape:?} cannot be allocated")))?;
                v.resize(n, T::default());
                Ok(v)
            };
            let gx = if want[0] {
                let mut gx = alloc("grad_input", &x_shape)?;
                let plan = GradInputPlan::new(&p, ws, opts)?;
                let mut wsp = plan.workspace()?;
                plan.execute(gys, &mut gx, &mut wsp)?;
                Some(Tensor { shape: x_shape.clone(), data: gx })
            } else {
                None
            };
            let gw = if want[1] {
                let mut gw = alloc("grad_weight", &w_shape)?;
                let plan = GradWeightPlan::new(&p, opts)?;
                let mut wsp = plan.workspace()?;
                plan.execute(xs, gys, &mut gw, &mut wsp)?;
                Some(Tensor { shape: w_shape.clone(), data: gw })
            } else {
                None
            };
            let gb = if want[2] {
                let mut gb = alloc("grad_bias", &[p.out_channels])?;
                convkit::backward::grad_bias(&p, gys, &mut gb);
                Some(Tensor { shape: vec![p.out_channels], data: gb })
            } else {
                None
            };
            Ok((gx, gw, gb))
        })?;
        let conv = |t: Option<Tensor<T>>| t.map(|t| to_numpy(py, t)).transpose();
        Ok((conv(gx)?, conv(gw)?, conv(gb)?))
    }
    Ok(by_dtype!(x, go(py, x, w, grad_output, &desc, &opts, want))?)
}

#[pyfunction]
#[pyo3(signature = (kind, x, kernel, stride, padding, dilation, ceil_mode, count_include_pad, return_indices, layout))]
#[allow(clippy::too_many_arguments)]
fn pool<'py>(
    py: Python<'py>,
    kind: &str,
    x: &Bound<'py, PyAny>,
    kernel: &str,
    stride: Option<&str>,
    padding: &str,
    dilation: &str,
    ceil_mode: bool,
    count_include_pad: &str,
    return_indices: bool,
    layout: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let kind: PoolKind = kind.parse().map_err(e)?;
    let cip = match count_include_pad.trim() {
        "true" | "1" | "yes" => true,
        "false" | "0" | "no" => false,
        other => {
            return Err(PyValueError::new_err(format!(
                "invalid count-include-pad {other}: expected true or false"
            )))
        }
    };
    if return_indices && !matches!(kind, PoolKind::Max | PoolKind::GlobalMax) {
        return Err(PyValueError::new_err(format!(
            "invalid indices True: indices exist for max pooling only, not {kind}"
        )));
    }
    let mut desc = PoolDesc::new(kind)
        .kernel(parse_list("kernel", kernel).map_err(e)?)
        .padding(padding.parse::<Padding>().map_err(e)?)
        .dilation(parse_list("dilation", dilation).map_err(e)?)
        .ceil_mode(ceil_mode)
        .count_include_pad(cip)
        .layout(layout.parse::<Layout>().map_err(e)?);
    if let Some(s) = stride {
        desc = desc.stride(parse_list("stride", s).map_err(e)?);
    }
    fn go<'py, T: Elem>(
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        d: &PoolDesc,
        indices: bool,
    ) -> Res<Bound<'py, PyAny>> {
        let xd = read_array::<T>("input", Some(0), x)?;
        let xs = xd.slice();
        let (y, i) = compute(py, || Ok(convkit::raw::pool(xs, &xd.shape, d)?))?;
        let y = to_numpy(py, y)?;
        match (indices, i) {
            (true, Some(i)) => {
                let i = to_numpy(py, i)?;
                Ok(pyo3::types::PyTuple::new(py, [y, i]).map_err(|e| e.to_string())?.into_any())
            }
            (true, None) => Err(Fail::Internal("convkit internal error: indices not computed".into())),
            (false, _) => Ok(y),
        }
    }
    Ok(by_dtype!(x, go(py, x, &desc, return_indices))?)
}

/// A kernel given as an array: `(cols,)` is one row, `(rows, cols)` a 2-D kernel (as a `.npy`
/// kernel file is read).
fn kernel_from_array(obj: &Bound<'_, PyAny>) -> Res<Filter> {
    let d = read_array::<f64>("kernel", None, obj)?;
    let (r, c) = match d.shape[..] {
        [c] => (1, c),
        [r, c] => (r, c),
        _ => {
            return Err(Fail::Value(format!(
                "kernel has shape {:?}: a kernel array must be 1-D or 2-D",
                d.shape
            )))
        }
    };
    if r == 0 || c == 0 {
        return Err(Fail::Value(format!("kernel has shape {:?}: is empty", d.shape)));
    }
    Ok(Filter::Linear(Kernel::new("array", r, c, d.slice().to_vec())?))
}

/// `convkit filter IMAGE.npy -o OUT.npy`: the raw float responses of an (H, W) or (H, W, C)
/// image, (H', W') for one channel and (H', W', C) otherwise; `range` maps them first.
#[pyfunction]
#[pyo3(signature = (image, kernels, border, stride, dilation, padding, range, grey, flip, threads))]
#[allow(clippy::too_many_arguments)]
fn filter<'py>(
    py: Python<'py>,
    image: &Bound<'py, PyAny>,
    kernels: Vec<Bound<'py, PyAny>>,
    border: &str,
    stride: &str,
    dilation: &str,
    padding: &str,
    range: Option<&str>,
    grey: bool,
    flip: bool,
    threads: Option<i64>,
) -> PyResult<Bound<'py, PyAny>> {
    let (filters, opts) = filter_setup(&kernels, border, stride, dilation, padding, flip)?;
    let range = range.map(str::parse::<RangeMap>).transpose().map_err(e)?;
    let pool = match threads {
        None => None,
        Some(n) if n >= 1 => Some(
            rayon::ThreadPoolBuilder::new()
                .num_threads(n as usize)
                .build()
                .map_err(|err| Fail::Internal(err.to_string()))?,
        ),
        Some(n) => return Err(PyValueError::new_err(format!("invalid threads {n}: must be at least 1"))),
    };
    struct Job<'a> {
        filters: &'a [Filter],
        opts: &'a FilterOptions,
        range: Option<RangeMap>,
        grey: bool,
        pool: Option<&'a rayon::ThreadPool>,
    }
    fn go<'py, T: Elem>(py: Python<'py>, image: &Bound<'py, PyAny>, job: &Job<'_>) -> Res<Bound<'py, PyAny>> {
        let xd = read_array::<T>("input", Some(0), image)?;
        let shape = xd.shape.clone();
        let (h, w, c) = match shape[..] {
            [h, w] => (h, w, 1),
            [h, w, c] => (h, w, c),
            _ => {
                return Err(Fail::Value(format!(
                    "input: shape {shape:?} is not an image; expected (H, W) or (H, W, C), channels last"
                )))
            }
        };
        if h == 0 || w == 0 || c == 0 {
            return Err(Fail::Value(format!("input: shape {shape:?} is empty")));
        }
        let xs = xd.slice();
        let out = compute(py, || {
            let run = || -> Res<Planar<T>> {
                let mut colour = Planar::from_interleaved(xs, c, h, w)?;
                if job.grey && colour.channels != 1 {
                    if colour.channels != 3 {
                        return Err(Fail::Value(format!(
                            "invalid grey: the input has {} colour channels; --grey needs RGB (3)",
                            colour.channels
                        )));
                    }
                    colour = colour.luma()?;
                }
                let (c, h, w) = (colour.channels, colour.height, colour.width);
                let plan = FilterPlan::new(job.filters, job.opts, c, h, w)?;
                let mut out = plan.run(&colour, &mut |_, _| {})?;
                if let Some(r) = job.range {
                    // The responses of a float image are in units where white is 1.0.
                    r.apply(&mut out.data, 1.0);
                }
                Ok(out)
            };
            match job.pool {
                Some(p) => p.install(run),
                None => run(),
            }
        })?;
        let shape = if out.channels == 1 {
            vec![out.height, out.width]
        } else {
            vec![out.height, out.width, out.channels]
        };
        let data: Vec<T> = out.to_interleaved(T::from_f64);
        to_numpy(py, Tensor { shape, data })
    }
    let job = Job { filters: &filters, opts: &opts, range, grey, pool: pool.as_ref() };
    Ok(by_dtype!(image, go(py, image, &job))?)
}

/// Per spatial axis: `(input, kernel, stride, dilation, pad_begin, pad_end, output)`.
type AxisGeometry = (usize, usize, usize, usize, usize, usize, usize);

fn axes_of(p: &ConvProblem) -> Vec<AxisGeometry> {
    p.axes
        .iter()
        .map(|a| (a.input, a.kernel, a.stride, a.dilation, a.pad_begin, a.pad_end, a.output))
        .collect()
}

/// The checked geometry of a convolution of an input of `x_shape` by a weight of `w_shape`
/// (resolved padding and output size per axis, and the output shape), for `convkit.dask`; the
/// options' errors are the CLI's.
#[pyfunction]
#[pyo3(signature = (x_shape, w_shape, stride, padding, dilation, groups, padding_mode, layout))]
#[allow(clippy::too_many_arguments)]
fn conv_geometry(
    x_shape: Vec<usize>,
    w_shape: Vec<usize>,
    stride: &str,
    padding: &str,
    dilation: &str,
    groups: &str,
    padding_mode: &str,
    layout: &str,
) -> PyResult<(Vec<AxisGeometry>, Vec<usize>)> {
    let desc = conv_desc(stride, padding, dilation, groups, padding_mode, false, layout)?;
    let p = ConvProblem::new(&desc, &x_shape, &w_shape).map_err(e)?;
    Ok((axes_of(&p), p.output_shape()))
}

/// The checked geometry of every stage of a filter stack over a `channels × height × width`
/// image (rows, then columns), for `convkit.dask`.
#[pyfunction]
#[pyo3(signature = (kernels, border, stride, dilation, padding, channels, height, width))]
#[allow(clippy::too_many_arguments)]
fn filter_geometry(
    kernels: Vec<Bound<'_, PyAny>>,
    border: &str,
    stride: &str,
    dilation: &str,
    padding: &str,
    channels: usize,
    height: usize,
    width: usize,
) -> PyResult<Vec<Vec<AxisGeometry>>> {
    let (filters, opts) = filter_setup(&kernels, border, stride, dilation, padding, false)?;
    let plan = FilterPlan::new(&filters, &opts, channels, height, width).map_err(e)?;
    Ok(plan.stages().iter().map(|s| axes_of(&s.problem)).collect())
}

/// Parse the kernels and options of a filter as `convkit filter` does.
fn filter_setup(
    kernels: &[Bound<'_, PyAny>],
    border: &str,
    stride: &str,
    dilation: &str,
    padding: &str,
    flip: bool,
) -> Res<(Vec<Filter>, FilterOptions)> {
    let mut filters = Vec::with_capacity(kernels.len());
    for k in kernels {
        filters.push(match k.downcast::<PyString>() {
            Ok(s) => Filter::parse(&s.to_cow().map_err(|err| err.to_string())?).map_err(e)?,
            Err(_) => kernel_from_array(k)?,
        });
    }
    let opts = FilterOptions::default()
        .stride(parse_list("stride", stride).map_err(e)?)
        .dilation(parse_list("dilation", dilation).map_err(e)?)
        .padding(padding.parse::<Padding>().map_err(e)?)
        .border(
            border
                .parse::<PadMode>()
                .map_err(|err| Fail::Value(err.to_string().replace("padding-mode", "border")))?,
        )
        .flip(flip);
    Ok((filters, opts))
}

/// `convkit shape --format json` for a JSON object of its flags (kebab-case names).
#[pyfunction]
fn shape_json(py: Python<'_>, args: &str) -> PyResult<String> {
    let a: ShapeArgs =
        serde_json::from_str(args).map_err(|err| Fail::Value(format!("invalid options: {err}")))?;
    let v = compute(py, || Ok(shape::report_json(&a)?))?;
    Ok(v.to_string())
}

/// `convkit explain --format json` for a JSON object of its flags (kebab-case names).
#[pyfunction]
fn explain_json(py: Python<'_>, args: &str) -> PyResult<String> {
    let a: ExplainArgs =
        serde_json::from_str(args).map_err(|err| Fail::Value(format!("invalid options: {err}")))?;
    let v = compute(py, || Ok(explain::explain_json(&a)?))?;
    Ok(v.to_string())
}

/// A convolution planned once for an input shape: weights packed, implementation chosen.
#[pyclass(module = "convkit._convkit", frozen)]
struct ConvPlanPy {
    plan: PlanAny,
    bias: Option<BiasAny>,
    /// The workspace, kept between calls (a call that finds it in use allocates its own).
    ws32: Mutex<Vec<f32>>,
    ws64: Mutex<Vec<f64>>,
    input_shape: Vec<usize>,
    output_shape: Vec<usize>,
}

/// A zeroed output buffer, or `MemoryError`'s message.
fn alloc_output<T: Default + Clone>(shape: &[usize]) -> Res<Vec<T>> {
    let n = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let mut v = Vec::new();
    n.and_then(|n| v.try_reserve_exact(n).ok().map(|_| n))
        .map(|n| v.resize(n, T::default()))
        .ok_or_else(|| Fail::Memory(format!("output of shape {shape:?} cannot be allocated")))?;
    Ok(v)
}

/// A plan, its bias and its output shape.
type Planned<T> = (ConvPlan<T>, Option<Vec<T>>, Vec<usize>);

enum PlanAny {
    F32(ConvPlan<f32>),
    F64(ConvPlan<f64>),
}

enum BiasAny {
    F32(Vec<f32>),
    F64(Vec<f64>),
}

#[pymethods]
impl ConvPlanPy {
    #[new]
    #[pyo3(signature = (w, bias, input_shape, stride, padding, dilation, groups, padding_mode, flip, layout, threads, exact))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        w: &Bound<'_, PyAny>,
        bias: Option<&Bound<'_, PyAny>>,
        input_shape: &str,
        stride: &str,
        padding: &str,
        dilation: &str,
        groups: &str,
        padding_mode: &str,
        flip: bool,
        layout: &str,
        threads: Option<i64>,
        exact: bool,
    ) -> PyResult<Self> {
        let desc = conv_desc(stride, padding, dilation, groups, padding_mode, flip, layout)?;
        let opts = plan_options(threads, exact)?;
        let input_shape = parse_list("input-shape", input_shape).map_err(e)?;
        fn go<T: Elem>(
            py: Python<'_>,
            w: &Bound<'_, PyAny>,
            b: Option<&Bound<'_, PyAny>>,
            input_shape: &[usize],
            desc: &ConvDesc,
            opts: &PlanOptions,
        ) -> Res<Planned<T>> {
            let (wd, bd) = read_weight_bias::<T>(w, b)?;
            let p = ConvProblem::new(desc, input_shape, &wd.shape)?;
            let bias = bd.map(|b| b.slice().to_vec());
            if let Some(b) = &bias {
                if b.len() != p.out_channels {
                    return Err(Fail::Value(format!(
                        "bias has shape [{}]: expected {} values, one per output channel",
                        b.len(),
                        p.out_channels
                    )));
                }
            }
            let ws = wd.slice();
            let plan = compute(py, || Ok(ConvPlan::new(&p, ws, opts)?))?;
            Ok((plan, bias, p.output_shape()))
        }
        let me = match dtype_of("weight", w)? {
            DType::F32 => {
                let (plan, b, out) = go::<f32>(py, w, bias, &input_shape, &desc, &opts)?;
                ConvPlanPy {
                    plan: PlanAny::F32(plan),
                    bias: b.map(BiasAny::F32),
                    ws32: Mutex::new(Vec::new()),
                    ws64: Mutex::new(Vec::new()),
                    input_shape,
                    output_shape: out,
                }
            }
            DType::F64 => {
                let (plan, b, out) = go::<f64>(py, w, bias, &input_shape, &desc, &opts)?;
                ConvPlanPy {
                    plan: PlanAny::F64(plan),
                    bias: b.map(BiasAny::F64),
                    ws32: Mutex::new(Vec::new()),
                    ws64: Mutex::new(Vec::new()),
                    input_shape,
                    output_shape: out,
                }
            }
        };
        Ok(me)
    }

    /// Run the plan on `x` (the planned input shape and the weight's dtype).
    fn __call__<'py>(&self, py: Python<'py>, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        fn go<'py, T: Elem>(
            py: Python<'py>,
            plan: &ConvPlan<T>,
            bias: Option<&[T]>,
            ws: &Mutex<Vec<T>>,
            x: &Bound<'py, PyAny>,
            input_shape: &[usize],
            output_shape: &[usize],
        ) -> Res<Bound<'py, PyAny>> {
            let want = T::DTYPE;
            let got = dtype_of("input", x)?;
            if got != want {
                return Err(Fail::Value(format!(
                    "invalid input dtype {}: the plan computes in {}",
                    if got == DType::F64 { "float64" } else { "float32" },
                    if want == DType::F64 { "float64" } else { "float32" }
                )));
            }
            let xd = read_array::<T>("input", Some(0), x)?;
            if xd.shape != input_shape {
                return Err(Fail::Value(format!(
                    "input has shape {:?}: the plan was made for {:?}",
                    xd.shape, input_shape
                )));
            }
            let xs = xd.slice();
            let y = compute(py, || {
                let mut y = alloc_output::<T>(output_shape)?;
                match ws.try_lock() {
                    Ok(mut w) => {
                        if w.len() < plan.workspace_len() {
                            *w = plan.workspace()?;
                        }
                        plan.execute(xs, bias, &mut y, &mut w)?
                    }
                    Err(_) => plan.execute(xs, bias, &mut y, &mut plan.workspace()?)?,
                }
                Ok(y)
            })?;
            to_numpy(py, Tensor { shape: output_shape.to_vec(), data: y })
        }
        let r = match (&self.plan, &self.bias) {
            (PlanAny::F32(p), b) => {
                let b = match b {
                    Some(BiasAny::F32(b)) => Some(&b[..]),
                    _ => None,
                };
                go(py, p, b, &self.ws32, x, &self.input_shape, &self.output_shape)
            }
            (PlanAny::F64(p), b) => {
                let b = match b {
                    Some(BiasAny::F64(b)) => Some(&b[..]),
                    _ => None,
                };
                go(py, p, b, &self.ws64, x, &self.input_shape, &self.output_shape)
            }
        };
        Ok(r?)
    }

    /// The chosen implementation, e.g. `gemm-tiled:avx512`.
    #[getter]
    fn implementation(&self) -> String {
        match &self.plan {
            PlanAny::F32(p) => p.implementation(),
            PlanAny::F64(p) => p.implementation(),
        }
    }

    #[getter]
    fn input_shape(&self) -> Vec<usize> {
        self.input_shape.clone()
    }

    #[getter]
    fn output_shape(&self) -> Vec<usize> {
        self.output_shape.clone()
    }

    #[getter]
    fn dtype(&self) -> &'static str {
        match &self.plan {
            PlanAny::F32(_) => "float32",
            PlanAny::F64(_) => "float64",
        }
    }

    #[getter]
    fn threads(&self) -> usize {
        match &self.plan {
            PlanAny::F32(p) => p.threads(),
            PlanAny::F64(p) => p.threads(),
        }
    }
}

#[pymodule]
fn _convkit(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(conv, m)?)?;
    m.add_function(wrap_pyfunction!(conv_transpose, m)?)?;
    m.add_function(wrap_pyfunction!(conv_backward, m)?)?;
    m.add_function(wrap_pyfunction!(pool, m)?)?;
    m.add_function(wrap_pyfunction!(filter, m)?)?;
    m.add_function(wrap_pyfunction!(conv_geometry, m)?)?;
    m.add_function(wrap_pyfunction!(filter_geometry, m)?)?;
    m.add_function(wrap_pyfunction!(shape_json, m)?)?;
    m.add_function(wrap_pyfunction!(explain_json, m)?)?;
    m.add_function(wrap_pyfunction!(_last_read_addresses, m)?)?;
    m.add_class::<ConvPlanPy>()?;
    Ok(())
}
