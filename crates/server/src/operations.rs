//! The one list of operations. Each row says, for one thing a caller can do: its name (the
//! `operation` label of every metric and the `burnbox.operation` span attribute, on every
//! transport, and its REST operation id), its REST route, its gRPC method, the web pages that
//! perform it, who may call it and which rate limit it counts against.
//!
//! The adapters (REST, gRPC, pages) decode a request, name the [`Operation`] it is, and encode
//! the answer; the [`Gate`](crate::gate::Gate) reads access and rate class from here, and the
//! observers read names from here. Tests hold the REST OpenAPI document, the gRPC service
//! descriptor and the pages' router to this table, so none of them can drift from it.
//!
//! This module must never depend on a transport: it is plain data.

/// Who may pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone, with or without credentials, whatever the anonymous settings.
    Anyone,
    /// Customers, and anonymous callers unless anonymous use is off.
    Read,
    /// Customers, and anonymous callers if anonymous creation is on.
    Create,
    /// Authenticated customers only.
    CustomersOnly,
}

/// The kinds of operation that are rate limited separately.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ActionClass {
    /// Storing secrets: share, generate.
    Create,
    /// Reading and burning: reveal, secret status, receipt, burn, recent, authcheck. Its limits
    /// are the `*_REVEAL` settings and its label is `reveal`, the most common of them.
    Read,
}

impl ActionClass {
    /// The `class` label of `burnbox_rate_limited_total` and the counter's key prefix.
    pub fn name(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Read => "reveal",
        }
    }
}

/// Every operation burnbox serves, on whichever transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// The service's status.
    Status,
    /// Checking credentials.
    Authcheck,
    /// Sharing a secret.
    Share,
    /// Generating a password and sharing it.
    Generate,
    /// Revealing a secret.
    Reveal,
    /// Looking a secret up without revealing it.
    SecretStatus,
    /// Reading a receipt.
    Receipt,
    /// Burning a secret through its receipt.
    Burn,
    /// Listing the caller's recent receipts.
    Recent,
}

/// One row of [`OPERATIONS`].
#[derive(Debug)]
pub struct OperationRow {
    /// The operation the row describes.
    pub operation: Operation,
    /// Its one name: metrics label, span attribute and REST operation id.
    pub name: &'static str,
    /// Its documented REST route, as (method, path template). Onetime Secret's second spellings
    /// (`GET` for some `POST`s, `/receipt/` and `/metadata/` for `/private/`) serve the same
    /// operation and are listed in the OpenAPI document's hidden routes, not here.
    pub rest: (&'static str, &'static str),
    /// Its method of the gRPC service [`GRPC_SERVICE`], if gRPC serves it.
    pub grpc_method: Option<&'static str>,
    /// The web page routes that perform it, as (method, path template); the receipt pages also
    /// answer under `/private/`, as the API does.
    pub pages: &'static [(&'static str, &'static str)],
    /// Who may call it.
    pub access: Access,
    /// The rate limit it counts against; `None`: not counted.
    pub class: Option<ActionClass>,
}

/// The gRPC service every operation is a method of.
pub const GRPC_SERVICE: &str = "burnbox.v1.Secrets";

/// The table, in [`Operation`]'s order (a unit test holds it there).
///
/// A recipient holds a link, not credentials: revealing and looking up a secret follow anonymous
/// use, creating follows anonymous creation, so a server can let only its customers create while
/// anyone with a link reads. An anonymous caller's recent list is refused by the handler, which
/// knows no owner to list for. Failed authentication counts against the client address, so guessing
/// tokens is rate limited too; the service status is open and not counted, for health checks.
pub const OPERATIONS: [OperationRow; 9] = [
    OperationRow {
        operation: Operation::Status,
        name: "status",
        rest: ("GET", "/api/v1/status"),
        grpc_method: Some("Status"),
        pages: &[],
        access: Access::Anyone,
        class: None,
    },
    OperationRow {
        operation: Operation::Authcheck,
        name: "authcheck",
        rest: ("GET", "/api/v1/authcheck"),
        grpc_method: None,
        pages: &[],
        access: Access::CustomersOnly,
        class: Some(ActionClass::Read),
    },
    OperationRow {
        operation: Operation::Share,
        name: "share",
        rest: ("POST", "/api/v1/share"),
        grpc_method: Some("ShareSecret"),
        pages: &[("POST", "/")],
        access: Access::Create,
        class: Some(ActionClass::Create),
    },
    OperationRow {
        operation: Operation::Generate,
        name: "generate",
        rest: ("POST", "/api/v1/generate"),
        grpc_method: Some("GenerateSecret"),
        pages: &[],
        access: Access::Create,
        class: Some(ActionClass::Create),
    },
    OperationRow {
        operation: Operation::Reveal,
        name: "reveal",
        rest: ("POST", "/api/v1/secret/{key}"),
        grpc_method: Some("RevealSecret"),
        pages: &[("POST", "/secret/{key}")],
        access: Access::Read,
        class: Some(ActionClass::Read),
    },
    OperationRow {
        operation: Operation::SecretStatus,
        name: "secret_status",
        rest: ("GET", "/api/v1/secret/{key}/status"),
        grpc_method: Some("GetSecretStatus"),
        pages: &[("GET", "/secret/{key}")],
        access: Access::Read,
        class: Some(ActionClass::Read),
    },
    OperationRow {
        operation: Operation::Receipt,
        name: "receipt",
        rest: ("POST", "/api/v1/private/{metadata_key}"),
        grpc_method: Some("GetReceipt"),
        pages: &[("GET", "/receipt/{metadata_key}")],
        access: Access::Read,
        class: Some(ActionClass::Read),
    },
    OperationRow {
        operation: Operation::Burn,
        name: "burn",
        rest: ("POST", "/api/v1/private/{metadata_key}/burn"),
        grpc_method: Some("BurnSecret"),
        pages: &[("POST", "/receipt/{metadata_key}/burn")],
        access: Access::Read,
        class: Some(ActionClass::Read),
    },
    OperationRow {
        operation: Operation::Recent,
        name: "recent",
        rest: ("GET", "/api/v1/private/recent"),
        grpc_method: Some("ListRecentReceipts"),
        pages: &[],
        access: Access::Read,
        class: Some(ActionClass::Read),
    },
];

impl Operation {
    /// Its row of [`OPERATIONS`].
    pub fn row(self) -> &'static OperationRow {
        &OPERATIONS[self as usize]
    }

    /// Its one name: metrics label, span attribute and REST operation id.
    pub fn name(self) -> &'static str {
        self.row().name
    }

    /// Who may call it.
    pub fn access(self) -> Access {
        self.row().access
    }

    /// The rate limit it counts against, if any.
    pub fn class(self) -> Option<ActionClass> {
        self.row().class
    }

    /// The operation named `name` (a REST operation id), if any.
    pub fn named(name: &str) -> Option<Self> {
        OPERATIONS
            .iter()
            .find(|row| row.name == name)
            .map(|row| row.operation)
    }

    /// The operation a method of [`GRPC_SERVICE`] performs, if any.
    pub fn of_grpc_method(method: &str) -> Option<Self> {
        OPERATIONS
            .iter()
            .find(|row| row.grpc_method == Some(method))
            .map(|row| row.operation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_in_operation_order_and_names_are_unique() {
        for (index, row) in OPERATIONS.iter().enumerate() {
            assert_eq!(row.operation as usize, index, "{:?}", row.operation);
            assert_eq!(row.operation.row().name, row.name);
            assert_eq!(Operation::named(row.name), Some(row.operation));
            if let Some(method) = row.grpc_method {
                assert_eq!(Operation::of_grpc_method(method), Some(row.operation));
            }
        }
        assert_eq!(Operation::named("RevealSecret"), None);
        assert_eq!(Operation::of_grpc_method("reveal"), None);
    }
}
