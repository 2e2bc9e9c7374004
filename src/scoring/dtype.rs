//! `--score_dtype`: each score rounded to a lower-precision format (round to nearest, ties to
//! even) before any comparison, so exact ties happen as often as in an fp16 or bf16 run.

/// The format scores are rounded to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ScoreDtype {
    /// The model's own f32 scores, unchanged.
    #[default]
    F32,
    Bf16,
    F16,
}

impl ScoreDtype {
    /// The flag value.
    pub fn label(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::Bf16 => "bf16",
            Self::F16 => "f16",
        }
    }

    /// `x` rounded to this format, as an f32 (exact: both formats are subsets of f32).
    pub fn round(self, x: f32) -> f32 {
        match self {
            Self::F32 => x,
            Self::Bf16 => half::bf16::from_f32(x).to_f32(),
            Self::F16 => half::f16::from_f32(x).to_f32(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_to_nearest_even() {
        // bf16 keeps 8 significant bits: near 5 the step is 2^-5.
        assert_eq!(ScoreDtype::Bf16.round(5.01), 5.0);
        assert_eq!(ScoreDtype::Bf16.round(5.02), 5.03125);
        // A halfway value goes to the even neighbour: 1 + 2^-8 lies between 1 and 1 + 2^-7.
        assert_eq!(ScoreDtype::Bf16.round(1.0 + 1.0 / 256.0), 1.0);
        assert_eq!(ScoreDtype::Bf16.round(1.0 + 3.0 / 256.0), 1.0 + 4.0 / 256.0);
        // f16 keeps 11 bits: near 1 the step is 2^-10.
        assert_eq!(ScoreDtype::F16.round(1.0 + 1.0 / 4096.0), 1.0);
        assert_eq!(ScoreDtype::F16.round(-2.0004), -2.0);
        assert_eq!(ScoreDtype::F32.round(0.1), 0.1);
        // Two nearby scores become an exact tie.
        assert_eq!(ScoreDtype::Bf16.round(3.001), ScoreDtype::Bf16.round(3.004));
    }
}
