//! Any bytes as a .jsonl / .json dataset: loading may fail, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::io::Write;

fuzz_target!(|data: &[u8]| {
    for suffix in [".jsonl", ".json"] {
        let Ok(mut f) = tempfile::Builder::new().suffix(suffix).tempfile() else { return };
        if f.write_all(data).is_err() {
            return;
        }
        let _ = rewardbench::data::Dataset::load(f.path());
    }
});
