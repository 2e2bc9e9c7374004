//! Reading a judge's answer as upstream does: `[[A]]`-style verdicts (A checked first), the
//! model-specific rules of RewardBench's judges, and the 1–10 rating regex.

use std::sync::OnceLock;

/// A judge's pick: an answer's position (0 = A), or nothing usable (upstream's `"error"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    At(usize),
    Error,
}

/// Prompt and parsing variants upstream selects by a substring of the judge's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Modifier {
    Prometheus,
    ConJ,
    OffsetBias,
    Atla,
    Gemini,
    RiseJudge,
}

impl Modifier {
    /// Upstream's `run_generative.py` checks, in this order, substrings of the model name.
    pub fn of(model: &str) -> Option<Self> {
        [
            ("prometheus", Self::Prometheus),
            ("Con-J", Self::ConJ),
            ("OffsetBias", Self::OffsetBias),
            ("Atla", Self::Atla),
            ("gemini", Self::Gemini),
            ("RISE-Judge", Self::RiseJudge),
        ]
        .into_iter()
        .find(|(s, _)| model.contains(s))
        .map(|(_, m)| m)
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Prometheus => "prometheus",
            Self::ConJ => "Con-J",
            Self::OffsetBias => "offsetbias",
            Self::Atla => "Atla",
            Self::Gemini => "gemini",
            Self::RiseJudge => "RISE-Judge",
        }
    }
}

/// The first of `[[A]]`, `[[B]]`, ... (in letter order, not text order) found among `n`.
pub fn bracketed(judgment: &str, n: usize) -> Pick {
    (0..n)
        .find(|&i| judgment.contains(&format!("[[{}]]", letter(i))))
        .map_or(Pick::Error, Pick::At)
}

/// The letter of position `i` (0 = A).
pub fn letter(i: usize) -> char {
    (b'A' + (i as u8 % 26)) as char
}

/// A v1 pairwise judgment, with the judge's modifier rules (`process_judgement`).
pub fn pairwise(judgment: &str, modifier: Option<Modifier>) -> Pick {
    match modifier {
        Some(Modifier::Prometheus) => {
            // `[RESULT]` present, then the judgment's last character decides.
            if !judgment.contains("[RESULT]") {
                return Pick::Error;
            }
            match judgment.chars().last() {
                Some('A') => Pick::At(0),
                Some('B') => Pick::At(1),
                _ => Pick::Error,
            }
        }
        Some(Modifier::OffsetBias) => {
            if judgment.contains("Output (a)") {
                Pick::At(0)
            } else if judgment.contains("Output (b)") {
                Pick::At(1)
            } else {
                Pick::Error
            }
        }
        Some(Modifier::Atla) => {
            static RE: OnceLock<regex::Regex> = OnceLock::new();
            let re = RE.get_or_init(|| {
                regex::Regex::new(r"(?s)\*\*Result:\*\*\s*(\w+)").expect("a valid pattern")
            });
            // Upstream returns the captured word itself; only `A` / `B` can match a label.
            match re
                .captures(judgment)
                .and_then(|c| c.get(1))
                .map(|m| m.as_str().trim())
            {
                Some("A") => Pick::At(0),
                Some("B") => Pick::At(1),
                _ => Pick::Error,
            }
        }
        Some(Modifier::ConJ) => con_j(judgment),
        _ => bracketed(judgment, 2),
    }
}

/// The key Con-J's JSON answer holds its verdict under.
const CON_J_KEY: &str = "更好的回答";

/// Words Con-J's answers use for that key when they are not valid JSON (upstream's list, in
/// its order).
const CON_J_KEYWORDS: &[&str] = &[
    "更好的回答",
    "更好回答",
    "更好得回答",
    "更好地回答",
    "better_answer",
    "better answer",
    "更好答案",
    "更好得答案",
    "更好的答案",
    "更好地答案",
    "更佳回答",
    "更佳答案",
    "更好答",
    "最佳答案",
    "更好答 案",
    "更好 的 回答",
    "betterAnswer",
    "更好 的 回应",
    "更好得回应回答",
    "答案",
    "回答",
];

/// Upstream's `con_j_evaluate`: the verdict under `更好的回答` in a fenced JSON block, the whole
/// answer as JSON, or the first `{...}` that parses; else the first keyword followed (or
/// preceded) by 1 or 2 (full-width digits too). 1 is A, 2 is B.
fn con_j(judgment: &str) -> Pick {
    let gen = judgment.replace('\n', " ");
    let gen = gen.trim();
    let from_json = |text: &str| -> Option<String> {
        match serde_json::from_str::<serde_json::Value>(text)
            .ok()?
            .get(CON_J_KEY)?
        {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Bool(b) => Some(if *b { "True" } else { "False" }.into()),
            other => Some(other.to_string()),
        }
    };
    static FENCED: OnceLock<regex::Regex> = OnceLock::new();
    static BRACES: OnceLock<regex::Regex> = OnceLock::new();
    let fenced =
        FENCED.get_or_init(|| regex::Regex::new(r"(?s)```json(.*?)```").expect("a valid pattern"));
    let braces = BRACES.get_or_init(|| regex::Regex::new(r"\{.*?\}").expect("a valid pattern"));
    let mut value = None;
    if gen.contains("```json") {
        value = fenced
            .captures_iter(gen)
            .find_map(|c| from_json(c.get(1)?.as_str()));
    }
    if value.is_none() {
        value = from_json(gen);
    }
    if value.is_none() {
        value = braces.find_iter(gen).find_map(|m| from_json(m.as_str()));
    }
    if value.is_none() {
        for key in CON_J_KEYWORDS {
            if !gen.contains(key) {
                continue;
            }
            let k = regex::escape(key);
            let found = [
                format!(r#""{k}"\s*:\s*.*?([12１２])"#),
                format!(r"{k}.*?([12１２])"),
                format!(r"([12１２]).*?{k}"),
            ]
            .iter()
            .find_map(|p| {
                let re = regex::Regex::new(p).ok()?;
                Some(re.captures(gen)?.get(1)?.as_str().to_string())
            });
            if found.is_some() {
                value = found;
                break;
            }
        }
    }
    match value
        .as_deref()
        .map(|v| v.replace('１', "1").replace('２', "2"))
        .as_deref()
    {
        Some("1") => Pick::At(0),
        Some("2") => Pick::At(1),
        _ => Pick::Error,
    }
}

/// A 1–10 rating: `\b([1-9]|10)\b\s*$` searched in the stripped answer (so `9/10` reads 10);
/// `None` (upstream's −1) otherwise.
pub fn rating(judgment: &str) -> Option<u8> {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    let re = RE.get_or_init(|| regex::Regex::new(r"\b([1-9]|10)\b\s*$").expect("a valid pattern"));
    let text = judgment.trim();
    let m = re.captures(text)?.get(1)?;
    m.as_str()
        .parse::<u8>()
        .ok()
        .filter(|r| (1..=10).contains(r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brackets_check_a_first() {
        assert_eq!(bracketed("verdict: [[B]]", 2), Pick::At(1));
        assert_eq!(bracketed("[[B]] ... actually [[A]]", 2), Pick::At(0));
        assert_eq!(bracketed("[[C]]", 2), Pick::Error);
        assert_eq!(bracketed("[[C]]", 4), Pick::At(2));
        assert_eq!(bracketed("[[D]] [[C]]", 4), Pick::At(2));
        assert_eq!(bracketed("[A]", 4), Pick::Error);
    }

    #[test]
    fn modifiers_follow_upstream() {
        assert_eq!(
            Modifier::of("prometheus-7b-v2.0"),
            Some(Modifier::Prometheus)
        );
        assert_eq!(Modifier::of("gemini-1.5-pro"), Some(Modifier::Gemini));
        assert_eq!(
            Modifier::of("NCSOFT/Llama-3-OffsetBias-8B"),
            Some(Modifier::OffsetBias)
        );
        assert_eq!(Modifier::of("gpt-4o"), None);
        let p = Some(Modifier::Prometheus);
        assert_eq!(pairwise("Feedback ... [RESULT] B", p), Pick::At(1));
        assert_eq!(pairwise("Feedback ... [RESULT] B.", p), Pick::Error);
        assert_eq!(pairwise("no result A", p), Pick::Error);
        let o = Some(Modifier::OffsetBias);
        assert_eq!(pairwise("Output (b)", o), Pick::At(1));
        let a = Some(Modifier::Atla);
        assert_eq!(pairwise("**Reasoning:** x\n**Result:** B", a), Pick::At(1));
        assert_eq!(pairwise("**Result:** Tie", a), Pick::Error);
        assert_eq!(pairwise("[[A]]", Some(Modifier::Gemini)), Pick::At(0));
        let c = Some(Modifier::ConJ);
        assert_eq!(
            pairwise("```json\n{\"原因\": \"x\", \"更好的回答\": 2}\n```", c),
            Pick::At(1)
        );
        assert_eq!(
            pairwise("{\"原因\": \"x\", \"更好的回答\": \"1\"}", c),
            Pick::At(0)
        );
        assert_eq!(pairwise("分析…… 所以更好的回答是２", c), Pick::At(1));
        assert_eq!(pairwise("better answer: 1", c), Pick::At(0));
        assert_eq!(
            pairwise("{\"更好的回答\": 1.0}", c),
            Pick::Error,
            "str(1.0) is not \"1\""
        );
        assert_eq!(pairwise("no verdict", c), Pick::Error);
    }

    #[test]
    fn ratings_regex_quirks() {
        assert_eq!(rating("Good answer.\n\n9"), Some(9));
        assert_eq!(
            rating("Rating: 9/10"),
            Some(10),
            "upstream reads 9/10 as 10"
        );
        assert_eq!(rating("10  \n"), Some(10));
        assert_eq!(rating("I give it 7."), None, "text after the number");
        assert_eq!(rating("score 11"), None);
        assert_eq!(rating("0"), None);
        assert_eq!(rating(""), None);
        assert_eq!(rating("rated 3 out of 10"), Some(10));
    }
}
