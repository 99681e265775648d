//! Deciding a request against a policy.
//!
//! The order follows IAM's evaluation logic for a single identity policy: an
//! explicit `Deny` in any applicable statement wins, otherwise an applicable
//! `Allow` allows, otherwise the request is implicitly denied. Statement order
//! never changes the outcome. It only decides which Sid the decision reports.

use std::collections::BTreeMap;

use super::policy::{Effect, Policy, Statement};

/// The facts about one request that a policy decides on.
#[derive(Debug, Clone, Copy)]
pub struct AccessRequest<'a> {
    /// The action, such as `lightsail:DeleteDiskSnapshot`. Compared case-insensitively.
    pub action: &'a str,
    /// The ARN of the resource, such as
    /// `arn:aws:lightsail:us-east-1:123456789012:DiskSnapshot/uuid`. Compared case-sensitively.
    pub resource_arn: &'a str,
    /// The current tags of the resource, empty when it has none. Read by `aws:ResourceTag/KEY`.
    pub resource_tags: &'a BTreeMap<String, String>,
    /// The tags sent with the request (create, tag-resource), read by
    /// `aws:RequestTag/KEY`. `None` when the request carries no tags.
    pub request_tags: Option<&'a BTreeMap<String, String>>,
    /// The tag keys in the request (tag-resource, untag-resource, create), read
    /// by `aws:TagKeys`. `None` and an empty slice both mean that the key is absent.
    pub tag_keys: Option<&'a [String]>,
}

/// The outcome of [`Policy::evaluate`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Decision {
    /// An `Allow` statement applies and no `Deny` statement does.
    Allow {
        /// The Sid of the first applicable `Allow` statement in document order.
        statement: Option<String>,
    },
    /// A `Deny` statement applies.
    ExplicitDeny {
        /// The Sid of the first applicable `Deny` statement in document order.
        statement: Option<String>,
    },
    /// No statement applies.
    ImplicitDeny,
}

impl Decision {
    /// Returns whether the request may proceed.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow { .. })
    }
}

impl Policy {
    /// Decides whether the policy allows `request`.
    ///
    /// A statement applies when its action, resource and every condition
    /// match. Any applicable `Deny` gives [`Decision::ExplicitDeny`]. Otherwise
    /// any applicable `Allow` gives [`Decision::Allow`], and with neither the
    /// result is [`Decision::ImplicitDeny`].
    pub fn evaluate(&self, request: &AccessRequest<'_>) -> Decision {
        let action = request.action.to_ascii_lowercase();
        let mut first_allow: Option<&Statement> = None;

        for statement in &self.statements {
            if !statement_applies(statement, &action, request) {
                continue;
            }
            match statement.effect {
                Effect::Deny => {
                    return Decision::ExplicitDeny {
                        statement: statement.sid.clone(),
                    }
                }
                Effect::Allow => {
                    first_allow.get_or_insert(statement);
                }
            }
        }

        match first_allow {
            Some(statement) => Decision::Allow {
                statement: statement.sid.clone(),
            },
            None => Decision::ImplicitDeny,
        }
    }
}

/// Returns whether `statement` applies to `request`. `action` is the request's
/// action in ASCII lowercase, matching the lowercased patterns.
fn statement_applies(statement: &Statement, action: &str, request: &AccessRequest<'_>) -> bool {
    statement.actions.covers(action)
        && statement.resources.covers(request.resource_arn)
        && statement
            .conditions
            .iter()
            .all(|condition| condition.is_satisfied(request))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::{AccessRequest, Decision};
    use crate::access::Policy;

    const ARN: &str = "arn:aws:lightsail:us-east-1:123456789012:DiskSnapshot/one";

    fn policy(text: &str) -> Policy {
        match Policy::from_json(text) {
            Ok(policy) => policy,
            Err(error) => panic!("{text} should parse: {error}"),
        }
    }

    fn decide(policy: &Policy, action: &str) -> Decision {
        let tags = BTreeMap::new();
        policy.evaluate(&AccessRequest {
            action,
            resource_arn: ARN,
            resource_tags: &tags,
            request_tags: None,
            tag_keys: None,
        })
    }

    #[test]
    fn decision_reports_first_matching_sid() {
        let policy = policy(
            r#"{"Version": "2012-10-17", "Statement": [
                {"Sid": "ReadA", "Effect": "Allow", "Action": "lightsail:Get*", "Resource": "*"},
                {"Sid": "ReadB", "Effect": "Allow", "Action": "lightsail:*", "Resource": "*"},
                {"Effect": "Deny", "Action": "lightsail:Delete*", "Resource": "*"},
                {"Sid": "NoDelete", "Effect": "Deny", "Action": "lightsail:Delete*", "Resource": "*"}
            ]}"#,
        );
        assert_eq!(
            decide(&policy, "lightsail:GetDiskSnapshot"),
            Decision::Allow {
                statement: Some("ReadA".to_owned())
            }
        );
        assert_eq!(
            decide(&policy, "lightsail:DeleteDiskSnapshot"),
            Decision::ExplicitDeny { statement: None }
        );
        assert_eq!(decide(&policy, "ec2:RunInstances"), Decision::ImplicitDeny);
    }

    #[test]
    fn is_allowed_only_for_allow() {
        assert!(Decision::Allow { statement: None }.is_allowed());
        assert!(!Decision::ExplicitDeny { statement: None }.is_allowed());
        assert!(!Decision::ImplicitDeny.is_allowed());
    }
}
