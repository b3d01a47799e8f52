#!/usr/bin/env python3
"""A followed run log cannot hold a thread for hours (review finding 16): GET
/api/v1/runs/{id}/logs?follow=true ends after ROASTERY_LOG_FOLLOW_SECONDS even though the run is
still live. The run is made and then left queued (a second server on the same database runs no
workers), so nothing trains.

usage: tests/security/run_log_follow_is_bounded_test.py path/to/roastery"""
import os
import shutil
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import http_test  # noqa: E402
from http_test import Server, fresh_database  # noqa: E402

P = "/api/v1/projects/follow"
FOLLOW_SECONDS = 2


class RunLogFollowIsBounded(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.db = fresh_database("security_follow")
        setup = Server({"ROASTERY_DATABASE_URL": cls.db, "ROASTERY_WORKERS": "1"})
        cls.data_dir = setup.data_dir
        try:
            ds = setup.token("follow-ds", "DataScientist")
            assert setup.json("POST", "/api/v1/projects", {"id": "follow", "display_name": "F"},
                              token=ds)[0] == 201
            assert setup.json("POST", P + "/datasets", {"name": "sales"}, token=ds)[0] == 201
            csv = subprocess.run([http_test.BINARY, "generate-sales", "--stores", "2", "--products",
                                  "2", "--start", "2022-01-01", "--end", "2023-12-31", "--seed", "5"],
                                 capture_output=True, check=True).stdout
            st, _, v = setup.json("POST", P + "/datasets/sales/versions", csv,
                                  {"Content-Type": "text/csv"}, token=ds)
            assert st == 202, v
            st, _, c = setup.json("POST", P + "/compute", {"name": "laptop", "kind": "local",
                                                           "max_nodes": 1}, token=ds)
            assert st == 202, c
            deadline = time.time() + 60
            while time.time() < deadline:
                ver = setup.json("GET", f"{P}/datasets/sales/versions/{v['number']}", token=ds)[2]
                comp = setup.json("GET", f"/api/v1/compute/{c['id']}", token=ds)[2]
                if ver["state"] == "ready" and comp["state"] == "ready":
                    break
                time.sleep(0.2)
            assert (ver["state"], comp["state"]) == ("ready", "ready"), (ver, comp)
        finally:
            setup.stop()
        cls.srv = Server({"ROASTERY_DATABASE_URL": cls.db, "ROASTERY_WORKERS": "0",
                          "ROASTERY_LOG_FOLLOW_SECONDS": str(FOLLOW_SECONDS)},
                         data_dir=cls.data_dir)
        cls.ds = cls.srv.token("follow-ds", "DataScientist")

    @classmethod
    def tearDownClass(cls):
        code = cls.srv.stop()
        shutil.rmtree(cls.data_dir, ignore_errors=True)
        assert code == 0, f"server exited {code} on SIGTERM"

    def test_a_followed_log_ends_while_the_run_is_still_live(self):
        st, _, run = self.srv.json("POST", P + "/runs", {"dataset": "sales", "compute": "laptop",
                                                         "experiment": "tests"}, token=self.ds)
        self.assertEqual(st, 202, run)
        t0 = time.monotonic()
        st, _, _ = self.srv.request("GET", f"/api/v1/runs/{run['id']}/logs?follow=true",
                                    token=self.ds)  # times out after 10 s if it never ends
        took = time.monotonic() - t0
        self.assertEqual(st, 200)
        self.assertLess(took, FOLLOW_SECONDS + 5, "the stream outlived its bound")
        self.assertGreaterEqual(took, FOLLOW_SECONDS - 0.5, "the stream ended before its bound")
        state = self.srv.json("GET", f"/api/v1/runs/{run['id']}", token=self.ds)[2]["state"]
        self.assertEqual(state, "queued")  # it was still live: the bound ended the stream


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    http_test.BINARY = os.path.abspath(sys.argv.pop(1))
    if not http_test.BASE_URL:
        print("skipped: ROASTERY_TEST_DATABASE_URL is not set (run under scripts/with-temp-pg)")
        sys.exit(77)
    unittest.main(verbosity=2)
