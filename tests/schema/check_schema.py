#!/usr/bin/python3
"""Checks manifests/schema/orch-spec.schema.json: the schema is valid draft 2020-12, every
*.yaml under manifests/ and tests/schema/valid/ validates, and every spec under
tests/schema/invalid/ is rejected *for the reason it was written for*.

Each invalid file names that reason in a comment line `# expect: JSONPATH` (e.g.
`$.services.web.replicas`): the file passes only when it has errors and every error sits at
or below that path, so a typo elsewhere in a fixture cannot make it pass by accident.

YAML is read the way orch reads it (YAML 1.2 core scalars, strict): true/false only as
booleans (yes/no/on/off are strings), plain decimal integers (no octal, hex or 1_000),
no timestamps or merge keys, and a duplicate key is a load error. PyYAML's default
(YAML 1.1) would otherwise turn `auto_rollback: yes` into a boolean the schema accepts.

Run with Debian's /usr/bin/python3 (python3-jsonschema, python3-yaml). Exit 0 only if every
file behaved as expected.
"""

import json
import re
import sys
from pathlib import Path

import jsonschema
import yaml
from yaml.constructor import ConstructorError

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
SCHEMA = ROOT / "manifests" / "schema" / "orch-spec.schema.json"


class SpecLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core-schema scalar resolution and duplicate-key errors."""


SpecLoader.yaml_implicit_resolvers = {}
SpecLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)
SpecLoader.add_implicit_resolver(
    "tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]
)
SpecLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^[-+]?[0-9]+$"), list("-+0123456789")
)
SpecLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


def _construct_int(loader, node):
    # Always base 10: YAML 1.1 would read 010 as octal 8.
    return int(loader.construct_scalar(node), 10)


def _construct_float(loader, node):
    text = loader.construct_scalar(node).lower()
    return float(text.replace(".inf", "inf").replace(".nan", "nan"))


def _construct_mapping(loader, node):
    loader.flatten_mapping(node)
    seen = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise ConstructorError(
                "while constructing a mapping",
                node.start_mark,
                f"duplicate key {key!r} (first at line {seen[key] + 1})",
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=True)


SpecLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
SpecLoader.add_constructor("tag:yaml.org,2002:float", _construct_float)
SpecLoader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)

EXPECT = re.compile(r"^#\s*expect:\s*(\S+)\s*$", re.MULTILINE)


def load(path):
    return yaml.load(path.read_text(encoding="utf-8"), Loader=SpecLoader)


def under(path, prefix):
    return path == prefix or path.startswith(prefix + ".") or path.startswith(prefix + "[")


def rel(path):
    return path.relative_to(ROOT)


def main():
    passed = failed = 0

    def report(ok, path, detail):
        nonlocal passed, failed
        if ok:
            passed += 1
        else:
            failed += 1
        print(f"{'PASS' if ok else 'FAIL'}  {path}: {detail}")

    try:
        schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
        jsonschema.Draft202012Validator.check_schema(schema)
    except (OSError, ValueError, jsonschema.SchemaError) as e:
        report(False, rel(SCHEMA), f"not a valid draft 2020-12 schema: {e}")
        print(f"{passed} passed, {failed} failed")
        return 1
    report(True, rel(SCHEMA), "valid draft 2020-12 schema")
    validator = jsonschema.Draft202012Validator(schema)

    valid = sorted((ROOT / "manifests").rglob("*.yaml")) + sorted((HERE / "valid").glob("*.yaml"))
    invalid = sorted((HERE / "invalid").glob("*.yaml"))
    if not any(p.is_relative_to(ROOT / "manifests") for p in valid) or not invalid:
        report(False, rel(HERE), "no example or no invalid spec found")

    for path in valid:
        try:
            doc = load(path)
        except yaml.YAMLError as e:
            report(False, rel(path), f"YAML error: {e}")
            continue
        errors = list(validator.iter_errors(doc))
        if errors:
            first = min(errors, key=lambda e: e.json_path)
            detail = f"{len(errors)} error(s), first at {first.json_path}: {first.message}"
        else:
            detail = "valid"
        report(not errors, rel(path), detail)

    for path in invalid:
        text = path.read_text(encoding="utf-8")
        want = EXPECT.findall(text)
        if len(want) != 1:
            report(False, rel(path), "needs exactly one '# expect: JSONPATH' line")
            continue
        want = want[0]
        try:
            doc = yaml.load(text, Loader=SpecLoader)
        except yaml.YAMLError as e:
            report(False, rel(path), f"YAML error (fixtures must be well-formed YAML): {e}")
            continue
        errors = list(validator.iter_errors(doc))
        stray = [e for e in errors if not under(e.json_path, want)]
        if not errors:
            report(False, rel(path), "accepted, but it should be rejected")
        elif stray:
            e = stray[0]
            report(False, rel(path), f"rejected at {e.json_path}, not under {want}: {e.message}")
        else:
            report(True, rel(path), f"rejected at {errors[0].json_path}: {errors[0].message}")

    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
