//! Inputs the fuzz targets (fuzz/) crashed on, kept as regression tests: each runs the code
//! path its target drives, on the saved input (tests/fuzz/). Several of these panicked only with
//! overflow checks on (`cargo test`, or the instrumented fuzz build); under `--release` they
//! run the same code without the checks.

use convkit::stack::{analyse, parse};

/// What fuzz/fuzz_targets/shape_grammar.rs does with its input.
fn shape_grammar(data: &[u8]) {
    let (head, text) = data.split_at(3);
    let layers = parse(std::str::from_utf8(text).unwrap()).unwrap();
    let rank = 1 + head[0] as usize % 3;
    let mut input = vec![1 + head[1] as usize % 4, 1 + head[2] as usize % 8];
    input.extend((0..rank).map(|a| 1 + (head[a] as usize * 7) % 300));
    let a = analyse(&layers, &input).unwrap();
    // A stride-2 transposed convolution has no receptive field in the conv sense.
    assert!(a.rows[0].field.is_none(), "{:?}", a.rows[0].field);
}

#[test]
fn shape_transposed_conv_padding_over_its_reach() {
    // "convT 16 k1 s2 p1 op1": the stride-1 reformulation computed `reach - pad_begin` (0 - 1)
    // even when it was not used: `bool::then_some` evaluates its argument eagerly.
    let data = include_bytes!("fuzz/shape_grammar-convT-pad-over-reach");
    assert_eq!(&data[3..], b"convT 16 k1 s2 p1 op1");
    shape_grammar(data);
    // The same layer at stride 1 keeps the conv-equivalent field where the padding allows it.
    let layers = parse("convT 4 k3 p1").unwrap();
    let a = analyse(&layers, &[1, 2, 9]).unwrap();
    let f = a.rows[0].field.as_ref().expect("stride-1 transposed conv has a field");
    assert_eq!(f[0].size, 3);
}

#[test]
fn npy_header_with_nested_braces_is_refused_at_once() {
    // 161 bytes whose header dict opens 26 nested `{`: npyz's parser backtracked for minutes
    // (a libFuzzer timeout). Now refused before it is parsed.
    let data = include_bytes!("fuzz/npy-nested-braces-timeout");
    let start = std::time::Instant::now();
    let e = convkit::npy::read_npy_from("input", std::path::Path::new("x.npy"), &data[..], data.len() as u64)
        .unwrap_err();
    assert!(e.to_string().contains("nests brackets"), "{e}");
    assert!(start.elapsed() < std::time::Duration::from_secs(1), "took {:?}", start.elapsed());
    // A header NumPy writes for a structured dtype with a sub-array (4 deep) still gets as far as
    // the dtype check.
    let mut dict = "{'descr': [('a', '<f4', (2,))], 'fortran_order': False, 'shape': (1,), }".to_string();
    while !(10 + dict.len() + 1).is_multiple_of(64) {
        dict.push(' ');
    }
    dict.push('\n');
    let mut v = b"\x93NUMPY\x01\x00".to_vec();
    v.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    v.extend_from_slice(dict.as_bytes());
    v.extend_from_slice(&[0; 8]);
    let e = convkit::npy::read_npy_from("input", std::path::Path::new("s.npy"), &v[..], v.len() as u64)
        .unwrap_err();
    assert!(e.to_string().contains("unsupported dtype"), "{e}");
}
