//! Runs `validate_shape.py` to check JSON against botocore's Lightsail model.
//!
//! Include it with `mod lightsail;` from a test file. Cargo builds only the
//! files directly inside `tests/` as test crates, so this directory is not a
//! test crate of its own.
//!
//! The validator needs `python3` with botocore installed. When either is
//! missing, every helper here panics with a message that names the missing
//! tool, because a check that cannot run must fail rather than pass.

// Each test crate that includes this module uses only some of the helpers.
#![allow(dead_code)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::thread;

/// Interpreter that runs the validator.
const PYTHON: &str = "python3";

/// What one validator run printed and how it exited.
#[derive(Debug)]
pub struct Validation {
    /// Exit code: 0 valid, 1 invalid. `None` if a signal ended the process.
    pub exit_code: Option<i32>,
    /// Standard output, which is `ok SHAPE` for a valid document.
    pub stdout: String,
    /// Standard error, which lists the violations of an invalid document.
    pub stderr: String,
}

impl Validation {
    /// Returns whether the validator accepted the document.
    pub fn is_valid(&self) -> bool {
        self.exit_code == Some(0)
    }
}

/// Returns the path of `validate_shape.py`.
pub fn validator_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/lightsail/validate_shape.py")
}

/// Runs the validator on `json` for the botocore shape `shape`.
///
/// Returns the outcome when the validator judged the document (exit 0 or 1).
/// Panics when python3 cannot be started, botocore is missing, the shape is
/// unknown, or the validator fails in any other way (exit 2 or a crash).
pub fn run_validator(shape: &str, json: &str) -> Validation {
    run_validator_allowing(shape, json, &[])
}

/// Runs the validator like [`run_validator`], and also accepts each
/// `(enum shape, value)` pair of `allowed` as a value of that enum shape only.
///
/// Each pair becomes one `--allow-enum-value SHAPE=VALUE` option. Panics also
/// when a pair names no enum shape or a value that the enum already lists.
pub fn run_validator_allowing(shape: &str, json: &str, allowed: &[(&str, &str)]) -> Validation {
    let script = validator_path();
    let mut command = Command::new(PYTHON);
    command.arg(&script);
    for (enum_shape, value) in allowed {
        command.arg(format!("--allow-enum-value={enum_shape}={value}"));
    }
    let mut child = command
        .arg(shape)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| {
            panic!(
                "failed to start `{PYTHON} {}`: {error}. Install Python 3, then run \
                 `pip install botocore`",
                script.display()
            )
        });

    // Write from another thread so that a child that prints before it has read
    // all of its input cannot block both processes on full pipes.
    let mut stdin = child.stdin.take().expect("stdin of the validator is piped");
    let input = json.to_owned();
    let writer = thread::spawn(move || stdin.write_all(input.as_bytes()));

    let output = child
        .wait_with_output()
        .unwrap_or_else(|error| panic!("failed to wait for the validator: {error}"));
    let write_result = writer
        .join()
        .expect("the thread that writes to the validator panicked");

    let validation = Validation {
        exit_code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };

    assert!(
        matches!(validation.exit_code, Some(0 | 1)),
        "validator could not check shape {shape} (exit code {:?}). If botocore is \
         missing, run `pip install botocore`.\nstderr:\n{}",
        validation.exit_code,
        validation.stderr
    );
    write_result.unwrap_or_else(|error| panic!("failed to send JSON to the validator: {error}"));
    validation
}

/// Asserts that `json` is a valid instance of the botocore shape `shape`.
pub fn assert_valid_shape(shape: &str, json: &str) {
    assert_valid_shape_allowing(shape, json, &[]);
}

/// Asserts that `json` is a valid instance of the botocore shape `shape` when
/// the validator also accepts the `(enum shape, value)` pairs of `allowed`.
pub fn assert_valid_shape_allowing(shape: &str, json: &str, allowed: &[(&str, &str)]) {
    let validation = run_validator_allowing(shape, json, allowed);
    assert!(
        validation.is_valid(),
        "JSON is not a valid {shape}, even with the extra enum values {allowed:?}:\n{}\nJSON:\n{json}",
        validation.stderr
    );
    assert_eq!(validation.stdout.trim(), format!("ok {shape}"));
}

/// Serializes `value` with `serde_json`, asserts that the JSON is a valid
/// instance of the botocore shape `shape`, and returns the JSON.
pub fn assert_serializes_to_shape<T: serde::Serialize>(shape: &str, value: &T) -> String {
    assert_serializes_to_shape_allowing(shape, value, &[])
}

/// Serializes `value` like [`assert_serializes_to_shape`], but the validator
/// also accepts the `(enum shape, value)` pairs of `allowed`.
pub fn assert_serializes_to_shape_allowing<T: serde::Serialize>(
    shape: &str,
    value: &T,
    allowed: &[(&str, &str)],
) -> String {
    let json = serde_json::to_string_pretty(value)
        .unwrap_or_else(|error| panic!("failed to serialize a {shape}: {error}"));
    assert_valid_shape_allowing(shape, &json, allowed);
    json
}
