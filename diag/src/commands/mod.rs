//! One module per subcommand; each returns the process exit code.

pub mod analyze;
pub mod bundle;
pub mod changes;
pub mod check;
pub mod collect;
pub mod misc;
pub mod remote;
pub mod trace;
pub mod tui;
pub mod views;

use std::io::Write;

use anyhow::Context;

use crate::cli::{Cli, Command, Format, InputOpts, SourceArgs};
use crate::input::{self, Input, InputError, LoadOptions, Loaded};
use crate::render::analyze::InputProblem;
use crate::render::Style;

/// Exit codes (documented in `diag --help`).
pub const EXIT_OK: i32 = 0;
pub const EXIT_FINDINGS: i32 = 1;
pub const EXIT_BAD_INPUT: i32 = 2;

/// Global output settings.
#[derive(Debug, Clone, Copy)]
pub struct Out {
    pub format: Format,
    pub style: Style,
    pub quiet: bool,
}

pub fn run(cli: Cli) -> anyhow::Result<i32> {
    let out = Out {
        format: cli.output,
        style: Style::detect(cli.color),
        quiet: cli.quiet,
    };
    match cli.command {
        Command::Analyze(a) => analyze::run(a, out),
        Command::Snat(a) => views::run_snat(a, out),
        Command::Routes(a) => views::run_routes(a, out),
        Command::Trace(a) => trace::run(a, out),
        Command::Check(a) => check::run(a, out),
        Command::Collect(a) => collect::run(&a.targets, &a.out_dir, a.no_progress),
        Command::Changes(a) => changes::run(a, out),
        Command::Bundle(a) => bundle::run(a, out),
        Command::Tui(a) => tui::run(a, out),
        Command::Rules => misc::rules(out),
        Command::Completions { shell } => misc::completions(shell),
        Command::Schema { what } => misc::schema(what),
    }
}

/// Inputs of `--local` / `--from` / remote targets. `remote` keeps the remote state between
/// calls of one invocation (`check --wait` rounds): see [`remote::Remote`].
pub fn source_inputs(
    src: &SourceArgs,
    opts: &InputOpts,
    out: Out,
    remote: &mut Option<remote::Remote>,
) -> anyhow::Result<Sources> {
    if !src.local && src.from.is_empty() && !opts.targets.has_targets() {
        anyhow::bail!(
            "nothing to read: give --local, --from PATH..., or remote targets (--hosts, \
             --ssh-config with --host, --ec2-cluster, --instance-ids)"
        );
    }
    let mut inputs: Vec<Input> = src.from.iter().map(|p| Input::from_arg(p)).collect();
    if src.local {
        inputs.push(Input::Local {
            agent_path: opts.local_agent(),
        });
    }
    let mut sources = remote_inputs(opts, out, remote);
    inputs.append(&mut sources.inputs);
    sources.inputs = inputs;
    Ok(sources)
}

/// Snapshots to analyse, plus the fleet outcomes of remote nodes (empty without targets).
pub struct Sources {
    pub inputs: Vec<Input>,
    pub outcomes: Vec<model::NodeOutcome>,
}

impl Sources {
    /// `fleet.node-unreachable` for every remote node that delivered no snapshot.
    pub fn unreachable(&self) -> Vec<model::Finding> {
        analysis::unreachable::findings(&self.outcomes)
    }
}

/// Collect the remote targets, if any were given: one input per node (its snapshot, or why
/// there is none). The first call builds `remote` from the flags; later calls reuse it.
pub fn remote_inputs(opts: &InputOpts, out: Out, remote: &mut Option<remote::Remote>) -> Sources {
    let mut sources = Sources {
        inputs: Vec::new(),
        outcomes: Vec::new(),
    };
    if !opts.targets.has_targets() {
        return sources;
    }
    let gathered = (|| -> anyhow::Result<Vec<fleet::NodeResult>> {
        let r = match remote {
            Some(r) => r,
            None => remote.insert(
                remote::Remote::from_args_daemon(&opts.targets)?
                    .context("remote targets were given but none were built")?,
            ),
        };
        remote::runtime()?.block_on(r.gather(!out.quiet))
    })();
    match gathered {
        Ok(results) => {
            if !out.quiet {
                let outcomes: Vec<_> = results.iter().map(|(o, _)| o.clone()).collect();
                eprintln!("diag: {}", fleet::report::summary_line(&outcomes));
            }
            for (outcome, snapshot) in results {
                if let (false, Some(d)) = (
                    out.quiet,
                    snapshot.as_ref().and_then(analyze::daemon_source),
                ) {
                    eprintln!(
                        "diag: {}: snapshot {}",
                        model::sanitize::terminal(&outcome.name),
                        crate::render::analyze::daemon_note(&d)
                    );
                }
                sources.inputs.push(Input::from_fleet(&outcome, snapshot));
                sources.outcomes.push(outcome);
            }
        }
        Err(e) => sources.inputs.push(Input::Provided {
            label: "remote targets".into(),
            outcome: Box::new(Err(InputError::Fleet {
                node: "(targets)".into(),
                message: format!("{e:#}"),
            })),
        }),
    }
    sources
}

/// Read inputs; a bad `--map` is an input error too.
pub fn load(inputs: Vec<Input>, opts: &InputOpts) -> Vec<Loaded> {
    match LoadOptions::new(&opts.map) {
        Ok(o) => input::load_all(inputs, &o),
        Err(e) => vec![Loaded::err("--map", e)],
    }
}

/// Split loaded inputs into snapshots (with their per-input problems) and input errors.
pub struct Split {
    pub nodes: Vec<(String, model::Snapshot, Vec<String>)>,
    pub errors: Vec<InputProblem>,
}

pub fn split(loaded: Vec<Loaded>) -> Split {
    let mut nodes = Vec::new();
    let mut errors = Vec::new();
    for l in loaded {
        match l.outcome {
            Ok(s) => nodes.push((l.label, s, l.problems)),
            Err(e) => {
                errors.push(problem(&l.label, &e));
                for p in l.problems {
                    errors.push(InputProblem {
                        input: l.label.clone(),
                        error: p,
                    });
                }
            }
        }
    }
    Split { nodes, errors }
}

pub fn problem(label: &str, e: &InputError) -> InputProblem {
    InputProblem {
        input: label.to_string(),
        error: e.to_string(),
    }
}

/// Write to stdout; a closed pipe (`| head`) is not an error.
pub fn emit(s: &str) -> anyhow::Result<()> {
    let mut o = std::io::stdout().lock();
    match o.write_all(s.as_bytes()).and_then(|_| o.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.context("writing to stdout"),
    }
}

/// Input errors also go to stderr when stdout is a machine format (so a redirect does not
/// hide them).
pub fn note_errors(out: Out, errors: &[InputProblem]) {
    if out.quiet || out.format == Format::Text {
        return;
    }
    for e in errors {
        eprintln!("diag: {}", model::sanitize::terminal(&e.error));
    }
}
