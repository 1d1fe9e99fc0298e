//! `diag rules`, `diag completions`, `diag schema`.

use clap::CommandFactory;

use crate::cli::{Cli, Format, SchemaKind};
use crate::render::{self, json};

use super::{emit, Out, EXIT_OK};

pub fn rules(out: Out) -> anyhow::Result<i32> {
    let cat = analysis::catalogue();
    let text = match out.format {
        Format::Text => render::rules::text(cat, out.style),
        Format::Json => json(&cat)?,
        Format::Markdown => render::rules::markdown(cat),
    };
    emit(&text)?;
    Ok(EXIT_OK)
}

pub fn completions(shell: clap_complete::Shell) -> anyhow::Result<i32> {
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "diag", &mut buf);
    emit(&String::from_utf8_lossy(&buf))?;
    Ok(EXIT_OK)
}

pub fn schema(what: SchemaKind) -> anyhow::Result<i32> {
    let v = match what {
        SchemaKind::Snapshot => model::schema::snapshot_schema(),
        SchemaKind::Report => render::analyze::report_schema(),
        SchemaKind::Fleet => model::schema::fleet_schema(),
        SchemaKind::Trace => model::trace::trace_schema(),
    };
    emit(&json(&v)?)?;
    Ok(EXIT_OK)
}
