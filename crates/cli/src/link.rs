//! Links and keys as people paste them: `{server}/secret/{key}#{fragment}`, the same without
//! the fragment, a bare key (`KEY` or `KEY#FRAGMENT`), and receipt links
//! (`{server}/receipt/{metadata_key}`, `/private/…`).

use reqwest::Url;

use crate::error::CliError;

/// A secret to reveal.
#[derive(PartialEq, Eq)]
pub struct SecretRef {
    /// The server the link points at (`https://host[:port][/prefix]`), if it was a link.
    pub server: Option<String>,
    /// The secret key.
    pub key: String,
    /// The end-to-end key from the link's fragment, if any.
    pub fragment: Option<String>,
}

// The fragment opens the secret: kept out of `{:?}`.
impl std::fmt::Debug for SecretRef {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("SecretRef")
            .field("server", &self.server)
            .field("key", &self.key)
            .field("fragment", &self.fragment.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// A receipt to read or burn.
#[derive(Debug, PartialEq, Eq)]
pub struct ReceiptRef {
    /// The server the link points at, if it was a link.
    pub server: Option<String>,
    /// The metadata key.
    pub metadata_key: String,
}

/// Keys are opaque to clients, but a key that is not plain ASCII letters and digits is a
/// mistyped argument, better refused here than sent as a path.
fn is_key(text: &str) -> bool {
    !text.is_empty() && text.len() <= 256 && text.bytes().all(|byte| byte.is_ascii_alphanumeric())
}

/// Splits an `http(s)` link into its server (everything before `/{marker}/`) and the segment
/// after one of the `markers`.
fn split_link(text: &str, markers: &[&str]) -> Option<(String, String, Option<String>)> {
    let url = Url::parse(text).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    let segments: Vec<&str> = url.path_segments()?.collect();
    // The last marker wins, so a server under a prefix (`/burnbox/secret/KEY`) works too.
    let at = segments
        .iter()
        .rposition(|segment| markers.contains(segment))?;
    let key = segments.get(at + 1)?;
    if segments.len() > at + 2 && segments[at + 2..].iter().any(|rest| !rest.is_empty()) {
        return None;
    }
    let mut server = url.origin().ascii_serialization();
    for prefix in &segments[..at] {
        server.push('/');
        server.push_str(prefix);
    }
    let fragment = url.fragment().filter(|fragment| !fragment.is_empty());
    Some((server, (*key).to_owned(), fragment.map(str::to_owned)))
}

/// Parses what `reveal` was given.
pub fn parse_secret(text: &str) -> Result<SecretRef, CliError> {
    let text = text.trim();
    if text.starts_with("http://") || text.starts_with("https://") {
        let (server, key, fragment) = split_link(text, &["secret"]).ok_or_else(|| {
            CliError::Usage(
                "not a secret link: expected {server}/secret/{key}#{key for the link}".into(),
            )
        })?;
        if !is_key(&key) {
            return Err(CliError::Usage("the link's secret key is malformed".into()));
        }
        return Ok(SecretRef {
            server: Some(server),
            key,
            fragment,
        });
    }
    let (key, fragment) = match text.split_once('#') {
        Some((key, fragment)) => (key, Some(fragment).filter(|fragment| !fragment.is_empty())),
        None => (text, None),
    };
    if !is_key(key) {
        return Err(CliError::Usage(
            "expected a secret link ({server}/secret/{key}#…) or a secret key (letters and digits)"
                .into(),
        ));
    }
    Ok(SecretRef {
        server: None,
        key: key.to_owned(),
        fragment: fragment.map(str::to_owned),
    })
}

/// Parses what `receipt` and `burn` were given.
pub fn parse_receipt(text: &str) -> Result<ReceiptRef, CliError> {
    let text = text.trim();
    if text.starts_with("http://") || text.starts_with("https://") {
        let (server, metadata_key, _) = split_link(text, &["receipt", "private"])
            .ok_or_else(|| {
                CliError::Usage(
                    "not a receipt link: expected {server}/receipt/{metadata key} or /private/{metadata key}"
                        .into(),
                )
            })?;
        if !is_key(&metadata_key) {
            return Err(CliError::Usage(
                "the link's metadata key is malformed".into(),
            ));
        }
        return Ok(ReceiptRef {
            server: Some(server),
            metadata_key,
        });
    }
    // A receipt link's fragment is the secret's key: of no use to read or burn.
    let metadata_key = text.split_once('#').map_or(text, |(key, _)| key);
    if !is_key(metadata_key) {
        return Err(CliError::Usage(
            "expected a metadata key (letters and digits) or a /receipt/… or /private/… link"
                .into(),
        ));
    }
    Ok(ReceiptRef {
        server: None,
        metadata_key: metadata_key.to_owned(),
    })
}

/// The link to a secret: `{base}/secret/{key}`, with `#{fragment}` when end to end.
pub fn secret_link(base: &str, key: &str, fragment: Option<&str>) -> String {
    let base = base.trim_end_matches('/');
    match fragment {
        Some(fragment) => format!("{base}/secret/{key}#{fragment}"),
        None => format!("{base}/secret/{key}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_links_in_every_form() {
        let full = parse_secret("https://s.example/secret/abc123#KEYfrag-_").expect("link");
        assert_eq!(full.server.as_deref(), Some("https://s.example"));
        assert_eq!(full.key, "abc123");
        assert_eq!(full.fragment.as_deref(), Some("KEYfrag-_"));

        let plain = parse_secret("http://127.0.0.1:8080/secret/abc123").expect("link");
        assert_eq!(plain.server.as_deref(), Some("http://127.0.0.1:8080"));
        assert_eq!(plain.fragment, None);

        let prefixed = parse_secret("https://h.example/tools/burnbox/secret/k1/").expect("link");
        assert_eq!(
            prefixed.server.as_deref(),
            Some("https://h.example/tools/burnbox")
        );
        assert_eq!(prefixed.key, "k1");

        let bare = parse_secret(" abc123 ").expect("key");
        assert_eq!(
            (bare.server, bare.key, bare.fragment),
            (None, "abc123".into(), None)
        );
        let bare = parse_secret("abc#frag").expect("key with fragment");
        assert_eq!(bare.fragment.as_deref(), Some("frag"));

        for bad in [
            "",
            "#",
            "https://s.example/receipt/abc",
            "https://s.example/secret/",
            "https://s.example/secret/a/b",
            "https://s.example/secret/a%2Fb",
            "ftp://s.example/secret/abc",
            "../etc/passwd",
            "a b",
            "ключ",
        ] {
            assert!(parse_secret(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn receipt_links_and_keys() {
        for link in [
            "https://s.example/receipt/mk1",
            "https://s.example/private/mk1#thekey",
            "mk1",
            "mk1#thekey",
        ] {
            let parsed = parse_receipt(link).expect(link);
            assert_eq!(parsed.metadata_key, "mk1");
        }
        assert!(parse_receipt("https://s.example/secret/mk1").is_err());
        assert!(parse_receipt("").is_err());
        assert_eq!(
            secret_link("https://s.example/", "k", Some("f")),
            "https://s.example/secret/k#f"
        );
    }
}
