#!/usr/bin/env python3
"""Checks a JSON answer against a schema of an OpenAPI 3.0 description, as a
strict generated client reads it: types and integer formats, required
fields, `nullable` (null only where allowed), enums, and no field the schema
does not name — but for an object schema that names none (free-form, as a
generated client reads it) and for the fields Cloud Hypervisor's own answers
carry beyond its description (EMITTED). Prints one line per problem; exit 1
if any.

    openapi_check.py SPEC.yaml SCHEMA_NAME < answer.json
"""
import json
import sys

import yaml

RANGES = {"int8": (-2**7, 2**7 - 1), "uint8": (0, 2**8 - 1), "int16": (-2**15, 2**15 - 1),
          "uint16": (0, 2**16 - 1), "int32": (-2**31, 2**31 - 1), "uint32": (0, 2**32 - 1),
          "int64": (-2**63, 2**63 - 1), "uint64": (0, 2**64 - 1)}


# Fields Cloud Hypervisor's answers have and its description lacks, by
# schema: a device node's parent (vmm/src/device_tree.rs serializes it).
EMITTED = {"DeviceNode": {"parent"}}


def check(spec, schema, value, path, problems, name=None):
    if "$ref" in schema:
        name = schema["$ref"].split("/")[-1]
        return check(spec, spec["components"]["schemas"][name], value, path, problems, name)
    if value is None:
        if not schema.get("nullable", False):
            problems.append(f"{path}: null where the schema has no nullable")
        return
    kind = schema.get("type")
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{path}: {value!r} is not one of {schema['enum']}")
    if kind == "object" or (kind is None and "properties" in schema):
        if not isinstance(value, dict):
            problems.append(f"{path}: expected an object, got {type(value).__name__}")
            return
        for name in schema.get("required", []):
            if name not in value:
                problems.append(f"{path}: required field {name!r} is missing")
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties", True if not properties else None)
        for field, item in value.items():
            if field in properties:
                check(spec, properties[field], item, f"{path}.{field}", problems)
            elif isinstance(extra, dict):
                check(spec, extra, item, f"{path}.{field}", problems)
            elif extra is not True and field not in EMITTED.get(name, ()):
                problems.append(f"{path}: field {field!r} is not in the schema")
    elif kind == "array":
        if not isinstance(value, list):
            problems.append(f"{path}: expected an array, got {type(value).__name__}")
            return
        for index, item in enumerate(value):
            check(spec, schema.get("items", {}), item, f"{path}[{index}]", problems)
    elif kind == "integer":
        if not isinstance(value, int) or isinstance(value, bool):
            problems.append(f"{path}: expected an integer, got {value!r}")
            return
        low, high = RANGES.get(schema.get("format"), (None, None))
        if low is not None and not low <= value <= high:
            problems.append(f"{path}: {value} is out of {schema['format']}")
    elif kind == "number":
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            problems.append(f"{path}: expected a number, got {value!r}")
    elif kind == "string":
        if not isinstance(value, str):
            problems.append(f"{path}: expected a string, got {value!r}")
    elif kind == "boolean":
        if not isinstance(value, bool):
            problems.append(f"{path}: expected a boolean, got {value!r}")


def main():
    spec_path, schema_name = sys.argv[1], sys.argv[2]
    with open(spec_path) as f:
        spec = yaml.safe_load(f)
    answer = json.load(sys.stdin)
    problems = []
    check(spec, spec["components"]["schemas"][schema_name], answer, schema_name, problems)
    for problem in problems:
        print(problem)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
