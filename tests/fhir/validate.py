#!/usr/bin/env python3
"""Validate FHIR R4 JSON resources against the official FHIR R4 JSON Schema (draft-06) with the
Python `jsonschema` package -- a validator nobody on the team wrote.

Reads one JSON resource per line on stdin and answers one line per resource on stdout:
`ok`, or `invalid <path>: <message>` for the most relevant error. The schema path is the first
argument. Each resource is validated against the definition of its own resourceType (the root
schema's oneOf over ~150 types gives the same verdict, far more slowly); resources inside a
Bundle are validated through the schema's own ResourceList.
"""
import json
import sys

import jsonschema
from jsonschema import Draft6Validator


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as f:
        schema = json.load(f)
    validators = {}
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            doc = json.loads(line)
            rtype = doc.get("resourceType")
            if rtype not in schema["definitions"]:
                print(f"invalid resourceType: unknown resourceType {rtype!r}", flush=True)
                continue
            v = validators.get(rtype)
            if v is None:
                v = Draft6Validator({"$ref": f"#/definitions/{rtype}", "definitions": schema["definitions"]})
                validators[rtype] = v
            err = jsonschema.exceptions.best_match(v.iter_errors(doc))
            if err is None:
                print("ok", flush=True)
            else:
                path = "/".join(str(p) for p in err.absolute_path)
                print(f"invalid {rtype}/{path}: {err.message[:500]}", flush=True)
        except Exception as e:  # a crash would hang the test; answer instead
            print(f"invalid validator error: {e}", flush=True)


if __name__ == "__main__":
    main()
