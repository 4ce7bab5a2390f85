//! The `kindred` binary: parses the command line and hands off to the library.
#![forbid(unsafe_code)]

use clap::Parser;
use kindred::cli::Cli;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match kindred::commands::dispatch(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
