//! `rdbtool info FILE`: what a backup holds.

use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    file: PathBuf,
    #[arg(long)]
    json: bool,
}

pub fn run(_args: Args) -> u8 {
    2
}
