//! Contract drift: the OpenAPI document the server serves is the checked-in
//! `openapi/burnbox.yaml` (run with `UPDATE_OPENAPI=1` to rewrite it after an intended change),
//! and the proto and the OpenAPI document name the same operations and fields.

use std::collections::BTreeSet;

use burnbox_server::operations::{OPERATIONS, Operation};
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

/// Each operation served on both transports (its gRPC method and REST operation id come from
/// the operations table) with the schemas of its bodies.
struct Pairing {
    operation: Operation,
    request: (&'static str, Option<&'static str>),
    response: (&'static str, &'static str),
}

/// REST carries some request fields outside the body: the keys are in the path.
const PATH_FIELDS: &[&str] = &["key", "metadata_key"];

const PAIRINGS: &[Pairing] = &[
    Pairing {
        operation: Operation::Status,
        request: ("StatusRequest", None),
        response: ("StatusResponse", "StatusBody"),
    },
    Pairing {
        operation: Operation::Share,
        request: ("ShareSecretRequest", Some("ShareForm")),
        response: ("Receipt", "ReceiptBody"),
    },
    Pairing {
        operation: Operation::Generate,
        request: ("GenerateSecretRequest", Some("GenerateForm")),
        response: ("Receipt", "ReceiptBody"),
    },
    Pairing {
        operation: Operation::Reveal,
        request: ("RevealSecretRequest", Some("RevealForm")),
        response: ("RevealSecretResponse", "RevealBody"),
    },
    Pairing {
        operation: Operation::SecretStatus,
        request: ("GetSecretStatusRequest", None),
        response: ("SecretStatus", "SecretStatusBody"),
    },
    Pairing {
        operation: Operation::Receipt,
        request: ("GetReceiptRequest", None),
        response: ("Receipt", "ReceiptBody"),
    },
    Pairing {
        operation: Operation::Burn,
        request: ("BurnSecretRequest", Some("BurnForm")),
        response: ("BurnSecretResponse", "BurnBody"),
    },
    // REST answers recent with a bare array of receipts (as Onetime Secret does); gRPC wraps it.
    Pairing {
        operation: Operation::Recent,
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
    let in_table: BTreeSet<_> = OPERATIONS
        .iter()
        .filter_map(|row| row.grpc_method.map(str::to_owned))
        .collect();
    assert_eq!(rpcs, in_table, "every rpc is in the operations table");
    let paired: BTreeSet<_> = PAIRINGS
        .iter()
        .filter_map(|pairing| pairing.operation.row().grpc_method.map(str::to_owned))
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
    // Each row's documented route serves the operation under the row's name (authcheck exists
    // for Onetime Secret clients only: a gRPC caller learns whether its credentials work from
    // any call).
    for row in &OPERATIONS {
        let (method, path) = row.rest;
        assert_eq!(
            spec["paths"][path][method.to_lowercase()]["operationId"].as_str(),
            Some(row.name),
            "{method} {path}"
        );
    }
    for pairing in PAIRINGS {
        let rpc = pairing.operation.row().grpc_method.expect("a gRPC method");
        let (proto_request, rest_request) = pairing.request;
        let expected: BTreeSet<String> = rest_request
            .map(|schema| openapi_fields(&spec, schema))
            .unwrap_or_default();
        assert_eq!(
            proto_fields(&descriptors, proto_request, PATH_FIELDS),
            expected,
            "{rpc} request"
        );
        let (proto_response, rest_response) = pairing.response;
        let mut rest_fields = openapi_fields(&spec, rest_response);
        rest_fields.retain(|field| !ONETIME_SECRET_SECOND_NAMES.contains(&field.as_str()));
        assert_eq!(
            proto_fields(&descriptors, proto_response, &[]),
            rest_fields,
            "{rpc} response"
        );
    }
    let in_table: BTreeSet<_> = OPERATIONS.iter().map(|row| row.name.to_owned()).collect();
    assert_eq!(
        operation_ids, in_table,
        "REST serves the table's operations"
    );
}

/// The limits the OpenAPI document states are the handler's: the literals poem-openapi needs
/// cannot drift from core's constants.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documented_limits_are_the_handlers() {
    use burnbox_core::{DEFAULT_PASSWORD_LENGTH, MAX_PASSPHRASE_CHARS, PASSWORD_LENGTHS};

    let server = TestServer::start(Backend::Memory).await;
    let spec: serde_json::Value =
        serde_json::from_str(&served(&server, "/openapi.json").await).expect("JSON spec");
    let field = |schema: &str, name: &str| {
        spec["components"]["schemas"][schema]["properties"][name].clone()
    };
    for schema in ["ShareForm", "GenerateForm"] {
        assert_eq!(
            field(schema, "passphrase")["maxLength"].as_u64(),
            Some(MAX_PASSPHRASE_CHARS as u64),
            "{schema}.passphrase"
        );
    }
    let length = field("GenerateForm", "length");
    assert_eq!(
        length["minimum"].as_f64(),
        Some(*PASSWORD_LENGTHS.start() as f64)
    );
    assert_eq!(
        length["maximum"].as_f64(),
        Some(*PASSWORD_LENGTHS.end() as f64)
    );
    let description = length["description"].as_str().expect("described");
    assert!(
        description.contains(&format!("(default {DEFAULT_PASSWORD_LENGTH})")),
        "{description}"
    );
}
