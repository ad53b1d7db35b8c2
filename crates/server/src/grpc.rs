//! The gRPC adapter: `burnbox.v1.Secrets` with tonic. Each method turns its message into core
//! input, calls the same `Secrets` method as the REST route and turns the result into the reply;
//! errors go through the same wire-error table.

use std::sync::Arc;

use burnbox_core::{
    BurnInput, Burned, Caller, Error, ErrorKind, GenerateInput, Generated, Receipt, RevealInput,
    Revealed, Secrets, ShareInput,
};
use burnbox_spec::v1::{self as pb, secrets_server};
use tonic::{Request, Response, Status};

use crate::gate::{Access, ActionClass, Gate, Origin};
use crate::wire_error::to_grpc_status;

/// Renders tonic's refusal of an over-cap message through the error table. tonic refuses such a
/// message while decoding, before any handler runs, with a bare `OUT_OF_RANGE`; no row of the
/// table uses that code, so it can only be that refusal. The caller gets what REST's over-cap
/// body gets: `BadRequest` with the limit named and an `error_id`.
pub fn render_oversize_refusal(
    response: http::Response<tonic::body::Body>,
    max_message_bytes: usize,
) -> http::Response<tonic::body::Body> {
    // OUT_OF_RANGE is code 11 (google.rpc.Code); compared as sent, without parsing every reply.
    const OUT_OF_RANGE: &[u8] = b"11";
    let refused = response
        .headers()
        .get("grpc-status")
        .is_some_and(|code| code.as_bytes() == OUT_OF_RANGE);
    if !refused {
        return response;
    }
    let error = Error::new(
        ErrorKind::BadRequest,
        format!(
            "the request message is larger than this server accepts ({max_message_bytes} bytes)"
        ),
    );
    to_grpc_status(&error).into_http()
}

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
    pub fn into_server(self) -> secrets_server::SecretsServer<Self> {
        secrets_server::SecretsServer::new(self)
    }

    /// Admits the caller of `request` through the gate, as REST does: credentials from the
    /// `authorization` metadata (the same value as REST's header), the peer address and
    /// `x-forwarded-for`.
    async fn admit<T>(&self, request: &Request<T>, class: ActionClass) -> Result<Caller, Status> {
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
            forwarded_for: metadata("x-forwarded-for"),
        };
        self.gate
            .admit(&origin, Access::Open, class)
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

fn receipt_to_wire(receipt: Receipt) -> pb::Receipt {
    pb::Receipt {
        custid: receipt.custid,
        metadata_key: receipt.metadata_key,
        secret_key: receipt.secret_key,
        ttl: receipt.ttl,
        metadata_ttl: receipt.metadata_ttl,
        secret_ttl: receipt.secret_ttl,
        state: receipt.state.as_str().to_owned(),
        created: receipt.created,
        updated: receipt.updated,
        received: receipt.received,
        burned: receipt.burned,
        recipient: receipt.recipient,
        share_domain: receipt.share_domain,
        passphrase_required: receipt.passphrase_required,
        value: None,
    }
}

fn generated_to_wire(generated: Generated) -> pb::Receipt {
    pb::Receipt {
        value: Some(generated.value.as_str().to_owned()),
        ..receipt_to_wire(generated.receipt)
    }
}

fn revealed_to_wire(revealed: Revealed) -> pb::RevealSecretResponse {
    pb::RevealSecretResponse {
        value: revealed.value.as_str().to_owned(),
        secret_key: revealed.secret_key,
        share_domain: revealed.share_domain,
    }
}

fn burned_to_wire(burned: Burned) -> pb::BurnSecretResponse {
    pb::BurnSecretResponse {
        state: Some(receipt_to_wire(burned.receipt)),
        secret_shortkey: burned.secret_shortkey,
    }
}

fn receipts_to_wire(receipts: Vec<Receipt>) -> pb::ListRecentReceiptsResponse {
    pb::ListRecentReceiptsResponse {
        receipts: receipts.into_iter().map(receipt_to_wire).collect(),
    }
}

#[tonic::async_trait]
impl secrets_server::Secrets for GrpcSecrets {
    async fn status(&self, _request: Request<pb::StatusRequest>) -> GrpcResult<pb::StatusResponse> {
        Ok(Response::new(pb::StatusResponse {
            status: self.secrets.status().to_owned(),
        }))
    }

    async fn share_secret(
        &self,
        request: Request<pb::ShareSecretRequest>,
    ) -> GrpcResult<pb::Receipt> {
        let caller = self.admit(&request, ActionClass::Create).await?;
        let message = request.into_inner();
        let input = ShareInput {
            secret: Some(message.secret),
            passphrase: message.passphrase,
            ttl: message.ttl,
            recipient: message.recipient,
            share_domain: message.share_domain,
        };
        reply(self.secrets.share(&caller, input).await, receipt_to_wire)
    }

    async fn generate_secret(
        &self,
        request: Request<pb::GenerateSecretRequest>,
    ) -> GrpcResult<pb::Receipt> {
        let caller = self.admit(&request, ActionClass::Create).await?;
        let message = request.into_inner();
        let input = GenerateInput {
            passphrase: message.passphrase,
            ttl: message.ttl,
            length: message.length,
        };
        reply(
            self.secrets.generate(&caller, input).await,
            generated_to_wire,
        )
    }

    async fn reveal_secret(
        &self,
        request: Request<pb::RevealSecretRequest>,
    ) -> GrpcResult<pb::RevealSecretResponse> {
        let caller = self.admit(&request, ActionClass::Reveal).await?;
        let message = request.into_inner();
        let input = RevealInput {
            key: message.key,
            passphrase: message.passphrase,
        };
        reply(self.secrets.reveal(&caller, input).await, revealed_to_wire)
    }

    async fn get_receipt(
        &self,
        request: Request<pb::GetReceiptRequest>,
    ) -> GrpcResult<pb::Receipt> {
        let caller = self.admit(&request, ActionClass::Reveal).await?;
        let message = request.into_inner();
        reply(
            self.secrets.receipt(&caller, &message.metadata_key).await,
            receipt_to_wire,
        )
    }

    async fn burn_secret(
        &self,
        request: Request<pb::BurnSecretRequest>,
    ) -> GrpcResult<pb::BurnSecretResponse> {
        let caller = self.admit(&request, ActionClass::Reveal).await?;
        let message = request.into_inner();
        let input = BurnInput {
            metadata_key: message.metadata_key,
            passphrase: message.passphrase,
        };
        reply(self.secrets.burn(&caller, input).await, burned_to_wire)
    }

    async fn list_recent_receipts(
        &self,
        request: Request<pb::ListRecentReceiptsRequest>,
    ) -> GrpcResult<pb::ListRecentReceiptsResponse> {
        let caller = self.admit(&request, ActionClass::Reveal).await?;
        reply(self.secrets.recent(&caller).await, receipts_to_wire)
    }
}
