//! Metric series are a closed set: callers inventing gRPC methods and REST paths (each name
//! unique and 4 KB long) land in one `unknown` series, so `/metrics` and the server's memory stay
//! flat however many names arrive. (Alone in its test binary: it reads the process's RSS.)

use burnbox_server::observe::{UNKNOWN_OPERATION, served_grpc_method};
use burnbox_tests::{Backend, TestServer};
use futures_util::{StreamExt, stream};
use prost::Message;
use reqwest::StatusCode;
use tonic::codegen::http::uri::PathAndQuery;

const CONCURRENCY: usize = 16;

/// The label sets on `/metrics` (sample lines, comments skipped) and the text's size.
async fn series(server: &TestServer) -> (usize, usize) {
    let text = server.metrics_text().await;
    let samples = text.lines().filter(|line| !line.starts_with('#')).count();
    (samples, text.len())
}

/// This process's resident set in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

/// A unique name of about 4 KB.
fn invented_name(round: &str, index: usize) -> String {
    format!("{round}-{index}-{}", "n".repeat(4000))
}

/// `count` unary gRPC calls to invented methods (half under no service we serve, half as
/// unknown methods of ours) and `count` REST requests to invented paths.
async fn flood(server: &TestServer, round: &str, count: usize) {
    let channel = server.grpc_channel().await;
    stream::iter(0..count)
        .for_each_concurrent(CONCURRENCY, |index| {
            let channel = channel.clone();
            async move {
                let name = invented_name(round, index);
                let path = if index % 2 == 0 {
                    format!("/x/{name}")
                } else {
                    format!("/burnbox.v1.Secrets/{name}")
                };
                let mut client = tonic::client::Grpc::new(channel);
                client.ready().await.expect("channel ready");
                let status = client
                    .unary::<_, (), _>(
                        tonic::Request::new(()),
                        PathAndQuery::try_from(path).expect("path"),
                        tonic_prost::ProstCodec::<(), ()>::default(),
                    )
                    .await
                    .expect_err("no such method");
                assert_eq!(status.code(), tonic::Code::Unimplemented);
            }
        })
        .await;
    stream::iter(0..count)
        .for_each_concurrent(CONCURRENCY, |index| async move {
            let url = format!(
                "{}/api/v1/{}",
                server.http_base,
                invented_name(round, index)
            );
            let response = server.http.post(url).send().await.expect("REST answers");
            assert_eq!(response.status(), StatusCode::NOT_FOUND);
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invented_methods_and_paths_leave_series_and_memory_flat() {
    let server = TestServer::start(Backend::Memory).await;
    // A first round creates whatever series unknown requests get (and warms the allocator).
    flood(&server, "warm", 1_000).await;
    let (series_before, bytes_before) = series(&server).await;
    let rss_before = rss_kib();

    flood(&server, "flood", 10_000).await;
    let (series_after, bytes_after) = series(&server).await;
    let rss_after = rss_kib();

    eprintln!(
        "series {series_before} → {series_after}, /metrics {bytes_before} → {bytes_after} B, RSS {rss_before} → {rss_after} KiB"
    );
    assert_eq!(
        series_after, series_before,
        "10,000 invented names added metric series"
    );
    // The counters' digits may grow a little; a leaked 4 KB label would add megabytes.
    assert!(
        bytes_after < bytes_before + 1024,
        "/metrics grew from {bytes_before} to {bytes_after} bytes"
    );
    let grown_mib = rss_after.saturating_sub(rss_before) / 1024;
    assert!(
        grown_mib < 64,
        "RSS grew {grown_mib} MiB ({rss_before} → {rss_after} KiB) under 20,000 invented names"
    );

    let text = server.metrics_text().await;
    for transport in ["grpc", "rest"] {
        let unknown = format!(
            r#"burnbox_request_duration_seconds_count{{operation="{UNKNOWN_OPERATION}",transport="{transport}"}} 11000"#
        );
        assert!(text.contains(&unknown), "no {unknown} in\n{text}");
    }
}

#[test]
fn every_method_of_the_proto_has_its_own_label() {
    let descriptors = prost_types::FileDescriptorSet::decode(burnbox_spec::FILE_DESCRIPTOR_SET)
        .expect("descriptor set");
    let mut served = Vec::new();
    for file in &descriptors.file {
        for service in &file.service {
            let full_name = format!("{}.{}", file.package(), service.name());
            for method in &service.method {
                served.push((full_name.clone(), method.name().to_owned()));
            }
        }
    }
    assert!(!served.is_empty());
    for (service, method) in served {
        assert!(
            served_grpc_method(&service, &method).is_some(),
            "{service}/{method} is served but has no metrics label (operations table or \
             observe's infrastructure methods)"
        );
    }
}
