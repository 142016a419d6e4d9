//! The command line's value grammars: per-axis lists (stride, dilation, kernel), padding
//! specs, padding modes (`constant:V`), layouts, pool kinds, groups, `--max-memory` sizes.
#![no_main]
use convkit::{parse_list, Layout, PadMode, Padding, PoolKind};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(v) = parse_list("stride", s) {
        assert!(!v.is_empty());
    }
    let _ = s.parse::<Padding>();
    let _ = s.parse::<PadMode>();
    let _ = s.parse::<Layout>();
    let _ = s.parse::<PoolKind>();
    let _ = convkit_fuzz::groups(s);
    if let Ok(b) = convkit_fuzz::filter::parse_bytes("max-memory", s) {
        assert!(b >= 1);
    }
});
