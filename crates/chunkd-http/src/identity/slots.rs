//! How many upload requests (or event streams) one client has running at once: a named
//! identity counts as one client wherever it connects from, anonymous clients by their
//! address. Past the limit a request is refused (429) before it reads any body, so one
//! client cannot hold every connection slot, lock and disk stream the server has.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::ConnectInfo;
use http::{Extensions, Method};

use super::Owner;

/// The requests that write (create, append, send parts or forms).
pub(crate) fn is_upload(method: &Method) -> bool {
    matches!(*method, Method::POST | Method::PATCH | Method::PUT)
}

/// Who counts as one client: the identity, or for anonymous requests the address.
pub(crate) fn client_key(owner: &Owner, extensions: &Extensions) -> String {
    match owner.as_deref() {
        Some(name) => format!("identity {name}"),
        None => match extensions.get::<ConnectInfo<SocketAddr>>() {
            Some(ConnectInfo(peer)) => format!("address {}", peer.ip()),
            None => "address unknown".to_owned(),
        },
    }
}

/// The running upload requests of each client. Only clients with a request running
/// have an entry, so the map is bounded by the connections served at once.
#[derive(Debug)]
pub(crate) struct Slots {
    limit: usize,
    running: Mutex<HashMap<String, usize>>,
}

/// One running request's place; gives it back when dropped (the request ended).
#[derive(Debug)]
pub(crate) struct Slot {
    slots: Arc<Slots>,
    key: String,
}

impl Slots {
    pub(crate) fn new(limit: usize) -> Arc<Slots> {
        Arc::new(Slots {
            limit,
            running: Mutex::new(HashMap::new()),
        })
    }

    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// A place for one more request of `key`, or `None` when it has `limit` running.
    pub(crate) fn take(self: &Arc<Self>, key: String) -> Option<Slot> {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        // `limit` is at least 1, so a refused client already has an entry.
        let count = running.entry(key.clone()).or_default();
        if *count >= self.limit {
            return None;
        }
        *count += 1;
        Some(Slot {
            slots: self.clone(),
            key,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut running = self
            .slots
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = running.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                running.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anonymous_clients_count_by_address_and_identities_wherever_they_connect_from() {
        let from = |addr: &str| {
            let mut extensions = Extensions::new();
            extensions.insert(ConnectInfo(addr.parse::<SocketAddr>().unwrap()));
            extensions
        };
        let anonymous = Owner::anonymous();
        assert_eq!(
            client_key(&anonymous, &from("10.0.0.1:1000")),
            client_key(&anonymous, &from("10.0.0.1:2000")),
            "one address, two connections: one client"
        );
        assert_ne!(
            client_key(&anonymous, &from("10.0.0.1:1000")),
            client_key(&anonymous, &from("10.0.0.2:1000"))
        );
        let alice = Owner::named("alice");
        assert_eq!(
            client_key(&alice, &from("10.0.0.1:1000")),
            client_key(&alice, &from("10.0.0.2:1000"))
        );
        assert_ne!(
            client_key(&alice, &from("10.0.0.1:1000")),
            client_key(&anonymous, &from("10.0.0.1:1000"))
        );
    }

    #[test]
    fn a_client_gets_its_limit_and_each_ended_request_gives_a_place_back() {
        let slots = Slots::new(2);
        let first = slots.take("a".into()).expect("first");
        let second = slots.take("a".into()).expect("second");
        assert!(slots.take("a".into()).is_none(), "a third at once");
        let other = slots
            .take("b".into())
            .expect("another client is not counted with a");
        drop(first);
        let third = slots.take("a".into()).expect("a place was given back");
        drop((second, third, other));
        assert!(
            slots.running.lock().unwrap().is_empty(),
            "no entry outlives its requests"
        );
    }
}
