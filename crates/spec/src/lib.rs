//! burnbox's wire contracts, and nothing else: the Rust code tonic/prost generate from
//! `proto/burnbox/v1/secrets.proto`, the encoded file descriptor set that gRPC reflection serves,
//! and the checked-in OpenAPI document of the REST API.

/// Generated messages, the `Secrets` server trait and the `SecretsClient`.
#[allow(missing_docs, clippy::wildcard_enum_match_arm)]
pub mod v1 {
    tonic::include_proto!("burnbox.v1");
}

/// The encoded `FileDescriptorSet` of the burnbox protos, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/burnbox_descriptor.bin"));

/// The REST contract as checked in (`openapi/burnbox.yaml`).
pub const OPENAPI_YAML: &str = include_str!("../../../openapi/burnbox.yaml");

/// The proto source, so tests can compare the two contracts.
pub const SECRETS_PROTO: &str = include_str!("../../../proto/burnbox/v1/secrets.proto");
