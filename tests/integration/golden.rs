//! Golden files: the result files of v1 runs, frozen before the pipeline was restructured
//! (commit fc144b3; the token-cap DPO case was added later and checked against that build).
//! Every case must reproduce them byte for byte. `UPDATE_GOLDEN=1 cargo test --release
//! golden` rewrites them; do that only for a deliberate, explained change.
//!
//! The files were recorded on x86-64 with AVX2 and FMA and without AVX-512 (Zen 3). ONNX
//! Runtime picks other kernels on other CPUs, which can move the last bits of a score; there
//! the test still requires every non-numeric byte to match and numbers to agree within 1e-5,
//! and says that it ran in that mode.

use std::path::Path;
use std::process::Command;

use crate::util::root;

/// (case name, flags); every case runs from the repository root with relative paths.
const CASES: &[(&str, &[&str])] = &[
    (
        "llama-llmbar",
        &[
            "--model",
            "fixtures/models/tiny-llama-rm",
            "--dataset",
            "fixtures/data/llmbar.jsonl",
            "--save_all",
        ],
    ),
    (
        "gpt2-edge-cases",
        &[
            "--model",
            "fixtures/models/tiny-gpt2-rm",
            "--dataset",
            "fixtures/data/edge_cases.jsonl",
            "--batch_size",
            "3",
        ],
    ),
    (
        "gpt2-conversations-reference-batching",
        &[
            "--model",
            "fixtures/models/tiny-gpt2-rm",
            "--dataset",
            "fixtures/data/conversation_shape.jsonl",
            "--batching",
            "reference",
            "--batch_size",
            "4",
        ],
    ),
    (
        "llama-gqa-llmbar",
        &[
            "--model",
            "fixtures/models/tiny-llama-rm/gqa",
            "--dataset",
            "fixtures/data/llmbar.jsonl",
        ],
    ),
    (
        "llama-instructions",
        &[
            "--model",
            "fixtures/models/tiny-llama-rm",
            "--dataset",
            "fixtures/data/instructions.jsonl",
            "--save_all",
        ],
    ),
    (
        "dpo-llama-pref-shape",
        &[
            "--model",
            "fixtures/models/tiny-llama-policy",
            "--ref_model",
            "fixtures/models/tiny-llama-ref",
            "--dataset",
            "fixtures/data/pref_shape.jsonl",
        ],
    ),
    (
        // A token cap that splits RewardBench's batches of pairs (recorded with the pre-
        // restructure binary's planning, which this reproduces byte for byte).
        "dpo-llama-llmbar-token-cap",
        &[
            "--model",
            "fixtures/models/tiny-llama-policy",
            "--ref_model",
            "fixtures/models/tiny-llama-ref",
            "--dataset",
            "fixtures/data/llmbar.jsonl",
            "--batch_size",
            "3",
            "--max_batch_tokens",
            "1500",
        ],
    ),
    (
        "dpo-gpt2-ref-free-long",
        &[
            "--model",
            "fixtures/models/tiny-gpt2-policy",
            "--ref_free_type",
            "avg",
            "--dataset",
            "fixtures/data/dpo_long.jsonl",
            "--batch_size",
            "2",
        ],
    ),
];

/// Files of a run that are not results: timings, and the resume cache (its format may change).
fn is_result(name: &str) -> bool {
    !(name.ends_with("_run.json")
        || name.ends_with(".cache.jsonl")
        || name.ends_with(".store.jsonl"))
}

/// The ONNX Runtime library's absolute path is the machine's, not the run's.
fn normalize(text: &str) -> String {
    text.split_inclusive('\n')
        .map(|l| match l.find("\"onnxruntime_library\": ") {
            Some(at) => format!("{}\"onnxruntime_library\": \"<library>\",\n", &l[..at]),
            None => l.to_string(),
        })
        .collect()
}

fn recorded_cpu() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
            && !std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Splits text into runs of number characters and the rest.
fn tokens(s: &str) -> Vec<(bool, &str)> {
    let is_num = |c: char| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E');
    let mut out = Vec::new();
    let mut start = 0;
    let mut num = None;
    for (i, c) in s.char_indices() {
        let n = is_num(c);
        if num != Some(n) {
            if let Some(k) = num {
                out.push((k, &s[start..i]));
            }
            start = i;
            num = Some(n);
        }
    }
    if let Some(k) = num {
        out.push((k, &s[start..]));
    }
    out
}

/// Equal except for numbers within 1e-5 (absolute or relative).
fn close(a: &str, b: &str) -> bool {
    let (ta, tb) = (tokens(a), tokens(b));
    ta.len() == tb.len()
        && ta.iter().zip(&tb).all(|((na, x), (nb, y))| {
            na == nb
                && (x == y
                    || (*na
                        && match (x.parse::<f64>(), y.parse::<f64>()) {
                            (Ok(u), Ok(v)) => (u - v).abs() <= 1e-5 * u.abs().max(v.abs()).max(1.0),
                            _ => false,
                        }))
        })
}

fn run_case(name: &str, flags: &[&str], out: &Path) -> Vec<(String, String)> {
    // The files were recorded with the former default token cap (16384; now 4096 on CPU) and
    // no attention cap (now 1024 MiB on CPU): model_calls and padding in the summaries depend
    // on them, the scores do not.
    let cap: &[&str] = if flags.contains(&"--max_batch_tokens") {
        &["--max_attention_mb", "0"]
    } else {
        &["--max_batch_tokens", "16384", "--max_attention_mb", "0"]
    };
    let o = Command::new(env!("CARGO_BIN_EXE_rewardbench"))
        .current_dir(root())
        .args(flags)
        .args(cap)
        .args([
            "--date",
            "2025-07-10",
            "--quiet",
            "--cache",
            "false",
            "--output_dir",
        ])
        .arg(out)
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let mut files = vec![(
        "stdout.txt".to_string(),
        String::from_utf8(o.stdout).unwrap(),
    )];
    let mut names: Vec<String> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| is_result(n))
        .collect();
    names.sort();
    for n in names {
        let text = std::fs::read_to_string(out.join(&n)).unwrap();
        files.push((n, normalize(&text)));
    }
    files
}

#[test]
fn v1_results_are_byte_identical_to_the_golden_files() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let strict = recorded_cpu();
    if !strict {
        eprintln!(
            "golden: this CPU is not the one the files were recorded on (x86-64 AVX2, no AVX-512): \
             numbers are compared within 1e-5, everything else byte for byte"
        );
    }
    let mut failures = Vec::new();
    for (name, flags) in CASES {
        let tmp = tempfile::tempdir().unwrap();
        let got = run_case(name, flags, tmp.path());
        let dir = root().join("fixtures/golden").join(name);
        if update {
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            for (n, text) in &got {
                std::fs::write(dir.join(n), text).unwrap();
            }
            continue;
        }
        let mut want: Vec<String> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        want.sort();
        let mut got_names: Vec<String> = got.iter().map(|(n, _)| n.clone()).collect();
        got_names.sort();
        if want != got_names {
            failures.push(format!("{name}: files {got_names:?}, golden {want:?}"));
            continue;
        }
        for (n, text) in &got {
            let golden = std::fs::read_to_string(dir.join(n)).unwrap();
            let same = if strict {
                *text == golden
            } else {
                close(text, &golden)
            };
            if !same {
                let line = text
                    .lines()
                    .zip(golden.lines())
                    .position(|(a, b)| a != b)
                    .map_or(0, |i| i + 1);
                failures.push(format!(
                    "{name}/{n}: differs from the golden file at line {line}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn tolerant_comparison_catches_real_changes() {
    assert!(close("a 0.1234567 b", "a 0.1234568 b"));
    assert!(!close("a 0.12 b", "a 0.13 b"));
    assert!(!close("\"results\": 1", "\"results\": 0"));
    assert!(!close("x", "y"));
}
