#!/usr/bin/env python3
"""Training runs end to end: the real server, PostgreSQL, the in-process
workers and a real `roastery train` child process on generated GloboJava
sales. Lifecycle, slots, cancel, logs followed live, metrics, artifacts,
lineage and determinism, crashes, and every bad request refused up front."""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import http_test  # noqa: E402
from http_test import Server, fresh_database  # noqa: E402

P = "/api/v1/projects/demand"


def generate(stores, products, start, end, seed=3):
    return subprocess.run([http_test.BINARY, "generate-sales", "--stores", str(stores),
                           "--products", str(products), "--start", start, "--end", end,
                           "--seed", str(seed)], capture_output=True, check=True).stdout


class RunsBase(unittest.TestCase):
    env = {}

    @classmethod
    def setUpClass(cls):
        cls.db = fresh_database("runs_" + cls.__name__.lower())
        env = {"ROASTERY_DATABASE_URL": cls.db, "ROASTERY_WORKERS": "3"}
        env.update(cls.env)
        cls.srv = Server(env)
        cls.ds = cls.srv.token("dana-scientist", "DataScientist")
        assert cls.srv.json("POST", "/api/v1/projects", {"id": "demand", "display_name": "D"},
                            token=cls.ds)[0] == 201
        assert cls.srv.json("POST", P + "/datasets", {"name": "sales"}, token=cls.ds)[0] == 201
        csv = generate(4, 4, "2022-01-01", "2023-12-31")
        st, _, v = cls.srv.json("POST", P + "/datasets/sales/versions", csv,
                                {"Content-Type": "text/csv"}, token=cls.ds)
        assert st == 202, v
        cls.version = cls.wait_version(v["number"])
        st, _, c = cls.srv.json("POST", P + "/compute", {"name": "laptop", "kind": "local",
                                                         "max_nodes": 1}, token=cls.ds)
        assert st == 202, c
        cls.compute_id = c["id"]
        deadline = time.time() + 30
        while time.time() < deadline:
            if cls.srv.json("GET", f"/api/v1/compute/{c['id']}",
                            token=cls.ds)[2]["state"] == "ready":
                break
            time.sleep(0.1)

    @classmethod
    def train_model(cls, params, experiment="forecast"):
        """A completed run on version 1 registered as model `demand` v1, with the project's
        promotion margin at 0 so that its gates pass (forecasting suites start from here)."""
        run = cls.srv.json("POST", P + "/runs", {"dataset": "sales", "compute": "laptop",
                                                  "experiment": experiment, "params": params},
                           token=cls.ds)[2]
        deadline = time.time() + 180
        while time.time() < deadline:
            run = cls.srv.json("GET", f"/api/v1/runs/{run['id']}", token=cls.ds)[2]
            if run["state"] in ("completed", "failed", "canceled"):
                break
            time.sleep(0.3)
        assert run["state"] == "completed", run
        assert cls.srv.json("POST", P + "/models", {"name": "demand"}, token=cls.ds)[0] == 201
        assert cls.srv.json("POST", P + "/models/demand/versions", {"run_id": run["id"]},
                            token=cls.ds)[0] == 201
        admin = cls.srv.token("ada-admin", "PlatformAdmin")
        _, hdrs, _ = cls.srv.json("GET", P, token=admin)
        cls.srv.json("PATCH", P, {"promotion_margin": 0.0}, {"If-Match": hdrs["etag"]},
                     token=admin)
        return run

    @classmethod
    def wait_version(cls, number):
        deadline = time.time() + 60
        while time.time() < deadline:
            _, _, v = cls.srv.json("GET", f"{P}/datasets/sales/versions/{number}", token=cls.ds)
            if v["state"] not in ("pending", "ingesting"):
                return v
            time.sleep(0.1)
        raise AssertionError("version not ingested")

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()
        shutil.rmtree(cls.srv.data_dir, ignore_errors=True)

    def start(self, body=None, status=202):
        b = {"dataset": "sales", "compute": "laptop", "experiment": "tests"}
        b.update(body or {})
        st, hdrs, run = self.srv.json("POST", P + "/runs", b, token=self.ds)
        self.assertEqual(st, status, run)
        return run

    def wait(self, run_id, states=("completed", "failed", "canceled"), timeout=120):
        deadline = time.time() + timeout
        while time.time() < deadline:
            _, _, run = self.srv.json("GET", f"/api/v1/runs/{run_id}", token=self.ds)
            if run["state"] in states:
                return run
            time.sleep(0.2)
        self.fail(f"run {run_id} still {run['state']}")


class RunsTest(RunsBase):
    def test_a_xgboost_run_end_to_end(self):
        run = self.start({"params": {"num_round": 60}})
        # an idle worker may have taken it before the answer was written
        self.assertIn(run["state"], ("queued", "preparing", "running"))
        done = self.wait(run["id"])
        self.assertEqual(done["state"], "completed", done.get("error"))
        for t in ("queued_at", "preparing_at", "running_at", "finished_at"):
            self.assertIsNotNone(done[t], t)
        m = done["metrics"]
        self.assertIn("overall", m)
        self.assertIn("seasonal_naive", m["baselines"])
        self.assertGreater(m["overall"]["wape"], 0)
        names = {a["name"] for a in done["artifacts"]}
        self.assertTrue({"model.json", "features.json", "metrics.json", "backtest.csv",
                         "run.json"} <= names, names)
        self.assertEqual(done["lineage"]["input_sha256"], self.version["canonical_sha256"])
        st, _, metrics = self.srv.json("GET", f"/api/v1/runs/{run['id']}/metrics",
                                       token=self.ds)
        self.assertEqual(st, 200)
        self.assertGreater(len(metrics["items"]), 5)
        st, _, log = self.srv.request("GET", f"/api/v1/runs/{run['id']}/logs", token=self.ds)
        self.assertEqual(st, 200)
        self.assertIn(b"trainer exited with status 0", log)
        st, hdrs, data = self.srv.request("GET",
                                          f"/api/v1/runs/{run['id']}/artifacts/backtest.csv",
                                          token=self.ds)
        self.assertEqual(st, 200)
        sha = [a["sha256"] for a in done["artifacts"] if a["name"] == "backtest.csv"][0]
        self.assertEqual(hashlib.sha256(data).hexdigest(), sha)
        # the same inputs give the same model, bit for bit
        again = self.wait(self.start({"params": {"num_round": 60}})["id"])
        model = {r["number"]: [a["sha256"] for a in r["artifacts"] if a["name"] == "model.json"]
                 for r in (done, again)}
        self.assertEqual(model[done["number"]], model[again["number"]])

    def test_b_one_slot_means_one_run_at_a_time(self):
        runs = [self.start({"algorithm": "moving_average"}) for _ in range(3)]
        done = [self.wait(r["id"]) for r in runs]
        self.assertEqual([r["state"] for r in done], ["completed"] * 3)
        # each run held the slot from preparing_at to finished_at: no overlap
        spans = sorted((r["preparing_at"], r["finished_at"]) for r in done)
        for (_, end), (start, _) in zip(spans, spans[1:]):
            self.assertGreaterEqual(start, end, spans)

    def test_c_cancel_a_live_run_and_follow_its_log(self):
        run = self.start({"params": {"num_round": 5000, "eta": 0.001,
                                     "early_stopping_rounds": 1000}})
        followed = {}

        def follow():
            followed["st"], _, followed["log"] = self.srv.request(
                "GET", f"/api/v1/runs/{run['id']}/logs?follow=true", token=self.ds)
        t = threading.Thread(target=follow)
        t.start()
        self.wait(run["id"], ("running",), timeout=60)
        time.sleep(1.5)
        st, _, c = self.srv.json("POST", f"/api/v1/runs/{run['id']}/cancel", {}, token=self.ds)
        self.assertEqual(st, 202, c)
        done = self.wait(run["id"])
        self.assertEqual(done["state"], "canceled")
        t.join(30)
        self.assertFalse(t.is_alive(), "the followed log ends with the run")
        self.assertEqual(followed["st"], 200)
        self.assertIn(b"cancel requested", followed["log"])
        st, _, _ = self.srv.json("POST", f"/api/v1/runs/{run['id']}/cancel", {}, token=self.ds)
        self.assertEqual(st, 409)

    def test_d_bad_requests_are_refused_up_front(self):
        cases = [({"algorithm": "prophet"}, "algorithm"),
                 ({"horizon_days": 91}, "horizon_days"),
                 ({"backtest_days": 365}, "backtest_days"),
                 ({"params": {"max_depth": "deep"}}, "params.max_depth"),
                 ({"params": {"eta": 0}}, "params.eta"),
                 ({"params": {"learning_rate_typo": 1}}, "params.learning_rate_typo"),
                 ({"params": [1]}, "params"),
                 ({"algorithm": "seasonal_naive", "params": {"eta": 0.1}}, "params.eta"),
                 ({"compute": "nope"}, "compute"),
                 ({"dataset_version": 99}, "dataset_version"),
                 ({"dataset": "nothing-here"}, "dataset")]
        for body, field in cases:
            st, _, p = self.srv.json("POST", P + "/runs",
                                     dict({"dataset": "sales", "compute": "laptop"}, **body),
                                     token=self.ds)
            self.assertEqual(st, 400, (body, p))
            self.assertIn(field, [e["field"] for e in p["errors"]], (body, p))
        # a version that is not ready
        st, _, v = self.srv.json("POST", P + "/datasets/sales/versions", b"a,b\n1,2\n",
                                 {"Content-Type": "text/csv"}, token=self.ds)
        bad = self.wait_version(v["number"])
        self.assertEqual(bad["state"], "rejected")
        st, _, p = self.srv.json("POST", P + "/runs", {"dataset": "sales", "compute": "laptop",
                                                       "dataset_version": bad["number"]},
                                 token=self.ds)
        self.assertEqual((st, p["errors"][0]["field"]), (400, "dataset_version"))
        self.assertIn("rejected", p["errors"][0]["reason"])

    def test_e_store_managers_never_see_runs(self):
        mgr = self.srv.token("sam-manager", "StoreManager")
        self.assertEqual(self.srv.json("GET", P + "/runs", token=mgr)[0], 404)


class RunsCrashTest(RunsBase):
    """A trainer that dies (here: killed like the OOM killer would) fails its
    run with its exit status and last log lines; the server carries on."""

    def trainer_pid(self, run_id):
        for pid in os.listdir("/proc"):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
                cwd = os.readlink(f"/proc/{pid}/cwd")  # the run's working directory
            except OSError:
                continue
            if b"train" in argv and run_id in cwd:
                return int(pid)
        return None

    def test_crash_fails_the_run_with_exit_status_and_last_lines(self):
        run = self.start({"params": {"num_round": 5000, "eta": 0.001,
                                     "early_stopping_rounds": 1000}})
        self.wait(run["id"], ("running",), timeout=60)
        pid = None
        deadline = time.time() + 30
        while pid is None and time.time() < deadline:
            pid = self.trainer_pid(run["id"])
            time.sleep(0.1)
        self.assertIsNotNone(pid, "the trainer runs as its own process")
        time.sleep(1)
        os.kill(pid, 9)
        done = self.wait(run["id"])
        self.assertEqual(done["state"], "failed")
        self.assertEqual(done["exit_status"], 137)
        self.assertTrue(done["error"]["last_lines"])
        self.assertIn("exited with status 137", done["error"]["last_lines"][-1])
        self.assertEqual(self.srv.request("GET", "/healthz", token=None)[0], 200)
        # and the next run goes through
        self.assertEqual(self.wait(self.start({"algorithm": "moving_average"})["id"])["state"],
                         "completed")


if __name__ == "__main__":
    http_test.BINARY = os.path.abspath(sys.argv.pop(1))
    if not http_test.BASE_URL:
        sys.exit(77)
    result = unittest.main(exit=False, verbosity=2).result
    sys.exit(0 if result.wasSuccessful() else 1)
