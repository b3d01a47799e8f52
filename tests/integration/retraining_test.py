#!/usr/bin/env python3
"""Retraining end to end with real runs: the policy (PUT/GET, a cron that does
not parse, If-Match, who may switch auto-promotion on), a manual trigger that
trains with the production model's parameters and proposes a production
promotion that waits for an admin, a drift report after a shifted dataset
version and the retraining it fires, the schedule firing once across workers,
and auto-promotion approved by the policy and audited."""
import datetime
import os
import shutil
import sys
import time
import unittest
import zoneinfo

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import http_test  # noqa: E402
from http_test import psql  # noqa: E402
from runs_test import RunsBase, P, generate  # noqa: E402

BASE_PARAMS = {"num_round": 30, "max_depth": 4}


def shifted_sales(factor):
    """Sales to 2024-03-31 (seed 3) where every 2024 row sells factor times as much."""
    lines = generate(4, 4, "2022-01-01", "2024-03-31").decode().splitlines()
    head = lines[0].split(",")
    qi, pi, ti, di = (head.index(h) for h in ("Quantity Sold", "Price", "Total Sale", "Date"))
    out = [lines[0]]
    for line in lines[1:]:
        f = line.split(",")
        if f[di] >= "2024-01-01":
            q = int(int(f[qi]) * factor)
            f[qi], f[ti] = str(q), f"{q * float(f[pi]):.2f}"
        out.append(",".join(f))
    return ("\n".join(out) + "\n").encode()


class RetrainingTest(RunsBase):
    env = {"ROASTERY_LEASE_SECONDS": "6"}  # heartbeats, and so the scheduler, every 2 s

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.admin = cls.srv.token("ada-admin", "PlatformAdmin")
        cls.admin2 = cls.srv.token("bo-admin", "PlatformAdmin")
        cls.oid = {t: cls.srv.json("GET", "/api/v1/me", token=t)[2]["oid"]
                   for t in (cls.ds, cls.admin, cls.admin2)}
        # gates any trained model passes: the flow is under test, not the model
        _, hdrs, _ = cls.srv.json("GET", P, token=cls.admin)
        st, _, p = cls.srv.json("PATCH", P, {"promotion_margin": 0, "champion_tolerance": 0.9},
                                {"If-Match": hdrs["etag"]}, token=cls.admin)
        assert st == 200, p
        st, _, run = cls.srv.json("POST", P + "/runs", {
            "dataset": "sales", "compute": "laptop", "experiment": "base", "params": BASE_PARAMS,
            "horizon_days": 7, "backtest_days": 21, "seed": 7}, token=cls.ds)
        assert st == 202, run
        cls.base_run = cls.wait_run(run["id"])
        assert cls.base_run["state"] == "completed", cls.base_run
        assert cls.srv.json("POST", P + "/models", {"name": "demand"}, token=cls.ds)[0] == 201
        st, _, v = cls.srv.json("POST", P + "/models/demand/versions", {"run_id": run["id"]},
                                token=cls.ds)
        assert st == 201, v
        st, _, pr = cls.srv.json("POST", P + "/models/demand/versions/1/promotions",
                                 {"target": "production"}, token=cls.admin)
        assert st == 202, pr
        pr = cls.wait_promotion(pr["id"])
        assert pr["state"] == "pending_approval", pr
        st, _, _ = cls.srv.json("POST", f"/api/v1/promotions/{pr['id']}/approve", {},
                                token=cls.admin2)
        assert st == 202
        cls.wait_for(lambda: cls.aliases().get("production") == 1, "production v1")

    @classmethod
    def tearDownClass(cls):
        log = cls.srv.read_log()
        code = cls.srv.stop()
        shutil.rmtree(cls.srv.data_dir, ignore_errors=True)
        assert "Sanitizer" not in log, log[-4000:]
        assert code == 0, f"server exited {code} on SIGTERM"

    @classmethod
    def wait_for(cls, cond, what, timeout=120):
        deadline = time.time() + timeout
        while time.time() < deadline:
            got = cond()
            if got:
                return got
            time.sleep(0.3)
        raise AssertionError("timed out waiting for " + what)

    @classmethod
    def wait_run(cls, rid):
        def done():
            run = cls.srv.json("GET", f"/api/v1/runs/{rid}", token=cls.ds)[2]
            return run if run["state"] in ("completed", "failed", "canceled") else None
        return cls.wait_for(done, f"run {rid}", 180)

    @classmethod
    def wait_promotion(cls, pid):
        def decided():
            p = cls.srv.json("GET", f"/api/v1/promotions/{pid}", token=cls.ds)[2]
            return p if p["state"] not in ("evaluating", "approved", "deploying") else None
        return cls.wait_for(decided, f"promotion {pid}", 180)

    @classmethod
    def aliases(cls):
        return cls.srv.json("GET", P + "/models/demand", token=cls.ds)[2]["aliases"]

    def retraining(self, rid):
        st, _, t = self.srv.json("GET", f"{P}/retrainings/{rid}", token=self.ds)
        self.assertEqual(st, 200, t)
        return t

    def wait_retraining(self, rid, states=("completed", "failed")):
        return self.wait_for(lambda: (lambda t: t if t["state"] in states else None)(
            self.retraining(rid)), f"retraining {rid}", 180)

    def policy(self, body, token=None, headers=None, status=200):
        st, hdrs, p = self.srv.json("PUT", P + "/retraining-policy", body, headers,
                                    token=token or self.ds)
        self.assertEqual(st, status, p)
        return p, hdrs

    def audit(self, action):
        st, _, a = self.srv.json("GET", f"/api/v1/audit?action={action}", token=self.admin)
        self.assertEqual(st, 200, a)
        return a["items"]

    def assert_trains_like_production(self, run, dataset_version):
        base = self.base_run
        for k in ("algorithm", "params", "horizon_days", "backtest_days", "rolling_origins",
                  "seed", "dataset", "compute"):
            self.assertEqual(run[k], base[k], k)
        self.assertEqual(run["experiment"], "retraining")
        self.assertEqual(run["dataset_version"], dataset_version)

    # ---- the policy ------------------------------------------------------------------------------

    def test_a_policy_put_get_and_bad_input(self):
        st, _, e = self.srv.json("GET", P + "/retraining-policy", token=self.ds)
        self.assertEqual(st, 404, e)
        st, _, e = self.srv.json("POST", P + "/retraining-policy/trigger", token=self.ds)
        self.assertEqual(st, 404, e)
        good = {"enabled": True, "cron": "0 3 * * MON", "timezone": "America/New_York",
                "model": "demand", "compute": "laptop", "drift_psi_threshold": 0.2}
        for bad, field, reason in (
                ({"cron": "0 25 * * MON"}, "cron", "hour field at position 3: 25 is out of range"),
                ({"cron": "0 3 * *"}, "cron", "expected 5 fields"),
                ({"cron": "0 3 * * MOON"}, "cron", "day-of-week field at position 9"),
                ({"cron": "@reboot"}, "cron", "unknown macro"),
                ({"timezone": "Mars/Olympus"}, "timezone", "unknown time zone"),
                ({"model": "nope"}, "model", "no such model"),
                ({"compute": "nope"}, "compute", "no such compute"),
                ({"drift_psi_threshold": -1}, "drift_psi_threshold", "above 0"),
                ({"enabled": "yes"}, "enabled", "true or false")):
            st, _, e = self.srv.json("PUT", P + "/retraining-policy", dict(good, **bad),
                                     token=self.ds)
            self.assertEqual(st, 400, (bad, e))
            self.assertEqual(e["errors"][0]["field"], field, e)
            self.assertIn(reason, e["errors"][0]["reason"], e)
        # auto-promotion skips an admin's approval: a data scientist may not switch it on
        st, _, e = self.srv.json("PUT", P + "/retraining-policy",
                                 dict(good, auto_promote_to_production=True), token=self.ds)
        self.assertEqual((st, e["errors"][0]["field"]), (403, "auto_promote_to_production"), e)
        # a store manager does not even see it
        sm = self.srv.token("sam-manager", "StoreManager")
        self.assertEqual(self.srv.json("GET", P + "/retraining-policy", token=sm)[0], 404)

        p, hdrs = self.policy(good, status=201)
        self.assertEqual((p["enabled"], p["cron"], p["timezone"], p["model"], p["compute"]),
                         (True, "0 3 * * MON", "America/New_York", "demand", "laptop"))
        self.assertIsNone(p["accuracy_wape_threshold"])
        self.assertFalse(p["auto_promote_to_production"])
        self.assertIsNone(p["last_fired_at"])
        nxt = datetime.datetime.fromisoformat(p["next_fire_at"])
        local = nxt.astimezone(zoneinfo.ZoneInfo("America/New_York"))
        self.assertEqual((local.weekday(), local.hour, local.minute), (0, 3, 0), local)
        self.assertGreater(nxt, datetime.datetime.now(datetime.timezone.utc))
        self.assertLess(nxt - datetime.datetime.now(datetime.timezone.utc),
                        datetime.timedelta(days=7, hours=1))
        st, hdrs2, got = self.srv.json("GET", P + "/retraining-policy", token=self.ds)
        self.assertEqual((st, got["version"]), (200, p["version"]))
        # what a GET returned may be sent back; an old ETag is refused
        p2, _ = self.policy(dict(got, accuracy_wape_threshold=0.5), headers={
            "If-Match": hdrs2["etag"]})
        self.assertEqual(p2["accuracy_wape_threshold"], 0.5)
        self.policy(good, headers={"If-Match": hdrs2["etag"]}, status=412)
        # disabled: nothing is scheduled
        p3, _ = self.policy(dict(good, enabled=False))
        self.assertIsNone(p3["next_fire_at"])
        self.policy(good)
        changes = self.audit("retraining.policy.update")
        self.assertGreaterEqual(len(changes), 4)
        self.assertIn("cron=0 3 * * MON", changes[0]["reason"])
        self.assertEqual(changes[0]["actor_oid"], self.oid[self.ds])

    # ---- a manual trigger ----------------------------------------------------------------------

    def test_b_trigger_trains_like_production_and_proposes(self):
        st, hdrs, t = self.srv.json("POST", P + "/retraining-policy/trigger", token=self.ds)
        self.assertEqual(st, 202, t)
        self.assertIn("/api/v1/operations/", hdrs["location"])
        self.assertEqual((t["reason"], t["model"], t["base_version"]), ("manual", "demand", 1))
        # triggers never stack up
        st, _, e = self.srv.json("POST", P + "/retraining-policy/trigger", token=self.ds)
        self.assertEqual(st, 409, e)
        self.assertIn(t["id"], e["detail"])
        run_id = self.wait_for(lambda: self.retraining(t["id"])["run_id"], "the run")
        run = self.srv.json("GET", f"/api/v1/runs/{run_id}", token=self.ds)[2]
        self.assert_trains_like_production(run, 1)
        done = self.wait_retraining(t["id"])
        self.assertEqual(done["state"], "completed", done)
        self.assertEqual(done["model_version"], 2)
        versions = self.srv.json("GET", P + "/models/demand/versions/2", token=self.ds)[2]
        self.assertEqual(versions["run_id"], run_id)
        # the normal gates, then an admin: production has not moved
        pr = self.wait_promotion(done["promotion_id"])
        self.assertEqual((pr["state"], pr["target"], pr["version"], pr["champion"]),
                         ("pending_approval", "production", 2, 1), pr)
        self.assertEqual(pr["proposed_by"], self.oid[self.ds])
        self.assertIn("champion_challenger", [g["gate"] for g in pr["gates"]])
        self.assertEqual(self.aliases()["production"], 1)
        q = self.srv.json("GET", "/api/v1/promotions?state=pending_approval", token=self.admin)[2]
        self.assertIn(pr["id"], [x["id"] for x in q["items"]])
        st, _, _ = self.srv.json("POST", f"/api/v1/promotions/{pr['id']}/reject",
                                 {"reason": "not this week"}, token=self.admin)
        self.assertEqual(st, 200)
        p = self.srv.json("GET", P + "/retraining-policy", token=self.ds)[2]
        self.assertEqual((p["last_reason"], p["last_retraining"]["id"]), ("manual", t["id"]))
        self.assertTrue(any(a["subject"] == P[len("/api/v1/"):] + "/retraining-policy"
                            for a in self.audit("retraining.trigger")))

    # ---- drift ---------------------------------------------------------------------------------

    def test_c_drift_report_fires_a_retraining(self):
        st, _, v = self.srv.json("POST", P + "/datasets/sales/versions", shifted_sales(2.5),
                                 {"Content-Type": "text/csv"}, token=self.ds)
        self.assertEqual(st, 202, v)
        self.assertEqual(self.wait_version(v["number"])["state"], "ready")

        def report():
            items = self.srv.json("GET", P + "/drift-reports", token=self.ds)[2]["items"]
            return items[0] if items else None
        summary = self.wait_for(report, "a drift report", 60)
        self.assertEqual((summary["dataset"], summary["dataset_version"],
                          summary["reference_version"], summary["model"],
                          summary["model_version"]), ("sales", 2, 1, "demand", 1))
        self.assertTrue(summary["drifted"], summary)
        self.assertGreater(summary["max_psi"], 0.2)
        self.assertEqual(summary["threshold"], 0.2)
        st, _, full = self.srv.json("GET", f"{P}/drift-reports/{summary['id']}", token=self.ds)
        self.assertEqual(st, 200)
        r = full["report"]
        self.assertEqual(r["window"]["first_date"], "2024-01-01")
        self.assertEqual(r["level_shift"]["baseline"], "same_window_last_year")
        psi = {f["feature"]: f["psi"] for f in r["features"]}
        self.assertGreater(psi["quantity"], 0.2, psi)
        self.assertLess(psi["day_of_week"], 0.01, psi)  # 13 whole weeks against 2 years
        for f in ("unit_price", "promotion", "holiday", "day_of_week", "product_mix",
                  "store_mix", "category_mix"):
            self.assertIn(f, psi)
        ls = r["level_shift"]
        self.assertEqual((ls["series"], ls["shifted"]), (16, 16), ls)
        self.assertGreater(ls["top"][0]["relative_change"], 1.0, ls["top"][0])
        # filters and pages
        st, _, page = self.srv.json("GET", P + "/drift-reports?drifted=false", token=self.ds)
        self.assertEqual(page["items"], [])
        st, _, e = self.srv.json("GET", P + "/drift-reports?drifted=maybe", token=self.ds)
        self.assertEqual((st, e["errors"][0]["field"]), (400, "drifted"))
        # the drift started a retraining on the new data, with production's parameters
        self.assertIsNotNone(summary["retraining_id"])
        t = self.retraining(summary["retraining_id"])
        self.assertEqual((t["reason"], t["detail"]["drift_report_id"]), ("drift", summary["id"]))
        self.assertEqual(t["triggered_by"], "system:drift")
        run_id = self.wait_for(lambda: self.retraining(t["id"])["run_id"], "the run")
        run = self.srv.json("GET", f"/api/v1/runs/{run_id}", token=self.ds)[2]
        self.assert_trains_like_production(run, 2)
        done = self.wait_retraining(t["id"])
        self.assertEqual(done["state"], "completed", done)
        pr = self.wait_promotion(done["promotion_id"])
        self.assertEqual((pr["state"], pr["proposed_by"]), ("pending_approval", "system:drift"),
                         pr)
        self.assertEqual(self.aliases()["production"], 1)
        self.srv.json("POST", f"/api/v1/promotions/{pr['id']}/reject", {"reason": "later"},
                      token=self.admin)
        # a retried check writes no second report
        n = psql(self.db, "SELECT count(*) FROM drift_reports;")[0][0]
        self.assertEqual(n, "1")

    # ---- the schedule ---------------------------------------------------------------------------

    def test_d_schedule_fires_once(self):
        # a long run holds the compute's only slot, so the scheduled run waits queued
        st, _, hog = self.srv.json("POST", P + "/runs", {
            "dataset": "sales", "compute": "laptop", "experiment": "hog",
            "params": {"num_round": 5000, "eta": 0.001, "early_stopping_rounds": 1000}},
            token=self.ds)
        self.assertEqual(st, 202, hog)
        hog = self.wait_for(lambda: (lambda r: r if r["state"] not in ("queued", "preparing")
                                     else None)(
            self.srv.json("GET", f"/api/v1/runs/{hog['id']}", token=self.ds)[2]), "the long run")
        self.assertEqual(hog["state"], "running", hog)
        psql(self.db, "UPDATE retraining_policies SET next_fire_at = now() - interval '1 minute';")

        def fired():
            p = self.srv.json("GET", P + "/retraining-policy", token=self.ds)[2]
            return p if p["last_reason"] == "schedule" else None
        p = self.wait_for(fired, "the schedule", 30)
        t = p["last_retraining"]
        self.assertEqual((t["reason"], t["triggered_by"]), ("schedule", "system:schedule"))
        nxt = datetime.datetime.fromisoformat(p["next_fire_at"])
        self.assertGreater(nxt, datetime.datetime.now(datetime.timezone.utc))
        self.assertEqual(nxt.astimezone(zoneinfo.ZoneInfo("America/New_York")).hour, 3)
        time.sleep(3)  # more heartbeats: still one
        rows = psql(self.db, "SELECT count(*) FROM retrainings WHERE reason = 'schedule';")
        self.assertEqual(rows[0][0], "1")
        # a run that does not complete proposes nothing
        run_id = self.wait_for(lambda: self.retraining(t["id"])["run_id"], "the run")
        run = self.srv.json("GET", f"/api/v1/runs/{run_id}", token=self.ds)[2]
        self.assertEqual(run["state"], "queued")
        self.assertEqual(self.srv.json("POST", f"/api/v1/runs/{run_id}/cancel", {},
                                       token=self.ds)[0], 202)
        self.srv.json("POST", f"/api/v1/runs/{hog['id']}/cancel", {}, token=self.ds)
        self.wait_run(hog["id"])
        done = self.wait_retraining(t["id"])
        self.assertEqual((done["state"], done["error"]["run_state"]), ("failed", "canceled"), done)
        self.assertIsNone(done["promotion_id"])

    # ---- auto-promotion --------------------------------------------------------------------------

    def test_e_auto_promotion_is_the_admins_decision(self):
        p = self.srv.json("GET", P + "/retraining-policy", token=self.ds)[2]
        body = {k: p[k] for k in ("enabled", "cron", "timezone", "model", "compute",
                                  "drift_psi_threshold")}
        p, _ = self.policy(dict(body, auto_promote_to_production=True), token=self.admin)
        self.assertEqual(p["auto_promote_granted_by"], self.oid[self.admin])
        # a data scientist's later edit keeps the admin's grant for the same model
        p, _ = self.policy(dict(body, auto_promote_to_production=True, cron="@daily"))
        self.assertEqual((p["auto_promote_to_production"], p["auto_promote_granted_by"]),
                         (True, self.oid[self.admin]))
        st, _, t = self.srv.json("POST", P + "/retraining-policy/trigger", token=self.ds)
        self.assertEqual(st, 202, t)
        self.assertTrue(t["auto_promote"])
        done = self.wait_retraining(t["id"])
        self.assertEqual(done["state"], "completed", done)
        pr = self.wait_promotion(done["promotion_id"])
        self.assertEqual(pr["state"], "completed", pr)
        self.assertEqual(pr["decided_by"], "retraining-policy:" + self.oid[self.admin])
        self.wait_for(lambda: self.aliases().get("production") == done["model_version"],
                      "production moved")
        approvals = self.audit("promotion.auto_approve")
        self.assertEqual(approvals[0]["outcome"], "succeeded")
        self.assertIn(self.oid[self.admin], approvals[0]["reason"])


if __name__ == "__main__":
    http_test.BINARY = os.path.abspath(sys.argv.pop(1))
    if not http_test.BASE_URL:
        sys.exit(77)
    result = unittest.main(exit=False, verbosity=2).result
    sys.exit(0 if result.wasSuccessful() else 1)
