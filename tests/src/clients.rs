//! Requests as the suites send them: REST shares, reveals and reads, gRPC messages, and the
//! credentials both carry.

use super::*;

/// A share over REST with a form body; returns the status and the JSON body.
pub async fn rest_share(
    server: &TestServer,
    form: &[(&str, &str)],
) -> (reqwest::StatusCode, serde_json::Value) {
    let response = server
        .http
        .post(server.api("/share"))
        .form(form)
        .send()
        .await
        .expect("share request");
    json_of(response).await
}

/// A reveal over REST, with an optional passphrase (as a form field).
pub async fn rest_reveal(
    server: &TestServer,
    key: &str,
    passphrase: Option<&str>,
) -> (reqwest::StatusCode, serde_json::Value) {
    let mut request = server.http.post(server.api(&format!("/secret/{key}")));
    if let Some(passphrase) = passphrase {
        request = request.form(&[("passphrase", passphrase)]);
    }
    json_of(request.send().await.expect("reveal request")).await
}

/// `GET path` under the API prefix: the status and the JSON body.
pub async fn rest_get(server: &TestServer, path: &str) -> (reqwest::StatusCode, serde_json::Value) {
    json_of(
        server
            .http
            .get(server.api(path))
            .send()
            .await
            .expect("GET request"),
    )
    .await
}

/// The status and JSON body of a response (panics on a non-JSON body: every answer is JSON).
pub async fn json_of(response: reqwest::Response) -> (reqwest::StatusCode, serde_json::Value) {
    let status = response.status();
    let text = response.text().await.expect("response body");
    let body =
        serde_json::from_str(&text).unwrap_or_else(|err| panic!("non-JSON body ({err}): {text}"));
    (status, body)
}

/// A ShareSecret request with just a secret.
pub fn grpc_share_request(secret: &str) -> burnbox_spec::v1::ShareSecretRequest {
    burnbox_spec::v1::ShareSecretRequest {
        secret: secret.to_owned(),
        ..Default::default()
    }
}

/// A RevealSecret request.
pub fn grpc_reveal_request(
    key: &str,
    passphrase: Option<&str>,
) -> burnbox_spec::v1::RevealSecretRequest {
    burnbox_spec::v1::RevealSecretRequest {
        key: key.to_owned(),
        passphrase: passphrase.map(str::to_owned),
    }
}

/// The Authorization header value for `custid:token` (REST header and gRPC metadata alike).
pub fn basic_auth(custid: &str, token: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{custid}:{token}"))
    )
}

/// A gRPC request carrying `authorization` metadata when given.
pub fn grpc_request<T>(message: T, authorization: Option<&str>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(value) = authorization {
        request.metadata_mut().insert(
            "authorization",
            value.parse().expect("ASCII metadata value"),
        );
    }
    request
}

/// The text field `name` of a JSON answer (panics, showing the answer, when there is none).
pub fn text_field(value: &serde_json::Value, name: &str) -> String {
    value[name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name} in {value}"))
        .to_owned()
}
