//! The `serve` JSON API bodies: `/api/explain`, `/api/shape` and `/api/filter` (first byte
//! picks) answer 200 or a 4xx, never panic, never a 5xx.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else { return };
    let status = convkit_fuzz::serve_api(which, body);
    assert!(status == 200 || (400..500).contains(&status), "status {status}");
});
