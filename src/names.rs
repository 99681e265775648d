//! Validation of resource names and tags, with Lightsail's rules.

use crate::error::{Error, Result};
use crate::model::Tag;

/// Maximum length of a resource name that Lightsail accepts.
pub const MAX_NAME_LEN: usize = 255;
/// Most tags one resource may carry.
pub const MAX_TAGS: usize = 50;
/// Maximum length of a tag key, in characters.
pub const MAX_TAG_KEY_LEN: usize = 128;
/// Maximum length of a tag value, in characters.
pub const MAX_TAG_VALUE_LEN: usize = 256;

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Checks `value` against Lightsail's resource name pattern `\w[\w\-]*\w`
/// (ASCII letters, digits, `_` and `-`, at least two characters, neither end a
/// hyphen) and its 255-character limit. `what` names the parameter in the error.
pub fn validate_resource_name(what: &str, value: &str) -> Result<()> {
    let fix = "Use 2 to 255 ASCII letters, digits, underscores or hyphens, starting and ending with a letter, digit or underscore";
    let first = value.chars().next();
    let last = value.chars().last();
    let valid = value.len() >= 2
        && value.len() <= MAX_NAME_LEN
        && value.chars().all(|c| is_word_char(c) || c == '-')
        && first.is_some_and(is_word_char)
        && last.is_some_and(is_word_char);
    if valid {
        Ok(())
    } else {
        Err(Error::invalid_input(format!(
            "{what} {value:?} is not a valid resource name. {fix}."
        )))
    }
}

/// Checks a set of tags the way Lightsail does: keys of 1 to 128 characters,
/// values of 0 to 256, at most 50 tags, every key unique. Characters allowed
/// are letters, digits, spaces and `+ - = . _ : / @` in any script.
pub fn validate_tags(tags: &[Tag]) -> Result<()> {
    if tags.len() > MAX_TAGS {
        return Err(Error::invalid_input(format!(
            "{} tags were given, but a resource can carry at most {MAX_TAGS}. Remove some tags.",
            tags.len()
        )));
    }
    let mut seen = std::collections::BTreeSet::new();
    for tag in tags {
        validate_tag_key(&tag.key)?;
        if let Some(value) = &tag.value {
            validate_tag_value(&tag.key, value)?;
        }
        if !seen.insert(tag.key.as_str()) {
            return Err(Error::invalid_input(format!(
                "tag key {:?} is given more than once. Give each key once.",
                tag.key
            )));
        }
    }
    Ok(())
}

/// Letters, digits, Unicode separators (`\p{Z}`, which includes the space
/// but not tabs or line breaks) and `+ - = . _ : / @`, as AWS tag rules allow.
fn is_tag_char(c: char) -> bool {
    // White_Space minus the control characters is exactly the Z category.
    let separator = c.is_whitespace() && !c.is_control();
    c.is_alphanumeric() || separator || "+-=._:/@".contains(c)
}

/// Checks one tag key.
pub fn validate_tag_key(key: &str) -> Result<()> {
    let chars = key.chars().count();
    if chars == 0 || chars > MAX_TAG_KEY_LEN {
        return Err(Error::invalid_input(format!(
            "tag key {key:?} has {chars} characters. Use 1 to {MAX_TAG_KEY_LEN}."
        )));
    }
    if key.starts_with("aws:") {
        return Err(Error::invalid_input(format!(
            "tag key {key:?} starts with the reserved prefix \"aws:\". Choose another key."
        )));
    }
    if let Some(bad) = key.chars().find(|c| !is_tag_char(*c)) {
        return Err(Error::invalid_input(format!(
            "tag key {key:?} contains {bad:?}. Use letters, digits, spaces and + - = . _ : / @."
        )));
    }
    Ok(())
}

fn validate_tag_value(key: &str, value: &str) -> Result<()> {
    let chars = value.chars().count();
    if chars > MAX_TAG_VALUE_LEN {
        return Err(Error::invalid_input(format!(
            "the value of tag {key:?} has {chars} characters. Use at most {MAX_TAG_VALUE_LEN}."
        )));
    }
    if let Some(bad) = value.chars().find(|c| !is_tag_char(*c)) {
        return Err(Error::invalid_input(format!(
            "the value of tag {key:?} contains {bad:?}. Use letters, digits, spaces and + - = . _ : / @."
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_name_boundaries() {
        let cases: &[(&str, bool)] = &[
            ("", false),
            ("a", false),
            ("ab", true),
            ("a-b", true),
            ("a_", true),
            ("_a", true),
            ("-a", false),
            ("a-", false),
            ("a b", false),
            ("a.b", false),
            ("snap-2026-12-04", true),
            ("é1", false),
        ];
        for (name, valid) in cases {
            assert_eq!(
                validate_resource_name("name", name).is_ok(),
                *valid,
                "{name:?}"
            );
        }
        assert!(validate_resource_name("name", &"a".repeat(255)).is_ok());
        assert!(validate_resource_name("name", &"a".repeat(256)).is_err());
    }

    #[test]
    fn tag_limits() {
        let tag = |key: &str, value: &str| Tag {
            key: key.into(),
            value: Some(value.into()),
        };
        assert!(validate_tags(&[tag("env", "")]).is_ok());
        assert!(validate_tags(&[tag("", "x")]).is_err());
        assert!(validate_tags(&[tag(&"k".repeat(128), "x")]).is_ok());
        assert!(validate_tags(&[tag(&"k".repeat(129), "x")]).is_err());
        assert!(validate_tags(&[tag("k", &"v".repeat(256))]).is_ok());
        assert!(validate_tags(&[tag("k", &"v".repeat(257))]).is_err());
        assert!(validate_tags(&[tag("k", "a"), tag("k", "b")]).is_err());
        assert!(validate_tags(&[tag("aws:x", "a")]).is_err());
        let fifty: Vec<Tag> = (0..50).map(|i| tag(&format!("k{i}"), "v")).collect();
        assert!(validate_tags(&fifty).is_ok());
        let fifty_one: Vec<Tag> = (0..51).map(|i| tag(&format!("k{i}"), "v")).collect();
        assert!(validate_tags(&fifty_one).is_err());
    }

    #[test]
    fn tag_separators() {
        let tag = |value: &str| Tag {
            key: "note".into(),
            value: Some(value.into()),
        };
        assert!(validate_tags(&[tag("two words")]).is_ok());
        assert!(validate_tags(&[tag("no\u{a0}break")]).is_ok());
        assert!(validate_tags(&[tag("tab\there")]).is_err());
        assert!(validate_tags(&[tag("line\nbreak")]).is_err());
        assert!(validate_tags(&[tag("carriage\rreturn")]).is_err());
    }
}
