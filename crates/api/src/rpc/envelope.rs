//! The JSON-RPC request body, one call or a batch, read in one pass with each call's `id` kept
//! as the exact JSON text the client sent.
//!
//! Read into a `serde_json::Value`, a numeric id goes through `u64`, `i64` or `f64`:
//! `18446744073709551617` came back as `1.8446744073709552e19` and `1e2` as `100.0`, and a
//! client matching replies to requests by id lost them. Geth echoes the raw text, and so do
//! we (`serde_json`'s `arbitrary_precision` would also keep it, but changes how every number
//! in the crate is held). The other members are read into `Value`s as before.

use std::fmt;

use serde::{
    Deserialize, Deserializer,
    de::{MapAccess, SeqAccess, Visitor},
};
use serde_json::{Map, Value, value::RawValue};

/// A request body.
#[derive(Debug)]
pub(super) enum Body {
    /// One call (or one value that is not a call).
    Single(Envelope),
    /// A batch: the elements of a JSON array, in order.
    Batch(Vec<Envelope>),
}

/// One call as received, before its envelope is checked.
#[derive(Debug)]
pub(super) enum Envelope {
    /// A JSON object: its `id` as sent (absent for a notification), and its other members (a
    /// member sent twice keeps its last value).
    Object { id: Option<Box<RawValue>>, members: Map<String, Value> },
    /// Any other JSON value: an invalid request.
    NotObject,
}

/// Whether `id` is a valid JSON-RPC 2.0 id: a string, a number or `null`.
pub(super) fn is_valid_id(id: &RawValue) -> bool {
    // A raw value is exactly one JSON value without surrounding whitespace, so its first byte
    // names its type.
    matches!(id.get().as_bytes().first(), Some(b'"' | b'-' | b'0'..=b'9' | b'n'))
}

impl<'de> Deserialize<'de> for Body {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(BodyVisitor)
    }
}

impl<'de> Deserialize<'de> for Envelope {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(EnvelopeVisitor)
    }
}

/// Scalars are not calls: each visitor answers them with its "not an object" value.
macro_rules! not_object {
    ($value:expr) => {
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok($value)
        }
    };
}

struct BodyVisitor;

impl<'de> Visitor<'de> for BodyVisitor {
    type Value = Body;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON-RPC request or batch")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Body, A::Error> {
        EnvelopeVisitor.visit_map(map).map(Body::Single)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Body, A::Error> {
        let mut calls = Vec::new();
        while let Some(call) = seq.next_element::<Envelope>()? {
            calls.push(call);
        }
        Ok(Body::Batch(calls))
    }

    not_object!(Body::Single(Envelope::NotObject));
}

struct EnvelopeVisitor;

impl<'de> Visitor<'de> for EnvelopeVisitor {
    type Value = Envelope;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON-RPC request")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Envelope, A::Error> {
        let mut id = None;
        let mut members = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if key == "id" {
                id = Some(map.next_value::<Box<RawValue>>()?);
            } else {
                let value = map.next_value::<Value>()?;
                members.insert(key, value);
            }
        }
        Ok(Envelope::Object { id, members })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Envelope, A::Error> {
        // Read as values, not skipped: skipping does not count nesting, and a body nested past
        // serde's recursion limit must stay a parse error.
        while seq.next_element::<Value>()?.is_some() {}
        Ok(Envelope::NotObject)
    }

    not_object!(Envelope::NotObject);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(body: &str) -> Vec<Option<String>> {
        let envelopes = match serde_json::from_str::<Body>(body).unwrap() {
            Body::Single(one) => vec![one],
            Body::Batch(many) => many,
        };
        envelopes
            .into_iter()
            .map(|e| match e {
                Envelope::Object { id, .. } => id.map(|id| id.get().to_owned()),
                Envelope::NotObject => Some("<not an object>".to_owned()),
            })
            .collect()
    }

    #[test]
    fn ids_keep_their_exact_text() {
        let body = r#"[{"id":18446744073709551617},{"id": 1e2 },{"id":-0.50},{"id":"a\"\u00e9"},
            {"id":null},{},{"id":1,"id":2},5,"x",[1,{"id":3}],null,true]"#;
        let want = [
            Some("18446744073709551617"),
            Some("1e2"),
            Some("-0.50"),
            Some(r#""a\"\u00e9""#),
            Some("null"),
            None,
            Some("2"),
            Some("<not an object>"),
            Some("<not an object>"),
            Some("<not an object>"),
            Some("<not an object>"),
            Some("<not an object>"),
        ];
        let want: Vec<Option<String>> = want.iter().map(|w| w.map(str::to_owned)).collect();
        assert_eq!(ids(body), want);
    }

    #[test]
    fn only_strings_numbers_and_null_are_ids() {
        for good in ["\"x\"", "0", "-1", "1.5e300", "null"] {
            assert!(is_valid_id(&RawValue::from_string(good.to_owned()).unwrap()), "{good}");
        }
        for bad in ["{}", "[]", "true", "false"] {
            assert!(!is_valid_id(&RawValue::from_string(bad.to_owned()).unwrap()), "{bad}");
        }
    }

    #[test]
    fn scalars_and_bad_json_are_told_apart() {
        assert!(matches!(
            serde_json::from_str::<Body>("42"),
            Ok(Body::Single(Envelope::NotObject))
        ));
        assert!(serde_json::from_str::<Body>("{\"id\":1,").is_err());
        let deep = format!("{}{}", "[".repeat(300), "]".repeat(300));
        assert!(serde_json::from_str::<Body>(&deep).is_err(), "the recursion limit holds");
    }
}
