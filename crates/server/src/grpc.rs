//! The gRPC adapter: `burnbox.v1.Secrets` with tonic. Each method turns its message into core
//! input, calls the same `Secrets` method as the REST route and turns the result into the reply;
//! errors go through the same wire-error table.

use std::sync::Arc;

use burnbox_core::{
    BurnInput, Caller, Error, ErrorKind, GenerateInput, RevealInput, Secrets, ShareInput,
};
use burnbox_spec::v1::{self as pb, secrets_server};
use tonic::{Request, Response, Status};

use crate::answers;
use crate::gate::{Gate, Origin, join_header_lines};
use crate::operations::Operation;
use crate::wire_error::{to_grpc_status, to_grpc_status_with_code};

/// Renders tonic's own refusals through the error table. tonic refuses some requests itself,
/// before any handler runs, with a bare status: a message over the cap (`OUT_OF_RANGE`, or
/// `RESOURCE_EXHAUSTED` once decompressed), a body it
/// cannot decode or decompress (`INTERNAL`: malformed protobuf, a string that is not UTF-8, a truncated or
/// missing message, a compressed flag without `grpc-encoding`), an unsupported `grpc-encoding`
/// or an unknown method (`UNIMPLEMENTED`). All are the caller's doing: they get what REST answers
/// a malformed body or an unknown path, with an `error_id`. Errors of our own handlers were
/// reported on their way out (their type is recorded) and pass unchanged.
pub fn render_protocol_refusal(
    response: http::Response<tonic::body::Body>,
    max_message_bytes: usize,
) -> http::Response<tonic::body::Body> {
    // A success carries no grpc-status in its headers (it comes in the trailers).
    if !response.headers().contains_key("grpc-status")
        || crate::request_scope::error_type_recorded()
    {
        return response;
    }
    let Some(refusal) = tonic::Status::from_header_map(response.headers()) else {
        return response;
    };
    let code = refusal.code();
    let unsupported_encoding = response.headers().contains_key(ACCEPT_ENCODING);
    let (error, code) = if matches!(
        code,
        // The cap on the message as sent, and on a gzip message once decompressed.
        tonic::Code::OutOfRange | tonic::Code::ResourceExhausted
    ) {
        let message = format!(
            "the request message is larger than this server accepts ({max_message_bytes} bytes)"
        );
        (Error::bad_request(message), None)
    } else if code == tonic::Code::Internal {
        let message = format!(
            "the request message could not be decoded: {}",
            refusal.message()
        );
        (Error::bad_request(message), None)
    } else if code == tonic::Code::Unimplemented && unsupported_encoding {
        // The gRPC protocol asks for UNIMPLEMENTED here, so the code stays; the details are ours.
        let message = format!(
            "{}; send the message uncompressed or with grpc-encoding gzip",
            refusal.message()
        );
        (Error::bad_request(message), Some(code))
    } else if code == tonic::Code::Unimplemented {
        (
            Error::new(ErrorKind::NotFound, "no such method"),
            Some(code),
        )
    } else {
        return response;
    };
    let accept_encoding = response.headers().get(ACCEPT_ENCODING).cloned();
    let mut rendered = match code {
        Some(code) => to_grpc_status_with_code(&error, code),
        None => to_grpc_status(&error),
    }
    .into_http();
    if let Some(accept_encoding) = accept_encoding {
        rendered
            .headers_mut()
            .insert(ACCEPT_ENCODING, accept_encoding);
    }
    rendered
}

/// The header in which a gRPC server names the request compressions it accepts.
const ACCEPT_ENCODING: &str = "grpc-accept-encoding";

/// The gRPC service, sharing the one handler with REST.
pub struct GrpcSecrets {
    secrets: Arc<Secrets>,
    gate: Arc<Gate>,
}

impl GrpcSecrets {
    /// A service over `secrets`, admitting callers through `gate`.
    pub fn new(secrets: Arc<Secrets>, gate: Arc<Gate>) -> Self {
        Self { secrets, gate }
    }

    /// The tonic server for this service.
    /// Requests may be gzip-compressed (decompressed up to the same message cap).
    pub fn into_server(self) -> secrets_server::SecretsServer<Self> {
        secrets_server::SecretsServer::new(self)
            .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
    }

    /// Admits the caller of `request` through the gate, as REST does: credentials from the
    /// `authorization` metadata (the same value as REST's header), the peer address and
    /// `x-forwarded-for`.
    async fn admit<T>(&self, request: &Request<T>, operation: Operation) -> Result<Caller, Status> {
        let metadata = |name| {
            request
                .metadata()
                .get(name)
                // A value that is not text is kept (as empty) so it is refused, never ignored.
                .map(|value: &tonic::metadata::MetadataValue<_>| {
                    value.to_str().map(str::to_owned).unwrap_or_default()
                })
        };
        let origin = Origin {
            authorization: metadata("authorization"),
            peer: request.remote_addr().map(|addr| addr.ip()),
            forwarded_for: join_header_lines(
                request
                    .metadata()
                    .get_all("x-forwarded-for")
                    .iter()
                    .map(tonic::metadata::MetadataValue::as_encoded_bytes),
            ),
        };
        self.gate
            .admit(&origin, operation)
            .await
            .map_err(|err| to_grpc_status(&err))
    }
}

type GrpcResult<T> = Result<Response<T>, Status>;

fn reply<T, U>(result: Result<T, Error>, to_wire: fn(T) -> U) -> GrpcResult<U> {
    result
        .map(|value| Response::new(to_wire(value)))
        .map_err(|err| to_grpc_status(&err))
}

#[tonic::async_trait]
impl secrets_server::Secrets for GrpcSecrets {
    async fn status(&self, _request: Request<pb::StatusRequest>) -> GrpcResult<pb::StatusResponse> {
        Ok(Response::new(pb::StatusResponse {
            status: self.secrets.status().to_owned(),
            locale: self.secrets.locale().to_owned(),
        }))
    }

    async fn share_secret(
        &self,
        request: Request<pb::ShareSecretRequest>,
    ) -> GrpcResult<pb::Receipt> {
        let caller = self.admit(&request, Operation::Share).await?;
        let message = request.into_inner();
        let input = ShareInput {
            secret: Some(message.secret),
            passphrase: message.passphrase,
            ttl: message.ttl,
            recipient: message.recipient,
            share_domain: message.share_domain,
        };
        reply(
            self.secrets.share(&caller, input).await,
            answers::grpc::receipt,
        )
    }

    async fn generate_secret(
        &self,
        request: Request<pb::GenerateSecretRequest>,
    ) -> GrpcResult<pb::Receipt> {
        let caller = self.admit(&request, Operation::Generate).await?;
        let message = request.into_inner();
        let input = GenerateInput {
            passphrase: message.passphrase,
            ttl: message.ttl,
            length: message.length,
        };
        reply(
            self.secrets.generate(&caller, input).await,
            answers::grpc::generated,
        )
    }

    async fn reveal_secret(
        &self,
        request: Request<pb::RevealSecretRequest>,
    ) -> GrpcResult<pb::RevealSecretResponse> {
        let caller = self.admit(&request, Operation::Reveal).await?;
        let message = request.into_inner();
        let input = RevealInput {
            key: message.key,
            passphrase: message.passphrase,
        };
        reply(
            self.secrets.reveal(&caller, input).await,
            answers::grpc::revealed,
        )
    }

    async fn get_secret_status(
        &self,
        request: Request<pb::GetSecretStatusRequest>,
    ) -> GrpcResult<pb::SecretStatus> {
        let caller = self.admit(&request, Operation::SecretStatus).await?;
        let message = request.into_inner();
        reply(
            self.secrets.secret_status(&caller, &message.key).await,
            answers::grpc::secret_status,
        )
    }

    async fn get_receipt(
        &self,
        request: Request<pb::GetReceiptRequest>,
    ) -> GrpcResult<pb::Receipt> {
        let caller = self.admit(&request, Operation::Receipt).await?;
        let message = request.into_inner();
        reply(
            self.secrets.receipt(&caller, &message.metadata_key).await,
            answers::grpc::receipt,
        )
    }

    async fn burn_secret(
        &self,
        request: Request<pb::BurnSecretRequest>,
    ) -> GrpcResult<pb::BurnSecretResponse> {
        let caller = self.admit(&request, Operation::Burn).await?;
        let message = request.into_inner();
        let input = BurnInput {
            metadata_key: message.metadata_key,
            passphrase: message.passphrase,
        };
        reply(
            self.secrets.burn(&caller, input).await,
            answers::grpc::burned,
        )
    }

    async fn list_recent_receipts(
        &self,
        request: Request<pb::ListRecentReceiptsRequest>,
    ) -> GrpcResult<pb::ListRecentReceiptsResponse> {
        let caller = self.admit(&request, Operation::Recent).await?;
        reply(self.secrets.recent(&caller).await, answers::grpc::recent)
    }
}
