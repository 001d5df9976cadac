//! Browser-direct parts for [`MemoryStore`]: part URLs bound to one part of one upload
//! until an instant, a PUT ([`MemoryStore::put_part`]) that checks them as S3 checks its
//! presigned URLs, and a completion with S3's rules.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use md5::{Digest, Md5};

use super::MemoryStore;
use crate::error::{Error, Result};
use crate::id::UploadId;
use crate::store::{DirectParts, Part};
use crate::upload::{StoreState, UploadInfo};

/// Where the record keeps the session's name.
const SESSION_KEY: &str = "memory.session";

/// The direct-parts side of a [`MemoryStore`].
#[derive(Debug)]
pub(super) struct Direct {
    min_part_size: u64,
    sessions: Mutex<HashMap<UploadId, Session>>,
}

/// One direct upload's multipart session, as S3 keeps one per `UploadId`.
#[derive(Debug)]
struct Session {
    /// What clients quote back (S3's `UploadId`); a new one for every creation, so URLs
    /// of a deleted upload do not work for a new upload of the same id.
    name: String,
    /// The signatures handed out, by token. Random tokens rather than an HMAC: the store
    /// remembers what it signed, so it has no key to keep.
    grants: HashMap<String, Grant>,
    parts: BTreeMap<u16, StoredPart>,
}

#[derive(Debug)]
struct Grant {
    number: u16,
    /// Unix seconds; the URL is refused from this second on.
    expires: u64,
}

#[derive(Debug)]
struct StoredPart {
    etag: String,
    bytes: Bytes,
}

/// Why [`MemoryStore::put_part`] refused a PUT, as S3 would refuse it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PutRefused {
    /// The URL does not name an upload and part of this store.
    #[error("not a part URL of this store")]
    Malformed,
    /// The multipart session does not exist (any more).
    #[error("no such upload: never created, completed or deleted")]
    NoSuchUpload,
    /// The signature does not match the URL.
    #[error("the signature does not match the URL")]
    Forged,
    /// The signature's validity has run out.
    #[error("the URL has expired")]
    Expired,
    /// A panic elsewhere poisoned the store's lock.
    #[error("the memory store's lock is poisoned")]
    Poisoned,
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn unquote(etag: &str) -> &str {
    etag.trim_matches('"')
}

impl Direct {
    pub(super) fn new(min_part_size: u64) -> Self {
        Direct {
            min_part_size,
            sessions: Mutex::default(),
        }
    }

    fn sessions(&self) -> Result<MutexGuard<'_, HashMap<UploadId, Session>>> {
        self.sessions
            .lock()
            .map_err(|_| Error::backend("memory", "poisoned lock"))
    }

    /// Starts the session of a new direct upload; its name goes into the record.
    pub(super) fn open(&self, id: &UploadId) -> Result<StoreState> {
        let name = UploadId::generate().as_str().to_owned();
        self.sessions()?.insert(
            id.clone(),
            Session {
                name: name.clone(),
                grants: HashMap::new(),
                parts: BTreeMap::new(),
            },
        );
        Ok(StoreState::from([(SESSION_KEY.to_owned(), name)]))
    }

    /// Drops the session and every part in it (an abort). Idempotent.
    pub(super) fn close(&self, id: &UploadId) -> Result<()> {
        self.sessions()?.remove(id);
        Ok(())
    }

    /// The upload's session, if it is the one the record names.
    fn session<'a>(
        sessions: &'a mut HashMap<UploadId, Session>,
        info: &UploadInfo,
    ) -> Result<&'a mut Session> {
        let name = info.store.get(SESSION_KEY);
        sessions
            .get_mut(&info.id)
            .filter(|s| Some(&s.name) == name)
            .ok_or_else(|| Error::NotFound(info.id.clone()))
    }
}

impl MemoryStore {
    fn direct_state(&self) -> Result<&Direct> {
        self.direct.as_ref().ok_or(Error::NotSupported(
            "direct parts (MemoryStore::with_direct_parts)",
        ))
    }

    /// Takes a part as a browser's PUT to a URL from [`DirectParts::sign_part`] would,
    /// and answers its ETag (quoted MD5, as S3's). A URL that was not signed by this
    /// store, was altered (another upload, part number or expiry), has expired, or
    /// belongs to an upload no longer open is refused. A part put again replaces the
    /// earlier one.
    pub fn put_part(&self, url: &str, body: impl Into<Bytes>) -> Result<String, PutRefused> {
        let (id, number, expires, sig) = parse_url(url).ok_or(PutRefused::Malformed)?;
        let direct = self.direct.as_ref().ok_or(PutRefused::NoSuchUpload)?;
        let mut sessions = direct.sessions.lock().map_err(|_| PutRefused::Poisoned)?;
        let session = sessions.get_mut(&id).ok_or(PutRefused::NoSuchUpload)?;
        let grant = session.grants.get(sig).ok_or(PutRefused::Forged)?;
        if grant.number != number || grant.expires != expires {
            return Err(PutRefused::Forged);
        }
        if unix_secs(SystemTime::now()) >= expires {
            return Err(PutRefused::Expired);
        }
        let bytes = body.into();
        let etag = format!("\"{:x}\"", Md5::digest(&bytes));
        session.parts.insert(
            number,
            StoredPart {
                etag: etag.clone(),
                bytes,
            },
        );
        Ok(etag)
    }
}

/// `memory://<upload id>/<part number>?expires=<unix secs>&sig=<token>`.
fn parse_url(url: &str) -> Option<(UploadId, u16, u64, &str)> {
    let rest = url.strip_prefix("memory://")?;
    let (path, query) = rest.split_once('?')?;
    let (id, number) = path.split_once('/')?;
    let (mut expires, mut sig) = (None, None);
    for pair in query.split('&') {
        match pair.split_once('=')? {
            ("expires", v) => expires = Some(v.parse().ok()?),
            ("sig", v) => sig = Some(v),
            _ => return None,
        }
    }
    Some((id.parse().ok()?, number.parse().ok()?, expires?, sig?))
}

// Methods of a store built without direct parts are unreachable through
// `DataStore::direct`; called directly they say it is not supported.
#[async_trait]
impl DirectParts for MemoryStore {
    fn min_part_size(&self) -> u64 {
        self.direct.as_ref().map_or(0, |d| d.min_part_size)
    }

    fn session(&self, info: &UploadInfo) -> Option<String> {
        self.direct.as_ref()?;
        info.store.get(SESSION_KEY).cloned()
    }

    fn sign_part(&self, info: &UploadInfo, number: u16, valid_for: Duration) -> Result<String> {
        let direct = self.direct_state()?;
        let now = SystemTime::now();
        let expires = now.checked_add(valid_for).map_or(u64::MAX, unix_secs);
        let mut sessions = direct.sessions()?;
        let session = Direct::session(&mut sessions, info)?;
        // Expired grants can never be used again.
        let now = unix_secs(now);
        session.grants.retain(|_, g| g.expires > now);
        let sig = UploadId::generate().as_str().to_owned();
        session
            .grants
            .insert(sig.clone(), Grant { number, expires });
        Ok(format!(
            "memory://{}/{number}?expires={expires}&sig={sig}",
            info.id
        ))
    }

    async fn parts(&self, info: &UploadInfo) -> Result<Vec<Part>> {
        let direct = self.direct_state()?;
        let mut sessions = direct.sessions()?;
        let session = Direct::session(&mut sessions, info)?;
        Ok(session
            .parts
            .iter()
            .map(|(number, p)| Part {
                number: *number,
                etag: p.etag.clone(),
                size: p.bytes.len() as u64,
            })
            .collect())
    }

    /// S3's rules: the named parts in ascending order, each stored with that ETag, every
    /// one but the last at least the minimum size. Parts not named are dropped.
    async fn complete(&self, info: &UploadInfo, parts: &[Part]) -> Result<StoreState> {
        let direct = self.direct_state()?;
        let joined = {
            let mut sessions = direct.sessions()?;
            let session = Direct::session(&mut sessions, info)?;
            let mut joined = Vec::new();
            for (i, named) in parts.iter().enumerate() {
                if i > 0 && parts[i - 1].number >= named.number {
                    return Err(Error::InvalidPart("parts must be named in ascending order"));
                }
                let stored = session
                    .parts
                    .get(&named.number)
                    .ok_or(Error::InvalidPart("a named part was never stored"))?;
                if unquote(&stored.etag) != unquote(&named.etag) {
                    return Err(Error::InvalidPart(
                        "a named part is stored with another ETag",
                    ));
                }
                if i + 1 < parts.len() && (stored.bytes.len() as u64) < direct.min_part_size {
                    return Err(Error::InvalidPart(
                        "a part before the last is below the minimum part size",
                    ));
                }
                joined.extend_from_slice(&stored.bytes);
            }
            if parts.is_empty() {
                return Err(Error::InvalidPart("no parts named"));
            }
            // Completion ends the session, as in S3: its URLs stop working.
            sessions.remove(&info.id);
            joined
        };
        self.with(|files| match files.get_mut(&info.id) {
            Some(data) => {
                *data = joined;
                Ok(info.store.clone())
            }
            None => Err(Error::NotFound(info.id.clone())),
        })?
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::metadata::Metadata;
    use crate::store::DataStore;
    use crate::upload::{ConcatKind, Status};

    const MIN: u64 = 100;
    const HOUR: Duration = Duration::from_secs(3600);

    async fn direct_upload(store: &MemoryStore) -> UploadInfo {
        let mut info = UploadInfo {
            id: UploadId::generate(),
            length: None,
            offset: 0,
            metadata: Metadata::new(),
            status: Status::Open,
            concat: ConcatKind::None,
            owner: None,
            created_at: SystemTime::now(),
            expires_at: None,
            store: StoreState::new(),
            pending_finals: Vec::new(),
            direct: true,
            limits: Default::default(),
            revision: 0,
        };
        info.store = store.create(&info).await.expect("create");
        info
    }

    fn part(number: u16, etag: &str) -> Part {
        Part {
            number,
            etag: etag.to_owned(),
            size: 0,
        }
    }

    async fn read_all(store: &MemoryStore, info: &UploadInfo, len: u64) -> Vec<u8> {
        use futures::StreamExt;
        let mut stream = store.read(info, 0..len).await.expect("read");
        let mut out = Vec::new();
        while let Some(chunk) = stream.next().await {
            out.extend_from_slice(&chunk.expect("chunk"));
        }
        out
    }

    #[tokio::test]
    async fn a_signed_url_takes_its_part_and_answers_its_md5() {
        let store = MemoryStore::with_direct_parts(MIN);
        let info = direct_upload(&store).await;
        let url = store.sign_part(&info, 2, HOUR).expect("sign");
        assert!(url.starts_with(&format!("memory://{}/2?expires=", info.id)));
        let etag = store.put_part(&url, &b"hello"[..]).expect("put");
        assert_eq!(etag, "\"5d41402abc4b2a76b9719d911017c592\"");
        let again = store.put_part(&url, &b"hello!"[..]).expect("put again");
        let parts = store.parts(&info).await.expect("parts");
        assert_eq!(
            parts,
            [Part {
                number: 2,
                etag: again,
                size: 6
            }],
            "a part put again replaces the first"
        );
    }

    #[tokio::test]
    async fn altered_and_foreign_urls_are_refused() {
        let store = MemoryStore::with_direct_parts(MIN);
        let info = direct_upload(&store).await;
        let other = direct_upload(&store).await;
        let url = store.sign_part(&info, 1, HOUR).expect("sign");
        let id = info.id.as_str();
        let cases = [
            (
                "another part",
                url.replace(&format!("{id}/1?"), &format!("{id}/2?")),
                PutRefused::Forged,
            ),
            (
                "another upload",
                url.replace(id, other.id.as_str()),
                PutRefused::Forged,
            ),
            (
                "later expiry",
                url.replace("expires=", "expires=9"),
                PutRefused::Forged,
            ),
            ("made-up signature", format!("{url}x"), PutRefused::Forged),
            (
                "unknown upload",
                url.replace(id, UploadId::generate().as_str()),
                PutRefused::NoSuchUpload,
            ),
            (
                "no signature",
                url.split("&sig").next().unwrap().to_owned(),
                PutRefused::Malformed,
            ),
            (
                "another scheme",
                url.replace("memory://", "https://"),
                PutRefused::Malformed,
            ),
            (
                "extra parameter",
                format!("{url}&x=1"),
                PutRefused::Malformed,
            ),
        ];
        for (name, url, refused) in cases {
            assert_eq!(store.put_part(&url, &b"x"[..]), Err(refused), "{name}");
        }
        assert!(store.parts(&info).await.expect("parts").is_empty());
        assert!(store.parts(&other).await.expect("parts").is_empty());
    }

    #[tokio::test]
    async fn expired_urls_are_refused() {
        let store = MemoryStore::with_direct_parts(MIN);
        let info = direct_upload(&store).await;
        let url = store.sign_part(&info, 1, Duration::ZERO).expect("sign");
        assert_eq!(store.put_part(&url, &b"x"[..]), Err(PutRefused::Expired));
    }

    #[tokio::test]
    async fn urls_of_deleted_uploads_are_refused() {
        let store = MemoryStore::with_direct_parts(MIN);
        let info = direct_upload(&store).await;
        let url = store.sign_part(&info, 1, HOUR).expect("sign");
        store.delete(&info).await.expect("delete");
        assert_eq!(
            store.put_part(&url, &b"x"[..]),
            Err(PutRefused::NoSuchUpload)
        );
    }

    #[tokio::test]
    async fn completion_follows_s3_rules() {
        let store = MemoryStore::with_direct_parts(MIN);
        let info = direct_upload(&store).await;
        let data: Vec<u8> = (0..250u32).map(|i| i as u8).collect();
        let mut etags = Vec::new();
        for (i, chunk) in data.chunks(MIN as usize).enumerate() {
            let url = store.sign_part(&info, i as u16 + 1, HOUR).expect("sign");
            etags.push(store.put_part(&url, chunk.to_vec()).expect("put"));
        }
        let small = store.sign_part(&info, 4, HOUR).expect("sign");
        let small = store.put_part(&small, &b"tiny"[..]).expect("put");
        let refused: [(&str, Vec<Part>); 5] = [
            ("none", vec![]),
            ("wrong etag", vec![part(1, &etags[0]), part(2, "\"0000\"")]),
            ("never stored", vec![part(1, &etags[0]), part(5, &etags[1])]),
            ("descending", vec![part(2, &etags[1]), part(1, &etags[0])]),
            (
                "small before the last",
                vec![part(3, &etags[2]), part(4, &small)],
            ),
        ];
        for (name, parts) in refused {
            let err = store.complete(&info, &parts).await.expect_err(name);
            assert!(matches!(err, Error::InvalidPart(_)), "{name}: {err:?}");
        }
        // ETags match with or without their quotes; part 4 is not named, so dropped.
        let named: Vec<Part> = etags
            .iter()
            .enumerate()
            .map(|(i, e)| part(i as u16 + 1, e.trim_matches('"')))
            .collect();
        store.complete(&info, &named).await.expect("complete");
        assert_eq!(read_all(&store, &info, data.len() as u64).await, data);
        let url = store.sign_part(&info, 1, HOUR);
        assert!(url.is_err(), "a completed upload signs no more parts");
    }

    #[tokio::test]
    async fn a_store_without_direct_parts_says_so() {
        let store = MemoryStore::new();
        assert!(store.direct().is_none());
        let info = direct_upload(&store).await;
        assert!(matches!(
            store.sign_part(&info, 1, HOUR),
            Err(Error::NotSupported(_))
        ));
        assert_eq!(DirectParts::session(&store, &info), None);
    }
}
