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
//!
//! `spec` says where rows come from, `splits` which files make each split, `read` turns
//! files into raw JSON objects and `rows` turns those into [`Pair`]s and [`InstructionRow`]s.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::hub::{Hub, HubError};

pub mod bon;
pub mod parquet;
mod read;
mod rows;
mod spec;
mod splits;

use self::parquet::ParquetError;
pub use read::local_split_names;
use read::read_rows;
pub use spec::{looks_like_hub_id, resolve, results_folder, DatasetSpec, Source};
pub use splits::{glob_match, split_files};

/// The core set's hub id; its default split is `filtered`.
pub const CORE_SET: &str = "allenai/reward-bench";
/// RewardBench 2's hub id (`rewardbench v2`'s default; split `test`).
pub const RB2: &str = "allenai/reward-bench-2";
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
    #[error("{path}: the file is {format}-compressed; decompress it first (gzip, `.gz`, is read as it is)")]
    Compressed { path: PathBuf, format: String },
    #[error("{path}: the file is {encoding} text; save it as UTF-8")]
    Encoding { path: PathBuf, encoding: String },
    #[error("{path}: not valid gzip data: {source}")]
    Gzip {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Parquet(#[from] ParquetError),
    #[error("{}", crate::hub::prefixed(&format!("dataset {name}"), source))]
    Hub { name: String, source: Box<HubError> },
    #[error("no local file or folder {name}, and as a hub id: {source}")]
    NoFileNorRepo { name: String, source: Box<HubError> },
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

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn new(role: &str, content: &str) -> Self {
        Self {
            role: role.to_string(),
            content: content.to_string(),
        }
    }
}

/// The prompt of a preference row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prompt {
    /// A single user turn.
    Text(String),
    /// Turns whose roles go by position (the last one is the user's).
    Messages(Vec<Message>),
    /// A whole conversation, roles as given, scored as one text (instruction data).
    Conversation(Vec<Message>),
}

/// One sample: a prompt with its chosen and rejected completions (a v1 preference row has
/// one of each), or a conversation scored whole (instruction data, no completions).
#[derive(Debug, Clone)]
pub struct Sample {
    pub prompt: Prompt,
    pub chosen: Vec<String>,
    pub rejected: Vec<String>,
    /// Every other column, in file order (the original `chosen`/`rejected` as strings).
    pub metadata: Map<String, Value>,
    /// Where the row came from, for messages (e.g. `line 7`).
    pub place: String,
}

/// The earlier name of [`Sample`].
pub type Pair = Sample;

/// A loaded dataset.
#[derive(Debug)]
pub struct Dataset {
    pub path: PathBuf,
    pub rows: Vec<Sample>,
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

impl InstructionRow {
    /// The row as a sample: its conversation, no completions; the columns after `prompt`.
    pub fn into_sample(self) -> Sample {
        Sample {
            prompt: Prompt::Conversation(self.messages),
            chosen: Vec::new(),
            rejected: Vec::new(),
            metadata: self.metadata,
            place: self.place,
        }
    }
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

/// Data file extensions read (as `datasets` would, by extension).
const DATA_EXTENSIONS: &[&str] = &["parquet", "jsonl", "json", "csv"];

/// A data file by its extension, also gzip-compressed (`rows.jsonl.gz`), as `datasets` reads it.
fn is_data_file(name: &str) -> bool {
    let ext = |p: &Path| {
        p.extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
    };
    let p = Path::new(name);
    match ext(p).as_deref() {
        Some("gz") => p
            .file_stem()
            .and_then(|stem| ext(Path::new(stem)))
            .is_some_and(|e| DATA_EXTENSIONS.contains(&e.as_str())),
        Some(e) => DATA_EXTENSIONS.contains(&e),
        None => false,
    }
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
                source: Box::new(source),
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
    let dataset = Dataset { path, rows };
    if dataset.is_best_of_n() {
        bon::check(&dataset.path, &dataset.rows)?;
    }
    Ok(Loaded::Preference(dataset))
}

impl Dataset {
    /// True when some row lists its completions (best-of-N, scored as RewardBench 2 scores).
    pub fn is_best_of_n(&self) -> bool {
        self.rows.iter().any(Sample::is_best_of_n)
    }

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
            pref_sets: false,
        })
    }
}

impl Pair {
    /// The `subset` column, if the row has one.
    pub fn subset(&self) -> Option<&str> {
        self.metadata.get("subset").and_then(Value::as_str)
    }

    /// A stable hash of the sample's content (prompt, chosen, rejected; not the template or
    /// other columns), 32 hex digits: `sample_hash` in the per-row outputs, so result files of
    /// different models can be checked to score the same rows.
    pub fn content_hash(&self) -> String {
        let mut d = crate::digest::Digest::default();
        let messages = |d: &mut crate::digest::Digest, kind: &str, ms: &[Message]| {
            d.field("prompt", kind.as_bytes());
            for m in ms {
                d.field("role", m.role.as_bytes());
                d.field("content", m.content.as_bytes());
            }
        };
        match &self.prompt {
            Prompt::Text(t) => {
                d.field("prompt", b"text").field("content", t.as_bytes());
            }
            Prompt::Messages(ms) => messages(&mut d, "messages", ms),
            Prompt::Conversation(ms) => messages(&mut d, "conversation", ms),
        }
        for c in &self.chosen {
            d.field("chosen", c.as_bytes());
        }
        for r in &self.rejected {
            d.field("rejected", r.as_bytes());
        }
        d.hex()
    }
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
            (d.rows[2].chosen[0].as_str(), d.rows[2].rejected[0].as_str()),
            ("A", "B")
        );
        assert_eq!(d.rows[2].metadata["chosen"], "A");
    }

    fn load_bytes(bytes: &[u8], ext: &str) -> Result<Dataset, DataError> {
        let mut f = tempfile::Builder::new().suffix(ext).tempfile().unwrap();
        f.write_all(bytes).unwrap();
        Dataset::load(f.path())
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    const TWO: &str = concat!(
        r#"{"prompt": "P1", "chosen": "a", "rejected": "b", "id": 1}"#,
        "\n",
        r#"{"prompt": "P2", "chosen": "c", "rejected": "d", "id": 2}"#,
        "\n",
    );

    fn prompts(d: &Dataset) -> Vec<String> {
        d.rows
            .iter()
            .map(|r| match &r.prompt {
                Prompt::Text(t) => t.clone(),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn a_utf8_bom_is_skipped_and_utf16_is_named() {
        let bom = |t: &str| [b"\xef\xbb\xbf".as_slice(), t.as_bytes()].concat();
        for (text, ext) in [
            (TWO.to_string(), ".jsonl"),
            (TWO.to_string(), ".json"),
            (
                r#"[{"prompt": "P1", "chosen": "a", "rejected": "b"}, {"prompt": "P2", "chosen": "c", "rejected": "d"}]"#.to_string(),
                ".json",
            ),
            ("prompt,chosen,rejected\nP1,a,b\nP2,c,d\n".to_string(), ".csv"),
        ] {
            let d = load_bytes(&bom(&text), ext).unwrap_or_else(|e| panic!("{ext}: {e}"));
            assert_eq!(prompts(&d), ["P1", "P2"], "{ext}");
            assert!(d.rows[0].metadata.contains_key("chosen"), "{ext}: first column named without the BOM");
        }
        let utf16: Vec<u8> = [0xff, 0xfe]
            .into_iter()
            .chain(TWO.encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        let e = load_bytes(&utf16, ".jsonl").unwrap_err().to_string();
        assert!(
            e.contains("UTF-16") && e.contains("save it as UTF-8"),
            "{e}"
        );
    }

    #[test]
    fn gzip_files_are_read_and_other_compression_is_named() {
        for ext in [".jsonl.gz", ".json.gz", ".jsonl"] {
            let d = load_bytes(&gzip(TWO.as_bytes()), ext).unwrap_or_else(|e| panic!("{ext}: {e}"));
            assert_eq!(prompts(&d), ["P1", "P2"], "{ext}");
        }
        let d = load_bytes(&gzip(b"prompt,chosen,rejected\nP1,a,b\n"), ".csv.gz").unwrap();
        assert_eq!(prompts(&d), ["P1"]);
        let e = load_bytes(b"BZh91AY&SY", ".jsonl.bz2")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("bz2-compressed") && e.contains("decompress"),
            "{e}"
        );
        let e = load_bytes(b"PK\x03\x04rest", ".zip")
            .unwrap_err()
            .to_string();
        assert!(e.contains("zip-compressed"), "{e}");
        let e = load_bytes(&gzip(b"x"), ".parquet.gz")
            .unwrap_err()
            .to_string();
        assert!(e.contains("compressed") && e.contains("parquet"), "{e}");
        let e = load_bytes(b"\x1f\x8bnot gzip", ".jsonl.gz")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not valid gzip"), "{e}");
        assert!(is_data_file("data/train-00000-of-00001.jsonl.gz") && !is_data_file("a.tar.gz"));
    }

    #[test]
    fn a_json_object_of_columns_is_read_as_rows() {
        let d = load(
            r#"{"prompt": ["P1", "P2"], "chosen": ["a", "c"], "rejected": ["b", "d"], "subset": ["s", "t"]}"#,
            ".json",
        )
        .unwrap();
        assert_eq!(prompts(&d), ["P1", "P2"]);
        assert_eq!(d.rows[1].chosen, ["c"]);
        assert_eq!(d.rows[1].subset(), Some("t"));
        assert_eq!(d.rows[1].place, "row 2");
        // pandas' to_json() (orient="columns"), pretty-printed.
        let d = load(
            "{\n  \"prompt\": {\"1\": \"P2\", \"0\": \"P1\"},\n  \"chosen\": {\"0\": \"a\", \"1\": \"c\"},\n  \"rejected\": {\"0\": \"b\", \"1\": \"d\"}\n}\n",
            ".json",
        )
        .unwrap();
        assert_eq!(prompts(&d), ["P1", "P2"]);
        // A single conversation row is a row, not columns; so is one pretty-printed object.
        let d = load(
            r#"{"chosen": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}], "rejected": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "B"}]}"#,
            ".json",
        )
        .unwrap();
        assert_eq!(d.rows.len(), 1);
        assert_eq!(d.rows[0].chosen, ["A"]);
        let d = load(
            "{\n  \"prompt\": \"P\",\n  \"chosen\": \"a\",\n  \"rejected\": \"b\"\n}\n",
            ".json",
        )
        .unwrap();
        assert_eq!(prompts(&d), ["P"]);
        // Columns of different lengths are not a table.
        let e = load(
            r#"{"prompt": ["P1", "P2"], "chosen": ["a"], "rejected": ["b"]}"#,
            ".json",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("`prompt`"), "{e}");
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
}
