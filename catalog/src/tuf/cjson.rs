//! OLPC canonical JSON, byte-compatible with securesystemslib's `encode_canonical`
//! (which is what python-tuf signs).
//!
//! Rules: no insignificant whitespace; object keys sorted by Unicode code point
//! (= UTF-8 byte order); strings written as raw UTF-8 with only `"` and `\`
//! escaped; integers only (floats are refused); `true`, `false`, `null`.
//!
//! The `olpc-cjson` crate is not used here because it NFC-normalises strings and
//! sorts keys by their escaped form, both of which differ from securesystemslib
//! for unusual inputs, and a signature must cover exactly what the peer hashes.

use serde_json::Value;

use super::error::TufError;

/// Encodes `value` as canonical JSON bytes.
pub fn canonical_json(value: &Value) -> Result<Vec<u8>, TufError> {
    let mut out = Vec::with_capacity(256);
    write_value(value, &mut out)?;
    Ok(out)
}

/// Serialises `value` through `serde_json::Value` and encodes it canonically.
pub fn to_canonical_json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, TufError> {
    let v = serde_json::to_value(value).map_err(|e| TufError::CanonicalJson(e.to_string()))?;
    canonical_json(&v)
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for b in s.bytes() {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
}

fn write_value(value: &Value, out: &mut Vec<u8>) -> Result<(), TufError> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                out.extend_from_slice(i.to_string().as_bytes());
            } else if let Some(u) = n.as_u64() {
                out.extend_from_slice(u.to_string().as_bytes());
            } else {
                return Err(TufError::CanonicalJson(format!(
                    "non-integer number {n} is not allowed"
                )));
            }
        }
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, out)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(k, out);
                out.push(b':');
                write_value(v, out)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_table() {
        let cases: Vec<(Value, &str)> = vec![
            (json!(null), "null"),
            (json!(true), "true"),
            (json!(false), "false"),
            (json!(0), "0"),
            (json!(-17), "-17"),
            (json!(u64::MAX), "18446744073709551615"),
            (json!(""), r#""""#),
            (json!("a\"b\\c"), r#""a\"b\\c""#),
            // control characters and non-ASCII are written raw, not escaped
            (json!("tab\there\nnl"), "\"tab\there\nnl\""),
            (json!("é/ü"), "\"é/ü\""),
            // no NFC normalisation: a decomposed "e" + combining acute stays as is
            (json!("e\u{301}"), "\"e\u{301}\""),
            (json!([]), "[]"),
            (json!({}), "{}"),
            (json!([1, "x", [null]]), r#"[1,"x",[null]]"#),
            (
                json!({"b": 1, "a": {"d": [], "c": "x"}, "A": 2}),
                r#"{"A":2,"a":{"c":"x","d":[]},"b":1}"#,
            ),
            // prefix keys sort before longer keys, even with low code points after
            (json!({"a\u{1}": 1, "a": 2}), "{\"a\":2,\"a\u{1}\":1}"),
            // code point order, not escaped-form order
            (json!({"a\"": 1, "a!": 2}), "{\"a!\":2,\"a\\\"\":1}"),
        ];
        for (value, expected) in cases {
            let got = canonical_json(&value).unwrap();
            assert_eq!(String::from_utf8(got).unwrap(), expected, "value {value}");
        }
    }

    #[test]
    fn floats_refused() {
        assert!(canonical_json(&json!(1.5)).is_err());
        assert!(canonical_json(&json!({"a": [0.1]})).is_err());
    }

    fn arb_value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|i| json!(i)),
            any::<u64>().prop_map(|u| json!(u)),
            "[a-zA-Z0-9 \"\\\\é😀/]{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map("[a-z\"é]{0,4}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #[test]
        fn canonical_round_trips_and_is_stable(v in arb_value()) {
            let c = canonical_json(&v).unwrap();
            let back: Value = serde_json::from_slice(&c).unwrap();
            proptest::prop_assert_eq!(&back, &v);
            proptest::prop_assert_eq!(canonical_json(&back).unwrap(), c);
        }
    }
}
