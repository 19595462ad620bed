//! `ribat`: one binary for every role of a Ribat node.
//!
//! Owns: command-line parsing, the node directory, passphrase sources, and wiring the
//! crates together. Must never: print a secret, or hide an error's cause from the user.
#![forbid(unsafe_code)]

mod bench;
mod demo;
mod embedded;
mod home;
mod keys;
mod passphrases;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Ribat keeps a social-security fund's records readable only by a quorum of custodians.
#[derive(Parser)]
#[command(name = "ribat", version, about, long_about = None)]
struct Cli {
    /// Node directory (default: $RIBAT_HOME, else $XDG_DATA_HOME/ribat, else ~/.local/share/ribat).
    #[arg(long, global = true, env = "RIBAT_HOME")]
    home: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate a small fund, seal it in a fresh embedded node under HOME/demo, and show
    /// who can read what.
    Demo {
        /// Insured persons to generate.
        #[arg(long, default_value_t = 2_000)]
        persons: usize,
        /// Seed of the synthetic fund.
        #[arg(long, default_value_t = 2025)]
        seed: u64,
    },
    /// Key management.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Benchmarks (figures with a baseline measured in the same run).
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Key ceremony: draw one key per class, split it among custodians, seal each share.
    Init {
        /// Custodians needed to decrypt (t).
        #[arg(long, default_value_t = 2)]
        threshold: usize,
        /// Custodians (n).
        #[arg(long, default_value_t = 3)]
        custodians: usize,
        /// Sensitivity classes, comma-separated; `identity` is required.
        #[arg(long, value_delimiter = ',', default_value = "identity,financial")]
        classes: Vec<String>,
        /// Where custodians' passphrases come from: prompt, env (RIBAT_CUSTODIAN_N_PASSPHRASE for custodian N) or dir:PATH (files custodian-N.pass).
        #[arg(long, default_value = "prompt")]
        passphrases: passphrases::Source,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Sealing, partial decryption, proofs, combination, and batches.
    Crypto {
        /// Records per batch.
        #[arg(long, default_value_t = 1_000)]
        batch: usize,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Demo { persons, seed } => {
            let home = home::Home::resolve(cli.home)?;
            demo::run(&home, &demo::DemoOptions { persons, seed })
        }
        Command::Keys {
            command:
                KeysCommand::Init {
                    threshold,
                    custodians,
                    classes,
                    passphrases,
                },
        } => {
            let home = home::Home::resolve(cli.home)?;
            keys::init(
                &home,
                threshold,
                custodians,
                &classes,
                &passphrases,
                ribat_crypto::passphrase::KdfParams::default(),
            )
        }
        Command::Bench {
            command: BenchCommand::Crypto { batch, json },
        } => {
            anyhow::ensure!(
                (1..=ribat_crypto::dleq::MAX_BATCH).contains(&batch),
                "--batch must be between 1 and 65535"
            );
            bench::crypto(batch, json)
        }
    }
}
