//! Model-card (README.md) metadata: the YAML front matter split off as the hub does, and
//! `model-index` results merged as `huggingface_hub.metadata_update(overwrite=True)` does.
//!
//! YAML goes through `yaml-rust2` (YAML 1.2, keeps key order); like huggingface_hub, a card
//! is re-emitted from its parsed front matter, so comments in the front matter are lost and
//! the Markdown after it is kept byte for byte.

use yaml_rust2::yaml::Hash;
use yaml_rust2::{Yaml, YamlEmitter, YamlLoader};

/// Errors reading a card's front matter or its `model-index`.
#[derive(Debug, thiserror::Error)]
pub enum CardError {
    #[error("the YAML front matter does not parse: {0}")]
    Yaml(String),
    #[error("the YAML front matter is not a mapping")]
    NotAMapping,
    #[error("`{field}` is missing or not {want}")]
    Field { field: String, want: &'static str },
    #[error("writing YAML: {0}")]
    Emit(String),
}

/// One evaluation result, as huggingface_hub's `EvalResult` (absent fields are `Null`).
#[derive(Debug, Clone, PartialEq)]
pub struct EvalResult {
    pub task_type: Yaml,
    pub task_name: Yaml,
    pub dataset_type: Yaml,
    pub dataset_name: Yaml,
    pub dataset_config: Yaml,
    pub dataset_split: Yaml,
    pub dataset_revision: Yaml,
    pub dataset_args: Yaml,
    pub metric_type: Yaml,
    pub metric_value: Yaml,
    pub metric_name: Yaml,
    pub metric_config: Yaml,
    pub metric_args: Yaml,
    pub verified: Yaml,
    pub verify_token: Yaml,
    pub source_name: Yaml,
    pub source_url: Yaml,
}

fn s(v: &str) -> Yaml {
    Yaml::String(v.to_string())
}

fn opt(v: Option<&str>) -> Yaml {
    v.map_or(Yaml::Null, s)
}

/// A float as YAML writes it so that both YAML 1.1 (PyYAML) and 1.2 read a float back:
/// `1.0`, `0.75`, `1.0e-7`.
pub fn real(x: f64) -> Yaml {
    let mut t = format!("{x:?}");
    if let Some(i) = t.find('e') {
        if !t[..i].contains('.') {
            t.insert_str(i, ".0");
        }
    }
    Yaml::Real(t)
}

impl EvalResult {
    /// A result with the fields RewardBench sets: task and dataset type and name, metric type
    /// and value, and optionally a metric name and a dataset split.
    pub fn new(
        task_type: &str,
        dataset_type: &str,
        dataset_name: &str,
        metric_type: &str,
        value: f64,
    ) -> Self {
        Self {
            task_type: s(task_type),
            task_name: Yaml::Null,
            dataset_type: s(dataset_type),
            dataset_name: s(dataset_name),
            dataset_config: Yaml::Null,
            dataset_split: Yaml::Null,
            dataset_revision: Yaml::Null,
            dataset_args: Yaml::Null,
            metric_type: s(metric_type),
            metric_value: real(value),
            metric_name: Yaml::Null,
            metric_config: Yaml::Null,
            metric_args: Yaml::Null,
            verified: Yaml::Null,
            verify_token: Yaml::Null,
            source_name: Yaml::Null,
            source_url: Yaml::Null,
        }
    }

    pub fn with_metric_name(mut self, name: &str) -> Self {
        self.metric_name = s(name);
        self
    }

    pub fn with_split(mut self, split: Option<&str>) -> Self {
        self.dataset_split = opt(split);
        self
    }

    /// `(task type, dataset type, config, split, revision)`: results sharing it are listed
    /// under one `results` entry.
    fn unique_identifier(&self) -> [&Yaml; 5] {
        [
            &self.task_type,
            &self.dataset_type,
            &self.dataset_config,
            &self.dataset_split,
            &self.dataset_revision,
        ]
    }

    /// huggingface_hub's `is_equal_except_value`: every field but the value and
    /// `verify_token` equal.
    fn same_metric(&self, other: &Self) -> bool {
        let strip = |r: &Self| Self {
            metric_value: Yaml::Null,
            verify_token: Yaml::Null,
            ..r.clone()
        };
        strip(self) == strip(other)
    }
}

fn key(k: &str) -> Yaml {
    s(k)
}

fn get<'a>(h: &'a Hash, k: &str) -> &'a Yaml {
    h.get(&key(k)).unwrap_or(&Yaml::BadValue)
}

fn or_null(y: &Yaml) -> Yaml {
    match y {
        Yaml::BadValue => Yaml::Null,
        other => other.clone(),
    }
}

/// `model_index_to_eval_results`: the name (of the last entry) and every result, flattened.
pub fn model_index_to_eval_results(mi: &Yaml) -> Result<(Yaml, Vec<EvalResult>), CardError> {
    let field = |f: String, want| CardError::Field { field: f, want };
    let Yaml::Array(entries) = mi else {
        return Err(field("model-index".into(), "a list"));
    };
    let mut name = Yaml::Null;
    let mut out = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let Yaml::Hash(e) = e else {
            return Err(field(format!("model-index[{i}]"), "a mapping"));
        };
        name = match get(e, "name") {
            Yaml::BadValue => return Err(field(format!("model-index[{i}].name"), "present")),
            n => n.clone(),
        };
        let Yaml::Array(results) = get(e, "results") else {
            return Err(field(format!("model-index[{i}].results"), "a list"));
        };
        for (j, r) in results.iter().enumerate() {
            let at = |f: &str| format!("model-index[{i}].results[{j}].{f}");
            let Yaml::Hash(r) = r else {
                return Err(field(format!("model-index[{i}].results[{j}]"), "a mapping"));
            };
            let Yaml::Hash(task) = get(r, "task") else {
                return Err(field(at("task"), "a mapping"));
            };
            let Yaml::Hash(dataset) = get(r, "dataset") else {
                return Err(field(at("dataset"), "a mapping"));
            };
            let empty = Hash::new();
            let source = match get(r, "source") {
                Yaml::Hash(h) => h,
                _ => &empty,
            };
            let need = |h: &Hash, k: &str, f: String| match get(h, k) {
                Yaml::BadValue | Yaml::Null => Err(field(f, "present")),
                v => Ok(v.clone()),
            };
            let Yaml::Array(metrics) = get(r, "metrics") else {
                return Err(field(at("metrics"), "a list"));
            };
            for (k, m) in metrics.iter().enumerate() {
                let Yaml::Hash(m) = m else {
                    return Err(field(at(&format!("metrics[{k}]")), "a mapping"));
                };
                out.push(EvalResult {
                    task_type: need(task, "type", at("task.type"))?,
                    task_name: or_null(get(task, "name")),
                    dataset_type: need(dataset, "type", at("dataset.type"))?,
                    dataset_name: need(dataset, "name", at("dataset.name"))?,
                    dataset_config: or_null(get(dataset, "config")),
                    dataset_split: or_null(get(dataset, "split")),
                    dataset_revision: or_null(get(dataset, "revision")),
                    dataset_args: or_null(get(dataset, "args")),
                    metric_type: need(m, "type", at(&format!("metrics[{k}].type")))?,
                    metric_value: need(m, "value", at(&format!("metrics[{k}].value")))?,
                    metric_name: or_null(get(m, "name")),
                    metric_config: or_null(get(m, "config")),
                    metric_args: or_null(get(m, "args")),
                    verified: or_null(get(m, "verified")),
                    verify_token: or_null(get(m, "verifyToken")),
                    source_name: or_null(get(source, "name")),
                    source_url: or_null(get(source, "url")),
                });
            }
        }
    }
    Ok((name, out))
}

/// A mapping from `(key, value)` pairs, leaving out null values (as `_remove_none`).
fn map(pairs: Vec<(&str, Yaml)>) -> Yaml {
    let mut h = Hash::new();
    for (k, v) in pairs {
        let v = remove_none(v);
        if v != Yaml::Null {
            h.insert(key(k), v);
        }
    }
    Yaml::Hash(h)
}

fn remove_none(y: Yaml) -> Yaml {
    match y {
        Yaml::Hash(h) => Yaml::Hash(
            h.into_iter()
                .filter(|(k, v)| *k != Yaml::Null && *v != Yaml::Null)
                .map(|(k, v)| (k, remove_none(v)))
                .collect(),
        ),
        Yaml::Array(a) => Yaml::Array(
            a.into_iter()
                .filter(|v| *v != Yaml::Null)
                .map(remove_none)
                .collect(),
        ),
        other => other,
    }
}

/// `eval_results_to_model_index`: results grouped by task and dataset (first seen first).
pub fn eval_results_to_model_index(name: &Yaml, results: &[EvalResult]) -> Yaml {
    let mut groups: Vec<Vec<&EvalResult>> = Vec::new();
    for r in results {
        match groups
            .iter_mut()
            .find(|g| g[0].unique_identifier() == r.unique_identifier())
        {
            Some(g) => g.push(r),
            None => groups.push(vec![r]),
        }
    }
    let entries: Vec<Yaml> = groups
        .iter()
        .map(|g| {
            let r0 = g[0];
            let metrics = g
                .iter()
                .map(|r| {
                    map(vec![
                        ("type", r.metric_type.clone()),
                        ("value", r.metric_value.clone()),
                        ("name", r.metric_name.clone()),
                        ("config", r.metric_config.clone()),
                        ("args", r.metric_args.clone()),
                        ("verified", r.verified.clone()),
                        ("verifyToken", r.verify_token.clone()),
                    ])
                })
                .collect();
            let mut pairs = vec![
                (
                    "task",
                    map(vec![
                        ("type", r0.task_type.clone()),
                        ("name", r0.task_name.clone()),
                    ]),
                ),
                (
                    "dataset",
                    map(vec![
                        ("name", r0.dataset_name.clone()),
                        ("type", r0.dataset_type.clone()),
                        ("config", r0.dataset_config.clone()),
                        ("split", r0.dataset_split.clone()),
                        ("revision", r0.dataset_revision.clone()),
                        ("args", r0.dataset_args.clone()),
                    ]),
                ),
                ("metrics", Yaml::Array(metrics)),
            ];
            if r0.source_url != Yaml::Null {
                pairs.push((
                    "source",
                    map(vec![
                        ("url", r0.source_url.clone()),
                        ("name", r0.source_name.clone()),
                    ]),
                ));
            }
            map(pairs)
        })
        .collect();
    Yaml::Array(vec![map(vec![
        ("name", name.clone()),
        ("results", Yaml::Array(entries)),
    ])])
}

/// A card split as the hub splits it: the front matter's mapping and the text after it.
#[derive(Debug, Clone)]
pub struct Card {
    pub data: Hash,
    pub text: String,
}

impl Card {
    /// Splits `content` with the hub's front-matter pattern,
    /// `^\s*---[\r\n]+([\S\s]*?)[\r\n]+---(\r\n|\n|$)`; without one, all is text.
    pub fn parse(content: &str) -> Result<Self, CardError> {
        static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
        let re = RE.get_or_init(|| {
            regex::Regex::new(r"^(\s*---[\r\n]+)([\S\s]*?)([\r\n]+---(\r\n|\n|$))")
                .expect("a valid pattern")
        });
        let Some(caps) = re.captures(content) else {
            return Ok(Self {
                data: Hash::new(),
                text: content.to_string(),
            });
        };
        let whole = caps.get(0).map_or(0..0, |m| m.range());
        let block = caps.get(2).map_or("", |m| m.as_str());
        let docs = YamlLoader::load_from_str(block).map_err(|e| CardError::Yaml(e.to_string()))?;
        let data = match docs.into_iter().next() {
            None | Some(Yaml::Null) => Hash::new(),
            Some(Yaml::Hash(h)) => h,
            Some(_) => return Err(CardError::NotAMapping),
        };
        Ok(Self {
            data,
            text: content[whole.end..].to_string(),
        })
    }

    /// The front matter as YAML (no `---` lines), block style, keys in their order.
    pub fn yaml(&self) -> Result<String, CardError> {
        emit(&Yaml::Hash(self.data.clone()))
    }

    /// `---\n{yaml}\n---\n{text}`, as huggingface_hub writes a card.
    pub fn render(&self) -> Result<String, CardError> {
        Ok(format!("---\n{}\n---\n{}", self.yaml()?, self.text))
    }

    /// Merges `results` into `model-index` as `metadata_update(overwrite=True)`: a result
    /// describing the same metric as an existing one (all fields but the value equal) updates
    /// its value, any other is appended; an existing `model-index` keeps its name and place.
    pub fn merge_results(
        &mut self,
        model_name: &str,
        results: &[EvalResult],
    ) -> Result<(), CardError> {
        let k = key("model-index");
        let (name, merged) = match self.data.get(&k) {
            None | Some(Yaml::Null) => (s(model_name), results.to_vec()),
            Some(mi) => {
                let (name, mut existing) = model_index_to_eval_results(mi)?;
                for new in results {
                    let mut found = false;
                    for old in existing.iter_mut() {
                        if new.same_metric(old) {
                            found = true;
                            old.metric_value = new.metric_value.clone();
                            if old.verified == Yaml::Boolean(true) {
                                old.verify_token = new.verify_token.clone();
                            }
                        }
                    }
                    if !found {
                        existing.push(new.clone());
                    }
                }
                (name, existing)
            }
        };
        let value = eval_results_to_model_index(&name, &merged);
        match self.data.get_mut(&k) {
            Some(slot) => *slot = value,
            None => {
                self.data.insert(k, value);
            }
        }
        Ok(())
    }
}

/// `y` as block-style YAML, without the leading `---`.
pub fn emit(y: &Yaml) -> Result<String, CardError> {
    let mut out = String::new();
    let mut e = YamlEmitter::new(&mut out);
    e.multiline_strings(true);
    e.dump(y).map_err(|e| CardError::Emit(format!("{e:?}")))?;
    let body = out.strip_prefix("---").unwrap_or(&out);
    Ok(body.trim_start_matches([' ', '\n']).trim_end().to_string())
}

/// The `model-index` that `results` make for a new card, as YAML (for a dry run).
pub fn results_yaml(model_name: &str, results: &[EvalResult]) -> Result<String, CardError> {
    let mut h = Hash::new();
    h.insert(
        key("model-index"),
        eval_results_to_model_index(&s(model_name), results),
    );
    emit(&Yaml::Hash(h))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(dt: &str, v: f64) -> EvalResult {
        EvalResult::new("preference_evaluation", dt, dt, "accuracy", v)
    }

    #[test]
    fn floats_read_back_as_floats() {
        assert_eq!(real(1.0), Yaml::Real("1.0".into()));
        assert_eq!(real(0.75), Yaml::Real("0.75".into()));
        assert_eq!(real(1e-7), Yaml::Real("1.0e-7".into()));
        assert_eq!(real(2.5e-8), Yaml::Real("2.5e-8".into()));
    }

    #[test]
    fn a_card_without_front_matter_gets_one_and_keeps_its_text() {
        let mut c = Card::parse("# My model\n\nSome text.\n").unwrap();
        c.merge_results("org/m", &[ev("allenai/reward-bench", 0.5)])
            .unwrap();
        let out = c.render().unwrap();
        assert!(out.ends_with("---\n# My model\n\nSome text.\n"), "{out}");
        let back = Card::parse(&out).unwrap();
        let (name, rs) = model_index_to_eval_results(&back.data[&key("model-index")]).unwrap();
        assert_eq!(name, s("org/m"));
        assert_eq!(rs, vec![ev("allenai/reward-bench", 0.5)]);
    }

    #[test]
    fn merge_updates_same_metrics_appends_new_ones_and_keeps_the_rest() {
        let card = "---\nlicense: mit\ntags:\n- a\n- 'yes'\nmodel-index:\n- name: Theirs\n  results:\n  - task:\n      type: text-classification\n    dataset:\n      name: imdb\n      type: imdb\n    metrics:\n    - type: f1\n      value: 0.9\n  - task:\n      type: preference_evaluation\n    dataset:\n      name: Chat\n      type: Chat\n    metrics:\n    - type: accuracy\n      value: 0.1\nlanguage: en\n---\n\n# Card\n";
        let mut c = Card::parse(card).unwrap();
        c.merge_results("org/m", &[ev("Chat", 0.75), ev("Safety", 0.5)])
            .unwrap();
        let out = c.render().unwrap();
        assert!(out.ends_with("---\n\n# Card\n"), "{out}");
        let back = Card::parse(&out).unwrap();
        let keys: Vec<&str> = back.data.keys().filter_map(Yaml::as_str).collect();
        assert_eq!(keys, ["license", "tags", "model-index", "language"]);
        assert_eq!(back.data[&key("tags")][1], s("yes"));
        let (name, rs) = model_index_to_eval_results(&back.data[&key("model-index")]).unwrap();
        assert_eq!(name, s("Theirs"), "an existing name stays");
        assert_eq!(rs.len(), 3);
        assert_eq!(rs[0].metric_type, s("f1"));
        assert_eq!(rs[1], ev("Chat", 0.75), "same metric: value updated");
        assert_eq!(rs[2], ev("Safety", 0.5), "new metric: appended");
        // Merging the same results again changes nothing.
        let mut again = back.clone();
        again
            .merge_results("org/m", &[ev("Chat", 0.75), ev("Safety", 0.5)])
            .unwrap();
        assert_eq!(again.render().unwrap(), out);
    }

    #[test]
    fn results_with_one_task_and_dataset_share_an_entry() {
        let rs = [
            ev("allenai/reward-bench-2", 0.5).with_metric_name("Score"),
            ev("allenai/reward-bench-2", 0.25).with_metric_name("Math"),
        ];
        let mi = eval_results_to_model_index(&s("m"), &rs);
        assert_eq!(mi[0]["results"].as_vec().unwrap().len(), 1);
        let (_, back) = model_index_to_eval_results(&mi).unwrap();
        assert_eq!(back, rs);
    }

    #[test]
    fn bad_front_matter_and_model_index_are_clear_errors() {
        assert!(matches!(
            Card::parse("---\n- a\n---\n"),
            Err(CardError::NotAMapping)
        ));
        assert!(matches!(
            Card::parse("---\na: [b\n---\n"),
            Err(CardError::Yaml(_))
        ));
        let mut c =
            Card::parse("---\nmodel-index:\n- name: x\n  results:\n  - task: {}\n    dataset: {type: d, name: d}\n    metrics: [{type: a, value: 1}]\n---\n").unwrap();
        let e = c.merge_results("m", &[ev("d", 0.1)]).unwrap_err();
        assert!(
            e.to_string()
                .contains("model-index[0].results[0].task.type"),
            "{e}"
        );
        assert_eq!(Card::parse("---\n---\ntext").unwrap().data.len(), 0);
    }
}
