//! The error returned when a policy document is rejected at load time.

/// The class of a [`PolicyError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PolicyErrorKind {
    /// The text is not valid JSON.
    Syntax,
    /// A required element is absent.
    MissingElement,
    /// An element name that the grammar does not contain, or an IAM element,
    /// operator or condition key that blocksnap does not support.
    UnsupportedElement,
    /// An element has the wrong JSON type or a value outside the grammar.
    InvalidValue,
}

/// A policy document that failed to load.
///
/// The message is one sentence that names the offending element and value
/// and states what is supported. For JSON syntax errors the `serde_json` error
/// is kept as the source.
#[derive(Debug, thiserror::Error)]
#[error("invalid policy: {message}")]
pub struct PolicyError {
    kind: PolicyErrorKind,
    element: String,
    message: String,
    #[source]
    source: Option<serde_json::Error>,
}

impl PolicyError {
    pub(crate) fn new(
        kind: PolicyErrorKind,
        element: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        PolicyError {
            kind,
            element: element.into(),
            message: message.into(),
            source: None,
        }
    }

    pub(crate) fn syntax(source: serde_json::Error) -> Self {
        let message = format!(
            "the text is not valid JSON (line {}, column {})",
            source.line(),
            source.column()
        );
        PolicyError {
            kind: PolicyErrorKind::Syntax,
            element: String::new(),
            message,
            source: Some(source),
        }
    }

    /// Returns the class of the failure.
    pub fn kind(&self) -> PolicyErrorKind {
        self.kind
    }

    /// Returns the path of the offending element, such as `Statement[1].Condition.StringEquals`.
    ///
    /// Statement indexes start at 0. The path is empty for JSON syntax errors
    /// and for problems with the document as a whole.
    pub fn element(&self) -> &str {
        &self.element
    }

    /// Returns the message without the `invalid policy:` prefix.
    pub fn message(&self) -> &str {
        &self.message
    }
}
