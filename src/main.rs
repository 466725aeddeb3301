//! The `rdbtool` binary: parses the command line and dispatches to one module per subcommand.
//! Exit codes: 0 success / valid, 1 invalid input or differences found, 2 could not run.

mod cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "rdbtool", version, about = "Verify, inspect and transform Redis / Valkey RDB backups")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Zone of times written without one: UTC or an offset such as +02:00.
    ///
    /// The zone of times given without one ('2026-11-21 06:13:00'): UTC (default) or an offset
    /// such as +02:00. Applies to every time flag (--to, --from, --now).
    #[arg(long, global = true, value_name = "ZONE", default_value = "UTC", value_parser = rdbtool::time::parse_tz)]
    tz: rdbtool::time::Tz,
}

/// Reads `--tz` before clap parses the rest: time flags are parsed as clap meets them, which
/// may be before `--tz` on the line.
fn preset_tz() {
    let args: Vec<String> = std::env::args_os().map(|a| a.to_string_lossy().into_owned()).collect();
    let value = args.iter().enumerate().find_map(|(i, a)| match a.strip_prefix("--tz") {
        Some("") => args.get(i + 1).cloned(),
        Some(v) => v.strip_prefix('=').map(str::to_owned),
        None => None,
    });
    // A bad value is reported by clap when it parses the flag itself.
    if let Some(tz) = value.and_then(|v| rdbtool::time::parse_tz(&v).ok()) {
        rdbtool::time::set_cli_tz(tz);
    }
}

#[derive(Subcommand)]
enum Command {
    Verify(cmd::verify::Args),
    Aof(cmd::aof::Args),
    Diff(cmd::diff::Args),
    Restore(cmd::restore::Args),
    RestoreTest(cmd::restore_test::Args),
    Info(cmd::info::Args),
    Report(cmd::report::Args),
    Lint(cmd::lint::Args),
    Export(cmd::export::Args),
    Merge(cmd::merge::Args),
    Split(cmd::split::Args),
}

fn main() -> ExitCode {
    // Before any thread starts: SIGINT / SIGTERM stop our children and remove our temp files.
    rdbtool::cleanup::install();
    preset_tz();
    let cli = Cli::parse();
    rdbtool::time::set_cli_tz(cli.tz);
    let code = match cli.command {
        Command::Verify(a) => cmd::verify::run(a),
        Command::Aof(a) => cmd::aof::run(a),
        Command::Diff(a) => cmd::diff::run(a),
        Command::Restore(a) => cmd::restore::run(a),
        Command::RestoreTest(a) => cmd::restore_test::run(a),
        Command::Info(a) => cmd::info::run(a),
        Command::Report(a) => cmd::report::run(a),
        Command::Lint(a) => cmd::lint::run(a),
        Command::Export(a) => cmd::export::run(a),
        Command::Merge(a) => cmd::merge::run(a),
        Command::Split(a) => cmd::split::run(a),
    };
    for n in rdbtool::cleanup::take_notes() {
        eprintln!("rdbtool: {n}");
    }
    ExitCode::from(code)
}
