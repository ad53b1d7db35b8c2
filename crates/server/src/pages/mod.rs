//! The web pages: a third adapter over the same [`Secrets`] handler, [`Gate`] and error table
//! as REST and gRPC. Server-rendered with compile-time checked templates; one small ES module
//! (`assets/app.js`) adds the click, the end-to-end encryption, copy and the QR code.
//!
//! No GET or HEAD changes anything: opening a link looks the secret up (never burning it, never
//! counting a passphrase attempt), so link previews and mail scanners cannot destroy secrets.
//! Revealing and burning need a POST, which only a person's click makes. Every form also works
//! without JavaScript (server-side encryption only; an end-to-end secret then says why it cannot
//! be shown, and stays unread).

mod assets;

use std::sync::Arc;

use crate::observe::PageRequest;
use askama::Template;
use base64::Engine;
use burnbox_core::{
    BurnInput, Error, ErrorKind, RevealInput, SecretStatus, Secrets, ShareInput, end_to_end,
};
use poem::http::{HeaderValue, StatusCode, header};
use poem::web::{Data, Path};
use poem::{Body, EndpointExt, Request, RequestBody, Response, Route};

use crate::gate::{Gate, Origin};
use crate::operations::Operation;
use crate::rest::{IntField, error_body, origin_of, read_body};

/// The content security policy of every page: scripts, styles and requests from this origin
/// only, no inline script or style, forms posting only here, never framed.
pub const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
     base-uri 'none'";

/// Expiry choices offered on the share page, in seconds; those above the server's maximum are
/// left out, and the server's default is added when it is not one of them.
/// The `operation` label of the share form itself (`GET /`), which performs no operation.
const SHARE_FORM: &str = "share_form";

/// The `operation` label of the pages' static files.
const ASSET: &str = "asset";

const TTL_CHOICES: [i64; 10] = [
    300, 1_800, 3_600, 14_400, 43_200, 86_400, 259_200, 604_800, 1_209_600, 2_592_000,
];

/// What the pages need: the one handler and the one gate.
struct Pages {
    secrets: Arc<Secrets>,
    gate: Arc<Gate>,
}

/// `route` with the page routes added, served beside the API on the REST listener.
pub fn add_routes(route: Route, secrets: Arc<Secrets>, gate: Arc<Gate>) -> Route {
    let pages = Arc::new(Pages { secrets, gate });
    route
        .at(
            "/",
            poem::get(share_page).post(share_submit).data(pages.clone()),
        )
        .at(
            "/secret/:key",
            poem::get(secret_page)
                .post(reveal_submit)
                .data(pages.clone()),
        )
        .at(
            "/receipt/:metadata_key",
            poem::get(receipt_page).data(pages.clone()),
        )
        .at(
            "/private/:metadata_key",
            poem::get(receipt_page).data(pages.clone()),
        )
        .at(
            "/receipt/:metadata_key/burn",
            poem::post(burn_submit).data(pages.clone()),
        )
        .at(
            "/private/:metadata_key/burn",
            poem::post(burn_submit).data(pages),
        )
        .at("/static/:name", poem::get(assets::serve))
}

/// One choice of the expiry list.
struct TtlChoice {
    seconds: i64,
    label: String,
    selected: bool,
}

/// The link and receipt shown after a share.
struct ShareResult {
    link: String,
    receipt: String,
}

#[derive(Template)]
#[template(path = "share.html")]
struct SharePage {
    public_url: String,
    anonymous_create: bool,
    passphrase_required: bool,
    passphrase_min_length: usize,
    max_kib: usize,
    ttl_choices: Vec<TtlChoice>,
    error: Option<PageError>,
    result: Option<ShareResult>,
}

#[derive(Template)]
#[template(path = "secret.html")]
struct SecretPage {
    public_url: String,
    key: String,
    passphrase_required: bool,
    end_to_end: bool,
    expires_in: String,
    /// Set once revealed (the page without JavaScript): shown once, never stored.
    value: Option<zeroize::Zeroizing<String>>,
    error: Option<PageError>,
}

#[derive(Template)]
#[template(path = "gone.html")]
struct GonePage {
    public_url: String,
}

#[derive(Template)]
#[template(path = "receipt.html")]
struct ReceiptPage {
    public_url: String,
    metadata_key: String,
    state: &'static str,
    secret_link: Option<String>,
    passphrase_required: bool,
    created: String,
    expires: Option<String>,
    received: Option<String>,
    burned: Option<String>,
    error: Option<PageError>,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    public_url: String,
    error: PageError,
}

/// An error as a page shows it: the table's message and the id that finds it in the logs.
struct PageError {
    message: String,
    error_id: String,
}

/// `err` through the error table (logged and counted like any request's): its status and what
/// the page shows.
fn page_error(err: &Error) -> (StatusCode, PageError) {
    let (status, body) = error_body(err);
    // The API's 401 says only `Not authorized` (the words Onetime Secret clients match on); a
    // person needs to know what would let them in.
    let message = if err.kind() == ErrorKind::Unauthorized {
        format!(
            "{}: only customers of this server may do this; give your customer id and API token.",
            body.message
        )
    } else {
        body.message
    };
    (
        status,
        PageError {
            message,
            error_id: body.error_id,
        },
    )
}

/// A rendered page with the page headers, labelled with `operation` for spans and metrics.
fn html(operation: &'static str, status: StatusCode, page: &impl Template) -> Response {
    let mut response = match page.render() {
        Ok(text) => Response::builder()
            .status(status)
            .content_type("text/html; charset=utf-8")
            .body(text),
        Err(err) => {
            let err = Error::internal(format!("page template: {err}"));
            let (status, body) = error_body(&err);
            Response::builder()
                .status(status)
                .content_type("text/plain; charset=utf-8")
                .body(format!("{} (error id {})", body.message, body.error_id))
        }
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_CSP),
    );
    headers.insert(
        "x-robots-tag",
        HeaderValue::from_static("noindex, nofollow"),
    );
    response.set_data(PageRequest(operation));
    response
}

impl Pages {
    fn public_url(&self) -> String {
        self.secrets.public_url().to_owned()
    }

    fn share_page(&self, error: Option<PageError>, result: Option<ShareResult>) -> SharePage {
        let policy = self.secrets.policy();
        let rules = policy.passphrase_rules();
        let default_ttl = policy.default_ttl();
        let mut seconds: Vec<i64> = TTL_CHOICES
            .into_iter()
            .filter(|&choice| choice <= policy.max_ttl())
            .chain([default_ttl])
            .collect();
        seconds.sort_unstable();
        seconds.dedup();
        SharePage {
            public_url: self.public_url(),
            anonymous_create: self.gate.anonymous_access().create,
            passphrase_required: rules.required,
            passphrase_min_length: rules.min_length,
            max_kib: end_to_end::max_plaintext_bytes(policy.max_secret_bytes()) / 1024,
            ttl_choices: seconds
                .into_iter()
                .map(|seconds| TtlChoice {
                    seconds,
                    label: duration_words(seconds),
                    selected: seconds == default_ttl,
                })
                .collect(),
            error,
            result,
        }
    }

    fn secret_page(&self, status: &SecretStatus) -> SecretPage {
        SecretPage {
            public_url: self.public_url(),
            key: status.secret_key.clone(),
            passphrase_required: status.passphrase_required,
            end_to_end: status.end_to_end,
            expires_in: duration_words(status.secret_ttl),
            value: None,
            error: None,
        }
    }

    fn gone(&self, operation: &'static str) -> Response {
        let page = GonePage {
            public_url: self.public_url(),
        };
        html(operation, StatusCode::NOT_FOUND, &page)
    }

    /// `err` as a page: the gone page for a secret or receipt that is not there, else the error
    /// page.
    fn failed(&self, operation: &'static str, err: &Error) -> Response {
        if err.kind() == ErrorKind::NotFound {
            // Logged and counted like any refusal, shown as the one gone page.
            let _ = error_body(err);
            return self.gone(operation);
        }
        let (status, error) = page_error(err);
        let page = ErrorPage {
            public_url: self.public_url(),
            error,
        };
        let mut response = html(operation, status, &page);
        if let Some(wait) = err.retry_after() {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(wait.as_secs().max(1)),
            );
        }
        response
    }
}

/// Reads a page form, as the API reads its bodies; a refusal comes back as the core error.
async fn read_form<T: serde::de::DeserializeOwned + Default>(
    request: &Request,
    body: Body,
    known_fields: fn() -> Vec<&'static str>,
) -> Result<T, Error> {
    read_body(request, &mut RequestBody::new(body), known_fields)
        .await
        .unwrap_or_else(|_| Err(Error::bad_request("the form could not be read whole")))
}

/// The share form. Credentials come from the form only when anonymous creation is off; the
/// page script sends them as HTTP Basic instead.
#[derive(serde::Deserialize, Default)]
struct ShareForm {
    #[serde(default)]
    secret: String,
    passphrase: Option<String>,
    ttl: Option<IntField>,
    custid: Option<String>,
    apitoken: Option<String>,
}

fn share_form_fields() -> Vec<&'static str> {
    vec!["secret", "passphrase", "ttl", "custid", "apitoken"]
}

/// The reveal and burn forms.
#[derive(serde::Deserialize, Default)]
struct PassphraseForm {
    passphrase: Option<String>,
}

fn passphrase_form_fields() -> Vec<&'static str> {
    vec!["passphrase"]
}

#[poem::handler]
async fn share_page(pages: Data<&Arc<Pages>>) -> Response {
    html(SHARE_FORM, StatusCode::OK, &pages.share_page(None, None))
}

#[poem::handler]
async fn share_submit(pages: Data<&Arc<Pages>>, request: &Request, body: Body) -> Response {
    let operation = Operation::Share.name();
    let shared = async {
        let form: ShareForm = read_form(request, body, share_form_fields).await?;
        let mut origin = origin_of(request);
        if let (Some(custid), Some(token)) = (&form.custid, &form.apitoken)
            && !custid.is_empty()
        {
            origin = Origin {
                authorization: Some(basic_authorization(custid, token)),
                ..origin
            };
        }
        let caller = pages.gate.admit(&origin, Operation::Share).await?;
        let input = ShareInput {
            secret: Some(form.secret),
            passphrase: form.passphrase,
            ttl: form.ttl.map(|ttl| ttl.value("ttl")).transpose()?,
            recipient: Vec::new(),
            share_domain: None,
        };
        pages.secrets.share(&caller, input).await
    }
    .await;
    match shared {
        Ok(receipt) => {
            let base = pages.public_url();
            let result = ShareResult {
                link: format!(
                    "{base}/secret/{}",
                    receipt.secret_key.as_deref().unwrap_or_default()
                ),
                receipt: format!("{base}/receipt/{}", receipt.metadata_key),
            };
            html(
                operation,
                StatusCode::OK,
                &pages.share_page(None, Some(result)),
            )
        }
        Err(err) => {
            let (status, error) = page_error(&err);
            html(operation, status, &pages.share_page(Some(error), None))
        }
    }
}

/// `Authorization: Basic` for a customer id and token typed into the share form.
fn basic_authorization(custid: &str, token: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{custid}:{token}"))
    )
}

#[poem::handler]
async fn secret_page(pages: Data<&Arc<Pages>>, request: &Request, key: Path<String>) -> Response {
    let operation = Operation::SecretStatus.name();
    let looked_up = async {
        let caller = pages
            .gate
            .admit(&origin_of(request), Operation::SecretStatus)
            .await?;
        pages.secrets.secret_status(&caller, &key.0).await
    }
    .await;
    match looked_up {
        Ok(status) => html(operation, StatusCode::OK, &pages.secret_page(&status)),
        Err(err) => pages.failed(operation, &err),
    }
}

#[poem::handler]
async fn reveal_submit(
    pages: Data<&Arc<Pages>>,
    request: &Request,
    key: Path<String>,
    body: Body,
) -> Response {
    let operation = Operation::Reveal.name();
    let form = match read_form::<PassphraseForm>(request, body, passphrase_form_fields).await {
        Ok(form) => form,
        Err(err) => return pages.failed(operation, &err),
    };
    let caller = match pages
        .gate
        .admit(&origin_of(request), Operation::Reveal)
        .await
    {
        Ok(caller) => caller,
        Err(err) => return pages.failed(operation, &err),
    };
    // An end-to-end secret revealed here would be destroyed without anyone able to read it:
    // look first, and leave it unread.
    let status = match pages.secrets.secret_status(&caller, &key.0).await {
        Ok(status) => status,
        Err(err) => return pages.failed(operation, &err),
    };
    let mut page = pages.secret_page(&status);
    if status.end_to_end {
        return html(operation, StatusCode::OK, &page);
    }
    let input = RevealInput {
        key: key.0,
        passphrase: form.passphrase,
    };
    match pages.secrets.reveal(&caller, input).await {
        Ok(revealed) => {
            page.value = Some(zeroize::Zeroizing::new(revealed.value.as_str().to_owned()));
            html(operation, StatusCode::OK, &page)
        }
        Err(err) if err.kind() == ErrorKind::NotFound => pages.failed(operation, &err),
        Err(err) => {
            let (status, error) = page_error(&err);
            page.error = Some(error);
            html(operation, status, &page)
        }
    }
}

#[poem::handler]
async fn receipt_page(
    pages: Data<&Arc<Pages>>,
    request: &Request,
    metadata_key: Path<String>,
) -> Response {
    let operation = Operation::Receipt.name();
    match receipt_view(&pages, request, &metadata_key.0, None).await {
        Ok(page) => html(operation, StatusCode::OK, &page),
        Err(err) => pages.failed(operation, &err),
    }
}

async fn receipt_view(
    pages: &Pages,
    request: &Request,
    metadata_key: &str,
    error: Option<PageError>,
) -> Result<ReceiptPage, Error> {
    let caller = pages
        .gate
        .admit(&origin_of(request), Operation::Receipt)
        .await?;
    let receipt = pages.secrets.receipt(&caller, metadata_key).await?;
    let base = pages.public_url();
    let state = receipt.state.as_str();
    Ok(ReceiptPage {
        public_url: base.clone(),
        metadata_key: receipt.metadata_key,
        state,
        secret_link: receipt.secret_key.map(|key| format!("{base}/secret/{key}")),
        passphrase_required: receipt.passphrase_required,
        created: timestamp_words(receipt.created),
        expires: receipt
            .secret_ttl
            .map(|ttl| format!("in {}", duration_words(ttl))),
        received: receipt.received.map(timestamp_words),
        burned: receipt.burned.map(timestamp_words),
        error,
    })
}

#[poem::handler]
async fn burn_submit(
    pages: Data<&Arc<Pages>>,
    request: &Request,
    metadata_key: Path<String>,
    body: Body,
) -> Response {
    let operation = Operation::Burn.name();
    let burned = async {
        let form: PassphraseForm = read_form(request, body, passphrase_form_fields).await?;
        let caller = pages
            .gate
            .admit(&origin_of(request), Operation::Burn)
            .await?;
        let input = BurnInput {
            metadata_key: metadata_key.0.clone(),
            passphrase: form.passphrase,
        };
        pages.secrets.burn(&caller, input).await
    }
    .await;
    match burned {
        // Back to the receipt (POST, redirect, GET): a reload does not post again.
        Ok(_) => {
            let mut response = Response::builder()
                .status(StatusCode::SEE_OTHER)
                .header(header::LOCATION, format!("/receipt/{}", metadata_key.0))
                .finish();
            response.set_data(PageRequest(operation));
            response
        }
        Err(err) if err.kind() == ErrorKind::NotFound => pages.failed(operation, &err),
        Err(err) => {
            let (status, error) = page_error(&err);
            match receipt_view(&pages, request, &metadata_key.0, Some(error)).await {
                Ok(page) => html(operation, status, &page),
                Err(err) => pages.failed(operation, &err),
            }
        }
    }
}

/// `seconds` in words a person reads at a glance: "5 minutes", "1 hour", "7 days" (a time left,
/// rarely a whole number of units, is rounded to the nearest in the largest unit it holds twice).
fn duration_words(seconds: i64) -> String {
    const UNITS: [(i64, &str); 3] = [(86_400, "day"), (3_600, "hour"), (60, "minute")];
    let seconds = seconds.max(0);
    let exact = UNITS
        .iter()
        .find(|(unit, _)| seconds >= *unit && seconds % unit == 0);
    let rounded = || {
        UNITS
            .iter()
            .find(|(unit, _)| seconds >= 2 * unit)
            .map(|&(unit, name)| ((seconds + unit / 2) / unit, name))
    };
    let (count, name) = exact
        .map(|&(unit, name)| (seconds / unit, name))
        .or_else(rounded)
        .unwrap_or((seconds, "second"));
    let plural = if count == 1 { "" } else { "s" };
    format!("{count} {name}{plural}")
}

/// A Unix time as UTC text ("2026-11-29 20:15 UTC").
fn timestamp_words(unix_seconds: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(unix_seconds) {
        Ok(at) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02} UTC",
            at.year(),
            u8::from(at.month()),
            at.day(),
            at.hour(),
            at.minute()
        ),
        Err(_) => format!("{unix_seconds} (Unix time)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration_words(300), "5 minutes");
        assert_eq!(duration_words(3_600), "1 hour");
        assert_eq!(duration_words(43_200), "12 hours");
        assert_eq!(duration_words(604_800), "7 days");
        assert_eq!(duration_words(90_000), "25 hours");
        assert_eq!(duration_words(59), "59 seconds");
        assert_eq!(duration_words(604_799), "7 days");
        assert_eq!(duration_words(7_000), "117 minutes");
        assert_eq!(duration_words(7_300), "2 hours");
        assert_eq!(duration_words(100), "100 seconds");
        assert_eq!(duration_words(130), "2 minutes");
    }

    #[test]
    fn timestamps_are_utc_dates() {
        assert_eq!(timestamp_words(0), "1970-01-01 00:00 UTC");
        assert_eq!(timestamp_words(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(timestamp_words(1_795_980_816), "2026-11-29 19:33 UTC");
    }
}
