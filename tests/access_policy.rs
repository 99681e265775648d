#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
//! Policy evaluation against hand-worked IAM cases, load-time rejections, and
//! properties of random policies.

use std::collections::BTreeMap;

use blocksnap::access::{AccessRequest, Decision, Policy, PolicyErrorKind};
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{json, Map, Value};

const SNAPSHOT_ARN: &str = "arn:aws:lightsail:us-east-1:123456789012:DiskSnapshot/a1";
const DISK_ARN: &str = "arn:aws:lightsail:us-east-1:123456789012:Disk/d1";

/// The decision a case expects, without the Sid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expected {
    Allow,
    ExplicitDeny,
    ImplicitDeny,
}

fn outcome(decision: &Decision) -> Expected {
    match decision {
        Decision::Allow { .. } => Expected::Allow,
        Decision::ExplicitDeny { .. } => Expected::ExplicitDeny,
        Decision::ImplicitDeny => Expected::ImplicitDeny,
    }
}

/// One hand-worked case: a list of statements and a request.
struct Case {
    name: &'static str,
    statements: Value,
    action: &'static str,
    resource_arn: &'static str,
    resource_tags: &'static [(&'static str, &'static str)],
    request_tags: Option<&'static [(&'static str, &'static str)]>,
    tag_keys: Option<&'static [&'static str]>,
    expected: Expected,
}

impl Case {
    /// Creates a case that requests `lightsail:GetDiskSnapshot` on an untagged snapshot.
    fn new(name: &'static str, statements: Value, expected: Expected) -> Self {
        Case {
            name,
            statements,
            action: "lightsail:GetDiskSnapshot",
            resource_arn: SNAPSHOT_ARN,
            resource_tags: &[],
            request_tags: None,
            tag_keys: None,
            expected,
        }
    }

    fn action(mut self, action: &'static str) -> Self {
        self.action = action;
        self
    }

    fn resource(mut self, resource_arn: &'static str) -> Self {
        self.resource_arn = resource_arn;
        self
    }

    fn resource_tags(mut self, tags: &'static [(&'static str, &'static str)]) -> Self {
        self.resource_tags = tags;
        self
    }

    fn request_tags(mut self, tags: &'static [(&'static str, &'static str)]) -> Self {
        self.request_tags = Some(tags);
        self
    }

    fn tag_keys(mut self, keys: &'static [&'static str]) -> Self {
        self.tag_keys = Some(keys);
        self
    }

    fn run(&self) -> Decision {
        let text = json!({"Version": "2012-10-17", "Statement": self.statements}).to_string();
        let policy = Policy::from_json(&text)
            .unwrap_or_else(|error| panic!("case {}: policy should load: {error}", self.name));

        let resource_tags = tag_map(self.resource_tags);
        let request_tags = self.request_tags.map(tag_map);
        let tag_keys: Option<Vec<String>> = self
            .tag_keys
            .map(|keys| keys.iter().map(|&key| key.to_owned()).collect());
        policy.evaluate(&AccessRequest {
            action: self.action,
            resource_arn: self.resource_arn,
            resource_tags: &resource_tags,
            request_tags: request_tags.as_ref(),
            tag_keys: tag_keys.as_deref(),
        })
    }
}

fn tag_map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|&(key, value)| (key.to_owned(), value.to_owned()))
        .collect()
}

fn allow(action: &str) -> Value {
    json!({"Effect": "Allow", "Action": action, "Resource": "*"})
}

/// Builds a statement list that allows every action on every resource under `condition`.
fn allow_if(condition: &Value) -> Value {
    json!([{"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": condition}])
}

fn hand_worked_cases() -> Vec<Case> {
    use Expected::{Allow, ExplicitDeny, ImplicitDeny};

    let deny_delete = json!({"Effect": "Deny", "Action": "lightsail:Delete*", "Resource": "*"});
    vec![
        // Explicit deny wins in either order.
        Case::new(
            "deny after allow",
            json!([allow("lightsail:*"), deny_delete]),
            ExplicitDeny,
        )
        .action("lightsail:DeleteDiskSnapshot"),
        Case::new(
            "deny before allow",
            json!([deny_delete, allow("lightsail:*")]),
            ExplicitDeny,
        )
        .action("lightsail:DeleteDiskSnapshot"),
        Case::new(
            "deny of other action leaves allow",
            json!([deny_delete, allow("lightsail:*")]),
            Allow,
        ),
        Case::new("no statement applies", json!([allow("ec2:*")]), ImplicitDeny),
        // Action wildcards.
        Case::new("service wildcard", json!([allow("lightsail:*")]), Allow),
        Case::new("service wildcard, other service", json!([allow("lightsail:*")]), ImplicitDeny)
            .action("ec2:RunInstances"),
        Case::new("prefix wildcard", json!([allow("lightsail:Delete*")]), Allow)
            .action("lightsail:DeleteDiskSnapshot"),
        Case::new("prefix wildcard, other action", json!([allow("lightsail:Delete*")]), ImplicitDeny),
        Case::new("question mark", json!([allow("lightsail:Get?iskSnapshot")]), Allow),
        Case::new(
            "question mark needs one character",
            json!([allow("lightsail:Get?iskSnapshot")]),
            ImplicitDeny,
        )
        .action("lightsail:GetiskSnapshot"),
        Case::new(
            "question mark matches only one character",
            json!([allow("lightsail:Get?iskSnapshot")]),
            ImplicitDeny,
        )
        .action("lightsail:GetXXiskSnapshot"),
        Case::new("bare star", json!([allow("*")]), Allow).action("ec2:RunInstances"),
        Case::new(
            "action case in policy",
            json!([allow("LIGHTSAIL:getdisksnapshot")]),
            Allow,
        ),
        Case::new("action case in request", json!([allow("lightsail:GetDiskSnapshot")]), Allow)
            .action("LightSail:GETDISKSNAPSHOT"),
        // NotAction.
        Case::new(
            "allow with NotAction, listed action",
            json!([{"Effect": "Allow", "NotAction": "lightsail:Delete*", "Resource": "*"}]),
            ImplicitDeny,
        )
        .action("lightsail:DeleteDiskSnapshot"),
        Case::new(
            "allow with NotAction, other action",
            json!([{"Effect": "Allow", "NotAction": "lightsail:Delete*", "Resource": "*"}]),
            Allow,
        ),
        Case::new(
            "deny with NotAction blocks everything else",
            json!([allow("*"), {"Effect": "Deny", "NotAction": ["lightsail:Get*", "lightsail:List*"], "Resource": "*"}]),
            ExplicitDeny,
        )
        .action("lightsail:CreateDiskSnapshot"),
        Case::new(
            "deny with NotAction spares listed actions",
            json!([allow("*"), {"Effect": "Deny", "NotAction": ["lightsail:Get*", "lightsail:List*"], "Resource": "*"}]),
            Allow,
        ),
        // Resource ARN wildcards.
        Case::new(
            "resource path wildcard",
            json!([{"Effect": "Allow", "Action": "*", "Resource": "arn:aws:lightsail:us-east-1:123456789012:DiskSnapshot/*"}]),
            Allow,
        ),
        Case::new(
            "resource path wildcard, other type",
            json!([{"Effect": "Allow", "Action": "*", "Resource": "arn:aws:lightsail:us-east-1:123456789012:DiskSnapshot/*"}]),
            ImplicitDeny,
        )
        .resource(DISK_ARN),
        Case::new(
            "resource segment wildcards",
            json!([{"Effect": "Allow", "Action": "*", "Resource": "arn:aws:lightsail:us-?ast-1:*:DiskSnapshot/a?"}]),
            Allow,
        ),
        Case::new(
            "resource trailing star spans segments",
            json!([{"Effect": "Allow", "Action": "*", "Resource": "arn:aws:lightsail:*"}]),
            Allow,
        )
        .resource(DISK_ARN),
        Case::new(
            "resource is case-sensitive",
            json!([{"Effect": "Allow", "Action": "*", "Resource": "arn:aws:lightsail:*:*:disksnapshot/*"}]),
            ImplicitDeny,
        ),
        Case::new(
            "resource list is OR",
            json!([{"Effect": "Allow", "Action": "*", "Resource": ["arn:aws:lightsail:*:*:Disk/*", "arn:aws:lightsail:*:*:DiskSnapshot/*"]}]),
            Allow,
        ),
        Case::new(
            "NotResource excludes listed",
            json!([{"Effect": "Allow", "Action": "*", "NotResource": "arn:aws:lightsail:*:*:Disk/*"}]),
            ImplicitDeny,
        )
        .resource(DISK_ARN),
        Case::new(
            "NotResource allows others",
            json!([{"Effect": "Allow", "Action": "*", "NotResource": "arn:aws:lightsail:*:*:Disk/*"}]),
            Allow,
        ),
        // Conditions on a tag that the resource lacks.
        Case::new(
            "missing tag, StringEquals",
            allow_if(&json!({"StringEquals": {"aws:ResourceTag/env": "prod"}})),
            ImplicitDeny,
        ),
        Case::new(
            "missing tag, StringNotEquals",
            allow_if(&json!({"StringNotEquals": {"aws:ResourceTag/env": "prod"}})),
            Allow,
        ),
        Case::new(
            "missing tag, StringNotLike",
            allow_if(&json!({"StringNotLike": {"aws:ResourceTag/env": "p*"}})),
            Allow,
        ),
        Case::new(
            "missing tag, Null true",
            allow_if(&json!({"Null": {"aws:ResourceTag/env": "true"}})),
            Allow,
        ),
        Case::new(
            "missing tag, Null false",
            allow_if(&json!({"Null": {"aws:ResourceTag/env": false}})),
            ImplicitDeny,
        ),
        Case::new(
            "present tag, Null false",
            allow_if(&json!({"Null": {"aws:ResourceTag/env": false}})),
            Allow,
        )
        .resource_tags(&[("env", "dev")]),
        Case::new(
            "missing tag, StringEqualsIfExists",
            allow_if(&json!({"StringEqualsIfExists": {"aws:ResourceTag/env": "prod"}})),
            Allow,
        ),
        Case::new(
            "present tag, StringEqualsIfExists mismatch",
            allow_if(&json!({"StringEqualsIfExists": {"aws:ResourceTag/env": "prod"}})),
            ImplicitDeny,
        )
        .resource_tags(&[("env", "dev")]),
        Case::new(
            "deny on missing tag with StringEquals does not fire",
            json!([allow("*"), {"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {"StringEquals": {"aws:ResourceTag/env": "prod"}}}]),
            Allow,
        ),
        // Set operators on aws:TagKeys.
        Case::new(
            "ForAllValues, key absent",
            allow_if(&json!({"ForAllValues:StringEquals": {"aws:TagKeys": ["env", "owner"]}})),
            Allow,
        ),
        Case::new(
            "ForAllValues, empty set",
            allow_if(&json!({"ForAllValues:StringEquals": {"aws:TagKeys": ["env", "owner"]}})),
            Allow,
        )
        .tag_keys(&[]),
        Case::new(
            "ForAllValues, subset",
            allow_if(&json!({"ForAllValues:StringEquals": {"aws:TagKeys": ["env", "owner"]}})),
            Allow,
        )
        .tag_keys(&["owner"]),
        Case::new(
            "ForAllValues, extra key",
            allow_if(&json!({"ForAllValues:StringEquals": {"aws:TagKeys": ["env", "owner"]}})),
            ImplicitDeny,
        )
        .tag_keys(&["owner", "cost-center"]),
        Case::new(
            "ForAnyValue, key absent",
            allow_if(&json!({"ForAnyValue:StringEquals": {"aws:TagKeys": "env"}})),
            ImplicitDeny,
        ),
        Case::new(
            "ForAnyValue, empty set",
            allow_if(&json!({"ForAnyValue:StringEquals": {"aws:TagKeys": "env"}})),
            ImplicitDeny,
        )
        .tag_keys(&[]),
        Case::new(
            "ForAnyValue, one match",
            allow_if(&json!({"ForAnyValue:StringEquals": {"aws:TagKeys": "env"}})),
            Allow,
        )
        .tag_keys(&["owner", "env"]),
        // StringLike wildcards.
        Case::new(
            "StringLike star",
            allow_if(&json!({"StringLike": {"aws:ResourceTag/team": "storage-*"}})),
            Allow,
        )
        .resource_tags(&[("team", "storage-eu")]),
        Case::new(
            "StringLike star, mismatch",
            allow_if(&json!({"StringLike": {"aws:ResourceTag/team": "storage-*"}})),
            ImplicitDeny,
        )
        .resource_tags(&[("team", "compute")]),
        Case::new(
            "StringLike question mark",
            allow_if(&json!({"StringLike": {"aws:ResourceTag/tier": "v?"}})),
            Allow,
        )
        .resource_tags(&[("tier", "v1")]),
        Case::new(
            "StringLike question mark, too long",
            allow_if(&json!({"StringLike": {"aws:ResourceTag/tier": "v?"}})),
            ImplicitDeny,
        )
        .resource_tags(&[("tier", "v10")]),
        Case::new(
            "StringEquals star is literal",
            allow_if(&json!({"StringEquals": {"aws:ResourceTag/tier": "v*"}})),
            ImplicitDeny,
        )
        .resource_tags(&[("tier", "v1")]),
        // Several values for one key are OR, and negated operators need no match.
        Case::new(
            "values are OR",
            allow_if(&json!({"StringEquals": {"aws:ResourceTag/env": ["dev", "test"]}})),
            Allow,
        )
        .resource_tags(&[("env", "test")]),
        Case::new(
            "values are OR, no match",
            allow_if(&json!({"StringEquals": {"aws:ResourceTag/env": ["dev", "test"]}})),
            ImplicitDeny,
        )
        .resource_tags(&[("env", "prod")]),
        Case::new(
            "negated values, none match",
            allow_if(&json!({"StringNotEquals": {"aws:ResourceTag/env": ["dev", "test"]}})),
            Allow,
        )
        .resource_tags(&[("env", "prod")]),
        Case::new(
            "negated values, one matches",
            allow_if(&json!({"StringNotEquals": {"aws:ResourceTag/env": ["dev", "test"]}})),
            ImplicitDeny,
        )
        .resource_tags(&[("env", "test")]),
        // Several keys, and several operators, are AND.
        Case::new(
            "keys are AND, both match",
            allow_if(&json!({"StringEquals": {"aws:ResourceTag/env": "prod", "aws:ResourceTag/owner": "alice"}})),
            Allow,
        )
        .resource_tags(&[("env", "prod"), ("owner", "alice")]),
        Case::new(
            "keys are AND, one matches",
            allow_if(&json!({"StringEquals": {"aws:ResourceTag/env": "prod", "aws:ResourceTag/owner": "alice"}})),
            ImplicitDeny,
        )
        .resource_tags(&[("env", "prod"), ("owner", "bob")]),
        Case::new(
            "operators are AND",
            allow_if(&json!({
                "StringEquals": {"aws:ResourceTag/env": "prod"},
                "StringLike": {"aws:ResourceTag/owner": "a*"}
            })),
            ImplicitDeny,
        )
        .resource_tags(&[("env", "prod"), ("owner", "bob")]),
        // Case rules for tags.
        Case::new(
            "tag key in condition key ignores case",
            allow_if(&json!({"StringEquals": {"aws:ResourceTag/Owner": "alice"}})),
            Allow,
        )
        .resource_tags(&[("owner", "alice")]),
        Case::new(
            "tag value is case-sensitive",
            allow_if(&json!({"StringEquals": {"aws:ResourceTag/owner": "alice"}})),
            ImplicitDeny,
        )
        .resource_tags(&[("owner", "Alice")]),
        // Request tags.
        Case::new(
            "request tag required on create",
            allow_if(&json!({"StringEquals": {"aws:RequestTag/owner": "alice"}})),
            Allow,
        )
        .action("lightsail:CreateDiskSnapshot")
        .request_tags(&[("owner", "alice")]),
        Case::new(
            "request tag missing on create",
            allow_if(&json!({"StringEquals": {"aws:RequestTag/owner": "alice"}})),
            ImplicitDeny,
        )
        .action("lightsail:CreateDiskSnapshot")
        .request_tags(&[("env", "dev")]),
    ]
}

#[test]
fn hand_worked_cases_decide_as_iam_does() {
    for case in hand_worked_cases() {
        let decision = case.run();
        assert_eq!(
            outcome(&decision),
            case.expected,
            "case {:?}: got {decision:?}",
            case.name
        );
    }
}

#[test]
fn decision_reports_the_deciding_sid() {
    let policy = Policy::from_json(
        r#"{"Version": "2012-10-17", "Statement": [
            {"Sid": "ReadAll", "Effect": "Allow", "Action": "lightsail:*", "Resource": "*"},
            {"Sid": "KeepProd", "Effect": "Deny", "Action": "lightsail:Delete*", "Resource": "*",
             "Condition": {"StringEquals": {"aws:ResourceTag/env": "prod"}}}
        ]}"#,
    )
    .unwrap();
    let prod = tag_map(&[("env", "prod")]);
    let request = |action| AccessRequest {
        action,
        resource_arn: SNAPSHOT_ARN,
        resource_tags: &prod,
        request_tags: None,
        tag_keys: None,
    };

    assert_eq!(
        policy.evaluate(&request("lightsail:DeleteDiskSnapshot")),
        Decision::ExplicitDeny {
            statement: Some("KeepProd".to_owned())
        }
    );
    assert_eq!(
        policy.evaluate(&request("lightsail:GetDiskSnapshot")),
        Decision::Allow {
            statement: Some("ReadAll".to_owned())
        }
    );
}

/// One row of a worked example in docs/access-control.md.
struct ExampleRow {
    action: &'static str,
    resource_tags: &'static [(&'static str, &'static str)],
    tag_keys: Option<&'static [&'static str]>,
    expected: Decision,
}

fn check_example(name: &str, policy_text: &str, rows: &[ExampleRow]) {
    let policy = Policy::from_json(policy_text)
        .unwrap_or_else(|error| panic!("example {name:?} should load: {error}"));
    for (index, row) in rows.iter().enumerate() {
        let resource_tags = tag_map(row.resource_tags);
        let tag_keys: Option<Vec<String>> = row
            .tag_keys
            .map(|keys| keys.iter().map(|&key| key.to_owned()).collect());
        let decision = policy.evaluate(&AccessRequest {
            action: row.action,
            resource_arn: SNAPSHOT_ARN,
            resource_tags: &resource_tags,
            request_tags: None,
            tag_keys: tag_keys.as_deref(),
        });
        assert_eq!(decision, row.expected, "example {name:?}, row {index}");
    }
}

fn allowed_by(sid: &str) -> Decision {
    Decision::Allow {
        statement: Some(sid.to_owned()),
    }
}

#[test]
fn documented_examples_decide_as_documented() {
    check_example(
        "deny deletes of production snapshots",
        r#"{
          "Version": "2012-10-17",
          "Statement": [
            {"Sid": "ManageSnapshots", "Effect": "Allow", "Action": "lightsail:*", "Resource": "*"},
            {
              "Sid": "KeepProd",
              "Effect": "Deny",
              "Action": "lightsail:Delete*",
              "Resource": "*",
              "Condition": {"StringEquals": {"aws:ResourceTag/env": "prod"}}
            }
          ]
        }"#,
        &[
            ExampleRow {
                action: "lightsail:DeleteDiskSnapshot",
                resource_tags: &[("env", "prod")],
                tag_keys: None,
                expected: Decision::ExplicitDeny {
                    statement: Some("KeepProd".to_owned()),
                },
            },
            ExampleRow {
                action: "lightsail:DeleteDiskSnapshot",
                resource_tags: &[("env", "dev")],
                tag_keys: None,
                expected: allowed_by("ManageSnapshots"),
            },
            ExampleRow {
                action: "lightsail:DeleteDiskSnapshot",
                resource_tags: &[],
                tag_keys: None,
                expected: allowed_by("ManageSnapshots"),
            },
            ExampleRow {
                action: "lightsail:DeleteDiskSnapshot",
                resource_tags: &[("env", "Prod")],
                tag_keys: None,
                expected: allowed_by("ManageSnapshots"),
            },
            ExampleRow {
                action: "lightsail:GetDiskSnapshot",
                resource_tags: &[("env", "prod")],
                tag_keys: None,
                expected: allowed_by("ManageSnapshots"),
            },
        ],
    );

    check_example(
        "allow only snapshots owned by alice",
        r#"{
          "Version": "2012-10-17",
          "Statement": {
            "Sid": "AliceOnly",
            "Effect": "Allow",
            "Action": "lightsail:*DiskSnapshot*",
            "Resource": "arn:aws:lightsail:*:*:DiskSnapshot/*",
            "Condition": {"StringEquals": {"aws:ResourceTag/owner": "alice"}}
          }
        }"#,
        &[
            ExampleRow {
                action: "lightsail:GetDiskSnapshot",
                resource_tags: &[("owner", "alice")],
                tag_keys: None,
                expected: allowed_by("AliceOnly"),
            },
            ExampleRow {
                action: "lightsail:GetDiskSnapshot",
                resource_tags: &[("Owner", "alice")],
                tag_keys: None,
                expected: allowed_by("AliceOnly"),
            },
            ExampleRow {
                action: "lightsail:GetDiskSnapshot",
                resource_tags: &[("owner", "bob")],
                tag_keys: None,
                expected: Decision::ImplicitDeny,
            },
            ExampleRow {
                action: "lightsail:GetDiskSnapshot",
                resource_tags: &[],
                tag_keys: None,
                expected: Decision::ImplicitDeny,
            },
            ExampleRow {
                action: "lightsail:GetDiskSnapshot",
                resource_tags: &[("owner", "Alice")],
                tag_keys: None,
                expected: Decision::ImplicitDeny,
            },
        ],
    );

    let known_tags_only = |with_null_check: bool| {
        let null_check = if with_null_check {
            r#", "Null": {"aws:TagKeys": "false"}"#
        } else {
            ""
        };
        format!(
            r#"{{
              "Version": "2012-10-17",
              "Statement": {{
                "Sid": "KnownTagsOnly",
                "Effect": "Allow",
                "Action": "lightsail:TagResource",
                "Resource": "*",
                "Condition": {{
                  "ForAllValues:StringEquals": {{"aws:TagKeys": ["owner", "env", "team"]}}{null_check}
                }}
              }}
            }}"#
        )
    };
    check_example(
        "restrict which tag keys a request may set",
        &known_tags_only(true),
        &[
            ExampleRow {
                action: "lightsail:TagResource",
                resource_tags: &[],
                tag_keys: Some(&["owner", "env"]),
                expected: allowed_by("KnownTagsOnly"),
            },
            ExampleRow {
                action: "lightsail:TagResource",
                resource_tags: &[],
                tag_keys: Some(&["owner", "cost-center"]),
                expected: Decision::ImplicitDeny,
            },
            ExampleRow {
                action: "lightsail:TagResource",
                resource_tags: &[],
                tag_keys: None,
                expected: Decision::ImplicitDeny,
            },
        ],
    );
    check_example(
        "tag keys without the Null check",
        &known_tags_only(false),
        &[ExampleRow {
            action: "lightsail:TagResource",
            resource_tags: &[],
            tag_keys: None,
            expected: allowed_by("KnownTagsOnly"),
        }],
    );
}

/// A policy text that `Policy::from_json` must reject.
struct Rejection {
    name: &'static str,
    text: String,
    kind: PolicyErrorKind,
    element: &'static str,
    message_contains: &'static str,
}

fn statement_policy(statement: &Value) -> String {
    json!({"Version": "2012-10-17", "Statement": statement}).to_string()
}

#[expect(clippy::too_many_lines, reason = "one table of independent cases")]
fn rejections() -> Vec<Rejection> {
    vec![
        Rejection {
            name: "unknown top-level element",
            text: r#"{"Version": "2012-10-17", "Statement": [], "Comment": "x"}"#.to_owned(),
            kind: PolicyErrorKind::UnsupportedElement,
            element: "Comment",
            message_contains: "Version, Id and Statement",
        },
        Rejection {
            name: "unknown operator",
            text: statement_policy(&json!({
                "Effect": "Allow", "Action": "*", "Resource": "*",
                "Condition": {"StringStartsWith": {"aws:ResourceTag/env": "p"}}
            })),
            kind: PolicyErrorKind::UnsupportedElement,
            element: "Statement.Condition.StringStartsWith",
            message_contains: "StringStartsWith",
        },
        Rejection {
            name: "unknown condition key",
            text: statement_policy(&json!({
                "Effect": "Allow", "Action": "*", "Resource": "*",
                "Condition": {"StringEquals": {"aws:PrincipalTag/team": "storage"}}
            })),
            kind: PolicyErrorKind::UnsupportedElement,
            element: "Statement.Condition.StringEquals.aws:PrincipalTag/team",
            message_contains: "aws:ResourceTag/KEY",
        },
        Rejection {
            name: "Principal",
            text: statement_policy(&json!({
                "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "*", "Resource": "*"
            })),
            kind: PolicyErrorKind::UnsupportedElement,
            element: "Statement.Principal",
            message_contains: "resource-based",
        },
        Rejection {
            name: "bad Effect",
            text: statement_policy(&json!({"Effect": "Permit", "Action": "*", "Resource": "*"})),
            kind: PolicyErrorKind::InvalidValue,
            element: "Statement.Effect",
            message_contains: "\"Permit\"",
        },
        Rejection {
            name: "missing Effect",
            text: statement_policy(&json!({"Action": "*", "Resource": "*"})),
            kind: PolicyErrorKind::MissingElement,
            element: "Statement.Effect",
            message_contains: "no Effect",
        },
        Rejection {
            name: "missing Action",
            text: statement_policy(&json!({"Effect": "Allow", "Resource": "*"})),
            kind: PolicyErrorKind::MissingElement,
            element: "Statement.Action",
            message_contains: "neither Action nor NotAction",
        },
        Rejection {
            name: "wrong Version",
            text: r#"{"Version": "2024-01-01", "Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}}"#
                .to_owned(),
            kind: PolicyErrorKind::InvalidValue,
            element: "Version",
            message_contains: "2024-01-01",
        },
        Rejection {
            name: "non-JSON text",
            text: "Allow lightsail:* on *".to_owned(),
            kind: PolicyErrorKind::Syntax,
            element: "",
            message_contains: "not valid JSON",
        },
        Rejection {
            name: "set operator on single-valued key",
            text: statement_policy(&json!({
                "Effect": "Allow", "Action": "*", "Resource": "*",
                "Condition": {"ForAllValues:StringEquals": {"aws:ResourceTag/env": "dev"}}
            })),
            kind: PolicyErrorKind::UnsupportedElement,
            element: "Statement.Condition.ForAllValues:StringEquals.aws:ResourceTag/env",
            message_contains: "single-valued",
        },
        Rejection {
            name: "plain operator on aws:TagKeys",
            text: statement_policy(&json!({
                "Effect": "Allow", "Action": "*", "Resource": "*",
                "Condition": {"StringEquals": {"aws:TagKeys": "env"}}
            })),
            kind: PolicyErrorKind::UnsupportedElement,
            element: "Statement.Condition.StringEquals.aws:TagKeys",
            message_contains: "ForAllValues:",
        },
        Rejection {
            name: "statement entry in a list",
            text: r#"{"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": "*", "Resource": "*"},
                {"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"StringEquals": {"aws:ResourceTag/env": 1}}}
            ]}"#
            .to_owned(),
            kind: PolicyErrorKind::InvalidValue,
            element: "Statement[1].Condition.StringEquals.aws:ResourceTag/env",
            message_contains: "the number 1",
        },
    ]
}

#[test]
fn invalid_policies_are_rejected_at_load() {
    for rejection in rejections() {
        let error = match Policy::from_json(&rejection.text) {
            Ok(policy) => panic!("case {:?} loaded: {policy:?}", rejection.name),
            Err(error) => error,
        };
        assert_eq!(
            error.kind(),
            rejection.kind,
            "case {:?}: {error}",
            rejection.name
        );
        assert_eq!(
            error.element(),
            rejection.element,
            "case {:?}: {error}",
            rejection.name
        );
        assert!(
            error.message().contains(rejection.message_contains),
            "case {:?}: message {:?} should contain {:?}",
            rejection.name,
            error.message(),
            rejection.message_contains
        );
        assert!(
            error.to_string().starts_with("invalid policy: "),
            "case {:?}: {error}",
            rejection.name
        );
    }
}

#[test]
fn syntax_error_keeps_serde_source() {
    let error = Policy::from_json("{\"Version\": ").unwrap_err();
    let source = std::error::Error::source(&error).expect("a syntax error has a source");
    assert!(source.downcast_ref::<serde_json::Error>().is_some());
}

// Random policies over a small alphabet of actions, ARNs and tags.

const POLICY_ACTIONS: [&str; 8] = [
    "*",
    "lightsail:*",
    "lightsail:Get*",
    "lightsail:Delete*",
    "lightsail:Get?iskSnapshot",
    "LIGHTSAIL:createdisksnapshot",
    "lightsail:*Snapshot",
    "ec2:*",
];

const POLICY_RESOURCES: [&str; 6] = [
    "*",
    "arn:aws:lightsail:*",
    "arn:aws:lightsail:us-east-1:*:DiskSnapshot/*",
    "arn:aws:lightsail:*:*:Disk/*",
    "arn:aws:lightsail:us-east-1:123456789012:DiskSnapshot/a?",
    "arn:aws:lightsail:eu-west-1:*",
];

const REQUEST_ACTIONS: [&str; 5] = [
    "lightsail:GetDiskSnapshot",
    "lightsail:DeleteDiskSnapshot",
    "lightsail:CreateDiskSnapshot",
    "LightSail:getdisksnapshot",
    "ec2:RunInstances",
];

const REQUEST_ARNS: [&str; 4] = [
    SNAPSHOT_ARN,
    DISK_ARN,
    "arn:aws:lightsail:eu-west-1:123456789012:DiskSnapshot/b22",
    "arn:aws:lightsail:us-east-1:123456789012:DiskSnapshot/a12",
];

const TAG_KEYS: [&str; 4] = ["env", "Env", "owner", "team"];
const TAG_VALUES: [&str; 6] = ["prod", "dev", "alice", "Alice", "", "bob"];
const CONDITION_VALUES: [&str; 7] = ["prod", "dev", "alice", "p*", "?ev", "", "ALICE"];
const STRING_OPERATORS: [&str; 6] = [
    "StringEquals",
    "StringNotEquals",
    "StringEqualsIgnoreCase",
    "StringNotEqualsIgnoreCase",
    "StringLike",
    "StringNotLike",
];

/// Generates one (operator, key, values) entry of a Condition block.
fn condition_entry() -> impl Strategy<Value = (String, String, Value)> {
    let tag_condition_key = (
        select(vec![
            "aws:ResourceTag/",
            "aws:RequestTag/",
            "AWS:resourcetag/",
        ]),
        select(TAG_KEYS.to_vec()),
    )
        .prop_map(|(prefix, key)| format!("{prefix}{key}"));
    let values = prop::collection::vec(select(CONDITION_VALUES.to_vec()), 1..3);
    let tag_key_values = prop::collection::vec(select(TAG_KEYS.to_vec()), 1..3);

    prop_oneof![
        (
            select(STRING_OPERATORS.to_vec()),
            any::<bool>(),
            tag_condition_key.clone(),
            values
        )
            .prop_map(|(operator, if_exists, key, values)| {
                let suffix = if if_exists { "IfExists" } else { "" };
                (format!("{operator}{suffix}"), key, json!(values))
            }),
        (
            prop_oneof![tag_condition_key, Just("aws:TagKeys".to_owned())],
            any::<bool>()
        )
            .prop_map(|(key, expect_absent)| (
                "Null".to_owned(),
                key,
                json!(expect_absent)
            )),
        (
            select(vec!["ForAllValues:", "ForAnyValue:"]),
            select(STRING_OPERATORS.to_vec()),
            any::<bool>(),
            tag_key_values
        )
            .prop_map(|(qualifier, operator, if_exists, values)| {
                let suffix = if if_exists { "IfExists" } else { "" };
                (
                    format!("{qualifier}{operator}{suffix}"),
                    "aws:TagKeys".to_owned(),
                    json!(values),
                )
            }),
    ]
}

/// Generates a statement without a Sid. [`statements_and_shuffle`] adds the Sids.
fn statement() -> impl Strategy<Value = Map<String, Value>> {
    (
        any::<bool>(),
        any::<bool>(),
        prop::collection::vec(select(POLICY_ACTIONS.to_vec()), 1..3),
        any::<bool>(),
        prop::collection::vec(select(POLICY_RESOURCES.to_vec()), 1..3),
        prop::collection::vec(condition_entry(), 0..4),
    )
        .prop_map(
            |(deny, not_action, actions, not_resource, resources, conditions)| {
                let mut statement = Map::new();
                statement.insert("Effect".into(), json!(if deny { "Deny" } else { "Allow" }));
                let action_element = if not_action { "NotAction" } else { "Action" };
                statement.insert(action_element.into(), json!(actions));
                let resource_element = if not_resource {
                    "NotResource"
                } else {
                    "Resource"
                };
                statement.insert(resource_element.into(), json!(resources));

                // A map per operator merges entries that share an operator.
                let mut block: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
                for (operator, key, values) in conditions {
                    block.entry(operator).or_default().insert(key, values);
                }
                if !block.is_empty() {
                    statement.insert("Condition".into(), json!(block));
                }
                statement
            },
        )
}

/// Generates statements with unique Sids, and the same statements in a shuffled order.
fn statements_and_shuffle() -> impl Strategy<Value = (Vec<Value>, Vec<Value>)> {
    prop::collection::vec(statement(), 1..6)
        .prop_map(|statements| {
            statements
                .into_iter()
                .enumerate()
                .map(|(index, mut statement)| {
                    statement.insert("Sid".into(), json!(format!("S{index}")));
                    Value::Object(statement)
                })
                .collect::<Vec<_>>()
        })
        .prop_flat_map(|statements| {
            let shuffled = Just(statements.clone()).prop_shuffle();
            (Just(statements), shuffled)
        })
}

/// The parts of a random request, owned so that `AccessRequest` can borrow them.
#[derive(Debug, Clone)]
struct RandomRequest {
    action: &'static str,
    resource_arn: &'static str,
    resource_tags: BTreeMap<String, String>,
    request_tags: Option<BTreeMap<String, String>>,
    tag_keys: Option<Vec<String>>,
}

impl RandomRequest {
    fn as_request(&self) -> AccessRequest<'_> {
        AccessRequest {
            action: self.action,
            resource_arn: self.resource_arn,
            resource_tags: &self.resource_tags,
            request_tags: self.request_tags.as_ref(),
            tag_keys: self.tag_keys.as_deref(),
        }
    }
}

fn random_request() -> impl Strategy<Value = RandomRequest> {
    let tags = || {
        prop::collection::btree_map(
            select(TAG_KEYS.to_vec()).prop_map(str::to_owned),
            select(TAG_VALUES.to_vec()).prop_map(str::to_owned),
            0..3,
        )
    };
    let tag_keys = prop::collection::vec(select(TAG_KEYS.to_vec()).prop_map(str::to_owned), 0..3);
    (
        select(REQUEST_ACTIONS.to_vec()),
        select(REQUEST_ARNS.to_vec()),
        tags(),
        prop::option::of(tags()),
        prop::option::of(tag_keys),
    )
        .prop_map(
            |(action, resource_arn, resource_tags, request_tags, tag_keys)| RandomRequest {
                action,
                resource_arn,
                resource_tags,
                request_tags,
                tag_keys,
            },
        )
}

fn load(statements: &[Value]) -> Policy {
    let text = json!({"Version": "2012-10-17", "Statement": statements}).to_string();
    Policy::from_json(&text).unwrap_or_else(|error| panic!("generated policy {text}: {error}"))
}

proptest! {
    #[test]
    fn deny_wins_and_order_does_not_matter(
        (statements, shuffled) in statements_and_shuffle(),
        request in random_request(),
    ) {
        let request = request.as_request();
        let decision = load(&statements).evaluate(&request);

        // Decide each statement alone.
        let mut denying_sids = Vec::new();
        let mut any_allow = false;
        for statement in &statements {
            match load(std::slice::from_ref(statement)).evaluate(&request) {
                Decision::ExplicitDeny { statement } => denying_sids.push(statement),
                Decision::Allow { .. } => any_allow = true,
                Decision::ImplicitDeny => {}
            }
        }

        if denying_sids.is_empty() {
            let expected = if any_allow { Expected::Allow } else { Expected::ImplicitDeny };
            prop_assert_eq!(outcome(&decision), expected);
        } else {
            prop_assert!(!decision.is_allowed(), "a matching Deny was overridden: {:?}", decision);
            let Decision::ExplicitDeny { statement } = &decision else {
                return Err(TestCaseError::fail(format!("expected an explicit deny, got {decision:?}")));
            };
            prop_assert!(denying_sids.contains(statement), "{:?} is not a denying statement", statement);
        }

        let shuffled_decision = load(&shuffled).evaluate(&request);
        prop_assert_eq!(outcome(&shuffled_decision), outcome(&decision));
    }
}
