//! What a judge is asked, and what its answers are worth, as RewardBench's `rewardbench-gen`
//! (v1: pairwise `[[A]]`/`[[B]]`, or 1–10 ratings) and `run_generative_v2.py` (RB2: 4-way
//! `[[A]]`–`[[D]]`, or ratings; Ties always rated) define it. Answer placement comes from a
//! seed, not an unseeded shuffle.

use super::parse::{Modifier, Pick};
use super::prompts as p;
use crate::data::{Prompt, Sample};

/// One request to a judge: its system prompt (if any) and user message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Ask {
    pub system: Option<String>,
    pub user: String,
}

/// Why a row cannot be judged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("the prompt has {0} messages; judges take one question or a two-turn conversation (user, assistant, user)")]
    Turns(usize),
    #[error("4-way judging needs 1 chosen and at least 3 rejected completions; the row has {chosen} and {rejected}")]
    FourWay { chosen: usize, rejected: usize },
    #[error("{0} prompts take a single-turn question (as upstream)")]
    SingleTurnOnly(&'static str),
}

/// Python's `str.format` for these templates: `{name}` fields and `{{` / `}}` braces.
pub fn py_format(template: &str, fields: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 256);
    let mut rest = template;
    while let Some(i) = rest.find(['{', '}']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(after) = tail.strip_prefix("{{") {
            out.push('{');
            rest = after;
        } else if let Some(after) = tail.strip_prefix("}}") {
            out.push('}');
            rest = after;
        } else if let (true, Some(end)) = (tail.starts_with('{'), tail.find('}')) {
            let name = &tail[1..end];
            match fields.iter().find(|(k, _)| *k == name) {
                Some((_, v)) => out.push_str(v),
                None => out.push_str(&tail[..=end]),
            }
            rest = &tail[end + 1..];
        } else {
            out.push_str(&tail[..1]);
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

/// The question and earlier turns of a sample, as upstream's message lists give them.
struct Turns<'a> {
    question: &'a str,
    /// Multi-turn: (first answer, second question).
    second: Option<(&'a str, &'a str)>,
}

fn turns(prompt: &Prompt) -> Result<Turns<'_>, ProtocolError> {
    match prompt {
        Prompt::Text(q) => Ok(Turns {
            question: q,
            second: None,
        }),
        Prompt::Messages(m) | Prompt::Conversation(m) => match m.as_slice() {
            [q] => Ok(Turns {
                question: &q.content,
                second: None,
            }),
            [q, a, q2] => Ok(Turns {
                question: &q.content,
                second: Some((&a.content, &q2.content)),
            }),
            other => Err(ProtocolError::Turns(other.len())),
        },
    }
}

/// The v1 pairwise request for answers `a` and `b` (`format_judge_answers`).
pub fn pairwise(
    prompt: &Prompt,
    a: &str,
    b: &str,
    modifier: Option<Modifier>,
) -> Result<Ask, ProtocolError> {
    let t = turns(prompt)?;
    let single = |name| match t.second {
        Some(_) => Err(ProtocolError::SingleTurnOnly(name)),
        None => Ok(()),
    };
    let (system, user) = match modifier {
        Some(Modifier::Prometheus) => {
            single("prometheus")?;
            let user = py_format(
                p::RELATIVE_PROMPT,
                &[
                    ("orig_instruction", t.question),
                    ("response_A", a),
                    ("response_B", b),
                    ("score_rubric", p::AUTOJ_COARSE_SCORE_RUBRIC),
                ],
            );
            (Some(p::REL_SYSTEM_PROMPT.to_string()), user)
        }
        Some(m @ (Modifier::ConJ | Modifier::RiseJudge | Modifier::OffsetBias)) => {
            single(m.label())?;
            let template = match m {
                Modifier::ConJ => p::CON_J_PROMPT,
                Modifier::RiseJudge => p::RISE_JUDGE_PROMPT,
                _ => p::OFFSETBIAS_PROMPT,
            };
            let user = py_format(
                template,
                &[
                    ("instruction", t.question),
                    ("output_1", a),
                    ("output_2", b),
                ],
            );
            (Some(String::new()), user)
        }
        Some(Modifier::Atla) => {
            single("Atla")?;
            let user = py_format(
                p::ATLA_PROMPT,
                &[
                    ("user_input", t.question),
                    ("assistant_response_a", a),
                    ("assistant_response_b", b),
                ],
            );
            (Some(String::new()), user)
        }
        _ => match t.second {
            None => (
                Some(p::PROMPT_V2.to_string()),
                py_format(
                    p::MTBENCH_V2_TEMPLATE,
                    &[("question", t.question), ("answer_a", a), ("answer_b", b)],
                ),
            ),
            Some((first, q2)) => (
                Some(p::PROMPT_MULTI_V2.to_string()),
                py_format(
                    p::MTBENCH_MULTI_V2_TEMPLATE,
                    &[
                        ("question_1", t.question),
                        ("question_2", q2),
                        ("answer_a_1", first),
                        ("answer_b_1", first),
                        ("answer_a_2", a),
                        ("answer_b_2", b),
                    ],
                ),
            ),
        },
    };
    Ok(gemini(modifier, p::PROMPT_V2_GEMINI, system, user))
}

/// Gemini judges get no system prompt and `prompt_v2_gemini` before the user text.
fn gemini(modifier: Option<Modifier>, lead: &str, system: Option<String>, user: String) -> Ask {
    if modifier == Some(Modifier::Gemini) {
        Ask {
            system: None,
            user: format!("{lead}{user}"),
        }
    } else {
        Ask { system, user }
    }
}

/// The RB2 4-way request (`generative_v2.format_judge_answers`): answers in positions A–D.
pub fn four_way(question: &str, answers: [&str; 4], modifier: Option<Modifier>) -> Ask {
    let user = py_format(
        p::MTBENCH_V2_FOUR_TEMPLATE,
        &[
            ("question", question),
            ("answer_a", answers[0]),
            ("answer_b", answers[1]),
            ("answer_c", answers[2]),
            ("answer_d", answers[3]),
        ],
    );
    gemini(
        modifier,
        p::PROMPT_V2_FOUR_GEMINI,
        Some(p::PROMPT_V2_FOUR.to_string()),
        user,
    )
}

/// Which ratings prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RatingPrompt {
    /// v1's `ratings_prompt`.
    V1,
    /// RB2's `ratings_prompt`.
    V2,
    /// RB2's `ratings_prompt_ties` (no "depth / level of detail").
    Ties,
}

/// A rating request: one answer to one question; no system prompt (`_get_single_rating`).
pub fn rating(question: &str, completion: &str, which: RatingPrompt) -> Ask {
    let template = match which {
        RatingPrompt::V1 => p::RATINGS_PROMPT,
        RatingPrompt::V2 => p::RATINGS_PROMPT_V2,
        RatingPrompt::Ties => p::RATINGS_PROMPT_TIES,
    };
    Ask {
        system: None,
        user: py_format(
            template,
            &[("prompt", question), ("completion", completion)],
        ),
    }
}

/// The question a rating is about: the prompt's (last) user turn, as upstream's single-turn
/// path uses it.
pub fn question(prompt: &Prompt) -> Result<&str, ProtocolError> {
    turns(prompt).map(|t| t.second.map_or(t.question, |(_, q2)| q2))
}

/// Where answers go: a seeded generator per row (SplitMix64 of the seed and the row index),
/// so a row's placement depends on nothing else.
pub fn placement(seed: u64, row: usize, n: usize) -> usize {
    let mut z = seed.wrapping_add((row as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    ((u128::from(z) * n as u128) >> 64) as usize
}

/// One judge's vote, or a majority over an ensemble's: the pick with strictly more votes
/// than any other; no such pick (or a majority of errors) is an error.
pub fn majority(votes: &[Pick]) -> Pick {
    let mut counts: Vec<(Pick, usize)> = Vec::new();
    for v in votes {
        match counts.iter_mut().find(|(p, _)| p == v) {
            Some((_, c)) => *c += 1,
            None => counts.push((*v, 1)),
        }
    }
    counts.sort_by_key(|c| std::cmp::Reverse(c.1));
    match counts.as_slice() {
        [(_, n), (_, m), ..] if n == m => Pick::Error,
        [(top, _), ..] => *top,
        [] => Pick::Error,
    }
}

/// Credit of a pick of the chosen answer placed at `correct` among `n`: 1, 0, or upstream's
/// error credit (0.5 pairwise, 0.25 4-way).
pub fn credit(pick: Pick, correct: usize, n: usize) -> f64 {
    match pick {
        Pick::At(i) if i == correct => 1.0,
        Pick::At(_) => 0.0,
        Pick::Error => 1.0 / n as f64,
    }
}

/// v1 ratings: A wins with the higher rating; equal ratings or a failure is an error.
pub fn ratings_pick(a: Option<u8>, b: Option<u8>) -> Pick {
    match (a, b) {
        (Some(x), Some(y)) if x > y => Pick::At(0),
        (Some(x), Some(y)) if y > x => Pick::At(1),
        _ => Pick::Error,
    }
}

/// RB2 ratings credit (`run_judge_ratings_multi`): completions with the top valid rating win;
/// `1/k` when the chosen one (index 0) is among k winners, else 0; no valid rating: 0.25.
pub fn ratings_credit(ratings: &[Option<u8>]) -> f64 {
    let Some(top) = ratings.iter().flatten().max() else {
        return 0.25;
    };
    let winners: Vec<usize> = (0..ratings.len())
        .filter(|&i| ratings[i] == Some(*top))
        .collect();
    if winners.contains(&0) {
        1.0 / winners.len() as f64
    } else {
        0.0
    }
}

/// The 4-way question of an RB2 sample: the chosen answer and the first three rejected,
/// the chosen one moved to position `at` (upstream swaps it with the answer there).
pub fn four_answers(sample: &Sample, at: usize) -> Result<[&str; 4], ProtocolError> {
    if sample.chosen.is_empty() || sample.rejected.len() < 3 {
        return Err(ProtocolError::FourWay {
            chosen: sample.chosen.len(),
            rejected: sample.rejected.len(),
        });
    }
    let mut a = [
        sample.chosen[0].as_str(),
        sample.rejected[0].as_str(),
        sample.rejected[1].as_str(),
        sample.rejected[2].as_str(),
    ];
    a.swap(0, at.min(3));
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Message;

    #[test]
    fn python_format() {
        assert_eq!(py_format("a {x} {{y}} {z}", &[("x", "1")]), "a 1 {y} {z}");
        assert_eq!(py_format("{a}{b}", &[("a", "{b}"), ("b", "2")]), "{b}2");
        assert_eq!(py_format("}", &[]), "}");
    }

    #[test]
    fn pairwise_prompts_as_upstream() {
        let ask = pairwise(&Prompt::Text("Q?".into()), "one", "two", None).unwrap();
        assert_eq!(ask.system.as_deref(), Some(p::PROMPT_V2));
        assert_eq!(
            ask.user,
            "[User Question]\nQ?\n\n[The Start of Assistant A's Answer]\none\n[The End of Assistant A's Answer]\n\n[The Start of Assistant B's Answer]\ntwo\n[The End of Assistant B's Answer]"
        );
        let multi = Prompt::Messages(vec![
            Message::new("user", "q1"),
            Message::new("assistant", "a1"),
            Message::new("user", "q2"),
        ]);
        let ask = pairwise(&multi, "x", "y", None).unwrap();
        assert_eq!(ask.system.as_deref(), Some(p::PROMPT_MULTI_V2));
        assert!(ask
            .user
            .contains("### User:\nq2\n\n### Assistant A:\nx\n\n"));
        assert!(ask.user.contains("### Assistant B:\na1\n\n"));
        let g = pairwise(
            &Prompt::Text("Q?".into()),
            "one",
            "two",
            Some(Modifier::Gemini),
        )
        .unwrap();
        assert!(g.system.is_none() && g.user.starts_with(p::PROMPT_V2_GEMINI));
        assert_eq!(
            pairwise(&multi, "x", "y", Some(Modifier::Prometheus)),
            Err(ProtocolError::SingleTurnOnly("prometheus"))
        );
    }

    /// Upstream's own `format_judge_answers` and ratings prompts on the same inputs
    /// (fixtures/judge/prompt_cases.json, written by export/extract_judge_prompts.py).
    #[test]
    fn requests_equal_upstreams_bytes() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/judge/prompt_cases.json"
        );
        let cases: Vec<serde_json::Value> =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let s = |v: &serde_json::Value| v.as_str().unwrap().to_string();
        let modifier = |c: &serde_json::Value| {
            c["modifier"].as_str().map(|m| match m {
                "offsetbias" => Modifier::OffsetBias,
                other => Modifier::of(other).unwrap(),
            })
        };
        for c in &cases {
            let got = match c["kind"].as_str().unwrap() {
                "pairwise" => pairwise(
                    &Prompt::Text(s(&c["question"])),
                    &s(&c["a"]),
                    &s(&c["b"]),
                    modifier(c),
                )
                .unwrap(),
                "pairwise-multi" => {
                    let t: Vec<String> = c["turns"].as_array().unwrap().iter().map(s).collect();
                    let m = vec![
                        Message::new("user", &t[0]),
                        Message::new("assistant", &t[1]),
                        Message::new("user", &t[2]),
                    ];
                    pairwise(&Prompt::Messages(m), &s(&c["a"]), &s(&c["b"]), modifier(c)).unwrap()
                }
                "four" => {
                    let a: Vec<String> = c["answers"].as_array().unwrap().iter().map(s).collect();
                    four_way(
                        &s(&c["question"]),
                        [&a[0], &a[1], &a[2], &a[3]],
                        modifier(c),
                    )
                }
                k => {
                    let which = match k {
                        "rating-v1" => RatingPrompt::V1,
                        "rating-v2" => RatingPrompt::V2,
                        _ => RatingPrompt::Ties,
                    };
                    let r = rating(&s(&c["question"]), &s(&c["completion"]), which);
                    assert_eq!(r.user, s(&c["user"]), "{k}");
                    continue;
                }
            };
            assert_eq!(got.user, s(&c["user"]), "{}", c["kind"]);
            assert_eq!(
                got.system.as_deref(),
                c["system"].as_str(),
                "{} {:?}",
                c["kind"],
                c["modifier"]
            );
        }
        assert!(cases.len() >= 14);
    }

    #[test]
    fn credits_and_votes() {
        assert_eq!(credit(Pick::At(1), 1, 2), 1.0);
        assert_eq!(credit(Pick::At(0), 1, 2), 0.0);
        assert_eq!(credit(Pick::Error, 1, 2), 0.5);
        assert_eq!(credit(Pick::Error, 3, 4), 0.25);
        assert_eq!(
            majority(&[Pick::At(0), Pick::At(1), Pick::At(0)]),
            Pick::At(0)
        );
        assert_eq!(
            majority(&[Pick::At(0), Pick::At(1), Pick::Error]),
            Pick::Error
        );
        assert_eq!(
            majority(&[Pick::Error, Pick::Error, Pick::At(1)]),
            Pick::Error
        );
        assert_eq!(ratings_pick(Some(7), Some(3)), Pick::At(0));
        assert_eq!(ratings_pick(Some(5), Some(5)), Pick::Error);
        assert_eq!(ratings_pick(None, Some(5)), Pick::Error);
        assert_eq!(ratings_credit(&[Some(8), Some(8), Some(3), None]), 0.5);
        assert_eq!(ratings_credit(&[Some(8), Some(9), None, None]), 0.0);
        assert_eq!(ratings_credit(&[None, None, None, None]), 0.25);
        assert_eq!(ratings_credit(&[Some(2), Some(2), Some(2), Some(2)]), 0.25);
    }

    #[test]
    fn placement_is_seeded_and_uniform_enough() {
        let a: Vec<usize> = (0..400).map(|r| placement(0, r, 4)).collect();
        assert_eq!(a, (0..400).map(|r| placement(0, r, 4)).collect::<Vec<_>>());
        assert_ne!(a, (0..400).map(|r| placement(1, r, 4)).collect::<Vec<_>>());
        for k in 0..4 {
            let n = a.iter().filter(|&&x| x == k).count();
            assert!((70..=130).contains(&n), "{k}: {n}");
        }
    }
}
