//! Command line: `serve`, `gc`, `config`, `parked`, `check`, `upload`, `completions`, `man`.

use chunkd_http::listener::Address;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use serde::Serialize;

use crate::config::Config;
use crate::{assemble, serve, upload};

#[derive(Parser, Debug)]
#[command(name = "chunkd", version, about = "Resumable, chunked HTTP uploads")]
pub struct Cli {
    /// TOML configuration file (settings: file, then CHUNKD_* environment, then flags).
    #[arg(long, global = true, env = "CHUNKD_CONFIG")]
    pub config: Option<PathBuf>,

    #[command(flatten)]
    pub overrides: Overrides,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Flags that override the file and the environment.
#[derive(Args, Debug, Serialize, Default)]
pub struct Overrides {
    /// Address to listen on: host:port, tls://host:port or unix:/path (default
    /// 127.0.0.1:1080; port 0 picks a free one).
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<Address>,
    /// Directory for upload files and state (default ./chunkd-data).
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// Largest upload in bytes (0 = no limit).
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_size: Option<u64>,
    /// Public origin for upload URLs, such as `https://uploads.example.com`.
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the upload server (the default).
    Serve,
    /// Delete expired unfinished uploads once and exit.
    Gc,
    /// Print the effective configuration as TOML and exit.
    Config,
    /// Count the post-events parked after failing every delivery attempt; with
    /// `--replay`, give them their attempts again (a running server delivers them).
    Parked {
        /// Unpark them: due now, attempts from zero.
        #[arg(long)]
        replay: bool,
    },
    /// Check the configuration and reach every service it names (stores, TLS
    /// certificate, hook receiver); exit 1 if anything is wrong.
    Check,
    /// Upload files to a tus server (or an IETF draft endpoint), resumably: rerun the
    /// same command after an interruption and it continues where it stopped.
    Upload(Box<upload::Args>),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), e.g. `chunkd man > /usr/share/man/man1/chunkd.1`.
    Man,
}

/// What needs no configuration (the upload client, completions, the manual page), run
/// before any is read.
pub fn run_without_config(command: &Option<Command>) -> Option<anyhow::Result<ExitCode>> {
    let done = |result: anyhow::Result<()>| Some(result.map(|()| ExitCode::SUCCESS));
    match command {
        Some(Command::Upload(args)) => Some(upload::run(args)),
        Some(Command::Completions { shell }) => done(completions(*shell)),
        Some(Command::Man) => done(man()),
        _ => None,
    }
}

fn completions(shell: clap_complete::Shell) -> anyhow::Result<()> {
    use clap::CommandFactory as _;
    clap_complete::generate(shell, &mut Cli::command(), "chunkd", &mut std::io::stdout());
    Ok(())
}

fn man() -> anyhow::Result<()> {
    use clap::CommandFactory as _;
    Ok(clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?)
}

pub async fn run(cli: Cli, config: Config) -> anyhow::Result<ExitCode> {
    match cli.command.unwrap_or(Command::Serve) {
        // Normally run before any configuration is read (`run_without_config`).
        Command::Upload(args) => return Ok(upload::execute(&args).await),
        Command::Check => crate::check::run(&config).await,
        Command::Completions { shell } => completions(shell),
        Command::Man => man(),
        Command::Serve => serve::run(config).await,
        Command::Gc => {
            // Beside other processes by nature: their locks, records as they stand.
            let uploads =
                assemble::uploads_for(&config, assemble::Processes::Several, None).await?;
            let purged = uploads.purge_expired().await?;
            println!("purged {purged} expired upload(s)");
            Ok(())
        }
        Command::Config => {
            print!("{}", config.to_toml()?);
            Ok(())
        }
        Command::Parked { replay } => {
            let uploads = assemble::uploads(&config).await?;
            if replay {
                let replayed = uploads.replay_parked().await?;
                println!("replayed {replayed} parked post-event(s)");
            } else {
                let parked = uploads.parked_events().await?;
                println!("{parked} parked post-event(s)");
            }
            Ok(())
        }
    }
    .map(|()| ExitCode::SUCCESS)
}
