#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read as _;

use axum::Router;
use axum::body::Body;
use http::StatusCode;

use super::*;
use crate::test_support::call;

fn page(config: Config) -> Router {
    router(config)
}

fn settings_in(html: &str) -> serde_json::Value {
    let start = html
        .find(r#"id="chunkd-settings">"#)
        .expect("a settings block")
        + 21;
    let end = start + html[start..].find("</script>").expect("closed");
    serde_json::from_str(&html[start..end]).expect("JSON")
}

/// The page says where to upload and how, and loads its files from where they are served.
#[tokio::test]
async fn the_page_carries_the_servers_settings() {
    let config = Config {
        protocol: PageProtocol::Ietf,
        chunk_size: 1 << 20,
        endpoints: Endpoints {
            tus: "/files/".into(),
            ietf: "/uploads".into(),
            s3: "/s3".into(),
            max_size: Some(1000),
            token: true,
            origins: Vec::new(),
        },
        ..Config::default()
    };
    let app = page(config);
    let r = call(&app, "GET", "/", &[], Body::empty()).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let csp = r.header("content-security-policy").expect("a policy");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let html = std::str::from_utf8(&r.body).unwrap();
    let settings = settings_in(html);
    assert_eq!(settings["protocol"], "ietf");
    assert_eq!(settings["chunkSize"], 1 << 20);
    assert_eq!(settings["ietf"], "/uploads");
    assert_eq!(settings["maxSize"], 1000);
    assert_eq!(settings["token"], true);
    for asset in assets::ALL {
        if asset.name.ends_with(".js") && asset.name != "app.js" {
            continue; // imported by app.js
        }
        let link = format!("/ui/{}", asset.name);
        assert!(html.contains(&link), "the page links {link}");
        let r = call(&app, "GET", &link, &[], Body::empty()).await;
        assert_eq!(r.status, StatusCode::OK, "{link}");
    }
}

/// Whatever a path or title holds stays text: no markup, no end of the data block.
#[tokio::test]
async fn settings_and_title_cannot_break_out_of_the_page() {
    let config = Config {
        title: "<img src=x onerror=alert(1)> & \"Co\"".into(),
        endpoints: Endpoints {
            tus: "/files/</script><script>alert(1)</script>".into(),
            ..Endpoints::default()
        },
        ..Config::default()
    };
    let r = call(&page(config), "GET", "/", &[], Body::empty()).await;
    let html = std::str::from_utf8(&r.body).unwrap();
    assert!(!html.contains("<img"), "{html}");
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt; &amp; &quot;Co&quot;"));
    assert_eq!(html.matches("</script>").count(), 2, "only the page's own");
    assert_eq!(
        settings_in(html)["tus"],
        "/files/</script><script>alert(1)</script>"
    );
}

/// The bundle is sent gzipped to clients that take gzip and unpacked to the others;
/// both are the same file.
#[tokio::test]
async fn the_bundle_is_gzipped_only_for_clients_that_accept_it() {
    let app = page(Config::default());
    let gz = call(
        &app,
        "GET",
        "/ui/uppy.js",
        &[("accept-encoding", "br, gzip;q=0.8")],
        Body::empty(),
    )
    .await;
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    assert_eq!(gz.header("vary"), Some("accept-encoding"));
    let mut unpacked = Vec::new();
    flate2::read::GzDecoder::new(&gz.body[..])
        .read_to_end(&mut unpacked)
        .unwrap();
    for accept in [None, Some("identity"), Some("gzip;q=0")] {
        let headers: Vec<_> = accept.map(|a| ("accept-encoding", a)).into_iter().collect();
        let plain = call(&app, "GET", "/ui/uppy.js", &headers, Body::empty()).await;
        assert_eq!(plain.status, StatusCode::OK);
        assert_eq!(plain.header("content-encoding"), None, "{accept:?}");
        assert_eq!(plain.body, unpacked, "{accept:?}");
    }
    assert!(
        std::str::from_utf8(&unpacked).unwrap().contains("tus"),
        "the bundle holds the tus client"
    );
}

/// A copy the browser already has is confirmed with 304 and no body.
#[tokio::test]
async fn a_current_copy_is_not_sent_again() {
    let app = page(Config::default());
    for path in ["/", "/ui/app.js", "/ui/uppy.css"] {
        let first = call(&app, "GET", path, &[], Body::empty()).await;
        let etag = first.header("etag").expect("an ETag").to_owned();
        let again = call(
            &app,
            "GET",
            path,
            &[("if-none-match", &etag)],
            Body::empty(),
        )
        .await;
        assert_eq!(again.status, StatusCode::NOT_MODIFIED, "{path}");
        assert!(again.body.is_empty());
        let other = call(
            &app,
            "GET",
            path,
            &[("if-none-match", "W/\"other\"")],
            Body::empty(),
        )
        .await;
        assert_eq!(other.status, StatusCode::OK, "{path}");
    }
}

/// Turned off, nothing is served; moved, the files follow the page.
#[tokio::test]
async fn the_page_can_be_moved_or_turned_off() {
    let off = page(Config {
        enabled: false,
        ..Config::default()
    });
    assert_eq!(
        call(&off, "GET", "/", &[], Body::empty()).await.status,
        StatusCode::NOT_FOUND
    );
    let moved = page(Config {
        path: "/send".into(),
        ..Config::default()
    });
    assert_eq!(
        call(&moved, "GET", "/send", &[], Body::empty())
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        call(&moved, "GET", "/send/ui/app.js", &[], Body::empty())
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        call(&moved, "GET", "/", &[], Body::empty()).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(&moved, "POST", "/send", &[], Body::empty())
            .await
            .status,
        StatusCode::METHOD_NOT_ALLOWED
    );
}

/// A title holding a placeholder stays text; the settings are written once.
#[tokio::test]
async fn placeholders_in_values_are_not_filled() {
    let config = Config {
        title: "{{settings}} {{assets}}".into(),
        ..Config::default()
    };
    let r = call(&page(config), "GET", "/", &[], Body::empty()).await;
    let html = std::str::from_utf8(&r.body).unwrap();
    assert_eq!(
        html.matches("{{settings}} {{assets}}").count(),
        2,
        "title and heading"
    );
    assert_eq!(html.matches(r#""protocol":"#).count(), 1);
}

/// Requests go to the server and the origins its upload URLs name (anywhere only in the
/// S3 mode); frames only by its own origin and those configured.
#[tokio::test]
async fn the_policy_names_only_what_the_page_needs() {
    let policy = |config: Config| async {
        let r = call(&page(config), "GET", "/", &[], Body::empty()).await;
        r.header("content-security-policy").unwrap().to_owned()
    };
    let plain = policy(Config::default()).await;
    assert!(plain.contains("connect-src 'self';"), "{plain}");
    assert!(plain.contains("frame-ancestors 'self';"), "{plain}");
    let configured = policy(Config {
        frame_ancestors: vec!["https://app.example.com".into(), "x; script-src *".into()],
        endpoints: Endpoints {
            origins: vec!["https://uploads.example.com".into()],
            ..Endpoints::default()
        },
        ..Config::default()
    })
    .await;
    assert!(
        configured.contains("connect-src 'self' https://uploads.example.com;"),
        "{configured}"
    );
    assert!(
        configured.contains("frame-ancestors 'self' https://app.example.com;"),
        "{configured}"
    );
    assert!(!configured.contains("script-src *"), "{configured}");
    let direct = policy(Config {
        protocol: PageProtocol::S3,
        ..Config::default()
    })
    .await;
    assert!(
        direct.contains("connect-src 'self' http: https:;"),
        "{direct}"
    );
}

/// The list holds the caller's own finished uploads, and none for anybody else or an
/// anonymous caller.
#[tokio::test]
async fn the_list_is_the_callers_own_finished_uploads() {
    use chunkd_core::Uploads;
    use chunkd_core::memory::{MemoryState, MemoryStore};

    let uploads = Uploads::builder(
        std::sync::Arc::new(MemoryStore::new()),
        std::sync::Arc::new(MemoryState::new()),
    )
    .build();
    let config = Config {
        endpoints: Endpoints {
            tus: "/files".into(),
            ..Endpoints::default()
        },
        ..Config::default()
    };
    let app = axum::Router::new()
        .merge(crate::tus::router(uploads.clone(), Default::default()))
        .merge(finished::router(uploads, &config));
    let app = crate::identity::identify(
        app,
        crate::identity::Config {
            source: crate::identity::Source::TrustedHeader(http::HeaderName::from_static("x-user")),
            required: false,
            max_uploads_per_client: 0,
        },
    );
    let tus = [
        ("tus-resumable", "1.0.0"),
        ("content-type", "application/offset+octet-stream"),
    ];
    for (user, name) in [("ada", "bmVhcg=="), ("ada", "ZmFy"), ("bob", "Ym9i")] {
        let headers = [
            tus[0],
            tus[1],
            ("x-user", user),
            ("upload-length", "3"),
            ("upload-metadata", &format!("filename {name}")),
        ];
        let r = call(&app, "POST", "/files", &headers, Body::from("abc")).await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    // One of ada's left unfinished.
    let headers = [tus[0], ("x-user", "ada"), ("upload-length", "9")];
    assert_eq!(
        call(&app, "POST", "/files", &headers, Body::empty())
            .await
            .status,
        StatusCode::CREATED
    );
    let list = |user: Option<&'static str>| {
        let app = app.clone();
        async move {
            let headers: Vec<_> = user.map(|u| ("x-user", u)).into_iter().collect();
            let r = call(&app, "GET", "/ui/finished", &headers, Body::empty()).await;
            assert_eq!(r.status, StatusCode::OK);
            assert_eq!(r.header("cache-control"), Some("no-store"));
            serde_json::from_slice::<Vec<serde_json::Value>>(&r.body).unwrap()
        }
    };
    let ada = list(Some("ada")).await;
    let mut names: Vec<_> = ada.iter().map(|e| e["name"].as_str().unwrap()).collect();
    names.sort_unstable();
    assert_eq!(names, ["far", "near"]);
    for entry in &ada {
        assert_eq!(entry["size"], 3);
        let url = entry["url"].as_str().unwrap();
        assert!(url.starts_with("/files/") && url.ends_with(entry["id"].as_str().unwrap()));
    }
    assert_eq!(list(Some("bob")).await.len(), 1);
    assert!(list(Some("carol")).await.is_empty());
    assert!(
        list(None).await.is_empty(),
        "anonymous callers list nothing"
    );
}
