#!/usr/bin/env python3
"""`roastery demo` seeds GloboJava through the API: the project, the stores,
a store manager of two stores, and the sales history up to yesterday as a ready version; the
terminal shows a few readable lines while the JSON log goes to the data directory; a restart
finds all of it and adds nothing."""
import datetime
import os
import shutil
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import http_test  # noqa: E402
from http_test import Server, fresh_database  # noqa: E402


class DemoTest(unittest.TestCase):
    def start(self):
        srv = Server({"ROASTERY_DATABASE_URL": self.db, "ROASTERY_WORKERS": "2"},
                     data_dir=self.data_dir, command="demo")
        deadline = time.time() + 360
        while time.time() < deadline:
            log = self.json_log(srv)
            if '"msg":"demo seeded"' in log or '"msg":"demo seeding stopped"' in log:
                break
            time.sleep(0.2)
        self.assertIn('"msg":"demo seeded"', self.json_log(srv))
        return srv

    @staticmethod
    def json_log(srv):
        try:
            with open(os.path.join(srv.data_dir, "roastery.log")) as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def test_seed_then_restart(self):
        self.db = fresh_database("demo")
        srv = self.start()
        self.data_dir = srv.data_dir
        try:
            ds = srv.token("dana-scientist", "DataScientist")
            status, _, versions = srv.json(
                "GET", "/api/v1/projects/globojava/datasets/sales/versions", token=ds)
            self.assertEqual(status, 200)
            self.assertEqual([v["state"] for v in versions["items"]], ["ready"])
            self.assertGreater(versions["items"][0]["rows_accepted"], 50000)
            mgr = srv.token("sam-manager", "StoreManager")
            status, _, stores = srv.json("GET", "/api/v1/stores", token=mgr)
            self.assertEqual(status, 200)
            self.assertEqual(len(stores["items"]), 2)
            status, _, everything = srv.json("GET", "/api/v1/stores?limit=200")
            self.assertEqual(len(everything["items"]), 12)
            # a store manager never sees the datasets
            self.assertEqual(srv.json("GET", "/api/v1/projects/globojava/datasets",
                                      token=mgr)[0], 404)
            # the first model went to production, and production forecasts his stores
            _, _, model = srv.json("GET", "/api/v1/projects/globojava/models/demand", token=ds)
            self.assertEqual(model["aliases"].get("production"), 1, model)
            store = stores["items"][0]["id"]
            deadline = time.time() + 120
            while time.time() < deadline:
                status, _, fc = srv.json("GET", f"/api/v1/stores/{store}/forecasts", token=mgr)
                if status == 200:
                    break
                time.sleep(0.5)
            ops = [line for line in self.json_log(srv).splitlines()
                   if "forecast" in line or "promotion" in line or "demo" in line]
            self.assertEqual(status, 200, (fc, ops[-30:]))
            self.assertEqual(len(fc["items"]), 12 * 14)
            self.assertEqual(fc["items"][0]["date"], datetime.date.today().isoformat())
            # the terminal: what was set up and where to sign in, not the JSON log
            terminal = srv.read_log()
            for line in ("Portal ready:", "sam-manager", "Press Ctrl-C to stop",
                         "First forecasts"):
                self.assertIn(line, terminal)
            self.assertNotIn('"level":"info"', terminal)
            self.assertIn('"msg":"request"', self.json_log(srv))
        finally:
            srv.stop()
        srv = self.start()
        try:
            _, _, versions = srv.json(
                "GET", "/api/v1/projects/globojava/datasets/sales/versions",
                token=srv.token("dana-scientist", "DataScientist"))
            self.assertEqual(len(versions["items"]), 1)
            _, _, runs = srv.json("GET", "/api/v1/projects/globojava/forecast-runs",
                                  token=srv.token("dana-scientist", "DataScientist"))
            self.assertEqual(len(runs["items"]), 1, "a restart promotes and forecasts nothing new")
        finally:
            srv.stop()
            shutil.rmtree(self.data_dir, ignore_errors=True)

    data_dir = None


if __name__ == "__main__":
    http_test.BINARY = os.path.abspath(sys.argv.pop(1))
    if not http_test.BASE_URL:
        sys.exit(77)
    result = unittest.main(exit=False, verbosity=2).result
    sys.exit(0 if result.wasSuccessful() else 1)
