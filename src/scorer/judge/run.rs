//! Judging a dataset: every row's requests built by the protocol, sent once each (answers
//! reused from the store), on `threads` workers; each row's result computed from the answers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use serde_json::{json, Value};

use super::parse::{self, Modifier, Pick};
use super::protocol::{self as proto, Ask, ProtocolError, RatingPrompt};
use super::store::{self, Answer, AnswerStore, StoreError};
use crate::data::bon::is_ties;
use crate::data::{Dataset, Sample};
use crate::judge::client::{CallError, ChatRequest, Client};
use crate::judge::route::{self, Endpoint, Settings};
use crate::scorer::RowRef;
use crate::scoring::rb2::TiesRow;

/// One judge model and how it is reached.
pub struct Judge {
    pub model: String,
    pub endpoint: Endpoint,
    /// Upstream's name-based prompt and parse variant (`None` inside an ensemble, as upstream).
    pub modifier: Option<Modifier>,
}

/// How the run judges.
#[derive(Debug, Clone)]
pub struct JudgeSettings {
    /// `--score_w_ratings`.
    pub ratings: bool,
    /// Answer placement seed.
    pub seed: u64,
    /// v1: judge every pair in both orders.
    pub both_orders: bool,
    /// Concurrent calls.
    pub threads: usize,
    /// Which rows to judge (a shard's; `None`: all). Placement still follows each row's
    /// position in the whole dataset, so a shard asks exactly what the single run asks.
    pub rows: Option<Vec<bool>>,
    /// Use only answers already in the store (a merge of shards): a missing one is an error.
    pub answers_only: bool,
}

/// Everything that can stop a judge run.
#[derive(Debug, thiserror::Error)]
pub enum JudgeError {
    #[error("{at}: {problem}")]
    Row { at: RowRef, problem: ProtocolError },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("judge {model}: {source} (stopped: every further call would fail the same way; finished answers are kept in {store})")]
    Persistent {
        model: String,
        store: String,
        source: Box<CallError>,
    },
    #[error("interrupted: {done} judge answers are kept in {store}; run the same command again to continue")]
    Interrupted { done: usize, store: String },
    #[error("{0}")]
    Unsupported(String),
    #[error("merge: {missing} of {total} judge calls have no answer in the shards' answer stores (a shard is incomplete or belongs to another run); run the shards again")]
    Unanswered { missing: usize, total: usize },
}

/// One row's verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct RowVerdict {
    /// 1 / 0 / error credit (v1 0.5, RB2 0.25), or 1/k (RB2 ratings); `None` for Ties.
    pub result: Option<f64>,
    /// Ratings per completion, chosen first (−1 for a failure): RB2 ratings and Ties.
    pub scores: Option<Vec<f64>>,
    /// Where the chosen answer was placed (0 = A), per order.
    pub positions: Vec<usize>,
    /// Every call of the row: judge model, answer or error.
    pub judgements: Vec<Value>,
    /// Calls that failed (no answer after retries, or a final HTTP error).
    pub failed: usize,
    /// Answers that could not be read (no verdict, no rating).
    pub unparsed: usize,
    /// Both orders: whether the judge(s) picked the same answer in both.
    pub consistent: Option<bool>,
    /// Ties rows: the data for the composite.
    pub ties: Option<TiesRow>,
}

/// What a row asks: the calls, by judge, and how to read them.
enum Plan {
    Pairwise {
        orders: Vec<(usize, Vec<usize>)>,
    },
    Ratings {
        calls: Vec<Vec<usize>>,
    },
    Four {
        correct: usize,
        calls: Vec<usize>,
    },
    RatingsN {
        calls: Vec<Vec<usize>>,
        ties: Option<(String, usize)>,
    },
}

struct Call {
    judge: usize,
    ask: Ask,
    ratings: bool,
    key: String,
}

/// The judge's identity in the store: model, endpoint and the request settings.
fn identity(j: &Judge, s: &Settings) -> String {
    format!(
        "{}|{}|{}|t={:?}|max={:?}|sys={}|stop={:?}",
        j.endpoint.provider.name(),
        j.endpoint.base_url,
        j.model,
        s.temperature,
        s.max_tokens,
        s.system,
        s.stop
    )
}

fn settings(j: &Judge, ratings: bool) -> Settings {
    if ratings {
        route::ratings_settings(j.endpoint.provider, &j.model)
    } else {
        route::settings(j.endpoint.provider, &j.model)
    }
}

struct Planner<'a> {
    judges: &'a [Judge],
    calls: Vec<Call>,
    index: HashMap<String, usize>,
}

impl Planner<'_> {
    fn add(&mut self, judge: usize, ask: Ask, ratings: bool) -> usize {
        let j = &self.judges[judge];
        let key = store::key(&identity(j, &settings(j, ratings)), &ask);
        if let Some(&i) = self.index.get(&key) {
            return i;
        }
        self.index.insert(key.clone(), self.calls.len());
        self.calls.push(Call {
            judge,
            ask,
            ratings,
            key,
        });
        self.calls.len() - 1
    }
}

fn plan_row(
    p: &mut Planner,
    sample: &Sample,
    row: usize,
    s: &JudgeSettings,
) -> Result<Plan, ProtocolError> {
    let n_judges = p.judges.len();
    let ensemble = n_judges > 1;
    let modifier = |j: usize| if ensemble { None } else { p.judges[j].modifier };
    if sample.is_best_of_n() {
        let q = proto::question(&sample.prompt)?.to_string();
        let ties = sample.subset().is_some_and(is_ties);
        if ties || s.ratings {
            let which = if ties {
                RatingPrompt::Ties
            } else {
                RatingPrompt::V2
            };
            let texts: Vec<&String> = sample.chosen.iter().chain(&sample.rejected).collect();
            let calls = (0..n_judges)
                .map(|j| {
                    texts
                        .iter()
                        .map(|t| p.add(j, proto::rating(&q, t, which), true))
                        .collect()
                })
                .collect();
            let ties = ties.then(|| (sample.id_text().unwrap_or_default(), sample.num_correct()));
            return Ok(Plan::RatingsN { calls, ties });
        }
        let at = proto::placement(s.seed, row, 4);
        let answers = proto::four_answers(sample, at)?;
        let calls = (0..n_judges)
            .map(|j| p.add(j, proto::four_way(&q, answers, modifier(j)), false))
            .collect();
        return Ok(Plan::Four { correct: at, calls });
    }
    let (chosen, rejected) = (&sample.chosen[0], &sample.rejected[0]);
    if s.ratings {
        let q = proto::question(&sample.prompt)?.to_string();
        let calls = (0..n_judges)
            .map(|j| {
                [chosen, rejected]
                    .iter()
                    .map(|t| p.add(j, proto::rating(&q, t, RatingPrompt::V1), true))
                    .collect()
            })
            .collect();
        return Ok(Plan::Ratings { calls });
    }
    let first = proto::placement(s.seed, row, 2);
    let orders: Vec<usize> = if s.both_orders {
        vec![first, 1 - first]
    } else {
        vec![first]
    };
    let mut out = Vec::new();
    for correct in orders {
        let (a, b) = if correct == 0 {
            (chosen, rejected)
        } else {
            (rejected, chosen)
        };
        let mut calls = Vec::new();
        for j in 0..n_judges {
            let ask = proto::pairwise(&sample.prompt, a, b, modifier(j))?;
            calls.push(p.add(j, ask, false));
        }
        out.push((correct, calls));
    }
    Ok(Plan::Pairwise { orders: out })
}

/// Sends the calls not in the store, `threads` at a time; each answer is recorded as it
/// arrives. A persistent failure (bad key, unknown model) stops the run.
fn execute(
    client: &Client,
    judges: &[Judge],
    calls: &[Call],
    store: &AnswerStore,
    threads: usize,
    quiet: bool,
) -> Result<HashMap<usize, Answer>, JudgeError> {
    let mut answers: HashMap<usize, Answer> = HashMap::new();
    let mut todo = Vec::new();
    for (i, c) in calls.iter().enumerate() {
        match store.get(&c.key) {
            Some(a) => {
                answers.insert(i, a.clone());
            }
            None => todo.push(i),
        }
    }
    let next = AtomicUsize::new(0);
    let done = Mutex::new(Vec::<(usize, Answer)>::new());
    let stop: Mutex<Option<JudgeError>> = Mutex::new(None);
    let total = todo.len();
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1).min(total.max(1)) {
            scope.spawn(|| loop {
                if crate::run::cancel::requested() || stop.lock().map_or(true, |s| s.is_some()) {
                    return;
                }
                let k = next.fetch_add(1, Ordering::SeqCst);
                let Some(&i) = todo.get(k) else { return };
                let c = &calls[i];
                let j = &judges[c.judge];
                let st = settings(j, c.ratings);
                let req = ChatRequest {
                    model: j.model.clone(),
                    // An empty system prompt is none (fastchat sends no empty system message).
                    system: c.ask.system.clone().filter(|s| st.system && !s.is_empty()),
                    user: c.ask.user.clone(),
                    temperature: st.temperature,
                    max_tokens: st.max_tokens,
                    stop: st.stop.clone(),
                    seed: None,
                };
                let outcome: Answer = match client.chat(&j.endpoint, &req) {
                    Ok(a) => Ok(if st.strip {
                        a.text.trim().to_string()
                    } else {
                        a.text
                    }),
                    Err(CallError::Cancelled { .. }) => return,
                    Err(e) if e.is_persistent() => {
                        if let Ok(mut s) = stop.lock() {
                            s.get_or_insert(JudgeError::Persistent {
                                model: j.model.clone(),
                                store: store.path().display().to_string(),
                                source: Box::new(e),
                            });
                        }
                        return;
                    }
                    Err(e) => {
                        // A final answer of the server (a 4xx, a malformed success) is kept;
                        // retries that ran out (5xx, timeouts) are asked again next run.
                        let keep = matches!(
                            e,
                            CallError::Status { .. } | CallError::InvalidResponse { .. }
                        );
                        let outcome: Answer = Err(e.to_string());
                        if !keep {
                            if let Ok(mut d) = done.lock() {
                                d.push((i, outcome));
                            }
                            continue;
                        }
                        outcome
                    }
                };
                if let Err(e) = store.record(&c.key, &outcome) {
                    if let Ok(mut s) = stop.lock() {
                        s.get_or_insert(e.into());
                    }
                    return;
                }
                if let Ok(mut d) = done.lock() {
                    d.push((i, outcome));
                    if !quiet && (d.len() % 50 == 0 || d.len() == total) {
                        eprintln!("judged {}/{total} calls", d.len());
                    }
                }
            });
        }
    });
    if let Some(e) = stop.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    let fresh = done.into_inner().unwrap_or_else(|p| p.into_inner());
    let got = fresh.len();
    answers.extend(fresh);
    if got < total {
        return Err(JudgeError::Interrupted {
            done: store.len() + got,
            store: store.path().display().to_string(),
        });
    }
    Ok(answers)
}

/// What a run would ask (`rewardbench gen --dry_run`), worked out without sending anything.
#[derive(Debug, Clone, PartialEq)]
pub struct CallPlan {
    /// Rows judged (a shard's rows alone).
    pub rows: usize,
    /// Distinct judge calls (a call asked twice is asked once).
    pub calls: usize,
    /// Calls per judge, in `--model` order.
    pub per_judge: Vec<usize>,
    /// Calls the answer store already answers.
    pub answered: usize,
    /// Characters of the prompts still to ask (the system and user messages sent).
    pub prompt_chars: usize,
}

/// Plans the calls `judge` would make; `answered(key)` says whether the store holds a call.
pub fn plan(
    dataset: &Dataset,
    judges: &[Judge],
    run: &JudgeSettings,
    answered: impl Fn(&str) -> bool,
) -> Result<CallPlan, JudgeError> {
    let (plans, calls) = plan_calls(dataset, judges, run)?;
    let mut per_judge = vec![0; judges.len()];
    let (mut done, mut chars) = (0, 0);
    for c in &calls {
        per_judge[c.judge] += 1;
        if answered(&c.key) {
            done += 1;
        } else {
            // what `execute` sends: an empty or unsupported system prompt is none
            let st = settings(&judges[c.judge], c.ratings);
            let system = c.ask.system.as_ref().filter(|s| st.system && !s.is_empty());
            chars += c.ask.user.chars().count() + system.map_or(0, |s| s.chars().count());
        }
    }
    Ok(CallPlan {
        rows: plans.len(),
        calls: calls.len(),
        per_judge,
        answered: done,
        prompt_chars: chars,
    })
}

/// Every row's plan (the rows `settings` selects, in dataset order) and the distinct calls.
fn plan_calls(
    dataset: &Dataset,
    judges: &[Judge],
    settings: &JudgeSettings,
) -> Result<(Vec<Plan>, Vec<Call>), JudgeError> {
    if judges.len() > 1 && judges.len() % 2 == 0 {
        return Err(JudgeError::Unsupported(format!(
            "an ensemble needs an odd number of judges for a majority; {} given",
            judges.len()
        )));
    }
    let mut planner = Planner {
        judges,
        calls: Vec::new(),
        index: HashMap::new(),
    };
    let mut plans = Vec::with_capacity(dataset.rows.len());
    for (i, row) in dataset.rows.iter().enumerate() {
        if settings
            .rows
            .as_ref()
            .is_some_and(|r| !r.get(i).copied().unwrap_or(false))
        {
            continue;
        }
        let plan = plan_row(&mut planner, row, i, settings).map_err(|problem| JudgeError::Row {
            at: RowRef::new(&dataset.path, &row.place),
            problem,
        })?;
        plans.push(plan);
    }
    Ok((plans, planner.calls))
}

/// Judges every row of `dataset`; rows in dataset order.
pub fn judge(
    dataset: &Dataset,
    judges: &[Judge],
    settings: &JudgeSettings,
    client: &Client,
    store: &AnswerStore,
    quiet: bool,
) -> Result<Vec<RowVerdict>, JudgeError> {
    let (plans, calls) = plan_calls(dataset, judges, settings)?;
    if settings.answers_only {
        let missing = calls.iter().filter(|c| store.get(&c.key).is_none()).count();
        if missing > 0 {
            return Err(JudgeError::Unanswered {
                missing,
                total: calls.len(),
            });
        }
    }
    let answers = execute(client, judges, &calls, store, settings.threads, quiet)?;
    let record = |i: usize| -> Value {
        match &answers[&i] {
            Ok(a) => json!({"judge": judges[calls[i].judge].model, "answer": a}),
            Err(e) => json!({"judge": judges[calls[i].judge].model, "error": e}),
        }
    };
    let text = |i: usize| answers[&i].as_ref().ok();
    let mut out = Vec::with_capacity(plans.len());
    for plan in plans {
        let mut v = RowVerdict {
            result: None,
            scores: None,
            positions: Vec::new(),
            judgements: Vec::new(),
            failed: 0,
            unparsed: 0,
            consistent: None,
            ties: None,
        };
        let note = |i: usize, parsed: bool, v: &mut RowVerdict| {
            v.judgements.push(record(i));
            match (&answers[&i], parsed) {
                (Err(_), _) => v.failed += 1,
                (Ok(_), false) => v.unparsed += 1,
                _ => {}
            }
        };
        match plan {
            Plan::Pairwise { orders } => {
                let mut credits = Vec::new();
                let mut chose_chosen = Vec::new();
                for (correct, ids) in &orders {
                    let picks: Vec<Pick> = ids
                        .iter()
                        .map(|&i| {
                            let m = if judges.len() > 1 {
                                None
                            } else {
                                judges[calls[i].judge].modifier
                            };
                            let pick = text(i).map_or(Pick::Error, |t| parse::pairwise(t, m));
                            note(i, pick != Pick::Error, &mut v);
                            pick
                        })
                        .collect();
                    let pick = proto::majority(&picks);
                    credits.push(proto::credit(pick, *correct, 2));
                    chose_chosen.push(match pick {
                        Pick::At(k) => Some(k == *correct),
                        Pick::Error => None,
                    });
                    v.positions.push(*correct);
                }
                v.result = Some(credits.iter().sum::<f64>() / credits.len() as f64);
                if chose_chosen.len() == 2 {
                    v.consistent =
                        Some(chose_chosen[0].is_some() && chose_chosen[0] == chose_chosen[1]);
                }
            }
            Plan::Ratings { calls } => {
                // One judge (ensembles of ratings are refused upstream; here: the median).
                let ratings = median_ratings(&calls, &text, &mut |i, ok| note(i, ok, &mut v));
                let pick = proto::ratings_pick(ratings[0], ratings[1]);
                v.result = Some(proto::credit(pick, 0, 2));
                v.scores = Some(ratings.iter().map(|r| r.map_or(-1.0, f64::from)).collect());
            }
            Plan::Four { correct, calls } => {
                let picks: Vec<Pick> = calls
                    .iter()
                    .map(|&i| {
                        let pick = text(i).map_or(Pick::Error, |t| parse::bracketed(t, 4));
                        note(i, pick != Pick::Error, &mut v);
                        pick
                    })
                    .collect();
                v.result = Some(proto::credit(proto::majority(&picks), correct, 4));
                v.positions.push(correct);
            }
            Plan::RatingsN { calls, ties } => {
                let ratings = median_ratings(&calls, &text, &mut |i, ok| note(i, ok, &mut v));
                let scores: Vec<f64> = ratings.iter().map(|r| r.map_or(-1.0, f64::from)).collect();
                match ties {
                    Some((id, num_correct)) => {
                        v.ties = Some(TiesRow {
                            id,
                            scores: scores.clone(),
                            num_correct,
                        });
                    }
                    None => v.result = Some(proto::ratings_credit(&ratings)),
                }
                v.scores = Some(scores);
            }
        }
        out.push(v);
    }
    Ok(out)
}

/// Each completion's rating: one judge's, or the median of an ensemble's valid ratings.
fn median_ratings<'a>(
    calls: &[Vec<usize>],
    text: &dyn Fn(usize) -> Option<&'a String>,
    note: &mut dyn FnMut(usize, bool),
) -> Vec<Option<u8>> {
    let n = calls.first().map_or(0, Vec::len);
    (0..n)
        .map(|k| {
            let mut valid: Vec<u8> = Vec::new();
            for judge_calls in calls {
                let i = judge_calls[k];
                let r = text(i).and_then(|t| parse::rating(t));
                note(i, r.is_some());
                valid.extend(r);
            }
            valid.sort_unstable();
            (!valid.is_empty()).then(|| valid[valid.len() / 2])
        })
        .collect()
}
