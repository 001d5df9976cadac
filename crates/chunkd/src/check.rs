//! `chunkd check`: the configuration loads (or `main` already said why not), and every
//! part it names answers: the stores (as `/readyz` checks them), the TLS certificate,
//! the unix socket paths, the mount paths and secrets, the hook receiver. Each line says
//! `ok` or what is wrong; the exit status is 1 when anything is.

use std::time::Duration;

use chunkd_http::listener::Address;

use crate::assemble;
use crate::config::Config;

/// One line of the report.
struct Verdict {
    part: String,
    problem: Option<String>,
}

pub async fn run(config: &Config) -> anyhow::Result<()> {
    let mut verdicts = Vec::new();
    let mut say = |part: String, outcome: anyhow::Result<()>| {
        verdicts.push(Verdict {
            part,
            problem: outcome.err().map(|e| format!("{e:#}")),
        });
    };
    match assemble::uploads(config).await {
        Ok(uploads) => {
            let state = format!("state store ({:?})", config.state).to_lowercase();
            say(state, answered(uploads.check_state()).await);
            let store = format!("data store ({:?})", config.store).to_lowercase();
            say(store, answered(uploads.check_store()).await);
            say(
                "front ends (paths, keys, forward rules)".into(),
                assemble::router(config, uploads).map(drop),
            );
        }
        Err(e) => say("stores".into(), Err(e)),
    }
    let addresses = std::iter::once(&config.listen).chain(&config.also_listen);
    for address in addresses {
        match address {
            Address::Tls(_) => say(
                format!("listener {address}: TLS certificate"),
                chunkd_http::tls::Certificates::load(&config.tls)
                    .and_then(|c| c.acceptor(config.tls.min_version))
                    .map(drop)
                    .map_err(Into::into),
            ),
            Address::Unix(path) => say(
                format!("listener {address}"),
                match path.parent() {
                    Some(dir) if !dir.is_dir() => {
                        Err(anyhow::anyhow!("{} is not a directory", dir.display()))
                    }
                    _ => Ok(()),
                },
            ),
            Address::Tcp(_) => {}
        }
    }
    if !config.hooks.url.is_empty() {
        say(
            format!("hook receiver {}", config.hooks.url),
            reachable(&config.hooks.url).await,
        );
    }
    let mut failed = 0;
    for Verdict { part, problem } in &verdicts {
        match problem {
            None => println!("ok      {part}"),
            Some(problem) => {
                failed += 1;
                println!("FAILED  {part}: {problem}");
            }
        }
    }
    anyhow::ensure!(failed == 0, "{failed} check(s) failed");
    Ok(())
}

async fn answered(check: impl Future<Output = chunkd_core::Result<()>>) -> anyhow::Result<()> {
    match tokio::time::timeout(Duration::from_secs(10), check).await {
        Ok(outcome) => outcome.map_err(|e| anyhow::anyhow!(chunkd_core::error::with_causes(&e))),
        Err(_) => anyhow::bail!("no answer within 10s"),
    }
}

/// Whether a TCP connection to the URL's host and port opens: a request could set
/// off the receiver's side effects, a connection cannot.
async fn reachable(url: &str) -> anyhow::Result<()> {
    let parsed: http::Uri = url.parse()?;
    let host = parsed
        .host()
        .ok_or_else(|| anyhow::anyhow!("the URL has no host"))?;
    let port = parsed
        .port_u16()
        .unwrap_or(if parsed.scheme_str() == Some("https") {
            443
        } else {
            80
        });
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::TcpStream::connect((host, port)),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => anyhow::bail!("cannot connect to {host}:{port}: {e}"),
        Err(_) => anyhow::bail!("no connection to {host}:{port} within 5s"),
    }
}
