//! A chat template and messages from arbitrary bytes (template, NUL, messages JSON):
//! compiling and rendering may fail, never panic or run unbounded.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rewardbench::template::{JinjaTemplate, Message};
use std::collections::BTreeMap;

fuzz_target!(|data: &[u8]| {
    let (src, rest) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b"[]"[..]),
    };
    let Ok(src) = std::str::from_utf8(src) else { return };
    let messages: Vec<Message> = serde_json_messages(rest);
    let mut special = BTreeMap::new();
    special.insert("bos_token".to_string(), "<s>".to_string());
    special.insert("eos_token".to_string(), "</s>".to_string());
    if let Ok(t) = JinjaTemplate::new(src, special, "fuzz", "fuzz") {
        let _ = t.render(&messages, false);
        let _ = t.render(&messages, true);
    }
});

fn serde_json_messages(bytes: &[u8]) -> Vec<Message> {
    let text = String::from_utf8_lossy(bytes);
    text.split('\u{1}')
        .enumerate()
        .map(|(i, c)| Message::new(if i % 2 == 0 { "user" } else { "assistant" }, c))
        .collect()
}
