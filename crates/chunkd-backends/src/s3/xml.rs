//! Reading S3's XML answers leniently: the few fields chunkd needs, by element name,
//! without a schema (S3-compatible services differ in what else they send).

/// The text of the first `<name>` element.
pub(crate) fn element<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&format!("</{name}>"))?;
    Some(&xml[start..end])
}

/// ETags are quoted; XML answers may escape the quotes.
pub(crate) fn unescape_etag(text: &str) -> String {
    text.trim().replace("&quot;", "\"").replace("&#34;", "\"")
}
