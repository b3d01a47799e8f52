#!/usr/bin/env python3
"""Forecasts end to end: a trained model promoted to production forecasts every store x product
(a real `roastery forecast` child streaming into COPY of a new partition), readers switch to the
new run at once, store managers read only their stores (JSON, CSV, ETag/304), planned promotions
and the weather outlook feed the generator, actuals are taken idempotently and all-or-nothing,
and accuracy compares what was served with what was sold."""
import csv
import io
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import http_test  # noqa: E402
from http_test import psql  # noqa: E402
from runs_test import RunsBase, P  # noqa: E402


class ForecastsTest(RunsBase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.admin = cls.srv.token("ada-admin", "PlatformAdmin")
        cls.admin2 = cls.srv.token("bo-admin", "PlatformAdmin")
        # the stores of the generated data, and a manager for one of them
        cls.stores = sorted({(r["store_id"], r["country"], r["city"]) for r in cls.canonical()})
        for sid, country, city in cls.stores:
            st, _, s = cls.srv.json("POST", "/api/v1/stores", {
                "id": sid, "name": f"{city} {sid}", "country": country, "city": city,
                "timezone": "America/Los_Angeles"}, token=cls.admin)
            assert st in (201, 409), s
            # the project serves them: an admin's decision since migration 0013
            st, _, s = cls.srv.json("PUT", f"/api/v1/stores/{sid}/serving-project",
                                    {"project": "demand"}, token=cls.admin)
            assert st == 200 and s["serving_project"] == "demand", s
        cls.mine, cls.other = cls.stores[0][0], cls.stores[1][0]
        cls.mgr = cls.srv.token("sam-manager", "StoreManager")
        cls.srv.json("GET", "/api/v1/me", token=cls.mgr)  # known as a user
        st, _, _ = cls.srv.json("PUT", f"/api/v1/stores/{cls.mine}/managers/"
                                f"{cls.oid('sam-manager')}", {}, token=cls.admin)
        assert st in (200, 201, 204), st
        # a promotion planned for one product at every store, before the first forecast
        st, _, cls.promo = cls.srv.json("POST", P + "/planned-promotions", {
            "store_id": "*", "product": "Caffe Latte", "start_date": "2024-01-03",
            "end_date": "2024-01-05", "description": "new year latte week"}, token=cls.ds)
        assert st == 201, cls.promo
        cls.train_model({"num_round": 60})

    @classmethod
    def canonical(cls):
        _, _, data = cls.srv.request("GET", f"{P}/datasets/sales/versions/1/canonical.csv",
                                     token=cls.ds)
        return list(csv.DictReader(io.StringIO(data.decode())))

    @classmethod
    def oid(cls, user):
        return cls.srv.json("GET", "/api/v1/me", token=cls.srv.token(user, "StoreManager"))[2]["oid"]

    def runs(self):
        return self.srv.json("GET", P + "/forecast-runs", token=self.ds)[2]["items"]

    def wait_current(self, count):
        deadline = time.time() + 120
        while time.time() < deadline:
            runs = self.runs()
            ready = [r for r in runs if r["state"] in ("ready", "failed")]
            if len(ready) >= count:
                return runs
            time.sleep(0.3)
        self.fail(f"no forecast run ready: {self.runs()}\n{self.srv.read_log()[-3000:]}")

    def test_a_production_forecasts_every_store_and_product(self):
        st, _, p = self.srv.json("POST", f"{P}/models/demand/versions/1/promotions",
                                 {"target": "production"}, token=self.admin)
        self.assertEqual(st, 202, p)
        deadline = time.time() + 120
        while time.time() < deadline:
            p = self.srv.json("GET", f"/api/v1/promotions/{p['id']}", token=self.ds)[2]
            if p["state"] == "pending_approval":
                break
            time.sleep(0.3)
        # nothing to read before production
        st, _, _ = self.srv.json("GET", f"/api/v1/stores/{self.mine}/forecasts", token=self.mgr)
        self.assertEqual(st, 404)
        st, _, _ = self.srv.json("POST", f"/api/v1/promotions/{p['id']}/approve",
                                 {"reason": "ok"}, token=self.admin2)
        self.assertEqual(st, 202)
        runs = self.wait_current(1)
        run = runs[0]
        self.assertEqual((run["state"], run["current"], run["trigger"]),
                         ("ready", True, "promotion"), run)
        self.assertEqual(run["start_date"], "2024-01-01")
        self.assertEqual(run["days"], 14)
        self.assertEqual(run["rows"], 4 * 4 * 14)
        self.assertEqual(run["stores"], 4)
        self.assertGreater(run["stats"]["rows_per_second"], 0)

        st, hdrs, fc = self.srv.json("GET", f"/api/v1/stores/{self.mine}/forecasts",
                                     token=self.mgr)
        self.assertEqual(st, 200, fc)
        self.assertEqual((fc["model"], fc["model_version"], fc["forecast_run"]),
                         ("demand", 1, run["id"]))
        self.assertEqual(len(fc["items"]), 4 * 14)
        for it in fc["items"]:
            self.assertTrue(it["lo95"] <= it["lo80"] <= it["forecast"] <= it["hi80"] <= it["hi95"])
            self.assertIsNone(it["actual"])
        # a repeated read answers 304 from the ETag
        st, h2, body = self.srv.request("GET", f"/api/v1/stores/{self.mine}/forecasts",
                                        headers={"If-None-Match": hdrs["etag"]}, token=self.mgr)
        self.assertEqual((st, body), (304, b""))
        self.assertIn("private", hdrs["cache-control"])
        # CSV for spreadsheets, the same rows
        st, h3, data = self.srv.request("GET", f"/api/v1/stores/{self.mine}/forecasts"
                                        "?product=Caffe%20Latte", headers={"Accept": "text/csv"},
                                        token=self.mgr)
        self.assertEqual(st, 200)
        self.assertTrue(h3["content-type"].startswith("text/csv"))
        rows = list(csv.DictReader(io.StringIO(data.decode())))
        self.assertEqual(len(rows), 14)
        self.assertEqual({r["product"] for r in rows}, {"Caffe Latte"})
        # the planned promotion was known to the generator
        op = self.srv.json("GET", f"/api/v1/operations/{run['operation_id']}", token=self.admin)[2]
        gen = [a for a in op["actions"] if a["step"] == "generate"][0]["response"]
        self.assertGreater(gen["generator"]["promoted_series_days"], 0, gen)
        # another store is not his
        st, _, prob = self.srv.json("GET", f"/api/v1/stores/{self.other}/forecasts",
                                    token=self.mgr)
        self.assertEqual(st, 404, prob)
        st, _, _ = self.srv.json("GET", f"/api/v1/stores/{self.other}/forecasts",
                                 token=self.admin)
        self.assertEqual(st, 200)

    def test_b_bad_reads_are_refused(self):
        for q, field in (("from=2024-13-01", "from"), ("to=yesterday", "to"),
                         ("from=2024-01-10&to=2024-01-01", "to"),
                         ("from=2020-01-01&to=2024-01-01", "to")):
            st, _, prob = self.srv.json("GET", f"/api/v1/stores/{self.mine}/forecasts?{q}",
                                        token=self.mgr)
            self.assertEqual((st, prob["errors"][0]["field"]), (400, field), q)

    def test_c_actuals_all_or_nothing_and_idempotent(self):
        body = "store_id,product,date,quantity\n" + "".join(
            f"{self.mine},Caffe Latte,2024-01-0{d},{40 + d}\n" for d in range(1, 8))
        st, _, res = self.srv.json("POST", "/api/v1/actuals", body,
                                   {"Content-Type": "text/csv"}, token=self.ds)
        self.assertEqual(st, 200, res)
        self.assertEqual((res["received"], res["inserted"], res["unchanged"]), (7, 7, 0))
        st, _, res = self.srv.json("POST", "/api/v1/actuals", body,
                                   {"Content-Type": "text/csv"}, token=self.ds)
        self.assertEqual((res["inserted"], res["updated"], res["unchanged"]), (0, 0, 7))
        # one bad row refuses the whole upload, each fault named
        bad = {"items": [
            {"store_id": self.mine, "product": "Caffe Latte", "date": "2024-01-01", "quantity": 1},
            {"store_id": "NOPE-1", "product": "Caffe Latte", "date": "2024-01-01", "quantity": 1},
            {"store_id": self.mine, "product": "Unicorn Frappe", "date": "2024-01-01",
             "quantity": 1},
            {"store_id": self.mine, "product": "Caffe Latte", "date": "2099-01-01", "quantity": 1},
            {"store_id": self.mine, "product": "Caffe Latte", "date": "2024-01-02",
             "quantity": -3},
            {"store_id": self.mine, "product": "Caffe Latte", "date": "2024-01-01", "quantity": 2},
        ]}
        st, _, prob = self.srv.json("POST", "/api/v1/actuals", bad, token=self.ds)
        self.assertEqual(st, 400, prob)
        fields = {(e["field"]) for e in prob["errors"]}
        self.assertTrue({"items[3].date", "items[4].quantity"} <= fields, prob)
        # the database-level checks run once the shapes are right
        del bad["items"][3:5]
        st, _, prob = self.srv.json("POST", "/api/v1/actuals", bad, token=self.ds)
        self.assertEqual(st, 400, prob)
        fields = {(e["field"]) for e in prob["errors"]}
        self.assertEqual(fields, {"items[1].store_id", "items[2].product", "items[3].date"}, prob)
        rows = psql(self.db, "SELECT quantity FROM actuals WHERE store_id = :'v1' AND day ="
                             " '2024-01-01'", self.mine)
        self.assertEqual(rows, [["41"]], "nothing of the refused upload was applied")
        # a manager reports for his store only: a denial (403), no longer a 400
        st, _, prob = self.srv.json("POST", "/api/v1/actuals", {"items": [
            {"store_id": self.other, "product": "Caffe Latte", "date": "2024-01-01",
             "quantity": 3}]}, token=self.mgr)
        self.assertEqual(st, 403, prob)
        self.assertIn(self.other, prob["detail"])

    def test_d_actuals_show_beside_forecasts_and_accuracy(self):
        st, _, fc = self.srv.json("GET", f"/api/v1/stores/{self.mine}/forecasts"
                                  "?product=Caffe%20Latte", token=self.mgr)
        self.assertEqual(st, 200)
        actual = {i["date"]: i["actual"] for i in fc["items"]}
        self.assertEqual(actual["2024-01-03"], 43)
        self.assertIsNone(actual["2024-01-10"])
        st, _, acc = self.srv.json("GET", f"/api/v1/stores/{self.mine}/accuracy?weeks=4",
                                   token=self.mgr)
        self.assertEqual(st, 200, acc)
        self.assertEqual({i["product"] for i in acc["items"]}, {"Caffe Latte"})
        self.assertEqual(sum(i["n"] for i in acc["items"]), 7)
        for i in acc["items"]:
            self.assertGreaterEqual(i["wape"], 0)
        st, _, _ = self.srv.json("GET", f"/api/v1/stores/{self.other}/accuracy", token=self.mgr)
        self.assertEqual(st, 404)
        # the project's weekly accuracy, recomputed after the actuals, and its gauges
        deadline = time.time() + 60
        while time.time() < deadline:
            st, _, pa = self.srv.json("GET", P + "/accuracy", token=self.ds)
            if pa["items"]:
                break
            time.sleep(0.3)
        self.assertEqual(st, 200)
        self.assertEqual(sum(i["n"] for i in pa["items"]), 7, pa)
        st, _, metrics = self.srv.request("GET", "/metrics", token=None, port=self.srv.probe_port)
        self.assertIn(b'roastery_forecast_wape{project="demand"}', metrics)
        self.assertIn(b'roastery_forecast_age_seconds{project="demand"}', metrics)

    def test_e_manual_run_switches_readers_and_keeps_the_old(self):
        st, hdrs, run = self.srv.json("POST", P + "/forecast-runs", {}, token=self.ds)
        self.assertEqual(st, 202, run)
        self.assertEqual(run["trigger"], "manual")
        runs = self.wait_current(2)
        self.assertEqual([r["current"] for r in runs[:2]], [True, False])
        st, _, fc = self.srv.json("GET", f"/api/v1/stores/{self.mine}/forecasts", token=self.mgr)
        self.assertEqual(fc["forecast_run"], run["id"])
        parts = psql(self.db, "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid ="
                              " i.inhparent WHERE c.relname = 'forecasts'")
        self.assertEqual(parts, [["2"]])
        # the weather outlook is validated and replaced whole
        st, _, prob = self.srv.json("PUT", P + "/weather-outlook", {"items": [
            {"city": "Seattle", "date": "2024-01-02", "weather": "Foggy"}]}, token=self.ds)
        self.assertEqual((st, prob["errors"][0]["field"]), (400, "items[0].weather"))
        st, _, res = self.srv.json("PUT", P + "/weather-outlook", {"items": [
            {"city": "Seattle", "date": "2024-01-02", "weather": "Snowy"}]}, token=self.ds)
        self.assertEqual((st, res["items"]), (200, 1))

    def test_g_a_new_dataset_version_brings_actuals(self):
        csv_bytes = subprocess.run([http_test.BINARY, "generate-sales", "--stores", "4",
                                    "--products", "4", "--start", "2024-01-01", "--end",
                                    "2024-01-10", "--seed", "3"],
                                   capture_output=True, check=True).stdout
        st, hdrs, v = self.srv.json("POST", P + "/datasets/sales/versions", csv_bytes,
                                    {"Content-Type": "text/csv"}, token=self.ds)
        self.assertEqual(st, 202, v)
        self.wait_version(v["number"])
        # the version is ready before its actuals step ends: wait for the operation
        deadline = time.time() + 60
        while time.time() < deadline:
            op = self.srv.json("GET", hdrs["location"], token=self.ds)[2]
            if op["state"] in ("succeeded", "failed", "canceled"):
                break
            time.sleep(0.2)
        taken = [a for a in op["actions"] if a["step"] == "actuals"][0]["response"]
        self.assertGreater(taken["rows_taken"], 0, taken)
        st, _, fc = self.srv.json("GET", f"/api/v1/stores/{self.other}/forecasts",
                                  token=self.admin)
        days = {i["date"]: i["actual"] for i in fc["items"] if i["product"] != "Caffe Latte"}
        self.assertIsNotNone(days["2024-01-10"])
        self.assertIsNone(days["2024-01-11"])

    def test_h_degraded_accuracy_asks_for_retraining(self):
        # a policy whose accuracy threshold today's forecasts cannot meet
        st, _, pol = self.srv.json("PUT", P + "/retraining-policy", {
            "enabled": True, "cron": None, "model": "demand", "compute": "laptop",
            "accuracy_wape_threshold": 0.0001}, token=self.ds)
        self.assertIn(st, (200, 201), pol)
        body = "store_id,product,date,quantity\n" + "".join(
            f"{self.mine},Americano,2024-01-0{d},{200 + d}\n" for d in range(1, 8))
        st, _, res = self.srv.json("POST", "/api/v1/actuals", body,
                                   {"Content-Type": "text/csv"}, token=self.ds)
        self.assertEqual(st, 200, res)
        # (test_g's new version may have asked for a drift retraining already)
        deadline = time.time() + 60
        while time.time() < deadline:
            _, _, rt = self.srv.json("GET", P + "/retrainings", token=self.ds)
            if [i for i in rt["items"] if i["reason"] == "accuracy"]:
                break
            time.sleep(0.3)
        self.assertTrue([i for i in rt["items"] if i["reason"] == "accuracy"],
                        ("accuracy.refresh asked the policy for a retraining", rt["items"]))

    def test_f_bad_planned_promotions(self):
        st, _, prob = self.srv.json("POST", P + "/planned-promotions", {
            "store_id": "*", "product": "Caffe Latte", "start_date": "2024-02-05",
            "end_date": "2024-02-01"}, token=self.ds)
        self.assertEqual((st, prob["errors"][0]["field"]), (400, "end_date"))
        st, _, prob = self.srv.json("POST", P + "/planned-promotions", {
            "store_id": "NOPE-9", "product": "Caffe Latte", "start_date": "2024-02-01",
            "end_date": "2024-02-05"}, token=self.ds)
        self.assertEqual((st, prob["errors"][0]["field"]), (400, "store_id"))
        st, _, lst = self.srv.json("GET", P + "/planned-promotions", token=self.ds)
        self.assertEqual([p["id"] for p in lst["items"]], [self.promo["id"]])
        st, _, _ = self.srv.json("GET", P + "/planned-promotions", token=self.mgr)
        self.assertIn(st, (403, 404))


if __name__ == "__main__":
    if len(sys.argv) < 2 or not os.environ.get("ROASTERY_TEST_DATABASE_URL"):
        print("usage: ROASTERY_TEST_DATABASE_URL=... forecasts_test.py BINARY", file=sys.stderr)
        sys.exit(77)
    http_test.BINARY = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
