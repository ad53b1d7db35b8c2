//! `recipient`: a customer's share emails the secret's LINK to one address over SMTP, received
//! here by a real SMTP server (mailin-embedded) in the test process. The mail holds the link and
//! never the value or the passphrase; receipts list the address masked; anonymous callers, a
//! server without SMTP, two addresses and non-addresses are refused; a link that cannot be
//! mailed burns its secret and answers 503. (Its own test binary: it installs the process-wide
//! log subscriber, to show that the address and the link stay out of the log.)

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use burnbox_core::{ACCOUNT_REQUIRED, ErrorKind, NOT_EMAILED, UNDELIVERABLE};
use burnbox_server::{Application, Config, StartupError};
use burnbox_spec::v1 as pb;
use burnbox_tests::{
    ALICE, Backend, TestServer, assert_grpc_error, assert_rest_error, basic_auth, captured_logs,
    grpc_request, grpc_share_request, json_of, on_both_stores, text_field,
};
use mailin_embedded::{Handler, Response, Server, response};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::mpsc;

on_both_stores!(customer_shares_emails_the_link_and_receipts_mask_the_address);

/// The From address the test servers send as.
const FROM: &str = "burnbox@burnbox.test";

/// A recipient the test SMTP server refuses, quoting the address in its answer.
const REFUSED: &str = "nobody.home@refusing.example";

/// One message as the SMTP server received it.
#[derive(Debug)]
struct Mail {
    /// The envelope's recipients (RCPT TO).
    to: Vec<String>,
    /// The envelope's sender (MAIL FROM).
    from: String,
    /// The message, headers and body, as sent.
    data: String,
}

/// A session of the test SMTP server: collects one message at a time and hands it over.
#[derive(Clone)]
struct Collector {
    received: mpsc::UnboundedSender<Mail>,
    from: String,
    to: Vec<String>,
    data: Vec<u8>,
}

impl Handler for Collector {
    fn rcpt(&mut self, to: &str) -> Response {
        if to == REFUSED {
            // As real servers do: the refusal names the address.
            Response::custom(550, format!("5.1.1 <{to}>: Recipient address rejected"))
        } else {
            response::OK
        }
    }

    fn data_start(&mut self, _domain: &str, from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.from = from.to_owned();
        self.to = to.to_vec();
        self.data.clear();
        response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let _ = self.received.send(Mail {
            to: std::mem::take(&mut self.to),
            from: std::mem::take(&mut self.from),
            data: String::from_utf8_lossy(&std::mem::take(&mut self.data)).into_owned(),
        });
        response::OK
    }
}

/// A real SMTP server on a free loopback port, serving from its own threads for the rest of the
/// test process (mailin-embedded serves until the process ends).
struct TestSmtp {
    addr: SocketAddr,
    received: mpsc::UnboundedReceiver<Mail>,
}

impl TestSmtp {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the SMTP listener");
        let addr = listener.local_addr().expect("SMTP address");
        let (sender, received) = mpsc::unbounded_channel();
        let mut server = Server::new(Collector {
            received: sender,
            from: String::new(),
            to: Vec::new(),
            data: Vec::new(),
        });
        server
            .with_name("smtp.burnbox.test")
            .with_num_threads(2)
            .with_tcp_listener(listener);
        std::thread::spawn(move || {
            if let Err(err) = server.serve() {
                panic!("the test SMTP server stopped: {err}");
            }
        });
        Self { addr, received }
    }

    /// `BURNBOX_SMTP_URL` for this server.
    fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    /// The next message received. burnbox answers a share only once the server accepted the
    /// message, so it is there already; the bound only turns a bug into a failure.
    async fn next_mail(&mut self) -> Mail {
        tokio::time::timeout(Duration::from_secs(30), self.received.recv())
            .await
            .expect("a mail arrives")
            .expect("the SMTP server runs")
    }

    /// Asserts that no message was received.
    fn assert_no_mail(&mut self) {
        match self.received.try_recv() {
            Err(mpsc::error::TryRecvError::Empty) => {}
            Ok(mail) => panic!("unexpected mail: {mail:?}"),
            Err(mpsc::error::TryRecvError::Disconnected) => panic!("the SMTP server stopped"),
        }
    }
}

/// A server with customers, emailing through `smtp_url` (none: no email).
async fn server_with_smtp(backend: Backend, smtp_url: Option<String>) -> TestServer {
    TestServer::start_with_customers(backend, |config| {
        config.smtp_url = smtp_url;
        config.smtp_from = Some(format!("Burnbox <{FROM}>"));
    })
    .await
}

fn alice() -> String {
    basic_auth(ALICE.0, ALICE.1)
}

/// A REST request with optional credentials: the status and JSON body.
async fn send(
    request: reqwest::RequestBuilder,
    authorization: Option<&str>,
) -> (StatusCode, Value) {
    let request = match authorization {
        Some(value) => request.header("authorization", value),
        None => request,
    };
    json_of(request.send().await.expect("request")).await
}

/// The recipients a receipt lists, under both of its names.
fn listed_recipients(receipt: &Value) -> (Value, Value) {
    (receipt["recipient"].clone(), receipt["recipients"].clone())
}

async fn customer_shares_emails_the_link_and_receipts_mask_the_address(backend: Backend) {
    let mut smtp = TestSmtp::start();
    let mut server = server_with_smtp(backend, Some(smtp.url())).await;
    let value = "the launch code is 0451-orange";
    let passphrase = "correct horse battery";
    let address = "carol.recipient@example.com";
    let masked = json!(["ca***@e***.com"]);

    let (status, shared) = send(
        server.http.post(server.api("/share")).form(&[
            ("secret", value),
            ("passphrase", passphrase),
            ("ttl", "3600"),
            ("recipient", address),
        ]),
        Some(&alice()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{shared}");
    assert_eq!(
        listed_recipients(&shared),
        (masked.clone(), masked.clone()),
        "{shared}"
    );
    let secret_key = text_field(&shared, "secret_key");
    let metadata_key = text_field(&shared, "metadata_key");

    let mail = smtp.next_mail().await;
    assert_eq!(mail.to, [address]);
    assert_eq!(mail.from, FROM);
    let link = format!("https://burnbox.test/secret/{secret_key}");
    assert!(mail.data.contains(&link), "{}", mail.data);
    assert!(
        mail.data.contains(&format!("To: {address}")),
        "{}",
        mail.data
    );
    assert!(mail.data.contains("Subject: A secret was shared with you"));
    assert!(
        mail.data.contains("Content-Transfer-Encoding: 7bit"),
        "{}",
        mail.data
    );
    assert!(
        mail.data.contains("protected by a passphrase"),
        "{}",
        mail.data
    );
    for hidden in [value, passphrase, metadata_key.as_str()] {
        assert!(!mail.data.contains(hidden), "{hidden} in {}", mail.data);
    }
    smtp.assert_no_mail();

    // Later reads of the receipt list the masked address too, as does the recent list.
    let (status, receipt) = send(
        server
            .http
            .get(server.api(&format!("/private/{metadata_key}"))),
        Some(&alice()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{receipt}");
    assert_eq!(
        listed_recipients(&receipt),
        (masked.clone(), masked.clone())
    );
    let (status, recent) = send(
        server.http.get(server.api("/private/recent")),
        Some(&alice()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{recent}");
    assert_eq!(recent[0]["metadata_key"], json!(metadata_key), "{recent}");
    assert_eq!(
        listed_recipients(&recent[0]),
        (masked.clone(), masked.clone())
    );

    // The emailed link reveals the secret, with the passphrase given another way.
    let (status, revealed) = send(
        server
            .http
            .post(server.api(&format!("/secret/{secret_key}")))
            .form(&[("passphrase", passphrase)]),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{revealed}");
    assert_eq!(revealed["value"], json!(value));
    let (_, receipt) = send(
        server
            .http
            .get(server.api(&format!("/private/{metadata_key}"))),
        Some(&alice()),
    )
    .await;
    assert_eq!(receipt["state"], json!("received"));
    assert_eq!(receipt["recipient"], masked);

    // The unmasked address is stored nowhere.
    if let Some(redis) = server.backend.test_redis() {
        for (key, bytes) in redis.dump().await {
            assert!(!burnbox_tests::bytes_contain(&bytes, address), "{key}");
            assert!(!burnbox_tests::bytes_contain(&bytes, "carol"), "{key}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recipients_are_refused_with_the_reason() {
    let mut smtp = TestSmtp::start();
    let server = server_with_smtp(Backend::Memory, Some(smtp.url())).await;
    let share = |form: Value, authorization: Option<String>| {
        let request = server.http.post(server.api("/share")).json(&form);
        async move { send(request, authorization.as_deref()).await }
    };

    let anonymous = share(json!({"secret": "s", "recipient": "bob@example.com"}), None).await;
    assert_rest_error(&anonymous, ErrorKind::Validation, Some("recipient"));
    assert_eq!(anonymous.1["message"], json!(ACCOUNT_REQUIRED));

    let two = share(
        json!({"secret": "s", "recipient": ["bob@example.com", "carol@example.com"]}),
        Some(alice()),
    )
    .await;
    assert_rest_error(&two, ErrorKind::Validation, Some("recipient"));
    assert!(
        text_field(&two.1, "message").contains("one recipient"),
        "{}",
        two.1
    );
    for bad in [
        "not an address",
        "bob@",
        "@example.com",
        "bob@example.com, carol@example.com",
    ] {
        let answer = share(json!({"secret": "s", "recipient": bad}), Some(alice())).await;
        assert_rest_error(&answer, ErrorKind::Validation, Some("recipient"));
        assert_eq!(answer.1["message"], json!(UNDELIVERABLE), "{bad}");
        assert!(
            !answer.1.to_string().contains(bad),
            "{bad} echoed: {}",
            answer.1
        );
    }
    smtp.assert_no_mail();

    // Empty values are no recipient at all (Onetime Secret's own page sends `"recipient":""`).
    for empty in [json!(""), json!([""]), json!([])] {
        let (status, shared) = share(json!({"secret": "s", "recipient": empty}), None).await;
        assert_eq!(status, StatusCode::OK, "{shared}");
        assert_eq!(shared["recipient"], json!([]), "{shared}");
    }
    smtp.assert_no_mail();

    // A server without SMTP refuses every recipient, even a customer's.
    let without = server_with_smtp(Backend::Memory, None).await;
    let answer = send(
        without
            .http
            .post(without.api("/share"))
            .form(&[("secret", "s"), ("recipient", "bob@example.com")]),
        Some(&alice()),
    )
    .await;
    assert_rest_error(&answer, ErrorKind::Validation, Some("recipient"));
    assert!(
        text_field(&answer.1, "message").contains("not configured"),
        "{}",
        answer.1
    );
}

/// The recent list of alice on `server`.
async fn alices_recent(server: &TestServer) -> Vec<Value> {
    let (status, recent) = send(
        server.http.get(server.api("/private/recent")),
        Some(&alice()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{recent}");
    recent.as_array().expect("a list").clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_that_cannot_be_emailed_burns_its_secret() {
    let logs = captured_logs();
    // A port nothing listens on: bound, then closed again.
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address")
    };
    let mut smtp = TestSmtp::start();
    let down = server_with_smtp(Backend::Memory, Some(format!("smtp://{closed}"))).await;
    let refusing = server_with_smtp(Backend::Memory, Some(smtp.url())).await;

    for (server, address) in [(&down, "dora.down@example.net"), (&refusing, REFUSED)] {
        let answer = send(
            server
                .http
                .post(server.api("/share"))
                .form(&[("secret", "never to be seen"), ("recipient", address)]),
            Some(&alice()),
        )
        .await;
        assert_rest_error(&answer, ErrorKind::Unavailable, None);
        assert_eq!(answer.1["message"], json!(NOT_EMAILED));

        // The secret was stored, then burned: its receipt says so, and nothing can be revealed.
        let recent = alices_recent(server).await;
        assert_eq!(recent.len(), 1, "{recent:?}");
        assert_eq!(recent[0]["state"], json!("burned"), "{recent:?}");
        assert!(recent[0].get("secret_key").is_none());
        let metadata_key = text_field(&recent[0], "metadata_key");
        let (_, receipt) = send(
            server
                .http
                .get(server.api(&format!("/private/{metadata_key}"))),
            Some(&alice()),
        )
        .await;
        assert_eq!(receipt["state"], json!("burned"), "{receipt}");
        assert!(receipt.get("secret_key").is_none(), "{receipt}");
    }
    smtp.assert_no_mail();

    // The cause is logged as a warning, without the address or any link.
    let text = logs.text();
    let warnings: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("could not be emailed"))
        .collect();
    assert_eq!(warnings.len(), 2, "{text}");
    assert!(
        warnings.iter().all(|line| line.contains("WARN")),
        "{warnings:?}"
    );
    assert!(warnings[1].contains("550"), "{warnings:?}");
    for line in text.lines().filter(|line| line.contains("burnbox")) {
        for hidden in [
            "dora.down",
            REFUSED,
            "nobody.home",
            "https://burnbox.test/secret/",
        ] {
            assert!(!line.contains(hidden), "{hidden} logged: {line}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_shares_email_the_link_too() {
    let mut smtp = TestSmtp::start();
    let server = server_with_smtp(Backend::Memory, Some(smtp.url())).await;
    let mut client = server.grpc().await;
    let address = "dave@mail.example.org";
    let request = pb::ShareSecretRequest {
        recipient: vec![String::new(), address.to_owned()],
        ..grpc_share_request("over gRPC")
    };
    let receipt = client
        .share_secret(grpc_request(request.clone(), Some(&alice())))
        .await
        .expect("share")
        .into_inner();
    assert_eq!(receipt.recipient, ["da***@m***.org"]);
    let secret_key = receipt.secret_key.expect("secret key");
    let mail = smtp.next_mail().await;
    assert_eq!(mail.to, [address]);
    assert!(
        mail.data
            .contains(&format!("https://burnbox.test/secret/{secret_key}")),
        "{}",
        mail.data
    );
    assert!(mail.data.contains("No passphrase is needed"));
    assert!(!mail.data.contains("over gRPC"));
    let read = client
        .get_receipt(grpc_request(
            pb::GetReceiptRequest {
                metadata_key: receipt.metadata_key,
            },
            Some(&alice()),
        ))
        .await
        .expect("receipt")
        .into_inner();
    assert_eq!(read.recipient, ["da***@m***.org"]);

    let status = client
        .share_secret(grpc_request(request, None))
        .await
        .expect_err("anonymous");
    assert_grpc_error(&status, ErrorKind::Validation, Some("recipient"));
    assert_eq!(status.message(), ACCOUNT_REQUIRED);
    let two = pb::ShareSecretRequest {
        recipient: vec![address.to_owned(), "erin@example.org".to_owned()],
        ..grpc_share_request("twice")
    };
    let status = client
        .share_secret(grpc_request(two, Some(&alice())))
        .await
        .expect_err("two addresses");
    assert_grpc_error(&status, ErrorKind::Validation, Some("recipient"));
    smtp.assert_no_mail();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_settings_are_checked_at_startup() {
    let with = |url: &str, from: Option<&str>| {
        let mut config = Config::for_tests();
        config.smtp_url = Some(url.to_owned());
        config.smtp_from = from.map(str::to_owned);
        config
    };
    for (config, setting) in [
        (with("smtp://127.0.0.1:2525", None), "BURNBOX_SMTP_FROM"),
        (
            with("smtp://127.0.0.1:2525", Some("  ")),
            "BURNBOX_SMTP_FROM",
        ),
        (
            with("smtp://127.0.0.1:2525", Some("not an address")),
            "BURNBOX_SMTP_FROM",
        ),
        (
            with("smtp://user:hunter2@127.0.0.1:2525?tls=never", Some(FROM)),
            "BURNBOX_SMTP_URL",
        ),
    ] {
        match Application::build(config).await {
            Err(StartupError::Config(err)) => {
                assert_eq!(err.setting, setting, "{err}");
                assert!(!err.to_string().contains("hunter2"), "{err}");
            }
            Err(other) => panic!("not a configuration error: {other}"),
            Ok(_) => panic!("started with a bad {setting}"),
        }
    }
    // The password never shows in the configuration's debug output either.
    let config = with("smtp://user:hunter2@127.0.0.1:2525", Some(FROM));
    assert!(!format!("{config:?}").contains("hunter2"));
}
