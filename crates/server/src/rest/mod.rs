//! The REST adapter: the Onetime Secret v1 API with poem-openapi. Each route turns its wire
//! input into core input, calls one `Secrets` method and turns the result into the wire output.

mod body;
mod error;

use std::sync::Arc;

use burnbox_core::{Caller, Receipt, RevealInput, Revealed, Secrets, ShareInput};
use poem::{Endpoint, EndpointExt, Route};
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi, OpenApiService};

pub use body::{FormOrJson, IntField};
pub use error::{ApiError, ErrorBody};

use body::one_or_many;
use error::render_framework_error;

/// Where the REST API lives.
pub const API_PREFIX: &str = "/api/v1";

/// Fields of a share request.
#[derive(Object, serde::Deserialize, Default)]
pub struct ShareForm {
    /// The value to keep secret (required; at most the server's max secret size).
    secret: Option<String>,
    /// A passphrase the recipient must give to reveal the secret.
    passphrase: Option<String>,
    /// Seconds until the secret expires unread.
    ttl: Option<IntField>,
    /// Email delivery is not supported: any non-empty value is refused (422).
    #[serde(default, deserialize_with = "one_or_many")]
    #[oai(default)]
    recipient: Vec<String>,
    /// Only the server's own share domain is accepted.
    share_domain: Option<String>,
}

/// Fields of a reveal request.
#[derive(Object, serde::Deserialize, Default)]
pub struct RevealForm {
    /// The passphrase, for a protected secret.
    passphrase: Option<String>,
}

/// A receipt: what a secret's creator may know about it.
#[derive(Object)]
pub struct ReceiptBody {
    /// The owner (`anon` for anonymous secrets).
    custid: String,
    /// The key that reads this receipt.
    metadata_key: String,
    /// The key that reveals the secret, while it is unread.
    #[oai(skip_serializing_if_is_none)]
    secret_key: Option<String>,
    /// The secret's lifetime as shared, in seconds.
    ttl: i64,
    /// Seconds left before this receipt expires.
    metadata_ttl: i64,
    /// Seconds left before the secret expires, while it is unread.
    #[oai(skip_serializing_if_is_none)]
    secret_ttl: Option<i64>,
    /// new, received, burned or expired.
    state: String,
    /// Unix seconds of creation.
    created: i64,
    /// Unix seconds of the last change.
    updated: i64,
    /// Unix seconds of the reveal.
    #[oai(skip_serializing_if_is_none)]
    received: Option<i64>,
    /// Unix seconds of the burn.
    #[oai(skip_serializing_if_is_none)]
    burned: Option<i64>,
    /// Delivery addresses (always empty).
    recipient: Vec<String>,
    /// The domain links are shared on.
    share_domain: String,
    /// Whether revealing needs a passphrase.
    passphrase_required: bool,
}

impl From<Receipt> for ReceiptBody {
    fn from(receipt: Receipt) -> Self {
        Self {
            custid: receipt.custid,
            metadata_key: receipt.metadata_key,
            secret_key: receipt.secret_key,
            ttl: receipt.ttl,
            metadata_ttl: receipt.metadata_ttl,
            secret_ttl: receipt.secret_ttl,
            state: receipt.state.as_str().to_owned(),
            created: receipt.created,
            updated: receipt.updated,
            received: receipt.received,
            burned: receipt.burned,
            recipient: receipt.recipient,
            share_domain: receipt.share_domain,
            passphrase_required: receipt.passphrase_required,
        }
    }
}

/// A revealed secret.
#[derive(Object)]
pub struct RevealBody {
    /// The secret value. It no longer exists on the server.
    value: String,
    /// The key it was revealed with.
    secret_key: String,
    /// The domain links are shared on.
    share_domain: String,
}

impl From<Revealed> for RevealBody {
    fn from(revealed: Revealed) -> Self {
        Self {
            value: revealed.value.as_str().to_owned(),
            secret_key: revealed.secret_key,
            share_domain: revealed.share_domain,
        }
    }
}

/// The service status.
#[derive(Object)]
pub struct StatusBody {
    /// Always `nominal` while the server answers.
    status: String,
}

type ApiResult<T> = Result<Json<T>, ApiError>;

/// The REST routes, sharing the one handler with gRPC.
pub struct RestApi {
    secrets: Arc<Secrets>,
}

impl RestApi {
    async fn share_secret(
        &self,
        FormOrJson(form): FormOrJson<ShareForm>,
    ) -> ApiResult<ReceiptBody> {
        let input = ShareInput {
            secret: form.secret,
            passphrase: form.passphrase,
            ttl: form.ttl.map(|ttl| ttl.value("ttl")).transpose()?,
            recipient: form.recipient,
            share_domain: form.share_domain,
        };
        let receipt = self.secrets.share(&Caller::anonymous(), input).await?;
        Ok(Json(receipt.into()))
    }
}

#[OpenApi(prefix_path = "/api/v1")]
impl RestApi {
    /// Service status.
    #[oai(path = "/status", method = "get", operation_id = "status")]
    async fn status(&self) -> ApiResult<StatusBody> {
        Ok(Json(StatusBody {
            status: self.secrets.status().to_owned(),
        }))
    }

    /// Share a secret: store it and get the receipt with the key that reveals it.
    #[oai(path = "/share", method = "post", operation_id = "share")]
    async fn share(&self, body: FormOrJson<ShareForm>) -> ApiResult<ReceiptBody> {
        self.share_secret(body).await
    }

    /// Alias of `share`.
    #[oai(path = "/create", method = "post", operation_id = "create")]
    async fn create(&self, body: FormOrJson<ShareForm>) -> ApiResult<ReceiptBody> {
        self.share_secret(body).await
    }

    /// Reveal a secret: returns its value once and destroys it.
    #[oai(path = "/secret/:key", method = "post", operation_id = "reveal")]
    async fn reveal(
        &self,
        key: Path<String>,
        FormOrJson(form): FormOrJson<RevealForm>,
    ) -> ApiResult<RevealBody> {
        let input = RevealInput {
            key: key.0,
            passphrase: form.passphrase,
        };
        let revealed = self.secrets.reveal(&Caller::anonymous(), input).await?;
        Ok(Json(revealed.into()))
    }
}

/// The OpenAPI service (routes plus the spec they imply).
pub fn api_service(secrets: Arc<Secrets>) -> OpenApiService<RestApi, ()> {
    OpenApiService::new(RestApi { secrets }, "burnbox", env!("CARGO_PKG_VERSION"))
        .description("One-time secrets over the Onetime Secret v1 REST API.")
}

/// The REST endpoint: the API, its spec at `/api/v1/openapi.yaml` (and `.json`), Swagger UI at `/docs`, and
/// the documented error body for every error, the framework's included.
pub fn endpoint(secrets: Arc<Secrets>) -> impl Endpoint {
    let service = api_service(secrets);
    let spec_yaml = service.spec_endpoint_yaml();
    let spec_json = service.spec_endpoint();
    let docs = service.swagger_ui();
    Route::new()
        .nest("/", service)
        .at(format!("{API_PREFIX}/openapi.yaml"), spec_yaml)
        .at(format!("{API_PREFIX}/openapi.json"), spec_json)
        .nest("/docs", docs)
        .catch_all_error(|err| async move { render_framework_error(err) })
}
