//! Mount paths are checked before any router is built: axum panics on a path it cannot
//! route (a capture-like segment, the same route twice), and a startup error naming the
//! settings beats a panic.
//!
//! Every front end routes only at and below its path, so paths of which none is another
//! one or below it (segment-wise: `/files/x` is below `/files`, `/filesx` is not) can
//! never overlap.

use super::Config;

/// Puts every path chunkd serves below `prefix` (`/uploads`: `/files` becomes
/// `/uploads/files`), for an application that routes that prefix to chunkd.
pub(super) fn prefix_all(config: &mut Config, prefix: &str) {
    let prefix = prefix.trim_end_matches('/');
    if prefix.is_empty() {
        return;
    }
    for path in [
        &mut config.tus.path,
        &mut config.ietf.path,
        &mut config.s3_multipart.path,
        &mut config.resumablejs.resumable_path,
        &mut config.resumablejs.flow_path,
        &mut config.content_range.path,
        &mut config.form.upload_path,
        &mut config.form.progress_path,
        &mut config.events.path,
        &mut config.health.health_path,
        &mut config.health.ready_path,
        &mut config.ui.path,
        &mut config.signing.path,
        &mut config.metrics.path,
    ] {
        *path = format!("{prefix}{path}");
    }
    for rule in &mut config.forward {
        rule.prefix = format!("{prefix}{}", rule.prefix);
    }
}

/// Every mounted path, named as it is written in the configuration.
pub(super) fn mounts(config: &Config) -> Vec<(&'static str, String)> {
    let mut mounts: Vec<(&'static str, String)> = [
        ("tus.path", config.tus.path.as_str()),
        ("ietf.path", config.ietf.path.as_str()),
        ("s3_multipart.path", config.s3_multipart.path.as_str()),
        (
            "resumablejs.resumable_path",
            config.resumablejs.resumable_path.as_str(),
        ),
        (
            "resumablejs.flow_path",
            config.resumablejs.flow_path.as_str(),
        ),
        ("content_range.path", config.content_range.path.as_str()),
        ("form.upload_path", config.form.upload_path.as_str()),
        ("form.progress_path", config.form.progress_path.as_str()),
        ("events.path", config.events.path.as_str()),
        ("health.health_path", config.health.health_path.as_str()),
        ("health.ready_path", config.health.ready_path.as_str()),
    ]
    .into_iter()
    .map(|(setting, path)| (setting, path.to_owned()))
    .collect();
    if config.ui.enabled {
        mounts.push(("ui.path (its files)", config.ui.assets_path()));
    }
    if config.signing.enabled() {
        mounts.push(("signing.path", config.signing.path.clone()));
    }
    if config.metrics.enabled && config.metrics.listen.is_none() {
        mounts.push(("metrics.path", config.metrics.path.clone()));
    }
    mounts
}

/// Each path is a literal route, and no two overlap; the error names the settings.
pub(super) fn check<P: AsRef<str>>(mounts: &[(&str, P)]) -> anyhow::Result<()> {
    let mounts: Vec<(&str, &str)> = mounts.iter().map(|(s, p)| (*s, p.as_ref())).collect();
    for (setting, path) in &mounts {
        literal(path).map_err(|problem| anyhow::anyhow!("{setting} {path:?} {problem}"))?;
    }
    for (i, (setting, path)) in mounts.iter().enumerate() {
        if let Some((earlier, other)) = mounts[..i].iter().find(|(_, p)| overlap(path, p)) {
            anyhow::bail!("{setting} {path:?} collides with {earlier} {other:?}");
        }
    }
    Ok(())
}

/// Why `path` is not a literal axum route (the end of "tus.path "…" …").
fn literal(path: &str) -> Result<(), String> {
    let Some(rest) = path.strip_prefix('/') else {
        return Err("must start with /".into());
    };
    // A trailing slash is accepted as it always was; the segments before it count.
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() {
        return Ok(());
    }
    for segment in rest.split('/') {
        if segment.is_empty() {
            return Err("has an empty segment (//)".into());
        }
        if segment == "." || segment == ".." {
            return Err(format!(
                "has a {segment:?} segment, which clients remove before sending"
            ));
        }
        if segment.starts_with(':') {
            return Err("has a segment starting with :, which axum reads as a capture".into());
        }
        let mut chars = segment.chars();
        while let Some(c) = chars.next() {
            if c == '%' {
                let hex = chars
                    .clone()
                    .take(2)
                    .filter(char::is_ascii_hexdigit)
                    .count();
                if hex != 2 {
                    return Err("has a % not followed by two hex digits".into());
                }
                chars.nth(1);
            } else if !allowed(c) {
                return Err(format!(
                    "contains {c:?}, which a route path cannot hold (use letters, digits, \
                     -._~!$&'()+,;=:@ or %XX)"
                ));
            }
        }
    }
    Ok(())
}

/// RFC 3986 path characters (`pchar`) but `*`, which axum reserves for wildcards.
fn allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~!$&'()+,;=:@".contains(c)
}

/// A route of one exact path (`page`) is literal and neither is nor lies below a mounted
/// path; paths below it are free, since it routes nothing under itself.
pub(super) fn check_exact(mounts: &[(&str, String)], page: (&str, &str)) -> anyhow::Result<()> {
    let (setting, path) = page;
    literal(path).map_err(|problem| anyhow::anyhow!("{setting} {path:?} {problem}"))?;
    if let Some((other_setting, other)) = mounts.iter().find(|(_, other)| {
        let (path, other) = (normal(path), normal(other));
        path == other || below(path, other)
    }) {
        anyhow::bail!("{setting} {path:?} collides with {other_setting} {other:?}");
    }
    Ok(())
}

/// `a` and `b` are the same route or one lies below the other.
fn overlap(a: &str, b: &str) -> bool {
    let (a, b) = (normal(a), normal(b));
    a == b || below(a, b) || below(b, a)
}

fn normal(path: &str) -> &str {
    match path.strip_suffix('/') {
        Some("") | None => path,
        Some(trimmed) => trimmed,
    }
}

fn below(path: &str, base: &str) -> bool {
    base == "/"
        || path
            .strip_prefix(base)
            .is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(mounts: &[(&str, &str)]) -> String {
        check(mounts).expect_err("must refuse").to_string()
    }

    #[test]
    fn the_defaults_pass() {
        let config = Config::default();
        check(&mounts(&config)).expect("defaults");
        assert_eq!(mounts(&config).len(), 13, "signing is off by default");
    }

    /// The page is one exact route: paths below it are free, its own place is not.
    #[test]
    fn the_page_is_an_exact_route() {
        let config = Config::default();
        let mounts = mounts(&config);
        check_exact(&mounts, ("ui.path", "/")).expect("/ is free");
        check_exact(&mounts, ("ui.path", "/send")).expect("/send is free");
        assert_eq!(
            check_exact(&mounts, ("ui.path", "/files/"))
                .expect_err("taken")
                .to_string(),
            r#"ui.path "/files/" collides with tus.path "/files""#
        );
        assert!(
            check_exact(&mounts, ("ui.path", "/uploads/page"))
                .expect_err("below the IETF path")
                .to_string()
                .contains("ietf.path")
        );
        assert!(
            check_exact(&mounts, ("ui.path", "/a b"))
                .expect_err("not literal")
                .to_string()
                .contains("cannot hold")
        );
    }

    #[test]
    fn signing_path_counts_only_when_signing_is_on() {
        let mut config = Config::default();
        config.signing.path = "/files".into();
        check(&mounts(&config)).expect("signing off: /ids is not mounted");
        config.signing.key = "signing-key-0123456789abcdef0123456".into();
        assert_eq!(
            check(&mounts(&config))
                .expect_err("must refuse")
                .to_string(),
            r#"signing.path "/files" collides with tus.path "/files""#
        );
    }

    #[test]
    fn paths_start_with_a_slash() {
        assert_eq!(
            error(&[("tus.path", "files")]),
            r#"tus.path "files" must start with /"#
        );
        assert!(error(&[("form.upload_path", "")]).contains("must start with /"));
    }

    #[test]
    fn route_syntax_is_refused() {
        for path in ["/{id}", "/files/{*rest}", "/a*", "/a?b", "/a#b", "/a}"] {
            let message = error(&[("ietf.path", path)]);
            assert!(
                message.contains("which a route path cannot hold"),
                "{message}"
            );
        }
        assert!(error(&[("ietf.path", "/:id")]).contains("starting with :"));
    }

    #[test]
    fn whitespace_and_non_ascii_are_refused() {
        for path in ["/a b", "/a\tb", "/files\n", "/é"] {
            let message = error(&[("form.progress_path", path)]);
            assert!(
                message.contains("which a route path cannot hold"),
                "{message}"
            );
        }
    }

    #[test]
    fn empty_and_dot_segments_are_refused() {
        assert!(error(&[("tus.path", "//files")]).contains("empty segment"));
        assert!(error(&[("tus.path", "/a//b")]).contains("empty segment"));
        assert!(error(&[("tus.path", "/a/./b")]).contains(r#"has a "." segment"#));
        assert!(error(&[("tus.path", "/..")]).contains(r#"has a ".." segment"#));
    }

    #[test]
    fn percent_escapes_must_be_complete() {
        check(&[("tus.path", "/a%20b")]).expect("an escape is literal");
        assert!(error(&[("tus.path", "/a%2")]).contains("two hex digits"));
        assert!(error(&[("tus.path", "/a%zz")]).contains("two hex digits"));
    }

    #[test]
    fn literal_paths_pass() {
        for path in [
            "/",
            "/files",
            "/files/",
            "/api/v1/up-loads",
            "/a:b",
            "/~u/x@y",
            "/a.b",
        ] {
            check(&[("tus.path", path)]).unwrap_or_else(|e| panic!("{path}: {e}"));
        }
    }

    #[test]
    fn equal_paths_collide() {
        assert_eq!(
            error(&[("tus.path", "/files"), ("content_range.path", "/files")]),
            r#"content_range.path "/files" collides with tus.path "/files""#
        );
        // A trailing slash names the same mount.
        assert!(error(&[("tus.path", "/files/"), ("ietf.path", "/files")]).contains("collides"));
        // Two paths of one front end collide too.
        assert_eq!(
            error(&[
                ("resumablejs.resumable_path", "/chunks"),
                ("resumablejs.flow_path", "/chunks")
            ]),
            r#"resumablejs.flow_path "/chunks" collides with resumablejs.resumable_path "/chunks""#
        );
    }

    #[test]
    fn a_path_below_another_collides_either_way() {
        assert_eq!(
            error(&[("tus.path", "/files"), ("form.upload_path", "/files/x")]),
            r#"form.upload_path "/files/x" collides with tus.path "/files""#
        );
        assert_eq!(
            error(&[("tus.path", "/files/x"), ("form.upload_path", "/files")]),
            r#"form.upload_path "/files" collides with tus.path "/files/x""#
        );
        assert!(error(&[("tus.path", "/"), ("ietf.path", "/uploads")]).contains("collides"));
    }

    #[test]
    fn a_shared_prefix_within_a_segment_is_no_collision() {
        check(&[
            ("tus.path", "/files"),
            ("content_range.path", "/filesx"),
            ("form.upload_path", "/file"),
            ("form.progress_path", "/files-progress/x"),
        ])
        .expect("no segment-prefix");
    }

    #[test]
    fn a_metrics_path_on_its_own_listener_is_checked_too() {
        let mut config = Config::default();
        config.metrics.listen = Some(([127, 0, 0, 1], 9100).into());
        config.metrics.path = "metrics".into();
        let e = config.validate().expect_err("must refuse").to_string();
        assert!(
            e.contains("metrics.path \"metrics\" must start with /"),
            "{e}"
        );
    }
}
