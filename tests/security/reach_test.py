#!/usr/bin/env python3
"""Nobody writes or reads data outside their reach (security review 2026-12, findings 3, 10,
11 first bullet, 13 and the third bullet of 16), replayed against the real server.

Two projects forecast the same stores: globojava, which an admin chose to serve them, and
evecorp, whose forecast run is newer. Actuals are written only by contributors of the serving
project, the stores' managers and admins; dataset versions bring actuals only for the stores
their project serves, and never over what a person reported; store reads follow membership of
the serving project; store managers see no project internals; an idempotent replay is served
only to a caller who still passes the checks of the first request."""
import os
import subprocess
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import http_test  # noqa: E402
from http_test import Server, fresh_database, psql  # noqa: E402

STORES = [("US-SEA-001", "USA", "Seattle", "America/Los_Angeles"),
          ("US-NYC-001", "USA", "New York", "America/New_York"),
          ("CA-TOR-001", "Canada", "Toronto", "America/Toronto")]
PRODUCTS = ["Caffe Latte", "Cappuccino"]

# A ready, current forecast run of project $2 over every store and product, 2024-01-01 to
# 2024-01-14, each forecast $4, made ready $3 ago; $5 names its partition.
INJECT_RUN = """
INSERT INTO forecast_runs(id, project_id, model, model_version, dataset, dataset_version,
    trigger, state, current, start_date, days, rows, stores, products, created_by, ready_at)
VALUES (:'v1', :'v2', 'demand', 1, 'sales', 1, 'manual', 'ready', true, '2024-01-01', 14, 84, 3,
        '{"Caffe Latte","Cappuccino"}', 'reach-test', now() - (:'v3')::interval);
CREATE TABLE :"v5" PARTITION OF forecasts FOR VALUES IN (:'v1');
INSERT INTO forecasts SELECT :'v1'::uuid, s, p, d::date, :v4, :v4 * 0.8, :v4 * 1.2, :v4 * 0.6,
    :v4 * 1.4 FROM unnest(ARRAY['US-SEA-001', 'US-NYC-001', 'CA-TOR-001']) s,
    unnest(ARRAY['Caffe Latte', 'Cappuccino']) p,
    generate_series('2024-01-01'::date, '2024-01-14'::date, '1 day') d;
"""


def generate(start, end):
    return subprocess.run([http_test.BINARY, "generate-sales", "--stores", "2", "--products",
                           "2", "--start", start, "--end", end, "--seed", "5"],
                          capture_output=True, check=True).stdout


class ReachTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.db = fresh_database("security_reach")
        cls.srv = Server({"ROASTERY_DATABASE_URL": cls.db, "ROASTERY_WORKERS": "2"})
        t = cls.srv.token
        cls.admin = t("ada-admin", "PlatformAdmin")
        cls.dana = t("dana-scientist", "DataScientist")     # owner of globojava
        cls.carl = t("carl-contrib", "DataScientist")       # contributor of globojava
        cls.rita = t("rita-reader", "DataScientist")        # reader of globojava
        cls.olga = t("olga-outsider", "DataScientist")      # member of no project
        cls.eve = t("eve-other", "DataScientist")           # owner of evecorp
        cls.sam = t("sam-manager", "StoreManager")          # manages US-NYC-001 only
        cls.mallory = t("mallory-mgr", "StoreManager")      # reader of globojava, no stores
        cls.oids = {}
        for name, tok in [("admin", cls.admin), ("dana", cls.dana), ("carl", cls.carl), ("rita", cls.rita),
                          ("olga", cls.olga), ("eve", cls.eve), ("sam", cls.sam),
                          ("mallory", cls.mallory)]:
            cls.oids[name] = cls.srv.json("GET", "/api/v1/me", token=tok)[2]["oid"]
        for pid, owner in [("globojava", cls.dana), ("evecorp", cls.eve)]:
            st, _, body = cls.srv.json("POST", "/api/v1/projects",
                                       {"id": pid, "display_name": pid}, token=owner)
            assert st == 201, body
            st, _, body = cls.srv.json("POST", f"/api/v1/projects/{pid}/datasets",
                                       {"name": "sales"}, token=owner)
            assert st == 201, body
        for who, role in [("carl", "contributor"), ("rita", "reader"), ("mallory", "reader")]:
            st, _, body = cls.srv.json("PUT", f"/api/v1/projects/globojava/members/"
                                       f"{cls.oids[who]}", {"role": role}, token=cls.dana)
            assert st in (200, 201), body
        for sid, country, city, tz in STORES:
            st, _, body = cls.srv.json("POST", "/api/v1/stores", {
                "id": sid, "name": f"GloboJava {city}", "country": country, "city": city,
                "timezone": tz}, token=cls.admin)
            assert st == 201, body
            # The admin's choice; not asserted here, so that on a server without the route
            # the tests below fail on the property they protect, not in the set-up.
            cls.srv.request("PUT", f"/api/v1/stores/{sid}/serving-project",
                            {"project": "globojava"}, token=cls.admin, check=False)
        st, _, _ = cls.srv.json("PUT", f"/api/v1/stores/US-NYC-001/managers/{cls.oids['sam']}",
                                {}, token=cls.admin)
        assert st in (200, 201), st
        # globojava's run is an hour old; evecorp's, newer, forecasts 999 everywhere
        cls.runs = {}
        for pid, age, value in [("globojava", "1 hour", 40), ("evecorp", "1 second", 999)]:
            rid = str(uuid.uuid4())
            psql(cls.db, INJECT_RUN, rid, pid, age, value, "forecasts_" + rid.replace("-", ""))
            cls.runs[pid] = rid

    @classmethod
    def tearDownClass(cls):
        code = cls.srv.stop()
        assert code == 0, f"server exited {code} on SIGTERM"

    # ---- helpers

    def actuals(self, token, rows):
        return self.srv.json("POST", "/api/v1/actuals", {"items": [
            {"store_id": s, "product": p, "date": d, "quantity": q} for s, p, d, q in rows]},
            token=token)

    def stored_actual(self, store, product, day):
        rows = psql(self.db, "SELECT quantity, source FROM actuals WHERE store_id = :'v1' AND"
                             " product = :'v2' AND day = :'v3'", store, product, day)
        return tuple(rows[0]) if rows else None

    def denials(self, who):
        _, _, page = self.srv.json("GET", f"/api/v1/audit?actor={self.oids[who]}&outcome=denied"
                                   "&limit=200", token=self.admin)
        return page["items"]

    def upload(self, project, token, csv_bytes):
        st, hdrs, v = self.srv.json("POST", f"/api/v1/projects/{project}/datasets/sales/versions",
                                    csv_bytes, {"Content-Type": "text/csv"}, token=token)
        self.assertEqual(st, 202, v)
        deadline = time.time() + 90
        while time.time() < deadline:
            _, _, op = self.srv.json("GET", hdrs["location"], token=token)
            if op["state"] in ("succeeded", "failed", "canceled"):
                break
            time.sleep(0.2)
        self.assertEqual(op["state"], "succeeded", op)
        return {a["step"]: a["response"] for a in op["actions"]}

    # ---- finding 3: actuals

    def test_outsider_data_scientist_cannot_write_actuals(self):
        # the reproduction: a DataScientist in no project rewrites a store's sales
        before = self.stored_actual("CA-TOR-001", "Caffe Latte", "2024-01-02")
        st, _, prob = self.actuals(self.olga, [("CA-TOR-001", "Caffe Latte", "2024-01-02",
                                                99999)])
        self.assertEqual(st, 403, prob)
        self.assertIn("CA-TOR-001", prob["detail"])
        self.assertEqual(self.stored_actual("CA-TOR-001", "Caffe Latte", "2024-01-02"), before)
        # audited as a denial, not as a failed validation
        self.assertTrue([e for e in self.denials("olga") if e["action"] == "POST /api/v1/actuals"
                         and e["status"] == 403], self.denials("olga"))

    def test_contributor_of_another_project_cannot_write_actuals(self):
        # eve's project forecasts the store, but it does not serve it
        st, _, prob = self.actuals(self.eve, [("US-SEA-001", "Cappuccino", "2024-01-02", 1)])
        self.assertEqual(st, 403, prob)
        self.assertIsNone(self.stored_actual("US-SEA-001", "Cappuccino", "2024-01-02"))

    def test_reader_of_serving_project_cannot_write_actuals(self):
        st, _, prob = self.actuals(self.rita, [("US-SEA-001", "Cappuccino", "2024-01-03", 1)])
        self.assertEqual(st, 403, prob)

    def test_one_store_out_of_reach_refuses_the_whole_upload(self):
        st, _, prob = self.actuals(self.sam, [("US-NYC-001", "Caffe Latte", "2024-01-12", 5),
                                              ("CA-TOR-001", "Caffe Latte", "2024-01-12", 5)])
        self.assertEqual(st, 403, prob)
        self.assertIn("CA-TOR-001", prob["detail"])
        self.assertIsNone(self.stored_actual("US-NYC-001", "Caffe Latte", "2024-01-12"))

    def test_contributors_managers_and_admins_write_actuals_within_reach(self):
        for token, row in [(self.carl, ("CA-TOR-001", "Caffe Latte", "2024-01-13", 31)),
                           (self.sam, ("US-NYC-001", "Cappuccino", "2024-01-13", 32)),
                           (self.admin, ("US-SEA-001", "Cappuccino", "2024-01-13", 33))]:
            st, _, res = self.actuals(token, [row])
            self.assertEqual((st, res.get("inserted")), (200, 1), res)
            self.assertEqual(self.stored_actual(*row[:3]), (str(row[3]), "api"))

    def test_dataset_actuals_only_for_the_projects_own_stores(self):
        # evecorp's dataset covers stores globojava serves: none of it becomes their actuals
        steps = self.upload("evecorp", self.eve, generate("2024-01-01", "2024-01-05"))
        self.assertEqual(steps["actuals"]["rows_taken"], 0, steps["actuals"])
        for day in ("2024-01-01", "2024-01-04"):
            self.assertIsNone(self.stored_actual("US-SEA-001", "Caffe Latte", day))
            self.assertIsNone(self.stored_actual("US-NYC-001", "Cappuccino", day))

    def test_a_persons_actuals_take_precedence_over_dataset_actuals(self):
        st, _, res = self.actuals(self.dana, [("US-SEA-001", "Caffe Latte", "2024-01-09", 7)])
        self.assertEqual(st, 200, res)
        steps = self.upload("globojava", self.dana, generate("2024-01-08", "2024-01-11"))
        self.assertGreater(steps["actuals"]["rows_taken"], 0, steps["actuals"])
        # the day the person reported keeps their number; the others come from the dataset
        self.assertEqual(self.stored_actual("US-SEA-001", "Caffe Latte", "2024-01-09"),
                         ("7", "api"))
        q, source = self.stored_actual("US-SEA-001", "Caffe Latte", "2024-01-10")
        self.assertTrue(source.startswith("dataset:sales:"), source)
        # and a later report by a person replaces a dataset-derived actual
        st, _, res = self.actuals(self.dana, [("US-SEA-001", "Caffe Latte", "2024-01-10", 8)])
        self.assertEqual((st, res["updated"]), (200, 1), res)
        self.assertEqual(self.stored_actual("US-SEA-001", "Caffe Latte", "2024-01-10"),
                         ("8", "api"))

    # ---- finding 10: store reads

    def test_outsider_data_scientist_cannot_read_store_forecasts_or_accuracy(self):
        for path in ("/api/v1/stores/CA-TOR-001/forecasts", "/api/v1/stores/CA-TOR-001/accuracy"):
            st, _, body = self.srv.json("GET", path, token=self.olga)
            self.assertEqual(st, 404, (path, body))
        st, _, _ = self.srv.json("GET", "/api/v1/stores/CA-TOR-001/forecasts", token=self.eve)
        self.assertEqual(st, 404)  # evecorp forecasts the store, but does not serve it

    def test_every_refused_store_read_is_audited(self):
        before = len([e for e in self.denials("olga") if "forecasts" in e["action"]])
        for _ in range(3):  # the second and third are answered from the ACL cache
            st, _, _ = self.srv.json("GET", "/api/v1/stores/US-SEA-001/forecasts",
                                     token=self.olga)
            self.assertEqual(st, 404)
        after = len([e for e in self.denials("olga") if "forecasts" in e["action"]])
        self.assertEqual(after - before, 3)

    def test_members_of_the_serving_project_read_its_stores(self):
        for token in (self.dana, self.rita):
            st, _, fc = self.srv.json("GET", "/api/v1/stores/CA-TOR-001/forecasts", token=token)
            self.assertEqual((st, fc.get("project")), (200, "globojava"), fc)

    def test_another_projects_newer_run_does_not_take_over_a_store(self):
        st, _, fc = self.srv.json("GET", "/api/v1/stores/US-NYC-001/forecasts", token=self.sam)
        self.assertEqual(st, 200, fc)
        self.assertEqual((fc["project"], fc["forecast_run"]),
                         ("globojava", self.runs["globojava"]))
        self.assertEqual({i["forecast"] for i in fc["items"]}, {40})
        st, _, acc = self.srv.json("GET", "/api/v1/stores/US-NYC-001/accuracy", token=self.sam)
        self.assertEqual(st, 200, acc)
        # the other store is still not his
        st, _, _ = self.srv.json("GET", "/api/v1/stores/US-SEA-001/forecasts", token=self.sam)
        self.assertEqual(st, 404)

    def test_serving_project_is_an_admin_decision(self):
        path = "/api/v1/stores/CA-TOR-001/serving-project"
        st, _, _ = self.srv.json("PUT", path, {"project": "evecorp"}, token=self.eve)
        self.assertEqual(st, 403)
        st, _, _ = self.srv.json("PUT", path, {"project": "nope"}, token=self.admin)
        self.assertEqual(st, 400)
        st, _, store = self.srv.json("GET", "/api/v1/stores/CA-TOR-001", token=self.admin)
        self.assertEqual(store["serving_project"], "globojava")
        try:
            st, _, store = self.srv.json("PUT", path, {"project": "evecorp"}, token=self.admin)
            self.assertEqual((st, store["serving_project"], store["serving_set_by"]),
                             (200, "evecorp", self.oids["admin"]), store)
            # at once: the members of the new serving project read it, the old ones no longer
            st, _, fc = self.srv.json("GET", "/api/v1/stores/CA-TOR-001/forecasts", token=self.eve)
            self.assertEqual((st, fc.get("project")), (200, "evecorp"), fc)
            st, _, _ = self.srv.json("GET", "/api/v1/stores/CA-TOR-001/forecasts", token=self.rita)
            self.assertEqual(st, 404)
            st, _, store = self.srv.json("PUT", path, {"project": None}, token=self.admin)
            self.assertEqual((st, store["serving_project"]), (200, None))
            st, _, prob = self.srv.json("GET", "/api/v1/stores/CA-TOR-001/forecasts",
                                        token=self.admin)
            self.assertEqual((st, prob["type"].rsplit("/", 1)[1]), (404, "no-forecast"))
        finally:
            self.srv.json("PUT", path, {"project": "globojava"}, token=self.admin)

    # ---- finding 13: store managers and project internals

    def test_store_manager_sees_no_operations_webhooks_or_deliveries(self):
        op = psql(self.db, "INSERT INTO operations(kind, subject, next_attempt_at) VALUES"
                           " ('dataset.ingest', 'projects/globojava/datasets/sales/versions/9',"
                           " now() + interval '1 day') RETURNING id;")[0][0]
        hook = psql(self.db, "INSERT INTO webhooks(project_id, url, events, secret, created_by)"
                             " VALUES ('globojava', 'https://hooks.example/x', '{run.finished}',"
                             " 'whsec_test', 'dana-scientist') RETURNING id;")[0][0]
        psql(self.db, "WITH e AS (SELECT gen_random_uuid() AS id) INSERT INTO"
                      " webhook_deliveries(webhook_id, project_id, event_id, event, body) SELECT"
                      " :'v1', 'globojava', e.id, 'run.finished', json_build_object('id', e.id,"
                      " 'type', 'run.finished', 'project', 'globojava', 'created_at', now(),"
                      " 'data', json_build_object('metrics', json_build_object('wape', 0.19)))"
                      " FROM e;", hook)
        base = "/api/v1/projects/globojava"
        for token, ok in [(self.rita, True), (self.mallory, False)]:
            st, _, _ = self.srv.json("GET", f"/api/v1/operations/{op}", token=token)
            self.assertEqual(st, 200 if ok else 404)
            _, _, page = self.srv.json("GET", "/api/v1/operations?kind=dataset.ingest",
                                       token=token)
            self.assertEqual(op in [o["id"] for o in page["items"]], ok)
            for path in (f"{base}/webhooks", f"{base}/webhooks/{hook}",
                         f"{base}/webhooks/{hook}/deliveries", f"{base}/forecast-runs"):
                st, _, body = self.srv.json("GET", path, token=token)
                self.assertEqual(st, 200 if ok else 404, (path, body))
        self.assertTrue([e for e in self.denials("mallory")
                         if e["action"] == "GET /api/v1/operations/{id}"], "audited as denied")
        # what a store manager does see of the project: its accuracy
        self.assertEqual(self.srv.json("GET", f"{base}/accuracy", token=self.mallory)[0], 200)
        # and even as a contributor, he starts no forecast run (nor sees one's internals)
        member = f"{base}/members/{self.oids['mallory']}"
        self.srv.json("PUT", member, {"role": "contributor"}, token=self.dana)
        try:
            st, _, body = self.srv.json("POST", f"{base}/forecast-runs", {}, token=self.mallory)
            self.assertEqual(st, 404, body)
        finally:
            self.srv.json("PUT", member, {"role": "reader"}, token=self.dana)

    # ---- finding 16: idempotent replays

    def test_replay_does_not_serve_a_webhook_secret_to_a_former_owner(self):
        rex = self.srv.token("rex-owner", "DataScientist")
        rex_oid = self.srv.json("GET", "/api/v1/me", token=rex)[2]["oid"]
        st, _, _ = self.srv.json("POST", "/api/v1/projects", {"id": "replayco",
                                                              "display_name": "R"}, token=rex)
        self.assertEqual(st, 201)
        body = {"url": "https://93.184.215.14/hook", "events": ["model.promoted"]}
        key = {"Idempotency-Key": str(uuid.uuid4())}
        st, _, hook = self.srv.json("POST", "/api/v1/projects/replayco/webhooks", body, key,
                                    token=rex)
        self.assertEqual(st, 201, hook)
        self.assertTrue(hook["secret"].startswith("whsec_"))
        st, hdrs, again = self.srv.json("POST", "/api/v1/projects/replayco/webhooks", body, key,
                                        token=rex)
        self.assertEqual((st, hdrs.get("idempotent-replayed"), again), (201, "true", hook))
        # rex leaves the project (an admin hands it to someone else first)
        self.srv.json("PUT", f"/api/v1/projects/replayco/members/{self.oids['dana']}",
                      {"role": "owner"}, token=self.admin)
        st, _, _ = self.srv.request("DELETE", f"/api/v1/projects/replayco/members/{rex_oid}",
                                    token=self.admin)
        self.assertEqual(st, 204)
        st, _, data = self.srv.request("POST", "/api/v1/projects/replayco/webhooks", body,
                                       key, token=rex)
        self.assertEqual(st, 404, data)
        self.assertNotIn(b"whsec_", data)
        self.assertTrue([e for e in self.denials_of(rex_oid)
                         if e["action"] == "POST /api/v1/projects/{project}/webhooks"])

    def test_replay_is_refused_after_the_role_is_gone(self):
        key = {"Idempotency-Key": str(uuid.uuid4())}
        body = {"id": "rolegone", "display_name": "G"}
        st, _, _ = self.srv.json("POST", "/api/v1/projects", body, key,
                                 token=self.srv.token("ron-was-ds", "DataScientist"))
        self.assertEqual(st, 201)
        # the same person, now without the DataScientist role
        st, hdrs, _ = self.srv.json("POST", "/api/v1/projects", body, key,
                                    token=self.srv.token("ron-was-ds", "StoreManager"))
        self.assertEqual(st, 403)
        self.assertNotIn("idempotent-replayed", hdrs)

    def denials_of(self, oid):
        _, _, page = self.srv.json("GET", f"/api/v1/audit?actor={oid}&outcome=denied",
                                   token=self.admin)
        return page["items"]


if __name__ == "__main__":
    if len(sys.argv) < 2 or not os.environ.get("ROASTERY_TEST_DATABASE_URL"):
        print("usage: ROASTERY_TEST_DATABASE_URL=... reach_test.py BINARY", file=sys.stderr)
        sys.exit(77)
    http_test.BINARY = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
