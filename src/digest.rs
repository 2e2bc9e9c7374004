//! A small stable content hash (128-bit FNV-1a, two lanes): run fingerprints and sample
//! hashes that must not change across platforms or releases.

/// A 128-bit FNV-1a hash (two 64-bit lanes), enough to tell runs apart.
#[derive(Debug, Clone)]
pub struct Digest {
    a: u64,
    b: u64,
}

impl Default for Digest {
    fn default() -> Self {
        Self {
            a: 0xcbf2_9ce4_8422_2325,
            b: 0x6c62_272e_07bb_0142,
        }
    }
}

impl Digest {
    pub fn bytes(&mut self, data: &[u8]) -> &mut Self {
        for &x in data {
            self.a = (self.a ^ u64::from(x)).wrapping_mul(0x0000_0100_0000_01b3);
            self.b = (self.b ^ u64::from(x))
                .wrapping_mul(0x0000_0100_0000_01b3)
                .rotate_left(5);
        }
        self
    }

    /// A labelled field (length-prefixed, so fields cannot run into each other).
    pub fn field(&mut self, label: &str, data: &[u8]) -> &mut Self {
        self.bytes(label.as_bytes());
        self.bytes(&(data.len() as u64).to_le_bytes());
        self.bytes(data)
    }

    pub fn hex(&self) -> String {
        format!("{:016x}{:016x}", self.a, self.b)
    }
}
