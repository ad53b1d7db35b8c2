//! The load generator's REST client: one HTTP/1.1 keep-alive connection per client, on hyper's
//! connection API. No pool, no per-request URL parsing, no redirect or proxy logic: on a machine
//! shared with the server under test, every microsecond the generator spends is one the server
//! does not get, and a general-purpose client spent about twice as much per request.

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST};
use http::{HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// One keep-alive connection to the server's REST port.
pub struct RestConnection {
    sender: SendRequest<Full<Bytes>>,
    host: HeaderValue,
    base_path: String,
}

/// A response's status and whole body.
pub struct RestResponse {
    pub status: StatusCode,
    pub body: Bytes,
}

impl RestConnection {
    /// Connects to `base` (`http://host:port[/prefix]`).
    pub async fn connect(base: &str) -> Result<Self, String> {
        let uri: Uri = base
            .parse()
            .map_err(|err| format!("REST URL {base:?}: {err}"))?;
        if uri.scheme_str() != Some("http") {
            return Err(format!("REST URL {base:?}: only http:// is supported"));
        }
        let authority = uri
            .authority()
            .ok_or_else(|| format!("REST URL {base:?} has no host"))?
            .clone();
        let port = authority.port_u16().unwrap_or(80);
        // An IPv6 host comes bracketed, as in the URL.
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let stream = TcpStream::connect((host, port))
            .await
            .map_err(|err| format!("cannot reach {base}: {err}"))?;
        stream
            .set_nodelay(true)
            .map_err(|err| format!("TCP_NODELAY: {err}"))?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|err| format!("HTTP/1.1 handshake with {base}: {err}"))?;
        // The connection task ends when the sender is dropped or the server hangs up.
        tokio::spawn(connection);
        let host = HeaderValue::from_str(authority.as_str())
            .map_err(|err| format!("REST URL {base:?}: {err}"))?;
        Ok(Self {
            sender,
            host,
            base_path: uri.path().trim_end_matches('/').to_owned(),
        })
    }

    /// POSTs `body` (of `content_type`, if any) to `path` under the base URL and reads the whole
    /// response.
    pub async fn post(
        &mut self,
        path: &str,
        content_type: Option<&'static str>,
        body: Bytes,
    ) -> Result<RestResponse, String> {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(format!("{}{path}", self.base_path))
            .header(HOST, self.host.clone());
        if let Some(content_type) = content_type {
            request = request.header(CONTENT_TYPE, HeaderValue::from_static(content_type));
        }
        let request = request
            .body(Full::new(body))
            .map_err(|err| err.to_string())?;
        self.sender
            .ready()
            .await
            .map_err(|err| format!("connection lost: {err}"))?;
        let response = self
            .sender
            .send_request(request)
            .await
            .map_err(|err| err.to_string())?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|err| err.to_string())?
            .to_bytes();
        Ok(RestResponse { status, body })
    }
}
