#!/usr/bin/python3
"""docs/operations.md's configuration reference against server/core/config.c's table.

Fails when a variable of the table is not documented, a documented one is not in the table, or a
documented default differs from the table's. Standard library only.

usage: tests/deploy/config_reference_test.py [ROOT]
"""
import os
import re
import sys
import unittest

ROOT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
STRING = r'"(?:[^"\\]|\\.)*"'
# {"NAME", V_KIND, default, ...}: default is NULL or string literals and macros pasted together,
# e.g. ROASTERY_SOURCE_DIR "/terraform/modules".
ENTRY = re.compile(r'\{\s*"(ROASTERY_[A-Z0-9_]+)"\s*,\s*(V_[A-Z]+)\s*,\s*'
                   rf'(NULL|(?:[A-Z_]+|{STRING})(?:\s*(?:[A-Z_]+|{STRING}))*)\s*,')
# How the docs write the compile-time macros a default may contain.
MACROS = {"ROASTERY_SOURCE_DIR": "<source dir>", "ROASTERY_VERSION": "<version>"}


def code_table(path):
    """{name: default} from the vars[] table; default None when unset."""
    with open(path) as f:
        src = f.read()
    start = src.index("static const var_spec vars[]")
    table = src[start:src.index("\n};", start)]
    table = re.sub(r"/\*.*?\*/", "", table, flags=re.S)
    out = {}
    for name, _kind, default in ENTRY.findall(table):
        if default == "NULL":
            out[name] = None
            continue
        parts = re.findall(rf'({STRING})|([A-Z_]+)', default)
        out[name] = "".join(lit[1:-1] if lit else MACROS.get(mac, f"<{mac}>") for lit, mac in parts)
    entries = table.count('{"ROASTERY_')
    if len(out) != entries:
        raise AssertionError(f"parsed {len(out)} of {entries} entries of {path}")
    return out


def doc_table(path):
    """{name: default} from the rows `| \\`NAME\\` | \\`default\\` or unset | meaning |` of the
    configuration reference section."""
    with open(path) as f:
        text = f.read()
    m = re.search(r"^## Configuration reference\n(.*?)(?=^## )", text, re.S | re.M)
    if not m:
        raise AssertionError(f"{path}: no '## Configuration reference' section")
    out = {}
    for line in m.group(1).splitlines():
        row = re.match(r"^\|\s*`(ROASTERY_[A-Z0-9_]+)`\s*\|\s*([^|]*?)\s*\|", line)
        if not row:
            continue
        name, cell = row.groups()
        if name in out:
            raise AssertionError(f"{path}: {name} is documented twice")
        out[name] = None if cell == "unset" else cell.strip("`")
    return out


class ConfigReference(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.code = code_table(os.path.join(ROOT, "server", "core", "config.c"))
        cls.docs = doc_table(os.path.join(ROOT, "docs", "operations.md"))

    def test_table_parsed(self):
        self.assertGreater(len(self.code), 20)
        self.assertIn("ROASTERY_LISTEN", self.code)

    def test_every_variable_documented(self):
        missing = sorted(set(self.code) - set(self.docs))
        self.assertEqual(missing, [], "in server/core/config.c but not in docs/operations.md")

    def test_nothing_documented_that_does_not_exist(self):
        extra = sorted(set(self.docs) - set(self.code))
        self.assertEqual(extra, [], "in docs/operations.md but not in server/core/config.c")

    def test_defaults_match(self):
        wrong = {n: (self.docs[n], d) for n, d in self.code.items() if n in self.docs and self.docs[n] != d}
        self.assertEqual(wrong, {}, "documented default != code default (doc, code); unset is None")


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=1)
