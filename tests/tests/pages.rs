//! The web pages in a real browser: headless Chromium driven over CDP against the real server,
//! by the ids of the pages contract. Every scenario checks what a person (or a link unfurler)
//! would meet: end-to-end encryption in the page, one-time reveal, receipts, pages without
//! JavaScript, customers' credentials, accessibility (axe-core), strict same-origin loading, the
//! security headers, a phone-width screen and the page weight.

use std::collections::BTreeMap;

use base64::Engine;
use burnbox_tests::browser::{
    Browser, ConsoleError, Tab, js_string, start_page_server, start_page_server_with_customers,
    visible_js,
};
use burnbox_tests::{ALICE, Backend, TestServer, basic_auth, rest_share};
use reqwest::StatusCode;
use serde_json::Value;

const B64URL: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The CSP every page is served with (pages contract).
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A secret shared from the share page, as the page showed it.
struct Shared {
    /// The link shown in `#share-link`.
    link: String,
    /// Its secret key (path).
    key: String,
    /// Its fragment (the end-to-end key), without `#`; empty when there is none.
    fragment: String,
    /// `#receipt-link`'s href, absolute.
    receipt_link: String,
    /// The metadata key in the receipt link.
    metadata_key: String,
}

/// Opens the share page and waits until its script has run (`#generate` is shown by it).
async fn open_share_page(tab: &Tab, server: &TestServer) {
    tab.goto(&format!("{}/", server.http_base)).await;
    assert_eq!(
        tab.attribute("body", "data-page").await.as_deref(),
        Some("share"),
        "GET / is not the share page"
    );
    tab.wait_visible("#generate").await;
}

/// Types `secret` (and a passphrase) into the open share page, creates, and reads the result.
async fn create_on_share_page(
    tab: &Tab,
    server: &TestServer,
    secret: &str,
    passphrase: Option<&str>,
) -> Shared {
    tab.type_into("#secret", secret).await;
    if let Some(passphrase) = passphrase {
        tab.type_into("#passphrase", passphrase).await;
    }
    tab.click("#create").await;
    tab.wait_until(
        "!document.querySelector('#share-result').hidden && document.querySelector('#share-link').value !== ''",
        "the share result (#share-result with #share-link)",
    )
    .await;
    tab.wait_visible("#share-result").await;
    let link = tab.value("#share-link").await;
    let receipt_link: String = tab
        .eval("document.querySelector('#receipt-link').href")
        .await;
    parse_shared(server, link, receipt_link)
}

fn parse_shared(server: &TestServer, link: String, receipt_link: String) -> Shared {
    let prefix = format!("{}/secret/", server.http_base);
    let rest = link.strip_prefix(&prefix).unwrap_or_else(|| {
        panic!("the link {link:?} is not {prefix}{{key}}#{{fragment}} (public URL + /secret/)")
    });
    let (key, fragment) = rest.split_once('#').unwrap_or((rest, ""));
    let receipt_prefix = format!("{}/receipt/", server.http_base);
    let metadata_key = receipt_link
        .strip_prefix(&receipt_prefix)
        .unwrap_or_else(|| panic!("the receipt link {receipt_link:?} is not {receipt_prefix}…"))
        .split('#')
        .next()
        .unwrap_or_default()
        .to_owned();
    Shared {
        key: key.to_owned(),
        fragment: fragment.to_owned(),
        link: link.clone(),
        receipt_link,
        metadata_key,
    }
}

/// Shares from the share page in `tab` (opening it first).
async fn share_from_page(
    tab: &Tab,
    server: &TestServer,
    secret: &str,
    passphrase: Option<&str>,
) -> Shared {
    open_share_page(tab, server).await;
    create_on_share_page(tab, server, secret, passphrase).await
}

/// The status API's answer for `key` (200 while unread, 404 once gone).
async fn api_status(server: &TestServer, key: &str) -> (StatusCode, Value) {
    let response = server
        .http
        .get(server.api(&format!("/secret/{key}/status")))
        .send()
        .await
        .expect("status request");
    let status = response.status();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

async fn assert_unread(server: &TestServer, key: &str, what: &str) -> Value {
    let (status, body) = api_status(server, key).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{what}: the secret is no longer there (status API: {body})"
    );
    assert_eq!(body["state"], "new", "{what}: {body}");
    body
}

async fn assert_gone(server: &TestServer, key: &str, what: &str) {
    let (status, body) = api_status(server, key).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "{what}: the secret is still there (status API: {body})"
    );
}

/// The receipt's state over the API (anonymous receipts are readable by their metadata key).
async fn api_receipt_state(server: &TestServer, metadata_key: &str) -> String {
    let response = server
        .http
        .get(server.api(&format!("/private/{metadata_key}")))
        .send()
        .await
        .expect("receipt request");
    let status = response.status();
    let body: Value = response.json().await.expect("receipt JSON");
    assert_eq!(status, StatusCode::OK, "receipt: {body}");
    body["state"].as_str().unwrap_or_default().to_owned()
}

/// Shares over the REST API as a plain client: (secret key, metadata key).
async fn api_share(server: &TestServer, form: &[(&str, &str)]) -> (String, String) {
    let (status, body) = rest_share(server, form).await;
    assert_eq!(status, StatusCode::OK, "share over the API: {body}");
    (
        body["secret_key"].as_str().expect("secret_key").to_owned(),
        body["metadata_key"]
            .as_str()
            .expect("metadata_key")
            .to_owned(),
    )
}

/// A well-formed `bbx1` value (as a client encrypting end to end would send): prefix and
/// base64url of a 12-byte nonce plus a ciphertext and tag of `length` + 16 bytes.
fn bbx1_value(length: usize) -> String {
    let bytes: Vec<u8> = (0..12 + length + 16)
        .map(|index| (index * 37 % 251) as u8)
        .collect();
    format!("bbx1:{}", B64URL.encode(bytes))
}

/// The fields of a form-encoded (or JSON) request body.
fn body_fields(body: &str) -> BTreeMap<String, String> {
    if let Ok(Value::Object(object)) = serde_json::from_str::<Value>(body) {
        return object
            .into_iter()
            .map(|(key, value)| {
                let text = value
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or(value.to_string());
                (key, text)
            })
            .collect();
    }
    form_urlencoded::parse(body.as_bytes())
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect()
}

/// Waits until the link page's script has run for an end-to-end secret whose link has its key:
/// the reveal form shown, `#needs-js` hidden.
async fn wait_link_page_ready(tab: &Tab) {
    tab.wait_until(
        "document.body && document.body.dataset.page === 'secret'",
        "the link page (data-page=secret)",
    )
    .await;
    // Wait for whichever comes: the form, a value, or the missing-key note.
    tab.wait_until(
        &format!(
            "{} || {} || {}",
            visible_js("#reveal"),
            visible_js("#revealed"),
            visible_js("#missing-key")
        ),
        "the link page's script: #reveal, #revealed or #missing-key shown",
    )
    .await;
    assert!(
        !tab.is_visible("#revealed").await,
        "the link page revealed the secret without a click"
    );
    assert!(
        !tab.is_visible("#missing-key").await,
        "the link page says the key is missing from the link: {}",
        tab.url().await
    );
    tab.wait_not_visible("#needs-js").await;
}

/// Decodes the one QR code in a PNG.
fn decode_qr(png: &[u8]) -> String {
    let image = image::load_from_memory(png)
        .expect("a PNG screenshot")
        .to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(image);
    let grids = prepared.detect_grids();
    assert_eq!(
        grids.len(),
        1,
        "expected exactly one QR code in #share-qr, found {}",
        grids.len()
    );
    let (_meta, content) = grids[0]
        .decode()
        .unwrap_or_else(|err| panic!("the QR code in #share-qr does not decode: {err:?}"));
    content
}

/// Decrypts a `bbx1` value with the link's fragment key in the page (WebCrypto), as the
/// contract's format says: base64url(nonce ‖ AES-256-GCM ciphertext ‖ tag).
async fn decrypt_bbx1(tab: &Tab, value: &str, fragment: &str) -> String {
    tab.eval(&format!(
        "(async () => {{
            const b = s => Uint8Array.from(atob(s.replace(/-/g, '+').replace(/_/g, '/')), c => c.charCodeAt(0));
            const value = {value}, fragment = {fragment};
            const key = await crypto.subtle.importKey('raw', b(fragment), 'AES-GCM', false, ['decrypt']);
            const data = b(value.slice(5));
            const plain = await crypto.subtle.decrypt({{ name: 'AES-GCM', iv: data.slice(0, 12) }}, key, data.slice(12));
            return new TextDecoder().decode(plain);
        }})()",
        value = js_string(value),
        fragment = js_string(fragment)
    ))
    .await
}

/// 1. Share from the page, end to end: nothing readable leaves the browser, the link carries
/// the key in its fragment and in its QR code, a second browser opens it without burning it,
/// reveals it on a click, and never shows it again; the receipt says received.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn share_end_to_end_reveal_once_and_receipt() {
    let server = start_page_server(Backend::Memory, |_| {}).await;
    let origin = server.http_base.clone();
    let plaintext = "page secret: correct horse battery staple ✓ 7f3a";

    let sender = Browser::launch().await;
    let share_tab = sender.tab().await;
    let shared = share_from_page(&share_tab, &server, plaintext, None).await;

    // The create request: end-to-end ciphertext only.
    let requests = share_tab.requests().await;
    let creates: Vec<_> = requests
        .iter()
        .filter(|request| request.method == "POST" && request.url.ends_with("/api/v1/share"))
        .collect();
    assert_eq!(
        creates.len(),
        1,
        "expected one POST /api/v1/share, the page made: {:?}",
        requests
            .iter()
            .map(|r| format!("{} {}", r.method, r.url))
            .collect::<Vec<_>>()
    );
    let body = creates[0].post_data.clone().unwrap_or_default();
    let fields = body_fields(&body);
    let secret_field = fields.get("secret").cloned().unwrap_or_default();
    assert!(
        secret_field.starts_with("bbx1:"),
        "the create request's secret is not bbx1: {secret_field:?}"
    );
    for request in &requests {
        let seen = format!(
            "{} {}",
            request.url,
            request.post_data.as_deref().unwrap_or_default()
        );
        let decoded = form_urlencoded::parse(seen.as_bytes())
            .map(|(key, value)| format!("{key}={value}"))
            .collect::<String>();
        assert!(
            !seen.contains(plaintext)
                && !decoded.contains(plaintext)
                && !decoded.contains("correct horse"),
            "the plaintext left the browser in {} {}: {seen}",
            request.method,
            request.url
        );
    }
    let sealed = B64URL
        .decode(&secret_field["bbx1:".len()..])
        .expect("bbx1 payload is base64url without padding");
    assert_eq!(
        sealed.len(),
        12 + plaintext.len() + 16,
        "bbx1 payload is not nonce(12) ‖ ciphertext ‖ tag(16)"
    );

    // The link: the server's public URL, the secret key, a 43-character key fragment.
    assert_eq!(
        shared.fragment.len(),
        43,
        "the link's fragment is not a 43-character key: {}",
        shared.link
    );
    let key_bytes = B64URL
        .decode(&shared.fragment)
        .expect("the fragment is base64url without padding");
    assert_eq!(key_bytes.len(), 32, "the fragment key is not 32 bytes");
    assert_eq!(
        decrypt_bbx1(&share_tab, &secret_field, &shared.fragment).await,
        plaintext,
        "the ciphertext sent does not decrypt with the link's key to the plaintext"
    );
    assert!(
        shared
            .receipt_link
            .ends_with(&format!("{}#{}", shared.metadata_key, shared.fragment)),
        "the receipt link does not carry the key fragment: {}",
        shared.receipt_link
    );

    // The QR code is the link, fragment included.
    let png = share_tab.screenshot_element("#share-qr", 1.0).await;
    assert!(
        share_tab.exists("#share-qr svg").await,
        "#share-qr holds no <svg>"
    );
    assert_eq!(decode_qr(&png), shared.link, "the QR code is not the link");

    // A second browser (another profile) opens the link: the script runs, nothing is burnt.
    let recipient = Browser::launch().await;
    let link_tab = recipient.tab().await;
    link_tab.goto(&shared.link).await;
    wait_link_page_ready(&link_tab).await;
    assert_eq!(
        link_tab
            .attribute("body", "data-end-to-end")
            .await
            .as_deref(),
        Some("true")
    );
    link_tab.wait_visible("#one-time-warning").await;
    let status = assert_unread(&server, &shared.key, "after opening the link").await;
    assert_eq!(status["end_to_end"], true, "{status}");
    let reveals_before_click: Vec<_> = link_tab
        .requests()
        .await
        .into_iter()
        .filter(|request| request.method == "POST")
        .map(|request| request.url)
        .collect();
    assert!(
        reveals_before_click.is_empty(),
        "the link page POSTed before any click: {reveals_before_click:?}"
    );
    assert!(
        !link_tab.everything_shown().await.contains(plaintext),
        "the value is shown before the click"
    );

    link_tab.click("#reveal").await;
    link_tab.wait_visible("#revealed").await;
    assert_eq!(link_tab.value("#secret-value").await, plaintext);
    assert_gone(&server, &shared.key, "after the reveal").await;

    // Away and back (back/forward cache included), then a reload: never the value again.
    link_tab.goto(&format!("{origin}/")).await;
    link_tab.back().await;
    assert!(
        !link_tab.everything_shown().await.contains(plaintext),
        "going back to the link page shows the revealed value again"
    );
    link_tab.reload().await;
    assert_eq!(
        link_tab.attribute("body", "data-page").await.as_deref(),
        Some("gone"),
        "reloading a revealed link is not the gone page"
    );
    assert!(
        !link_tab.everything_shown().await.contains(plaintext),
        "the reloaded page shows the value"
    );

    // The sender's receipt page says received.
    share_tab.goto(&shared.receipt_link).await;
    assert_eq!(share_tab.text("#receipt-state").await, "received");
    assert_eq!(
        api_receipt_state(&server, &shared.metadata_key).await,
        "received"
    );
    recipient.close().await;
    sender.close().await;
}

/// Link unfurlers and mail scanners fetch links with GET and HEAD; none may burn the secret.
const PREVIEW_AGENTS: [(&str, &str); 7] = [
    (
        "Slackbot",
        "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    ),
    ("Twitterbot", "Twitterbot/1.0"),
    (
        "facebookexternalhit",
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    ),
    ("WhatsApp", "WhatsApp/2.23.20.0 A"),
    (
        "Microsoft Teams",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/91.0.4472.114 Safari/537.36 Edg/91.0.864.54 SkypeUriPreview Preview/0.5 skype-url-preview@microsoft.com",
    ),
    ("iMessage", "facebookexternalhit/1.1 Facebot Twitterbot/1.0"),
    (
        "Defender Safe Links",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    ),
];

/// 2. GET and HEAD of a link by every common unfurler leave the secret unread; the GET is the
/// HTML link page with the one-time warning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_previews_never_burn() {
    let server = start_page_server(Backend::Memory, |_| {}).await;
    let plain = "preview me not";
    let e2e = bbx1_value(20);
    let secrets = [
        ("plain", api_share(&server, &[("secret", plain)]).await),
        ("end-to-end", api_share(&server, &[("secret", &e2e)]).await),
    ];
    for (kind, (key, _)) in &secrets {
        let url = format!("{}/secret/{key}", server.http_base);
        for (agent, user_agent) in PREVIEW_AGENTS {
            let response = server
                .http
                .get(&url)
                .header("User-Agent", user_agent)
                .header("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
                .send()
                .await
                .expect("GET");
            let status = response.status();
            let content_type = response
                .headers()
                .get("content-type")
                .and_then(|value| value.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let body = response.text().await.expect("body");
            assert_eq!(status, StatusCode::OK, "{agent} GET of a {kind} link");
            assert!(
                content_type.starts_with("text/html"),
                "{agent} GET of a {kind} link: content type {content_type}"
            );
            assert!(
                body.contains("id=\"one-time-warning\"") || body.contains("id=one-time-warning"),
                "{agent} GET of a {kind} link: no #one-time-warning in the page"
            );
            assert!(
                !body.contains(plain) && !body.contains(&e2e),
                "{agent} GET of a {kind} link: the page holds the secret"
            );
            let head = server
                .http
                .head(&url)
                .header("User-Agent", user_agent)
                .send()
                .await
                .expect("HEAD");
            assert_eq!(
                head.status(),
                StatusCode::OK,
                "{agent} HEAD of a {kind} link"
            );
            assert_unread(&server, key, &format!("after {agent}'s GET and HEAD")).await;
        }
    }
    for (kind, (key, metadata_key)) in &secrets {
        assert_unread(&server, key, &format!("{kind} link after every preview")).await;
        assert_eq!(api_receipt_state(&server, metadata_key).await, "new");
    }
}

/// 3. A wrong passphrase shows an error and leaves the form usable; the right one reveals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_then_right_passphrase() {
    let server = start_page_server(Backend::Memory, |_| {}).await;
    let plaintext = "behind a passphrase ✓";
    let sender = Browser::launch().await;
    let share_tab = sender.tab().await;
    let shared = share_from_page(&share_tab, &server, plaintext, Some("right horse")).await;

    let recipient = Browser::launch().await;
    let tab = recipient.tab().await;
    tab.goto(&shared.link).await;
    wait_link_page_ready(&tab).await;
    tab.wait_visible("#reveal-passphrase").await;
    tab.type_into("#reveal-passphrase", "wrong horse").await;
    tab.click("#reveal").await;
    tab.wait_visible("#reveal-error").await;
    tab.wait_until(
        "document.querySelector('#reveal-error').innerText.trim() !== ''",
        "an error message in #reveal-error",
    )
    .await;
    assert!(
        !tab.is_visible("#revealed").await,
        "a wrong passphrase shows #revealed"
    );
    assert!(!tab.everything_shown().await.contains(plaintext));
    assert_unread(&server, &shared.key, "after a wrong passphrase").await;

    // Still usable: the same form takes the right passphrase.
    tab.type_into("#reveal-passphrase", "right horse").await;
    tab.click("#reveal").await;
    tab.wait_visible("#revealed").await;
    assert_eq!(tab.value("#secret-value").await, plaintext);
    assert_gone(&server, &shared.key, "after the right passphrase").await;
    recipient.close().await;
    sender.close().await;
}

/// 4. Burning from the receipt page (on Redis): the receipt says burned, the link is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burn_from_the_receipt_page_on_redis() {
    let server = start_page_server(Backend::redis(), |_| {}).await;
    let browser = Browser::launch().await;
    let tab = browser.tab().await;
    let shared = share_from_page(&tab, &server, "burn me", Some("burn horse")).await;

    tab.goto(&shared.receipt_link).await;
    assert_eq!(
        tab.attribute("body", "data-page").await.as_deref(),
        Some("receipt")
    );
    assert_eq!(tab.text("#receipt-state").await, "new");
    tab.wait_until(
        &format!(
            "document.querySelector('#receipt-secret-link').value === {}",
            js_string(&shared.link)
        ),
        "#receipt-secret-link holding the full link (fragment from the receipt page's own URL)",
    )
    .await;
    tab.type_into("#burn-passphrase", "burn horse").await;
    tab.click("#burn").await;
    tab.wait_until(
        "document.querySelector('#receipt-state') && document.querySelector('#receipt-state').innerText.trim() === 'burned'",
        "#receipt-state burned after the burn",
    )
    .await;
    assert!(
        tab.url()
            .await
            .contains(&format!("/receipt/{}", shared.metadata_key))
            || tab
                .url()
                .await
                .contains(&format!("/private/{}", shared.metadata_key)),
        "the burn did not end on the receipt page: {}",
        tab.url().await
    );
    assert_eq!(
        api_receipt_state(&server, &shared.metadata_key).await,
        "burned"
    );
    assert_gone(&server, &shared.key, "after the burn").await;

    tab.goto(&shared.link).await;
    assert_eq!(
        tab.attribute("body", "data-page").await.as_deref(),
        Some("gone"),
        "the burned secret's link is not the gone page"
    );
    tab.wait_visible("#gone-title").await;
    let response = server
        .http
        .get(format!("{}/secret/{}", server.http_base, shared.key))
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    browser.close().await;
}

/// 5. Unknown, revealed and burned links are the same gone page, 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gone_page_is_the_same_for_unknown_revealed_and_burned() {
    let server = start_page_server(Backend::Memory, |_| {}).await;
    let (revealed, _) = api_share(&server, &[("secret", "to reveal")]).await;
    let (burned, burned_metadata) = api_share(&server, &[("secret", "to burn")]).await;
    let reveal = server
        .http
        .post(server.api(&format!("/secret/{revealed}")))
        .send()
        .await
        .expect("reveal");
    assert_eq!(reveal.status(), StatusCode::OK);
    let burn = server
        .http
        .post(server.api(&format!("/private/{burned_metadata}/burn")))
        .send()
        .await
        .expect("burn");
    assert_eq!(burn.status(), StatusCode::OK);
    // A key of the right shape that was never issued.
    let unknown: String = revealed
        .chars()
        .map(|c| match c {
            'z' => '0',
            '9' => 'a',
            c => char::from(c as u8 + 1),
        })
        .collect();

    let browser = Browser::launch().await;
    let tab = browser.tab().await;
    let mut titles = Vec::new();
    for (what, key) in [
        ("unknown", &unknown),
        ("revealed", &revealed),
        ("burned", &burned),
    ] {
        let url = format!("{}/secret/{key}", server.http_base);
        let response = server.http.get(&url).send().await.expect("GET");
        assert_eq!(
            response.status(),
            StatusCode::NOT_FOUND,
            "GET of a {what} link"
        );
        tab.goto(&url).await;
        assert_eq!(
            tab.attribute("body", "data-page").await.as_deref(),
            Some("gone"),
            "a {what} link is not the gone page"
        );
        tab.wait_visible("#gone-title").await;
        let title = tab.text("#gone-title").await;
        let document_title: String = tab.eval("document.title").await;
        assert!(!title.is_empty(), "#gone-title is empty for a {what} link");
        titles.push((what, title, document_title));
    }
    assert!(
        titles
            .windows(2)
            .all(|pair| (&pair[0].1, &pair[0].2) == (&pair[1].1, &pair[1].2)),
        "the gone page tells unknown, revealed and burned apart: {titles:?}"
    );
    browser.close().await;
}

/// 6. Without JavaScript: a plain (server-side encrypted) secret reveals by the form POST; an
/// end-to-end one says JavaScript is needed and stays unread (a form POST does not reveal it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_without_javascript() {
    let server = start_page_server(Backend::Memory, |_| {}).await;
    let plaintext = "no script needed ✓";
    let (plain_key, _) = api_share(
        &server,
        &[("secret", plaintext), ("passphrase", "form horse")],
    )
    .await;
    let e2e = bbx1_value(24);
    let (e2e_key, _) = api_share(&server, &[("secret", &e2e)]).await;
    let status = assert_unread(&server, &e2e_key, "an end-to-end secret").await;
    assert_eq!(status["end_to_end"], true, "{status}");

    let browser = Browser::launch().await;
    let tab = browser.tab_without_javascript().await;
    tab.goto(&format!("{}/secret/{plain_key}", server.http_base))
        .await;
    assert_eq!(
        tab.attribute("body", "data-page").await.as_deref(),
        Some("secret")
    );
    tab.wait_visible("#one-time-warning").await;
    tab.wait_visible("#reveal-form").await;
    tab.type_into("#reveal-passphrase", "form horse").await;
    tab.click("#reveal").await;
    tab.wait_visible("#revealed").await;
    assert_eq!(tab.value("#secret-value").await, plaintext);
    assert_gone(&server, &plain_key, "after the form reveal").await;

    let key_fragment = B64URL.encode([9u8; 32]);
    tab.goto(&format!(
        "{}/secret/{e2e_key}#{key_fragment}",
        server.http_base
    ))
    .await;
    assert_eq!(
        tab.attribute("body", "data-page").await.as_deref(),
        Some("secret")
    );
    tab.wait_visible("#needs-js").await;
    assert!(
        !tab.is_visible("#reveal").await,
        "an end-to-end secret offers a reveal button without JavaScript"
    );
    assert_unread(
        &server,
        &e2e_key,
        "an end-to-end link opened without JavaScript",
    )
    .await;

    // Submitting the form anyway (as a script-less client could) does not reveal it.
    let posted = server
        .http
        .post(format!("{}/secret/{e2e_key}", server.http_base))
        .form(&[("passphrase", "")])
        .send()
        .await
        .expect("form POST");
    let body = posted.text().await.expect("body");
    assert!(
        !body.contains(&e2e),
        "the form POST of an end-to-end secret returned its ciphertext"
    );
    assert_unread(&server, &e2e_key, "after a form POST of an end-to-end link").await;
    browser.close().await;
}

/// 7. Anonymous creation off, anonymous reveal on: the share page asks for a customer id and
/// token, shares with them, and keeps the token out of URLs, cookies and web storage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_create_with_credentials() {
    let server = start_page_server_with_customers(Backend::Memory, |config| {
        config.allow_anonymous = true;
        config.allow_anonymous_create = Some(false);
    })
    .await;
    let (custid, token) = ALICE;
    let plaintext = "from staff, for anyone with the link";
    let browser = Browser::launch().await;
    let tab = browser.tab().await;
    open_share_page(&tab, &server).await;
    assert_eq!(
        tab.attribute("body", "data-anonymous-create")
            .await
            .as_deref(),
        Some("false")
    );
    tab.wait_visible("#credentials").await;
    tab.wait_visible("#custid").await;
    tab.wait_visible("#apitoken").await;
    assert_eq!(
        tab.attribute("#apitoken", "type").await.as_deref(),
        Some("password")
    );
    tab.assert_axe_clean("share page with credentials").await;

    // Without credentials the form does not go (the fields are required) …
    tab.type_into("#secret", plaintext).await;
    tab.click("#create").await;
    let invalid: bool = tab
        .eval("document.querySelector('#custid').matches(':invalid')")
        .await;
    assert!(invalid, "the share form goes without a customer id");
    // … and with a wrong token the server's refusal is shown, the form still usable.
    tab.type_into("#custid", custid).await;
    tab.type_into("#apitoken", "not-the-token").await;
    tab.click("#create").await;
    tab.wait_visible("#share-error").await;
    tab.wait_until(
        "document.querySelector('#share-error').innerText.trim() !== ''",
        "an error in #share-error with a wrong token",
    )
    .await;
    assert!(!tab.is_visible("#share-result").await);
    let refused = tab
        .requests()
        .await
        .into_iter()
        .filter(|request| request.method == "POST" && request.url.ends_with("/api/v1/share"))
        .map(|request| request.response.map(|response| response.status))
        .collect::<Vec<_>>();
    assert_eq!(refused, [Some(401)], "the shares the page sent so far");

    tab.type_into("#apitoken", token).await;
    let shared = create_on_share_page(&tab, &server, plaintext, None).await;

    let requests = tab.requests().await;
    let create = requests
        .iter()
        .rfind(|request| request.method == "POST" && request.url.ends_with("/api/v1/share"))
        .expect("a create request");
    assert_eq!(
        create.header("Authorization"),
        Some(basic_auth(custid, token)),
        "the create request does not carry the customer's credentials"
    );
    // The receipt is alice's.
    let receipt = server
        .http
        .get(server.api(&format!("/private/{}", shared.metadata_key)))
        .header("Authorization", basic_auth(custid, token))
        .send()
        .await
        .expect("receipt");
    let receipt: Value = receipt.json().await.expect("receipt JSON");
    assert_eq!(receipt["custid"], custid, "{receipt}");

    // The token is in no URL, cookie or web storage.
    let mut urls: Vec<String> = requests.iter().map(|request| request.url.clone()).collect();
    urls.extend(tab.history_urls().await);
    urls.push(tab.url().await);
    urls.push(shared.link.clone());
    urls.push(shared.receipt_link.clone());
    for url in &urls {
        assert!(!url.contains(token), "the API token is in a URL: {url}");
    }
    let cookies = tab.cookies(&server.http_base).await;
    assert!(cookies.is_empty(), "the page set cookies: {cookies:?}");
    let storage: String = tab
        .eval("JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage)])")
        .await;
    assert!(
        !storage.contains(token),
        "the API token is in web storage: {storage}"
    );
    assert_eq!(storage, "[[],[]]", "the page keeps things in web storage");

    // Anyone with the link reads it, without credentials.
    let recipient = Browser::launch().await;
    let link_tab = recipient.tab().await;
    link_tab.goto(&shared.link).await;
    wait_link_page_ready(&link_tab).await;
    link_tab.click("#reveal").await;
    link_tab.wait_visible("#revealed").await;
    assert_eq!(link_tab.value("#secret-value").await, plaintext);
    recipient.close().await;
    browser.close().await;
}

/// Checks one page as loaded in `tab`: axe-core (no serious or critical violation), console
/// errors, requests to other origins. Returns the axe summary line; adds what is wrong to
/// `problems` (the test reports every page's problems at once).
async fn check_page(tab: &Tab, origin: &str, name: &str, problems: &mut Vec<String>) -> String {
    let violations = tab.axe().await;
    let serious: Vec<String> = violations
        .iter()
        .filter(|violation| violation.is_serious())
        .map(ToString::to_string)
        .collect();
    if !serious.is_empty() {
        problems.push(format!(
            "{name}: axe-core found serious or critical violations:\n{}",
            serious.concat()
        ));
    }
    for error in tab.take_console_errors().await {
        if !is_a_documented_status(&error, origin) {
            problems.push(format!("{name}: console error {error}"));
        }
    }
    for stray in tab.requests_off_origin(origin).await {
        problems.push(format!("{name}: a request to another origin: {stray}"));
    }
    let listed: Vec<String> = violations.iter().map(ToString::to_string).collect();
    format!(
        "axe {name}: {} violation(s){}{}",
        violations.len(),
        if listed.is_empty() { "" } else { "\n" },
        listed.concat()
    )
}

/// Chrome logs every answer of status 400 or more as an error ("Failed to load resource"). Two
/// kinds are the contract itself, not a fault of the page: an API error the page handles (a
/// wrong passphrase is a 422 with a message the page shows) and the gone page's own 404.
/// Anything else (a missing asset or icon, a 5xx) counts.
fn is_a_documented_status(error: &ConsoleError, origin: &str) -> bool {
    let Some(url) = error.url.as_deref() else {
        return false;
    };
    error.source == "network"
        && ((url.starts_with(&format!("{origin}/api/v1/")) && error.text.contains("status of 4"))
            || (url.starts_with(&format!("{origin}/secret/"))
                && error.text.contains("status of 404")))
}

/// A response header as text.
fn header_of(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

/// The contract's headers on a page answer; what differs goes to `problems`.
fn check_page_headers(response: &reqwest::Response, what: &str, problems: &mut Vec<String>) {
    let expected = [
        ("content-security-policy", Some(CSP)),
        ("referrer-policy", Some("no-referrer")),
        ("x-content-type-options", Some("nosniff")),
        ("cache-control", Some("no-store")),
        ("x-robots-tag", Some("noindex, nofollow")),
        ("set-cookie", None),
    ];
    for (name, value) in expected {
        let got = header_of(response, name);
        if got.as_deref() != value {
            problems.push(format!("{what}: {name} is {got:?}, not {value:?}"));
        }
    }
    let content_type = header_of(response, "content-type");
    if !content_type
        .as_deref()
        .is_some_and(|value| value.starts_with("text/html"))
    {
        problems.push(format!("{what}: content type {content_type:?}"));
    }
}

/// The page's HTML: no inline script or style, one module script `/static/app.js`.
fn check_no_inline_code(html: &str, what: &str, problems: &mut Vec<String>) {
    let lower = html.to_ascii_lowercase();
    if lower.contains("<style") {
        problems.push(format!("{what}: an inline <style>"));
    }
    if lower.contains(" style=") {
        problems.push(format!("{what}: an inline style attribute"));
    }
    if has_event_handler_attribute(&lower) {
        problems.push(format!("{what}: an inline event handler attribute"));
    }
    let scripts: Vec<&str> = lower.split("<script").skip(1).collect();
    if scripts.len() != 1 {
        problems.push(format!(
            "{what}: expected one <script>, found {}",
            scripts.len()
        ));
        return;
    }
    let tag = scripts[0].split('>').next().unwrap_or_default();
    if !(tag.contains("type=\"module\"") && tag.contains("src=\"/static/app.js\"")) {
        problems.push(format!(
            "{what}: the script is not <script type=\"module\" src=\"/static/app.js\">: <script{tag}>"
        ));
    }
    if !scripts[0]
        .split_once('>')
        .is_some_and(|(_, rest)| rest.trim_start().starts_with("</script"))
    {
        problems.push(format!("{what}: the script element has inline code"));
    }
}

/// Whether the (lowercased) HTML has an attribute like ` onclick=`.
fn has_event_handler_attribute(lower: &str) -> bool {
    lower.match_indices(" on").any(|(index, _)| {
        let rest = &lower[index + 3..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphabetic())
            .collect();
        !name.is_empty()
            && rest[name.len()..].starts_with('=')
            && lower[..index].rfind('<') > lower[..index].rfind('>')
    })
}

/// 8. Every page: axe-core clean, no console errors, same-origin requests only, the contract's
/// headers, no inline code; the share page fits a 360 px screen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_is_accessible_strict_and_same_origin() {
    let server = start_page_server(Backend::Memory, |_| {}).await;
    let origin = server.http_base.clone();
    let mut summary = Vec::new();
    let mut problems = Vec::new();
    let sender = Browser::launch().await;
    let recipient = Browser::launch().await;

    let share_tab = sender.tab().await;
    open_share_page(&share_tab, &server).await;
    summary.push(check_page(&share_tab, &origin, "share page", &mut problems).await);
    let shared = create_on_share_page(&share_tab, &server, "accessible ✓", Some("axe horse")).await;
    share_tab
        .wait_until("document.querySelector('#share-qr svg')", "the QR code")
        .await;
    summary.push(
        check_page(
            &share_tab,
            &origin,
            "share page with its result",
            &mut problems,
        )
        .await,
    );

    let receipt_tab = sender.tab().await;
    receipt_tab.goto(&shared.receipt_link).await;
    receipt_tab.wait_for("#receipt-state").await;
    summary.push(check_page(&receipt_tab, &origin, "receipt page (new)", &mut problems).await);

    let link_tab = recipient.tab().await;
    link_tab.goto(&shared.link).await;
    wait_link_page_ready(&link_tab).await;
    summary.push(
        check_page(
            &link_tab,
            &origin,
            "link page (end to end, passphrase)",
            &mut problems,
        )
        .await,
    );
    link_tab.type_into("#reveal-passphrase", "wrong").await;
    link_tab.click("#reveal").await;
    link_tab.wait_visible("#reveal-error").await;
    summary.push(check_page(&link_tab, &origin, "link page with an error", &mut problems).await);
    link_tab.type_into("#reveal-passphrase", "axe horse").await;
    link_tab.click("#reveal").await;
    link_tab.wait_visible("#revealed").await;
    summary.push(check_page(&link_tab, &origin, "link page revealed", &mut problems).await);

    let gone_tab = recipient.tab().await;
    gone_tab.goto(&shared.link).await;
    gone_tab.wait_visible("#gone-title").await;
    summary.push(check_page(&gone_tab, &origin, "gone page", &mut problems).await);

    receipt_tab.reload().await;
    receipt_tab.wait_for("#receipt-state").await;
    assert_eq!(receipt_tab.text("#receipt-state").await, "received");
    summary.push(
        check_page(
            &receipt_tab,
            &origin,
            "receipt page (received)",
            &mut problems,
        )
        .await,
    );

    let (plain_key, plain_metadata) = api_share(&server, &[("secret", "plain one")]).await;
    let plain_tab = recipient.tab().await;
    plain_tab
        .goto(&format!("{origin}/secret/{plain_key}"))
        .await;
    plain_tab.wait_visible("#reveal").await;
    summary.push(check_page(&plain_tab, &origin, "link page (plain)", &mut problems).await);

    // Without JavaScript: the share form's result, a plain link and its form reveal.
    let no_js = recipient.tab_without_javascript().await;
    no_js.goto(&format!("{origin}/")).await;
    no_js.type_into("#secret", "shared without script").await;
    no_js.click("#create").await;
    no_js.wait_visible("#share-result").await;
    summary.push(
        check_page(
            &no_js,
            &origin,
            "share result without JavaScript",
            &mut problems,
        )
        .await,
    );
    let (form_key, _) = api_share(&server, &[("secret", "revealed by the form")]).await;
    no_js.goto(&format!("{origin}/secret/{form_key}")).await;
    no_js.wait_visible("#reveal").await;
    summary.push(
        check_page(
            &no_js,
            &origin,
            "link page without JavaScript",
            &mut problems,
        )
        .await,
    );
    no_js.click("#reveal").await;
    no_js.wait_visible("#revealed").await;
    summary.push(
        check_page(
            &no_js,
            &origin,
            "revealed by the form, without JavaScript",
            &mut problems,
        )
        .await,
    );

    // A phone: the share page, empty and with a result (a long link), 360 px wide.
    let phone = sender.tab().await;
    phone.set_viewport_width(360).await;
    open_share_page(&phone, &server).await;
    let fits = "document.documentElement.scrollWidth <= 360";
    let width: i64 = phone.eval("document.documentElement.scrollWidth").await;
    if !phone.eval::<bool>(fits).await {
        problems.push(format!(
            "the share page scrolls sideways at 360 px (scrollWidth {width})"
        ));
    }
    summary.push(check_page(&phone, &origin, "share page at 360 px", &mut problems).await);
    create_on_share_page(&phone, &server, "on a phone", None).await;
    let width: i64 = phone.eval("document.documentElement.scrollWidth").await;
    if !phone.eval::<bool>(fits).await {
        problems.push(format!(
            "the share page with its result scrolls sideways at 360 px (scrollWidth {width})"
        ));
    }

    // The contract's headers and markup, straight from the server.
    let pages = [
        ("GET /", format!("{origin}/"), StatusCode::OK),
        (
            "GET /secret/{key}",
            format!("{origin}/secret/{plain_key}"),
            StatusCode::OK,
        ),
        (
            "GET /secret/{gone}",
            format!("{origin}/secret/{}", shared.key),
            StatusCode::NOT_FOUND,
        ),
        (
            "GET /receipt/{key}",
            format!("{origin}/receipt/{plain_metadata}"),
            StatusCode::OK,
        ),
        (
            "GET /private/{key}",
            format!("{origin}/private/{plain_metadata}"),
            StatusCode::OK,
        ),
    ];
    for (what, url, status) in pages {
        let response = server.http.get(&url).send().await.expect("GET page");
        if response.status() != status {
            problems.push(format!(
                "{what}: status {}, not {status}",
                response.status()
            ));
        }
        check_page_headers(&response, what, &mut problems);
        let html = response.text().await.expect("HTML");
        check_no_inline_code(&html, what, &mut problems);
    }
    let (posted_key, _) = api_share(&server, &[("secret", "posted")]).await;
    let form_reveal = server
        .http
        .post(format!("{origin}/secret/{posted_key}"))
        .form(&[("passphrase", "")])
        .send()
        .await
        .expect("POST /secret/{key}");
    if form_reveal.status() != StatusCode::OK {
        problems.push(format!(
            "POST /secret/{{key}}: status {}",
            form_reveal.status()
        ));
    }
    check_page_headers(&form_reveal, "POST /secret/{key}", &mut problems);
    let form_share = server
        .http
        .post(format!("{origin}/"))
        .form(&[
            ("secret", "form share"),
            ("passphrase", ""),
            ("ttl", "3600"),
        ])
        .send()
        .await
        .expect("POST /");
    if form_share.status() != StatusCode::OK {
        problems.push(format!("POST /: status {}", form_share.status()));
    }
    check_page_headers(&form_share, "POST /", &mut problems);
    for (asset, kind) in [
        ("/static/app.js", "javascript"),
        ("/static/qr.js", "javascript"),
        ("/static/style.css", "text/css"),
    ] {
        let response = server
            .http
            .get(format!("{origin}{asset}"))
            .send()
            .await
            .expect("asset");
        assert_eq!(response.status(), StatusCode::OK, "{asset}");
        let content_type = header_of(&response, "content-type");
        if !content_type
            .as_deref()
            .is_some_and(|value| value.contains(kind))
        {
            problems.push(format!("{asset}: content type {content_type:?}"));
        }
        for (name, value) in [
            ("cache-control", "no-cache"),
            ("x-content-type-options", "nosniff"),
        ] {
            let got = header_of(&response, name);
            if got.as_deref() != Some(value) {
                problems.push(format!("{asset}: {name} is {got:?}, not {value:?}"));
            }
        }
        let Some(etag) = header_of(&response, "etag") else {
            problems.push(format!("{asset}: no ETag"));
            continue;
        };
        let again = server
            .http
            .get(format!("{origin}{asset}"))
            .header("If-None-Match", &etag)
            .send()
            .await
            .expect("conditional GET");
        if again.status() != StatusCode::NOT_MODIFIED {
            problems.push(format!(
                "{asset} with its ETag: {}, not 304",
                again.status()
            ));
        }
    }
    for line in summary {
        println!("{line}");
    }
    assert!(
        problems.is_empty(),
        "{} problem(s) on the pages:\n{}",
        problems.len(),
        problems.join("\n")
    );
    recipient.close().await;
    sender.close().await;
}

/// 9. The share page's HTML, CSS and JavaScript weigh under 50 KB uncompressed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn share_page_weighs_under_50_kb() {
    let server = start_page_server(Backend::Memory, |_| {}).await;
    let browser = Browser::launch().await;
    let tab = browser.tab().await;
    // Load it, and create a secret so that whatever the page loads on use counts too.
    share_from_page(&tab, &server, "weigh me", None).await;
    tab.wait_until("document.querySelector('#share-qr svg')", "the QR code")
        .await;
    let mut total = 0usize;
    let mut lines = Vec::new();
    for request in tab.requests().await {
        let Some(response) = &request.response else {
            continue;
        };
        let mime = response.mime_type.as_str();
        let counted = request.method == "GET"
            && (mime.contains("html") || mime.contains("css") || mime.contains("javascript"));
        if !counted {
            continue;
        }
        let size = tab.response_body(&request.id).await.len();
        total += size;
        lines.push(format!("{size:>7} B  {mime:<24} {}", request.url));
    }
    println!("share page weight (uncompressed):");
    for line in &lines {
        println!("  {line}");
    }
    println!("  {total:>7} B  total");
    for asset in ["/static/app.js", "/static/qr.js", "/static/style.css"] {
        assert!(
            lines.iter().any(|line| line.ends_with(asset)),
            "the share page did not load {asset}: {lines:?}"
        );
    }
    assert!(
        total < 50 * 1024,
        "the share page weighs {total} bytes (HTML+CSS+JS), over 50 KB: {lines:?}"
    );
    browser.close().await;
}
