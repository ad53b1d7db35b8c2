//! The REST adapter: the Onetime Secret v1 API with poem-openapi. Each route turns its wire
//! input into core input, calls one `Secrets` method and turns the result into the wire output.

mod body;
mod credentials;
mod error;
mod reveal_lane;

use std::sync::Arc;

use base64::Engine;
use burnbox_core::{BurnInput, GenerateInput, RevealInput, Secrets, ShareInput};
use poem::http::header::{self, HeaderName, HeaderValue};
use poem::middleware::SetHeader;
use poem::{Endpoint, EndpointExt, Route};
use poem_openapi::param::Path;
use poem_openapi::{Object, OpenApi, OpenApiService};
use sha2::Digest;

pub(crate) use body::read_body;
pub use body::{BodyLimit, FormOrJson, IntField};
pub use credentials::{CustomerOrigin, RequestOrigin, origin_of};
pub(crate) use error::error_body;
pub use error::{ApiError, BodyTimeout, ErrorBody, error_json, render_framework_error};

use crate::answers::rest::{
    BurnBody, JsonAnswer, ReceiptBody, RevealBody, SecretStatusBody, StatusBody,
};
use crate::gate::{Gate, Origin};
use crate::operations::Operation;

use body::one_or_many;

/// Where the REST API lives.
pub const API_PREFIX: &str = "/api/v1";

// The bodies below are decoded by `body.rs` with serde, not by poem-openapi: their `validator`s
// only document limits, which the handler enforces with Onetime Secret's messages. Those limits
// are core's constants (`MAX_PASSPHRASE_CHARS`, `PASSWORD_LENGTHS`, `DEFAULT_PASSWORD_LENGTH`;
// poem-openapi takes only literals here): the contract test holds the document to them, and the
// limits a server's settings choose (ttl, secret size, passphrase minimum) are named by setting.

/// Fields of a share request.
#[derive(Object, serde::Deserialize, Default)]
pub struct ShareForm {
    /// The value to keep secret: at most the server's BURNBOX_MAX_SECRET_BYTES (64 KiB by
    /// default). A missing or empty secret is a 422.
    #[serde(default)]
    #[oai(validator(min_length = 1))]
    secret: String,
    /// A passphrase the recipient must give to reveal the secret: at least the server's
    /// BURNBOX_PASSPHRASE_MIN_LENGTH characters (0 by default), and required when its
    /// BURNBOX_PASSPHRASE_REQUIRED is on.
    #[oai(validator(max_length = 128))]
    passphrase: Option<String>,
    /// Seconds until the secret expires unread (default: the server's BURNBOX_DEFAULT_TTL). A
    /// number outside 60 to the server's BURNBOX_MAX_TTL (30 days by default) is clamped into
    /// that range, as Onetime Secret does; the receipt's `ttl` shows the lifetime given.
    ttl: Option<IntField>,
    /// An email address to send the secret's link to (never the secret): customers only, one
    /// address, and only when the server has BURNBOX_SMTP_URL; otherwise 422. Empty values are
    /// ignored. The receipt lists the address masked (`al***@e***.com`).
    #[serde(default, deserialize_with = "one_or_many")]
    #[oai(default)]
    recipient: Vec<String>,
    /// Only the server's own share domain is accepted.
    share_domain: Option<String>,
}

/// Fields of a generate request.
#[derive(Object, serde::Deserialize, Default)]
pub struct GenerateForm {
    /// A passphrase the recipient must give to reveal the password.
    #[oai(validator(max_length = 128))]
    passphrase: Option<String>,
    /// Seconds until the password expires unread, clamped as for share.
    ttl: Option<IntField>,
    /// Length of the generated password (default 12).
    #[oai(validator(minimum(value = "4"), maximum(value = "128")))]
    length: Option<IntField>,
}

/// Fields of a burn request.
#[derive(Object, serde::Deserialize, Default)]
pub struct BurnForm {
    /// The passphrase, for a protected secret.
    passphrase: Option<String>,
}

/// Fields of a reveal request.
#[derive(Object, serde::Deserialize, Default)]
pub struct RevealForm {
    /// The passphrase, for a protected secret.
    passphrase: Option<String>,
}

type ApiResult<T> = Result<JsonAnswer<T>, ApiError>;

/// The REST routes, sharing the one handler with gRPC.
#[derive(Clone)]
pub struct RestApi {
    secrets: Arc<Secrets>,
    gate: Arc<Gate>,
}

/// The implementations served on two routes each: one documented, one hidden (one operation id
/// may name only one documented operation).
impl RestApi {
    async fn do_receipt(
        &self,
        origin: RequestOrigin,
        metadata_key: Path<String>,
    ) -> ApiResult<ReceiptBody> {
        let caller = self.gate.admit(&origin.0, Operation::Receipt).await?;
        let receipt = self.secrets.receipt(&caller, &metadata_key.0).await;
        Ok(JsonAnswer(
            receipt
                .map_err(|err| ApiError::about_key(err, &metadata_key.0))?
                .into(),
        ))
    }

    /// The reveal, routed or taken by the reveal lane.
    async fn do_reveal(
        &self,
        origin: Origin,
        key: String,
        form: RevealForm,
    ) -> ApiResult<RevealBody> {
        let caller = self.gate.admit(&origin, Operation::Reveal).await?;
        let input = RevealInput {
            key: key.clone(),
            passphrase: form.passphrase,
        };
        let revealed = self.secrets.reveal(&caller, input).await;
        Ok(JsonAnswer(
            revealed
                .map_err(|err| ApiError::about_key(err, &key))?
                .into(),
        ))
    }

    async fn do_secret_status(
        &self,
        origin: RequestOrigin,
        key: Path<String>,
    ) -> ApiResult<SecretStatusBody> {
        let caller = self.gate.admit(&origin.0, Operation::SecretStatus).await?;
        let status = self.secrets.secret_status(&caller, &key.0).await;
        Ok(JsonAnswer(
            status
                .map_err(|err| ApiError::about_key(err, &key.0))?
                .into(),
        ))
    }
}

/// The groups of operations in the OpenAPI document and Swagger UI.
#[derive(poem_openapi::Tags)]
enum Tag {
    /// Sharing and revealing secrets.
    Secrets,
    /// What a secret's creator may know and do afterwards.
    Receipts,
    /// The service itself.
    Service,
}

#[OpenApi(prefix_path = "/api/v1")]
impl RestApi {
    /// Service status
    ///
    /// Always `nominal` while the server answers, and the language of its messages. Needs no
    /// credentials and is not rate limited.
    #[oai(
        path = "/status",
        method = "get",
        operation_id = "status",
        tag = "Tag::Service"
    )]
    async fn status(&self) -> ApiResult<StatusBody> {
        Ok(JsonAnswer(StatusBody::of(&self.secrets)))
    }

    /// Check credentials
    ///
    /// 200 with valid customer credentials, 401 otherwise.
    #[oai(
        path = "/authcheck",
        method = "get",
        operation_id = "authcheck",
        tag = "Tag::Service"
    )]
    async fn authcheck(&self, origin: CustomerOrigin) -> ApiResult<StatusBody> {
        self.gate.admit(&origin.0, Operation::Authcheck).await?;
        Ok(JsonAnswer(StatusBody::of(&self.secrets)))
    }

    /// Share a secret
    ///
    /// Stores the secret and answers its receipt, with the `secret_key` that reveals it. Also
    /// served at `/create`. Works without credentials unless the server allows only customers to
    /// create; a customer's HTTP Basic credentials make the secret theirs.
    #[oai(
        path = "/share",
        method = "post",
        operation_id = "share",
        tag = "Tag::Secrets"
    )]
    async fn share(
        &self,
        origin: RequestOrigin,
        FormOrJson(form): FormOrJson<ShareForm>,
    ) -> ApiResult<ReceiptBody> {
        let caller = self.gate.admit(&origin.0, Operation::Share).await?;
        let input = ShareInput {
            secret: Some(form.secret),
            passphrase: form.passphrase,
            ttl: form.ttl.map(|ttl| ttl.value("ttl")).transpose()?,
            recipient: form.recipient,
            share_domain: form.share_domain,
        };
        Ok(JsonAnswer(self.secrets.share(&caller, input).await?.into()))
    }

    /// Generate a password and share it
    ///
    /// Answers the receipt plus `value`, the password, shown in this answer only.
    #[oai(
        path = "/generate",
        method = "post",
        operation_id = "generate",
        tag = "Tag::Secrets"
    )]
    async fn generate(
        &self,
        origin: RequestOrigin,
        FormOrJson(form): FormOrJson<GenerateForm>,
    ) -> ApiResult<ReceiptBody> {
        let caller = self.gate.admit(&origin.0, Operation::Generate).await?;
        let input = GenerateInput {
            passphrase: form.passphrase,
            ttl: form.ttl.map(|ttl| ttl.value("ttl")).transpose()?,
            length: form
                .length
                .map(|length| length.value("length"))
                .transpose()?,
        };
        Ok(JsonAnswer(
            self.secrets.generate(&caller, input).await?.into(),
        ))
    }

    /// Reveal a secret
    ///
    /// Answers its value once and destroys it: any later reveal is a 404. A protected secret
    /// needs its `passphrase`.
    #[oai(
        path = "/secret/:key",
        method = "post",
        operation_id = "reveal",
        tag = "Tag::Secrets"
    )]
    async fn reveal(
        &self,
        origin: RequestOrigin,
        key: Path<String>,
        FormOrJson(form): FormOrJson<RevealForm>,
    ) -> ApiResult<RevealBody> {
        self.do_reveal(origin.0, key.0, form).await
    }

    /// Look a secret up without revealing it
    ///
    /// Whether it is there, whether it needs a passphrase, and how long it has left. Nothing is
    /// burned and no passphrase attempt is counted; a secret a reveal would not find is the same
    /// 404. Also served at `GET /secret/{key}`.
    #[oai(
        path = "/secret/:key/status",
        method = "get",
        operation_id = "secret_status",
        tag = "Tag::Secrets"
    )]
    async fn secret_status(
        &self,
        origin: RequestOrigin,
        key: Path<String>,
    ) -> ApiResult<SecretStatusBody> {
        self.do_secret_status(origin, key).await
    }

    /// Alias of secret_status: a GET of a secret's own URL (a link unfurler, a mail scanner)
    /// looks it up and never reveals it.
    #[oai(
        path = "/secret/:key",
        method = "get",
        operation_id = "secret_status",
        hidden
    )]
    async fn secret_status_via_get(
        &self,
        origin: RequestOrigin,
        key: Path<String>,
    ) -> ApiResult<SecretStatusBody> {
        self.do_secret_status(origin, key).await
    }

    /// List your recent receipts
    ///
    /// The caller's receipts of the last 30 days, newest first, without secret keys
    /// (customers only). Also served at `/receipt/recent` and `/metadata/recent`.
    #[oai(
        path = "/private/recent",
        method = "get",
        operation_id = "recent",
        tag = "Tag::Receipts"
    )]
    async fn recent(&self, origin: CustomerOrigin) -> ApiResult<Vec<ReceiptBody>> {
        let caller = self.gate.admit(&origin.0, Operation::Recent).await?;
        let receipts = self.secrets.recent(&caller).await?;
        Ok(JsonAnswer(
            receipts.into_iter().map(ReceiptBody::from).collect(),
        ))
    }

    /// Read a receipt
    ///
    /// State `new` until the secret is revealed (then `received`, without the secret key),
    /// `burned` or `expired`. Also served with GET, and at `/receipt/{key}` and
    /// `/metadata/{key}` (GET or POST). A customer's receipt needs that customer's credentials.
    #[oai(
        path = "/private/:metadata_key",
        method = "post",
        operation_id = "receipt",
        tag = "Tag::Receipts"
    )]
    async fn receipt(
        &self,
        origin: RequestOrigin,
        metadata_key: Path<String>,
    ) -> ApiResult<ReceiptBody> {
        self.do_receipt(origin, metadata_key).await
    }

    /// Alias of receipt.
    #[oai(
        path = "/private/:metadata_key",
        method = "get",
        operation_id = "receipt",
        hidden
    )]
    async fn receipt_via_get(
        &self,
        origin: RequestOrigin,
        metadata_key: Path<String>,
    ) -> ApiResult<ReceiptBody> {
        self.do_receipt(origin, metadata_key).await
    }

    /// Burn an unread secret
    ///
    /// Destroys the secret through its receipt (a protected secret needs its passphrase). Also
    /// served at `/receipt/{key}/burn` and `/metadata/{key}/burn`.
    #[oai(
        path = "/private/:metadata_key/burn",
        method = "post",
        operation_id = "burn",
        tag = "Tag::Receipts"
    )]
    async fn burn(
        &self,
        origin: RequestOrigin,
        metadata_key: Path<String>,
        FormOrJson(form): FormOrJson<BurnForm>,
    ) -> ApiResult<BurnBody> {
        let caller = self.gate.admit(&origin.0, Operation::Burn).await?;
        let input = BurnInput {
            metadata_key: metadata_key.0.clone(),
            passphrase: form.passphrase,
        };
        let burned = self.secrets.burn(&caller, input).await;
        Ok(JsonAnswer(
            burned
                .map_err(|err| ApiError::about_key(err, &metadata_key.0))?
                .into(),
        ))
    }
}

/// For each operation id, the names of its path parameters in order (from the OpenAPI
/// document), so request spans can name routes as templates: `/api/v1/secret/{key}`.
pub fn path_parameters() -> std::collections::HashMap<&'static str, Vec<String>> {
    <RestApi as OpenApi>::meta()
        .into_iter()
        .flat_map(|api| api.paths)
        .flat_map(|path| {
            let names: Vec<String> = path
                .path
                .split('/')
                .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
                .map(str::to_owned)
                .collect();
            path.operations
                .into_iter()
                .filter_map(move |operation| Some((operation.operation_id?, names.clone())))
        })
        .collect()
}

/// The OpenAPI service (routes plus the spec they imply).
pub fn api_service(api: RestApi) -> OpenApiService<RestApi, ()> {
    OpenApiService::new(api, "burnbox", env!("CARGO_PKG_VERSION"))
        .description("One-time secrets over the Onetime Secret v1 REST API.")
}

/// The documented path for one of Onetime Secret's other names: `/create` for `/share`, and
/// `/receipt/…` or `/metadata/…` for `/private/…`. Rewritten before routing, so each operation
/// has one route, and spans and metrics name the documented one.
fn documented_path(path: &str) -> Option<String> {
    let rest = path.strip_prefix(API_PREFIX)?;
    if rest == "/create" {
        return Some(format!("{API_PREFIX}/share"));
    }
    ["/receipt/", "/metadata/"]
        .iter()
        .find_map(|alias| rest.strip_prefix(alias))
        .map(|tail| format!("{API_PREFIX}/private/{tail}"))
}

/// Routes a request for an alias path to the documented path, its query kept.
async fn follow_alias(mut request: poem::Request) -> poem::Result<poem::Request> {
    if let Some(path) = documented_path(request.uri().path()) {
        let target = match request.uri().query() {
            Some(query) => format!("{path}?{query}"),
            None => path,
        };
        // Parsing cannot fail for a path that arrived as a URI; if it did, routing says 404.
        if let Ok(uri) = target.parse() {
            *request.uri_mut() = uri;
        }
    }
    Ok(request)
}

/// The REST endpoint: the API, its spec at `/api/v1/openapi.yaml` (and `.json`), Swagger UI at
/// `/docs`, the routes `add_pages` adds beside them (the web pages, outside `/api/v1`), and the
/// documented error body for every error, the framework's included.
pub fn endpoint(
    secrets: Arc<Secrets>,
    gate: Arc<Gate>,
    add_pages: impl FnOnce(Route) -> Route,
) -> impl Endpoint {
    let body_limit = BodyLimit(secrets.policy().max_request_bytes());
    let api = RestApi { secrets, gate };
    let service = api_service(api.clone());
    let spec_yaml = service.spec_endpoint_yaml();
    let spec_json = service.spec_endpoint();
    let docs = service.swagger_ui().with(SetHeader::new().overriding(
        header::CONTENT_SECURITY_POLICY,
        docs_csp(&service.swagger_ui_html()),
    ));
    // Nested without stripping: the API's routes carry their own prefix, and `/` stays free for
    // the share page.
    let routes = add_pages(Route::new().nest_no_strip(API_PREFIX, service));
    let routes = routes
        .at(format!("{API_PREFIX}/openapi.yaml"), spec_yaml)
        .at(format!("{API_PREFIX}/openapi.json"), spec_json)
        .nest("/docs", docs);
    documented(
        reveal_lane::RevealLane::new(routes, api)
            .data(body_limit)
            .before(follow_alias),
    )
}

/// The content security policy of every answer but the Swagger UI page's: an API answer loads
/// nothing and may not be framed.
pub const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// The headers of every HTTP answer on every listener (REST, Swagger UI, admin, and the answer
/// to a request too malformed to parse). Answers may hold secrets: never cache them, never
/// sniff them, never leak the URL (which holds keys) to another site, never frame them.
pub const SECURITY_HEADERS: [(HeaderName, &str); 5] = [
    (header::CACHE_CONTROL, "no-store"),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::REFERRER_POLICY, "no-referrer"),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::CONTENT_SECURITY_POLICY, API_CSP),
];

/// `endpoint` as a listener serves it: every error in the documented body, the framework's own
/// included, and [`SECURITY_HEADERS`] on every answer (a content security policy or cache rule
/// the endpoint set itself is kept: the Swagger UI's and the pages' policies, the pages' static
/// files' revalidation).
pub fn documented(endpoint: impl Endpoint + 'static) -> impl Endpoint<Output = poem::Response> {
    endpoint
        .catch_all_error(|err| async move { render_framework_error(err) })
        .after(|answer: poem::Result<poem::Response>| async move {
            let mut response = answer.unwrap_or_else(render_framework_error);
            let headers = response.headers_mut();
            for (name, value) in SECURITY_HEADERS {
                let endpoint_may_set =
                    name == header::CONTENT_SECURITY_POLICY || name == header::CACHE_CONTROL;
                if !endpoint_may_set || !headers.contains_key(&name) {
                    headers.insert(name, HeaderValue::from_static(value));
                }
            }
            Ok(response)
        })
}

/// The Swagger UI page's content security policy: its own inline scripts (by their SHA-256,
/// so no other script runs) and styles, images from the server or inline, requests ("Try it
/// out") to the server only, and no framing.
fn docs_csp(page: &str) -> String {
    let scripts: String = inline_scripts(page)
        .into_iter()
        .map(|script| {
            let digest = sha2::Sha256::digest(script.as_bytes());
            format!(
                " 'sha256-{}'",
                base64::engine::general_purpose::STANDARD.encode(digest)
            )
        })
        .collect();
    format!(
        "default-src 'none'; script-src{scripts}; style-src 'unsafe-inline'; \
         img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
         frame-ancestors 'none'"
    )
}

/// The contents of a page's inline `<script>` elements, in order. A script's text ends at the
/// first `</script>`, as in HTML.
fn inline_scripts(mut page: &str) -> Vec<&str> {
    let mut scripts = Vec::new();
    while let Some(start) = page.find("<script") {
        let Some((_, text)) = page[start..].split_once('>') else {
            break;
        };
        let Some((script, rest)) = text.split_once("</script>") else {
            break;
        };
        scripts.push(script);
        page = rest;
    }
    scripts
}
