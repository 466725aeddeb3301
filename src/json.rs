//! The one JSON vocabulary for byte strings, used by every command: a JSON string when the bytes
//! are valid UTF-8, otherwise `{"base64": "..."}` (lossless for any binary data).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value as Json;

pub fn bytes(b: &[u8]) -> Json {
    match std::str::from_utf8(b) {
        Ok(s) => Json::String(s.to_owned()),
        Err(_) => serde_json::json!({ "base64": STANDARD.encode(b) }),
    }
}

/// A score as JSON: a number, or `"inf"` / `"-inf"` (JSON has no infinities).
pub fn score(f: f64) -> Json {
    if f == f64::INFINITY {
        Json::from("inf")
    } else if f == f64::NEG_INFINITY {
        Json::from("-inf")
    } else {
        serde_json::Number::from_f64(f).map(Json::Number).unwrap_or(Json::Null)
    }
}

/// Serde helper: `#[serde(serialize_with = "crate::json::ser_bytes")]`.
pub fn ser_bytes<S: serde::Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
    serde::Serialize::serialize(&bytes(b), s)
}

pub fn ser_opt_bytes<S: serde::Serializer>(b: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
    match b {
        Some(b) => ser_bytes(b, s),
        None => s.serialize_none(),
    }
}

/// Decodes the vocabulary back to bytes (for tests and for reading our own output).
pub fn to_bytes(v: &Json) -> Option<Vec<u8>> {
    match v {
        Json::String(s) => Some(s.as_bytes().to_vec()),
        Json::Object(o) => {
            let b = o.get("base64").or_else(|| o.get("b64"))?.as_str()?;
            STANDARD.decode(b).ok()
        }
        _ => None,
    }
}
