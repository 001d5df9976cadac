//! `chunkd upload FILE... --to URL`: a resumable command-line client for any tus 1.0
//! server (and chunkd's IETF draft endpoint), built on `chunkd-client`. It needs no
//! server configuration.

mod progress;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use chunkd_client::{
    Algorithm, Class, Client, Error, Metadata, Protocol, Settings, StateFile, parse_header,
    parse_size,
};
use clap::{Args as ClapArgs, ValueEnum};
use http::HeaderMap;
use url::Url;

use progress::Reporter;

const EXIT_CODES: &str = "\
Exit codes:
  0    every file uploaded (or listed, or cancelled)
  1    a file failed for another reason (a broken server answer, a local file, failures of different kinds)
  2    usage error, or a flag the server cannot honour (a checksum algorithm it does not list)
  3    the server refused (a 4xx such as 401, 403 or 413, or a file over its maximum size),
       or kept declining after every retry (408, 409, 423, 429, 460)
  4    the server could not be reached, or kept failing (5xx), after every retry (an
       untrusted TLS certificate at once; SSL_CERT_FILE names extra trusted roots)
  130  interrupted (Ctrl-C); the same command resumes where it stopped

Each finished file's upload URL is printed on stdout, one per line.";

/// Upload files to a tus server (or an IETF draft endpoint), resumably.
#[derive(ClapArgs, Debug)]
#[command(after_help = EXIT_CODES)]
pub struct Args {
    /// Files to upload (with --cancel: whose remembered uploads to cancel).
    #[arg(value_name = "FILE", required_unless_present = "list")]
    pub files: Vec<PathBuf>,
    /// The endpoint: a tus creation URL (http://host:1080/files/) or, with --protocol
    /// ietf, the draft's upload URL (http://host:1080/uploads).
    #[arg(
        long,
        value_name = "URL",
        env = "CHUNKD_UPLOAD_URL",
        required_unless_present = "list"
    )]
    pub to: Option<Url>,
    /// Bytes per request, such as 8MiB, 512k or 1048576.
    #[arg(long, value_name = "SIZE", default_value = "8MiB", value_parser = size)]
    pub chunk_size: u64,
    /// Send each file as N parts at once, joined by tus concatenation (falls back to one
    /// part, with a message, when the server lacks it).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parallel: u16,
    /// A checksum with each chunk; only an algorithm the server lists is accepted.
    #[arg(long, value_enum, default_value_t = ChecksumArg::None)]
    pub checksum: ChecksumArg,
    /// Metadata sent with each upload (repeatable); filename and filetype are set from
    /// the file unless given.
    #[arg(long = "metadata", value_name = "KEY=VALUE", value_parser = metadata_pair)]
    pub metadata: Vec<String>,
    /// A header sent with every request, such as 'Authorization: Bearer …' (repeatable).
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE", value_parser = header_line)]
    pub headers: Vec<String>,
    /// The protocol.
    #[arg(long, value_enum, default_value_t = ProtocolArg::Tus)]
    pub protocol: ProtocolArg,
    /// Failed attempts in a row tolerated per request, with exponential backoff between.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub retries: u32,
    /// Where unfinished uploads are remembered [default: $XDG_STATE_HOME/chunkd/uploads.json
    /// or ~/.local/state/chunkd/uploads.json].
    #[arg(long, value_name = "PATH")]
    pub state_file: Option<PathBuf>,
    /// List the remembered unfinished uploads (of --to only, when given) and exit.
    #[arg(long, conflicts_with = "cancel")]
    pub list: bool,
    /// Terminate the remembered uploads of FILE... on the server and forget them.
    #[arg(long)]
    pub cancel: bool,
    /// No progress output; errors and the upload URLs are still printed.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ChecksumArg {
    None,
    Sha1,
    Sha256,
    Md5,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ProtocolArg {
    Tus,
    Ietf,
}

fn size(text: &str) -> Result<u64, Error> {
    match parse_size(text)? {
        0 => Err(Error::Invalid("the chunk size must be above 0".to_owned())),
        n => Ok(n),
    }
}

fn metadata_pair(text: &str) -> Result<String, Error> {
    Metadata::new().insert_pair(text)?;
    Ok(text.to_owned())
}

fn header_line(text: &str) -> Result<String, Error> {
    parse_header(text)?;
    Ok(text.to_owned())
}

/// Runs the command on its own runtime.
pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    // Requests and retries are logged only when asked for (`RUST_LOG=chunkd_client=debug`).
    // A malformed filter only costs the logs: it is ignored, with a warning.
    if let Ok(filter) = std::env::var("RUST_LOG")
        && !filter.is_empty()
    {
        match tracing_subscriber::EnvFilter::try_new(&filter) {
            Ok(filter) => tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .init(),
            Err(e) => eprintln!("chunkd upload: warning: RUST_LOG={filter:?} ignored: {e}"),
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    Ok(runtime.block_on(execute(args)))
}

fn code(class: Class) -> u8 {
    match class {
        Class::Refused | Class::Declined => 3,
        Class::Network => 4,
        Class::Usage => 2,
        Class::Other => 1,
    }
}

fn state_file(args: &Args) -> Result<StateFile, Error> {
    match args.state_file.clone().or_else(StateFile::default_path) {
        Some(path) => Ok(StateFile::new(path)),
        None => Err(Error::Invalid(
            "no state file: set --state-file, XDG_STATE_HOME or HOME".to_owned(),
        )),
    }
}

fn settings(args: &Args, endpoint: Url) -> Result<Settings, Error> {
    let mut settings = Settings::new(endpoint, state_file(args)?);
    settings.protocol = match args.protocol {
        ProtocolArg::Tus => Protocol::Tus,
        ProtocolArg::Ietf => Protocol::Ietf,
    };
    settings.chunk_size = args.chunk_size;
    settings.parallel = usize::from(args.parallel);
    settings.checksum = match args.checksum {
        ChecksumArg::None => None,
        ChecksumArg::Sha1 => Some(Algorithm::Sha1),
        ChecksumArg::Sha256 => Some(Algorithm::Sha256),
        ChecksumArg::Md5 => Some(Algorithm::Md5),
    };
    for pair in &args.metadata {
        settings.metadata.insert_pair(pair)?;
    }
    let mut headers = HeaderMap::new();
    for line in &args.headers {
        let (name, value) = parse_header(line)?;
        headers.append(name, value);
    }
    settings.headers = headers;
    settings.retries = args.retries;
    Ok(settings)
}

pub async fn execute(args: &Args) -> ExitCode {
    if args.list {
        return ExitCode::from(list(args));
    }
    let Some(endpoint) = args.to.clone() else {
        eprintln!("chunkd upload: --to URL (or CHUNKD_UPLOAD_URL) is required");
        return ExitCode::from(2);
    };
    let client = match settings(args, endpoint).and_then(Client::new) {
        Ok(client) => client,
        Err(e) => return failed(&e),
    };
    if args.cancel {
        return ExitCode::from(cancel(args, &client).await);
    }
    let reporter = Arc::new(Reporter::new(&args.files, args.quiet));
    tokio::select! {
        code = upload_all(args, &client, reporter.clone()) => ExitCode::from(code),
        _ = tokio::signal::ctrl_c() => {
            reporter.interrupted();
            ExitCode::from(130)
        }
    }
}

fn failed(e: &Error) -> ExitCode {
    eprintln!("chunkd upload: {e}");
    ExitCode::from(code(e.class()))
}

async fn upload_all(args: &Args, client: &Client, reporter: Arc<Reporter>) -> u8 {
    let plan = match client.discover().await {
        Ok(plan) => plan,
        Err(e) => {
            reporter.note(&format!("chunkd upload: {e}"));
            return code(e.class());
        }
    };
    for note in &plan.notes {
        reporter.note(&format!("chunkd upload: {note}"));
    }
    let mut failures = Vec::new();
    for (path, observer) in args.files.iter().zip(reporter.files()) {
        match client.upload(path, &plan, observer.clone()).await {
            Ok(uploaded) => {
                observer.done(&uploaded);
                for warning in &uploaded.warnings {
                    reporter.note(&format!("{}: warning: {warning}", path.display()));
                }
                reporter.url(uploaded.url.as_str());
            }
            Err(e) => {
                observer.failed(&e);
                failures.push(e.class());
            }
        }
    }
    reporter.finish();
    match failures.first() {
        None => 0,
        Some(&first) if failures.iter().all(|&c| c == first) => code(first),
        Some(_) => 1,
    }
}

async fn cancel(args: &Args, client: &Client) -> u8 {
    let mut worst = 0;
    for path in &args.files {
        match client.cancel(path).await {
            Ok(Some(cancelled)) => {
                let entry = &cancelled.entry;
                let urls: Vec<&str> = entry.parts.iter().map(|p| p.url.as_str()).collect();
                if cancelled.terminated {
                    eprintln!("{}: cancelled {}", path.display(), urls.join(" "));
                } else {
                    eprintln!(
                        "{}: the server cannot terminate uploads (405), so {} stays there; forgotten here",
                        path.display(),
                        urls.join(" ")
                    );
                }
            }
            Ok(None) => {
                eprintln!(
                    "{}: no unfinished upload to {} is remembered",
                    path.display(),
                    client.settings().endpoint
                );
                worst = worst.max(1);
            }
            Err(e) => {
                eprintln!("{}: {e}", path.display());
                worst = worst.max(code(e.class()));
            }
        }
    }
    worst
}

/// One tab-separated line per remembered upload: path, size, protocol, endpoint, URLs.
fn list(args: &Args) -> u8 {
    let entries = match state_file(args).and_then(|state| state.entries()) {
        Ok(entries) => entries,
        Err(e) => {
            eprintln!("chunkd upload: {e}");
            return code(e.class());
        }
    };
    let mut shown = 0;
    for entry in entries.values() {
        if args
            .to
            .as_ref()
            .is_some_and(|to| to.as_str() != entry.endpoint)
        {
            continue;
        }
        let urls: Vec<&str> = entry.parts.iter().map(|p| p.url.as_str()).collect();
        println!(
            "{}\t{}\t{}\t{}\t{}",
            entry.path.display(),
            entry.size,
            entry.protocol,
            entry.endpoint,
            urls.join(" ")
        );
        shown += 1;
    }
    if shown == 0 && !args.quiet {
        eprintln!("no unfinished uploads are remembered");
    }
    0
}
