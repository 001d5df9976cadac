//! One connection LISTENing on a notification channel, reconnecting after a database
//! restart, until its owner is dropped.

use std::time::Duration;

use futures::StreamExt;
use tokio::sync::watch;
use tokio_postgres::{AsyncMessage, NoTls};

/// Hands each payload sent on `channel` to `on_payload` until `alive`'s sender is gone;
/// `listening` learns each time the LISTEN took effect (at first, after a reconnection).
pub(super) async fn listen(
    config: tokio_postgres::Config,
    channel: String,
    mut alive: watch::Receiver<()>,
    listening: watch::Sender<bool>,
    mut on_payload: impl FnMut(&str) + Send,
) {
    let mut pause = Duration::from_millis(100);
    loop {
        let session = async {
            let (client, mut connection) = config.connect(NoTls).await?;
            let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
            let statement = format!("LISTEN {channel}");
            let listen = client.batch_execute(&statement);
            tokio::pin!(listen);
            let mut listened = false;
            loop {
                tokio::select! {
                    r = &mut listen, if !listened => {
                        r?;
                        listened = true;
                        listening.send_replace(true);
                    }
                    message = messages.next() => match message {
                        Some(Ok(AsyncMessage::Notification(n))) => on_payload(n.payload()),
                        Some(Ok(_)) => {}
                        Some(Err(e)) => return Err(e),
                        None => return Ok::<(), tokio_postgres::Error>(()),
                    },
                }
            }
        };
        tokio::select! {
            ended = session => {
                if let Err(e) = ended {
                    tracing::warn!(%channel, error = %e, "notifications interrupted; reconnecting");
                }
            }
            _ = alive.changed() => return,
        }
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            _ = alive.changed() => return,
        }
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}
