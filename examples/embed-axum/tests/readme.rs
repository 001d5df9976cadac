//! The README's "To embed chunkd in an axum app" snippet is an excerpt of this example's
//! main.rs, so it is compiled code: every line of it is there, in the same order.
#![allow(clippy::expect_used)]

const README: &str = include_str!("../../../README.md");
const MAIN: &str = include_str!("../src/main.rs");
const INTRO: &str = "To embed chunkd in an axum app";

/// The first ```rust block after `INTRO`.
fn snippet() -> Vec<&'static str> {
    let after = &README[README
        .find(INTRO)
        .expect("the README introduces the snippet")..];
    let body = &after[after.find("```rust\n").expect("a ```rust block") + "```rust\n".len()..];
    let body = &body[..body.find("```").expect("the block ends")];
    body.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn readme_snippet_is_an_excerpt_of_main_rs() {
    let lines = snippet();
    assert!(lines.len() >= 5, "snippet too short: {lines:?}");
    let mut main = MAIN.lines().map(str::trim);
    for line in lines {
        assert!(
            main.any(|m| m == line),
            "README line not in examples/embed-axum/src/main.rs (or out of order): {line}"
        );
    }
}
