//! `GET {page}ui/finished`: the caller's own finished uploads, for the page's list. It
//! answers only an identified caller (a token, a proxy's user header); an anonymous one
//! gets an empty list, since anonymous uploads are anybody's who knows their URL.

use std::time::UNIX_EPOCH;

use axum::Json;
use axum::Router;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chunkd_core::metadata::keys;
use chunkd_core::{UploadInfo, Uploads};
use serde::Serialize;

use super::Config;
use crate::identity;
use crate::refusal::Refusal;

/// The most a list holds: the newest uploads are the ones a person looks for.
pub const MAX_LISTED: usize = 100;

#[derive(Clone)]
struct Lister {
    uploads: Uploads,
    downloads: String,
}

/// One finished upload, as the page shows it.
#[derive(Serialize)]
struct Listed {
    id: String,
    name: String,
    size: u64,
    #[serde(rename = "type")]
    content_type: Option<String>,
    /// Where it downloads from (a path on this server).
    url: String,
    /// Seconds since the epoch.
    created: u64,
}

/// The route, to be mounted where identities are read.
pub fn router<S>(uploads: Uploads, config: &Config) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    if !config.enabled {
        return Router::new();
    }
    let downloads = super::base(&config.endpoints.tus);
    let router = Router::new().route(
        &format!("{}/finished", config.assets_path()),
        get(list).with_state(Lister { uploads, downloads }),
    );
    crate::accounting::account(router, "ui")
}

async fn list(State(lister): State<Lister>, req: Request) -> Response {
    let refuse = |refusal: Refusal| {
        let body = serde_json::json!({ "error": refusal.message });
        (refusal.status, Json(body)).into_response()
    };
    let owner = match identity::owner_in(req.extensions()) {
        Ok(owner) => owner,
        Err(refusal) => return refuse(refusal),
    };
    match lister
        .uploads
        .for_owner(owner)
        .finished_uploads(MAX_LISTED)
        .await
    {
        Ok(found) => {
            let listed: Vec<Listed> = found.iter().map(|u| describe(u, &lister)).collect();
            let mut response = Json(listed).into_response();
            response.headers_mut().insert(
                http::header::CACHE_CONTROL,
                http::HeaderValue::from_static("no-store"),
            );
            response
        }
        Err(error) => refuse(Refusal::from(error)),
    }
}

fn describe(upload: &UploadInfo, lister: &Lister) -> Listed {
    let text = |key| upload.metadata.text(key).map(str::to_owned);
    Listed {
        id: upload.id.to_string(),
        name: text(keys::FILENAME).unwrap_or_else(|| upload.id.to_string()),
        size: upload.offset,
        content_type: text(keys::FILETYPE),
        url: format!("{}{}", lister.downloads, upload.id),
        created: upload
            .created_at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    }
}
