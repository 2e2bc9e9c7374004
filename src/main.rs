//! The `rewardbench` binary: parse the flags, resolve them to a configuration, run the
//! pipeline, map errors to exit codes (1: an error, 130: interrupted).

mod cli;

use std::process::ExitCode;

use clap::Parser;
use rewardbench::run::observer::{Observer, Stderr};

use cli::{Args, Command};

/// The error and its causes, leaving out a cause whose text the message already holds.
fn message(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !out.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
    }
    out
}

fn main() -> ExitCode {
    // Called as `rewardbench-gen` (a link to this binary): the judge command's flags.
    let argv0 = std::env::args_os().next().unwrap_or_default();
    let as_gen = std::path::Path::new(&argv0)
        .file_stem()
        .is_some_and(|s| s == "rewardbench-gen");
    let outcome = if as_gen {
        let g = cli::gen::GenCli::parse();
        on_interrupt(&mut Stderr);
        cli::gen::run(&g.args).map(|()| ExitCode::SUCCESS)
    } else {
        run(Args::parse())
    };
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", message(&e));
            // An interrupted judge run keeps its answers: 130, as an interrupted evaluation.
            let interrupted = matches!(
                e.downcast_ref::<rewardbench::scorer::judge::run::JudgeError>(),
                Some(rewardbench::scorer::judge::run::JudgeError::Interrupted { .. })
            );
            if interrupted {
                ExitCode::from(130)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// Ctrl-C: the first stops the run after the model call in flight, a second at once.
fn on_interrupt(obs: &mut dyn Observer) {
    let handler = ctrlc::set_handler(|| {
        if rewardbench::run::cancel::request() {
            std::process::exit(130);
        }
        eprintln!(
            "\ninterrupt: stopping after the model call in flight (Ctrl-C again to stop now)"
        );
    });
    if let Err(e) = handler {
        obs.note(&format!(
            "no Ctrl-C handler ({e}); an interrupted run still resumes from its cache"
        ));
    }
}

fn run(args: Args) -> anyhow::Result<ExitCode> {
    match &args.command {
        Some(Command::Render(r)) => return cli::render::run(r).map(|()| ExitCode::SUCCESS),
        Some(Command::Leaderboard(l)) => {
            return cli::leaderboard::run(l).map(|()| ExitCode::SUCCESS)
        }
        Some(Command::Gen(g)) => {
            on_interrupt(&mut Stderr);
            return cli::gen::run(g).map(|()| ExitCode::SUCCESS);
        }
        Some(Command::Rescore(r)) => return cli::rescore::run(r).map(|()| ExitCode::SUCCESS),
        Some(Command::Report(r)) => return cli::report::run(r).map(|()| ExitCode::SUCCESS),
        Some(Command::Compare(c)) => return cli::compare::run(c).map(|()| ExitCode::SUCCESS),
        Some(Command::Merge(m)) => return cli::merge::run(m).map(|()| ExitCode::SUCCESS),
        Some(Command::Publish(p)) => return cli::publish::run(p).map(|()| ExitCode::SUCCESS),
        Some(Command::Sweep(s)) => {
            on_interrupt(&mut Stderr);
            return cli::sweep::run(s).map(|()| ExitCode::SUCCESS);
        }
        Some(Command::V2(_)) | None => {}
    }
    let mut obs = Stderr;
    let resolved = match &args.command {
        Some(Command::V2(v)) => cli::resolve::resolve_v2(v, &mut obs)?,
        _ => cli::resolve::resolve(&args.eval, &mut obs)?,
    };
    on_interrupt(&mut obs);
    match rewardbench::pipeline::run(&resolved.config, &resolved.info, &mut obs) {
        Ok(done) => {
            print!("{}", done.table);
            let files: Vec<String> = done
                .written
                .iter()
                .map(|p| p.display().to_string())
                .collect();
            if !files.is_empty() {
                eprintln!("wrote {}", files.join(", "));
            }
            // Local files first: a failed upload leaves them as they are.
            if let (Some(p), false) = (&resolved.publish, resolved.config.output.dry_run) {
                cli::publish::after_run(p, &resolved.config.output.dir, done.summary.as_deref())?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) if e.is_interrupted() => {
            eprintln!("error: {e}");
            Ok(ExitCode::from(130))
        }
        Err(e) => {
            use rewardbench::backend::BackendError;
            use rewardbench::pipeline::PipelineError;
            use rewardbench::scorer::rm::EvalError;
            // A head that does not fit the export: say which settings the registry gave.
            let head = matches!(
                &e,
                PipelineError::Head(_)
                    | PipelineError::Eval(EvalError::Head(_))
                    | PipelineError::Eval(EvalError::Backend(BackendError::WrongKind { .. }))
            );
            match cli::resolve::head_context(&resolved.info).filter(|_| head) {
                Some(c) => Err(anyhow::Error::from(e).context(c)),
                None => Err(e.into()),
            }
        }
    }
}
