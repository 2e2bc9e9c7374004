//! Split inference over any file names (and any README header): it may find no split, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // `README\0name\nname\n...`: a dataset card, then one file name per line.
    let (readme, names) = match text.split_once('\0') {
        Some((r, n)) => (Some(r), n),
        None => (None, text.as_ref()),
    };
    let files: Vec<String> = names.lines().map(str::to_string).collect();
    let _ = rewardbench::data::split_files(&files, readme);
});
