//! Split inference as the `datasets` library does it: README `configs`, sharded file names,
//! train / validation / test keywords; fsspec globs; the splits a run reads.

use std::path::Path;

use super::{is_data_file, DataError};

/// Data files under `dir` (relative, `/`-separated), skipping hidden entries.
pub(super) fn list_data_dir(dir: &Path, prefix: &str, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let rel = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        let p = entry.path();
        if p.is_dir() {
            list_data_dir(&p, &rel, out);
        } else if is_data_file(&name) {
            out.push(rel);
        }
    }
}

/// Splits and their files, in the order `datasets` gives them.
pub fn split_files(files: &[String], readme: Option<&str>) -> Vec<(String, Vec<String>)> {
    let data: Vec<&String> = files
        .iter()
        .filter(|f| is_data_file(f) && !f.split('/').any(|c| c.starts_with('.')))
        .collect();
    if let Some(configs) = readme.and_then(readme_splits) {
        let out: Vec<(String, Vec<String>)> = configs
            .into_iter()
            .map(|(split, patterns)| {
                let matched = data
                    .iter()
                    .filter(|f| patterns.iter().any(|p| glob_match(p, f)))
                    .map(|f| f.to_string())
                    .collect();
                (split, matched)
            })
            .collect();
        if out.iter().any(|(_, f)| !f.is_empty()) {
            return out;
        }
    }
    // data/{split}-00000-of-00001*.*: train, validation, test first, then the rest sorted.
    let mut sharded: Vec<(String, Vec<String>)> = Vec::new();
    for f in &data {
        if let Some(split) = sharded_split(f) {
            match sharded.iter_mut().find(|(s, _)| *s == split) {
                Some((_, v)) => v.push(f.to_string()),
                None => sharded.push((split, vec![f.to_string()])),
            }
        }
    }
    if !sharded.is_empty() {
        let rank = |s: &str| ["train", "validation", "test"].iter().position(|d| *d == s);
        sharded.sort_by(|a, b| match (rank(&a.0), rank(&b.0)) {
            (Some(x), Some(y)) => x.cmp(&y),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => a.0.cmp(&b.0),
        });
        return sharded;
    }
    // Keywords in folder names, then in file names; else everything is `train`.
    const KEYWORDS: &[(&str, &[&str])] = &[
        ("train", &["train", "training"]),
        ("validation", &["validation", "valid", "dev", "val"]),
        ("test", &["test", "testing", "eval", "evaluation"]),
    ];
    for in_dir in [true, false] {
        let out: Vec<(String, Vec<String>)> = KEYWORDS
            .iter()
            .map(|(split, kws)| {
                let m = data
                    .iter()
                    .filter(|f| kws.iter().any(|k| keyword_match(f, k, in_dir)))
                    .map(|f| f.to_string())
                    .collect();
                (split.to_string(), m)
            })
            .filter(|(_, m): &(String, Vec<String>)| !m.is_empty())
            .collect();
        if !out.is_empty() {
            return out;
        }
    }
    if data.is_empty() {
        return Vec::new();
    }
    vec![("train".into(), data.iter().map(|f| f.to_string()).collect())]
}

/// `data/{split}-NNNNN-of-NNNNN*.*` gives `split`.
fn sharded_split(f: &str) -> Option<String> {
    let name = f.strip_prefix("data/")?;
    if name.contains('/') {
        return None;
    }
    let b = name.as_bytes();
    // Find "-DDDDD-of-DDDDD" after a non-empty split name (bytes, at char boundaries only:
    // file names need not be ASCII).
    name.char_indices().skip(1).find_map(|(i, _)| {
        let rest = &b[i..];
        let ok = rest.len() >= 15
            && rest[0] == b'-'
            && rest[1..6].iter().all(u8::is_ascii_digit)
            && &rest[6..10] == b"-of-"
            && rest[10..15].iter().all(u8::is_ascii_digit)
            && rest[15..].contains(&b'.');
        let split = &name[..i];
        (ok && split
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '.'))
        .then(|| split.to_string())
    })
}

/// The `datasets` keyword patterns: `{kw}[sep]*` / `*[sep]{kw}[sep]*` on the file name, or a
/// folder named `{kw}`, `{kw}[sep]*`, `*[sep]{kw}`, `*[sep]{kw}[sep]*`; sep is `-._ 0-9`.
fn keyword_match(f: &str, kw: &str, in_dir: bool) -> bool {
    let sep = |c: char| matches!(c, '-' | '.' | '_' | ' ') || c.is_ascii_digit();
    let comps: Vec<&str> = f.split('/').collect();
    let Some((file, dirs)) = comps.split_last() else {
        return false;
    };
    let around = |s: &str, need_after: bool| {
        s.match_indices(kw).any(|(i, _)| {
            let before_ok = i == 0 || s[..i].chars().next_back().is_some_and(sep);
            let after = &s[i + kw.len()..];
            let after_ok = match after.chars().next() {
                Some(c) => sep(c),
                None => !need_after,
            };
            before_ok && after_ok
        })
    };
    if in_dir {
        dirs.iter().any(|d| around(d, false))
    } else {
        around(file, true)
    }
}

/// The first config's `data_files` in a dataset card's YAML header: `(split, patterns)`.
fn readme_splits(readme: &str) -> Option<Vec<(String, Vec<String>)>> {
    let body = readme.strip_prefix("---")?;
    let header = &body[..body.find("\n---")?];
    let mut lines = header.lines().skip_while(|l| l.trim_end() != "configs:");
    lines.next()?;
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    let mut configs_seen = 0;
    let mut in_data_files = false;
    for line in lines {
        if !line.starts_with([' ', '-']) && !line.trim().is_empty() {
            break; // the next top-level key
        }
        let t = line.trim();
        let unquote = |s: &str| s.trim().trim_matches(['"', '\'']).to_string();
        if let Some(rest) = t.strip_prefix("- config_name:") {
            configs_seen += 1;
            if configs_seen > 1 {
                break; // only the first (default) config
            }
            let _ = rest;
            in_data_files = false;
        } else if t == "data_files:" {
            in_data_files = true;
        } else if in_data_files {
            if let Some(s) = t.strip_prefix("- split:") {
                out.push((unquote(s), Vec::new()));
            } else if let Some(p) = t.strip_prefix("path:") {
                if let Some(last) = out.last_mut() {
                    if !p.trim().is_empty() {
                        last.1.push(unquote(p));
                    }
                }
            } else if let Some(p) = t.strip_prefix("- ") {
                if let Some(last) = out.last_mut() {
                    last.1.push(unquote(p));
                }
            } else if !line.starts_with("    ") && !line.starts_with("  -") {
                in_data_files = false;
            }
        }
    }
    (!out.is_empty()).then_some(out)
}

/// fsspec-style glob: `**` crosses folders, `*` and `?` do not, `[...]` a class.
pub fn glob_match(pattern: &str, path: &str) -> bool {
    fn go(p: &[char], s: &[char]) -> bool {
        match p.first() {
            None => s.is_empty(),
            Some('*') if p.get(1) == Some(&'*') => {
                let rest = if p.get(2) == Some(&'/') {
                    &p[3..]
                } else {
                    &p[2..]
                };
                (0..=s.len()).any(|i| go(rest, &s[i..])) || go(&p[2..], s)
            }
            Some('*') => (0..=s.len())
                .take_while(|&i| i == 0 || s[i - 1] != '/')
                .any(|i| go(&p[1..], &s[i..])),
            Some('?') => s.first().is_some_and(|c| *c != '/') && go(&p[1..], &s[1..]),
            Some('[') => {
                let Some(end) = p.iter().position(|c| *c == ']') else {
                    return s.first() == Some(&'[') && go(&p[1..], &s[1..]);
                };
                let class = &p[1..end];
                let (neg, class) = match class.first() {
                    Some('!' | '^') => (true, &class[1..]),
                    _ => (false, class),
                };
                let Some(&c) = s.first() else { return false };
                let mut hit = false;
                let mut i = 0;
                while i < class.len() {
                    if i + 2 < class.len() && class[i + 1] == '-' {
                        hit |= class[i] <= c && c <= class[i + 2];
                        i += 3;
                    } else {
                        hit |= class[i] == c;
                        i += 1;
                    }
                }
                hit != neg && go(&p[end + 1..], &s[1..])
            }
            Some(&c) => s.first() == Some(&c) && go(&p[1..], &s[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = path.chars().collect();
    go(&p, &s)
}

/// The splits to read: the one named, else all (in order).
pub(super) fn select_splits(
    path: &Path,
    splits: Vec<(String, Vec<String>)>,
    split: Option<&str>,
) -> Result<Vec<(String, Vec<String>)>, DataError> {
    let splits: Vec<_> = splits.into_iter().filter(|(_, f)| !f.is_empty()).collect();
    if splits.is_empty() {
        return Err(DataError::NoDataFiles {
            path: path.to_path_buf(),
        });
    }
    match split {
        None => Ok(splits),
        Some(want) => {
            let available = splits
                .iter()
                .map(|(s, _)| s.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            splits
                .into_iter()
                .find(|(s, _)| s == want)
                .map(|x| vec![x])
                .ok_or_else(|| DataError::NoSplit {
                    path: path.to_path_buf(),
                    split: want.to_string(),
                    available,
                })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_inference_as_datasets_does() {
        let f = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let names =
            |v: Vec<(String, Vec<String>)>| v.into_iter().map(|(s, _)| s).collect::<Vec<_>>();
        // Sharded names: train/validation/test first, then the others sorted.
        let got = split_files(
            &f(&[
                "data/zeta-00000-of-00001.parquet",
                "data/test-00000-of-00002.parquet",
                "data/alpha-00000-of-00001-abc.parquet",
                "README.md",
            ]),
            None,
        );
        assert_eq!(names(got), ["test", "alpha", "zeta"]);
        // Keywords in folder names win over file names; `valid` counts as validation.
        let got = split_files(&f(&["train/a.jsonl", "valid/b.jsonl", "x_test.csv"]), None);
        assert_eq!(names(got), ["train", "validation"]);
        let got = split_files(&f(&["my_train.json", "eval-2.json", "contest.json"]), None);
        assert_eq!(
            got,
            vec![
                ("train".into(), f(&["my_train.json"])),
                ("test".into(), f(&["eval-2.json"]))
            ]
        );
        assert_eq!(names(split_files(&f(&["rows.jsonl"]), None)), ["train"]);
        // README configs: their order and globs.
        let readme = "---\nconfigs:\n- config_name: default\n  data_files:\n  - split: b\n    path: d/b-*\n  - split: a\n    path:\n    - d/a1.parquet\n    - d/a2.parquet\ndataset_info:\n  splits:\n  - name: z\n---\n";
        let got = split_files(
            &f(&["d/a1.parquet", "d/a2.parquet", "d/b-0.parquet"]),
            Some(readme),
        );
        assert_eq!(
            got,
            vec![
                ("b".into(), f(&["d/b-0.parquet"])),
                ("a".into(), f(&["d/a1.parquet", "d/a2.parquet"]))
            ]
        );
        assert!(glob_match("data/**/*.parquet", "data/x/y/z.parquet"));
        assert!(!glob_match("data/*.parquet", "data/x/z.parquet"));
        assert!(glob_match("data/t[0-9].csv", "data/t7.csv"));
    }
}
