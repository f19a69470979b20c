//! The `edgechat` binary: parse the command line, run one subcommand.

use clap::Parser;
use edgechat::config::{Cli, Command};

fn main() {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Serve(args) => edgechat::serve(args),
        Command::Client(args) => edgechat::client::run(args),
        Command::Bench(args) => edgechat::bench::run(args),
        Command::Stop(args) => edgechat::stop::run(args),
    };
    if let Err(e) = result {
        eprintln!("edgechat: {e}");
        std::process::exit(e.exit_code());
    }
}
