//! `trainer`: see `trainer --help`.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = trainer::cli::Cli::parse();
    match trainer::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}
