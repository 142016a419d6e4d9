//! Instruction-set levels: detected once from the CPU, capped by `CONVKIT_MAX_ISA`
//! (`generic`, `avx2` or `avx512`) so every lower path can be exercised on a newer machine.
//!
//! A level only names what the CPU can run; which kernels exist at a level is the business of
//! [`crate::kernels::KernelSet`]. Adding a level is one variant here, one entry in [`LEVELS`]
//! and one kernel-set module with its entry in the kernels' level list (`F32_SETS`). Pooling
//! and the response maps, portable code recompiled per level, fall back to the highest lower
//! level until the new one gets its line in their `level!` lists.

use std::fmt;
use std::sync::OnceLock;

/// A SIMD level a kernel can be written for, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    /// Portable Rust, always available.
    Generic,
    /// x86-64 AVX2 with FMA3 (256-bit vectors, 16 registers).
    Avx2Fma,
    /// x86-64 AVX-512 F + BW + DQ + VL (512-bit vectors, 32 registers, masks), with FMA.
    Avx512,
}

/// One level: its name for users (`CONVKIT_MAX_ISA`, implementation names) and whether this
/// CPU can run it.
pub type Level = (Isa, &'static str, fn() -> bool);

/// Every level, lowest first.
pub const LEVELS: &[Level] = &[
    (Isa::Generic, "generic", || true),
    (Isa::Avx2Fma, "avx2", cpu_has_avx2),
    (Isa::Avx512, "avx512", cpu_has_avx512),
];

fn cpu_has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

fn cpu_has_avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        cpu_has_avx2()
            && is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512dq")
            && is_x86_feature_detected!("avx512vl")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

impl Isa {
    /// The level's name (`generic`, `avx2`, `avx512`).
    pub fn name(self) -> &'static str {
        LEVELS.iter().find(|l| l.0 == self).map_or("generic", |l| l.1)
    }

    /// The level named `name`, if there is one.
    pub fn parse(name: &str) -> Option<Isa> {
        LEVELS.iter().find(|l| l.1 == name.trim()).map(|l| l.0)
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The highest level the CPU supports (ignoring the environment cap).
pub fn detected() -> Isa {
    static CPU: OnceLock<Isa> = OnceLock::new();
    *CPU.get_or_init(|| LEVELS.iter().filter(|l| (l.2)()).map(|l| l.0).max().unwrap_or(Isa::Generic))
}

/// The highest level this process may use: the CPU's, capped by `CONVKIT_MAX_ISA`
/// (an unknown value caps at `generic`, the safe choice).
pub fn max_isa() -> Isa {
    static MAX: OnceLock<Isa> = OnceLock::new();
    *MAX.get_or_init(|| {
        let cpu = detected();
        match std::env::var("CONVKIT_MAX_ISA").ok().as_deref().map(str::trim) {
            None | Some("") => cpu,
            Some(name) => Isa::parse(name).map_or(Isa::Generic, |cap| cap.min(cpu)),
        }
    })
}

/// True when the CPU supports `isa` (ignoring the environment cap).
pub fn supported(isa: Isa) -> bool {
    isa <= detected()
}

/// Every level this process may use, lowest first (`generic` always included): the list
/// tests loop over.
pub fn available() -> Vec<Isa> {
    LEVELS.iter().map(|l| l.0).filter(|&l| l <= max_isa()).collect()
}
