//! The pages' static files, embedded in the binary: served with a strong ETag (a hash of the
//! content) and `Cache-Control: no-cache`, so browsers revalidate with one small request and a
//! new release is picked up at once.

use std::sync::LazyLock;

use crate::observe::PageRequest;
use poem::http::{HeaderValue, StatusCode, header};
use poem::web::Path;
use poem::{Request, Response};
use sha2::Digest;

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
    etag: String,
}

static ASSETS: LazyLock<Vec<Asset>> = LazyLock::new(|| {
    [
        (
            "app.js",
            "text/javascript; charset=utf-8",
            include_str!("../../assets/app.js"),
        ),
        (
            "qr.js",
            "text/javascript; charset=utf-8",
            include_str!("../../assets/qr.js"),
        ),
        (
            "style.css",
            "text/css; charset=utf-8",
            include_str!("../../assets/style.css"),
        ),
    ]
    .into_iter()
    .map(|(name, content_type, body)| Asset {
        name,
        content_type,
        body,
        etag: format!("\"{}\"", hex::encode(&sha2::Sha256::digest(body)[..16])),
    })
    .collect()
});

/// `GET /static/{name}`: the file, 304 when the browser's copy is current, 404 otherwise.
#[poem::handler]
pub async fn serve(request: &Request, name: Path<String>) -> Response {
    let mut response = match ASSETS.iter().find(|asset| asset.name == name.0) {
        Some(asset) => {
            let current = request
                .headers()
                .get(header::IF_NONE_MATCH)
                .and_then(|value| value.to_str().ok())
                .is_some_and(|tags| tags.split(',').any(|tag| tag.trim() == asset.etag));
            let builder = Response::builder()
                .header(header::ETAG, asset.etag.as_str())
                .header(header::CACHE_CONTROL, "no-cache");
            if current {
                builder.status(StatusCode::NOT_MODIFIED).finish()
            } else {
                builder.content_type(asset.content_type).body(asset.body)
            }
        }
        None => {
            let (status, body) = crate::rest::error_json(&burnbox_core::Error::new(
                burnbox_core::ErrorKind::NotFound,
                "no such file",
            ));
            Response::builder()
                .status(status)
                .content_type("application/json; charset=utf-8")
                .body(body)
        }
    };
    response
        .headers_mut()
        .insert("x-robots-tag", HeaderValue::from_static("noindex"));
    response.set_data(PageRequest(super::ASSET));
    response
}
