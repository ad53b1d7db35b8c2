//! The gRPC messages of the handler's answers, each mapped from its core type in one function
//! (the messages are generated types of another crate, so these are functions, not `From`s).

use burnbox_core::{Burned, Generated, Receipt, Revealed, SecretStatus};
use burnbox_spec::v1 as pb;

/// A receipt.
pub fn receipt(receipt: Receipt) -> pb::Receipt {
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
        receipt_url: receipt.receipt_url,
    }
}

/// A generated secret: its receipt with the password in `value`.
pub fn generated(generated: Generated) -> pb::Receipt {
    pb::Receipt {
        value: Some(generated.value.as_str().to_owned()),
        ..receipt(generated.receipt)
    }
}

/// A revealed secret.
pub fn revealed(revealed: Revealed) -> pb::RevealSecretResponse {
    pb::RevealSecretResponse {
        value: revealed.value.as_str().to_owned(),
        secret_key: revealed.secret_key,
        share_domain: revealed.share_domain,
    }
}

/// A secret looked up without revealing it.
pub fn secret_status(status: SecretStatus) -> pb::SecretStatus {
    pb::SecretStatus {
        secret_key: status.secret_key,
        state: status.state.as_str().to_owned(),
        passphrase_required: status.passphrase_required,
        secret_ttl: status.secret_ttl,
        end_to_end: status.end_to_end,
    }
}

/// A burned secret.
pub fn burned(burned: Burned) -> pb::BurnSecretResponse {
    pb::BurnSecretResponse {
        state: Some(receipt(burned.receipt)),
        secret_shortkey: burned.secret_shortkey,
    }
}

/// A customer's recent receipts.
pub fn recent(receipts: Vec<Receipt>) -> pb::ListRecentReceiptsResponse {
    pb::ListRecentReceiptsResponse {
        receipts: receipts.into_iter().map(receipt).collect(),
    }
}
