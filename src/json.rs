//! The one JSON vocabulary for byte strings, used by every command: a JSON string when the bytes
//! are valid UTF-8, otherwise `{"base64": "..."}` (lossless for any binary data); and the one way
//! reports are written as JSON: serde values, whole (`serde_json::to_writer`), or as a
//! [`Stream`] when a report's list is printed as it is produced (diff's differences).

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

/// A JSON document written as it is produced: objects and arrays opened and closed in order,
/// fields and items serialized with serde. Keeps a report valid JSON whatever its size, without
/// holding its list in memory, and without hand-built strings.
pub struct Stream<'w> {
    out: &'w mut dyn std::io::Write,
    /// For each open object or array: whether something was written in it yet.
    open: Vec<(u8, bool)>,
}

impl<'w> Stream<'w> {
    /// A document on `out`; nothing is written until the first call.
    pub fn new(out: &'w mut dyn std::io::Write) -> Stream<'w> {
        Stream { out, open: Vec::new() }
    }

    /// The writer underneath (for text between documents).
    pub fn out(&mut self) -> &mut dyn std::io::Write {
        self.out
    }

    /// Writes the separator and, inside an object, the name of what comes next.
    fn next(&mut self, name: Option<&str>) -> std::io::Result<()> {
        if let Some((close, used)) = self.open.last_mut() {
            if *used {
                self.out.write_all(b",")?;
            }
            *used = true;
            if *close == b'}' {
                serde_json::to_writer(&mut *self.out, name.unwrap_or(""))?;
                self.out.write_all(b":")?;
            }
        }
        Ok(())
    }

    /// A field of the open object (or an item of the open array: `name` is then ignored).
    pub fn field<T: serde::Serialize + ?Sized>(&mut self, name: &str, value: &T) -> std::io::Result<()> {
        self.next(Some(name))?;
        serde_json::to_writer(&mut *self.out, value)?;
        Ok(())
    }

    /// An item of the open array, on a line of its own (for long lists a reader may scroll).
    pub fn item_on_line<T: serde::Serialize + ?Sized>(&mut self, value: &T) -> std::io::Result<()> {
        self.next(None)?;
        self.out.write_all(b"\n")?;
        serde_json::to_writer(&mut *self.out, value)?;
        Ok(())
    }

    /// An item of the open array.
    pub fn item<T: serde::Serialize + ?Sized>(&mut self, value: &T) -> std::io::Result<()> {
        self.field("", value)
    }

    /// Opens an object: the document itself, a field `name` of the open object, or an item.
    pub fn object(&mut self, name: &str) -> std::io::Result<()> {
        self.next(Some(name))?;
        self.out.write_all(b"{")?;
        self.open.push((b'}', false));
        Ok(())
    }

    /// Opens an array, as `object` opens an object.
    pub fn array(&mut self, name: &str) -> std::io::Result<()> {
        self.next(Some(name))?;
        self.out.write_all(b"[")?;
        self.open.push((b']', false));
        Ok(())
    }

    /// Closes the innermost open object or array; closing the document ends it with a newline.
    pub fn close(&mut self) -> std::io::Result<()> {
        if let Some((close, _)) = self.open.pop() {
            self.out.write_all(&[close])?;
            if self.open.is_empty() {
                self.out.write_all(b"\n")?;
            }
        }
        Ok(())
    }

    /// Closes everything still open (a document cut short by an error stays valid JSON).
    pub fn finish(&mut self) -> std::io::Result<()> {
        while !self.open.is_empty() {
            self.close()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_writes_nested_documents_that_parse() {
        let mut buf = Vec::new();
        let mut s = Stream::new(&mut buf);
        s.object("").unwrap();
        s.field("file", "a \"quoted\" name").unwrap();
        s.object("diff").unwrap();
        s.array("differences").unwrap();
        s.close().unwrap();
        s.array("more").unwrap();
        for i in 0..3 {
            s.item(&serde_json::json!({ "n": i })).unwrap();
        }
        s.close().unwrap();
        s.field("identical", &true).unwrap();
        s.finish().unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert!(text.ends_with("}\n"), "{text}");
        let v: Json = serde_json::from_str(&text).unwrap();
        assert_eq!(v["file"], "a \"quoted\" name");
        assert_eq!(v["diff"]["differences"], serde_json::json!([]));
        assert_eq!(v["diff"]["more"][2]["n"], 2);
        assert_eq!(v["diff"]["identical"], true);
    }
}
