//! Instruction-set levels: detected once from the CPU, capped by `CONVKIT_MAX_ISA`
//! (`generic` or `avx2`) so every lower path can be exercised on a newer machine.

use std::fmt;
use std::sync::OnceLock;

/// A SIMD level a kernel can be written for, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Isa {
    /// Portable Rust, always available.
    Generic,
    /// x86-64 AVX2 with FMA3.
    Avx2Fma,
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Isa::Generic => "generic",
            Isa::Avx2Fma => "avx2",
        })
    }
}

fn detected() -> Isa {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            return Isa::Avx2Fma;
        }
    }
    Isa::Generic
}

/// The highest level this process may use: the CPU's, capped by `CONVKIT_MAX_ISA`
/// (an unknown value caps at `generic`, the safe choice).
pub fn max_isa() -> Isa {
    static MAX: OnceLock<Isa> = OnceLock::new();
    *MAX.get_or_init(|| {
        let cpu = detected();
        match std::env::var("CONVKIT_MAX_ISA").ok().as_deref().map(str::trim) {
            None | Some("") => cpu,
            Some("avx2") => cpu.min(Isa::Avx2Fma),
            Some(_) => Isa::Generic,
        }
    })
}

/// True when the CPU supports `isa` (ignoring the environment cap).
pub fn supported(isa: Isa) -> bool {
    isa <= detected()
}
