//! Condition operators, condition keys and their evaluation.
//!
//! A `Condition` element maps operators to condition keys and each key to one
//! value or a list of values. Every (operator, key) pair becomes one
//! [`Condition`], and a statement applies only when all of them hold.
//!
//! Semantics, following the IAM User Guide pages "Condition operators" and
//! "Single-valued vs. multivalued context keys":
//!
//! - Several values for one key are alternatives. A positive operator holds when
//!   the request value matches any of them. A negated operator (`StringNotEquals`,
//!   `StringNotEqualsIgnoreCase`, `StringNotLike`) holds when the request value
//!   matches none of them.
//! - An absent key makes a positive operator false and a negated operator true.
//!   With the `IfExists` suffix an absent key makes the operator true. `Null: true`
//!   holds when the key is absent and `Null: false` when it is present.
//! - `ForAllValues:` holds when every request value passes the per-value test,
//!   so it holds for an absent key. `ForAnyValue:` holds when at least one value
//!   passes, so it fails for an absent key unless the operator ends in `IfExists`.
//! - Condition key names are case-insensitive, including the tag key inside
//!   `aws:ResourceTag/KEY` and `aws:RequestTag/KEY`. Values compare
//!   case-sensitively except under the `IgnoreCase` operators.
//! - IAM leaves open what happens when two tags differ only in case. Here each
//!   matching tag contributes a value, a positive operator holds when any value
//!   matches, and a negated operator holds when none does.

use std::collections::BTreeMap;

use super::error::{PolicyError, PolicyErrorKind};
use super::evaluate::AccessRequest;
use super::json::{find_duplicate_name, JsonValue};
use super::policy::PolicyVersion;
use super::wildcard::{has_wildcard, wildcard_match};

const SUPPORTED_OPERATORS: &str = "StringEquals, StringNotEquals, StringEqualsIgnoreCase, \
    StringNotEqualsIgnoreCase, StringLike, StringNotLike, their IfExists forms and Null, each \
    with an optional ForAllValues: or ForAnyValue: prefix";

const SUPPORTED_KEYS: &str = "aws:ResourceTag/KEY, aws:RequestTag/KEY and aws:TagKeys";

/// Base names of the string operators: (name, comparison, negated).
const STRING_OPERATORS: [(&str, StringComparison, bool); 6] = [
    ("StringEquals", StringComparison::Equals, false),
    ("StringNotEquals", StringComparison::Equals, true),
    (
        "StringEqualsIgnoreCase",
        StringComparison::EqualsIgnoreCase,
        false,
    ),
    (
        "StringNotEqualsIgnoreCase",
        StringComparison::EqualsIgnoreCase,
        true,
    ),
    ("StringLike", StringComparison::Like, false),
    ("StringNotLike", StringComparison::Like, true),
];

/// Prefixes of IAM operator families whose keys are numbers, dates, booleans,
/// binary data, IP addresses or ARNs. None of the supported keys has such values.
const UNSUPPORTED_OPERATOR_FAMILIES: [&str; 7] = [
    "Numeric",
    "Date",
    "Bool",
    "Binary",
    "IpAddress",
    "NotIpAddress",
    "Arn",
];

/// A context key that a condition reads from the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ConditionKey {
    /// `aws:ResourceTag/KEY`, the value of the resource's tag KEY. Holds KEY as written.
    ResourceTag(String),
    /// `aws:RequestTag/KEY`, the value of tag KEY in the request. Holds KEY as written.
    RequestTag(String),
    /// `aws:TagKeys`: the tag keys in the request.
    TagKeys,
}

impl ConditionKey {
    /// Collects the key's values in `request`. An empty list means that the key is absent.
    ///
    /// A tag key matches tags case-insensitively, so a resource tagged both `env`
    /// and `Env` gives `aws:ResourceTag/env` two values.
    fn request_values<'r>(&self, request: &AccessRequest<'r>) -> Vec<&'r str> {
        match self {
            ConditionKey::ResourceTag(tag_key) => tag_values(request.resource_tags, tag_key),
            ConditionKey::RequestTag(tag_key) => request
                .request_tags
                .map(|tags| tag_values(tags, tag_key))
                .unwrap_or_default(),
            ConditionKey::TagKeys => request
                .tag_keys
                .map(|keys| keys.iter().map(String::as_str).collect())
                .unwrap_or_default(),
        }
    }
}

fn tag_values<'r>(tags: &'r BTreeMap<String, String>, tag_key: &str) -> Vec<&'r str> {
    tags.iter()
        .filter(|(key, _)| eq_ignore_case(key, tag_key))
        .map(|(_, value)| value.as_str())
        .collect()
}

/// Compares two strings after Unicode lowercasing, without allocating.
fn eq_ignore_case(left: &str, right: &str) -> bool {
    left.chars()
        .flat_map(char::to_lowercase)
        .eq(right.chars().flat_map(char::to_lowercase))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SetQualifier {
    ForAllValues,
    ForAnyValue,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StringComparison {
    Equals,
    EqualsIgnoreCase,
    Like,
}

impl StringComparison {
    fn matches(self, policy_value: &str, request_value: &str) -> bool {
        match self {
            StringComparison::Equals => policy_value == request_value,
            StringComparison::EqualsIgnoreCase => eq_ignore_case(policy_value, request_value),
            StringComparison::Like => wildcard_match(policy_value, request_value),
        }
    }
}

/// An operator name split into its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Operator {
    qualifier: Option<SetQualifier>,
    kind: OperatorKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OperatorKind {
    String {
        comparison: StringComparison,
        negated: bool,
        if_exists: bool,
    },
    Null,
}

/// The test that a condition applies to the key's request values.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Test {
    String(StringTest),
    /// `Null`. Each value is `true` to match an absent key and `false` to match a present one.
    Null {
        values: Vec<bool>,
    },
}

/// A string operator with its policy values.
#[derive(Debug, Clone, PartialEq, Eq)]
struct StringTest {
    comparison: StringComparison,
    negated: bool,
    if_exists: bool,
    values: Vec<String>,
}

impl StringTest {
    /// Returns whether the operator holds for `request_values`, which is empty
    /// when the key is absent.
    fn holds(&self, qualifier: Option<SetQualifier>, request_values: &[&str]) -> bool {
        if request_values.is_empty() {
            return match qualifier {
                Some(SetQualifier::ForAllValues) => true,
                Some(SetQualifier::ForAnyValue) => self.if_exists,
                None => self.if_exists || self.negated,
            };
        }

        // The per-value test: a value passes a negated operator when it matches
        // none of the policy values.
        let passes = |request_value: &&str| self.matches_any(request_value) != self.negated;
        match qualifier {
            Some(SetQualifier::ForAllValues) => request_values.iter().all(passes),
            Some(SetQualifier::ForAnyValue) => request_values.iter().any(passes),
            // A single-valued key has several values only when tags differ in
            // case alone. The negated operator stays the complement of the
            // positive one: it holds when no value matches.
            None => {
                let any_match = request_values
                    .iter()
                    .any(|request_value| self.matches_any(request_value));
                any_match != self.negated
            }
        }
    }

    fn matches_any(&self, request_value: &str) -> bool {
        self.values
            .iter()
            .any(|policy_value| self.comparison.matches(policy_value, request_value))
    }
}

/// One operator applied to one condition key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Condition {
    qualifier: Option<SetQualifier>,
    key: ConditionKey,
    test: Test,
}

impl Condition {
    /// Returns whether the condition holds for `request`.
    pub(crate) fn is_satisfied(&self, request: &AccessRequest<'_>) -> bool {
        let request_values = self.key.request_values(request);
        match &self.test {
            Test::Null { values } => {
                let absent = request_values.is_empty();
                values.contains(&absent)
            }
            Test::String(test) => test.holds(self.qualifier, &request_values),
        }
    }
}

/// Parses a statement's `Condition` element found at `path`.
pub(crate) fn parse_condition_block(
    value: &JsonValue,
    path: &str,
    version: PolicyVersion,
) -> Result<Vec<Condition>, PolicyError> {
    let JsonValue::Object(operators) = value else {
        return Err(PolicyError::new(
            PolicyErrorKind::InvalidValue,
            path,
            format!(
                "{path} is {}, but it must be an object that maps condition operators to condition keys",
                value.type_name()
            ),
        ));
    };
    if operators.is_empty() {
        return Err(PolicyError::new(
            PolicyErrorKind::InvalidValue,
            path,
            format!("{path} is an empty object, so remove it or add a condition operator"),
        ));
    }
    if let Some(name) = find_duplicate_name(operators) {
        return Err(duplicate_member_error(path, name));
    }

    let mut conditions = Vec::new();
    for (operator_name, keys_value) in operators {
        let operator_path = format!("{path}.{operator_name}");
        let operator = parse_operator(operator_name)
            .ok_or_else(|| unknown_operator_error(operator_name, path))?;

        let JsonValue::Object(keys) = keys_value else {
            return Err(PolicyError::new(
                PolicyErrorKind::InvalidValue,
                &operator_path,
                format!(
                    "{operator_path} is {}, but it must be an object that maps condition keys to values",
                    keys_value.type_name()
                ),
            ));
        };
        if keys.is_empty() {
            return Err(PolicyError::new(
                PolicyErrorKind::InvalidValue,
                &operator_path,
                format!("{operator_path} names no condition key, so remove it or add a key"),
            ));
        }
        if let Some(name) = find_duplicate_name(keys) {
            return Err(duplicate_member_error(&operator_path, name));
        }

        for (key_name, values) in keys {
            let key_path = format!("{operator_path}.{key_name}");
            let key = parse_key(key_name, &operator_path)?;
            check_operator_fits_key(operator, operator_name, &key, key_name, &key_path)?;
            let test = parse_test(operator, values, &key_path, version)?;
            conditions.push(Condition {
                qualifier: operator.qualifier,
                key,
                test,
            });
        }
    }
    Ok(conditions)
}

/// Splits an operator name into qualifier, base and `IfExists`. Returns `None`
/// for any name outside the supported grammar. Names are case-sensitive.
fn parse_operator(name: &str) -> Option<Operator> {
    let (qualifier, rest) = if let Some(rest) = name.strip_prefix("ForAllValues:") {
        (Some(SetQualifier::ForAllValues), rest)
    } else if let Some(rest) = name.strip_prefix("ForAnyValue:") {
        (Some(SetQualifier::ForAnyValue), rest)
    } else {
        (None, name)
    };

    if rest == "Null" {
        return Some(Operator {
            qualifier,
            kind: OperatorKind::Null,
        });
    }

    let (base, if_exists) = match rest.strip_suffix("IfExists") {
        Some(base) => (base, true),
        None => (rest, false),
    };
    STRING_OPERATORS
        .iter()
        .find(|(operator_name, _, _)| *operator_name == base)
        .map(|&(_, comparison, negated)| Operator {
            qualifier,
            kind: OperatorKind::String {
                comparison,
                negated,
                if_exists,
            },
        })
}

/// Lists every operator name that [`parse_operator`] accepts.
fn supported_operator_names() -> Vec<String> {
    let mut bases: Vec<String> = Vec::new();
    for (name, _, _) in STRING_OPERATORS {
        bases.push(name.to_owned());
        bases.push(format!("{name}IfExists"));
    }
    bases.push("Null".to_owned());

    let mut names = Vec::new();
    for prefix in ["", "ForAllValues:", "ForAnyValue:"] {
        for base in &bases {
            names.push(format!("{prefix}{base}"));
        }
    }
    names
}

fn unknown_operator_error(name: &str, condition_path: &str) -> PolicyError {
    let element = format!("{condition_path}.{name}");

    if let Some(spelling) = supported_operator_names()
        .into_iter()
        .find(|candidate| candidate.eq_ignore_ascii_case(name))
    {
        return PolicyError::new(
            PolicyErrorKind::UnsupportedElement,
            element,
            format!(
                "{condition_path} uses the operator \"{name}\", which must be written \
                 \"{spelling}\" because operator names are case-sensitive"
            ),
        );
    }

    let without_qualifier = name
        .strip_prefix("ForAllValues:")
        .or_else(|| name.strip_prefix("ForAnyValue:"))
        .unwrap_or(name);
    let base = without_qualifier
        .strip_suffix("IfExists")
        .unwrap_or(without_qualifier);
    if UNSUPPORTED_OPERATOR_FAMILIES
        .iter()
        .any(|family| base.starts_with(family))
    {
        return PolicyError::new(
            PolicyErrorKind::UnsupportedElement,
            element,
            format!(
                "{condition_path} uses the IAM operator \"{name}\", which blocksnap does not \
                 support because every supported condition key has string values, and the \
                 supported operators are {SUPPORTED_OPERATORS}"
            ),
        );
    }

    if base == "Null" {
        return PolicyError::new(
            PolicyErrorKind::UnsupportedElement,
            element,
            format!(
                "{condition_path} uses the operator \"{name}\", but Null takes no IfExists \
                 suffix because it already tests whether the key exists"
            ),
        );
    }

    PolicyError::new(
        PolicyErrorKind::UnsupportedElement,
        element,
        format!(
            "{condition_path} uses the unknown condition operator \"{name}\", and the supported \
             operators are {SUPPORTED_OPERATORS}"
        ),
    )
}

/// Parses a condition key name. Key names are case-insensitive as in IAM.
fn parse_key(name: &str, operator_path: &str) -> Result<ConditionKey, PolicyError> {
    let element = format!("{operator_path}.{name}");

    if name.eq_ignore_ascii_case("aws:TagKeys") {
        return Ok(ConditionKey::TagKeys);
    }
    for (prefix, make_key) in [
        (
            "aws:ResourceTag/",
            ConditionKey::ResourceTag as fn(String) -> ConditionKey,
        ),
        ("aws:RequestTag/", ConditionKey::RequestTag),
    ] {
        let Some(tag_key) = strip_prefix_ignore_ascii_case(name, prefix) else {
            continue;
        };
        if tag_key.is_empty() {
            return Err(PolicyError::new(
                PolicyErrorKind::InvalidValue,
                element,
                format!(
                    "{operator_path} uses the condition key \"{name}\", which names no tag, \
                     so write the tag key after \"{prefix}\""
                ),
            ));
        }
        if has_wildcard(tag_key) {
            return Err(PolicyError::new(
                PolicyErrorKind::InvalidValue,
                element,
                format!(
                    "{operator_path} uses the condition key \"{name}\", but the tag key in a \
                     condition key is literal and may not contain * or ?"
                ),
            ));
        }
        return Ok(make_key(tag_key.to_owned()));
    }

    Err(PolicyError::new(
        PolicyErrorKind::UnsupportedElement,
        element,
        format!(
            "{operator_path} uses the condition key \"{name}\", but only {SUPPORTED_KEYS} \
             are supported"
        ),
    ))
}

fn strip_prefix_ignore_ascii_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        text.get(prefix.len()..)
    } else {
        None
    }
}

/// Rejects operator and key pairs whose meaning IAM leaves to surprise.
///
/// IAM advises against set qualifiers on single-valued keys, where
/// `ForAllValues:` holds for an untagged resource, and requires them on
/// multivalued keys. blocksnap turns both pieces of advice into load errors.
fn check_operator_fits_key(
    operator: Operator,
    operator_name: &str,
    key: &ConditionKey,
    key_name: &str,
    key_path: &str,
) -> Result<(), PolicyError> {
    let multivalued = matches!(key, ConditionKey::TagKeys);
    let message = match (operator.kind, operator.qualifier) {
        (OperatorKind::Null, Some(_)) => format!(
            "{key_path} uses \"{operator_name}\", but Null tests only whether the key is \
             present and takes no ForAllValues: or ForAnyValue: prefix"
        ),
        (OperatorKind::String { .. }, Some(_)) if !multivalued => format!(
            "{key_path} applies the set operator \"{operator_name}\" to the single-valued key \
             \"{key_name}\", so remove the prefix (ForAllValues: would also match a request \
             in which the key is absent)"
        ),
        (OperatorKind::String { .. }, None) if multivalued => format!(
            "{key_path} applies \"{operator_name}\" to the multivalued key \"{key_name}\", so \
             prefix the operator with ForAllValues: (every tag key must match) or \
             ForAnyValue: (at least one tag key must match)"
        ),
        _ => return Ok(()),
    };
    Err(PolicyError::new(
        PolicyErrorKind::UnsupportedElement,
        key_path,
        message,
    ))
}

/// Parses the value or list of values of one condition key.
fn parse_test(
    operator: Operator,
    value: &JsonValue,
    key_path: &str,
    version: PolicyVersion,
) -> Result<Test, PolicyError> {
    let items: Vec<&JsonValue> = match value {
        JsonValue::Array(items) => items.iter().collect(),
        single => vec![single],
    };
    if items.is_empty() {
        return Err(PolicyError::new(
            PolicyErrorKind::InvalidValue,
            key_path,
            format!("{key_path} is an empty list, but a condition key needs at least one value"),
        ));
    }

    match operator.kind {
        OperatorKind::Null => {
            let mut values = Vec::new();
            for item in items {
                let expect_absent = match item {
                    JsonValue::Bool(flag) => *flag,
                    JsonValue::String(text) if text == "true" => true,
                    JsonValue::String(text) if text == "false" => false,
                    other => {
                        return Err(PolicyError::new(
                            PolicyErrorKind::InvalidValue,
                            key_path,
                            format!(
                                "{key_path} contains {}, but Null takes only true or false",
                                describe_value(other)
                            ),
                        ))
                    }
                };
                values.push(expect_absent);
            }
            Ok(Test::Null { values })
        }
        OperatorKind::String {
            comparison,
            negated,
            if_exists,
        } => {
            let mut values = Vec::new();
            for item in items {
                let JsonValue::String(text) = item else {
                    return Err(PolicyError::new(
                        PolicyErrorKind::InvalidValue,
                        key_path,
                        format!(
                            "{key_path} contains {}, but string operators take only strings, \
                             so put the value in quotes",
                            describe_value(item)
                        ),
                    ));
                };
                version.check_no_policy_variable(text, key_path)?;
                values.push(text.clone());
            }
            Ok(Test::String(StringTest {
                comparison,
                negated,
                if_exists,
                values,
            }))
        }
    }
}

fn describe_value(value: &JsonValue) -> String {
    match value {
        JsonValue::Bool(flag) => format!("the boolean {flag}"),
        JsonValue::Number(number) => format!("the number {number}"),
        JsonValue::String(text) => format!("the string \"{text}\""),
        other => other.type_name().to_owned(),
    }
}

fn duplicate_member_error(path: &str, name: &str) -> PolicyError {
    PolicyError::new(
        PolicyErrorKind::InvalidValue,
        format!("{path}.{name}"),
        format!("{path} contains \"{name}\" more than once, but member names must be unique"),
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::{parse_condition_block, Condition, PolicyVersion};
    use crate::access::error::PolicyErrorKind;
    use crate::access::evaluate::AccessRequest;
    use crate::access::json::JsonValue;
    use crate::access::PolicyError;

    fn parse(block: &str) -> Result<Vec<Condition>, PolicyError> {
        let value: JsonValue = match serde_json::from_str(block) {
            Ok(value) => value,
            Err(error) => panic!("test block {block} is not JSON: {error}"),
        };
        parse_condition_block(&value, "Condition", PolicyVersion::V2012_10_17)
    }

    fn parse_ok(block: &str) -> Vec<Condition> {
        match parse(block) {
            Ok(conditions) => conditions,
            Err(error) => panic!("{block} should parse: {error}"),
        }
    }

    fn parse_err(block: &str) -> PolicyError {
        match parse(block) {
            Ok(conditions) => panic!("{block} should be rejected, got {conditions:?}"),
            Err(error) => error,
        }
    }

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|&(key, value)| (key.to_owned(), value.to_owned()))
            .collect()
    }

    /// The request context of one test: resource tags, request tags and tag keys.
    struct Context {
        resource_tags: BTreeMap<String, String>,
        request_tags: Option<BTreeMap<String, String>>,
        tag_keys: Option<Vec<String>>,
    }

    impl Context {
        fn with_resource_tags(pairs: &[(&str, &str)]) -> Self {
            Context {
                resource_tags: tags(pairs),
                request_tags: None,
                tag_keys: None,
            }
        }

        fn with_tag_keys(keys: Option<&[&str]>) -> Self {
            Context {
                resource_tags: BTreeMap::new(),
                request_tags: None,
                tag_keys: keys.map(|keys| keys.iter().map(|&key| key.to_owned()).collect()),
            }
        }

        fn request(&self) -> AccessRequest<'_> {
            AccessRequest {
                action: "lightsail:GetDiskSnapshot",
                resource_arn: "arn:aws:lightsail:us-east-1:123456789012:DiskSnapshot/x",
                resource_tags: &self.resource_tags,
                request_tags: self.request_tags.as_ref(),
                tag_keys: self.tag_keys.as_deref(),
            }
        }
    }

    /// Returns whether every condition in `block` holds for `context`.
    fn holds(block: &str, context: &Context) -> bool {
        let request = context.request();
        parse_ok(block)
            .iter()
            .all(|condition| condition.is_satisfied(&request))
    }

    #[test]
    fn operator_names_parse_with_prefix_and_suffix() {
        for name in [
            "StringEquals",
            "StringNotEqualsIgnoreCaseIfExists",
            "ForAllValues:StringLike",
            "ForAnyValue:StringNotLikeIfExists",
            "Null",
        ] {
            let key = if name.starts_with("For") {
                "aws:TagKeys"
            } else {
                "aws:ResourceTag/env"
            };
            let value = if name == "Null" { "true" } else { "\"x\"" };
            parse_ok(&format!(r#"{{"{name}": {{"{key}": {value}}}}}"#));
        }
    }

    #[test]
    fn operator_case_mismatch_names_the_spelling() {
        let error = parse_err(r#"{"stringequals": {"aws:ResourceTag/env": "prod"}}"#);
        assert_eq!(error.kind(), PolicyErrorKind::UnsupportedElement);
        assert!(error.message().contains("\"StringEquals\""), "{error}");
        assert_eq!(error.element(), "Condition.stringequals");
    }

    #[test]
    fn iam_operator_families_are_rejected_with_reason() {
        for name in [
            "NumericLessThan",
            "DateGreaterThan",
            "Bool",
            "ArnLike",
            "IpAddress",
        ] {
            let error = parse_err(&format!(r#"{{"{name}": {{"aws:ResourceTag/env": "1"}}}}"#));
            assert_eq!(error.kind(), PolicyErrorKind::UnsupportedElement);
            assert!(error.message().contains("string values"), "{error}");
        }
    }

    #[test]
    fn null_if_exists_is_rejected() {
        let error = parse_err(r#"{"NullIfExists": {"aws:ResourceTag/env": true}}"#);
        assert!(error.message().contains("IfExists"), "{error}");
    }

    #[test]
    fn unknown_operator_is_rejected() {
        let error = parse_err(r#"{"StringContains": {"aws:ResourceTag/env": "x"}}"#);
        assert_eq!(error.kind(), PolicyErrorKind::UnsupportedElement);
        assert!(error.message().contains("StringContains"), "{error}");
    }

    #[test]
    fn key_names_are_case_insensitive() {
        let context = Context::with_resource_tags(&[("env", "prod")]);
        assert!(holds(
            r#"{"StringEquals": {"AWS:RESOURCETAG/env": "prod"}}"#,
            &context
        ));
        assert!(holds(
            r#"{"StringEquals": {"aws:resourcetag/ENV": "prod"}}"#,
            &context
        ));
        assert!(holds(
            r#"{"ForAllValues:StringEquals": {"Aws:tagKeys": "x"}}"#,
            &context
        ));
    }

    #[test]
    fn unknown_keys_are_rejected() {
        for key in [
            "aws:PrincipalTag/team",
            "aws:SourceIp",
            "lightsail:ResourceTag/x",
            "env",
        ] {
            let error = parse_err(&format!(r#"{{"StringEquals": {{"{key}": "x"}}}}"#));
            assert_eq!(error.kind(), PolicyErrorKind::UnsupportedElement);
            assert!(error.message().contains(key), "{error}");
        }
    }

    #[test]
    fn empty_and_wildcard_tag_keys_are_rejected() {
        let error = parse_err(r#"{"StringEquals": {"aws:ResourceTag/": "x"}}"#);
        assert_eq!(error.kind(), PolicyErrorKind::InvalidValue);
        let error = parse_err(r#"{"StringEquals": {"aws:RequestTag/e*": "x"}}"#);
        assert_eq!(error.kind(), PolicyErrorKind::InvalidValue);
    }

    #[test]
    fn set_prefix_on_single_valued_key_is_rejected() {
        let error = parse_err(r#"{"ForAllValues:StringEquals": {"aws:ResourceTag/env": "x"}}"#);
        assert_eq!(error.kind(), PolicyErrorKind::UnsupportedElement);
        assert!(error.message().contains("single-valued"), "{error}");
    }

    #[test]
    fn plain_operator_on_tag_keys_is_rejected() {
        let error = parse_err(r#"{"StringLike": {"aws:TagKeys": "x"}}"#);
        assert_eq!(error.kind(), PolicyErrorKind::UnsupportedElement);
        assert!(error.message().contains("multivalued"), "{error}");
    }

    #[test]
    fn null_with_set_prefix_is_rejected() {
        let error = parse_err(r#"{"ForAnyValue:Null": {"aws:TagKeys": true}}"#);
        assert_eq!(error.kind(), PolicyErrorKind::UnsupportedElement);
    }

    #[test]
    fn null_on_tag_keys_is_accepted() {
        assert!(holds(
            r#"{"Null": {"aws:TagKeys": "true"}}"#,
            &Context::with_tag_keys(None)
        ));
        assert!(holds(
            r#"{"Null": {"aws:TagKeys": false}}"#,
            &Context::with_tag_keys(Some(&["a"]))
        ));
    }

    #[test]
    fn value_types_are_checked() {
        let error = parse_err(r#"{"StringEquals": {"aws:ResourceTag/env": true}}"#);
        assert_eq!(error.kind(), PolicyErrorKind::InvalidValue);
        assert!(error.message().contains("boolean"), "{error}");

        let error = parse_err(r#"{"StringEquals": {"aws:ResourceTag/env": 5}}"#);
        assert!(error.message().contains("number"), "{error}");

        let error = parse_err(r#"{"StringEquals": {"aws:ResourceTag/env": []}}"#);
        assert!(error.message().contains("empty list"), "{error}");

        let error = parse_err(r#"{"Null": {"aws:ResourceTag/env": "yes"}}"#);
        assert!(error.message().contains("true or false"), "{error}");
    }

    #[test]
    fn policy_variables_are_rejected_in_2012_version() {
        let error = parse_err(r#"{"StringEquals": {"aws:ResourceTag/owner": "${aws:username}"}}"#);
        assert_eq!(error.kind(), PolicyErrorKind::UnsupportedElement);

        let value: JsonValue =
            match serde_json::from_str(r#"{"StringEquals": {"aws:ResourceTag/owner": "${x}"}}"#) {
                Ok(value) => value,
                Err(error) => panic!("{error}"),
            };
        let parsed = parse_condition_block(&value, "Condition", PolicyVersion::V2008_10_17);
        assert!(parsed.is_ok(), "2008-10-17 treats ${{ as literal text");
    }

    #[test]
    fn empty_block_operator_and_duplicates_are_rejected() {
        assert!(parse(r"{}").is_err());
        assert!(parse(r#"{"StringEquals": {}}"#).is_err());
        assert!(parse(r#"{"StringEquals": "x"}"#).is_err());
        let error = parse_err(
            r#"{"StringEquals": {"aws:ResourceTag/a": "1"}, "StringEquals": {"aws:ResourceTag/b": "2"}}"#,
        );
        assert!(error.message().contains("more than once"), "{error}");
        let error =
            parse_err(r#"{"StringEquals": {"aws:ResourceTag/a": "1", "aws:ResourceTag/a": "2"}}"#);
        assert!(error.message().contains("more than once"), "{error}");
    }

    #[test]
    fn string_equals_is_case_sensitive_for_values() {
        let context = Context::with_resource_tags(&[("env", "Prod")]);
        assert!(!holds(
            r#"{"StringEquals": {"aws:ResourceTag/env": "prod"}}"#,
            &context
        ));
        assert!(holds(
            r#"{"StringEqualsIgnoreCase": {"aws:ResourceTag/env": "prod"}}"#,
            &context
        ));
        assert!(holds(
            r#"{"StringNotEquals": {"aws:ResourceTag/env": "prod"}}"#,
            &context
        ));
        assert!(!holds(
            r#"{"StringNotEqualsIgnoreCase": {"aws:ResourceTag/env": "PROD"}}"#,
            &context
        ));
    }

    #[test]
    fn tag_key_in_condition_key_matches_any_case() {
        let context = Context::with_resource_tags(&[("Env", "prod")]);
        assert!(holds(
            r#"{"StringEquals": {"aws:ResourceTag/env": "prod"}}"#,
            &context
        ));
        assert!(!holds(
            r#"{"Null": {"aws:ResourceTag/ENV": true}}"#,
            &context
        ));
    }

    #[test]
    fn tags_differing_only_in_case_give_two_values() {
        let context = Context::with_resource_tags(&[("Env", "dev"), ("env", "prod")]);
        assert!(holds(
            r#"{"StringEquals": {"aws:ResourceTag/env": "prod"}}"#,
            &context
        ));
        assert!(holds(
            r#"{"StringEquals": {"aws:ResourceTag/env": "dev"}}"#,
            &context
        ));
        assert!(!holds(
            r#"{"StringNotEquals": {"aws:ResourceTag/env": "prod"}}"#,
            &context
        ));
    }

    #[test]
    fn negated_operator_is_complement_of_positive() {
        let contexts = [
            Context::with_resource_tags(&[]),
            Context::with_resource_tags(&[("env", "prod")]),
            Context::with_resource_tags(&[("env", "dev")]),
            Context::with_resource_tags(&[("env", "")]),
            Context::with_resource_tags(&[("env", "prod"), ("ENV", "dev")]),
        ];
        let pairs = [
            ("StringEquals", "StringNotEquals"),
            ("StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase"),
            ("StringLike", "StringNotLike"),
        ];
        for values in [r#""prod""#, r#"["prod", "qa"]"#, r#""p*""#, r#""""#] {
            for (positive, negated) in pairs {
                for (index, context) in contexts.iter().enumerate() {
                    let positive_holds = holds(
                        &format!(r#"{{"{positive}": {{"aws:ResourceTag/env": {values}}}}}"#),
                        context,
                    );
                    let negated_holds = holds(
                        &format!(r#"{{"{negated}": {{"aws:ResourceTag/env": {values}}}}}"#),
                        context,
                    );
                    assert_ne!(
                        positive_holds, negated_holds,
                        "{positive}/{negated} with {values} in context {index}"
                    );
                }
            }
        }
    }

    #[test]
    fn if_exists_defers_to_plain_operator() {
        let absent = Context::with_resource_tags(&[]);
        let prod = Context::with_resource_tags(&[("env", "prod")]);
        let dev = Context::with_resource_tags(&[("env", "dev")]);
        for operator in [
            "StringEquals",
            "StringNotEquals",
            "StringLike",
            "StringNotLike",
        ] {
            let plain = format!(r#"{{"{operator}": {{"aws:ResourceTag/env": "prod"}}}}"#);
            let if_exists =
                format!(r#"{{"{operator}IfExists": {{"aws:ResourceTag/env": "prod"}}}}"#);
            assert!(holds(&if_exists, &absent), "{operator}IfExists, absent");
            assert_eq!(
                holds(&if_exists, &prod),
                holds(&plain, &prod),
                "{operator}, prod"
            );
            assert_eq!(
                holds(&if_exists, &dev),
                holds(&plain, &dev),
                "{operator}, dev"
            );
        }
    }

    #[test]
    fn empty_tag_value_counts_as_present() {
        let context = Context::with_resource_tags(&[("env", "")]);
        assert!(holds(
            r#"{"Null": {"aws:ResourceTag/env": false}}"#,
            &context
        ));
        assert!(holds(
            r#"{"StringEquals": {"aws:ResourceTag/env": ""}}"#,
            &context
        ));
    }

    #[test]
    fn request_tags_absent_when_request_has_none() {
        let mut context = Context::with_resource_tags(&[("owner", "alice")]);
        let block = r#"{"StringEquals": {"aws:RequestTag/owner": "alice"}}"#;
        assert!(!holds(block, &context));

        context.request_tags = Some(tags(&[("Owner", "alice")]));
        assert!(holds(block, &context));
    }

    #[test]
    fn set_qualifiers_on_tag_keys() {
        let none = Context::with_tag_keys(None);
        let empty = Context::with_tag_keys(Some(&[]));
        let owner_only = Context::with_tag_keys(Some(&["owner"]));
        let owner_and_env = Context::with_tag_keys(Some(&["owner", "env"]));

        let all = r#"{"ForAllValues:StringEquals": {"aws:TagKeys": ["owner", "team"]}}"#;
        assert!(holds(all, &none));
        assert!(holds(all, &empty));
        assert!(holds(all, &owner_only));
        assert!(!holds(all, &owner_and_env));

        let any = r#"{"ForAnyValue:StringEquals": {"aws:TagKeys": "env"}}"#;
        assert!(!holds(any, &none));
        assert!(!holds(any, &empty));
        assert!(!holds(any, &owner_only));
        assert!(holds(any, &owner_and_env));

        let any_if_exists = r#"{"ForAnyValue:StringEqualsIfExists": {"aws:TagKeys": "env"}}"#;
        assert!(holds(any_if_exists, &none));
        assert!(!holds(any_if_exists, &owner_only));
    }

    #[test]
    fn negated_set_qualifiers_test_each_value() {
        let owner_and_env = Context::with_tag_keys(Some(&["owner", "env"]));
        let owner_only = Context::with_tag_keys(Some(&["owner"]));

        let all_not = r#"{"ForAllValues:StringNotEquals": {"aws:TagKeys": ["env", "team"]}}"#;
        assert!(!holds(all_not, &owner_and_env));
        assert!(holds(all_not, &owner_only));

        let any_not = r#"{"ForAnyValue:StringNotLike": {"aws:TagKeys": "e*"}}"#;
        assert!(holds(any_not, &owner_and_env));
        assert!(!holds(any_not, &Context::with_tag_keys(Some(&["env"]))));
        assert!(!holds(any_not, &Context::with_tag_keys(None)));
    }

    #[test]
    fn tag_keys_compare_case_sensitively() {
        let context = Context::with_tag_keys(Some(&["Owner"]));
        assert!(!holds(
            r#"{"ForAnyValue:StringEquals": {"aws:TagKeys": "owner"}}"#,
            &context
        ));
        assert!(holds(
            r#"{"ForAnyValue:StringEqualsIgnoreCase": {"aws:TagKeys": "owner"}}"#,
            &context
        ));
    }
}
