//! Request parameters as Onetime Secret clients send them: in the query string, in an
//! `application/x-www-form-urlencoded` body, in a `multipart/form-data` body (`curl -F`), as
//! JSON, or not at all (a bare `POST /secret/KEY`). A body without a Content-Type is sniffed: JSON
//! if it starts with `{`, else a form (Onetime Secret's own scripts send such bodies). One
//! decoder handles all of them so each route declares its fields once.
//!
//! The REST API ([`FormOrJson`]) merges the query string and the body field by field, the body
//! winning, as Rack merges GET and POST parameters for Onetime Secret. The web pages
//! ([`read_body`]) read the body only: their forms post everything, and a secret has no business
//! in a page's URL.

use std::borrow::Cow;
use std::collections::HashSet;
use std::io;

use burnbox_core::Error;
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use poem::error::ReadBodyError;
use poem::{Request, RequestBody};
use poem_openapi::registry::{MetaMediaType, MetaRequest, MetaSchemaRef, Registry};
use poem_openapi::types::{ParseError, ParseFromJSON, ParseResult, ToJSON, Type};
use poem_openapi::{ApiExtractor, ApiExtractorType, ExtractParamOptions};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::ApiError;

const FORM: &str = "application/x-www-form-urlencoded";
const MULTIPART: &str = "multipart/form-data";
const JSON: &str = "application/json";

/// The most parts a multipart body may have. The API's operations take at most five fields; the
/// bound keeps a body of many tiny parts from costing more than its size suggests.
const MAX_MULTIPART_PARTS: usize = 32;

/// A request's fields `T`, from the query string and a form, multipart or JSON body (all fields
/// unset when there are none). A field in the body wins over the same field in the query.
pub struct FormOrJson<T>(pub T);

/// The largest request body read (request data set on the REST endpoint); a larger one is
/// refused before it is buffered.
#[derive(Clone, Copy, Debug)]
pub struct BodyLimit(pub usize);

impl<'a, T> ApiExtractor<'a> for FormOrJson<T>
where
    T: Type + DeserializeOwned + Default + Send,
{
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];

    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        T::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        Some(MetaRequest {
            description: None,
            content: [FORM, MULTIPART, JSON]
                .into_iter()
                .map(|content_type| MetaMediaType {
                    content_type,
                    schema: T::schema_ref(),
                })
                .collect(),
            required: false,
        })
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        _options: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let query = request.uri().query().map(str::as_bytes);
        read_params(request, query, body, field_names::<T>)
            .await?
            .map(Self)
            .map_err(|err| ApiError::from(err).into())
    }
}

/// Reads and decodes a request body as the API does (the pages use it): at most the request's
/// [`BodyLimit`], a form, multipart or JSON, strict UTF-8; errors name a field only if it is one
/// of `known_fields()`. The query string is not read. The outer error is the transport's (the
/// body could not be read: a late body, a broken connection), the inner one a refusal of what
/// was read.
pub(crate) async fn read_body<T: DeserializeOwned + Default>(
    request: &Request,
    body: &mut RequestBody,
    known_fields: fn() -> Vec<&'static str>,
) -> poem::Result<Result<T, Error>> {
    read_params(request, None, body, known_fields).await
}

/// [`read_body`], with the fields of `query` (a raw query string) beneath the body's.
async fn read_params<T: DeserializeOwned + Default>(
    request: &Request,
    query: Option<&[u8]>,
    body: &mut RequestBody,
    known_fields: fn() -> Vec<&'static str>,
) -> poem::Result<Result<T, Error>> {
    let limit = request
        .data::<BodyLimit>()
        .map_or(usize::MAX, |limit| limit.0);
    let too_large = || {
        Error::bad_request(format!(
            "the request body is larger than this server accepts ({limit} bytes)"
        ))
    };
    let declared = request
        .headers()
        .get(poem::http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Ok(Err(too_large()));
    }
    match read_limited(body.take()?, limit).await {
        Ok(bytes) => Ok(parse(request.content_type(), query, &bytes, &known_fields).await),
        Err(ReadBodyError::PayloadTooLarge) => Ok(Err(too_large())),
        Err(err) => Err(err.into()),
    }
}

/// Reads `body` whole, refusing it as soon as more than `limit` bytes have arrived. poem's
/// `Body::into_bytes_limit` does the same through a 4 KiB buffer held in its future, which made
/// every request's future 4 KiB larger, and that future is moved at each layer above it.
async fn read_limited(body: poem::Body, limit: usize) -> Result<Bytes, ReadBodyError> {
    let body: BoxBody<Bytes, io::Error> = body.into();
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) => match err.downcast::<io::Error>() {
            Ok(err) => Err(ReadBodyError::Io(*err)),
            Err(err) if err.is::<LengthLimitError>() => Err(ReadBodyError::PayloadTooLarge),
            Err(err) => Err(ReadBodyError::Io(io::Error::other(err))),
        },
    }
}

/// The names of `T`'s fields, as its schema documents them.
fn field_names<T: Type>() -> Vec<&'static str> {
    let mut registry = Registry::new();
    T::register(&mut registry);
    let schema = match T::schema_ref() {
        MetaSchemaRef::Reference(name) => registry.schemas.remove(&name),
        MetaSchemaRef::Inline(schema) => Some(*schema),
    };
    schema
        .map(|schema| {
            schema
                .properties
                .into_iter()
                .map(|(name, _)| name)
                .collect()
        })
        .unwrap_or_default()
}

/// Where a request's fields came from, for error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    Query,
    Form,
    Multipart,
}

impl Source {
    /// What a message calls this source's whole.
    fn whole(self) -> &'static str {
        match self {
            Self::Query => "the query string",
            Self::Form => "the form body",
            Self::Multipart => "the multipart body",
        }
    }

    /// What a message calls one of this source's fields.
    fn field(self) -> &'static str {
        match self {
            Self::Query => "query parameter",
            Self::Form => "form field",
            Self::Multipart => "multipart field",
        }
    }
}

/// One source's fields in the order sent, as JSON values (text for all but JSON bodies), with
/// repeats kept so that decoding can refuse them.
type Fields = Vec<(String, Value)>;

/// Decodes `T` from `fields`. A field of `T` given twice is an error; fields `T` does not have
/// are ignored, as in every other decoding.
fn decode<T: DeserializeOwned>(fields: Fields) -> Result<T, serde_json::Error> {
    T::deserialize(serde::de::value::MapDeserializer::new(fields.into_iter()))
}

/// Decodes the body `bytes` by content type, then lays the fields of `query` (a raw query
/// string, if any) beneath it: a field in the body wins over the same field in the query, and
/// each source must give each field at most once. Error messages never quote the body or the
/// query (they may hold a secret) and name a field only if it is one of `known_fields()` (asked
/// only on that error).
async fn parse<T: DeserializeOwned + Default>(
    content_type: Option<&str>,
    query: Option<&[u8]>,
    bytes: &[u8],
    known_fields: &(dyn Fn() -> Vec<&'static str> + Sync),
) -> Result<T, Error> {
    let body = parse_body::<T>(content_type, bytes, known_fields).await?;
    let query = match query {
        Some(query) if !query.is_empty() => {
            let fields = urlencoded_fields(Source::Query, query, known_fields)?;
            checked::<T>(Source::Query, fields.clone())?;
            Some(fields)
        }
        Some(_) | None => None,
    };
    let fields = match (query, body) {
        (None, None) => return Ok(T::default()),
        (Some(only), None) | (None, Some(only)) => only,
        (Some(query), Some(body)) => {
            let in_body: HashSet<&str> = body.iter().map(|(name, _)| name.as_str()).collect();
            let mut merged: Fields = query
                .into_iter()
                .filter(|(name, _)| !in_body.contains(name.as_str()))
                .collect();
            merged.extend(body);
            merged
        }
    };
    // Each source decoded on its own above; together they hold each field once.
    decode(fields).map_err(|_| Error::bad_request("the request's fields could not be decoded"))
}

/// Decodes `fields` from `source` only to refuse them as that source's error.
fn checked<T: DeserializeOwned>(source: Source, fields: Fields) -> Result<(), Error> {
    decode::<T>(fields).map(drop).map_err(|_| {
        Error::bad_request(format!(
            "{} could not be decoded (each field at most once, text values)",
            source.whole()
        ))
    })
}

/// The body's fields, checked to decode as `T`; `None` for an empty body (of any type).
async fn parse_body<T: DeserializeOwned>(
    content_type: Option<&str>,
    bytes: &[u8],
    known_fields: &(dyn Fn() -> Vec<&'static str> + Sync),
) -> Result<Option<Fields>, Error> {
    let essence = content_type.map(|value| {
        value
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    });
    if bytes.is_empty() {
        return Ok(None);
    }
    let fields = match essence.as_deref() {
        Some(FORM) => form_fields::<T>(bytes, known_fields)?,
        Some(JSON) => json_fields::<T>(bytes)?,
        Some(MULTIPART) => {
            // Boxed: unboxed, the multipart parser's state would be part of every request's
            // future, which the layers above move whole; a rare body should not make the
            // common ones larger.
            let fields = Box::pin(multipart_fields(
                content_type.unwrap_or_default(),
                bytes,
                known_fields,
            ))
            .await?;
            checked::<T>(Source::Multipart, fields.clone())?;
            fields
        }
        Some(other) => {
            return Err(Error::bad_request(format!(
                "unsupported content type {other:?}: send {FORM}, {MULTIPART} or {JSON}"
            )));
        }
        // No Content-Type, as Onetime Secret's own scripts send JSON and curl's `-d` can: a JSON
        // object starts with `{` (after JSON's whitespace), which no form field can.
        None => match bytes
            .iter()
            .find(|byte| !matches!(byte, b' ' | b'\t' | b'\n' | b'\r'))
        {
            Some(b'{') => json_fields::<T>(bytes)?,
            Some(_) | None => form_fields::<T>(bytes, known_fields)?,
        },
    };
    Ok(Some(fields))
}

/// A form body's fields, checked to decode as `T`.
fn form_fields<T: DeserializeOwned>(
    bytes: &[u8],
    known_fields: &(dyn Fn() -> Vec<&'static str> + Sync),
) -> Result<Fields, Error> {
    let fields = urlencoded_fields(Source::Form, bytes, known_fields)?;
    checked::<T>(Source::Form, fields.clone())?;
    Ok(fields)
}

/// A JSON body's fields, checked to decode as `T`. The body is first decoded as `T` straight
/// from the bytes, so that an error can say where it is.
fn json_fields<T: DeserializeOwned>(bytes: &[u8]) -> Result<Fields, Error> {
    serde_json::from_slice::<T>(bytes).map_err(|err| {
        let problem = if err.is_data() {
            "a field has the wrong type"
        } else {
            "the body is not valid JSON"
        };
        Error::bad_request(format!(
            "{problem} (line {}, column {}); text fields are strings, ttl is an integer",
            err.line(),
            err.column()
        ))
    })?;
    // Serde would also take a list as a struct's fields in order; parameters have names.
    let object = serde_json::from_slice::<serde_json::Map<String, Value>>(bytes)
        .map_err(|_| Error::bad_request("a JSON body is an object of named fields"))?;
    Ok(object.into_iter().collect())
}

/// The fields of a urlencoded form or query string, refused unless UTF-8 once percent-decoded.
fn urlencoded_fields(
    source: Source,
    bytes: &[u8],
    known_fields: &(dyn Fn() -> Vec<&'static str> + Sync),
) -> Result<Fields, Error> {
    check_urlencoded_is_utf8(source, bytes, known_fields)?;
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(bytes).map_err(|_| {
        Error::bad_request(format!(
            "{} could not be decoded (each field at most once, text values)",
            source.whole()
        ))
    })?;
    Ok(pairs
        .into_iter()
        .map(|(name, value)| (name, Value::String(value)))
        .collect())
}

/// Refuses a form or query string whose field names or values are not UTF-8 once
/// percent-decoded. The form decoder would replace such bytes with U+FFFD, so `%FF%FF` and
/// `%FE%FE` would become the same passphrase; JSON and gRPC refuse the same input. The message
/// names the field when it is one the API knows: a client that left a `&` unencoded inside a
/// secret would otherwise see part of the secret quoted back (and logged).
fn check_urlencoded_is_utf8(
    source: Source,
    bytes: &[u8],
    known_fields: &(dyn Fn() -> Vec<&'static str> + Sync),
) -> Result<(), Error> {
    for pair in bytes.split(|&byte| byte == b'&') {
        let (name, value) = match pair.iter().position(|&byte| byte == b'=') {
            Some(equals) => (&pair[..equals], &pair[equals + 1..]),
            None => (pair, &[][..]),
        };
        let Ok(name) = percent_encoding::percent_decode(name).decode_utf8() else {
            return Err(Error::bad_request(format!(
                "a {} name is not valid UTF-8 once percent-decoded",
                source.field()
            )));
        };
        if percent_encoding::percent_decode(value)
            .decode_utf8()
            .is_err()
        {
            return Err(not_utf8(source, &name, known_fields));
        }
    }
    Ok(())
}

/// The error for a field `name` of `source` whose value is not UTF-8: it names the field only if
/// it is one the API knows.
fn not_utf8(
    source: Source,
    name: &str,
    known_fields: &(dyn Fn() -> Vec<&'static str> + Sync),
) -> Error {
    let field = known_fields().into_iter().find(|known| *known == name);
    Error::bad_request(match field {
        Some(field) => format!(
            "the {} {field:?} is not valid UTF-8 once percent-decoded",
            source.field()
        ),
        None => format!(
            "a {} is not valid UTF-8 once percent-decoded",
            source.field()
        ),
    })
}

/// The fields of a multipart body (`content_type` is the whole header, with its boundary), at
/// most [`MAX_MULTIPART_PARTS`]. Every part is text, in UTF-8, whatever its own Content-Type: a
/// part with a filename (`curl -F secret=@file`) gives the file's contents, the value a client
/// sending a file as its secret means. (Onetime Secret would see an upload object there instead
/// of text.)
async fn multipart_fields(
    content_type: &str,
    bytes: &[u8],
    known_fields: &(dyn Fn() -> Vec<&'static str> + Sync),
) -> Result<Fields, Error> {
    let boundary = multer::parse_boundary(content_type).map_err(|_| {
        Error::bad_request(format!(
            "a {MULTIPART} body needs a boundary in its Content-Type (boundary=...)"
        ))
    })?;
    let malformed = || {
        Error::bad_request(format!(
            "the multipart body could not be decoded (parts of named text fields, at most \
             {MAX_MULTIPART_PARTS}, each closed by the boundary)"
        ))
    };
    // Already read whole under the body limit: the parser reads it as a stream of one chunk.
    let chunk = bytes::Bytes::copy_from_slice(bytes);
    let stream = futures_util::stream::iter([Ok::<_, std::convert::Infallible>(chunk)]);
    let mut multipart = multer::Multipart::new(stream, boundary);
    let mut fields = Fields::new();
    while let Some(part) = multipart.next_field().await.map_err(|_| malformed())? {
        if fields.len() == MAX_MULTIPART_PARTS {
            return Err(Error::bad_request(format!(
                "a multipart body has at most {MAX_MULTIPART_PARTS} parts"
            )));
        }
        let Some(name) = part.name().map(str::to_owned) else {
            return Err(Error::bad_request(
                "a multipart part has no field name (Content-Disposition: form-data; name=...)",
            ));
        };
        let value = part.bytes().await.map_err(|_| malformed())?;
        let Ok(value) = String::from_utf8(value.into()) else {
            let field = known_fields().into_iter().find(|known| *known == name);
            return Err(Error::bad_request(match field {
                Some(field) => format!("the multipart field {field:?} is not valid UTF-8"),
                None => "a multipart field is not valid UTF-8".to_owned(),
            }));
        };
        fields.push((name, Value::String(value)));
    }
    Ok(fields)
}

/// An integer field that clients send as a JSON number or as decimal text (forms always send
/// text). Text that is not a whole number is kept as such so the handler can answer it with a
/// validation error naming the field, rather than failing the whole body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IntField(Option<i64>);

impl IntField {
    /// The integer, or a validation error about `field`.
    pub fn value(self, field: &'static str) -> Result<i64, Error> {
        self.0
            .ok_or_else(|| Error::validation(field, format!("{field} must be a whole number")))
    }
}

impl<'de> serde::Deserialize<'de> for IntField {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Forms give strings; JSON gives numbers or strings. Anything else is a type error.
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(serde_json::Number),
            Text(String),
        }
        Ok(Self(match Raw::deserialize(deserializer)? {
            Raw::Number(number) => number.as_i64(),
            Raw::Text(text) => text.trim().parse().ok(),
        }))
    }
}

impl Type for IntField {
    const IS_REQUIRED: bool = true;
    type RawValueType = i64;
    type RawElementValueType = i64;

    fn name() -> Cow<'static, str> {
        i64::name()
    }

    fn schema_ref() -> MetaSchemaRef {
        i64::schema_ref()
    }

    fn as_raw_value(&self) -> Option<&i64> {
        self.0.as_ref()
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a i64> + 'a> {
        Box::new(self.0.iter())
    }
}

impl ParseFromJSON for IntField {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        let value = value.unwrap_or_default();
        serde_json::from_value(value.clone()).map_err(|_| ParseError::expected_type(value))
    }
}

impl ToJSON for IntField {
    fn to_json(&self) -> Option<Value> {
        self.0.map(Value::from)
    }
}

/// Deserializes a field clients send as one string or as a list of strings.
pub fn one_or_many<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<String>, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Raw {
        One(String),
        Many(Vec<String>),
    }
    Ok(
        match <Option<Raw> as serde::Deserialize>::deserialize(deserializer)? {
            None => Vec::new(),
            Some(Raw::One(one)) => vec![one],
            Some(Raw::Many(many)) => many,
        },
    )
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;

    use super::*;

    /// The fields these tests' bodies may carry, as the API would know them.
    fn known() -> Vec<&'static str> {
        vec!["secret", "passphrase", "ttl", "recipient"]
    }

    /// [`super::parse`] of a body with an optional query string. The parser reads bytes
    /// already in memory, so it finishes on its first poll.
    fn parse_with_query<T: DeserializeOwned + Default>(
        content_type: Option<&str>,
        query: Option<&str>,
        bytes: &[u8],
    ) -> Result<T, Error> {
        super::parse(content_type, query.map(str::as_bytes), bytes, &known)
            .now_or_never()
            .expect("an in-memory body parses without waiting")
    }

    /// [`super::parse`] of a body alone.
    fn parse<T: DeserializeOwned + Default>(
        content_type: Option<&str>,
        bytes: &[u8],
    ) -> Result<T, Error> {
        parse_with_query(content_type, None, bytes)
    }

    #[derive(serde::Deserialize, Default, Debug, PartialEq)]
    struct Fields {
        secret: Option<String>,
        passphrase: Option<String>,
        ttl: Option<IntField>,
        #[serde(default, deserialize_with = "one_or_many")]
        recipient: Vec<String>,
    }

    const BOUNDARY: &str = "----burnbox-test-boundary";

    fn multipart_type() -> String {
        format!("{MULTIPART}; boundary={BOUNDARY}")
    }

    /// A multipart body as curl -F builds it: `(name, filename, value)` per part.
    fn multipart(parts: &[(&str, Option<&str>, &[u8])]) -> Vec<u8> {
        let mut body = Vec::new();
        for (name, filename, value) in parts {
            body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
            let disposition = match filename {
                Some(filename) => format!(
                    "Content-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\n\
                     Content-Type: application/octet-stream\r\n"
                ),
                None => format!("Content-Disposition: form-data; name=\"{name}\"\r\n"),
            };
            body.extend_from_slice(disposition.as_bytes());
            body.extend_from_slice(b"\r\n");
            body.extend_from_slice(value);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
        body
    }

    fn ttl_of(fields: &Fields) -> Option<i64> {
        fields
            .ttl
            .map(|ttl| ttl.value("ttl").expect("whole number"))
    }

    #[test]
    fn form_json_multipart_and_empty_bodies_decode_alike() {
        let form: Fields = parse(
            Some("application/x-www-form-urlencoded"),
            b"secret=s&ttl=3600&recipient=a",
        )
        .expect("form");
        let json: Fields = parse(
            Some("application/json; charset=utf-8"),
            br#"{"secret":"s","ttl":3600,"recipient":["a"]}"#,
        )
        .expect("json");
        let multipart: Fields = parse(
            Some(&multipart_type()),
            &multipart(&[
                ("secret", None, b"s"),
                ("ttl", None, b"3600"),
                ("recipient", None, b"a"),
            ]),
        )
        .expect("multipart");
        assert_eq!(form, json);
        assert_eq!(form, multipart);
        assert_eq!(ttl_of(&form), Some(3600));
        let empty: Fields = parse(None, b"").expect("empty");
        assert_eq!(empty, Fields::default());
        let empty: Fields = parse(Some("text/plain"), b"").expect("empty of any type");
        assert_eq!(empty, Fields::default());
    }

    #[test]
    fn non_numeric_ttl_is_a_field_error() {
        let fields: Fields = parse(Some(FORM), b"ttl=soon").expect("decodes");
        let err = fields
            .ttl
            .expect("present")
            .value("ttl")
            .expect_err("not a number");
        assert_eq!(err.field(), Some("ttl"));
    }

    #[test]
    fn query_fields_decode_alone() {
        let fields: Fields =
            parse_with_query(None, Some("secret=x+y%21&ttl=300"), b"").expect("query only");
        assert_eq!(fields.secret.as_deref(), Some("x y!"));
        assert_eq!(ttl_of(&fields), Some(300));
        // An empty query is no fields at all.
        let fields: Fields = parse_with_query(None, Some(""), b"").expect("empty query");
        assert_eq!(fields, Fields::default());
    }

    #[test]
    fn the_body_wins_over_the_query_field_by_field() {
        let query = Some("secret=from-query&passphrase=query-pass&ttl=300");
        let bodies: [(Option<String>, Vec<u8>); 4] = [
            (Some(FORM.to_owned()), b"secret=from-body&ttl=600".to_vec()),
            (
                Some(JSON.to_owned()),
                br#"{"secret":"from-body","ttl":600}"#.to_vec(),
            ),
            (
                Some(multipart_type()),
                multipart(&[("secret", None, b"from-body"), ("ttl", None, b"600")]),
            ),
            (None, br#" {"secret":"from-body","ttl":"600"}"#.to_vec()),
        ];
        for (content_type, body) in bodies {
            let fields: Fields =
                parse_with_query(content_type.as_deref(), query, &body).expect("merged");
            assert_eq!(
                fields.secret.as_deref(),
                Some("from-body"),
                "{content_type:?}"
            );
            assert_eq!(ttl_of(&fields), Some(600), "{content_type:?}");
            assert_eq!(fields.passphrase.as_deref(), Some("query-pass"));
        }
        // A body field that is present but empty (or null) still wins: it was sent.
        let fields: Fields =
            parse_with_query(Some(FORM), Some("passphrase=q"), b"passphrase=").expect("empty");
        assert_eq!(fields.passphrase.as_deref(), Some(""));
        let fields: Fields =
            parse_with_query(Some(JSON), Some("passphrase=q"), br#"{"passphrase":null}"#)
                .expect("null");
        assert_eq!(fields.passphrase, None);
    }

    #[test]
    fn a_field_twice_in_one_source_is_refused() {
        for (content_type, query, body, source) in [
            (
                Some(FORM.to_owned()),
                Some("secret=a&secret=b"),
                b"secret=c".to_vec(),
                "the query string",
            ),
            (
                Some(FORM.to_owned()),
                Some("secret=a"),
                b"ttl=1&ttl=2".to_vec(),
                "the form body",
            ),
            (
                Some(multipart_type()),
                None,
                multipart(&[("secret", None, b"a"), ("secret", None, b"b")]),
                "the multipart body",
            ),
        ] {
            let err = parse_with_query::<Fields>(content_type.as_deref(), query, &body)
                .expect_err("twice");
            assert_eq!(err.kind(), burnbox_core::ErrorKind::BadRequest);
            assert!(err.message().starts_with(source), "{}", err.message());
            assert!(err.message().contains("each field at most once"));
        }
        // Once in the query and once in the body is one field from each source.
        let fields: Fields =
            parse_with_query(Some(FORM), Some("secret=a"), b"secret=b").expect("one each");
        assert_eq!(fields.secret.as_deref(), Some("b"));
        // Fields the API does not know are ignored, repeated or not.
        let fields: Fields =
            parse_with_query(Some(FORM), Some("utm=1&utm=2"), b"secret=b").expect("unknown");
        assert_eq!(fields.secret.as_deref(), Some("b"));
    }

    #[test]
    fn a_body_without_content_type_is_json_if_it_starts_with_a_brace() {
        let json: Fields =
            parse(None, b" \r\n\t{\"secret\":\"s\",\"ttl\":60}").expect("sniffed JSON");
        assert_eq!(json.secret.as_deref(), Some("s"));
        assert_eq!(ttl_of(&json), Some(60));
        let form: Fields = parse(None, b"secret=s&ttl=60").expect("sniffed form");
        assert_eq!(form, json);
        // Sniffed JSON is refused as JSON is.
        let err = parse::<Fields>(None, b"{\"secret\":").expect_err("bad JSON");
        assert!(err.message().starts_with("the body is not valid JSON"));
        // Sniffed forms are checked as forms are.
        let err = parse::<Fields>(None, b"secret=%FF").expect_err("not UTF-8");
        assert!(err.message().contains("\"secret\""), "{}", err.message());
    }

    #[test]
    fn unsupported_content_types_name_the_accepted_ones() {
        let err = parse::<Fields>(Some("text/plain"), b"x").expect_err("unsupported");
        for accepted in [FORM, MULTIPART, JSON] {
            assert!(err.message().contains(accepted), "{}", err.message());
        }
    }

    #[test]
    fn a_json_body_is_an_object() {
        let err = parse::<Fields>(Some(JSON), br#"["s", "p", "60", "a"]"#).expect_err("a list");
        assert_eq!(err.message(), "a JSON body is an object of named fields");
    }

    #[test]
    fn multipart_parts_with_a_filename_are_text() {
        let body = multipart(&[
            ("secret", Some("secret.txt"), "été\nline two\n".as_bytes()),
            ("passphrase", None, b"p"),
            ("unknown", Some("x.bin"), b"ignored"),
        ]);
        // The boundary may be quoted, and the header's case is the client's.
        for content_type in [
            multipart_type(),
            format!("Multipart/Form-Data; boundary=\"{BOUNDARY}\""),
        ] {
            let fields: Fields = parse(Some(&content_type), &body).expect("multipart");
            assert_eq!(fields.secret.as_deref(), Some("été\nline two\n"));
            assert_eq!(fields.passphrase.as_deref(), Some("p"));
        }
    }

    #[test]
    fn multipart_bodies_have_a_bounded_number_of_parts() {
        let many: Vec<(&str, Option<&str>, &[u8])> =
            vec![("other", None, &b"x"[..]); MAX_MULTIPART_PARTS];
        let fields: Fields = parse(Some(&multipart_type()), &multipart(&many)).expect("at bound");
        assert_eq!(fields, Fields::default());
        let too_many = vec![("other", None, &b"x"[..]); MAX_MULTIPART_PARTS + 1];
        let err = parse::<Fields>(Some(&multipart_type()), &multipart(&too_many))
            .expect_err("over the bound");
        assert_eq!(err.message(), "a multipart body has at most 32 parts");
    }

    #[test]
    fn multipart_without_a_usable_boundary_is_refused() {
        let body = multipart(&[("secret", None, b"s")]);
        for content_type in [MULTIPART, "multipart/form-data; charset=utf-8"] {
            let err = parse::<Fields>(Some(content_type), &body).expect_err("no boundary");
            assert_eq!(err.kind(), burnbox_core::ErrorKind::BadRequest);
            assert!(
                err.message().contains("needs a boundary"),
                "{}",
                err.message()
            );
        }
        // A boundary the body does not use, and a body cut short.
        let err = parse::<Fields>(Some(&format!("{MULTIPART}; boundary=other")), &body)
            .expect_err("wrong boundary");
        assert!(
            err.message()
                .starts_with("the multipart body could not be decoded")
        );
        let err = parse::<Fields>(Some(&multipart_type()), &body[..body.len() / 2])
            .expect_err("cut short");
        assert!(
            err.message()
                .starts_with("the multipart body could not be decoded")
        );
        // A part without a name.
        let nameless = format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data\r\n\r\ns\r\n--{BOUNDARY}--\r\n"
        );
        let err =
            parse::<Fields>(Some(&multipart_type()), nameless.as_bytes()).expect_err("no name");
        assert!(err.message().contains("no field name"), "{}", err.message());
    }

    #[test]
    fn multipart_parts_that_are_not_utf8_are_refused_naming_known_fields() {
        let err = parse::<Fields>(
            Some(&multipart_type()),
            &multipart(&[("secret", None, b"ok"), ("passphrase", None, b"\xFF\xFE")]),
        )
        .expect_err("not UTF-8");
        assert_eq!(
            err.message(),
            "the multipart field \"passphrase\" is not valid UTF-8"
        );
        let err = parse::<Fields>(
            Some(&multipart_type()),
            &multipart(&[("my-secret-name", Some("f"), b"\xC3")]),
        )
        .expect_err("not UTF-8");
        assert_eq!(err.message(), "a multipart field is not valid UTF-8");
    }

    #[test]
    fn form_bytes_that_are_not_utf8_are_refused_naming_the_field() {
        for (body, named) in [
            (&b"secret=%FF%FE"[..], "\"secret\""),
            (b"secret=ok&passphrase=%FF%FF", "\"passphrase\""),
            (b"secret=%C3", "\"secret\""),
            (b"%FF=x", "field name"),
            // Not a field of ours (a `&` left unencoded inside a secret): not quoted back.
            (b"secret=abc&tail-of-secret=%FF", "a form field is"),
        ] {
            let err = parse::<Fields>(Some(FORM), body).expect_err("not UTF-8");
            assert_eq!(err.kind(), burnbox_core::ErrorKind::BadRequest);
            assert!(err.message().contains(named), "{}", err.message());
        }
        let fields: Fields =
            parse(Some(FORM), "secret=%C3%A9t%C3%A9+%E2%82%AC".as_bytes()).expect("UTF-8 decodes");
        assert_eq!(fields.secret.as_deref(), Some("été €"));
    }

    #[test]
    fn query_bytes_that_are_not_utf8_are_refused_naming_the_field() {
        for (query, message) in [
            (
                "passphrase=%FF%FF",
                "the query parameter \"passphrase\" is not valid UTF-8 once percent-decoded",
            ),
            (
                "secret=a&rest-of-secret=%FE",
                "a query parameter is not valid UTF-8 once percent-decoded",
            ),
            (
                "%FF=x",
                "a query parameter name is not valid UTF-8 once percent-decoded",
            ),
        ] {
            // Refused even when the body gives the same field: the request is malformed.
            let err = parse_with_query::<Fields>(Some(FORM), Some(query), b"passphrase=p")
                .expect_err("not UTF-8");
            assert_eq!(err.kind(), burnbox_core::ErrorKind::BadRequest);
            assert_eq!(err.message(), message);
        }
    }

    #[test]
    fn errors_never_quote_the_body_or_the_query() {
        let secret = "hunter2";
        let multipart_type = multipart_type();
        let bad_part = multipart(&[("hunter2", None, b"hunter2\xFF")]);
        let cut_part = multipart(&[("secret", None, b"hunter2 hunter2 hunter2")]);
        let cases: [(Option<&str>, Option<&str>, &[u8]); 12] = [
            (
                Some(JSON),
                None,
                br#"{"secret": 123456789, "p": "hunter2"}"#,
            ),
            (Some(JSON), None, br#"{"secret": "hunter2""#),
            (Some(JSON), None, br#"["hunter2"]"#),
            (Some("text/plain"), None, b"hunter2"),
            (Some(FORM), None, b"secret=hunter2&hunter2=%FF"),
            (Some(FORM), None, b"secret=hunter2&secret=hunter2"),
            (None, Some("secret=hunter2&secret=hunter2"), b""),
            (None, Some("secret=hunter2&hunter2=%FF"), b""),
            (None, Some("hunter2%FF=x"), b""),
            (Some(&multipart_type), None, &bad_part),
            (
                Some(&multipart_type),
                None,
                &cut_part[..cut_part.len() - 20],
            ),
            (Some(MULTIPART), None, &cut_part),
        ];
        for (content_type, query, body) in cases {
            let err = parse_with_query::<Fields>(content_type, query, body).expect_err("refused");
            assert!(!err.message().contains(secret), "{}", err.message());
            assert!(!err.message().contains("123456789"), "{}", err.message());
        }
    }

    /// A form as serde would encode it.
    fn form_of(fields: &[(&str, &str)]) -> String {
        serde_urlencoded::to_string(fields).expect("encodes")
    }

    proptest::proptest! {
        #[test]
        fn any_body_is_an_answer_not_a_panic(
            content_type in proptest::option::of(proptest::prop_oneof![
                "[ -~]{0,40}",
                proptest::strategy::Just(multipart_type()),
            ]),
            query in proptest::option::of("[ -~]{0,60}"),
            bytes in proptest::collection::vec(proptest::arbitrary::any::<u8>(), 0..300),
        ) {
            let _ = parse_with_query::<Fields>(content_type.as_deref(), query.as_deref(), &bytes);
        }

        #[test]
        fn forms_carry_any_text_and_integer(secret in ".{1,100}", ttl in proptest::arbitrary::any::<i64>()) {
            let body = form_of(&[("secret", &secret), ("ttl", &ttl.to_string())]);
            let fields: Fields = parse(Some(FORM), body.as_bytes()).expect("decodes");
            proptest::prop_assert_eq!(fields.secret, Some(secret));
            proptest::prop_assert_eq!(fields.ttl.map(|field| field.value("ttl").ok()), Some(Some(ttl)));
        }

        #[test]
        fn json_carries_any_text_and_integer(secret in ".{1,100}", ttl in proptest::arbitrary::any::<i64>()) {
            let body = serde_json::json!({"secret": secret, "ttl": ttl}).to_string();
            let fields: Fields = parse(Some(JSON), body.as_bytes()).expect("decodes");
            proptest::prop_assert_eq!(fields.secret, Some(secret));
            proptest::prop_assert_eq!(fields.ttl.map(|field| field.value("ttl").ok()), Some(Some(ttl)));
        }

        #[test]
        fn multipart_carries_any_text(secret in ".{0,100}") {
            let body = multipart(&[("secret", Some("f.txt"), secret.as_bytes())]);
            let fields: Fields = parse(Some(&multipart_type()), &body).expect("decodes");
            proptest::prop_assert_eq!(fields.secret, Some(secret));
        }

        #[test]
        fn the_query_carries_any_text_and_the_body_wins(
            from_query in ".{1,100}",
            from_body in ".{1,100}",
            passphrase in ".{1,100}",
        ) {
            let query = form_of(&[("secret", &from_query), ("passphrase", &passphrase)]);
            let alone: Fields = parse_with_query(None, Some(&query), b"").expect("query");
            proptest::prop_assert_eq!(alone.secret, Some(from_query));
            let body = form_of(&[("secret", &from_body)]);
            let merged: Fields =
                parse_with_query(Some(FORM), Some(&query), body.as_bytes()).expect("merged");
            proptest::prop_assert_eq!(merged.secret, Some(from_body));
            proptest::prop_assert_eq!(merged.passphrase, Some(passphrase));
        }
    }
}
