#!/usr/bin/env python3
"""Validate a JSON document against a shape of botocore's Lightsail model.

Usage:
    python3 tests/lightsail/validate_shape.py [--allow-enum-value SHAPE=VALUE]... SHAPE_NAME [FILE]

Reads FILE, or standard input when FILE is missing or `-`, and checks the
document recursively against SHAPE_NAME (for example GetDiskSnapshotResult):
member names, JSON types, enum values, patterns, length and value limits,
and required members.

`--allow-enum-value OperationType=TagResource` also accepts the value
TagResource wherever the document contains an OperationType, for values that
Lightsail returns but the model does not list. The option may be repeated, and
each use adds one value to one enum shape.

Exit status:
    0  the document is valid, and stdout is `ok SHAPE_NAME`
    1  the document is invalid or not JSON; stderr lists every violation
       with its JSON path (`$.operations[0].status`)
    2  usage error, unknown shape, an --allow-enum-value that names no enum
       shape or a value that the enum already lists, missing botocore, or a
       model construct that this script cannot check

Needs only the standard library and botocore.
"""

import argparse
import base64
import binascii
import datetime
import email.utils
import json
import math
import re
import sys

SERVICE = "lightsail"

# Value ranges of botocore's fixed-size number types.
INTEGER_RANGES = {
    "integer": (-(2**31), 2**31 - 1),
    "long": (-(2**63), 2**63 - 1),
}


class ModelError(Exception):
    """A model construct that this validator cannot check."""


def load_model():
    try:
        import botocore.loaders
    except ImportError:
        print(
            "error: botocore is not installed, and this validator reads the Lightsail "
            "model from it; run `pip install botocore`",
            file=sys.stderr,
        )
        sys.exit(2)
    return botocore.loaders.Loader().load_service_model(SERVICE, "service-2")


def describe(value):
    """Name the JSON type of a parsed value for an error message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def quote(value):
    """Render a value as JSON for an error message, keeping non-ASCII text readable."""
    return json.dumps(value, ensure_ascii=False)


def is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def compile_pattern(pattern):
    r"""Translate a botocore `pattern` into a Python regular expression.

    botocore does not name the regex dialect of `pattern`. The patterns parse
    as Java regular expressions, and the Smithy 2.0 spec defines its pattern
    trait in ECMA-262 syntax. The constructs in the Lightsail model mean the
    same in Python's `re` with one exception: `\w` and `\d` (and `\s` in Java)
    match only ASCII there, so `\w` is `[A-Za-z0-9_]`, but any Unicode
    character of the class in Python. Compiling with re.ASCII makes Python
    match only ASCII too.

    The Smithy spec also says that a pattern is not implicitly anchored: a
    value is valid if the pattern matches any part of it. So the caller uses
    re.search, and a pattern meant for the whole value has its own ^ and $.
    NOTE: ResourceName's pattern `\w[\w\-]*\w` is unanchored, so "-ab-" passes
    here although Lightsail may reject that name.
    """
    try:
        return re.compile(pattern, re.ASCII)
    except re.error as error:
        raise ModelError(f"cannot translate pattern {pattern!r} to Python: {error}") from error


class Validator:
    def __init__(self, model, extra_enum_values=None):
        self.shapes = model["shapes"]
        # Enum shape name -> values accepted in addition to the model's.
        self.extra_enum_values = extra_enum_values or {}
        self.patterns = {}
        self.violations = []

    def fail(self, path, message):
        self.violations.append(f"{path}: {message}")

    def validate(self, value, shape_name, path):
        shape = self.shapes[shape_name]
        shape_type = shape["type"]

        if value is None:
            self.fail(path, f"null is not a valid {shape_name}; omit the member instead")
            return

        check = getattr(self, f"check_{shape_type}", None)
        if check is None:
            raise ModelError(f"shape {shape_name} has type {shape_type!r}, which this validator does not support")
        check(value, shape_name, shape, path)

    def check_structure(self, value, shape_name, shape, path):
        if not isinstance(value, dict):
            self.fail(path, f"expected an object for {shape_name}, found {describe(value)}")
            return

        members = shape["members"]
        for name in value:
            if name not in members:
                known = ", ".join(members) or "none"
                self.fail(f"{path}.{name}", f"unknown member of {shape_name}; known members: {known}")

        for name in shape.get("required", []):
            if name not in value:
                self.fail(f"{path}.{name}", f"missing required member of {shape_name}")

        if shape.get("union") and len(value) != 1:
            self.fail(path, f"{shape_name} is a union, so exactly one member must be set, found {len(value)}")

        for name, member in members.items():
            if name in value:
                self.validate(value[name], member["shape"], f"{path}.{name}")

    def check_list(self, value, shape_name, shape, path):
        if not isinstance(value, list):
            self.fail(path, f"expected an array for {shape_name}, found {describe(value)}")
            return
        self.check_size(len(value), "items", shape_name, shape, path)
        for index, item in enumerate(value):
            self.validate(item, shape["member"]["shape"], f"{path}[{index}]")

    def check_map(self, value, shape_name, shape, path):
        if not isinstance(value, dict):
            self.fail(path, f"expected an object for {shape_name}, found {describe(value)}")
            return
        self.check_size(len(value), "entries", shape_name, shape, path)
        for key, item in value.items():
            entry_path = f"{path}[{quote(key)}]"
            self.validate(key, shape["key"]["shape"], f"{entry_path} (key)")
            self.validate(item, shape["value"]["shape"], entry_path)

    def check_string(self, value, shape_name, shape, path):
        if not isinstance(value, str):
            self.fail(path, f"expected a string for {shape_name}, found {describe(value)}")
            return

        if "enum" in shape:
            allowed = shape["enum"] + self.extra_enum_values.get(shape_name, [])
            if value not in allowed:
                self.fail(path, f"{quote(value)} is not a valid {shape_name}; expected one of: {', '.join(allowed)}")

        # Smithy's length trait counts Unicode code points, as len() does.
        self.check_size(len(value), "characters", shape_name, shape, path)

        if "pattern" in shape:
            pattern = shape["pattern"]
            if pattern not in self.patterns:
                self.patterns[pattern] = compile_pattern(pattern)
            if not self.patterns[pattern].search(value):
                self.fail(path, f"{quote(value)} does not match the {shape_name} pattern {pattern}")

    def check_blob(self, value, shape_name, shape, path):
        if not isinstance(value, str):
            self.fail(path, f"expected a base64 string for {shape_name}, found {describe(value)}")
            return
        try:
            decoded = base64.b64decode(value, validate=True)
        except binascii.Error as error:
            self.fail(path, f"invalid base64 for {shape_name}: {error}")
            return
        self.check_size(len(decoded), "bytes", shape_name, shape, path)

    def check_boolean(self, value, shape_name, shape, path):
        if not isinstance(value, bool):
            self.fail(path, f"expected true or false for {shape_name}, found {describe(value)}")

    def check_integer(self, value, shape_name, shape, path):
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(path, f"expected a whole number for {shape_name}, found {describe(value)} {quote(value)}")
            return
        low, high = INTEGER_RANGES[shape["type"]]
        if not low <= value <= high:
            self.fail(path, f"{value} is outside the {shape['type']} range {low}..{high} of {shape_name}")
        self.check_range(value, shape_name, shape, path)

    check_long = check_integer

    def check_double(self, value, shape_name, shape, path):
        if not is_number(value):
            self.fail(path, f"expected a number for {shape_name}, found {describe(value)}")
            return
        self.check_range(value, shape_name, shape, path)

    check_float = check_double

    def check_timestamp(self, value, shape_name, shape, path):
        # The AWS JSON protocol sends timestamps as epoch seconds unless the
        # shape sets timestampFormat. No Lightsail shape does, as of botocore 1.43.
        timestamp_format = shape.get("timestampFormat", "unixTimestamp")
        if timestamp_format == "unixTimestamp":
            if not is_number(value):
                self.fail(path, f"expected epoch seconds as a number for {shape_name}, found {describe(value)}")
            return

        if not isinstance(value, str):
            self.fail(path, f"expected a {timestamp_format} string for {shape_name}, found {describe(value)}")
            return
        try:
            if timestamp_format == "iso8601":
                datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
            elif timestamp_format == "rfc822":
                email.utils.parsedate_to_datetime(value)
            else:
                raise ModelError(f"shape {shape_name} has timestampFormat {timestamp_format!r}, which this validator does not support")
        except (ValueError, TypeError):
            self.fail(path, f"{quote(value)} is not a valid {timestamp_format} timestamp for {shape_name}")

    def check_size(self, size, unit, shape_name, shape, path):
        """Check the min/max of a string, blob, list or map, which limit its size."""
        if "min" in shape and size < shape["min"]:
            self.fail(path, f"has {size} {unit}, fewer than the minimum {shape['min']} of {shape_name}")
        if "max" in shape and size > shape["max"]:
            self.fail(path, f"has {size} {unit}, more than the maximum {shape['max']} of {shape_name}")

    def check_range(self, value, shape_name, shape, path):
        """Check the min/max of a number shape, which limit its value."""
        if "min" in shape and value < shape["min"]:
            self.fail(path, f"{value} is below the minimum {shape['min']} of {shape_name}")
        if "max" in shape and value > shape["max"]:
            self.fail(path, f"{value} is above the maximum {shape['max']} of {shape_name}")


def reject_duplicate_members(pairs):
    """Build a JSON object, raising ValueError on a repeated member name."""
    names = [name for name, _ in pairs]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"duplicate member names: {', '.join(duplicates)}")
    return dict(pairs)


def reject_non_finite(constant):
    raise ValueError(f"{constant} is not valid JSON")


def parse_json(text):
    """Parse strict JSON: no NaN or Infinity, and no repeated member names."""
    document = json.loads(
        text,
        object_pairs_hook=reject_duplicate_members,
        parse_constant=reject_non_finite,
    )

    # Python reads numbers beyond the float range as inf, which JSON cannot express.
    def check_finite(value):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("a number is too large for a 64-bit float")
        if isinstance(value, list):
            for item in value:
                check_finite(item)
        elif isinstance(value, dict):
            for item in value.values():
                check_finite(item)

    check_finite(document)
    return document


def parse_enum_allowance(text):
    """Split an --allow-enum-value argument `SHAPE=VALUE` into (SHAPE, VALUE)."""
    shape_name, separator, value = text.partition("=")
    if not separator or not shape_name or not value:
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: expected SHAPE=VALUE, such as OperationType=TagResource")
    return shape_name, value


def collect_extra_enum_values(model, allowances):
    """Group (shape name, value) pairs by shape after checking each against the model.

    Raises ValueError for a shape that is not an enum, or a value that the enum
    already lists, so that a stale allowance fails instead of passing silently.
    """
    extra = {}
    for shape_name, value in allowances:
        shape = model["shapes"].get(shape_name)
        if shape is None:
            raise ValueError(f"--allow-enum-value {shape_name}={value}: the {SERVICE} model has no shape named {shape_name!r}")
        if "enum" not in shape:
            raise ValueError(f"--allow-enum-value {shape_name}={value}: {shape_name} is not an enum shape")
        if value in shape["enum"]:
            raise ValueError(
                f"--allow-enum-value {shape_name}={value}: the model already lists {quote(value)} "
                f"in {shape_name}, so remove this option"
            )
        values = extra.setdefault(shape_name, [])
        if value not in values:
            values.append(value)
    return extra


def main():
    parser = argparse.ArgumentParser(
        description="Validate JSON against a shape of botocore's Lightsail model.",
    )
    parser.add_argument("shape", metavar="SHAPE_NAME", help="botocore shape name, such as GetDiskSnapshotResult")
    parser.add_argument("file", metavar="FILE", nargs="?", default="-", help="JSON file to read; - or no FILE reads stdin")
    parser.add_argument(
        "--allow-enum-value",
        metavar="SHAPE=VALUE",
        dest="allowances",
        type=parse_enum_allowance,
        action="append",
        default=[],
        help="also accept VALUE for the enum shape SHAPE (such as OperationType=TagResource); repeatable",
    )
    args = parser.parse_args()

    model = load_model()
    if args.shape not in model["shapes"]:
        print(f"error: the {SERVICE} model has no shape named {args.shape!r}", file=sys.stderr)
        return 2

    try:
        extra_enum_values = collect_extra_enum_values(model, args.allowances)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    try:
        if args.file == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(args.file, "rb") as file:
                data = file.read()
    except OSError as error:
        print(f"error: cannot read {args.file}: {error}", file=sys.stderr)
        return 2

    # UnicodeDecodeError is a ValueError, so bad UTF-8 is reported as invalid JSON.
    try:
        document = parse_json(data.decode("utf-8"))
    except ValueError as error:
        print(f"{args.shape}: invalid JSON: {error}", file=sys.stderr)
        return 1
    except RecursionError:
        print("error: the document is nested too deeply to parse", file=sys.stderr)
        return 2

    validator = Validator(model, extra_enum_values)
    try:
        validator.validate(document, args.shape, "$")
    except ModelError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except RecursionError:
        print("error: the document is nested too deeply to validate", file=sys.stderr)
        return 2

    if validator.violations:
        count = len(validator.violations)
        print(f"{args.shape}: {count} violation{'s' if count != 1 else ''}", file=sys.stderr)
        for violation in validator.violations:
            print(f"  {violation}", file=sys.stderr)
        return 1

    print(f"ok {args.shape}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
