//! Engine events between instances that share one state store, so an event subscriber
//! (the event stream of a user's uploads) on any instance sees uploads every instance
//! handles. Best effort, like the in-process broadcast it feeds.

use futures::stream::BoxStream;

use crate::hooks::Event;

/// Carries [`Event`]s to and from the other instances.
pub trait EventRelay: Send + Sync + 'static {
    /// Hands one of this instance's events to the others; never waits (an event that
    /// cannot go at once is dropped).
    fn publish(&self, event: &Event);
    /// The other instances' events, as they arrive; it ends when the relay does.
    fn subscribe(&self) -> BoxStream<'static, Event>;
}
