//! IAM-style identity policies: parsing, validation and evaluation.
//!
//! A [`Policy`] is loaded from the JSON grammar of AWS IAM identity policies,
//! restricted to what blocksnap can evaluate. Anything outside that grammar is
//! rejected by [`Policy::from_json`] with a [`PolicyError`] that names the
//! element. Nothing is ignored, so every element of a loaded policy takes effect.
//! `docs/access-control.md` describes the grammar with worked examples.
//!
//! Supported grammar:
//!
//! - Document: `Version` (`2012-10-17` or `2008-10-17`, required), `Statement`
//!   (an object or a non-empty list of objects), optional `Id`.
//! - Statement: optional `Sid` (ASCII letters and digits, unique in the policy),
//!   `Effect` (`Allow` or `Deny`), exactly one of `Action` and `NotAction`,
//!   exactly one of `Resource` and `NotResource`, optional `Condition`.
//!   `Principal` and `NotPrincipal` are rejected because they belong to
//!   resource-based policies.
//! - Actions: `*` or `service:name`, with `*` and `?` wildcards in the name,
//!   compared case-insensitively.
//! - Resources: `*` or ARN patterns with `*` and `?` wildcards, compared
//!   case-sensitively. A `*` may span `:` and `/`.
//! - Condition operators: `StringEquals`, `StringNotEquals`,
//!   `StringEqualsIgnoreCase`, `StringNotEqualsIgnoreCase`, `StringLike`,
//!   `StringNotLike` (each with an optional `IfExists` suffix) and `Null`, each
//!   with an optional `ForAllValues:` or `ForAnyValue:` prefix.
//! - Condition keys: `aws:ResourceTag/KEY` and `aws:RequestTag/KEY`, which are
//!   single-valued and take no set prefix, and `aws:TagKeys`, which is
//!   multivalued and needs one (except with `Null`).
//!
//! Evaluation: an applicable `Deny` statement wins, otherwise an applicable
//! `Allow` statement allows, otherwise the request is implicitly denied.
//!
//! ```
//! use std::collections::BTreeMap;
//!
//! use blocksnap::access::{AccessRequest, Decision, Policy};
//!
//! let policy = Policy::from_json(
//!     r#"{
//!         "Version": "2012-10-17",
//!         "Statement": [
//!             {"Effect": "Allow", "Action": "lightsail:*", "Resource": "*"},
//!             {
//!                 "Sid": "KeepProd",
//!                 "Effect": "Deny",
//!                 "Action": "lightsail:Delete*",
//!                 "Resource": "*",
//!                 "Condition": {"StringEquals": {"aws:ResourceTag/env": "prod"}}
//!             }
//!         ]
//!     }"#,
//! )?;
//!
//! let tags = BTreeMap::from([("env".to_owned(), "prod".to_owned())]);
//! let request = AccessRequest {
//!     action: "lightsail:DeleteDiskSnapshot",
//!     resource_arn: "arn:aws:lightsail:us-east-1:123456789012:DiskSnapshot/1b2c",
//!     resource_tags: &tags,
//!     request_tags: None,
//!     tag_keys: None,
//! };
//! assert_eq!(
//!     policy.evaluate(&request),
//!     Decision::ExplicitDeny { statement: Some("KeepProd".to_owned()) }
//! );
//! # Ok::<(), blocksnap::access::PolicyError>(())
//! ```

mod condition;
mod error;
mod evaluate;
mod json;
mod policy;
mod wildcard;

pub use error::{PolicyError, PolicyErrorKind};
pub use evaluate::{AccessRequest, Decision};
pub use policy::Policy;
