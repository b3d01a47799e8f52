#!/usr/bin/env python3
"""The model registry with real trained models: versions from completed
runs, promotions with their gates (metrics, beats seasonal-naive, champion
and challenger scored on the same window), four eyes, rollback, archive."""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import http_test  # noqa: E402
from runs_test import RunsBase, P  # noqa: E402


class ModelsTest(RunsBase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.admin = cls.srv.token("ada-admin", "PlatformAdmin")
        cls.admin2 = cls.srv.token("bo-admin", "PlatformAdmin")
        b = {"dataset": "sales", "compute": "laptop", "experiment": "registry"}
        cls.runs = []
        for params in ({"num_round": 40}, {"num_round": 80, "max_depth": 4}):
            st, _, r = cls.srv.json("POST", P + "/runs", dict(b, params=params), token=cls.ds)
            assert st == 202, r
            cls.runs.append(r["id"])
        for rid in cls.runs:
            deadline = time.time() + 180
            while time.time() < deadline:
                run = cls.srv.json("GET", f"/api/v1/runs/{rid}", token=cls.ds)[2]
                if run["state"] in ("completed", "failed", "canceled"):
                    break
                time.sleep(0.3)
            assert run["state"] == "completed", run
        assert cls.srv.json("POST", P + "/models", {"name": "demand"}, token=cls.ds)[0] == 201

    def policy(self, margin, tolerance):
        _, hdrs, _ = self.srv.json("GET", P, token=self.admin)
        st, _, p = self.srv.json("PATCH", P, {"promotion_margin": margin,
                                              "champion_tolerance": tolerance},
                                 {"If-Match": hdrs["etag"]}, token=self.admin)
        self.assertEqual(st, 200, p)

    def register(self, run_id, status=201):
        st, _, v = self.srv.json("POST", P + "/models/demand/versions", {"run_id": run_id},
                                 token=self.ds)
        self.assertEqual(st, status, v)
        return v

    def promote(self, version, target, token=None):
        st, _, p = self.srv.json("POST", f"{P}/models/demand/versions/{version}/promotions",
                                 {"target": target}, token=token or self.ds)
        self.assertEqual(st, 202, p)
        deadline = time.time() + 180
        while time.time() < deadline:
            p = self.srv.json("GET", f"/api/v1/promotions/{p['id']}", token=self.ds)[2]
            if p["state"] not in ("evaluating", "approved", "deploying"):
                return p
            time.sleep(0.3)
        self.fail(f"promotion still {p['state']}")

    def aliases(self):
        return self.srv.json("GET", P + "/models/demand", token=self.ds)[2]["aliases"]

    def test_registry_promotion_rollback(self):
        v1 = self.register(self.runs[0])
        v2 = self.register(self.runs[1])
        self.assertEqual((v1["version"], v2["version"]), (1, 2))
        self.assertIn("overall", v1["metrics"])
        self.register(self.runs[0], status=409)

        # scoring feature rows in process, by the names of features.json
        st, _, spec = self.srv.json("GET", f"/api/v1/runs/{self.runs[0]}/artifacts/features.json",
                                    token=self.ds)
        names = [f["name"] for f in spec["features"]]
        row = {n: 1.0 for n, f in zip(names, spec["features"]) if f["xgboost_type"] == "q"}
        st, _, pred = self.srv.json("POST", P + "/models/demand/versions/1/predict",
                                    {"rows": [row, {}]}, token=self.ds)
        self.assertEqual(st, 200, pred)
        self.assertEqual(len(pred["predictions"]), 2)
        st, _, bad = self.srv.json("POST", P + "/models/demand/versions/1/predict",
                                   {"rows": [{"no_such_feature": 1}]}, token=self.ds)
        self.assertEqual((st, bad["errors"][0]["field"]), (400, "rows[0].no_such_feature"))

        # a margin nobody can meet fails the gate, with its figure
        self.policy(0.99, 0.5)
        p = self.promote(1, "staging")
        self.assertEqual(p["state"], "gates_failed")
        gate = {g["gate"]: g for g in p["gates"]}["beats_seasonal_naive"]
        self.assertEqual((gate["verdict"], gate["threshold"]), ("fail", 0.99))

        # any improvement passes; staging moves at once
        self.policy(0.0, 0.5)
        p = self.promote(1, "staging")
        self.assertEqual(p["state"], "completed", p)
        self.assertEqual(self.aliases(), {"staging": 1})

        # production waits for a second admin
        p = self.promote(1, "production", token=self.admin)
        self.assertEqual(p["state"], "pending_approval", p)
        st, _, q = self.srv.json("GET", "/api/v1/promotions?state=pending_approval",
                                 token=self.admin2)
        self.assertIn(p["id"], [x["id"] for x in q["items"]])
        st, _, e = self.srv.json("POST", f"/api/v1/promotions/{p['id']}/approve", {},
                                 token=self.admin)
        self.assertEqual((st, e["type"].rsplit("/", 1)[1]), (403, "four-eyes"))
        st, _, _ = self.srv.json("POST", f"/api/v1/promotions/{p['id']}/approve", {},
                                 token=self.ds)
        self.assertEqual(st, 403)
        st, _, a = self.srv.json("POST", f"/api/v1/promotions/{p['id']}/approve",
                                 {"reason": "backtest looks right"}, token=self.admin2)
        self.assertEqual(st, 202, a)
        deadline = time.time() + 60
        while time.time() < deadline and self.aliases().get("production") != 1:
            time.sleep(0.2)
        self.assertEqual(self.aliases()["production"], 1)

        # the challenger is scored against the champion on the same window
        p = self.promote(2, "production", token=self.admin)
        gates = {g["gate"]: g for g in p["gates"]}
        self.assertIn("champion_challenger", gates, p)
        cc = gates["champion_challenger"]
        self.assertIn("candidate_wape", cc, cc)
        self.assertGreater(cc["champion_wape"], 0)
        self.assertEqual(p["state"], "pending_approval", p)
        self.srv.json("POST", f"/api/v1/promotions/{p['id']}/approve", {}, token=self.admin2)
        deadline = time.time() + 60
        while time.time() < deadline and self.aliases().get("production") != 2:
            time.sleep(0.2)
        self.assertEqual(self.aliases()["production"], 2)
        # the Azure ML calls of a blue/green deployment are rendered and recorded
        p = self.srv.json("GET", f"/api/v1/promotions/{p['id']}", token=self.ds)[2]
        _, _, op = self.srv.json("GET", f"/api/v1/operations/{p['operation_id']}",
                                 token=self.admin)
        azure = [(a["step"], a["target"]) for a in op["actions"] if a["target"] == "azureml"]
        self.assertEqual([s for s, _ in azure], ["model", "endpoint", "deployment", "traffic-10",
                                                 "health", "traffic-100", "delete-old"],
                         op["actions"])
        dep = [a for a in op["actions"] if a["step"] == "deployment"][0]
        self.assertIn("onlineEndpoints", str(dep["request"]))

        # rollback walks the history back, once
        st, _, m = self.srv.json("POST", P + "/models/demand/rollback",
                                 {"reason": "forecasts too low"}, token=self.admin)
        self.assertEqual((st, m["aliases"]["production"]), (200, 1), m)
        st, _, _ = self.srv.json("POST", P + "/models/demand/rollback", {"reason": "again"},
                                 token=self.admin)
        self.assertEqual(st, 409)

        # archive: never a version an alias points at
        st, _, _ = self.srv.json("POST", P + "/models/demand/versions/1/archive", {},
                                 token=self.ds)
        self.assertEqual(st, 409)
        st, _, v = self.srv.json("POST", P + "/models/demand/versions/2/archive", {},
                                 token=self.ds)
        self.assertEqual((st, v["archived"]), (200, True))
        st, _, _ = self.srv.json("POST", P + "/models/demand/versions/2/promotions",
                                 {"target": "staging"}, token=self.ds)
        self.assertEqual(st, 409)


if __name__ == "__main__":
    http_test.BINARY = os.path.abspath(sys.argv.pop(1))
    if not http_test.BASE_URL:
        sys.exit(77)
    result = unittest.main(exit=False, verbosity=2).result
    sys.exit(0 if result.wasSuccessful() else 1)
