//! Parsing a JSON policy document into a validated [`Policy`].
//!
//! The parser accepts only the grammar listed in the module documentation and
//! rejects everything else with a [`PolicyError`]. Nothing is skipped, so every
//! element of a loaded policy takes effect.

use super::condition::{parse_condition_block, Condition};
use super::error::{PolicyError, PolicyErrorKind};
use super::json::{find_duplicate_name, JsonValue};
use super::wildcard::{has_wildcard, wildcard_match};

const DOCUMENT_ELEMENTS: [&str; 3] = ["Version", "Id", "Statement"];

const STATEMENT_ELEMENTS: [&str; 7] = [
    "Sid",
    "Effect",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
];

/// A parsed and validated identity policy.
///
/// Build one with [`Policy::from_json`] and check requests with [`Policy::evaluate`].
#[derive(Debug, Clone)]
pub struct Policy {
    version: PolicyVersion,
    id: Option<String>,
    pub(super) statements: Vec<Statement>,
}

/// The policy language version from the `Version` element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PolicyVersion {
    /// `2012-10-17`, the current version. `${...}` marks a policy variable.
    V2012_10_17,
    /// `2008-10-17`, which has no policy variables, so `${` is literal text.
    V2008_10_17,
}

impl PolicyVersion {
    fn as_str(self) -> &'static str {
        match self {
            PolicyVersion::V2012_10_17 => "2012-10-17",
            PolicyVersion::V2008_10_17 => "2008-10-17",
        }
    }

    /// Rejects `text` if this version would read a policy variable in it.
    ///
    /// blocksnap does not substitute policy variables. Loading `${aws:username}`
    /// as literal text would silently change what the author meant.
    pub(crate) fn check_no_policy_variable(
        self,
        text: &str,
        path: &str,
    ) -> Result<(), PolicyError> {
        if self == PolicyVersion::V2012_10_17 && text.contains("${") {
            return Err(PolicyError::new(
                PolicyErrorKind::UnsupportedElement,
                path,
                format!(
                    "{path} contains the policy variable syntax in \"{text}\", but blocksnap does \
                     not substitute policy variables, so write the literal value"
                ),
            ));
        }
        Ok(())
    }
}

/// One statement of a policy.
#[derive(Debug, Clone)]
pub(super) struct Statement {
    pub(super) sid: Option<String>,
    pub(super) effect: Effect,
    /// Action patterns, lowercased because action names are case-insensitive.
    pub(super) actions: PatternList,
    pub(super) resources: PatternList,
    pub(super) conditions: Vec<Condition>,
}

/// The `Effect` of a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Effect {
    Allow,
    Deny,
}

/// The patterns of `Action` or `NotAction`, or of `Resource` or `NotResource`.
#[derive(Debug, Clone)]
pub(super) struct PatternList {
    /// True for `NotAction` and `NotResource`, which match what no pattern matches.
    negated: bool,
    patterns: Vec<String>,
}

impl PatternList {
    /// Returns whether the list covers `text`. The caller lowercases action names.
    pub(super) fn covers(&self, text: &str) -> bool {
        let any_match = self
            .patterns
            .iter()
            .any(|pattern| wildcard_match(pattern, text));
        any_match != self.negated
    }
}

impl Policy {
    /// Parses and validates a policy document.
    ///
    /// Rejects JSON syntax errors, duplicate member names, unknown or unsupported
    /// elements, operators and condition keys, and values outside the grammar.
    pub fn from_json(text: &str) -> Result<Policy, PolicyError> {
        let document: JsonValue = serde_json::from_str(text).map_err(PolicyError::syntax)?;
        parse_document(&document)
    }

    /// Returns the `Version` element, `2012-10-17` or `2008-10-17`.
    pub fn version(&self) -> &'static str {
        self.version.as_str()
    }

    /// Returns the `Id` element, if the policy has one.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }
}

fn parse_document(document: &JsonValue) -> Result<Policy, PolicyError> {
    let JsonValue::Object(members) = document else {
        return Err(PolicyError::new(
            PolicyErrorKind::InvalidValue,
            "",
            format!(
                "the document is {}, but a policy must be a JSON object with Version and Statement",
                document.type_name()
            ),
        ));
    };
    check_member_names(members, "", "the policy document", &DOCUMENT_ELEMENTS)?;

    let version = parse_version(member(members, "Version"))?;

    let id = match member(members, "Id") {
        None => None,
        Some(JsonValue::String(id)) => Some(id.clone()),
        Some(other) => {
            return Err(PolicyError::new(
                PolicyErrorKind::InvalidValue,
                "Id",
                format!("Id is {}, but it must be a string", other.type_name()),
            ))
        }
    };

    let statements = parse_statements(member(members, "Statement"), version)?;
    Ok(Policy {
        version,
        id,
        statements,
    })
}

fn parse_version(value: Option<&JsonValue>) -> Result<PolicyVersion, PolicyError> {
    match value {
        Some(JsonValue::String(text)) if text == "2012-10-17" => Ok(PolicyVersion::V2012_10_17),
        Some(JsonValue::String(text)) if text == "2008-10-17" => Ok(PolicyVersion::V2008_10_17),
        Some(JsonValue::String(text)) => Err(PolicyError::new(
            PolicyErrorKind::InvalidValue,
            "Version",
            format!(
                "Version is \"{text}\", but only \"2012-10-17\" and \"2008-10-17\" are supported"
            ),
        )),
        Some(other) => Err(PolicyError::new(
            PolicyErrorKind::InvalidValue,
            "Version",
            format!(
                "Version is {}, but it must be the string \"2012-10-17\" or \"2008-10-17\"",
                other.type_name()
            ),
        )),
        None => Err(PolicyError::new(
            PolicyErrorKind::MissingElement,
            "Version",
            "the policy has no Version element, so add \"Version\": \"2012-10-17\"",
        )),
    }
}

fn parse_statements(
    value: Option<&JsonValue>,
    version: PolicyVersion,
) -> Result<Vec<Statement>, PolicyError> {
    let statements = match value {
        None => {
            return Err(PolicyError::new(
                PolicyErrorKind::MissingElement,
                "Statement",
                "the policy has no Statement element, and it needs at least one statement",
            ))
        }
        Some(JsonValue::Object(members)) => vec![parse_statement(members, "Statement", version)?],
        Some(JsonValue::Array(items)) if items.is_empty() => {
            return Err(PolicyError::new(
                PolicyErrorKind::InvalidValue,
                "Statement",
                "Statement is an empty list, but a policy needs at least one statement",
            ))
        }
        Some(JsonValue::Array(items)) => {
            let mut statements = Vec::with_capacity(items.len());
            for (index, item) in items.iter().enumerate() {
                let path = format!("Statement[{index}]");
                let JsonValue::Object(members) = item else {
                    return Err(PolicyError::new(
                        PolicyErrorKind::InvalidValue,
                        &path,
                        format!(
                            "{path} is {}, but a statement must be an object",
                            item.type_name()
                        ),
                    ));
                };
                statements.push(parse_statement(members, &path, version)?);
            }
            statements
        }
        Some(other) => {
            return Err(PolicyError::new(
                PolicyErrorKind::InvalidValue,
                "Statement",
                format!(
                    "Statement is {}, but it must be an object or a list of objects",
                    other.type_name()
                ),
            ))
        }
    };

    check_unique_sids(&statements)?;
    Ok(statements)
}

fn check_unique_sids(statements: &[Statement]) -> Result<(), PolicyError> {
    for (index, statement) in statements.iter().enumerate() {
        let Some(sid) = &statement.sid else {
            continue;
        };
        let reused = statements
            .iter()
            .take(index)
            .any(|earlier| earlier.sid.as_ref() == Some(sid));
        if reused {
            let path = format!("Statement[{index}].Sid");
            return Err(PolicyError::new(
                PolicyErrorKind::InvalidValue,
                &path,
                format!("{path} is \"{sid}\", which an earlier statement already uses, but Sids must be unique"),
            ));
        }
    }
    Ok(())
}

fn parse_statement(
    members: &[(String, JsonValue)],
    path: &str,
    version: PolicyVersion,
) -> Result<Statement, PolicyError> {
    check_member_names(members, path, path, &STATEMENT_ELEMENTS)?;

    let sid = match member(members, "Sid") {
        None => None,
        Some(value) => Some(parse_sid(value, &format!("{path}.Sid"))?),
    };
    let effect = parse_effect(member(members, "Effect"), path)?;

    let (actions, action_path) = pick_pattern_element(members, path, "Action", "NotAction")?;
    let actions = PatternList {
        negated: actions.negated,
        patterns: actions
            .patterns
            .iter()
            .map(|pattern| parse_action_pattern(pattern, &action_path))
            .collect::<Result<_, _>>()?,
    };

    let (resources, resource_path) =
        pick_pattern_element(members, path, "Resource", "NotResource")?;
    for pattern in &resources.patterns {
        check_resource_pattern(pattern, &resource_path, version)?;
    }

    let conditions = match member(members, "Condition") {
        None => Vec::new(),
        Some(value) => parse_condition_block(value, &format!("{path}.Condition"), version)?,
    };

    Ok(Statement {
        sid,
        effect,
        actions,
        resources,
        conditions,
    })
}

fn parse_sid(value: &JsonValue, path: &str) -> Result<String, PolicyError> {
    let JsonValue::String(sid) = value else {
        return Err(PolicyError::new(
            PolicyErrorKind::InvalidValue,
            path,
            format!("{path} is {}, but it must be a string", value.type_name()),
        ));
    };
    if sid.is_empty() || !sid.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(PolicyError::new(
            PolicyErrorKind::InvalidValue,
            path,
            format!(
                "{path} is \"{sid}\", but a Sid must be a non-empty string of ASCII letters \
                 and digits"
            ),
        ));
    }
    Ok(sid.clone())
}

fn parse_effect(value: Option<&JsonValue>, statement_path: &str) -> Result<Effect, PolicyError> {
    let path = format!("{statement_path}.Effect");
    match value {
        Some(JsonValue::String(text)) if text == "Allow" => Ok(Effect::Allow),
        Some(JsonValue::String(text)) if text == "Deny" => Ok(Effect::Deny),
        Some(JsonValue::String(text)) => Err(PolicyError::new(
            PolicyErrorKind::InvalidValue,
            &path,
            format!("{path} is \"{text}\", but it must be \"Allow\" or \"Deny\" (case-sensitive)"),
        )),
        Some(other) => Err(PolicyError::new(
            PolicyErrorKind::InvalidValue,
            &path,
            format!(
                "{path} is {}, but it must be the string \"Allow\" or \"Deny\"",
                other.type_name()
            ),
        )),
        None => Err(PolicyError::new(
            PolicyErrorKind::MissingElement,
            &path,
            format!(
                "{statement_path} has no Effect element, so add \"Effect\": \"Allow\" or \"Deny\""
            ),
        )),
    }
}

/// Reads whichever of `positive` and `negative` (such as `Action` and
/// `NotAction`) the statement has. Returns the patterns as written and the
/// element's path. Exactly one of the two must be present.
fn pick_pattern_element(
    members: &[(String, JsonValue)],
    statement_path: &str,
    positive: &str,
    negative: &str,
) -> Result<(PatternList, String), PolicyError> {
    let (name, value, negated) = match (member(members, positive), member(members, negative)) {
        (Some(value), None) => (positive, value, false),
        (None, Some(value)) => (negative, value, true),
        (Some(_), Some(_)) => {
            return Err(PolicyError::new(
                PolicyErrorKind::InvalidValue,
                statement_path,
                format!(
                    "{statement_path} contains both {positive} and {negative}, but a statement \
                     takes exactly one of them"
                ),
            ))
        }
        (None, None) => {
            return Err(PolicyError::new(
                PolicyErrorKind::MissingElement,
                format!("{statement_path}.{positive}"),
                format!(
                    "{statement_path} has neither {positive} nor {negative}, but a statement \
                     needs exactly one of them"
                ),
            ))
        }
    };

    let path = format!("{statement_path}.{name}");
    let patterns = parse_string_list(value, &path)?;
    Ok((PatternList { negated, patterns }, path))
}

/// Reads a string or a non-empty list of strings.
fn parse_string_list(value: &JsonValue, path: &str) -> Result<Vec<String>, PolicyError> {
    let items: Vec<&JsonValue> = match value {
        JsonValue::String(_) => vec![value],
        JsonValue::Array(items) if items.is_empty() => {
            return Err(PolicyError::new(
                PolicyErrorKind::InvalidValue,
                path,
                format!("{path} is an empty list, but it needs at least one entry"),
            ))
        }
        JsonValue::Array(items) => items.iter().collect(),
        other => {
            return Err(PolicyError::new(
                PolicyErrorKind::InvalidValue,
                path,
                format!(
                    "{path} is {}, but it must be a string or a list of strings",
                    other.type_name()
                ),
            ))
        }
    };

    items
        .into_iter()
        .map(|item| match item {
            JsonValue::String(text) => Ok(text.clone()),
            other => Err(PolicyError::new(
                PolicyErrorKind::InvalidValue,
                path,
                format!(
                    "{path} contains {}, but entries must be strings",
                    other.type_name()
                ),
            )),
        })
        .collect()
}

/// Validates an action pattern and returns it lowercased.
///
/// An action is `*` or `service:name`. The service prefix is letters, digits
/// and hyphens with no wildcard. The name is letters and digits with optional
/// `*` and `?` wildcards.
fn parse_action_pattern(pattern: &str, path: &str) -> Result<String, PolicyError> {
    if pattern == "*" {
        return Ok(pattern.to_owned());
    }
    let invalid = |reason: &str| {
        PolicyError::new(
            PolicyErrorKind::InvalidValue,
            path,
            format!("{path} contains \"{pattern}\", {reason}"),
        )
    };

    let Some((service, name)) = pattern.split_once(':') else {
        return Err(invalid(
            "which has no service prefix, so write it as service:action (such as \
             lightsail:DeleteDiskSnapshot) or as *",
        ));
    };
    if service.is_empty() || name.is_empty() {
        return Err(invalid(
            "but an action needs both a service prefix and an action name, such as lightsail:*",
        ));
    }
    if has_wildcard(service) {
        return Err(invalid(
            "but the service prefix may not contain wildcards, so name the service, as in lightsail:*",
        ));
    }
    if !service
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(invalid(
            "but a service prefix contains only ASCII letters, digits and hyphens",
        ));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '*' || c == '?')
    {
        return Err(invalid(
            "but an action name contains only ASCII letters, digits and the wildcards * and ?",
        ));
    }
    Ok(pattern.to_ascii_lowercase())
}

/// Validates a resource pattern: `*` or an ARN `arn:partition:service:region:account:resource`.
///
/// The service segment must be literal because IAM does not allow wildcards
/// there. A pattern with fewer than six segments must end in `*`, which then
/// spans the remaining segments.
fn check_resource_pattern(
    pattern: &str,
    path: &str,
    version: PolicyVersion,
) -> Result<(), PolicyError> {
    if pattern == "*" {
        return Ok(());
    }
    version.check_no_policy_variable(pattern, path)?;

    let invalid = |reason: &str| {
        PolicyError::new(
            PolicyErrorKind::InvalidValue,
            path,
            format!("{path} contains \"{pattern}\", {reason}"),
        )
    };

    if !pattern.starts_with("arn:") {
        return Err(invalid(
            "which is not an ARN, so write arn:partition:service:region:account:resource or *",
        ));
    }
    let segments: Vec<&str> = pattern.split(':').collect();
    let service = segments.get(2).copied().unwrap_or_default();
    if service.is_empty() || has_wildcard(service) {
        return Err(invalid(
            "but the service segment (the third) must name a service without wildcards",
        ));
    }
    if segments.len() < 6 && !pattern.ends_with('*') {
        return Err(invalid(
            "which has fewer than the six segments of arn:partition:service:region:account:resource, \
             so add the missing segments or end the pattern with *",
        ));
    }
    Ok(())
}

/// Returns the value of the member `name`. Callers check for duplicates first.
fn member<'a>(members: &'a [(String, JsonValue)], name: &str) -> Option<&'a JsonValue> {
    members
        .iter()
        .find(|(member_name, _)| member_name == name)
        .map(|(_, value)| value)
}

/// Rejects duplicate and unknown member names in the object at `path`.
///
/// `location` is how messages name the object. Element names are
/// case-sensitive, and an error for a name that differs only in case gives
/// the right spelling.
fn check_member_names(
    members: &[(String, JsonValue)],
    path: &str,
    location: &str,
    allowed: &[&str],
) -> Result<(), PolicyError> {
    let element_path = |name: &str| {
        if path.is_empty() {
            name.to_owned()
        } else {
            format!("{path}.{name}")
        }
    };

    if let Some(name) = find_duplicate_name(members) {
        return Err(PolicyError::new(
            PolicyErrorKind::InvalidValue,
            element_path(name),
            format!(
                "{location} contains \"{name}\" more than once, but member names must be unique"
            ),
        ));
    }

    for (name, _) in members {
        if allowed.contains(&name.as_str()) {
            continue;
        }
        let message = if let Some(spelling) = allowed
            .iter()
            .find(|candidate| candidate.eq_ignore_ascii_case(name))
        {
            format!(
                "{location} contains \"{name}\", which must be written \"{spelling}\" because \
                 element names are case-sensitive"
            )
        } else if name == "Principal" || name == "NotPrincipal" {
            format!(
                "{location} contains {name}, which only resource-based policies use, but a \
                 blocksnap policy is an identity policy that applies to the caller it is \
                 attached to, so remove {name}"
            )
        } else {
            format!(
                "{location} contains the unknown element \"{name}\", but only {} are supported",
                join_names(allowed)
            )
        };
        return Err(PolicyError::new(
            PolicyErrorKind::UnsupportedElement,
            element_path(name),
            message,
        ));
    }
    Ok(())
}

/// Joins names as `A, B and C`.
fn join_names(names: &[&str]) -> String {
    match names.split_last() {
        None => String::new(),
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::{Effect, Policy, PolicyErrorKind};
    use crate::access::PolicyError;

    fn parse_ok(text: &str) -> Policy {
        match Policy::from_json(text) {
            Ok(policy) => policy,
            Err(error) => panic!("{text} should parse: {error}"),
        }
    }

    fn parse_err(text: &str) -> PolicyError {
        match Policy::from_json(text) {
            Ok(policy) => panic!("{text} should be rejected, got {policy:?}"),
            Err(error) => error,
        }
    }

    fn only_statement(policy: &Policy) -> &super::Statement {
        match policy.statements.as_slice() {
            [statement] => statement,
            other => panic!("expected one statement, got {}", other.len()),
        }
    }

    /// Wraps one statement body in a 2012-10-17 policy.
    fn with_statement(body: &str) -> String {
        format!(r#"{{"Version": "2012-10-17", "Statement": {{{body}}}}}"#)
    }

    #[test]
    fn single_statement_object_parses() {
        let policy = parse_ok(&with_statement(
            r#""Sid": "A1", "Effect": "Allow", "Action": "lightsail:*", "Resource": "*""#,
        ));
        assert_eq!(policy.version(), "2012-10-17");
        assert_eq!(policy.id(), None);
        assert_eq!(policy.statements.len(), 1);
        let statement = only_statement(&policy);
        assert_eq!(statement.sid.as_deref(), Some("A1"));
        assert_eq!(statement.effect, Effect::Allow);
    }

    #[test]
    fn statement_list_and_id_parse() {
        let policy = parse_ok(
            r#"{"Version": "2008-10-17", "Id": "snapshots-policy", "Statement": [
                {"Effect": "Allow", "Action": ["lightsail:Get*", "lightsail:List*"], "Resource": "*"},
                {"Effect": "Deny", "NotAction": "lightsail:Get*", "NotResource": "arn:aws:lightsail:*"}
            ]}"#,
        );
        assert_eq!(policy.version(), "2008-10-17");
        assert_eq!(policy.id(), Some("snapshots-policy"));
        assert_eq!(policy.statements.len(), 2);
    }

    #[test]
    fn actions_are_lowercased() {
        let policy = parse_ok(&with_statement(
            r#""Effect": "Allow", "Action": "LightSail:GetDisk*", "Resource": "*""#,
        ));
        assert!(only_statement(&policy)
            .actions
            .covers("lightsail:getdisksnapshot"));
    }

    #[test]
    fn non_json_is_a_syntax_error_with_source() {
        let error = parse_err("Version: 2012-10-17");
        assert_eq!(error.kind(), PolicyErrorKind::Syntax);
        assert!(std::error::Error::source(&error).is_some());
        assert!(error.to_string().contains("line 1"), "{error}");
    }

    #[test]
    fn document_must_be_an_object() {
        let error = parse_err("[]");
        assert_eq!(error.kind(), PolicyErrorKind::InvalidValue);
        assert!(error.message().contains("a list"), "{error}");
    }

    #[test]
    fn version_is_required_and_checked() {
        let error =
            parse_err(r#"{"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}}"#);
        assert_eq!(error.kind(), PolicyErrorKind::MissingElement);
        assert_eq!(error.element(), "Version");

        let error = parse_err(
            r#"{"Version": "2012-10-18", "Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}}"#,
        );
        assert_eq!(error.kind(), PolicyErrorKind::InvalidValue);
        assert!(error.message().contains("2012-10-18"), "{error}");

        let error = parse_err(
            r#"{"Version": 2012, "Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}}"#,
        );
        assert!(error.message().contains("a number"), "{error}");
    }

    #[test]
    fn statement_is_required_and_not_empty() {
        let error = parse_err(r#"{"Version": "2012-10-17"}"#);
        assert_eq!(error.kind(), PolicyErrorKind::MissingElement);
        let error = parse_err(r#"{"Version": "2012-10-17", "Statement": []}"#);
        assert_eq!(error.kind(), PolicyErrorKind::InvalidValue);
        let error = parse_err(r#"{"Version": "2012-10-17", "Statement": ["x"]}"#);
        assert_eq!(error.element(), "Statement[0]");
        let error = parse_err(r#"{"Version": "2012-10-17", "Statement": "x"}"#);
        assert_eq!(error.element(), "Statement");
    }

    #[test]
    fn element_case_mismatch_names_the_spelling() {
        let error = parse_err(&with_statement(
            r#""effect": "Allow", "Action": "*", "Resource": "*""#,
        ));
        assert_eq!(error.kind(), PolicyErrorKind::UnsupportedElement);
        assert_eq!(error.element(), "Statement.effect");
        assert!(error.message().contains("\"Effect\""), "{error}");
    }

    #[test]
    fn duplicate_members_are_rejected() {
        let error = parse_err(&with_statement(
            r#""Effect": "Deny", "Effect": "Allow", "Action": "*", "Resource": "*""#,
        ));
        assert!(error.message().contains("more than once"), "{error}");
        assert_eq!(error.element(), "Statement.Effect");

        let error = parse_err(
            r#"{"Version": "2012-10-17", "Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}}"#,
        );
        assert_eq!(error.element(), "Version");
    }

    #[test]
    fn sid_must_be_alphanumeric_and_unique() {
        let error = parse_err(&with_statement(
            r#""Sid": "deny-prod", "Effect": "Deny", "Action": "*", "Resource": "*""#,
        ));
        assert_eq!(error.element(), "Statement.Sid");

        let error = parse_err(
            r#"{"Version": "2012-10-17", "Statement": [
                {"Sid": "A", "Effect": "Allow", "Action": "*", "Resource": "*"},
                {"Sid": "A", "Effect": "Deny", "Action": "*", "Resource": "*"}
            ]}"#,
        );
        assert_eq!(error.element(), "Statement[1].Sid");
        assert!(error.message().contains("unique"), "{error}");
    }

    #[test]
    fn action_and_not_action_are_exclusive() {
        let error = parse_err(&with_statement(
            r#""Effect": "Allow", "Action": "*", "NotAction": "lightsail:Get*", "Resource": "*""#,
        ));
        assert!(
            error.message().contains("both Action and NotAction"),
            "{error}"
        );

        let error = parse_err(&with_statement(
            r#""Effect": "Allow", "Resource": "*", "NotResource": "*", "Action": "*""#,
        ));
        assert!(
            error.message().contains("both Resource and NotResource"),
            "{error}"
        );
    }

    #[test]
    fn missing_resource_is_rejected() {
        let error = parse_err(&with_statement(r#""Effect": "Allow", "Action": "*""#));
        assert_eq!(error.kind(), PolicyErrorKind::MissingElement);
        assert_eq!(error.element(), "Statement.Resource");
    }

    #[test]
    fn malformed_actions_are_rejected() {
        for action in [
            "DeleteDiskSnapshot",
            "lightsail:",
            ":Get",
            "light*:Get",
            "lightsail:Get Disk",
            "lightsail:a:b",
        ] {
            let error = parse_err(&with_statement(&format!(
                r#""Effect": "Allow", "Action": "{action}", "Resource": "*""#
            )));
            assert_eq!(error.kind(), PolicyErrorKind::InvalidValue, "{action}");
            assert_eq!(error.element(), "Statement.Action", "{action}");
        }
    }

    #[test]
    fn action_lists_must_hold_strings() {
        let error = parse_err(&with_statement(
            r#""Effect": "Allow", "Action": [], "Resource": "*""#,
        ));
        assert!(error.message().contains("empty list"), "{error}");
        let error = parse_err(&with_statement(
            r#""Effect": "Allow", "Action": ["lightsail:*", 3], "Resource": "*""#,
        ));
        assert!(error.message().contains("a number"), "{error}");
        let error = parse_err(&with_statement(
            r#""Effect": "Allow", "Action": {"a": 1}, "Resource": "*""#,
        ));
        assert!(error.message().contains("an object"), "{error}");
    }

    #[test]
    fn malformed_resources_are_rejected() {
        for resource in [
            "DiskSnapshot/x",
            "arn:aws:*:us-east-1:123456789012:DiskSnapshot/x",
            "arn:aws::us-east-1:123456789012:DiskSnapshot/x",
            "arn:aws:lightsail:us-east-1",
            "arn:*",
        ] {
            let error = parse_err(&with_statement(&format!(
                r#""Effect": "Allow", "Action": "*", "Resource": "{resource}""#
            )));
            assert_eq!(error.kind(), PolicyErrorKind::InvalidValue, "{resource}");
        }
    }

    #[test]
    fn short_resource_ending_in_star_is_accepted() {
        parse_ok(&with_statement(
            r#""Effect": "Allow", "Action": "*", "Resource": "arn:aws:lightsail:*""#,
        ));
    }

    #[test]
    fn resource_policy_variables_depend_on_version() {
        let body = r#""Effect": "Allow", "Action": "*", "Resource": "arn:aws:lightsail:*:*:DiskSnapshot/${aws:username}""#;
        let error = parse_err(&with_statement(body));
        assert_eq!(error.kind(), PolicyErrorKind::UnsupportedElement);
        parse_ok(&format!(
            r#"{{"Version": "2008-10-17", "Statement": {{{body}}}}}"#
        ));
    }

    #[test]
    fn principal_is_rejected_with_explanation() {
        for element in ["Principal", "NotPrincipal"] {
            let error = parse_err(&with_statement(&format!(
                r#""Effect": "Allow", "{element}": "*", "Action": "*", "Resource": "*""#
            )));
            assert_eq!(error.kind(), PolicyErrorKind::UnsupportedElement);
            assert!(error.message().contains("identity policy"), "{error}");
        }
    }

    #[test]
    fn error_display_has_prefix_and_message() {
        let error = parse_err(&with_statement(
            r#""Effect": "allow", "Action": "*", "Resource": "*""#,
        ));
        assert_eq!(
            error.to_string(),
            "invalid policy: Statement.Effect is \"allow\", but it must be \"Allow\" or \"Deny\" (case-sensitive)"
        );
    }
}
