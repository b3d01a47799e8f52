#!/usr/bin/env python3
"""Datasets end to end through the real server: streamed uploads into the
artifact store, the dataset.ingest operation run by the in-process workers,
versions, profiles, downloads, duplicates, bad rows and policies."""
import gzip
import hashlib
import os
import shutil
import subprocess
import sys
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import http_test  # noqa: E402
from http_test import Server, fresh_database  # noqa: E402

# Real sales logs no one here wrote, beside the project (../shared) or where
# ROASTERY_SHARED_DIR says.
SHARED = os.environ.get("ROASTERY_SHARED_DIR", "/work/shared")
VENDING = os.path.join(SHARED, "datasets", "coffee_vending_ihelon", "index_1.csv")


class DatasetsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.db = fresh_database("http_datasets")
        cls.srv = Server({"ROASTERY_DATABASE_URL": cls.db, "ROASTERY_WORKERS": "2",
                          "ROASTERY_MAX_UPLOAD_BYTES": str(64 * 1024 * 1024)})
        cls.ds = cls.srv.token("dana-scientist", "DataScientist")
        status, _, _ = cls.srv.json("POST", "/api/v1/projects",
                                    {"id": "demand", "display_name": "Demand"}, token=cls.ds)
        assert status == 201, status
        status, _, _ = cls.srv.json("POST", "/api/v1/projects/demand/datasets",
                                    {"name": "sales", "description": "GloboJava sales"},
                                    token=cls.ds)
        assert status == 201, status
        cls.csv = cls.generate(7)

    @staticmethod
    def generate(seed, stores=3):
        return subprocess.run([http_test.BINARY, "generate-sales", "--stores", str(stores),
                               "--products", "4", "--start", "2023-01-01", "--end",
                               "2023-03-31", "--seed", str(seed)],
                              capture_output=True, check=True).stdout

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()
        shutil.rmtree(cls.srv.data_dir, ignore_errors=True)

    def upload(self, body, query="", headers=None):
        hdrs = {"Content-Type": "text/csv"}
        hdrs.update(headers or {})
        return self.srv.json("POST", "/api/v1/projects/demand/datasets/sales/versions" + query,
                             body, hdrs, token=self.ds)

    def wait(self, version):
        deadline = time.time() + 60
        path = f"/api/v1/projects/demand/datasets/sales/versions/{version['number']}"
        while time.time() < deadline:
            _, _, v = self.srv.json("GET", path, token=self.ds)
            if v["state"] not in ("pending", "ingesting"):
                return v
            time.sleep(0.2)
        self.fail(f"version {version['number']} still {v['state']}")

    def test_upload_ingest_profile_download(self):
        status, hdrs, v = self.upload(self.csv)
        self.assertEqual(status, 202, v)
        self.assertTrue(hdrs["location"].startswith("/api/v1/operations/"))
        self.assertEqual(v["raw_sha256"], hashlib.sha256(self.csv).hexdigest())
        v = self.wait(v)
        self.assertEqual(v["state"], "ready", v)
        rows = self.csv.count(b"\n") - 1
        self.assertEqual((v["rows_read"], v["rows_accepted"], v["rows_rejected"]), (rows, rows, 0))
        _, _, op = self.srv.json("GET", hdrs["location"], token=self.ds)
        self.assertEqual(op["state"], "succeeded")
        self.assertEqual([a["step"] for a in op["actions"]],
                         ["ingest", "record", "actuals", "azureml-data"])
        # what the azure executor would do, only recorded with the local one
        self.assertEqual((op["actions"][3]["target"], op["actions"][3]["state"]),
                         ("azureml", "planned"))
        base = f"/api/v1/projects/demand/datasets/sales/versions/{v['number']}"
        status, _, profile = self.srv.json("GET", base + "/profile", token=self.ds)
        self.assertEqual(status, 200)
        status, hdrs, data = self.srv.request("GET", base + "/canonical.csv", token=self.ds)
        self.assertEqual(status, 200)
        self.assertEqual(hashlib.sha256(data).hexdigest(), v["canonical_sha256"])
        self.assertTrue(data.startswith(b"date,store_id,country,city,category,product,quantity"))
        # the same bytes again are the same version
        status, hdrs, again = self.upload(self.csv)
        self.assertEqual((status, again["number"]), (200, v["number"]))
        # gzip is accepted and ingested to the same rows
        status, _, gz = self.upload(gzip.compress(self.csv), headers={"Content-Encoding": "gzip"})
        self.assertEqual(status, 202)
        gz = self.wait(gz)
        self.assertEqual((gz["state"], gz["rows_accepted"]), ("ready", rows))

    def test_row_preview_pages_and_daily_totals(self):
        status, _, v = self.upload(self.generate(8))
        self.assertIn(status, (200, 202))
        v = self.wait(v)
        base = f"/api/v1/projects/demand/datasets/sales/versions/{v['number']}"
        _, _, canonical = self.srv.request("GET", base + "/canonical.csv", token=self.ds)
        expected = canonical.decode().splitlines()[1:]
        seen, cursor, pages = [], None, 0
        while True:
            q = "?limit=500" + (f"&cursor={cursor}" if cursor else "")
            status, _, page = self.srv.json("GET", base + "/rows" + q, token=self.ds)
            self.assertEqual(status, 200, page)
            seen += page["items"]
            pages += 1
            cursor = page["next_cursor"]
            if cursor is None:
                break
        self.assertEqual(len(seen), len(expected))
        self.assertEqual(pages, (len(expected) + 499) // 500)
        first = expected[0].split(",")
        self.assertEqual((seen[0]["date"], seen[0]["store_id"], seen[0]["quantity"]),
                         (first[0], first[1], int(first[6])))
        last = expected[-1].split(",")
        self.assertEqual((seen[-1]["date"], seen[-1]["product"]), (last[0], last[5]))
        for bad in ["?limit=0", "?limit=1001", "?cursor=abc", "?cursor=999999999999"]:
            status, _, p = self.srv.json("GET", base + "/rows" + bad, token=self.ds)
            self.assertEqual(status, 400, bad)
            self.assertIn(p["errors"][0]["field"], ("limit", "cursor"))
        # daily totals of one store and product add up to the canonical rows
        store, product = first[1], first[5]
        q = f"?store={store}&product={product.replace(' ', '%20')}"
        status, _, d = self.srv.json("GET", base + "/daily-totals" + q, token=self.ds)
        self.assertEqual(status, 200, d)
        want = sum(int(r.split(",")[6]) for r in expected
                   if r.split(",")[1] == store and r.split(",")[5] == product)
        self.assertEqual(sum(i["quantity"] for i in d["items"]), want)
        days = [i["day"] for i in d["items"]]
        self.assertEqual(days, sorted(days))
        status, _, p = self.srv.json("GET", base + "/daily-totals", token=self.ds)
        self.assertEqual((status, p["errors"][0]["field"]), (400, "store"))

    def test_dataset_changes_are_audited(self):
        status, _, v = self.upload(self.generate(9, stores=1))
        self.assertEqual(status, 202)
        admin = self.srv.token()
        status, _, page = self.srv.json(
            "GET", "/api/v1/audit?subject=projects/demand/datasets/sales", token=admin)
        self.assertEqual(status, 200, page)
        self.assertIn(("POST /api/v1/projects/{project}/datasets", "succeeded"),
                      {(e["action"], e["outcome"]) for e in page["items"]})
        action = urllib.parse.quote("POST /api/v1/projects/{project}/datasets/{dataset}/versions")
        status, _, page = self.srv.json("GET", f"/api/v1/audit?action={action}&limit=200",
                                        token=admin)
        self.assertEqual(status, 200, page)
        subjects = {e["subject"] for e in page["items"] if e["outcome"] == "succeeded"}
        self.assertIn(f"projects/demand/datasets/sales/versions/{v['number']}", subjects)

    def test_bad_rows_reject_or_quarantine(self):
        lines = self.csv.split(b"\n")
        bad = lines[1].split(b",")
        bad[-6] = b"-3"  # a negative quantity somewhere in the row
        broken = b"\n".join([lines[0], lines[1] + b"x,x", b",".join(bad)] + lines[2:40])
        status, _, v = self.upload(broken, "?on_error=reject")
        self.assertEqual(status, 202)
        v = self.wait(v)
        self.assertEqual(v["state"], "rejected")
        self.assertGreaterEqual(v["rows_rejected"], 1)
        status, _, v = self.upload(broken, "?on_error=quarantine")
        # the same bytes: recognised even with another policy? a new policy is a new request
        if status == 200:
            return
        v = self.wait(v)
        self.assertEqual(v["state"], "ready")
        self.assertGreaterEqual(v["rows_rejected"], 1)
        status, _, q = self.srv.request(
            "GET", f"/api/v1/projects/demand/datasets/sales/versions/{v['number']}/quarantine.csv",
            token=self.ds)
        self.assertEqual(status, 200)
        self.assertIn(b"error", q.split(b"\n")[0])

    def test_foreign_file_is_rejected_with_missing_columns(self):
        if not os.path.exists(VENDING):
            self.skipTest(f"{VENDING} is not on this machine")
        with open(VENDING, "rb") as f:
            status, _, v = self.upload(f.read())
        self.assertEqual(status, 202)
        v = self.wait(v)
        self.assertEqual(v["state"], "rejected")
        self.assertIn("missing", str(v["result"]).lower())

    def test_wrong_type_and_limits(self):
        status, _, _ = self.upload(b"a,b\n1,2\n", headers={"Content-Type": "application/xml"})
        self.assertEqual(status, 415)
        status, _, _ = self.upload(b"", "")
        self.assertEqual(status, 400)
        status, _, _ = self.upload(b"x", "?on_error=ignore")
        self.assertEqual(status, 400)

    def test_store_managers_never_see_datasets(self):
        admin = self.srv.token()
        mgr = self.srv.token("sam-manager", "StoreManager")
        _, _, me = self.srv.json("GET", "/api/v1/me", token=mgr)
        self.srv.json("PUT", f"/api/v1/projects/demand/members/{me['oid']}", {"role": "reader"},
                      token=admin)
        for path in ["/api/v1/projects/demand/datasets", "/api/v1/projects/demand/datasets/sales"]:
            self.assertEqual(self.srv.json("GET", path, token=mgr)[0], 404)


if __name__ == "__main__":
    http_test.BINARY = os.path.abspath(sys.argv.pop(1))
    if not http_test.BASE_URL:
        sys.exit(77)
    result = unittest.main(exit=False, verbosity=2).result
    sys.exit(0 if result.wasSuccessful() else 1)
