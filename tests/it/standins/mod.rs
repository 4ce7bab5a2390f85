pub mod discord;
pub mod hub;
pub mod telegram;

/// The parts of a `multipart/form-data` body: (field name, file name if any, value).
/// Enough of RFC 7578 for what the platform clients send (text and small files).
pub fn multipart_parts(body: &[u8], boundary: &str) -> Vec<(String, Option<String>, String)> {
    let text = String::from_utf8_lossy(body);
    let attr = |head: &str, key: &str| {
        head.split(&format!("{key}=\""))
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .map(str::to_string)
    };
    text.split(&format!("--{boundary}"))
        .filter_map(|part| {
            let (head, value) = part.split_once("\r\n\r\n")?;
            let name = attr(head, " name").or_else(|| attr(head, ";name"))?;
            let value = value.strip_suffix("\r\n").unwrap_or(value).to_string();
            Some((name, attr(head, "filename"), value))
        })
        .collect()
}

/// The boundary of a `multipart/form-data` request, if it is one.
pub fn multipart_boundary(headers: &axum::http::HeaderMap) -> Option<String> {
    let content_type = headers.get("content-type")?.to_str().ok()?;
    let (_, boundary) = content_type.split_once("boundary=")?;
    content_type
        .starts_with("multipart/form-data")
        .then(|| boundary.trim_matches('"').to_string())
}
