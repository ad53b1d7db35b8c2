//! The REST bodies of the handler's answers (poem-openapi objects, so the OpenAPI document
//! describes exactly what is sent), each mapped from its core type in one `From`, and
//! [`JsonAnswer`], the payload that writes them.

use burnbox_core::{Burned, Generated, Receipt, Revealed, SecretStatus, Secrets};
use poem::{IntoResponse, Response};
use poem_openapi::payload::{Json, Payload};
use poem_openapi::registry::{MetaResponses, MetaSchemaRef, Registry};
use poem_openapi::types::{ToJSON, Type};
use poem_openapi::{ApiResponse, Object};
use serde::Serialize;

/// A JSON answer of 200: in the OpenAPI document exactly poem-openapi's [`Json`], but written
/// straight from the body with serde, where [`Json`] first builds a `serde_json::Value` tree (a
/// map and a string per field: about 2,000 of a reveal's 94,000 instructions). Every body below
/// derives both, with the same names and the same fields left out, and a test holds the two
/// writings equal.
pub struct JsonAnswer<T>(pub T);

impl<T: Type> Payload for JsonAnswer<T> {
    const CONTENT_TYPE: &'static str = Json::<T>::CONTENT_TYPE;

    fn check_content_type(content_type: &str) -> bool {
        Json::<T>::check_content_type(content_type)
    }

    fn schema_ref() -> MetaSchemaRef {
        Json::<T>::schema_ref()
    }

    fn register(registry: &mut Registry) {
        <Json<T> as Payload>::register(registry);
    }
}

impl<T: ToJSON + Serialize> IntoResponse for JsonAnswer<T> {
    fn into_response(self) -> Response {
        // Every answer the test suites provoke is checked against the documented writing too.
        debug_assert_eq!(
            serde_json::to_value(&self.0).ok(),
            self.0.to_json(),
            "a REST answer as written differs from the OpenAPI document's writing"
        );
        match serde_json::to_vec(&self.0) {
            Ok(body) => Response::builder()
                .content_type(Self::CONTENT_TYPE)
                .body(body),
            // Not for these bodies (strings, numbers, lists of strings); were it ever, the
            // tree writes what it can, and the log says serde could not.
            Err(err) => {
                tracing::error!(%err, "a REST answer could not be written with serde");
                Json(self.0).into_response()
            }
        }
    }
}

impl<T: ToJSON + Serialize> ApiResponse for JsonAnswer<T> {
    fn meta() -> MetaResponses {
        Json::<T>::meta()
    }

    fn register(registry: &mut Registry) {
        <Json<T> as ApiResponse>::register(registry);
    }
}

/// A receipt: what a secret's creator may know about it. Carries Onetime Secret's v0.23 names
/// and, beside them, the names its v1 API added in v0.24 (`identifier`, `recipients`, …), with
/// the same values.
#[derive(Object, Serialize)]
pub struct ReceiptBody {
    /// The owner (`anon` for anonymous secrets).
    custid: String,
    /// The key that reads this receipt.
    metadata_key: String,
    /// The key that reveals the secret, while it is unread.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    secret_key: Option<String>,
    /// The secret's lifetime as shared, in seconds (after clamping into the allowed range).
    ttl: i64,
    /// Seconds left before this receipt expires.
    metadata_ttl: i64,
    /// Seconds left before the secret expires, while it is unread.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    secret_ttl: Option<i64>,
    /// The receipt page's URL.
    metadata_url: String,
    /// new, received, burned or expired.
    state: String,
    /// Unix seconds of creation.
    created: i64,
    /// Unix seconds of the last change.
    updated: i64,
    /// Unix seconds of the reveal.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    received: Option<i64>,
    /// Unix seconds of the burn.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    burned: Option<i64>,
    /// The addresses the link was emailed to, masked.
    recipient: Vec<String>,
    /// A custom domain the link is shared on: always empty (this server's own domain).
    share_domain: String,
    /// Whether revealing needs a passphrase.
    passphrase_required: bool,
    /// The generated password: only in the answer to generate.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<String>,
    /// Same as metadata_key (Onetime Secret v0.24's name).
    identifier: String,
    /// Same as secret_key, while the secret is unread (Onetime Secret v0.24's name).
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    secret_identifier: Option<String>,
    /// Same as passphrase_required (Onetime Secret v0.24's name).
    has_passphrase: bool,
    /// Same as recipient (Onetime Secret v0.24's name).
    recipients: Vec<String>,
    /// Same as metadata_ttl (Onetime Secret v0.24's name).
    receipt_ttl: i64,
    /// Same as metadata_url (Onetime Secret v0.24's name).
    receipt_url: String,
    /// Same as value: only in the answer to generate (Onetime Secret v0.24's name).
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    secret_value: Option<String>,
}

impl From<Receipt> for ReceiptBody {
    fn from(receipt: Receipt) -> Self {
        Self {
            identifier: receipt.metadata_key.clone(),
            secret_identifier: receipt.secret_key.clone(),
            has_passphrase: receipt.passphrase_required,
            recipients: receipt.recipient.clone(),
            receipt_ttl: receipt.metadata_ttl,
            receipt_url: receipt.receipt_url.clone(),
            secret_value: None,
            custid: receipt.custid,
            metadata_key: receipt.metadata_key,
            secret_key: receipt.secret_key,
            ttl: receipt.ttl,
            metadata_ttl: receipt.metadata_ttl,
            secret_ttl: receipt.secret_ttl,
            metadata_url: receipt.receipt_url,
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
}

impl From<Generated> for ReceiptBody {
    fn from(generated: Generated) -> Self {
        let value = generated.value.as_str().to_owned();
        Self {
            secret_value: Some(value.clone()),
            value: Some(value),
            ..generated.receipt.into()
        }
    }
}

/// A burned secret.
#[derive(Object, Serialize)]
pub struct BurnBody {
    /// The receipt, now in state burned.
    state: ReceiptBody,
    /// The first 8 characters of the burned secret's key.
    secret_shortkey: String,
}

impl From<Burned> for BurnBody {
    fn from(burned: Burned) -> Self {
        Self {
            state: burned.receipt.into(),
            secret_shortkey: burned.secret_shortkey,
        }
    }
}

/// A revealed secret.
#[derive(Object, Serialize)]
pub struct RevealBody {
    /// The secret value. It no longer exists on the server.
    value: String,
    /// The key it was revealed with.
    secret_key: String,
    /// The base URL links are shared under, with its scheme.
    share_domain: String,
}

impl From<Revealed> for RevealBody {
    fn from(revealed: Revealed) -> Self {
        Self {
            value: revealed.value.as_str().to_owned(),
            secret_key: revealed.secret_key,
            share_domain: revealed.share_domain,
        }
    }
}

/// A secret that is there to be revealed, looked up without revealing it.
#[derive(Object, Serialize)]
pub struct SecretStatusBody {
    /// The key it was looked up with.
    secret_key: String,
    /// Always `new`: a secret that was revealed, burned or has expired is a 404.
    state: String,
    /// Whether revealing needs a passphrase.
    passphrase_required: bool,
    /// Seconds left before the secret expires.
    secret_ttl: i64,
    /// Whether the value is end-to-end encrypted (the `bbx1` format): only a client holding
    /// the key in the link's fragment can show it.
    end_to_end: bool,
}

impl From<SecretStatus> for SecretStatusBody {
    fn from(status: SecretStatus) -> Self {
        Self {
            secret_key: status.secret_key,
            state: status.state.as_str().to_owned(),
            passphrase_required: status.passphrase_required,
            secret_ttl: status.secret_ttl,
            end_to_end: status.end_to_end,
        }
    }
}

/// The service status.
#[derive(Object, Serialize)]
pub struct StatusBody {
    /// Always `nominal` while the server answers.
    status: String,
    /// The language of messages: always `en`.
    locale: String,
}

impl StatusBody {
    /// The status `secrets` reports.
    pub fn of(secrets: &Secrets) -> Self {
        Self {
            status: secrets.status().to_owned(),
            locale: secrets.locale().to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use poem_openapi::types::ToJSON;

    use super::StatusBody;

    #[test]
    fn the_service_status_is_written_as_documented() {
        let status = StatusBody {
            status: "nominal".into(),
            locale: "en".into(),
        };
        let written = serde_json::to_value(&status).expect("a JSON body");
        assert_eq!(Some(&written), status.to_json().as_ref());
        assert_eq!(
            written,
            serde_json::json!({"status": "nominal", "locale": "en"})
        );
    }
}
