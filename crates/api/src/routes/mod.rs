//! REST handlers, one file per area, and the parsing helpers they share.

pub(crate) mod blocks;
pub(crate) mod digests;
pub(crate) mod events;
pub(crate) mod pool;
pub(crate) mod status;
pub(crate) mod stream;
pub(crate) mod txs;

use axum::extract::{Query, rejection::QueryRejection};
use mempulse_primitives::{KindCode, Seq};
use serde::{Deserialize, de::DeserializeOwned};

use crate::{ApiError, ErrorCode};

/// Maps a query-string rejection (an unknown or repeated parameter, a value of the wrong
/// type) to `INVALID_QUERY`.
pub(crate) fn query_error(rejection: &QueryRejection) -> ApiError {
    ApiError::new(ErrorCode::InvalidQuery, rejection.body_text())
}

/// The query of a `/v1` route that takes no parameters: every parameter is unknown, so the
/// route answers `INVALID_QUERY` for it as the routes with parameters do for theirs.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NoParams {}

/// `Err(INVALID_QUERY)` when a route that takes no parameters got some (an empty query string
/// passes).
pub(crate) fn no_params(query: Result<Query<NoParams>, QueryRejection>) -> Result<(), ApiError> {
    query.map(|_| ()).map_err(|e| query_error(&e))
}

/// Parses a JSON body: bad syntax is `INVALID_JSON`, the wrong shape `INVALID_BODY`.
pub(crate) fn json_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        let code = match e.classify() {
            serde_json::error::Category::Data => ErrorCode::InvalidBody,
            serde_json::error::Category::Io
            | serde_json::error::Category::Syntax
            | serde_json::error::Category::Eof => ErrorCode::InvalidJson,
        };
        ApiError::new(code, e.to_string())
    })
}

/// Parses a decimal integer made of ASCII digits only (no sign, no spaces).
fn parse_digits(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// A log cursor: the seq of the last record the client has seen (`0` for none).
pub(crate) fn parse_cursor(text: &str) -> Result<Seq, ApiError> {
    parse_digits(text).map(Seq).ok_or_else(|| {
        ApiError::new(
            ErrorCode::InvalidCursor,
            format!("cursor {text:?} is not a seq (a decimal integer from 0 to {})", u64::MAX),
        )
    })
}

/// A page size from 1 to `max`.
pub(crate) fn parse_limit(text: &str, max: usize) -> Result<usize, ApiError> {
    let bad = || {
        ApiError::new(
            ErrorCode::InvalidLimit,
            format!("limit {text:?} is not an integer from 1 to {max}"),
        )
    };
    let value = parse_digits(text).ok_or_else(bad)?;
    let value = usize::try_from(value).map_err(|_| bad())?;
    if value == 0 || value > max {
        return Err(bad());
    }
    Ok(value)
}

/// The set of event kinds a filter accepts, indexed by wire code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct KindFilter([bool; 256]);

impl KindFilter {
    /// Accepts every kind.
    pub(crate) const ALL: Self = Self([true; 256]);

    /// Whether `kind` passes.
    pub(crate) const fn accepts(&self, kind: KindCode) -> bool {
        self.0[kind.code() as usize]
    }

    /// Whether the filter accepts every kind.
    pub(crate) fn is_all(&self) -> bool {
        KindCode::ALL.iter().all(|k| self.accepts(*k))
    }
}

/// Parses `kinds=a,b`: comma-separated stable kind names.
pub(crate) fn parse_kinds(text: &str) -> Result<KindFilter, ApiError> {
    let mut filter = [false; 256];
    for name in text.split(',') {
        let name = name.trim();
        let Some(kind) = KindCode::from_name(name) else {
            let valid: Vec<&str> = KindCode::ALL.iter().map(|k| k.as_str()).collect();
            return Err(ApiError::new(
                ErrorCode::UnknownKind,
                format!("unknown event kind {name:?}; valid kinds: {}", valid.join(", ")),
            ));
        };
        filter[usize::from(kind.code())] = true;
    }
    Ok(KindFilter(filter))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_are_plain_digits() {
        assert_eq!(parse_cursor("0").unwrap(), Seq(0));
        assert_eq!(parse_cursor("18446744073709551615").unwrap(), Seq(u64::MAX));
        for bad in ["", "-1", "+1", " 1", "1.0", "0x10", "18446744073709551616", "abc"] {
            assert_eq!(parse_cursor(bad).unwrap_err().code, ErrorCode::InvalidCursor, "{bad}");
        }
    }

    #[test]
    fn limits_are_bounded() {
        assert_eq!(parse_limit("1", 10).unwrap(), 1);
        assert_eq!(parse_limit("10", 10).unwrap(), 10);
        for bad in ["0", "11", "", "-5", "99999999999999999999999"] {
            assert_eq!(parse_limit(bad, 10).unwrap_err().code, ErrorCode::InvalidLimit, "{bad}");
        }
    }

    #[test]
    fn kinds_parse_by_stable_name() {
        let f = parse_kinds("tx_admitted, block_committed").unwrap();
        assert!(f.accepts(KindCode::TxAdmitted));
        assert!(f.accepts(KindCode::BlockCommitted));
        assert!(!f.accepts(KindCode::TxRejected));
        assert!(!f.is_all());
        assert!(KindFilter::ALL.is_all());
        let err = parse_kinds("tx_admitted,nope").unwrap_err();
        assert_eq!(err.code, ErrorCode::UnknownKind);
        assert!(err.message.contains("tx_received"), "{}", err.message);
        assert_eq!(parse_kinds("").unwrap_err().code, ErrorCode::UnknownKind);
    }
}
