//! Pages of lists. A list answers a JSON array; when more remain, a `Link: <...>; rel="next"`
//! header (RFC 8288) carries an opaque cursor. The cursor is signed and bound to the caller and
//! to the list it came from, so a tampered cursor, or one taken from someone else's list, is
//! refused with 422 instead of leaking another caller's position.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use lambda_http::http::HeaderValue;
use lambda_http::http::header::LINK;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::error::ApiError;
use crate::users::UserId;

/// Items per page unless `limit` says otherwise.
pub const DEFAULT_LIMIT: u32 = 50;
/// The largest `limit` accepted.
pub const MAX_LIMIT: u32 = 100;

const TAG_BYTES: usize = 32;

/// A position in a list: the attributes of the last item returned, as strings.
pub type Position = BTreeMap<String, String>;

/// One page of a list.
#[derive(Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<Position>,
}

/// What a cursor is bound to.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Signed {
    /// The caller.
    u: u64,
    /// The list and its filters.
    l: String,
    /// The position.
    p: Position,
}

/// Signs and checks cursors with a key derived from the signing secret.
pub struct CursorCodec {
    key: Vec<u8>,
}

impl CursorCodec {
    pub fn new(secret: &[u8]) -> Self {
        // A key of its own, so a cursor's tag can never serve as anything else's.
        let mut mac = Hmac::<Sha256>::new_from_slice(secret)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        mac.update(b"clinic pagination cursor v1");
        Self { key: mac.finalize().into_bytes().to_vec() }
    }

    fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"))
    }

    /// An opaque cursor for `position` in `list`, usable by `caller` only.
    pub fn encode(&self, caller: UserId, list: &str, position: Position) -> String {
        let signed = Signed { u: caller.get(), l: list.to_owned(), p: position };
        let payload = serde_json::to_vec(&signed).unwrap_or_default();
        let mut mac = self.mac();
        mac.update(&payload);
        let mut bytes = mac.finalize().into_bytes().to_vec();
        bytes.extend_from_slice(&payload);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The position in a cursor, if it is intact and was issued to `caller` for `list`.
    pub fn decode(&self, caller: UserId, list: &str, cursor: &str) -> Result<Position, ApiError> {
        let refused = || ApiError::invalid_field("next", "is not a cursor this list gave you");
        let bytes = URL_SAFE_NO_PAD.decode(cursor.trim()).map_err(|_| refused())?;
        if bytes.len() <= TAG_BYTES {
            return Err(refused());
        }
        let (tag, payload) = bytes.split_at(TAG_BYTES);
        let mut mac = self.mac();
        mac.update(payload);
        mac.verify_slice(tag).map_err(|_| refused())?;
        let signed: Signed = serde_json::from_slice(payload).map_err(|_| refused())?;
        if signed.u != caller.get() || signed.l != list {
            return Err(refused());
        }
        Ok(signed.p)
    }
}

/// Reads `limit` from a query string value.
pub fn parse_limit(raw: Option<&str>) -> Result<u32, ApiError> {
    let Some(raw) = raw else {
        return Ok(DEFAULT_LIMIT);
    };
    match raw.trim().parse::<u32>() {
        Ok(limit) if (1..=MAX_LIMIT).contains(&limit) => Ok(limit),
        _ => Err(ApiError::invalid_field(
            "limit",
            format!("must be a whole number from 1 to {MAX_LIMIT}"),
        )),
    }
}

/// `limit` and the position of `next` from a list request's query string. The cursor must
/// have been issued to `caller` for `list` (the list's name and filters).
pub fn page_request(
    request: &Request,
    cursors: &CursorCodec,
    caller: UserId,
    list: &str,
) -> Result<(u32, Option<Position>), ApiError> {
    let query = request.query_string_parameters();
    let limit = parse_limit(query.first("limit"))?;
    let after = query.first("next").map(|c| cursors.decode(caller, list, c)).transpose()?;
    Ok((limit, after))
}

/// A JSON array response; when more remain, a `Link` header to the next page: this request's
/// path and query with a new `next` cursor.
pub fn page_response<T: Serialize>(
    request: &Request,
    cursors: &CursorCodec,
    caller: UserId,
    list: &str,
    items: &[T],
    next: Option<Position>,
) -> Response<Body> {
    let mut response = crate::http::json_response(lambda_http::http::StatusCode::OK, &items);
    let Some(position) = next else {
        return response;
    };

    let cursor = cursors.encode(caller, list, position);
    let query = request.query_string_parameters();
    let mut next_query = form_urlencoded::Serializer::new(String::new());
    for (name, value) in query.iter().filter(|(name, _)| *name != "next") {
        next_query.append_pair(name, value);
    }
    next_query.append_pair("next", &cursor);
    let link = format!("<{}?{}>; rel=\"next\"", request.uri().path(), next_query.finish());
    if let Ok(value) = HeaderValue::from_str(&link) {
        response.headers_mut().insert(LINK, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codec() -> CursorCodec {
        CursorCodec::new(b"a secret that is long enough for tests")
    }

    fn position() -> Position {
        [("pk".to_owned(), "CELL#x".to_owned()), ("sk".to_owned(), "2030".to_owned())].into()
    }

    #[test]
    fn a_cursor_round_trips_for_its_caller_and_list() {
        let cursor = codec().encode(UserId::new(7), "mine:all", position());

        assert_eq!(codec().decode(UserId::new(7), "mine:all", &cursor).expect("valid"), position());
    }

    #[test]
    fn another_caller_another_list_or_a_changed_byte_is_refused() {
        let cursor = codec().encode(UserId::new(7), "mine:all", position());
        let mut tampered = cursor.clone().into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).expect("ascii");

        assert!(codec().decode(UserId::new(8), "mine:all", &cursor).is_err());
        assert!(codec().decode(UserId::new(7), "mine:past", &cursor).is_err());
        assert!(codec().decode(UserId::new(7), "mine:all", &tampered).is_err());
        assert!(codec().decode(UserId::new(7), "mine:all", "garbage!").is_err());
        let other_key = CursorCodec::new(b"another secret that is long enough");
        assert!(other_key.decode(UserId::new(7), "mine:all", &cursor).is_err());
    }

    #[test]
    fn limits_are_bounded() {
        assert_eq!(parse_limit(None).unwrap(), DEFAULT_LIMIT);
        assert_eq!(parse_limit(Some("100")).unwrap(), 100);
        for bad in ["0", "101", "-1", "ten"] {
            assert!(parse_limit(Some(bad)).is_err(), "{bad}");
        }
    }
}
