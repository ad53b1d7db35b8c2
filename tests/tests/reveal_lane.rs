//! REST reveals of plain keys skip poem's router (the reveal lane); any other spelling of the
//! same request is routed. Both must answer alike: the same status, body fields, headers and
//! metrics, for a reveal, a second reveal (404 naming the key) and a refused body.

use std::collections::BTreeMap;

use burnbox_tests::{Backend, TestServer, json_of, rest_share};
use reqwest::StatusCode;

/// The path of `key` with every character percent-encoded: the same key to the router, never
/// to the lane.
fn encoded(key: &str) -> String {
    key.bytes().map(|byte| format!("%{byte:02X}")).collect()
}

/// Status, the headers that describe the answer, and the body without its per-request
/// `error_id`.
async fn answer(
    server: &TestServer,
    path: &str,
    body: &str,
) -> (StatusCode, BTreeMap<String, String>, serde_json::Value) {
    let response = server
        .http
        .post(server.api(path))
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(body.to_owned())
        .send()
        .await
        .expect("request");
    let headers = response
        .headers()
        .iter()
        .filter(|(name, _)| *name != "date" && *name != "content-length")
        .map(|(name, value)| {
            (
                name.to_string(),
                value.to_str().expect("text header").to_owned(),
            )
        })
        .collect();
    let (status, mut json) = json_of(response).await;
    if let Some(fields) = json.as_object_mut() {
        assert_eq!(
            fields.remove("error_id").is_some(),
            !status.is_success(),
            "an error and only an error carries an error id: {json:?}"
        );
    }
    (status, headers, json)
}

async fn shared_key(server: &TestServer, secret: &str) -> String {
    let (status, receipt) = rest_share(server, &[("secret", secret), ("passphrase", "pass")]).await;
    assert_eq!(status, StatusCode::OK, "{receipt}");
    receipt["secret_key"]
        .as_str()
        .expect("secret key")
        .to_owned()
}

#[tokio::test]
async fn the_lane_and_the_router_answer_a_reveal_alike() {
    let server = TestServer::start(Backend::Memory).await;
    let lane_key = shared_key(&server, "same value").await;
    let routed_key = shared_key(&server, "same value").await;
    let lane = format!("/secret/{lane_key}");
    let routed = format!("/secret/{}", encoded(&routed_key));

    // A body refused by the decoder, then a wrong passphrase: both leave the secret there.
    for body in ["passphrase=%FF", "passphrase=wrong"] {
        let on_lane = answer(&server, &lane, body).await;
        let routed_answer = answer(&server, &routed, body).await;
        assert!(on_lane.0.is_client_error(), "{body}: {on_lane:?}");
        assert_eq!(on_lane, routed_answer, "{body}");
    }

    // The reveal: the same answer but for the key it names.
    let (status, headers, mut body) = answer(&server, &lane, "passphrase=pass").await;
    let (routed_status, routed_headers, mut routed_body) =
        answer(&server, &routed, "passphrase=pass").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["value"], "same value");
    assert_eq!(body["secret_key"], lane_key.as_str());
    assert_eq!(routed_body["secret_key"], routed_key.as_str());
    body["secret_key"] = serde_json::Value::Null;
    routed_body["secret_key"] = serde_json::Value::Null;
    assert_eq!(
        (status, headers, body),
        (routed_status, routed_headers, routed_body)
    );

    // Gone on both: a 404 naming the key asked for.
    let (status, headers, body) = answer(&server, &lane, "").await;
    let (routed_status, routed_headers, routed_body) = answer(&server, &routed, "").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["secret_key"], lane_key.as_str());
    assert_eq!(routed_body["secret_key"], routed_key.as_str());
    assert_eq!((status, headers), (routed_status, routed_headers));

    // Counted as the same operation, whichever way they came: 2 of each outcome per path.
    let metrics = server.metrics_text().await;
    let reveals = metrics
        .lines()
        .filter(|line| {
            line.starts_with("burnbox_requests_total")
                && line.contains("operation=\"reveal\"")
                && line.contains("transport=\"rest\"")
        })
        .map(|line| {
            // The sample's value, before any exemplar (` # {…} …`).
            line.split(" # ")
                .next()
                .and_then(|sample| sample.rsplit(' ').next())
                .and_then(|count| count.parse::<f64>().ok())
                .expect("a count")
        })
        .sum::<f64>();
    assert_eq!(reveals, 8.0, "{metrics}");
    server.shutdown().await;
}
