//! The web pages over plain HTTP, as a browser without JavaScript (or a bot) sees them: the
//! forms work end to end, nothing but a POST burns, an end-to-end secret is never revealed by a
//! form post, every page carries its headers, the static files revalidate by ETag, and links
//! work with no configuration. (What needs a real browser is in `pages.rs`.)

use burnbox_core::ErrorKind;
use burnbox_tests::{ALICE, Backend, TestServer, assert_rest_error, on_both_stores, rest_share};
use reqwest::StatusCode;
use reqwest::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH, LOCATION,
    RETRY_AFTER,
};

on_both_stores!(
    forms_share_reveal_and_burn_without_javascript,
    an_end_to_end_secret_is_not_revealed_by_a_form_post,
);

/// The body of an HTML answer, checked to be a page with the page headers.
async fn page(response: reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.text().await.expect("page body");
    assert_eq!(
        headers[CONTENT_TYPE], "text/html; charset=utf-8",
        "{status} {body}"
    );
    let csp = headers[CONTENT_SECURITY_POLICY].to_str().expect("CSP");
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} missing from {csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    assert_eq!(headers[CACHE_CONTROL], "no-store");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["x-robots-tag"], "noindex, nofollow");
    assert!(!headers.contains_key("set-cookie"), "pages set no cookies");
    (status, body)
}

/// The value of the first `<input id="{id}" … value="…">` on a page.
fn input_value(html: &str, id: &str) -> String {
    let start = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in {html}"));
    let tail = &html[start..];
    let value = tail
        .split_once("value=\"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .unwrap_or_else(|| panic!("#{id} has no value: {tail}"))
        .0;
    value.to_owned()
}

/// The last path segment of a URL.
fn last_segment(url: &str) -> &str {
    url.rsplit('/').next().expect("a segment")
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("HTTP client")
}

async fn forms_share_reveal_and_burn_without_javascript(backend: Backend) {
    let server = TestServer::start(backend).await;
    let http = &server.http;
    let (status, share_page) = page(http.get(&server.http_base).send().await.expect("GET /")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(share_page.contains("id=\"share-form\""), "{share_page}");

    // Share by the form: the page shows the link and the receipt link.
    let (status, shared) = page(
        http.post(&server.http_base)
            .form(&[
                ("secret", "form secret"),
                ("passphrase", "open sesame"),
                ("ttl", "3600"),
            ])
            .send()
            .await
            .expect("POST /"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{shared}");
    let link = input_value(&shared, "share-link");
    assert!(link.starts_with("https://burnbox.test/secret/"), "{link}");
    let key = last_segment(&link).to_owned();
    let receipt_href = shared
        .split_once("id=\"receipt-link\" href=\"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .expect("receipt link")
        .0;
    let metadata_key = last_segment(receipt_href).to_owned();

    // Opening the link asks for the passphrase and reveals nothing.
    let secret_url = format!("{}/secret/{key}", server.http_base);
    let (status, opened) = page(http.get(&secret_url).send().await.expect("GET link")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(opened.contains("id=\"reveal-passphrase\""), "{opened}");
    assert!(!opened.contains("form secret"), "{opened}");

    // A wrong passphrase: the table's status and message, the form again, nothing burned.
    let (status, wrong) = page(
        http.post(&secret_url)
            .form(&[("passphrase", "wrong")])
            .send()
            .await
            .expect("POST wrong"),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{wrong}");
    assert!(wrong.contains("id=\"reveal-error\" class=\"error\" role=\"alert\">"));
    assert!(wrong.contains("id=\"reveal-form\""), "{wrong}");

    // The receipt says new, with a burn form asking for the passphrase.
    let receipt_url = format!("{}/receipt/{metadata_key}", server.http_base);
    let (status, receipt) = page(http.get(&receipt_url).send().await.expect("receipt")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        receipt.contains("<dd id=\"receipt-state\">new</dd>"),
        "{receipt}"
    );
    assert!(receipt.contains("id=\"burn-passphrase\""), "{receipt}");

    // The right passphrase shows the value, once.
    let (status, revealed) = page(
        http.post(&secret_url)
            .form(&[("passphrase", "open sesame")])
            .send()
            .await
            .expect("POST right"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{revealed}");
    assert!(revealed.contains(">form secret</textarea>"), "{revealed}");
    let (status, again) = page(http.get(&secret_url).send().await.expect("GET again")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(again.contains("id=\"gone-title\""), "{again}");
    let (_, receipt) = page(http.get(&receipt_url).send().await.expect("receipt")).await;
    assert!(
        receipt.contains("<dd id=\"receipt-state\">received</dd>"),
        "{receipt}"
    );
    assert!(!receipt.contains("id=\"burn-form\""), "{receipt}");

    // Burn by the receipt page's form: 303 back to the receipt, which says burned, and the
    // link is the same gone page.
    let (status, shared) = rest_share(&server, &[("secret", "burn me")]).await;
    assert_eq!(status, StatusCode::OK, "{shared}");
    let metadata_key = shared["metadata_key"].as_str().expect("metadata_key");
    let key = shared["secret_key"].as_str().expect("secret_key");
    let burned = no_redirects()
        .post(format!("{}/private/{metadata_key}/burn", server.http_base))
        .form(&[("passphrase", "")])
        .send()
        .await
        .expect("burn");
    assert_eq!(burned.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        burned.headers()[LOCATION],
        format!("/receipt/{metadata_key}")
    );
    let (_, receipt) = page(
        http.get(format!("{}/receipt/{metadata_key}", server.http_base))
            .send()
            .await
            .expect("receipt"),
    )
    .await;
    assert!(
        receipt.contains("<dd id=\"receipt-state\">burned</dd>"),
        "{receipt}"
    );
    assert!(receipt.contains("id=\"receipt-burned\""), "{receipt}");
    let (status, gone) = page(
        http.get(format!("{}/secret/{key}", server.http_base))
            .send()
            .await
            .expect("GET burned"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        gone, again,
        "the same page for a revealed and a burned secret"
    );
    let (status, unknown) = page(
        http.get(format!("{}/secret/{}", server.http_base, "x".repeat(31)))
            .send()
            .await
            .expect("GET unknown"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(unknown, again, "the same page for an unknown secret");
}

async fn an_end_to_end_secret_is_not_revealed_by_a_form_post(backend: Backend) {
    let server = TestServer::start(backend).await;
    let sealed = format!("bbx1:{}", "Q".repeat(44));
    let (status, shared) = rest_share(&server, &[("secret", &sealed)]).await;
    assert_eq!(status, StatusCode::OK, "{shared}");
    let key = shared["secret_key"].as_str().expect("secret_key");
    let secret_url = format!("{}/secret/{key}", server.http_base);
    for opened in [
        server.http.get(&secret_url).send().await.expect("GET"),
        server.http.post(&secret_url).send().await.expect("POST"),
    ] {
        let (status, opened) = page(opened).await;
        assert_eq!(status, StatusCode::OK, "{opened}");
        assert!(opened.contains("id=\"needs-js\""), "{opened}");
        assert!(opened.contains("data-end-to-end=\"true\""), "{opened}");
        assert!(!opened.contains(&sealed), "{opened}");
    }
    let (status, revealed) = burnbox_tests::rest_reveal(&server, key, None).await;
    assert_eq!(status, StatusCode::OK, "still unread: {revealed}");
    assert_eq!(revealed["value"], sealed.as_str());
}

#[tokio::test]
async fn static_files_revalidate_by_etag() {
    let server = TestServer::start(Backend::Memory).await;
    for (name, content_type) in [
        ("app.js", "text/javascript; charset=utf-8"),
        ("qr.js", "text/javascript; charset=utf-8"),
        ("style.css", "text/css; charset=utf-8"),
    ] {
        let url = format!("{}/static/{name}", server.http_base);
        let first = server.http.get(&url).send().await.expect("GET asset");
        assert_eq!(first.status(), StatusCode::OK, "{name}");
        assert_eq!(first.headers()[CONTENT_TYPE], content_type);
        assert_eq!(first.headers()[CACHE_CONTROL], "no-cache");
        let etag = first.headers()[ETAG].clone();
        assert!(!first.bytes().await.expect("body").is_empty());
        let again = server
            .http
            .get(&url)
            .header(IF_NONE_MATCH, etag.clone())
            .send()
            .await
            .expect("revalidate");
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{name}");
        assert_eq!(again.headers()[ETAG], etag);
    }
    let missing = server
        .http
        .get(format!("{}/static/nope.js", server.http_base))
        .send()
        .await
        .expect("GET missing");
    assert_rest_error(
        &burnbox_tests::json_of(missing).await,
        ErrorKind::NotFound,
        None,
    );
}

/// With `BURNBOX_PUBLIC_URL` unset, the links the API and the pages give open on this machine.
#[tokio::test]
async fn links_work_with_no_configuration() {
    let server = TestServer::start_with(Backend::Memory, |config| {
        config.public_url = String::new();
    })
    .await;
    let port = server.http_base.rsplit(':').next().expect("port");
    let (status, shared) = rest_share(&server, &[("secret", "zero config")]).await;
    assert_eq!(status, StatusCode::OK, "{shared}");
    let metadata_key = shared["metadata_key"].as_str().expect("metadata_key");
    assert_eq!(
        shared["metadata_url"],
        format!("http://localhost:{port}/private/{metadata_key}")
    );
    let key = shared["secret_key"].as_str().expect("secret_key");
    let link = format!("http://localhost:{port}/secret/{key}");
    let (status, opened) = page(server.http.get(&link).send().await.expect("GET link")).await;
    assert_eq!(status, StatusCode::OK, "{opened}");
    assert!(
        opened.contains(&format!("data-public-url=\"http://localhost:{port}\"")),
        "{opened}"
    );
}

/// With anonymous creation off and reveal on, the form shares with the customer's id and token
/// (never echoed back), refuses without them, and anyone opens the link.
#[tokio::test]
async fn only_customers_create_from_the_form_when_anonymous_creation_is_off() {
    let server = TestServer::start_with_customers(Backend::Memory, |config| {
        config.allow_anonymous = true;
        config.allow_anonymous_create = Some(false);
    })
    .await;
    let (_, share_page) = page(
        server
            .http
            .get(&server.http_base)
            .send()
            .await
            .expect("GET /"),
    )
    .await;
    assert!(share_page.contains("id=\"credentials\""), "{share_page}");
    assert!(share_page.contains("data-anonymous-create=\"false\""));

    let (status, refused) = page(
        server
            .http
            .post(&server.http_base)
            .form(&[("secret", "staff only")])
            .send()
            .await
            .expect("POST anonymous"),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{refused}");
    assert!(
        refused.contains("only customers of this server may do this"),
        "{refused}"
    );

    let (status, shared) = page(
        server
            .http
            .post(&server.http_base)
            .form(&[
                ("secret", "staff only"),
                ("custid", ALICE.0),
                ("apitoken", ALICE.1),
            ])
            .send()
            .await
            .expect("POST as alice"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{shared}");
    assert!(!shared.contains(ALICE.1), "the token is not echoed");
    let link = input_value(&shared, "share-link");
    let opened = server
        .http
        .post(format!(
            "{}/secret/{}",
            server.http_base,
            last_segment(&link)
        ))
        .send()
        .await
        .expect("anonymous reveal");
    let (status, revealed) = page(opened).await;
    assert_eq!(status, StatusCode::OK, "{revealed}");
    assert!(revealed.contains(">staff only</textarea>"), "{revealed}");
}

/// Refusals on pages go through the error table: a rate-limited link page is a 429 page with
/// `Retry-After`, and bad form input the table's 400.
#[tokio::test]
async fn page_refusals_use_the_error_table() {
    let server = TestServer::start_with(Backend::Memory, |config| {
        config.rate_limit_reveal = 2;
    })
    .await;
    let url = format!("{}/secret/{}", server.http_base, "x".repeat(31));
    for _ in 0..2 {
        let (status, _) = page(server.http.get(&url).send().await.expect("GET")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let limited = server.http.get(&url).send().await.expect("GET limited");
    assert!(limited.headers().contains_key(RETRY_AFTER));
    let (status, limited) = page(limited).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{limited}");
    assert!(limited.contains("id=\"page-error\""), "{limited}");

    let (status, bad) = page(
        server
            .http
            .post(&server.http_base)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body("secret=%FF%FE")
            .send()
            .await
            .expect("POST bad"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    assert!(bad.contains("not valid UTF-8"), "{bad}");
}
