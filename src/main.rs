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
}

#[derive(Subcommand)]
enum Command {
    Verify(cmd::verify::Args),
    Aof(cmd::aof::Args),
    Diff(cmd::diff::Args),
    RestoreTest(cmd::restore_test::Args),
    Info(cmd::info::Args),
    Export(cmd::export::Args),
    Merge(cmd::merge::Args),
    Split(cmd::split::Args),
}

fn main() -> ExitCode {
    // Before any thread starts: SIGINT / SIGTERM stop our children and remove our temp files.
    rdbtool::cleanup::install();
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Verify(a) => cmd::verify::run(a),
        Command::Aof(a) => cmd::aof::run(a),
        Command::Diff(a) => cmd::diff::run(a),
        Command::RestoreTest(a) => cmd::restore_test::run(a),
        Command::Info(a) => cmd::info::run(a),
        Command::Export(a) => cmd::export::run(a),
        Command::Merge(a) => cmd::merge::run(a),
        Command::Split(a) => cmd::split::run(a),
    };
    for n in rdbtool::cleanup::take_notes() {
        eprintln!("rdbtool: {n}");
    }
    ExitCode::from(code)
}
