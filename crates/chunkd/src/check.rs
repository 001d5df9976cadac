//! `chunkd check`: the configuration loads (or `main` already said why not), and every
//! part it names answers: the stores (as `/readyz` checks them), the TLS certificate,
//! the unix socket paths, the mount paths and secrets, the hook receiver. Each line says
//! `ok` or what is wrong; the exit status is 1 when anything is, except a hook receiver
//! that is away (`WARN`: the server keeps post-events for it, so it may start).

use std::time::Duration;

use chunkd_http::listener::Address;

use crate::assemble;
use crate::config::Config;

/// One line of the report.
struct Verdict {
    part: String,
    problem: Option<String>,
    /// A problem the server copes with (the outbox keeps post-events for a receiver
    /// that is away): said, but not a reason to refuse to start.
    tolerable: bool,
}

pub async fn run(config: &Config) -> anyhow::Result<()> {
    let mut verdicts = Vec::new();
    let mut say = |part: String, outcome: anyhow::Result<()>, tolerable: bool| {
        verdicts.push(Verdict {
            part,
            problem: outcome.err().map(|e| format!("{e:#}")),
            tolerable,
        });
    };
    match assemble::uploads(config).await {
        Ok(uploads) => {
            let state = format!("state store ({:?})", config.state).to_lowercase();
            say(state, answered(uploads.check_state()).await, false);
            let store = format!("data store ({:?})", config.store).to_lowercase();
            say(store, answered(uploads.check_store()).await, false);
            say(
                "front ends (paths, keys, forward rules)".into(),
                assemble::router(config, uploads).map(drop),
                false,
            );
        }
        Err(e) => say("stores".into(), Err(e), false),
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
                false,
            ),
            Address::Unix(path) => say(
                format!("listener {address}"),
                match path.parent() {
                    Some(dir) if !dir.is_dir() => {
                        Err(anyhow::anyhow!("{} is not a directory", dir.display()))
                    }
                    _ => Ok(()),
                },
                false,
            ),
            Address::Tcp(_) => {}
        }
    }
    if !config.hooks.url.is_empty() {
        let (named, outcome) = reachable(&config.hooks.url).await;
        say(format!("hook receiver {named}"), outcome, true);
    }
    let mut failed = 0;
    for Verdict {
        part,
        problem,
        tolerable,
    } in &verdicts
    {
        match (problem, tolerable) {
            (None, _) => println!("ok      {part}"),
            (Some(problem), true) => println!("WARN    {part}: {problem}"),
            (Some(problem), false) => {
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

/// The receiver as `host:port` (a URL's credentials and query stay out of the report),
/// and whether a TCP connection to it opens: a request could set off the receiver's
/// side effects, a connection cannot.
async fn reachable(url: &str) -> (String, anyhow::Result<()>) {
    let Ok(parsed) = url.parse::<http::Uri>() else {
        return ("(hooks.url)".into(), Err(anyhow::anyhow!("not a URL")));
    };
    let Some(host) = parsed.host() else {
        return (
            "(hooks.url)".into(),
            Err(anyhow::anyhow!("the URL has no host")),
        );
    };
    let port = parsed
        .port_u16()
        .unwrap_or(if parsed.scheme_str() == Some("https") {
            443
        } else {
            80
        });
    let named = format!("{host}:{port}");
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let connected = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::TcpStream::connect((host, port)),
    )
    .await;
    let outcome = match connected {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(anyhow::anyhow!(
            "cannot connect: {e} (post-events wait in the outbox until it is back)"
        )),
        Err(_) => Err(anyhow::anyhow!("no connection within 5s")),
    };
    (named, outcome)
}
