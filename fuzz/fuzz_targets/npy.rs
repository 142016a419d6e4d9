//! The `.npy` reader: headers, dtypes, shapes and truncation. Whatever the bytes, an array or
//! an error; an array's data holds exactly its shape's element count.
#![no_main]
use convkit::npy::{read_npy_from, NpyArray};
use std::path::Path;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(a) = read_npy_from("input", Path::new("fuzz.npy"), data, data.len() as u64) {
        let n: usize = a.shape().iter().product();
        let len = match &a {
            NpyArray::F32(t) => t.data.len(),
            NpyArray::F64(t) => t.data.len(),
        };
        assert_eq!(n, len, "shape {:?}", a.shape());
    }
});
