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
