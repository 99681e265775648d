//! A JSON tree that keeps every object member in document order.
//!
//! `serde_json::Value` keeps only the last of two members with the same name,
//! so `{"Effect": "Deny", "Effect": "Allow"}` would load as an Allow. The policy
//! parser reads this tree instead and rejects duplicate names.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// One JSON value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum JsonValue {
    Null,
    Bool(bool),
    /// A number, kept as text because the policy grammar only needs to name it in errors.
    Number(String),
    String(String),
    Array(Vec<JsonValue>),
    /// Object members in document order, duplicates included.
    Object(Vec<(String, JsonValue)>),
}

impl JsonValue {
    /// Returns the JSON type name with an article, such as "a list", for error messages.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            JsonValue::Null => "null",
            JsonValue::Bool(_) => "a boolean",
            JsonValue::Number(_) => "a number",
            JsonValue::String(_) => "a string",
            JsonValue::Array(_) => "a list",
            JsonValue::Object(_) => "an object",
        }
    }
}

/// Returns the first member name that appears twice in `members`, if any.
pub(crate) fn find_duplicate_name(members: &[(String, JsonValue)]) -> Option<&str> {
    members.iter().enumerate().find_map(|(index, (name, _))| {
        let seen_before = members
            .iter()
            .take(index)
            .any(|(earlier, _)| earlier == name);
        seen_before.then_some(name.as_str())
    })
}

impl<'de> Deserialize<'de> for JsonValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonValueVisitor)
    }
}

struct JsonValueVisitor;

impl<'de> Visitor<'de> for JsonValueVisitor {
    type Value = JsonValue;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<JsonValue, E> {
        Ok(JsonValue::Null)
    }

    fn visit_bool<E>(self, value: bool) -> Result<JsonValue, E> {
        Ok(JsonValue::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<JsonValue, E> {
        Ok(JsonValue::Number(value.to_string()))
    }

    fn visit_u64<E>(self, value: u64) -> Result<JsonValue, E> {
        Ok(JsonValue::Number(value.to_string()))
    }

    fn visit_f64<E>(self, value: f64) -> Result<JsonValue, E> {
        Ok(JsonValue::Number(value.to_string()))
    }

    fn visit_str<E>(self, value: &str) -> Result<JsonValue, E> {
        Ok(JsonValue::String(value.to_owned()))
    }

    fn visit_string<E>(self, value: String) -> Result<JsonValue, E> {
        Ok(JsonValue::String(value))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<JsonValue, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(JsonValue::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<JsonValue, A::Error> {
        let mut members = Vec::new();
        while let Some((name, value)) = map.next_entry::<String, JsonValue>()? {
            members.push((name, value));
        }
        Ok(JsonValue::Object(members))
    }
}

#[cfg(test)]
mod tests {
    use super::{find_duplicate_name, JsonValue};

    fn parse(text: &str) -> JsonValue {
        match serde_json::from_str(text) {
            Ok(value) => value,
            Err(error) => panic!("{text} should parse: {error}"),
        }
    }

    #[test]
    fn duplicate_members_are_kept() {
        let value = parse(r#"{"Effect": "Deny", "Effect": "Allow"}"#);
        let expected = JsonValue::Object(vec![
            ("Effect".to_owned(), JsonValue::String("Deny".to_owned())),
            ("Effect".to_owned(), JsonValue::String("Allow".to_owned())),
        ]);
        assert_eq!(value, expected);
    }

    #[test]
    fn find_duplicate_name_reports_the_repeated_name() {
        let JsonValue::Object(members) = parse(r#"{"a": 1, "b": 2, "a": 3}"#) else {
            panic!("an object should parse as an object");
        };
        assert_eq!(find_duplicate_name(&members), Some("a"));

        let JsonValue::Object(members) = parse(r#"{"a": 1, "A": 2}"#) else {
            panic!("an object should parse as an object");
        };
        assert_eq!(find_duplicate_name(&members), None);
    }

    #[test]
    fn scalars_and_lists_parse() {
        let value = parse(r#"[null, true, 12, -3, 1.5, "x"]"#);
        let expected = JsonValue::Array(vec![
            JsonValue::Null,
            JsonValue::Bool(true),
            JsonValue::Number("12".to_owned()),
            JsonValue::Number("-3".to_owned()),
            JsonValue::Number("1.5".to_owned()),
            JsonValue::String("x".to_owned()),
        ]);
        assert_eq!(value, expected);
    }

    #[test]
    fn trailing_text_is_a_syntax_error() {
        assert!(serde_json::from_str::<JsonValue>(r#"{"a": 1} x"#).is_err());
    }
}
