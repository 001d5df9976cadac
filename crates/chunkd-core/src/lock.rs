//! The lock seam: one writer per upload, newest request wins.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;

use crate::error::Result;
use crate::id::UploadId;

/// Grants exclusive access to one upload.
///
/// # Contract
///
/// - At most one [`Lease`] per upload exists at a time (across every process sharing the
///   locker, for a distributed implementation).
/// - A caller that has to wait signals the current holder: the holder's
///   [`Lease::take_contended`] future resolves, so it can stop and let go (tus and the
///   IETF draft expect the newest request to win).
/// - If the lease is not granted within `timeout`, `lock` fails with `Error::Locked`.
/// - [`try_lock`](Locker::try_lock) never signals the holder: it grants a free lease or
///   returns `None`.
/// - Dropping the lease releases it.
#[async_trait]
pub trait Locker: fmt::Debug + Send + Sync + 'static {
    /// Waits at most `timeout` for the exclusive lease on upload `id`, signalling its
    /// current holder to let go.
    async fn lock(&self, id: &UploadId, timeout: Duration) -> Result<Lease>;

    /// The lease if nobody holds it, without asking anyone to let go; `Ok(None)` when it
    /// is held. The engine takes free leases this way before it knows who is asking, and
    /// gc takes the leases of idle uploads, so neither ever stops a running request.
    async fn try_lock(&self, id: &UploadId) -> Result<Option<Lease>>;
}

type Contended = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Exclusive access to one upload until dropped.
pub struct Lease {
    _guard: Box<dyn Any + Send>,
    contended: Option<Contended>,
}

impl Lease {
    /// `guard` releases the lock when dropped; `contended` resolves when another request
    /// asks for the lock.
    pub fn new(
        guard: impl Any + Send,
        contended: impl Future<Output = ()> + Send + 'static,
    ) -> Self {
        Lease {
            _guard: Box::new(guard),
            contended: Some(Box::pin(contended)),
        }
    }

    /// The "someone else wants this upload" signal; taken once.
    pub fn take_contended(&mut self) -> Contended {
        self.contended
            .take()
            .unwrap_or_else(|| Box::pin(futures::future::pending()))
    }
}

impl fmt::Debug for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Lease")
    }
}
