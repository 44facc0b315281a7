#!/usr/bin/env python3
"""Checks records and files against Upshift's schemas, with the maintained `jsonschema` validator.

    validate.py SCHEMA FILE.jsonl     each line is one JSON document
    validate.py --yaml SCHEMA FILE... each file is one YAML document
    validate.py --prometheus FILE     the file is a Prometheus text exposition

Prints one line per invalid document (file:line: message) and exits 1 if there was any.
Schemas refer to each other by file name, resolved in this directory.
"""
import json
import pathlib
import sys

import jsonschema
import referencing

HERE = pathlib.Path(__file__).resolve().parent


def registry():
    resources = []
    for path in HERE.glob("*.schema.json"):
        schema = json.loads(path.read_text())
        resource = referencing.Resource.from_contents(schema)
        resources += [(path.name, resource), (schema["$id"], resource)]
    return referencing.Registry().with_resources(resources)


def validator(schema_path):
    schema = json.loads(pathlib.Path(schema_path).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, registry=registry(), format_checker=jsonschema.FormatChecker())


def problems(check, document):
    return sorted(check.iter_errors(document), key=lambda error: list(error.path))


def main(arguments):
    failures = 0
    if arguments[0] == "--prometheus":
        from prometheus_client.parser import text_string_to_metric_families
        text = pathlib.Path(arguments[1]).read_text()
        try:
            families = list(text_string_to_metric_families(text))
        except Exception as error:
            print(f"{arguments[1]}: not Prometheus text format: {error}")
            return 1
        print(f"{arguments[1]}: {len(families)} metric families")
        return 0
    if arguments[0] == "--yaml":
        import yaml
        check = validator(arguments[1])
        for name in arguments[2:]:
            document = yaml.safe_load(pathlib.Path(name).read_text())
            for error in problems(check, document):
                failures += 1
                print(f"{name}: {'/'.join(map(str, error.path)) or '(top)'}: {error.message}")
        return 1 if failures else 0
    check = validator(arguments[0])
    for name in arguments[1:]:
        for number, line in enumerate(pathlib.Path(name).read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                document = json.loads(line)
            except json.JSONDecodeError as error:
                failures += 1
                print(f"{name}:{number}: not JSON: {error}")
                continue
            for error in problems(check, document):
                failures += 1
                print(f"{name}:{number}: {'/'.join(map(str, error.path)) or '(top)'}: {error.message}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
