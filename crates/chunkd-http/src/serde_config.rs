//! The `serde` form of the front ends' settings: defaults fill what is left out, and what
//! a binary supplies itself is not part of it.

use std::time::Duration;

fn parse<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, serde_json::Error> {
    serde_json::from_str(json)
}

#[test]
fn missing_keys_keep_the_defaults() {
    let tus: crate::tus::Config = parse("{}").expect("empty tus");
    assert_eq!(tus.path, crate::tus::Config::default().path);
    let ietf: crate::ietf::Config = parse(r#"{"path": "/up"}"#).expect("ietf");
    assert_eq!(ietf.path, "/up");
    assert_eq!(
        ietf.progress_interval,
        crate::ietf::Config::default().progress_interval
    );
    let flow: crate::resumablejs::Config = parse(r#"{"flow_path": "/f"}"#).expect("flow");
    assert_eq!(flow.resumable_path, "/resumable");
    assert_eq!(flow.idle_timeout, crate::DEFAULT_IDLE_TIMEOUT);
}

#[test]
fn durations_are_humantime_strings() {
    let direct: crate::s3_multipart::Config =
        parse(r#"{"part_url_validity": "2m 30s"}"#).expect("s3_multipart");
    assert_eq!(direct.part_url_validity, Duration::from_secs(150));
    let json = serde_json::to_value(crate::ietf::Config::default()).expect("serialise");
    assert_eq!(json["progress_interval"], "1s");
}

#[test]
fn supplied_fields_are_not_settings() {
    // The binary fills these from its own top-level settings.
    assert!(parse::<crate::tus::Config>(r#"{"idle_timeout": "5s"}"#).is_err());
    assert!(parse::<crate::form::Config>(r#"{"download_path": "/files"}"#).is_err());
    assert!(parse::<crate::content_range::Config>(r#"{"public_url": {}}"#).is_err());
    let json = serde_json::to_value(crate::form::Config::default()).expect("serialise");
    assert_eq!(
        json,
        serde_json::json!({"upload_path": "/upload", "progress_path": "/progress", "max_files": 100})
    );
}

#[test]
fn unknown_keys_are_refused() {
    assert!(parse::<crate::resumablejs::Config>(r#"{"resumable": "/r"}"#).is_err());
    assert!(parse::<crate::PublicUrl>(r#"{"bse": "https://x"}"#).is_err());
}
