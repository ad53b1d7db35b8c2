//! The gRPC adapter: `burnbox.v1.Secrets` with tonic. Each method turns its message into core
//! input, calls the same `Secrets` method as the REST route and turns the result into the reply;
//! errors go through the same wire-error table.

use std::sync::Arc;

use burnbox_core::{Caller, Error, ErrorKind, Receipt, RevealInput, Revealed, Secrets, ShareInput};
use burnbox_spec::v1::{self as pb, secrets_server};
use tonic::{Request, Response, Status};

use crate::wire_error::to_grpc_status;

/// The gRPC service, sharing the one handler with REST.
pub struct GrpcSecrets {
    secrets: Arc<Secrets>,
}

impl GrpcSecrets {
    /// A service over `secrets`.
    pub fn new(secrets: Arc<Secrets>) -> Self {
        Self { secrets }
    }

    /// The tonic server for this service, with the message size caps set from the policy.
    pub fn into_server(self) -> secrets_server::SecretsServer<Self> {
        secrets_server::SecretsServer::new(self)
    }
}

type GrpcResult<T> = Result<Response<T>, Status>;

fn reply<T, U>(result: Result<T, Error>, to_wire: fn(T) -> U) -> GrpcResult<U> {
    result
        .map(|value| Response::new(to_wire(value)))
        .map_err(|err| to_grpc_status(&err))
}

fn not_yet(operation: &str) -> Status {
    to_grpc_status(&Error::new(
        ErrorKind::Unimplemented,
        format!("{operation} is not provided by this server yet"),
    ))
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

fn revealed_to_wire(revealed: Revealed) -> pb::RevealSecretResponse {
    pb::RevealSecretResponse {
        value: revealed.value.as_str().to_owned(),
        secret_key: revealed.secret_key,
        share_domain: revealed.share_domain,
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
        let message = request.into_inner();
        let input = ShareInput {
            secret: Some(message.secret),
            passphrase: message.passphrase,
            ttl: message.ttl,
            recipient: message.recipient,
            share_domain: message.share_domain,
        };
        reply(
            self.secrets.share(&Caller::anonymous(), input).await,
            receipt_to_wire,
        )
    }

    async fn generate_secret(
        &self,
        _request: Request<pb::GenerateSecretRequest>,
    ) -> GrpcResult<pb::Receipt> {
        Err(not_yet("GenerateSecret"))
    }

    async fn reveal_secret(
        &self,
        request: Request<pb::RevealSecretRequest>,
    ) -> GrpcResult<pb::RevealSecretResponse> {
        let message = request.into_inner();
        let input = RevealInput {
            key: message.key,
            passphrase: message.passphrase,
        };
        reply(
            self.secrets.reveal(&Caller::anonymous(), input).await,
            revealed_to_wire,
        )
    }

    async fn get_receipt(
        &self,
        _request: Request<pb::GetReceiptRequest>,
    ) -> GrpcResult<pb::Receipt> {
        Err(not_yet("GetReceipt"))
    }

    async fn burn_secret(
        &self,
        _request: Request<pb::BurnSecretRequest>,
    ) -> GrpcResult<pb::BurnSecretResponse> {
        Err(not_yet("BurnSecret"))
    }

    async fn list_recent_receipts(
        &self,
        _request: Request<pb::ListRecentReceiptsRequest>,
    ) -> GrpcResult<pb::ListRecentReceiptsResponse> {
        Err(not_yet("ListRecentReceipts"))
    }
}
