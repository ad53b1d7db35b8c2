//! What the handler answers, as each transport writes it: `rest` holds the REST bodies and
//! `grpc` the mapping to the gRPC messages, each from the same core types. The two are tested
//! here side by side, by value: one receipt with a distinct value in every field, through both.
//! Each REST body is checked as written on the wire (serde) and as the OpenAPI document describes
//! it (poem-openapi's `ToJSON`): the two must be the same JSON.

pub mod grpc;
pub mod rest;

#[cfg(test)]
mod tests {
    use burnbox_core::{Burned, Generated, Receipt, ReceiptState, Revealed, SecretStatus};
    use burnbox_spec::v1 as pb;
    use poem_openapi::types::ToJSON;
    use serde::Serialize;
    use serde_json::json;

    use super::rest::{BurnBody, ReceiptBody, RevealBody, SecretStatusBody};

    /// A receipt whose every field holds a value no other field holds.
    fn receipt() -> Receipt {
        Receipt {
            custid: "alice".into(),
            metadata_key: "metadatakey".into(),
            secret_key: Some("secretkey".into()),
            ttl: 3_600,
            metadata_ttl: 7_100,
            secret_ttl: Some(3_500),
            state: ReceiptState::Received,
            created: 1_000,
            updated: 1_001,
            received: Some(1_002),
            burned: Some(1_003),
            recipient: vec!["al***@e***.com".into()],
            share_domain: "share.example".into(),
            passphrase_required: true,
            receipt_url: "https://b.example/private/metadatakey".into(),
        }
    }

    /// A body as the REST answer writes it, after checking that the OpenAPI document's writing
    /// of it is the same JSON.
    fn rest_json(body: &(impl ToJSON + Serialize)) -> serde_json::Value {
        let written = serde_json::to_value(body).expect("a JSON body");
        assert_eq!(
            Some(&written),
            body.to_json().as_ref(),
            "the answer as written and as documented differ"
        );
        written
    }

    #[test]
    fn receipts_carry_every_field_to_both_transports() {
        let rest = json!({
            "custid": "alice",
            "metadata_key": "metadatakey",
            "identifier": "metadatakey",
            "secret_key": "secretkey",
            "secret_identifier": "secretkey",
            "ttl": 3_600,
            "metadata_ttl": 7_100,
            "receipt_ttl": 7_100,
            "secret_ttl": 3_500,
            "metadata_url": "https://b.example/private/metadatakey",
            "receipt_url": "https://b.example/private/metadatakey",
            "state": "received",
            "created": 1_000,
            "updated": 1_001,
            "received": 1_002,
            "burned": 1_003,
            "recipient": ["al***@e***.com"],
            "recipients": ["al***@e***.com"],
            "share_domain": "share.example",
            "passphrase_required": true,
            "has_passphrase": true,
        });
        assert_eq!(rest_json(&ReceiptBody::from(receipt())), rest);
        // Recent receipts: a list of them.
        assert_eq!(
            rest_json(&vec![ReceiptBody::from(receipt())]),
            json!([rest.clone()])
        );
        let grpc = pb::Receipt {
            custid: "alice".into(),
            metadata_key: "metadatakey".into(),
            secret_key: Some("secretkey".into()),
            ttl: 3_600,
            metadata_ttl: 7_100,
            secret_ttl: Some(3_500),
            state: "received".into(),
            created: 1_000,
            updated: 1_001,
            received: Some(1_002),
            burned: Some(1_003),
            recipient: vec!["al***@e***.com".into()],
            share_domain: "share.example".into(),
            passphrase_required: true,
            value: None,
            receipt_url: "https://b.example/private/metadatakey".into(),
        };
        assert_eq!(super::grpc::receipt(receipt()), grpc);

        // Generate adds the password, under both of Onetime Secret's names on REST.
        let generated = || Generated {
            receipt: receipt(),
            value: zeroize::Zeroizing::new("p4ssw0rd".into()),
        };
        let mut rest_generated = rest.clone();
        rest_generated["value"] = json!("p4ssw0rd");
        rest_generated["secret_value"] = json!("p4ssw0rd");
        assert_eq!(rest_json(&ReceiptBody::from(generated())), rest_generated);
        assert_eq!(
            super::grpc::generated(generated()),
            pb::Receipt {
                value: Some("p4ssw0rd".into()),
                ..grpc.clone()
            }
        );

        // A burn answers the receipt and the key's first characters.
        let burned = || Burned {
            receipt: receipt(),
            secret_shortkey: "secretke".into(),
        };
        assert_eq!(
            rest_json(&BurnBody::from(burned())),
            json!({"state": rest, "secret_shortkey": "secretke"})
        );
        assert_eq!(
            super::grpc::burned(burned()),
            pb::BurnSecretResponse {
                state: Some(grpc.clone()),
                secret_shortkey: "secretke".into(),
            }
        );
        assert_eq!(
            super::grpc::recent(vec![receipt(), receipt()]),
            pb::ListRecentReceiptsResponse {
                receipts: vec![grpc.clone(), grpc],
            }
        );
    }

    #[test]
    fn optional_receipt_fields_are_left_out_not_null() {
        let unread_gone = Receipt {
            secret_key: None,
            secret_ttl: None,
            received: None,
            burned: None,
            ..receipt()
        };
        let json = rest_json(&ReceiptBody::from(unread_gone.clone()));
        for absent in [
            "secret_key",
            "secret_identifier",
            "secret_ttl",
            "received",
            "burned",
            "value",
            "secret_value",
        ] {
            assert!(json.get(absent).is_none(), "{absent} in {json}");
        }
        let grpc = super::grpc::receipt(unread_gone);
        assert_eq!(
            (grpc.secret_key, grpc.secret_ttl, grpc.received, grpc.burned),
            (None, None, None, None)
        );
    }

    #[test]
    fn reveals_and_lookups_carry_every_field_to_both_transports() {
        let revealed = || Revealed {
            value: zeroize::Zeroizing::new("the launch codes".into()),
            secret_key: "secretkey".into(),
            share_domain: "https://b.example".into(),
        };
        assert_eq!(
            rest_json(&RevealBody::from(revealed())),
            json!({
                "value": "the launch codes",
                "secret_key": "secretkey",
                "share_domain": "https://b.example",
            })
        );
        assert_eq!(
            super::grpc::revealed(revealed()),
            pb::RevealSecretResponse {
                value: "the launch codes".into(),
                secret_key: "secretkey".into(),
                share_domain: "https://b.example".into(),
            }
        );

        let status = || SecretStatus {
            secret_key: "secretkey".into(),
            state: ReceiptState::New,
            passphrase_required: true,
            secret_ttl: 42,
            end_to_end: true,
        };
        assert_eq!(
            rest_json(&SecretStatusBody::from(status())),
            json!({
                "secret_key": "secretkey",
                "state": "new",
                "passphrase_required": true,
                "secret_ttl": 42,
                "end_to_end": true,
            })
        );
        assert_eq!(
            super::grpc::secret_status(status()),
            pb::SecretStatus {
                secret_key: "secretkey".into(),
                state: "new".into(),
                passphrase_required: true,
                secret_ttl: 42,
                end_to_end: true,
            }
        );
    }
}
