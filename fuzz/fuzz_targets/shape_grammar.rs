//! The `shape` layer grammar (`conv 64 k7 s2 p3; res(conv 64 k3 p1 | ); …`) and its analysis
//! for an input shape taken from the first bytes.
#![no_main]
use convkit::stack::{analyse, parse};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let (head, text) = data.split_at(3);
    let Ok(text) = std::str::from_utf8(text) else { return };
    let Ok(layers) = parse(text) else { return };
    let rank = 1 + head[0] as usize % 3;
    let mut input = vec![1 + head[1] as usize % 4, 1 + head[2] as usize % 8];
    input.extend((0..rank).map(|a| 1 + (head[a] as usize * 7) % 300));
    let _ = analyse(&layers, &input);
});
