//! Image decoding through `convkit filter`: the bytes as an image file (any supported
//! format, recognised by content), filtered to a PNG under a 64 MiB memory budget, exactly as
//! the binary runs it. Files live in a per-process directory under `CONVKIT_FUZZ_SCRATCH`
//! (which `fuzz/run.sh` makes, and removes when it ends), else on tmpfs where there is one.
#![no_main]
use std::path::PathBuf;
use std::sync::OnceLock;

fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = match std::env::var_os("CONVKIT_FUZZ_SCRATCH") {
            Some(d) => PathBuf::from(d),
            None if std::path::Path::new("/dev/shm").is_dir() => "/dev/shm".into(),
            None => std::env::temp_dir(),
        };
        let d = base.join(format!("convkit-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let input = dir().join("in.img");
    let output = dir().join("out.png");
    std::fs::write(&input, data).unwrap();
    let _ = std::fs::remove_file(&output);
    let r = convkit_fuzz::filter_cli(&[
        input.to_str().unwrap(),
        "-o",
        output.to_str().unwrap(),
        "-k",
        "box:3",
        "--max-memory",
        "64M",
    ]);
    // Nothing half-written: an output exists exactly when the command succeeded.
    assert_eq!(r.is_ok(), output.exists(), "{r:?}");
});
