//! NumPy `.npy` files (header versions 1–3, little-endian `f32`/`f64`, C order) through the
//! `npyz` crate, with the checks that turn a bad file into an error naming the argument.

use crate::error::{Error, Result};
use crate::shape::checked_numel;
use crate::tensor::Tensor;
use npyz::WriterBuilder;
use std::io::{BufReader, Read, Write};
use std::path::Path;

/// A floating-point array read from a `.npy` file, in the dtype it was stored in.
#[derive(Debug, Clone, PartialEq)]
pub enum NpyArray {
    /// `<f4`
    F32(Tensor<f32>),
    /// `<f8`
    F64(Tensor<f64>),
}

impl NpyArray {
    /// The array's shape.
    pub fn shape(&self) -> &[usize] {
        match self {
            NpyArray::F32(t) => &t.shape,
            NpyArray::F64(t) => &t.shape,
        }
    }
    /// `"f32"` or `"f64"`.
    pub fn dtype(&self) -> &'static str {
        match self {
            NpyArray::F32(_) => "f32",
            NpyArray::F64(_) => "f64",
        }
    }
    /// The data as `f64` (exact for both dtypes).
    pub fn to_f64(&self) -> Tensor<f64> {
        match self {
            NpyArray::F32(t) => {
                Tensor { shape: t.shape.clone(), data: t.data.iter().map(|&v| v as f64).collect() }
            }
            NpyArray::F64(t) => t.clone(),
        }
    }
    /// The data rounded to `f32`.
    pub fn to_f32(&self) -> Tensor<f32> {
        match self {
            NpyArray::F32(t) => t.clone(),
            NpyArray::F64(t) => {
                Tensor { shape: t.shape.clone(), data: t.data.iter().map(|&v| v as f32).collect() }
            }
        }
    }
}

/// Read a `.npy` file. `arg` names the argument in error messages (`input`, `weight`…).
pub fn read_npy(arg: &str, path: &Path) -> Result<NpyArray> {
    let err = |reason: String| Error::File { arg: arg.to_string(), path: path.display().to_string(), reason };
    let file = std::fs::File::open(path).map_err(|e| err(format!("cannot open: {e}")))?;
    let file_len = file.metadata().map(|m| m.len()).unwrap_or(u64::MAX);
    read_npy_from(arg, path, BufReader::new(file), file_len)
}

/// Deepest bracket nesting accepted in a header.
const MAX_HEADER_NESTING: usize = 4;

/// Read a `.npy` array from any reader; `max_bytes` bounds the data it may claim to hold.
pub fn read_npy_from(arg: &str, path: &Path, mut reader: impl Read, max_bytes: u64) -> Result<NpyArray> {
    let err = |reason: String| Error::File { arg: arg.to_string(), path: path.display().to_string(), reason };
    // Read the header first and check its shape ourselves: npyz multiplies the dimensions
    // without overflow checks.
    let mut head = vec![0u8; 10];
    reader.read_exact(&mut head).map_err(|e| err(format!("not a valid .npy file: {e}")))?;
    if &head[..6] != b"\x93NUMPY" {
        return Err(err("not a valid .npy file: bad magic string".into()));
    }
    let header_len = match head[6] {
        1 => u16::from_le_bytes([head[8], head[9]]) as usize,
        2 | 3 => {
            let mut more = [0u8; 2];
            reader.read_exact(&mut more).map_err(|e| err(format!("not a valid .npy file: {e}")))?;
            head.extend_from_slice(&more);
            u32::from_le_bytes([head[8], head[9], more[0], more[1]]) as usize
        }
        v => return Err(err(format!("unsupported .npy format version {v}: expected 1, 2 or 3"))),
    };
    if header_len > 1 << 20 {
        return Err(err(format!("not a valid .npy file: header of {header_len} bytes")));
    }
    let start = head.len();
    head.resize(start + header_len, 0);
    reader.read_exact(&mut head[start..]).map_err(|e| err(format!("not a valid .npy file: {e}")))?;
    let dict = String::from_utf8_lossy(&head[start..]);
    // npyz's header parser backtracks exponentially on nested brackets (a 161-byte header of
    // 26 nested `{` ran for minutes; found by fuzz/npy). Every header NumPy writes nests at most
    // 4 deep (`{'descr': [('a', '<f4', (2,))]…}`), so anything deeper is not a .npy header.
    let mut depth = 0usize;
    for c in dict.chars() {
        match c {
            '{' | '[' | '(' => {
                depth += 1;
                if depth > MAX_HEADER_NESTING {
                    return Err(err(format!(
                        "not a valid .npy file: header nests brackets more than {MAX_HEADER_NESTING} deep"
                    )));
                }
            }
            '}' | ']' | ')' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    if let Some(dims) = dict.split("'shape':").nth(1).and_then(|r| r.split(')').next()) {
        let dims = dims.trim_start().trim_start_matches('(');
        let product = dims
            .split(',')
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .try_fold(1u64, |acc, d| d.parse::<u64>().ok().and_then(|d| acc.checked_mul(d)));
        if product.is_none() {
            return Err(err(format!("shape ({dims}) is invalid or too large")));
        }
    }
    let npy = npyz::NpyFile::new(std::io::Cursor::new(head).chain(reader))
        .map_err(|e| err(format!("not a valid .npy file: {e}")))?;
    let dtype = match npy.dtype() {
        npyz::DType::Plain(t) => t.to_string(),
        other => {
            return Err(err(format!(
                "unsupported dtype {}: expected little-endian f32 (<f4) or f64 (<f8)",
                other.descr()
            )))
        }
    };
    if npy.order() != npyz::Order::C {
        return Err(err("Fortran-ordered arrays are not supported: save in C order".into()));
    }
    let shape = npy
        .shape()
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| err(format!("dimension {d} is too large"))))
        .collect::<Result<Vec<_>>>()?;
    let n = checked_numel(arg, &shape)?;
    let item = match dtype.as_str() {
        "<f4" => 4,
        "<f8" => 8,
        _ => {
            return Err(err(format!(
                "unsupported dtype {dtype}: expected little-endian f32 (<f4) or f64 (<f8)"
            )))
        }
    };
    if (n as u64).saturating_mul(item) > max_bytes {
        return Err(err(format!("truncated: shape {shape:?} needs {} bytes of data", n as u64 * item)));
    }
    let trunc = |e: std::io::Error| err(format!("cannot read data: {e}"));
    Ok(if item == 4 {
        NpyArray::F32(Tensor { shape, data: npy.into_vec::<f32>().map_err(trunc)? })
    } else {
        NpyArray::F64(Tensor { shape, data: npy.into_vec::<f64>().map_err(trunc)? })
    })
}

/// An element type that can be written to `.npy` (`f32`, `f64`, `i64`).
pub trait NpyElement: npyz::Serialize + npyz::AutoSerialize + Copy {}
impl NpyElement for f32 {}
impl NpyElement for f64 {}
impl NpyElement for i64 {}

/// Write `data` of `shape` as a C-order `.npy` array to `w`.
pub fn write_npy_to<T: NpyElement>(w: impl Write, shape: &[usize], data: &[T]) -> std::io::Result<()> {
    let shape: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
    let mut w = std::io::BufWriter::new(w);
    let mut npy = npyz::WriteOptions::new().default_dtype().shape(&shape).writer(&mut w).begin_nd()?;
    npy.extend(data.iter().copied())?;
    npy.finish()?;
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_what_it_cannot_read() {
        let mut buf = Vec::new();
        write_npy_to(&mut buf, &[2, 3], &[1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        let a = read_npy_from("input", Path::new("x.npy"), &buf[..], buf.len() as u64).unwrap();
        assert_eq!(a, NpyArray::F32(Tensor { shape: vec![2, 3], data: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0] }));
        // Truncated data.
        let cut = &buf[..buf.len() - 4];
        assert!(read_npy_from("input", Path::new("x.npy"), cut, cut.len() as u64).is_err());
        // Integer dtype.
        let mut ints = Vec::new();
        write_npy_to(&mut ints, &[2], &[1i64, 2]).unwrap();
        let e = read_npy_from("weight", Path::new("w.npy"), &ints[..], ints.len() as u64).unwrap_err();
        assert!(e.to_string().contains("unsupported dtype <i8"), "{e}");
        // Not a .npy at all.
        assert!(read_npy_from("input", Path::new("x.npy"), &b"hello"[..], 5).is_err());
    }
}
