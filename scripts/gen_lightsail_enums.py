#!/usr/bin/env python3
"""Regenerate the Lightsail enums in src/model/enums.rs from botocore's model.

The script rewrites the block between the BEGIN GENERATED and END GENERATED
lines of src/model/enums.rs, so the hand-written code around it stays. The
block is one `wire_enums!` invocation that lists every value of each enum shape
below, in the order botocore lists them, followed by the values of that shape
in ENUM_EXTENSIONS. Each extension is marked `@extension` in the block.

Usage:
    python3 scripts/gen_lightsail_enums.py           # rewrite the file
    python3 scripts/gen_lightsail_enums.py --check   # exit 1 if it is stale

Needs only the standard library and botocore (`pip install botocore`).
"""

import argparse
import re
import sys
from pathlib import Path

ENUMS_RS = Path(__file__).resolve().parent.parent / "src" / "model" / "enums.rs"
BEGIN_MARKER = "// BEGIN GENERATED"
END_MARKER = "// END GENERATED"

# Enum shape name -> doc comment of the Rust enum.
ENUM_DOCS = {
    "RegionName": "AWS Region in which Lightsail runs.",
    "ResourceType": "Kind of Lightsail resource that a record describes.",
    "OperationType": "Lightsail action that an operation record tracks.",
    "OperationStatus": "Progress of an operation.",
    "DiskSnapshotState": "Lifecycle state of a disk snapshot.",
}

# Values that Lightsail returns but botocore's model does not list, which
# blocksnap also accepts and writes: enum shape name -> list of
# (wire value, reason). Each reason becomes the doc comment of its variant.
# The script fails if botocore starts listing one of these values, so that the
# entry is removed here instead of being generated twice.
ENUM_EXTENSIONS = {
    "OperationType": [
        ("TagResource", "Returned by Lightsail for `TagResource`; not listed in the service model."),
        ("UntagResource", "Returned by Lightsail for `UntagResource`; not listed in the service model."),
    ],
}

# Splits one hyphen-free word into parts so that an acronym becomes one
# part: "StartGUISession" -> "Start", "GUI", "Session"; "east1" -> "east", "1".
WORD_PART = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


def load_model():
    try:
        import botocore
        import botocore.loaders
    except ImportError:
        sys.exit("error: botocore is not installed; run `pip install botocore`")
    model = botocore.loaders.Loader().load_service_model("lightsail", "service-2")
    return model, botocore.__version__


def variant_name(wire_value):
    """Convert a wire value to an UpperCamelCase Rust variant name.

    Acronyms count as one word, as the Rust API guidelines ask:
    `us-east-1` -> `UsEast1`, `StartGUISession` -> `StartGuiSession`.
    """
    parts = []
    for word in wire_value.split("-"):
        matched = WORD_PART.findall(word)
        if "".join(matched) != word:
            raise ValueError(f"cannot turn wire value {wire_value!r} into a Rust identifier")
        parts.extend(matched)
    name = "".join(part[:1].upper() + part[1:].lower() for part in parts)
    if not name[:1].isalpha():
        raise ValueError(f"wire value {wire_value!r} gives {name!r}, which does not start with a letter")
    return name


def check_extensions(model):
    """Raise ValueError unless each ENUM_EXTENSIONS entry adds a new value to a generated enum."""
    for shape_name, extensions in ENUM_EXTENSIONS.items():
        if shape_name not in ENUM_DOCS:
            raise ValueError(f"ENUM_EXTENSIONS names {shape_name}, which is not in ENUM_DOCS")
        model_values = model["shapes"][shape_name]["enum"]
        for wire_value, _reason in extensions:
            if wire_value in model_values:
                raise ValueError(
                    f"botocore now lists {wire_value!r} in {shape_name}, so "
                    "remove it from ENUM_EXTENSIONS and rerun this script"
                )


def render_enum(shape_name, model_values):
    """Render one enum of the `wire_enums!` invocation as indented lines."""
    extensions = ENUM_EXTENSIONS.get(shape_name, [])
    lines = [
        f"    /// {ENUM_DOCS[shape_name]}",
        "    ///",
        f"    /// Mirrors botocore's `{shape_name}` shape, which lists {len(model_values)} values.",
    ]
    if extensions:
        lines.append(f"    /// Adds {len(extensions)} values that Lightsail returns but the model does not list.")
    lines.append(f"    {shape_name} {{")

    seen = {}
    entries = [(wire_value, None) for wire_value in model_values] + extensions
    for wire_value, reason in entries:
        name = variant_name(wire_value)
        if name in seen:
            raise ValueError(f"{shape_name}: {wire_value!r} and {seen[name]!r} both map to variant {name}")
        seen[name] = wire_value
        if reason is None:
            lines.append(f'        {name} => "{wire_value}",')
        else:
            lines.append(f"        /// {reason}")
            lines.append(f'        @extension {name} => "{wire_value}",')
    lines.append("    }")
    return lines


def render_block(model, botocore_version):
    check_extensions(model)
    lines = [
        f"{BEGIN_MARKER} by scripts/gen_lightsail_enums.py from botocore {botocore_version}; do not edit.",
        "wire_enums! {",
    ]
    for index, shape_name in enumerate(ENUM_DOCS):
        if index > 0:
            lines.append("")
        lines.extend(render_enum(shape_name, model["shapes"][shape_name]["enum"]))
    lines.append("}")
    lines.append(END_MARKER)
    return "\n".join(lines)


def strip_version(block):
    """Drop the marker line, which names the botocore version, from a block."""
    return block.split("\n", 1)[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit 1 if the enums in the file differ from botocore's model plus ENUM_EXTENSIONS, without writing",
    )
    args = parser.parse_args()

    model, botocore_version = load_model()
    try:
        new_block = render_block(model, botocore_version)
    except ValueError as error:
        sys.exit(f"error: {error}")

    # The markers count only at the start of a line, so the module docs may name them.
    text = ENUMS_RS.read_text()
    begin = text.find("\n" + BEGIN_MARKER) + 1
    end = text.find("\n" + END_MARKER) + 1
    if begin == 0 or end < begin:
        sys.exit(f"error: {ENUMS_RS} has no {BEGIN_MARKER} ... {END_MARKER} block")
    old_block = text[begin : end + len(END_MARKER)]

    if args.check:
        if strip_version(old_block) != strip_version(new_block):
            print(
                f"{ENUMS_RS} is out of date with botocore {botocore_version}; "
                "run python3 scripts/gen_lightsail_enums.py",
                file=sys.stderr,
            )
            return 1
        print(f"{ENUMS_RS} matches botocore {botocore_version}")
        return 0

    ENUMS_RS.write_text(text[:begin] + new_block + text[end + len(END_MARKER) :])
    print(f"wrote {ENUMS_RS} from botocore {botocore_version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
