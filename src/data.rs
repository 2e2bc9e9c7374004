//! Datasets: preference rows in the three shapes RewardBench accepts, and instruction rows,
//! from local JSON / JSONL / parquet / CSV files, local folders of such files, and hub
//! datasets (parquet shards per split, downloaded into the hub cache).
//!
//! * core set: `prompt` string, `chosen` / `rejected` strings;
//! * pref sets: `prompt` a list of messages, `chosen` / `rejected` strings;
//! * conversations: `chosen` / `rejected` message lists, the prompt being all but the last;
//! * instruction data: a `messages` list and no `chosen` / `rejected` (scored, not ranked).
//!
//! Splits are found as the `datasets` library finds them: the README's `configs` (first
//! config), else file names (`data/{split}-00000-of-00001.parquet`, then train / validation /
//! test keywords, else everything is `train`). No split asked for means all splits, in order.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::hub::{self, Hub, HubError, RepoKind, RepoRef};
use crate::parquet_rows::{self, ParquetError};
pub use crate::template::Message;

/// The core set's hub id; its default split is `filtered`.
pub const CORE_SET: &str = "allenai/reward-bench";
/// The prior preference sets' hub id (`--pref_sets`).
pub const PREF_SETS: &str = "allenai/pref-test-sets";
/// The pref sets' other name, used by the reference loader.
const PREF_SETS_ALIAS: &str = "allenai/preference-test-sets";
/// Pref-set splits the reference drops.
const PREF_SETS_DROPPED: &[&str] = &["pku_better", "pku_safer"];

/// Errors of the data stage; each names the file and, where there is one, the line and field.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot read dataset {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {place}: invalid JSON: {message}")]
    Json {
        path: PathBuf,
        place: String,
        message: String,
    },
    #[error("{path}: {place}: not valid UTF-8")]
    Utf8 { path: PathBuf, place: String },
    #[error("{path}: {place}: field `{field}`: {problem}")]
    Field {
        path: PathBuf,
        place: String,
        field: String,
        problem: String,
    },
    #[error("{path}: {place}: {problem}")]
    Row {
        path: PathBuf,
        place: String,
        problem: String,
    },
    #[error("{path}: the dataset has no rows")]
    Empty { path: PathBuf },
    #[error("{path}: invalid CSV: {message}")]
    Csv { path: PathBuf, message: String },
    #[error(transparent)]
    Parquet(#[from] ParquetError),
    #[error("dataset {name}: {source}")]
    Hub { name: String, source: HubError },
    #[error("{path}: no data files (.parquet, .json, .jsonl, .csv) found")]
    NoDataFiles { path: PathBuf },
    #[error("{path}: split `{split}` not found; available splits: {available}")]
    NoSplit {
        path: PathBuf,
        split: String,
        available: String,
    },
    #[error(
        "{path}: dataset format not recognized: a preference dataset needs `chosen` and `rejected` columns, \
         an instruction dataset a `messages` column; found columns: {columns}"
    )]
    Format { path: PathBuf, columns: String },
    #[error("{path}: this is instruction data (`messages`, no `chosen`/`rejected`): it is scored row by row, not as preference pairs")]
    Instructions { path: PathBuf },
}

/// The prompt of a preference row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prompt {
    Text(String),
    Messages(Vec<Message>),
}

/// One preference row.
#[derive(Debug, Clone)]
pub struct Pair {
    pub prompt: Prompt,
    pub chosen: String,
    pub rejected: String,
    /// Every other column, in file order (the original `chosen`/`rejected` as strings).
    pub metadata: Map<String, Value>,
    /// Where the row came from, for messages (e.g. `line 7`).
    pub place: String,
}

/// A loaded preference dataset.
#[derive(Debug)]
pub struct Dataset {
    pub path: PathBuf,
    pub rows: Vec<Pair>,
}

/// One instruction row: a conversation scored as a whole.
#[derive(Debug, Clone)]
pub struct InstructionRow {
    pub messages: Vec<Message>,
    /// `messages[0].content`, as the reference records it.
    pub prompt: String,
    /// Every column but `prompt`, in file order.
    pub metadata: Map<String, Value>,
    pub place: String,
}

/// A loaded instruction dataset.
#[derive(Debug)]
pub struct InstructionSet {
    pub path: PathBuf,
    pub rows: Vec<InstructionRow>,
}

/// A dataset of either kind.
#[derive(Debug)]
pub enum Loaded {
    Preference(Dataset),
    Instructions(InstructionSet),
}

/// Where rows come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A file, or a folder of data files (a hub snapshot is one).
    Local(PathBuf),
    /// A hub dataset at a revision (default `main`).
    Hub {
        repo: String,
        revision: Option<String>,
    },
}

/// A dataset and the split wanted (`None`: all splits, concatenated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetSpec {
    pub source: Source,
    pub split: Option<String>,
}

/// Data file extensions read (as `datasets` would, by extension).
const DATA_EXTENSIONS: &[&str] = &["parquet", "jsonl", "json", "csv"];

fn is_data_file(name: &str) -> bool {
    Path::new(name)
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| DATA_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// True for a name that reads as a hub dataset id (`org/name`, `org/name@revision` or
/// `hf://datasets/org/name`) rather than a local file.
pub fn looks_like_hub_id(name: &str) -> bool {
    matches!(DatasetSpec::parse(name, None).source, Source::Hub { .. })
}

impl DatasetSpec {
    /// Reads `--dataset`: an existing local path, `hf://datasets/ORG/NAME[@REV]`, or
    /// `ORG/NAME[@REV]`; a `?split=S` suffix (as [`DatasetSpec::to_path`] writes) sets the
    /// split unless `split` is given.
    pub fn parse(name: &str, split: Option<&str>) -> Self {
        let with = |source, s: Option<&str>| Self {
            source,
            split: split.or(s).map(str::to_string),
        };
        if Path::new(name).exists() {
            return with(Source::Local(PathBuf::from(name)), None);
        }
        let (base, from_suffix) = match name.rsplit_once("?split=") {
            Some((b, s)) if !s.is_empty() => (b, Some(s)),
            _ => (name, None),
        };
        if base != name && Path::new(base).exists() {
            return with(Source::Local(PathBuf::from(base)), from_suffix);
        }
        let (id, explicit) = match base.strip_prefix("hf://datasets/") {
            Some(rest) => (rest, true),
            None => (base, false),
        };
        let (id, revision) = match id.split_once('@') {
            Some((i, r)) if !r.is_empty() => (i, Some(r.to_string())),
            _ => (id, None),
        };
        let hubby = hub::is_repo_id(id) && (explicit || (id.contains('/') && !is_data_file(id)));
        if hubby {
            with(
                Source::Hub {
                    repo: id.to_string(),
                    revision,
                },
                from_suffix,
            )
        } else {
            with(Source::Local(PathBuf::from(name)), None)
        }
    }

    /// The spec as one path-like string (for `EvalConfig::dataset`); [`DatasetSpec::parse`]
    /// reads it back.
    pub fn to_path(&self) -> PathBuf {
        let mut s = match &self.source {
            Source::Local(p) => p.display().to_string(),
            Source::Hub { repo, revision } => match revision {
                Some(r) => format!("hf://datasets/{repo}@{r}"),
                None => format!("hf://datasets/{repo}"),
            },
        };
        if let (Some(split), false) = (&self.split, self.is_local_file()) {
            s.push_str("?split=");
            s.push_str(split);
        }
        PathBuf::from(s)
    }

    /// The spec written by [`DatasetSpec::to_path`].
    pub fn from_path(path: &Path) -> Self {
        Self::parse(&path.to_string_lossy(), None)
    }

    fn is_local_file(&self) -> bool {
        matches!(&self.source, Source::Local(p) if p.is_file())
    }

    /// The hub id this data comes from: the hub source, or the repo of a hub-cache snapshot.
    pub fn repo_id(&self) -> Option<String> {
        match &self.source {
            Source::Hub { repo, .. } => Some(repo.clone()),
            Source::Local(p) => match hub::repo_of_cache_path(p) {
                Some((RepoKind::Dataset, id)) => Some(id),
                _ => None,
            },
        }
    }

    /// The split to read: the one asked for, else `filtered` for the core set, else all.
    pub fn effective_split(&self) -> Option<String> {
        self.split.clone().or_else(|| {
            (self.repo_id().as_deref() == Some(CORE_SET)).then(|| "filtered".to_string())
        })
    }

    fn is_pref_sets(&self) -> bool {
        matches!(self.repo_id().as_deref(), Some(PREF_SETS | PREF_SETS_ALIAS))
    }
}

/// Downloads (or finds in the cache) the files a hub dataset spec needs and returns the
/// equivalent local spec: the snapshot folder and the split. Local specs come back as given.
pub fn resolve(spec: &DatasetSpec, hub: &Hub) -> Result<DatasetSpec, DataError> {
    let Source::Hub { repo, revision } = &spec.source else {
        return Ok(spec.clone());
    };
    let hub_err = |source| DataError::Hub {
        name: repo.clone(),
        source,
    };
    let r = RepoRef::new(repo, RepoKind::Dataset, revision.as_deref());
    let snap = hub.snapshot(&r).map_err(hub_err)?;
    let readme = match snap.files.iter().any(|f| f == "README.md") {
        true => {
            let p = hub.fetch(&snap, "README.md").map_err(hub_err)?;
            std::fs::read_to_string(p).ok()
        }
        false => None,
    };
    let shown = PathBuf::from(format!("hf://datasets/{repo}"));
    let split = spec.effective_split();
    let splits = split_files(&snap.files, readme.as_deref());
    let wanted = select_splits(&shown, splits, split.as_deref())?;
    let mut dir = hub.snapshot_dir(&r, &snap.commit);
    for (_, files) in &wanted {
        for f in files {
            let local = hub.fetch(&snap, f).map_err(hub_err)?;
            // The snapshot folder the files landed in (the commit the download resolved to).
            if let Some(d) = local.ancestors().nth(f.split('/').count()) {
                dir = d.to_path_buf();
            }
        }
    }
    Ok(DatasetSpec {
        source: Source::Local(dir),
        split,
    })
}

/// Loads a dataset of either kind. Hub specs are resolved with the environment's hub
/// settings. `prioritize_scoring`: rows with `messages` are instruction data even when they
/// also have `chosen`/`rejected` (the reference's `--prioritize_scoring`).
pub fn load(spec: &DatasetSpec, prioritize_scoring: bool) -> Result<Loaded, DataError> {
    let local = match &spec.source {
        Source::Local(_) => spec.clone(),
        Source::Hub { repo, .. } => {
            let hub = Hub::from_env().map_err(|source| DataError::Hub {
                name: repo.clone(),
                source,
            })?;
            resolve(spec, &hub)?
        }
    };
    let (path, raw) = read_rows(&local)?;
    let Some((_, first)) = raw.first() else {
        return Err(DataError::Empty { path });
    };
    let columns: Vec<String> = first.keys().cloned().collect();
    let has = |c: &str| columns.iter().any(|k| k == c);
    let has_pref = has("chosen") && has("rejected");
    let has_instr = has("messages");
    let instructions = if prioritize_scoring && has_instr {
        true
    } else if has_pref {
        false
    } else if has_instr {
        true
    } else if has("chosen") || has("rejected") {
        false // a preference row missing a field: the row's error names it
    } else {
        return Err(DataError::Format {
            path,
            columns: columns.join(", "),
        });
    };
    if instructions {
        let rows = raw
            .into_iter()
            .map(|(place, obj)| InstructionRow::from_json(&path, place, obj))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(Loaded::Instructions(InstructionSet { path, rows }));
    }
    let rows = raw
        .into_iter()
        .map(|(place, obj)| Pair::from_json(&path, place, Value::Object(obj)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Loaded::Preference(Dataset { path, rows }))
}

impl Dataset {
    /// Loads preference data from a spec (hub specs with the environment's hub settings).
    pub fn open(spec: &DatasetSpec) -> Result<Self, DataError> {
        match load(spec, false)? {
            Loaded::Preference(d) => Ok(d),
            Loaded::Instructions(set) => Err(DataError::Instructions { path: set.path }),
        }
    }

    /// Loads a local JSON (array of objects, or JSON lines), JSONL, parquet or CSV file, or a
    /// folder of them.
    pub fn load(path: &Path) -> Result<Self, DataError> {
        Self::open(&DatasetSpec {
            source: Source::Local(path.to_path_buf()),
            split: None,
        })
    }
}

type RawRow = (String, Map<String, Value>);

/// The rows of a local spec, with the pref-set rules applied; also the path errors name.
fn read_rows(spec: &DatasetSpec) -> Result<(PathBuf, Vec<RawRow>), DataError> {
    let Source::Local(path) = &spec.source else {
        return Err(DataError::Io {
            path: spec.to_path(),
            source: std::io::Error::other("a hub dataset must be resolved before it is read"),
        });
    };
    if path.is_file() {
        return Ok((path.clone(), read_file(path, "")?));
    }
    if !path.is_dir() {
        return Err(DataError::Io {
            path: path.clone(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or folder"),
        });
    }
    let mut listing = Vec::new();
    list_data_dir(path, "", &mut listing);
    listing.sort();
    let readme = std::fs::read_to_string(path.join("README.md")).ok();
    let splits = split_files(&listing, readme.as_deref());
    let wanted = select_splits(path, splits, spec.effective_split().as_deref())?;
    let pref = spec.is_pref_sets();
    let explicit = spec.split.is_some();
    let mut rows = Vec::new();
    for (split, files) in wanted {
        if pref && !explicit && PREF_SETS_DROPPED.contains(&split.as_str()) {
            continue;
        }
        for f in files {
            for (place, mut obj) in read_file(&path.join(&f), &f)? {
                if pref {
                    // The reference's pref-set loader: the split becomes the subset.
                    if let Some(inner) = obj.remove("subset") {
                        obj.insert("subsubset".into(), inner);
                    }
                    obj.insert("subset".into(), Value::String(split.clone()));
                }
                rows.push((place, obj));
            }
        }
    }
    Ok((path.clone(), rows))
}

/// Data files under `dir` (relative, `/`-separated), skipping hidden entries.
fn list_data_dir(dir: &Path, prefix: &str, out: &mut Vec<String>) {
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

/// Reads one file by extension; `label` (the repo-relative name, or empty for a single file)
/// prefixes each row's place.
fn read_file(path: &Path, label: &str) -> Result<Vec<RawRow>, DataError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let placed = |p: String| {
        if label.is_empty() {
            p
        } else {
            format!("{label} {p}")
        }
    };
    let values: Vec<(String, Value)> = match ext.as_str() {
        "parquet" => parquet_rows::read_rows(path)?
            .into_iter()
            .enumerate()
            .map(|(i, m)| (format!("row {}", i + 1), Value::Object(m)))
            .collect(),
        "csv" => read_csv(path)?,
        _ => {
            let bytes = std::fs::read(path).map_err(|source| DataError::Io {
                path: path.to_path_buf(),
                source,
            })?;
            parse_objects(path, &bytes)?
        }
    };
    values
        .into_iter()
        .map(|(place, v)| match v {
            Value::Object(m) => Ok((placed(place), m)),
            other => Err(DataError::Row {
                path: path.to_path_buf(),
                place: placed(place),
                problem: format!("expected a JSON object, found {}", kind(&other)),
            }),
        })
        .collect()
}

/// CSV rows as objects; a column whose cells all parse as integers (or numbers) holds numbers,
/// as pandas would type it; empty cells are null.
fn read_csv(path: &Path) -> Result<Vec<(String, Value)>, DataError> {
    let err = |e: csv::Error| DataError::Csv {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let mut r = csv::Reader::from_path(path).map_err(err)?;
    let headers: Vec<String> = r.headers().map_err(err)?.iter().map(String::from).collect();
    let mut cells: Vec<(u64, Vec<String>)> = Vec::new();
    for rec in r.records() {
        let rec = rec.map_err(err)?;
        let line = rec.position().map_or(0, |p| p.line());
        cells.push((line, rec.iter().map(String::from).collect()));
    }
    let typed: Vec<fn(&str) -> Option<Value>> = (0..headers.len())
        .map(|c| {
            let col = cells
                .iter()
                .filter_map(|(_, row)| row.get(c))
                .filter(|s| !s.is_empty());
            let ints = col.clone().all(|s| s.parse::<i64>().is_ok());
            let floats = col.clone().all(|s| s.parse::<f64>().is_ok());
            let any = col.count() > 0;
            let f: fn(&str) -> Option<Value> = if any && ints {
                |s| s.parse::<i64>().ok().map(Value::from)
            } else if any && floats {
                |s| s.parse::<f64>().ok().map(Value::from)
            } else {
                |s| Some(Value::String(s.to_string()))
            };
            f
        })
        .collect();
    Ok(cells
        .into_iter()
        .map(|(line, row)| {
            let obj: Map<String, Value> = headers
                .iter()
                .enumerate()
                .map(|(c, h)| {
                    let cell = row.get(c).map(String::as_str).unwrap_or("");
                    let v = if cell.is_empty() {
                        Value::Null
                    } else {
                        typed[c](cell).unwrap_or(Value::Null)
                    };
                    (h.clone(), v)
                })
                .collect();
            (format!("line {line}"), Value::Object(obj))
        })
        .collect())
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
fn select_splits(
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

impl InstructionRow {
    fn from_json(path: &Path, place: String, obj: Map<String, Value>) -> Result<Self, DataError> {
        let field_err = |problem: String| DataError::Field {
            path: path.to_path_buf(),
            place: place.clone(),
            field: "messages".into(),
            problem,
        };
        let messages = match obj.get("messages") {
            Some(Value::Array(list)) => messages(list).map_err(field_err)?,
            Some(other) => {
                return Err(field_err(format!(
                    "expected a list of messages, found {}",
                    kind(other)
                )))
            }
            None => return Err(field_err("is missing".into())),
        };
        let Some(first) = messages.first() else {
            return Err(field_err("is an empty message list".into()));
        };
        let prompt = first.content.clone();
        let metadata = obj.into_iter().filter(|(k, _)| k != "prompt").collect();
        Ok(Self {
            messages,
            prompt,
            metadata,
            place,
        })
    }
}

/// Splits a file into (place, JSON value): a top-level array, else one value per non-blank line.
fn parse_objects(path: &Path, bytes: &[u8]) -> Result<Vec<(String, Value)>, DataError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'[') {
        let text = std::str::from_utf8(bytes).map_err(|e| DataError::Utf8 {
            path: path.to_path_buf(),
            place: format!("byte {}", e.valid_up_to()),
        })?;
        let values: Vec<Value> = serde_json::from_str(text).map_err(|e| DataError::Json {
            path: path.to_path_buf(),
            place: format!("line {}, column {}", e.line(), e.column()),
            message: e.to_string(),
        })?;
        return Ok(values
            .into_iter()
            .enumerate()
            .map(|(i, v)| (format!("row {}", i + 1), v))
            .collect());
    }
    let mut out = Vec::new();
    for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
        let place = format!("line {}", i + 1);
        let line = std::str::from_utf8(line).map_err(|_| DataError::Utf8 {
            path: path.to_path_buf(),
            place: place.clone(),
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line).map_err(|e| DataError::Json {
            path: path.to_path_buf(),
            place: format!("{place}, column {}", e.column()),
            message: e.to_string(),
        })?;
        out.push((place, v));
    }
    Ok(out)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

impl Pair {
    fn from_json(path: &Path, place: String, value: Value) -> Result<Self, DataError> {
        let field_err = |field: &str, problem: String| DataError::Field {
            path: path.to_path_buf(),
            place: place.clone(),
            field: field.to_string(),
            problem,
        };
        let Value::Object(obj) = value else {
            return Err(DataError::Row {
                path: path.to_path_buf(),
                place: place.clone(),
                problem: format!("expected a JSON object, found {}", kind(&value)),
            });
        };
        // The reference renames `question`, else `input`, to `prompt`.
        let obj = if obj.contains_key("prompt") {
            obj
        } else if obj.contains_key("question") {
            rename(obj, "question", "prompt")
        } else if obj.contains_key("input") {
            rename(obj, "input", "prompt")
        } else {
            obj
        };
        for field in ["chosen", "rejected"] {
            if !obj.contains_key(field) {
                let problem = if obj.contains_key("messages") {
                    "is missing (rows with `messages` and no `chosen`/`rejected` are instruction data; they must all be so)".to_string()
                } else {
                    "is missing (a preference row needs `prompt`, `chosen` and `rejected`)"
                        .to_string()
                };
                return Err(field_err(field, problem));
            }
        }

        let mut prompt = None;
        let mut answers: [String; 2] = Default::default();
        for (slot, field) in ["chosen", "rejected"].into_iter().enumerate() {
            match &obj[field] {
                Value::String(s) => answers[slot] = s.clone(),
                Value::Array(list) => {
                    let msgs = messages(list).map_err(|p| field_err(field, p))?;
                    let Some((last, head)) = msgs.split_last() else {
                        return Err(field_err(field, "is an empty message list".into()));
                    };
                    answers[slot] = last.content.clone();
                    if slot == 0 {
                        prompt = Some(Prompt::Messages(head.to_vec()));
                    }
                }
                other => {
                    return Err(field_err(
                        field,
                        format!(
                            "expected a string or a list of messages, found {}",
                            kind(other)
                        ),
                    ))
                }
            }
        }
        let conversation = prompt.is_some();
        if !conversation {
            prompt = Some(match obj.get("prompt") {
                Some(Value::String(s)) => Prompt::Text(s.clone()),
                Some(Value::Array(list)) => {
                    Prompt::Messages(messages(list).map_err(|p| field_err("prompt", p))?)
                }
                Some(other) => {
                    return Err(field_err(
                        "prompt",
                        format!(
                            "expected a string or a list of messages, found {}",
                            kind(other)
                        ),
                    ))
                }
                None => return Err(field_err("prompt", "is missing".into())),
            });
        }
        let [chosen, rejected] = answers;
        let mut metadata = Map::new();
        for (k, v) in obj {
            match k.as_str() {
                "prompt" => {}
                "chosen" => {
                    metadata.insert(k, Value::String(chosen.clone()));
                }
                "rejected" => {
                    metadata.insert(k, Value::String(rejected.clone()));
                }
                _ => {
                    metadata.insert(k, v);
                }
            }
        }
        Ok(Self {
            prompt: prompt.unwrap_or(Prompt::Text(String::new())),
            chosen,
            rejected,
            metadata,
            place,
        })
    }

    /// The `subset` column, if the row has one.
    pub fn subset(&self) -> Option<&str> {
        self.metadata.get("subset").and_then(Value::as_str)
    }
}

fn rename(obj: Map<String, Value>, from: &str, to: &str) -> Map<String, Value> {
    obj.into_iter()
        .map(|(k, v)| {
            if k == from {
                (to.to_string(), v)
            } else {
                (k, v)
            }
        })
        .collect()
}

fn messages(list: &[Value]) -> Result<Vec<Message>, String> {
    list.iter()
        .enumerate()
        .map(|(i, m)| {
            let content = match m.get("content") {
                Some(Value::String(s)) => s.clone(),
                Some(other) => {
                    return Err(format!(
                        "message {i}: `content` is {}, expected a string",
                        kind(other)
                    ))
                }
                None if m.is_object() => return Err(format!("message {i} has no `content`")),
                None => {
                    return Err(format!(
                        "message {i} is {}, expected an object with `role` and `content`",
                        kind(m)
                    ))
                }
            };
            let role = m.get("role").and_then(Value::as_str).unwrap_or("user");
            Ok(Message::new(role, &content))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn load(text: &str, ext: &str) -> Result<Dataset, DataError> {
        let mut f = tempfile::Builder::new().suffix(ext).tempfile().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        Dataset::load(f.path())
    }

    #[test]
    fn three_shapes() {
        let d = load(
            concat!(
                r#"{"prompt": "P", "chosen": "a", "rejected": "b", "subset": "s", "id": 1}"#, "\n",
                r#"{"prompt": [{"role": "system", "content": "S"}], "chosen": "a", "rejected": "b"}"#, "\n",
                r#"{"chosen": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}], "rejected": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "B"}], "id": 3}"#, "\n",
            ),
            ".jsonl",
        )
        .unwrap();
        assert_eq!(d.rows.len(), 3);
        assert_eq!(d.rows[0].prompt, Prompt::Text("P".into()));
        assert_eq!(
            d.rows[0].metadata.keys().collect::<Vec<_>>(),
            ["chosen", "rejected", "subset", "id"]
        );
        assert_eq!(
            d.rows[1].prompt,
            Prompt::Messages(vec![Message::new("system", "S")])
        );
        assert_eq!(
            d.rows[2].prompt,
            Prompt::Messages(vec![Message::new("user", "Q")])
        );
        assert_eq!(
            (d.rows[2].chosen.as_str(), d.rows[2].rejected.as_str()),
            ("A", "B")
        );
        assert_eq!(d.rows[2].metadata["chosen"], "A");
    }

    #[test]
    fn json_array_and_question_rename() {
        let d = load(
            r#"[{"question": "Q", "chosen": "a", "rejected": "b"}]"#,
            ".json",
        )
        .unwrap();
        assert_eq!(d.rows[0].prompt, Prompt::Text("Q".into()));
    }

    #[test]
    fn errors_name_line_and_field() {
        let e = load(
            "{\"prompt\": \"p\", \"chosen\": \"a\", \"rejected\": \"b\"}\n{oops\n",
            ".jsonl",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("line 2") && e.contains("invalid JSON"), "{e}");
        let e = load("{\"prompt\": \"p\", \"rejected\": \"b\"}\n", ".jsonl")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 1") && e.contains("`chosen`"), "{e}");
        let e = load(
            "{\"prompt\": \"p\", \"chosen\": 3, \"rejected\": \"b\"}\n",
            ".jsonl",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("`chosen`") && e.contains("a number"), "{e}");
        let e = load("\n\n", ".jsonl").unwrap_err().to_string();
        assert!(e.contains("no rows"), "{e}");
        let e = load(
            "{\"prompt\": \"p\", \"chosen\": \"\u{0}\", \"rejected\": \"b\"}\n\u{ff}",
            ".jsonl",
        );
        assert!(e.is_err());
    }

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

    #[test]
    fn specs_read_back() {
        let s = DatasetSpec::parse("allenai/reward-bench", None);
        assert_eq!(s.effective_split().as_deref(), Some("filtered"));
        let s = DatasetSpec::parse("org/data@v1.0", Some("test"));
        assert_eq!(
            s.source,
            Source::Hub {
                repo: "org/data".into(),
                revision: Some("v1.0".into())
            }
        );
        assert_eq!(DatasetSpec::from_path(&s.to_path()), s);
        assert!(!looks_like_hub_id("missing/rows.jsonl") && looks_like_hub_id("hf://datasets/x"));
    }
}
