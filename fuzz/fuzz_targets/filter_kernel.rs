//! `filter`'s kernel specs (`gaussian:σ:size`, `motion:len:angle`, inline matrices with
//! fractions, …): parsed, planned against a small image and run.
#![no_main]
use convkit::filter::{Filter, FilterOptions, FilterPlan, Planar};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let Ok(f) = Filter::parse(s) else { return };
    let (c, h, w) = (2, 9, 11);
    let Ok(plan) = FilterPlan::new(&[f], &FilterOptions::default(), c, h, w) else { return };
    let img = Planar::new(c, h, w, (0..c * h * w).map(|i| (i % 7) as f32).collect()).unwrap();
    let out = plan.run(&img, &mut |_, _| {}).expect("a plan runs on its image");
    assert_eq!((out.channels, out.height, out.width), plan.output_size());
});
