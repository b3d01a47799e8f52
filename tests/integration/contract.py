"""Checks HTTP responses against openapi.yaml: the status must be declared
for the operation, the content type must match, and a JSON body must
validate against the declared schema (JSON Schema 2020-12, as OpenAPI 3.1)."""
import json
import os
import re

import jsonschema
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Contract:
    def __init__(self, path=os.path.join(ROOT, "openapi.yaml")):
        with open(path, encoding="utf-8") as f:
            self.doc = yaml.safe_load(f)
        self.checked = set()
        self.routes = []
        for template, item in self.doc["paths"].items():
            rx = "^" + re.sub(r"\{[^/]+\}", "[^/]+", template) + "$"
            self.routes.append((re.compile(rx), template, item))

    def _resolve(self, node):
        while isinstance(node, dict) and "$ref" in node and len(node) == 1:
            node = self._pointer(node["$ref"])
        return node

    def _pointer(self, ref):
        assert ref.startswith("#/"), ref
        node = self.doc
        for part in ref[2:].split("/"):
            node = node[part]
        return node

    def operation(self, method, path):
        for rx, template, item in self.routes:
            if rx.match(path):
                op = item.get(method.lower())
                if op is None and method == "HEAD":
                    op = item.get("get")
                return template, op
        return None, None

    def check(self, method, path, status, content_type, body):
        """Raises AssertionError when the response breaks the contract.
        Paths that are not in the contract must answer problem+json 404/405."""
        path = path.split("?", 1)[0]
        template, op = self.operation(method, path)
        ctype = (content_type or "").split(";")[0].strip()
        if op is None:
            assert status in (404, 405, 204), f"{method} {path}: undocumented route answered {status}"
            if status != 204:
                self._validate_problem(body, ctype, f"{method} {path}")
            return
        responses = op["responses"]
        key = str(status)
        assert key in responses, f"{method} {template}: status {status} is not in the contract"
        resp = self._resolve(responses[key])
        self.checked.add((method, template, key))
        content = resp.get("content")
        if not content:
            assert not body, f"{method} {template} {status}: body where the contract has none"
            return
        assert ctype in content, f"{method} {template} {status}: content type {ctype!r} not in {list(content)}"
        if method == "HEAD":
            return
        schema = content[ctype].get("schema")
        if ctype.endswith("json") and schema is not None:
            instance = json.loads(body)
            self._validate(schema, instance, f"{method} {template} {status}")

    def _validate_problem(self, body, ctype, where):
        assert ctype == "application/problem+json", f"{where}: {ctype!r} is not problem+json"
        self._validate({"$ref": "#/components/schemas/Problem"}, json.loads(body), where)

    def _validate(self, schema, instance, where):
        wrapped = dict(schema)
        wrapped["components"] = self.doc["components"]
        wrapped["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        validator = jsonschema.Draft202012Validator(
            wrapped, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
        errors = sorted(validator.iter_errors(instance), key=lambda e: e.path)
        if errors:
            e = errors[0]
            raise AssertionError(f"{where}: {list(e.path)}: {e.message}")
