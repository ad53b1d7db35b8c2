//! The two transports behind one set of operations: REST (Onetime Secret v1, so any compatible
//! server works) and burnbox's gRPC API (`--grpc`). Both return the same types, so every command
//! prints the same thing over either.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use burnbox_spec::v1 as pb;
use burnbox_spec::v1::secrets_client::SecretsClient;
use serde::{Deserialize, Serialize};
use tonic::transport::Channel;

use crate::error::{CliError, ServerError, ServerErrorKind, chain};

/// How long to wait for a connection before calling the server unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one request may take in all.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// A receipt, as the REST API writes it (gRPC receipts are converted to the same).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Receipt {
    /// The owner (`anon` without credentials).
    #[serde(default, deserialize_with = "lenient_string")]
    pub custid: String,
    /// The key of this receipt.
    #[serde(default, deserialize_with = "lenient_string")]
    pub metadata_key: String,
    /// The secret's key, while it is unread.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key: Option<String>,
    /// The ttl the secret was shared with.
    #[serde(
        default,
        deserialize_with = "lenient_i64",
        skip_serializing_if = "Option::is_none"
    )]
    pub ttl: Option<i64>,
    /// Seconds the receipt has left.
    #[serde(
        default,
        deserialize_with = "lenient_i64",
        skip_serializing_if = "Option::is_none"
    )]
    pub metadata_ttl: Option<i64>,
    /// Seconds the secret has left, while it is unread.
    #[serde(
        default,
        deserialize_with = "lenient_i64",
        skip_serializing_if = "Option::is_none"
    )]
    pub secret_ttl: Option<i64>,
    /// `new`, `received`, `burned` or `expired`.
    #[serde(default, deserialize_with = "lenient_string")]
    pub state: String,
    /// When it was created (Unix seconds).
    #[serde(
        default,
        deserialize_with = "lenient_i64",
        skip_serializing_if = "Option::is_none"
    )]
    pub created: Option<i64>,
    /// When it last changed.
    #[serde(
        default,
        deserialize_with = "lenient_i64",
        skip_serializing_if = "Option::is_none"
    )]
    pub updated: Option<i64>,
    /// When the secret was revealed.
    #[serde(
        default,
        deserialize_with = "lenient_i64",
        skip_serializing_if = "Option::is_none"
    )]
    pub received: Option<i64>,
    /// When the secret was burned.
    #[serde(
        default,
        deserialize_with = "lenient_i64",
        skip_serializing_if = "Option::is_none"
    )]
    pub burned: Option<i64>,
    /// Addresses the link was emailed to, masked.
    #[serde(default, deserialize_with = "lenient_strings")]
    pub recipient: Vec<String>,
    /// A custom domain the link is shared on (empty for the server's own; earlier burnbox builds
    /// sent its public URL here).
    #[serde(default, deserialize_with = "lenient_string")]
    pub share_domain: String,
    /// The receipt page's URL; links are made under the same base.
    #[serde(
        default,
        deserialize_with = "lenient_optional_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub metadata_url: Option<String>,
    /// Whether a passphrase protects the secret.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub passphrase_required: bool,
    /// The generated password (generate only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Fields another Onetime Secret compatible server adds, passed through to `--json`.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// Some Onetime Secret servers write numbers as strings: accept both, and anything else as none.
fn lenient_i64<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(deserializer)?;
    Ok(match value {
        Some(serde_json::Value::Number(number)) => number
            .as_i64()
            .or_else(|| number.as_f64().map(|float| float as i64)),
        Some(serde_json::Value::String(text)) => text.trim().parse().ok(),
        _ => None,
    })
}

/// A text field that another server may leave `null` or write as a number.
fn lenient_string<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(
        match Option::<serde_json::Value>::deserialize(deserializer)? {
            Some(serde_json::Value::String(text)) => text,
            Some(serde_json::Value::Number(number)) => number.to_string(),
            _ => String::new(),
        },
    )
}

/// A non-empty text, or anything else as none.
fn lenient_optional_string<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    Ok(Some(lenient_string(deserializer)?).filter(|text| !text.is_empty()))
}

/// A list of texts, or anything else as an empty list.
fn lenient_strings<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<String>, D::Error> {
    Ok(
        match Option::<serde_json::Value>::deserialize(deserializer)? {
            Some(serde_json::Value::Array(items)) => items
                .into_iter()
                .filter_map(|item| item.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        },
    )
}

/// A flag, also written as `"true"` by some servers.
fn lenient_bool<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    Ok(
        match Option::<serde_json::Value>::deserialize(deserializer)? {
            Some(serde_json::Value::Bool(flag)) => flag,
            Some(serde_json::Value::String(text)) => text == "true",
            _ => false,
        },
    )
}

/// A revealed secret.
#[derive(Debug, Clone, Deserialize)]
pub struct Revealed {
    /// The value, exactly as shared.
    pub value: String,
}

/// The answer to a burn.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Burned {
    /// The receipt after the burn.
    pub state: Receipt,
    /// The first characters of the burned secret's key.
    #[serde(default)]
    pub secret_shortkey: String,
}

/// What a share sends.
pub struct ShareRequest {
    /// The value (a `bbx1` text when end to end).
    pub secret: String,
    /// An optional passphrase.
    pub passphrase: Option<String>,
    /// The ttl in seconds.
    pub ttl: Option<u64>,
}

/// One server, over one transport, with optional credentials.
pub enum Client {
    /// REST under `{base}/api/v1`.
    Rest {
        /// The API base URL (`…/api/v1`).
        api: String,
        /// The HTTP client.
        http: reqwest::Client,
        /// Customer id and token.
        credentials: Option<(String, String)>,
    },
    /// gRPC.
    Grpc {
        /// The client.
        client: SecretsClient<Channel>,
        /// The `authorization` metadata value.
        authorization: Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>,
    },
}

impl Client {
    /// A REST client of the server at `base` (`https://secrets.example.com`).
    pub fn rest(base: &str, credentials: Option<(&str, &str)>) -> Result<Self, CliError> {
        let base = base.trim().trim_end_matches('/');
        let url = reqwest::Url::parse(base).map_err(|err| {
            CliError::Usage(format!("the server URL {base:?} is not a URL: {err}"))
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(CliError::Usage(format!(
                "the server URL {base:?} must start with http:// or https://"
            )));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("burnbox-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| CliError::Other(format!("cannot set up HTTP: {}", chain(&err))))?;
        Ok(Self::Rest {
            api: format!("{base}/api/v1"),
            http,
            credentials: credentials.map(|(custid, token)| (custid.to_owned(), token.to_owned())),
        })
    }

    /// A gRPC client of `address` (`host:port` or `http://host:port`; plaintext, for internal
    /// services).
    pub async fn grpc(address: &str, credentials: Option<(&str, &str)>) -> Result<Self, CliError> {
        let address = address.trim();
        let uri = if address.contains("://") {
            address.to_owned()
        } else {
            format!("http://{address}")
        };
        if !uri.starts_with("http://") {
            return Err(CliError::Usage(format!(
                "--grpc {address:?}: only plaintext gRPC (host:port or http://host:port) is supported"
            )));
        }
        let endpoint = Channel::from_shared(uri)
            .map_err(|err| CliError::Usage(format!("--grpc {address:?} is not an address: {err}")))?
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT);
        let channel = endpoint.connect().await.map_err(|err| {
            CliError::Unreachable(format!(
                "cannot reach the gRPC server at {address}: {} (check --grpc)",
                chain(&err)
            ))
        })?;
        let authorization = match credentials {
            Some((custid, token)) => {
                let basic =
                    base64::engine::general_purpose::STANDARD.encode(format!("{custid}:{token}"));
                // Base64 is ASCII, so this always parses; the error says nothing of the token.
                Some(format!("Basic {basic}").parse().map_err(|_| {
                    CliError::Usage("the credentials cannot be sent as gRPC metadata".into())
                })?)
            }
            None => None,
        };
        Ok(Self::Grpc {
            client: SecretsClient::new(channel),
            authorization,
        })
    }

    /// Shares a secret.
    pub async fn share(&mut self, request: ShareRequest) -> Result<Receipt, CliError> {
        match self {
            Self::Rest { .. } => {
                let mut form = vec![("secret", request.secret)];
                if let Some(passphrase) = request.passphrase {
                    form.push(("passphrase", passphrase));
                }
                if let Some(ttl) = request.ttl {
                    form.push(("ttl", ttl.to_string()));
                }
                self.rest_call(reqwest::Method::POST, "/share", &form).await
            }
            Self::Grpc {
                client,
                authorization,
            } => {
                let message = pb::ShareSecretRequest {
                    secret: request.secret,
                    passphrase: request.passphrase,
                    ttl: request.ttl.map(clamp_i64),
                    ..Default::default()
                };
                let request = grpc_request(authorization, message);
                Ok(receipt_of(
                    client
                        .share_secret(request)
                        .await
                        .map_err(grpc_error)?
                        .into_inner(),
                ))
            }
        }
    }

    /// Generates a password server side.
    pub async fn generate(
        &mut self,
        passphrase: Option<String>,
        ttl: Option<u64>,
        length: Option<u32>,
    ) -> Result<Receipt, CliError> {
        match self {
            Self::Rest { .. } => {
                let mut form = Vec::new();
                if let Some(passphrase) = passphrase {
                    form.push(("passphrase", passphrase));
                }
                if let Some(ttl) = ttl {
                    form.push(("ttl", ttl.to_string()));
                }
                if let Some(length) = length {
                    form.push(("length", length.to_string()));
                }
                self.rest_call(reqwest::Method::POST, "/generate", &form)
                    .await
            }
            Self::Grpc {
                client,
                authorization,
            } => {
                let request = grpc_request(
                    authorization,
                    pb::GenerateSecretRequest {
                        passphrase,
                        ttl: ttl.map(clamp_i64),
                        length: length.map(i64::from),
                    },
                );
                Ok(receipt_of(
                    client
                        .generate_secret(request)
                        .await
                        .map_err(grpc_error)?
                        .into_inner(),
                ))
            }
        }
    }

    /// Whether the server flags the secret end to end (burnbox's status look-up, which burns
    /// nothing). `None` when the server does not say: another server, or any error, which the
    /// reveal itself will then report.
    pub async fn is_end_to_end(&mut self, key: &str) -> Option<bool> {
        match self {
            Self::Rest { .. } => {
                let status: serde_json::Value = self
                    .rest_call(reqwest::Method::GET, &format!("/secret/{key}/status"), &[])
                    .await
                    .ok()?;
                status.get("end_to_end")?.as_bool()
            }
            Self::Grpc {
                client,
                authorization,
            } => {
                let request = grpc_request(
                    authorization,
                    pb::GetSecretStatusRequest {
                        key: key.to_owned(),
                    },
                );
                let status = client.get_secret_status(request).await.ok()?;
                Some(status.into_inner().end_to_end)
            }
        }
    }

    /// Reveals (and so destroys) a secret.
    pub async fn reveal(
        &mut self,
        key: &str,
        passphrase: Option<String>,
    ) -> Result<Revealed, CliError> {
        match self {
            Self::Rest { .. } => {
                let form: Vec<(&str, String)> = passphrase
                    .map(|p| vec![("passphrase", p)])
                    .unwrap_or_default();
                self.rest_call(reqwest::Method::POST, &format!("/secret/{key}"), &form)
                    .await
            }
            Self::Grpc {
                client,
                authorization,
            } => {
                let request = grpc_request(
                    authorization,
                    pb::RevealSecretRequest {
                        key: key.to_owned(),
                        passphrase,
                    },
                );
                let revealed = client.reveal_secret(request).await.map_err(grpc_error)?;
                Ok(Revealed {
                    value: revealed.into_inner().value,
                })
            }
        }
    }

    /// Reads a receipt.
    pub async fn receipt(&mut self, metadata_key: &str) -> Result<Receipt, CliError> {
        match self {
            Self::Rest { .. } => {
                self.rest_call(
                    reqwest::Method::GET,
                    &format!("/private/{metadata_key}"),
                    &[],
                )
                .await
            }
            Self::Grpc {
                client,
                authorization,
            } => {
                let request = grpc_request(
                    authorization,
                    pb::GetReceiptRequest {
                        metadata_key: metadata_key.to_owned(),
                    },
                );
                Ok(receipt_of(
                    client
                        .get_receipt(request)
                        .await
                        .map_err(grpc_error)?
                        .into_inner(),
                ))
            }
        }
    }

    /// Burns a secret through its receipt.
    pub async fn burn(
        &mut self,
        metadata_key: &str,
        passphrase: Option<String>,
    ) -> Result<Burned, CliError> {
        match self {
            Self::Rest { .. } => {
                let form: Vec<(&str, String)> = passphrase
                    .map(|p| vec![("passphrase", p)])
                    .unwrap_or_default();
                self.rest_call(
                    reqwest::Method::POST,
                    &format!("/private/{metadata_key}/burn"),
                    &form,
                )
                .await
            }
            Self::Grpc {
                client,
                authorization,
            } => {
                let request = grpc_request(
                    authorization,
                    pb::BurnSecretRequest {
                        metadata_key: metadata_key.to_owned(),
                        passphrase,
                    },
                );
                let burned = client
                    .burn_secret(request)
                    .await
                    .map_err(grpc_error)?
                    .into_inner();
                Ok(Burned {
                    state: burned.state.map(receipt_of).unwrap_or_default(),
                    secret_shortkey: burned.secret_shortkey,
                })
            }
        }
    }

    /// The caller's recent receipts, newest first.
    pub async fn recent(&mut self) -> Result<Vec<Receipt>, CliError> {
        match self {
            Self::Rest { .. } => {
                self.rest_call(reqwest::Method::GET, "/private/recent", &[])
                    .await
            }
            Self::Grpc {
                client,
                authorization,
            } => {
                let request = grpc_request(authorization, pb::ListRecentReceiptsRequest {});
                let recent = client
                    .list_recent_receipts(request)
                    .await
                    .map_err(grpc_error)?
                    .into_inner();
                Ok(recent.receipts.into_iter().map(receipt_of).collect())
            }
        }
    }

    /// One REST call with a form body (Onetime Secret v1 clients send forms), decoded as `T`.
    async fn rest_call<T: serde::de::DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        form: &[(&str, String)],
    ) -> Result<T, CliError> {
        let Self::Rest {
            api,
            http,
            credentials,
        } = self
        else {
            return Err(CliError::Other("not a REST client".into()));
        };
        let url = format!("{api}{path}");
        let mut request = http.request(method.clone(), &url);
        if method == reqwest::Method::POST {
            request = request.form(form);
        }
        if let Some((custid, token)) = credentials {
            request = request.basic_auth(custid, Some(token));
        }
        let response = request
            .send()
            .await
            .map_err(|err| transport_error(api, err))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let text = response
            .text()
            .await
            .map_err(|err| transport_error(api, err))?;
        if status.is_success() {
            return serde_json::from_str(&text).map_err(|err| {
                CliError::Other(format!(
                    "the server's answer to {path} is not what an Onetime Secret v1 API returns: {err}"
                ))
            });
        }
        Err(CliError::Server(rest_error(status, &text, retry_after)))
    }
}

/// A transport failure talking to `api`: unreachable (exit 6), without the token (which never
/// is in a URL here: credentials travel as a header).
fn transport_error(api: &str, error: reqwest::Error) -> CliError {
    let base = api.trim_end_matches("/api/v1");
    let error = error.without_url();
    if error.is_connect() || error.is_timeout() || error.is_request() {
        CliError::Unreachable(format!(
            "cannot reach {base}: {} (check --url or BURNBOX_URL)",
            chain(&error)
        ))
    } else {
        CliError::Other(format!("talking to {base}: {}", chain(&error)))
    }
}

/// The error body (`error`, `message`, `error_id`) of a REST error answer, or the status alone.
fn rest_error(status: reqwest::StatusCode, body: &str, retry_after: Option<String>) -> ServerError {
    let kind = match status.as_u16() {
        404 => ServerErrorKind::NotFound,
        401 | 403 => ServerErrorKind::Unauthorized,
        429 => ServerErrorKind::RateLimited,
        502..=504 => ServerErrorKind::Unavailable,
        _ => ServerErrorKind::Other,
    };
    let json: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    let text = |name: &str| {
        json.get(name)
            .and_then(|value| value.as_str())
            .map(str::to_owned)
    };
    let mut message = text("message").unwrap_or_else(|| {
        status
            .canonical_reason()
            .unwrap_or("error answer")
            .to_owned()
    });
    if let Some(field) = text("field") {
        message = format!("{message} (field `{field}`)");
    }
    ServerError {
        kind,
        error: text("error").unwrap_or_else(|| format!("HTTP {}", status.as_u16())),
        message: message.replace(['\n', '\r'], " "),
        error_id: text("error_id"),
        retry_after,
    }
}

/// A gRPC error status as a [`CliError`], with the `ErrorInfo` detail's error type and id.
fn grpc_error(status: tonic::Status) -> CliError {
    use tonic::Code;
    use tonic_types::StatusExt;
    let kind = match status.code() {
        Code::NotFound => ServerErrorKind::NotFound,
        Code::Unauthenticated | Code::PermissionDenied => ServerErrorKind::Unauthorized,
        Code::ResourceExhausted => ServerErrorKind::RateLimited,
        Code::Unavailable => ServerErrorKind::Unavailable,
        Code::Ok
        | Code::Cancelled
        | Code::Unknown
        | Code::InvalidArgument
        | Code::DeadlineExceeded
        | Code::AlreadyExists
        | Code::FailedPrecondition
        | Code::Aborted
        | Code::OutOfRange
        | Code::Unimplemented
        | Code::Internal
        | Code::DataLoss => ServerErrorKind::Other,
    };
    let details = status.get_error_details();
    let info = details.error_info();
    let field = details
        .bad_request()
        .and_then(|bad_request| bad_request.field_violations.first())
        .map(|violation| violation.field.clone());
    let mut message = status.message().replace(['\n', '\r'], " ");
    if let Some(field) = field {
        message = format!("{message} (field `{field}`)");
    }
    ServerError {
        kind,
        error: info
            .map(|info| info.reason.clone())
            .unwrap_or_else(|| format!("{:?}", status.code())),
        message,
        error_id: info.and_then(|info| info.metadata.get("error_id").cloned()),
        retry_after: status
            .metadata()
            .get("retry-after")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned),
    }
    .into()
}

impl From<ServerError> for CliError {
    fn from(error: ServerError) -> Self {
        Self::Server(error)
    }
}

/// A gRPC request carrying the credentials.
fn grpc_request<T>(
    authorization: &Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>,
    message: T,
) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(value) = authorization {
        request
            .metadata_mut()
            .insert("authorization", value.clone());
    }
    request
}

fn clamp_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A gRPC receipt in the REST shape.
fn receipt_of(receipt: pb::Receipt) -> Receipt {
    Receipt {
        custid: receipt.custid,
        metadata_key: receipt.metadata_key,
        secret_key: receipt.secret_key,
        ttl: Some(receipt.ttl),
        metadata_ttl: Some(receipt.metadata_ttl),
        secret_ttl: receipt.secret_ttl,
        state: receipt.state,
        created: Some(receipt.created),
        updated: Some(receipt.updated),
        received: receipt.received,
        burned: receipt.burned,
        recipient: receipt.recipient,
        share_domain: receipt.share_domain,
        metadata_url: Some(receipt.receipt_url).filter(|url| !url.is_empty()),
        passphrase_required: receipt.passphrase_required,
        value: receipt.value,
        extra: BTreeMap::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Receipts of other Onetime Secret servers (numbers as strings, `null`s, extra fields) read
    /// without an error, and the extra fields pass through to `--json`.
    #[test]
    fn lenient_receipts() {
        let receipt: Receipt = serde_json::from_str(
            r#"{"custid":null,"metadata_key":"mk","secret_key":"sk","ttl":"3600",
                "metadata_ttl":7200.0,"secret_ttl":null,"state":"new","created":"x",
                "recipient":null,"passphrase_required":"true","share_domain":null,
                "metadata_url":"https://ots.example/private/mk"}"#,
        )
        .expect("parses");
        assert_eq!(receipt.metadata_key, "mk");
        assert_eq!(receipt.ttl, Some(3600));
        assert_eq!(receipt.metadata_ttl, Some(7200));
        assert_eq!(receipt.secret_ttl, None);
        assert_eq!(receipt.created, None);
        assert!(receipt.passphrase_required);
        assert!(receipt.custid.is_empty() && receipt.share_domain.is_empty());
        let json = serde_json::to_value(&receipt).expect("JSON");
        assert_eq!(json["metadata_url"], "https://ots.example/private/mk");
    }

    #[test]
    fn error_answers_keep_the_servers_words() {
        let error = rest_error(
            reqwest::StatusCode::NOT_FOUND,
            r#"{"error":"NotFound","message":"unknown secret","error_id":"abc"}"#,
            None,
        );
        assert_eq!(error.kind, ServerErrorKind::NotFound);
        let line = CliError::Server(error).to_string();
        assert_eq!(line, "NotFound: unknown secret [error_id abc]");
        let error = rest_error(reqwest::StatusCode::BAD_GATEWAY, "<html>", None);
        assert_eq!(error.kind, ServerErrorKind::Unavailable);
        assert_eq!(CliError::Server(error).exit_code(), 6);
    }
}
