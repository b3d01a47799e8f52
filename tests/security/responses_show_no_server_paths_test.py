#!/usr/bin/env python3
"""No absolute server paths in responses (review finding 14): dataset versions (source.uri,
raw_uri, canonical_uri, quarantine_uri, result), their operations, runs (artifacts, lineage),
run artifact lists and model versions show artifact keys and API URLs, never file:// URIs or the
data directory; the URLs they give serve the files."""
import json
import os
import shutil
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import http_test  # noqa: E402
from http_test import Server, fresh_database  # noqa: E402

P = "/api/v1/projects/paths"


class PathsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.db = fresh_database("sec_paths")
        cls.srv = Server({"ROASTERY_DATABASE_URL": cls.db, "ROASTERY_WORKERS": "2"})
        cls.ds = cls.srv.token("dana-scientist", "DataScientist")
        assert cls.srv.json("POST", "/api/v1/projects", {"id": "paths", "display_name": "P"},
                            token=cls.ds)[0] == 201
        assert cls.srv.json("POST", P + "/datasets", {"name": "sales"}, token=cls.ds)[0] == 201
        csv = subprocess.run([http_test.BINARY, "generate-sales", "--stores", "1", "--products",
                              "2", "--start", "2021-06-01", "--end", "2023-03-01", "--seed", "3"],
                             capture_output=True, check=True).stdout
        bad = b"2023-01-01,X,USA,Boston,Coffee,Latte,many,1,1,Sunny,No,No\n"
        st, _, v = cls.srv.json("POST", P + "/datasets/sales/versions?on_error=quarantine",
                                csv + bad, {"Content-Type": "text/csv"}, token=cls.ds)
        assert st == 202, v
        cls.version = cls.wait(lambda: cls.srv.json("GET", P + "/datasets/sales/versions/1",
                                                    token=cls.ds)[2],
                               lambda x: x["state"] == "ready")

    @classmethod
    def tearDownClass(cls):
        code = cls.srv.stop()
        shutil.rmtree(cls.srv.data_dir, ignore_errors=True)
        assert code == 0, f"server exited {code} on SIGTERM"

    @staticmethod
    def wait(get, done, timeout=120):
        deadline = time.time() + timeout
        while True:
            v = get()
            if done(v):
                return v
            if time.time() > deadline:
                raise AssertionError(f"still {v}")
            time.sleep(0.2)

    def assert_no_paths(self, what, doc):
        text = json.dumps(doc)
        for needle in ("file://", self.srv.data_dir, os.path.realpath(self.srv.data_dir), "/tmp/"):
            self.assertNotIn(needle, text, f"{what} shows {needle}")

    def test_dataset_versions_show_keys_and_api_urls_not_server_paths(self):
        v = self.version
        base = P + "/datasets/sales/versions/1"
        self.assertEqual(v["canonical_uri"], base + "/canonical.csv")
        self.assertEqual(v["quarantine_uri"], base + "/quarantine.csv")
        self.assertTrue(v["raw_uri"].startswith("projects/paths/datasets/sales/"), v["raw_uri"])
        self.assertEqual(v["source"]["uri"], v["raw_uri"])
        self.assert_no_paths("version", v)
        self.assert_no_paths("versions", self.srv.json("GET", P + "/datasets/sales/versions",
                                                       token=self.ds)[2])
        self.assert_no_paths("operation", self.srv.json(
            "GET", f"/api/v1/operations/{v['operation_id']}", token=self.ds)[2])
        # the URLs serve the files
        for url in (v["canonical_uri"], v["quarantine_uri"]):
            st, _, body = self.srv.request("GET", url, token=self.ds)
            self.assertEqual(st, 200, url)
            self.assertTrue(body)
        # a version made from that artifact key names the key too
        key = v["result"]["canonical"]["key"]
        st, _, v2 = self.srv.json("POST", P + "/datasets/sales/versions",
                                  {"source": {"key": key}}, token=self.ds)
        self.assertEqual(st, 202, v2)
        self.assertEqual((v2["source"]["kind"], v2["source"]["uri"], v2["raw_uri"]),
                         ("artifact", key, key))
        self.assert_no_paths("version from an artifact", v2)

    def test_runs_and_models_show_api_urls_not_server_paths(self):
        st, _, c = self.srv.json("POST", P + "/compute", {"name": "laptop", "kind": "local",
                                                          "max_nodes": 1}, token=self.ds)
        self.assertEqual(st, 202, c)
        self.wait(lambda: self.srv.json("GET", f"/api/v1/compute/{c['id']}",
                                        token=self.ds)[2]["state"], lambda s: s == "ready")
        st, _, run = self.srv.json("POST", P + "/runs",
                                   {"dataset": "sales", "compute": "laptop",
                                    "algorithm": "seasonal_naive"}, token=self.ds)
        self.assertEqual(st, 202, run)
        done = self.wait(lambda: self.srv.json("GET", f"/api/v1/runs/{run['id']}",
                                               token=self.ds)[2],
                         lambda r: r["state"] in ("completed", "failed"))
        self.assertEqual(done["state"], "completed", done)
        self.assert_no_paths("run", done)
        self.assertEqual(done["lineage"]["input"], "input.csv")
        arts = self.srv.json("GET", f"/api/v1/runs/{run['id']}/artifacts", token=self.ds)[2]
        self.assert_no_paths("run artifacts", arts)
        for a in arts["items"]:
            self.assertEqual(a["uri"], f"/api/v1/runs/{run['id']}/artifacts/{a['name']}")
        st, _, body = self.srv.request("GET", arts["items"][0]["uri"], token=self.ds)
        self.assertEqual(st, 200)
        self.assert_no_paths("runs", self.srv.json("GET", P + "/runs", token=self.ds)[2])
        self.assert_no_paths("run operation", self.srv.json(
            "GET", f"/api/v1/operations/{done['operation_id']}", token=self.ds)[2])
        self.assertEqual(self.srv.json("POST", P + "/models", {"name": "demand"},
                                       token=self.ds)[0], 201)
        st, _, mv = self.srv.json("POST", P + "/models/demand/versions", {"run_id": run["id"]},
                                  token=self.ds)
        self.assertEqual(st, 201, mv)
        self.assert_no_paths("model version", mv)
        # the run.json artifact itself (the lineage as a file) holds no path either
        st, _, body = self.srv.request("GET", f"/api/v1/runs/{run['id']}/artifacts/run.json",
                                       token=self.ds)
        self.assertEqual(st, 200)
        self.assertNotIn(self.srv.data_dir.encode(), body)


if __name__ == "__main__":
    http_test.BINARY = os.path.abspath(sys.argv.pop(1))
    if not http_test.BASE_URL:
        print("ROASTERY_TEST_DATABASE_URL is not set (run under scripts/with-temp-pg)")
        sys.exit(77)
    result = unittest.main(exit=False, verbosity=2).result
    sys.exit(0 if result.wasSuccessful() else 1)
