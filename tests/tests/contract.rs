//! Contract drift: the OpenAPI document the server serves is the checked-in
//! `openapi/burnbox.yaml` (run with `UPDATE_OPENAPI=1` to rewrite it after an intended change),
//! and the proto and the OpenAPI document name the same operations and fields.

use std::collections::BTreeSet;

use burnbox_tests::{Backend, TestServer};
use prost::Message;
use prost_types::FileDescriptorSet;

async fn served(server: &TestServer, path: &str) -> String {
    let response = server
        .http
        .get(server.api(path))
        .send()
        .await
        .expect("spec request");
    assert_eq!(response.status(), reqwest::StatusCode::OK, "{path}");
    response.text().await.expect("spec body")
}

#[tokio::test]
async fn served_openapi_equals_the_checked_in_file() {
    let server = TestServer::start(Backend::Memory).await;
    let served = served(&server, "/openapi.yaml").await;
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi/burnbox.yaml");
    if std::env::var_os("UPDATE_OPENAPI").is_some_and(|value| value == "1") {
        std::fs::write(path, &served).expect("rewrite openapi/burnbox.yaml");
        eprintln!("rewrote {path}");
    }
    let checked_in = std::fs::read_to_string(path).expect("openapi/burnbox.yaml");
    assert!(
        served == checked_in,
        "the served OpenAPI document differs from openapi/burnbox.yaml; if the change is intended, \
         run `UPDATE_OPENAPI=1 cargo test -p burnbox-tests --test contract` and commit the file"
    );
}

/// Each gRPC method with the REST operation it mirrors and the schemas of their bodies.
struct Pairing {
    rpc: &'static str,
    operation_id: &'static str,
    request: (&'static str, Option<&'static str>),
    response: (&'static str, &'static str),
}

/// REST operations without a gRPC twin: authcheck exists for Onetime Secret clients; a gRPC
/// caller learns whether its credentials work from any call.
const REST_ONLY: &[&str] = &["authcheck"];

/// REST carries some request fields outside the body: the keys are in the path.
const PATH_FIELDS: &[&str] = &["key", "metadata_key"];

const PAIRINGS: &[Pairing] = &[
    Pairing {
        rpc: "Status",
        operation_id: "status",
        request: ("StatusRequest", None),
        response: ("StatusResponse", "StatusBody"),
    },
    Pairing {
        rpc: "ShareSecret",
        operation_id: "share",
        request: ("ShareSecretRequest", Some("ShareForm")),
        response: ("Receipt", "ReceiptBody"),
    },
    Pairing {
        rpc: "GenerateSecret",
        operation_id: "generate",
        request: ("GenerateSecretRequest", Some("GenerateForm")),
        response: ("Receipt", "ReceiptBody"),
    },
    Pairing {
        rpc: "RevealSecret",
        operation_id: "reveal",
        request: ("RevealSecretRequest", Some("RevealForm")),
        response: ("RevealSecretResponse", "RevealBody"),
    },
    Pairing {
        rpc: "GetSecretStatus",
        operation_id: "secret_status",
        request: ("GetSecretStatusRequest", None),
        response: ("SecretStatus", "SecretStatusBody"),
    },
    Pairing {
        rpc: "GetReceipt",
        operation_id: "receipt",
        request: ("GetReceiptRequest", None),
        response: ("Receipt", "ReceiptBody"),
    },
    Pairing {
        rpc: "BurnSecret",
        operation_id: "burn",
        request: ("BurnSecretRequest", Some("BurnForm")),
        response: ("BurnSecretResponse", "BurnBody"),
    },
    // REST answers recent with a bare array of receipts (as Onetime Secret does); gRPC wraps it.
    Pairing {
        rpc: "ListRecentReceipts",
        operation_id: "recent",
        request: ("ListRecentReceiptsRequest", None),
        response: ("Receipt", "ReceiptBody"),
    },
];

/// The fields of proto `message`, less those in `excluded`.
/// The second names Onetime Secret's v1 receipts carry beside the first (v0.24's beside
/// v0.23's), on REST only: gRPC carries each field once, under the name in the first column.
const ONETIME_SECRET_SECOND_NAMES: &[&str] = &[
    "identifier",        // metadata_key
    "secret_identifier", // secret_key
    "has_passphrase",    // passphrase_required
    "recipients",        // recipient
    "receipt_ttl",       // metadata_ttl
    "metadata_url",      // receipt_url
    "secret_value",      // value
];

fn proto_fields(
    descriptors: &FileDescriptorSet,
    message: &str,
    excluded: &[&str],
) -> BTreeSet<String> {
    descriptors
        .file
        .iter()
        .flat_map(|file| &file.message_type)
        .find(|candidate| candidate.name() == message)
        .unwrap_or_else(|| panic!("no proto message {message}"))
        .field
        .iter()
        .map(|field| field.name().to_owned())
        .filter(|name| !excluded.contains(&name.as_str()))
        .collect()
}

fn openapi_fields(spec: &serde_json::Value, schema: &str) -> BTreeSet<String> {
    spec["components"]["schemas"][schema]["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("no OpenAPI schema {schema}"))
        .keys()
        .cloned()
        .collect()
}

#[tokio::test]
async fn proto_and_openapi_name_the_same_operations_and_fields() {
    let server = TestServer::start(Backend::Memory).await;
    let spec: serde_json::Value =
        serde_json::from_str(&served(&server, "/openapi.json").await).expect("JSON spec");
    let descriptors =
        FileDescriptorSet::decode(burnbox_spec::FILE_DESCRIPTOR_SET).expect("descriptor set");

    let service = descriptors
        .file
        .iter()
        .flat_map(|file| &file.service)
        .find(|service| service.name() == "Secrets")
        .expect("service burnbox.v1.Secrets");
    let rpcs: BTreeSet<_> = service
        .method
        .iter()
        .map(|method| method.name().to_owned())
        .collect();
    let paired: BTreeSet<_> = PAIRINGS
        .iter()
        .map(|pairing| pairing.rpc.to_owned())
        .collect();
    assert_eq!(rpcs, paired, "every rpc is paired with a REST operation");
    assert_eq!(
        proto_fields(&descriptors, "ListRecentReceiptsResponse", &[]),
        BTreeSet::from(["receipts".to_owned()])
    );

    let operation_ids: BTreeSet<String> = spec["paths"]
        .as_object()
        .expect("paths")
        .values()
        .flat_map(|item| item.as_object().expect("path item").values())
        .filter_map(|operation| operation["operationId"].as_str().map(str::to_owned))
        .collect();
    for pairing in PAIRINGS {
        assert!(
            operation_ids.contains(pairing.operation_id),
            "REST lacks {}",
            pairing.operation_id
        );
        let (proto_request, rest_request) = pairing.request;
        let expected: BTreeSet<String> = rest_request
            .map(|schema| openapi_fields(&spec, schema))
            .unwrap_or_default();
        assert_eq!(
            proto_fields(&descriptors, proto_request, PATH_FIELDS),
            expected,
            "{} request",
            pairing.rpc
        );
        let (proto_response, rest_response) = pairing.response;
        let mut rest_fields = openapi_fields(&spec, rest_response);
        rest_fields.retain(|field| !ONETIME_SECRET_SECOND_NAMES.contains(&field.as_str()));
        assert_eq!(
            proto_fields(&descriptors, proto_response, &[]),
            rest_fields,
            "{} response",
            pairing.rpc
        );
    }
    let rest_operations: BTreeSet<_> = PAIRINGS
        .iter()
        .map(|pairing| pairing.operation_id)
        .chain(REST_ONLY.iter().copied())
        .map(str::to_owned)
        .collect();
    let extra: Vec<_> = operation_ids.difference(&rest_operations).collect();
    assert!(
        extra.is_empty(),
        "REST operations without a gRPC twin: {extra:?}"
    );
}
