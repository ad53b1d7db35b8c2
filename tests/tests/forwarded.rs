//! Rate limits behind a trusted proxy count the client the proxy saw, whatever the caller
//! writes into `X-Forwarded-For`: every header line is read, hops with ports parse, and a hop
//! that is not an address ends the walk (the caller is then counted as the proxy). Over REST and
//! gRPC, against a real server whose only trusted proxy is the loopback test client.

use burnbox_tests::{Backend, TestServer, grpc_share_request};
use reqwest::StatusCode;

const LIMIT: u32 = 3;
const ATTEMPTS: usize = 5;

/// What a proxy in front of burnbox would pass on for the `attempt`th request, in which the
/// caller changes its own leftmost hop every time.
type Lines = fn(usize) -> Vec<String>;

const BYPASSES: [(&str, Lines); 4] = [
    ("a second header line", |attempt| {
        vec![format!("198.51.100.{attempt}"), "203.0.113.9".to_owned()]
    }),
    ("a hop with a port", |attempt| {
        vec![format!("198.51.100.{attempt}, 203.0.113.9:5555")]
    }),
    ("an IPv6 hop with a port", |attempt| {
        vec![format!("198.51.100.{attempt}, [2001:db8::1]:443")]
    }),
    ("an unknown hop", |attempt| {
        vec![format!("198.51.100.{attempt}, unknown")]
    }),
];

async fn limited_server() -> TestServer {
    TestServer::start_with(Backend::Memory, |config| {
        config.trusted_proxies = vec!["127.0.0.1/32".parse().expect("CIDR")];
        config.rate_limit_create = LIMIT;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_callers_cannot_choose_whom_they_count_against() {
    for (bypass, lines) in BYPASSES {
        let server = limited_server().await;
        let mut statuses = Vec::new();
        for attempt in 0..ATTEMPTS {
            let mut request = server
                .http
                .post(server.api("/share"))
                .form(&[("secret", "s")]);
            for line in lines(attempt) {
                request = request.header("x-forwarded-for", line);
            }
            statuses.push(request.send().await.expect("share").status());
        }
        let allowed = statuses
            .iter()
            .filter(|status| **status == StatusCode::OK)
            .count();
        let limited = statuses
            .iter()
            .filter(|status| **status == StatusCode::TOO_MANY_REQUESTS)
            .count();
        assert_eq!(
            (allowed, limited),
            (LIMIT as usize, ATTEMPTS - LIMIT as usize),
            "{bypass}: {statuses:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_callers_cannot_choose_whom_they_count_against() {
    for (bypass, lines) in BYPASSES {
        let server = limited_server().await;
        let mut client = server.grpc().await;
        let mut codes = Vec::new();
        for attempt in 0..ATTEMPTS {
            let mut request = tonic::Request::new(grpc_share_request("s"));
            for line in lines(attempt) {
                request
                    .metadata_mut()
                    .append("x-forwarded-for", line.parse().expect("ASCII"));
            }
            codes.push(match client.share_secret(request).await {
                Ok(_) => tonic::Code::Ok,
                Err(status) => status.code(),
            });
        }
        let expected: Vec<_> = (0..ATTEMPTS)
            .map(|attempt| {
                if attempt < LIMIT as usize {
                    tonic::Code::Ok
                } else {
                    tonic::Code::ResourceExhausted
                }
            })
            .collect();
        assert_eq!(codes, expected, "{bypass}");
    }
}
