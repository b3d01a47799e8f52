#!/usr/bin/env python3
"""Four eyes means four eyes (security review 2026-12, finding 4), replayed against the real
server: a change an admin decides records who asked for it, and that person cannot decide it,
whoever first requested the compute. Both the refusal and the decision are audited."""
import os
import shutil
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import http_test  # noqa: E402
from http_test import Server, fresh_database  # noqa: E402

PROJECT = "globojava"


class FourEyesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.db = fresh_database("security_four_eyes")
        cls.srv = Server({"ROASTERY_DATABASE_URL": cls.db, "ROASTERY_WORKERS": "2"})
        cls.ds = cls.srv.token("dana-scientist", "DataScientist")
        cls.ada = cls.srv.token("ada-admin", "PlatformAdmin")
        cls.bo = cls.srv.token("bo-admin", "PlatformAdmin")
        cls.oid = {n: cls.srv.json("GET", "/api/v1/me", token=t)[2]["oid"]
                   for n, t in [("ds", cls.ds), ("ada", cls.ada), ("bo", cls.bo)]}
        st, _, _ = cls.srv.json("POST", "/api/v1/projects",
                                {"id": PROJECT, "display_name": "G"}, token=cls.ds)
        assert st == 201, st
        # no budget and no quota: every cluster waits for an admin

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()
        shutil.rmtree(cls.srv.data_dir, ignore_errors=True)

    def ask(self, name, token, nodes=2):
        st, _, c = self.srv.json("POST", f"/api/v1/projects/{PROJECT}/compute",
                                 {"name": name, "kind": "cluster", "vm_size": "Standard_DS3_v2",
                                  "max_nodes": nodes}, token=token)
        self.assertEqual((st, c["state"]), (201, "pending_approval"), c)
        return c

    def decide(self, cid, token, verb="approve"):
        return self.srv.json("POST", f"/api/v1/compute/{cid}/{verb}", {"reason": "review"},
                             token=token)

    def wait_ready(self, cid):
        deadline = time.time() + 30
        while time.time() < deadline:
            c = self.srv.json("GET", f"/api/v1/compute/{cid}", token=self.ds)[2]
            if c["state"] in ("ready", "failed"):
                return c
            time.sleep(0.2)
        self.fail(f"compute {cid} still {c['state']}")

    def scale(self, cid, token, nodes):
        st, _, c = self.srv.json("PATCH", f"/api/v1/compute/{cid}", {"max_nodes": nodes},
                                 token=token)
        self.assertEqual((st, c.get("state")), (200, "pending_approval"), c)
        return c

    def audit(self, cid, **match):
        _, _, page = self.srv.json("GET", f"/api/v1/audit?subject=compute/{cid}&limit=200",
                                   token=self.ada)
        return [e for e in page["items"] if all(e.get(k) == v for k, v in match.items())]

    def test_admin_cannot_approve_own_scale_up(self):
        # the reproduction: dana's 2 nodes, approved by ada; ada scales to 500 and approves
        c = self.ask("cl-ds3", self.ds)
        st, _, _ = self.decide(c["id"], self.ada)
        self.assertIn(st, (200, 202))
        self.assertEqual(self.wait_ready(c["id"])["state"], "ready")
        s = self.scale(c["id"], self.ada, 500)
        self.assertGreater(s["monthly_estimate_usd"], 100000)
        st, _, prob = self.decide(c["id"], self.ada)
        self.assertEqual(st, 403, prob)
        self.assertEqual(prob["type"].rsplit("/", 1)[1], "four-eyes")
        self.assertEqual((s["requested_by"], s.get("change_requested_by")),
                         (self.oid["ds"], self.oid["ada"]))
        st, _, prob = self.decide(c["id"], self.ada, "reject")
        self.assertEqual(st, 403, prob)
        self.assertTrue(self.audit(c["id"], actor_oid=self.oid["ada"], outcome="denied",
                                   status=403))
        # another admin decides it, and the audit says whose change that was
        st, _, d = self.decide(c["id"], self.bo, "reject")
        self.assertEqual((st, d["state"], d["max_nodes"]), (200, "ready", 2), d)
        rows = self.audit(c["id"], action="compute.reject", actor_oid=self.oid["bo"])
        self.assertEqual(len(rows), 1, rows)
        self.assertIn(self.oid["ada"], rows[0]["reason"])

    def test_a_scale_up_is_not_decided_by_the_data_scientist_who_asked_for_it_as_admin(self):
        # one person with both roles: asking as a data scientist, deciding as an admin
        both = self.srv.token("dual-person", "DataScientist,PlatformAdmin")
        c = self.ask("cl-dual", self.ds)
        self.decide(c["id"], self.bo)
        self.assertEqual(self.wait_ready(c["id"])["state"], "ready")
        self.scale(c["id"], both, 400)
        st, _, prob = self.decide(c["id"], both)
        self.assertEqual(st, 403, prob)

    def test_requester_admin_may_approve_someone_elses_scale_up(self):
        # the reverse misfire: ada asked for the compute, dana asks for the scale-up
        c = self.ask("cl-rev", self.ada)
        st, _, _ = self.decide(c["id"], self.ada)
        self.assertEqual(st, 403)  # her own request, still
        self.decide(c["id"], self.bo)
        self.assertEqual(self.wait_ready(c["id"])["state"], "ready")
        s = self.scale(c["id"], self.ds, 6)
        st, _, d = self.decide(c["id"], self.ada)
        self.assertIn(st, (200, 202), d)
        self.assertEqual(s.get("change_requested_by"), self.oid["ds"])
        self.assertEqual(d["decided_by"], self.oid["ada"])
        rows = self.audit(c["id"], action="compute.approve", actor_oid=self.oid["ada"])
        self.assertTrue(rows and self.oid["ds"] in rows[0]["reason"], rows)


if __name__ == "__main__":
    if len(sys.argv) < 2 or not os.environ.get("ROASTERY_TEST_DATABASE_URL"):
        print("usage: ROASTERY_TEST_DATABASE_URL=... four_eyes_test.py BINARY", file=sys.stderr)
        sys.exit(77)
    http_test.BINARY = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
