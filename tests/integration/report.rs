//! `rewardbench report` end to end. Pages are built from real runs of the fixture models (v1,
//! RewardBench 2, DPO with and without its reference, a judge against the stand-in server)
//! and from a synthetic 20 models × 30 subsets set, then loaded in headless Chromium (Debian's
//! `chromium`): no console message at all, the DOM after the page's script ran checked against
//! the summaries, a screenshot kept in `ci-artifacts/`. Without a browser the browser tests
//! say SKIPPED loudly, except under `CI`, where they fail.
//!
//! Console messages are read from Chromium's own log (`--enable-logging=stderr --v=0` prints
//! every console message and uncaught error as an `INFO:CONSOLE` line; levels are not told
//! apart, so any line fails); `console_lines_catch_a_broken_page` proves it on a broken page.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use regex::Regex;
use serde_json::{json, Value};

use crate::util::judge_server::{JudgeServer, Reply, Request};
use crate::util::{rewardbench, root, stderr};

// ---------------------------------------------------------------------------------------
// The browser.

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// `$CHROME`, else `chromium`, `/usr/lib/chromium/chromium`, `chromium-headless-shell`.
fn find_browser() -> Option<PathBuf> {
    if let Some(c) = std::env::var_os("CHROME").filter(|c| !c.is_empty()) {
        let p = PathBuf::from(c);
        assert!(p.is_file(), "CHROME={} is not a file", p.display());
        return Some(p);
    }
    on_path("chromium")
        .or_else(|| Some(PathBuf::from("/usr/lib/chromium/chromium")).filter(|p| p.is_file()))
        .or_else(|| on_path("chromium-headless-shell"))
}

/// The browser, or `None` after a loud skip message; under `CI` a missing browser fails.
fn browser(test: &str) -> Option<PathBuf> {
    let found = find_browser();
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "report::{test}: no Chromium found and CI is set (.ci/run installs Debian's chromium)"
        );
        eprintln!(
            "\n==========\nSKIPPED: report::{test}: no Chromium found (apt-get install chromium, or set CHROME)\n==========\n"
        );
    }
    found
}

/// Runs `cmd`, killing it after `limit`.
fn run_limited(mut cmd: Command, limit: Duration) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the browser starts");
    let id = child.id();
    let start = Instant::now();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    loop {
        if let Ok(out) = rx.try_recv() {
            return out.expect("the browser ran");
        }
        if start.elapsed() > limit {
            let _ = Command::new("kill").arg("-9").arg(id.to_string()).status();
            panic!("the browser did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Headless Chromium on `page` (with `#fragment`) and `extra` arguments, its own profile.
fn chromium(browser: &Path, page: &Path, fragment: &str, extra: &[String]) -> Output {
    let profile = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(browser);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
        "--enable-logging=stderr",
        "--v=0",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .args(extra)
    .arg(format!(
        "file://{}{fragment}",
        page.canonicalize().unwrap().display()
    ));
    run_limited(cmd, Duration::from_secs(120))
}

/// A page as the browser left it: the DOM after its scripts ran, and its console messages.
struct Loaded {
    dom: String,
    console: Vec<String>,
}

fn load(browser: &Path, page: &Path, fragment: &str) -> Loaded {
    let out = chromium(browser, page, fragment, &["--dump-dom".to_string()]);
    let err = stderr(&out);
    assert!(out.status.success(), "chromium --dump-dom failed: {err}");
    let console = err
        .lines()
        .filter(|l| l.contains(":CONSOLE:") || l.contains(":CONSOLE("))
        .map(str::to_string)
        .collect();
    Loaded {
        dom: String::from_utf8_lossy(&out.stdout).into_owned(),
        console,
    }
}

/// `ci-artifacts/{name}` in the repository (git-ignored; CI keeps the folder).
fn screenshot(browser: &Path, page: &Path, name: &str, size: (u32, u32)) -> PathBuf {
    let dir = root().join("ci-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    let png = dir.join(name);
    let _ = std::fs::remove_file(&png);
    let out = chromium(
        browser,
        page,
        "",
        &[
            format!("--screenshot={}", png.display()),
            format!("--window-size={},{}", size.0, size.1),
        ],
    );
    assert!(out.status.success(), "screenshot: {}", stderr(&out));
    let bytes = std::fs::read(&png).expect("the screenshot was written");
    assert!(
        bytes.starts_with(b"\x89PNG"),
        "{} is not a PNG",
        png.display()
    );
    eprintln!("report screenshot: {}", png.display());
    png
}

#[test]
fn console_lines_catch_a_broken_page() {
    let Some(b) = browser("console_lines_catch_a_broken_page") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let broken = tmp.path().join("broken.html");
    std::fs::write(
        &broken,
        "<!DOCTYPE html><html><body><p>x</p>\n<script>console.error('explicit error');</script>\n<script>notDefined();</script>\n<script>var a = ;</script>\n</body></html>",
    )
    .unwrap();
    let l = load(&b, &broken, "");
    let all = l.console.join("\n");
    assert!(all.contains("explicit error"), "{all}");
    assert!(
        all.contains("Uncaught ReferenceError: notDefined is not defined"),
        "{all}"
    );
    assert!(all.contains("Uncaught SyntaxError"), "{all}");
    let clean = tmp.path().join("clean.html");
    std::fs::write(
        &clean,
        "<!DOCTYPE html><html><body><script>document.body.dataset.ok = '1';</script></body></html>",
    )
    .unwrap();
    let l = load(&b, &clean, "");
    assert!(l.console.is_empty(), "{:?}", l.console);
    assert!(
        l.dom.contains(r#"data-ok="1""#),
        "the DOM is taken after scripts ran"
    );
}

// ---------------------------------------------------------------------------------------
// Real runs of the fixture models.

/// Judges by content (the answer holding GOOD wins); `UNSURE` gets no verdict, `FAIL400` a
/// final 400.
fn judge(r: &Request) -> Reply {
    if r.user.contains("FAIL400") {
        return Reply::status(400);
    }
    if r.user.contains("UNSURE") {
        return Reply::text("I cannot decide.");
    }
    let a = r.user.find("GOOD");
    let b = r.user.find("[The Start of Assistant B's Answer]");
    match (a, b) {
        (Some(g), Some(bpos)) if g > bpos => Reply::text("[[B]]"),
        (Some(_), _) => Reply::text("[[A]]"),
        _ => Reply::text("no marker"),
    }
}

struct Runs {
    dir: PathBuf,
    page: PathBuf,
    v1: PathBuf,
    v2: PathBuf,
    dpo: PathBuf,
    dpo_free: PathBuf,
    judge: PathBuf,
}

fn json_file(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn report(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rewardbench"))
        .arg("report")
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap()
}

/// The fixture runs and their page, made once for all tests here.
fn runs() -> &'static Runs {
    static RUNS: OnceLock<Runs> = OnceLock::new();
    RUNS.get_or_init(|| {
        // Under cargo's scratch folder for tests (target/tmp), made afresh on each run.
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("report-fixture-runs");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // Relative, as a user types them: the summaries' `model` is what was given.
        let models = PathBuf::from("fixtures/models");
        let llmbar = PathBuf::from("fixtures/data/llmbar.jsonl");
        let s = |p: &Path| p.to_str().unwrap().to_string();
        let out = |name: &str| dir.join("results").join(name);
        let check = |o: Output| assert!(o.status.success(), "{}", stderr(&o));
        check(rewardbench(&[
            "--model",
            &s(&models.join("tiny-llama-rm")),
            "--dataset",
            &s(&llmbar),
            "--output_dir",
            &s(&out("v1")),
        ]));
        check(rewardbench(&[
            "v2",
            "--model",
            &s(&models.join("tiny-llama-rm")),
            "--dataset",
            "fixtures/data/rb2.jsonl",
            "--output_dir",
            &s(&out("v2")),
        ]));
        check(rewardbench(&[
            "--model",
            &s(&models.join("tiny-llama-policy")),
            "--ref_model",
            &s(&models.join("tiny-llama-ref")),
            "--dataset",
            &s(&llmbar),
            "--output_dir",
            &s(&out("dpo")),
        ]));
        check(rewardbench(&[
            "--model",
            &s(&models.join("tiny-llama-policy")),
            "--ref_free_type",
            "avg",
            "--dataset",
            &s(&llmbar),
            "--output_dir",
            &s(&out("dpo-ref-free")),
        ]));
        // A judge with one failed call and one unreadable answer.
        let srv = JudgeServer::start(judge);
        let rows = dir.join("judge_rows.jsonl");
        let row = |id: u32, subset: &str, p: &str, c: &str, r: &str| {
            json!({"id": id, "subset": subset, "prompt": p, "chosen": c, "rejected": r})
        };
        let lines: Vec<Value> = vec![
            row(1, "alpacaeval-easy", "Q1", "GOOD one", "bad one"),
            row(2, "alpacaeval-easy", "Q2", "GOOD two", "bad two"),
            row(3, "mt-bench-hard", "Q3", "bad three", "GOOD three"),
            row(4, "mt-bench-hard", "Q4 UNSURE", "x", "y"),
            row(5, "refusals-dangerous", "Q5 FAIL400", "x", "y"),
            row(6, "refusals-dangerous", "Q6", "GOOD six", "bad six"),
        ];
        std::fs::write(
            &rows,
            lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
        )
        .unwrap();
        let o = Command::new(env!("CARGO_BIN_EXE_rewardbench"))
            .args(["gen", "--model", "gpt-4o-2024-08-06", "--dataset"])
            .arg(&rows)
            .arg("--output_dir")
            .arg(out("judge"))
            .args(["--quiet", "--num_threads", "2"])
            .env("OPENAI_API_KEY", "sk-test")
            .env("OPENAI_BASE_URL", srv.openai_base())
            .env_remove("ANTHROPIC_API_KEY")
            .output()
            .unwrap();
        check(o);
        let page = dir.join("report.html");
        let o = report(&[
            dir.join("results").to_str().unwrap(),
            "--output",
            page.to_str().unwrap(),
            "--title",
            "Fixture runs <test>",
        ]);
        check(o);
        Runs {
            v1: out("v1").join("tiny-llama-rm.json"),
            v2: out("v2").join("tiny-llama-rm.json"),
            dpo: out("dpo").join("tiny-llama-policy.json"),
            dpo_free: out("dpo-ref-free").join("tiny-llama-policy.json"),
            judge: out("judge").join("openai/gpt-4o-2024-08-06.json"),
            page,
            dir,
        }
    })
}

// ---------------------------------------------------------------------------------------
// Reading the page.

/// The part of `html` from the element with `start` to the next `end`.
fn between<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let i = html
        .find(start)
        .unwrap_or_else(|| panic!("no {start} in the page"));
    let rest = &html[i..];
    &rest[..rest.find(end).unwrap_or(rest.len())]
}

/// The `<tr class="run">` rows of a board's table: (model label, {column: (data-value, text)}).
type Cells = std::collections::BTreeMap<String, (Option<String>, String)>;

fn table(dom: &str, board: &str) -> Vec<(String, Cells)> {
    let t = between(dom, &format!(r#"id="table-{board}""#), "</table>");
    let row = Regex::new(r#"(?s)<tr class="run"[^>]*>(.*?)</tr>"#).unwrap();
    let label = Regex::new(r#"<a href="\#model=\d+">([^<]*)</a>"#).unwrap();
    let cell =
        Regex::new(r#"(?s)<td(?: class="[^"]*")? data-col="([^"]+)"(?: data-value="([^"]*)")?[^>]*>(.*?)</td>"#)
            .unwrap();
    let tags = Regex::new(r"<[^>]+>").unwrap();
    row.captures_iter(t)
        .map(|r| {
            let body = r.get(1).unwrap().as_str();
            let name = label.captures(body).expect("a model link")[1].to_string();
            let cells = cell
                .captures_iter(body)
                .map(|c| {
                    let text = tags.replace_all(&c[3], " ").trim().to_string();
                    (
                        c[1].to_string(),
                        (c.get(2).map(|v| v.as_str().to_string()), text),
                    )
                })
                .collect();
            (name, cells)
        })
        .collect()
}

fn count(hay: &str, needle: &str) -> usize {
    hay.matches(needle).count()
}

/// Figures of one kind (`data-chart="…"`), each as its markup.
fn figures<'a>(dom: &'a str, kind: &str) -> Vec<&'a str> {
    let open = format!(r#"data-chart="{kind}""#);
    dom.match_indices(&open)
        .map(|(i, _)| {
            let rest = &dom[i..];
            &rest[..rest.find("</figure>").unwrap()]
        })
        .collect()
}

fn pct(x: f64) -> String {
    format!("{:.1}", 100.0 * x)
}

/// The cell's number is the summary's, to the bit, and its text that number in percent.
fn assert_cell(cells: &Cells, col: &str, want: f64, who: &str) {
    let (v, text) = cells
        .get(col)
        .unwrap_or_else(|| panic!("{who}: no {col} cell"));
    let v: f64 = v
        .as_deref()
        .unwrap_or_else(|| panic!("{who}: {col} has no value"))
        .parse()
        .unwrap();
    assert_eq!(v, want, "{who}: {col}");
    assert!(
        text.starts_with(&pct(want)),
        "{who}: {col} shows {text}, not {}",
        pct(want)
    );
}

/// The texts of the heatmap's cells (numbers and dashes), sorted.
fn heatmap_texts(fig: &str) -> Vec<String> {
    let t = Regex::new(r"(?s)<text[^>]*>\s*([0-9]+\.[0-9]|–)\s*</text>").unwrap();
    let mut v: Vec<String> = t.captures_iter(fig).map(|c| c[1].to_string()).collect();
    v.sort();
    v
}

// ---------------------------------------------------------------------------------------
// Tests without a browser.

#[test]
fn the_page_is_self_contained() {
    let r = runs();
    let html = std::fs::read_to_string(&r.page).unwrap();
    for bad in [
        "http://", "https://", "<link", "<iframe", "<img", " src=", "@import", "url(",
    ] {
        assert!(!html.contains(bad), "the page holds {bad}");
    }
    // The title is escaped, and the embedded data cannot close its script element.
    assert!(html.contains("<title>Fixture runs &lt;test&gt;</title>"));
    let data = between(&html, r#"id="report-data">"#, "</script>");
    assert!(!data[r#"id="report-data">"#.len()..].contains('<'));
    assert_eq!(count(&html, "<script"), 2, "the data and the one script");
    // Written atomically: no temporary file left beside it.
    let left: Vec<String> = std::fs::read_dir(&r.dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn unreadable_inputs_are_errors_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("r.html");
    // A file given by name that is not JSON.
    let bad = tmp.path().join("bad.json");
    std::fs::write(&bad, "{ not json").unwrap();
    let o = report(&[bad.to_str().unwrap(), "--output", out.to_str().unwrap()]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("bad.json") && e.contains("invalid JSON"), "{e}");
    // A file given by name that is JSON but no summary.
    let other = tmp.path().join("other.json");
    std::fs::write(&other, r#"{"rows": 3}"#).unwrap();
    let o = report(&[other.to_str().unwrap(), "--output", out.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("other.json"), "{}", stderr(&o));
    // A path that does not exist.
    let o = report(&["/nonexistent/results", "--output", out.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("/nonexistent/results"),
        "{}",
        stderr(&o)
    );
    // A summary whose outputs file has a broken line: the file and the line.
    let dir = tmp.path().join("run");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("m.json"),
        r#"{"model": "m", "extra_results": {"shp": 0.5}}"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("m_outputs.jsonl"),
        "{\"subset\": \"shp\", \"scores_chosen\": 1, \"scores_rejected\": 0}\n{oops\n",
    )
    .unwrap();
    let o = report(&[dir.to_str().unwrap(), "--output", out.to_str().unwrap()]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("m_outputs.jsonl") && e.contains("line 2"), "{e}");
    assert!(!out.exists(), "no page is written on an error");
}

// ---------------------------------------------------------------------------------------
// In the browser.

#[test]
fn fixture_runs_in_a_browser() {
    let Some(b) = browser("fixture_runs_in_a_browser") else {
        return;
    };
    let r = runs();
    let l = load(&b, &r.page, "");
    assert!(l.console.is_empty(), "console: {:#?}", l.console);
    assert!(
        l.dom.contains(r#"data-ready="1""#),
        "the script ran to its end"
    );

    // RewardBench: the RM, the DPO runs and the judge; RewardBench 2: the RM.
    let v1 = table(&l.dom, "v1");
    let v2 = table(&l.dom, "v2");
    assert_eq!(
        v1.len(),
        4,
        "{:?}",
        v1.iter().map(|x| &x.0).collect::<Vec<_>>()
    );
    assert_eq!(v2.len(), 1);
    let row = |rows: &[(String, Cells)], label: &str| -> Cells {
        rows.iter()
            .find(|(n, _)| n == label)
            .unwrap_or_else(|| {
                panic!(
                    "no row {label} in {:?}",
                    rows.iter().map(|x| &x.0).collect::<Vec<_>>()
                )
            })
            .1
            .clone()
    };
    let rm = row(&v1, "fixtures/models/tiny-llama-rm");
    let s = json_file(&r.v1);
    assert_cell(
        &rm,
        "Chat Hard",
        s["section_scores"]["Chat Hard"].as_f64().unwrap(),
        "v1",
    );
    assert_eq!(rm["prompts"].0.as_deref(), Some("40"));
    let dpo_label = "fixtures/models/tiny-llama-policy [ref fixtures/models/tiny-llama-ref]";
    let dpo = row(&v1, dpo_label);
    let s = json_file(&r.dpo);
    assert_cell(
        &dpo,
        "Chat Hard",
        s["section_scores"]["Chat Hard"].as_f64().unwrap(),
        "dpo",
    );
    assert_eq!(dpo["type"].1, "DPO");
    assert!(dpo["details"]
        .1
        .contains("reference model: fixtures/models/tiny-llama-ref"));
    let free = row(&v1, "fixtures/models/tiny-llama-policy [ref-free avg]");
    assert_eq!(free["type"].1, "DPO Ref. Free");
    assert!(free["details"].1.contains("reference-free: avg"));
    let s = json_file(&r.dpo_free);
    assert_cell(
        &free,
        "Chat Hard",
        s["section_scores"]["Chat Hard"].as_f64().unwrap(),
        "ref-free",
    );
    let jd = row(&v1, "openai/gpt-4o-2024-08-06");
    let s = json_file(&r.judge);
    for sec in ["Chat", "Chat Hard", "Safety"] {
        assert_cell(
            &jd,
            sec,
            s["section_scores"][sec].as_f64().unwrap(),
            "judge",
        );
    }
    assert_eq!(jd["type"].1, "Generative RM");
    let details = &jd["details"].1;
    for want in [
        "protocol: pairwise",
        "judges: gpt-4o-2024-08-06",
        "failed calls: 1",
        "unreadable answers: 1",
    ] {
        assert!(details.contains(want), "judge details: {details}");
    }
    let rb2 = row(&v2, "fixtures/models/tiny-llama-rm");
    let s = json_file(&r.v2);
    assert_cell(&rb2, "Score", s["Score"].as_f64().unwrap(), "v2");
    for k in [
        "Factuality",
        "Precise IF",
        "Math",
        "Safety",
        "Focus",
        "Ties",
    ] {
        assert_cell(&rb2, k, s[k].as_f64().unwrap(), "v2");
    }
    let ci = s["confidence_intervals"]["Score"].as_array().unwrap();
    let ci_text = format!(
        "{}–{}",
        pct(ci[0].as_f64().unwrap()),
        pct(ci[1].as_f64().unwrap())
    );
    assert!(
        rb2["Score"].1.contains(&ci_text),
        "{:?} lacks {ci_text}",
        rb2["Score"]
    );
    // The only RB2 model ranks first for sure (the leaderboard's rank range).
    let rank = &rb2["rank95"];
    assert_eq!(rank.0.as_deref(), Some("1"));
    assert!(
        rank.1.starts_with('1') && rank.1.contains("≈#1"),
        "{rank:?}"
    );

    // Charts: bars per metric (v1: the three sections present; v2: Score and six subsets),
    // one heatmap per board holding every subset value of the summaries.
    let bars = figures(&l.dom, "bars");
    assert_eq!(bars.len(), 3 + 7);
    assert!(bars.iter().all(|f| count(f, "<svg") == 1));
    let heat = figures(&l.dom, "heatmap");
    assert_eq!(heat.len(), 2);
    let mut want: Vec<String> = Vec::new();
    let v1_subsets: std::collections::BTreeSet<String> = [&r.v1, &r.dpo, &r.dpo_free]
        .iter()
        .flat_map(|p| {
            json_file(p)["extra_results"]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect::<Vec<_>>()
        })
        .chain(["alpacaeval-easy", "mt-bench-hard", "refusals-dangerous"].map(String::from))
        .collect();
    for p in [&r.v1, &r.dpo, &r.dpo_free] {
        let s = json_file(p);
        for k in &v1_subsets {
            want.push(s["extra_results"][k].as_f64().map_or("–".into(), pct));
        }
    }
    let s = json_file(&r.judge);
    for k in &v1_subsets {
        want.push(s[k].as_f64().map_or("–".into(), pct));
    }
    want.sort();
    assert_eq!(heatmap_texts(heat[0]), want, "the v1 heatmap's cells");
    let s = json_file(&r.v2);
    let mut want: Vec<String> = [
        "Factuality",
        "Precise IF",
        "Math",
        "Safety",
        "Focus",
        "Ties",
    ]
    .iter()
    .map(|k| pct(s[*k].as_f64().unwrap()))
    .collect();
    want.sort();
    assert_eq!(heatmap_texts(heat[1]), want, "the v2 heatmap's cells");

    // Per model: a histogram for each scored run (not the judge), a length-bias plot per
    // subset (5 LLMBar subsets for the v1 and DPO runs, 6 RB2 subsets); one panel shown.
    assert_eq!(figures(&l.dom, "histogram").len(), 4);
    assert_eq!(figures(&l.dom, "length").len(), 3 * 5 + 6);
    let panels =
        Regex::new(r#"<div class="model-panel" data-model="(\d+)"( hidden="")?>"#).unwrap();
    let shown: Vec<String> = panels
        .captures_iter(&l.dom)
        .filter(|c| c.get(2).is_none())
        .map(|c| c[1].to_string())
        .collect();
    assert_eq!(shown, ["0"]);
    assert!(l.dom.contains("a judge gives verdicts, not scores"));

    // The address picks a model and a sort order.
    let judge_index = Regex::new(r#"<a href="\#model=(\d+)">openai/gpt-4o-2024-08-06</a>"#)
        .unwrap()
        .captures(&l.dom)
        .expect("the judge's row")[1]
        .to_string();
    let l2 = load(
        &b,
        &r.page,
        &format!("#model={judge_index}&sort=v1:Chat%20Hard:asc"),
    );
    assert!(l2.console.is_empty(), "console: {:#?}", l2.console);
    let shown: Vec<String> = panels
        .captures_iter(&l2.dom)
        .filter(|c| c.get(2).is_none())
        .map(|c| c[1].to_string())
        .collect();
    assert_eq!(shown, [judge_index]);
    let order: Vec<f64> = table(&l2.dom, "v1")
        .iter()
        .map(|(_, c)| c["Chat Hard"].0.as_deref().unwrap().parse().unwrap())
        .collect();
    let mut sorted = order.clone();
    sorted.sort_by(f64::total_cmp);
    assert_eq!(order, sorted, "ascending by Chat Hard");
    assert_ne!(
        order,
        table(&l.dom, "v1")
            .iter()
            .map(|(_, c)| c["Chat Hard"].0.as_deref().unwrap().parse::<f64>().unwrap())
            .collect::<Vec<_>>(),
        "the order changed"
    );

    screenshot(&b, &r.page, "report.png", (1400, 2600));
}

// ---------------------------------------------------------------------------------------
// 20 models × 30 subsets.

const SUBSETS: [&str; 30] = [
    "alpacaeval-easy",
    "alpacaeval-length",
    "alpacaeval-hard",
    "mt-bench-easy",
    "mt-bench-med",
    "mt-bench-hard",
    "llmbar-natural",
    "llmbar-adver-neighbor",
    "llmbar-adver-GPTInst",
    "llmbar-adver-GPTOut",
    "llmbar-adver-manual",
    "refusals-dangerous",
    "refusals-offensive",
    "xstest-should-refuse",
    "xstest-should-respond",
    "donotanswer",
    "math-prm",
    "hep-cpp",
    "hep-go",
    "hep-java",
    "hep-js",
    "hep-python",
    "hep-rust",
    "anthropic_helpful",
    "anthropic_hhh",
    "shp",
    "summarize",
    "anthropic_harmless",
    "mtbench_gpt4",
    "mtbench_human",
];
const ROWS: usize = 60;

/// SplitMix64: the same synthetic set on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// 20 summaries with `_outputs.jsonl` (60 rows per subset), as this tool writes them;
/// returns each model's name and subset accuracies.
fn synthetic(dir: &Path) -> Vec<(String, Vec<f64>)> {
    let mut rng = Rng(7);
    let mut out = Vec::new();
    for m in 0..20 {
        let name = format!(
            "org-{m:02}/reward-model-{}-v{m}{}",
            ["7B", "8B", "13B", "70B"][m % 4],
            if m % 5 == 0 {
                "-with-a-long-suffix"
            } else {
                ""
            }
        );
        let skill = 0.2 + 0.05 * m as f64;
        let (mut acc, mut lines) = (Vec::new(), String::new());
        for s in SUBSETS {
            let mut right = 0;
            for i in 0..ROWS {
                let ld = (rng.next() - 0.5) * 600.0;
                let margin = skill + (rng.next() - 0.5) * 3.0 + 0.001 * ld * (m % 3) as f64;
                let chosen = rng.next();
                right += usize::from(margin > 0.0);
                let (lc, lr) = (20 + ld.max(0.0) as usize, 20 + (-ld).max(0.0) as usize);
                lines.push_str(&format!(
                    "{}\n",
                    json!({"prompt": "p", "results": u8::from(margin > 0.0), "scores_chosen": chosen,
                        "scores_rejected": chosen - margin, "text_chosen": "c".repeat(lc),
                        "text_rejected": "r".repeat(lr), "subset": s, "id": i})
                ));
            }
            acc.push(right as f64 / ROWS as f64);
        }
        let extra: serde_json::Map<String, Value> = SUBSETS
            .iter()
            .zip(&acc)
            .map(|(s, a)| (s.to_string(), json!(a)))
            .collect();
        let ci: serde_json::Map<String, Value> = SUBSETS
            .iter()
            .zip(&acc)
            .map(|(s, a)| {
                (
                    s.to_string(),
                    json!([(a - 0.1).max(0.0), (a + 0.1).min(1.0)]),
                )
            })
            .collect();
        let baselines: serde_json::Map<String, Value> = SUBSETS
            .iter()
            .map(|s| {
                (
                    s.to_string(),
                    json!({"longer_tokens": null, "shorter_tokens": null, "longer_chars": 0.55, "shorter_chars": 0.45}),
                )
            })
            .collect();
        let summary = json!({"accuracy": 0.5, "num_prompts": ROWS * 30, "model": name,
            "ref_model": null, "extra_results": extra, "confidence_intervals": {"subsets": ci},
            "subset_counts": SUBSETS.iter().map(|s| (s.to_string(), json!(ROWS))).collect::<serde_json::Map<_, _>>(),
            "length_baselines": baselines});
        let d = dir.join(format!("m{m:02}"));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("rm.json"), summary.to_string()).unwrap();
        std::fs::write(d.join("rm_outputs.jsonl"), lines).unwrap();
        out.push((name, acc));
    }
    out
}

#[test]
fn twenty_models_by_thirty_subsets() {
    let tmp = tempfile::tempdir().unwrap();
    let models = synthetic(&tmp.path().join("results"));
    let page = tmp.path().join("report.html");
    let o = report(&[
        tmp.path().join("results").to_str().unwrap(),
        "--output",
        page.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let size = std::fs::metadata(&page).unwrap().len();
    eprintln!("20 models x 30 subsets: {size} bytes");
    assert!(size < 6_000_000, "the page is {size} bytes");
    let html = std::fs::read_to_string(&page).unwrap();
    // At most 50 points per length-bias plot: 20 x 30 plots of 50 of the 60 rows.
    assert_eq!(count(&html, r#"data-chart="length""#), 600);
    let points: usize = figures(&html, "length")
        .iter()
        .map(|f| count(f, "<circle"))
        .sum();
    assert_eq!(points, 600 * 50);
    assert_eq!(count(&html, "(50 shown)"), 600);

    let Some(b) = browser("twenty_models_by_thirty_subsets") else {
        return;
    };
    let l = load(&b, &page, "");
    assert!(l.console.is_empty(), "console: {:#?}", l.console);
    assert!(l.dom.contains(r#"data-ready="1""#));
    let rows = table(&l.dom, "v1");
    assert_eq!(rows.len(), 20);
    let heat = figures(&l.dom, "heatmap");
    let mut want: Vec<String> = models
        .iter()
        .flat_map(|(_, acc)| acc.iter().map(|a| pct(*a)))
        .collect();
    want.sort();
    assert_eq!(heatmap_texts(heat[0]), want);
    // Every subset label is on the heatmap, whole (none is longer than 28 characters).
    for s in SUBSETS {
        assert!(heat[0].contains(&format!(">\n{s}\n</text>")), "{s}");
    }
    // Only the selected model's 30 plots are shown.
    let shown = Regex::new(r#"<div class="model-panel" data-model="\d+">"#).unwrap();
    assert_eq!(shown.find_iter(&l.dom).count(), 1);
    screenshot(&b, &page, "report-20x30.png", (1500, 3000));
}
