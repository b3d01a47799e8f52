#!/usr/bin/env python3
"""Compute requests end to end against the real server and PostgreSQL:
pricing, quota and budget decisions, four eyes, rejection, scaling, expiry,
and the Terraform translation carried out by the azure executor against
the recording fake terraform (tests/fake-terraform)."""
import json
import os
import shutil
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import http_test  # noqa: E402
from http_test import Server, fresh_database, psql  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FAKE_TERRAFORM = os.path.join(ROOT, "tests", "fake-terraform")


def module_variables(module):
    """The variable names of a module, read from its variables.tf."""
    names = set()
    with open(os.path.join(ROOT, "terraform", "modules", module, "variables.tf")) as f:
        for line in f:
            line = line.strip()
            if line.startswith("variable "):
                names.add(line.split('"')[1])
    return names


class ComputeBase(unittest.TestCase):
    env = {}

    @classmethod
    def setUpClass(cls):
        cls.db = fresh_database("compute_" + cls.__name__.lower())
        env = {"ROASTERY_DATABASE_URL": cls.db, "ROASTERY_WORKERS": "2",
               "ROASTERY_LEASE_SECONDS": "3"}
        env.update(cls.env)
        cls.srv = Server(env)
        cls.ds = cls.srv.token("dana-scientist", "DataScientist")
        cls.admin = cls.srv.token("ada-admin", "PlatformAdmin")
        cls.admin2 = cls.srv.token("bo-admin", "PlatformAdmin")
        cls.project = "forecast"
        status, _, _ = cls.srv.json("POST", "/api/v1/projects",
                                    {"id": cls.project, "display_name": "Forecast"}, token=cls.ds)
        assert status == 201, status

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()
        shutil.rmtree(cls.srv.data_dir, ignore_errors=True)

    def ask(self, body, token=None, status=None):
        st, hdrs, c = self.srv.json("POST", f"/api/v1/projects/{self.project}/compute", body,
                                    token=token or self.ds)
        if status is not None:
            self.assertEqual(st, status, c)
        return st, hdrs, c

    def wait(self, cid, states=("ready", "failed", "planned", "deleted"), timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            _, _, c = self.srv.json("GET", f"/api/v1/compute/{cid}", token=self.ds)
            if c["state"] in states:
                return c
            time.sleep(0.2)
        self.fail(f"compute {cid} still {c['state']}")

    def set_limits(self, budget, family=None, nodes=None):
        _, hdrs, p = self.srv.json("GET", f"/api/v1/projects/{self.project}", token=self.admin)
        st, _, _ = self.srv.json("PATCH", f"/api/v1/projects/{self.project}",
                                 {"monthly_budget_usd": budget},
                                 {"If-Match": hdrs["etag"]}, token=self.admin)
        self.assertEqual(st, 200)
        if family:
            st, _, q = self.srv.json("PUT", f"/api/v1/projects/{self.project}/quotas/{family}",
                                     {"max_nodes": nodes}, token=self.admin)
            self.assertEqual(st, 200, q)


class ComputeLocalTest(ComputeBase):
    """The default local executor: plans rendered and recorded, slots granted."""

    def test_a_prices_are_seeded_and_admin_editable(self):
        st, _, prices = self.srv.json("GET", "/api/v1/prices?region=eastus", token=self.ds)
        self.assertEqual(st, 200)
        ds3 = [p for p in prices["items"] if p["vm_size"] == "Standard_DS3_v2"][0]
        self.assertEqual(ds3["family"], "standardDSv2Family")
        self.assertGreater(ds3["dedicated_hourly_usd"], ds3["low_priority_hourly_usd"])
        body = {"family": "standardDSv2Family", "vcpus": 4, "memory_gib": 14,
                "dedicated_hourly_usd": 0.5, "low_priority_hourly_usd": 0.1}
        st, _, _ = self.srv.json("PUT", "/api/v1/prices/westeurope/Standard_DS3_v2", body,
                                 token=self.ds)
        self.assertEqual(st, 403)
        st, _, p = self.srv.json("PUT", "/api/v1/prices/westeurope/Standard_DS3_v2", body,
                                 token=self.admin)
        self.assertEqual((st, p["dedicated_hourly_usd"]), (201, 0.5))
        st, _, err = self.srv.json("PUT", "/api/v1/prices/westeurope/Standard_DS3_v2",
                                   {"family": "x"}, token=self.admin)
        self.assertEqual(st, 400)
        self.assertIn("vcpus", {e["field"] for e in err["errors"]})

    def test_b_over_quota_waits_for_another_admin(self):
        self.set_limits(0)
        st, hdrs, c = self.ask({"name": "train-big", "kind": "cluster",
                                "vm_size": "Standard_DS3_v2", "max_nodes": 4}, status=201)
        self.assertEqual(c["state"], "pending_approval")
        self.assertFalse(c["decision"]["quota"]["within"])
        self.assertFalse(c["decision"]["budget"]["within"])
        self.assertEqual(len(c["decision"]["reasons"]), 2)
        self.assertAlmostEqual(c["monthly_estimate_usd"], round(4 * c["hourly_usd"] * 730, 2))
        # nothing is rendered before approval
        st, _, _ = self.srv.json("GET", f"/api/v1/compute/{c['id']}/plan", token=self.ds)
        self.assertEqual(st, 404)
        # the approvals queue shows it to admins
        st, _, queue = self.srv.json("GET", "/api/v1/compute?state=pending_approval",
                                     token=self.admin)
        self.assertIn(c["id"], [x["id"] for x in queue["items"]])
        # a data scientist cannot approve
        st, _, _ = self.srv.json("POST", f"/api/v1/compute/{c['id']}/approve", {}, token=self.ds)
        self.assertEqual(st, 403)
        # an admin cannot approve their own request
        st, _, own = self.ask({"name": "admin-own", "kind": "cluster",
                               "vm_size": "Standard_DS3_v2", "max_nodes": 2}, token=self.admin,
                              status=201)
        st, _, p = self.srv.json("POST", f"/api/v1/compute/{own['id']}/approve", {},
                                 token=self.admin)
        self.assertEqual((st, p["type"].rsplit("/", 1)[1]), (403, "four-eyes"))
        # another admin can
        st, hdrs, a = self.srv.json("POST", f"/api/v1/compute/{c['id']}/approve",
                                    {"reason": "quarterly retrain"}, token=self.admin2)
        self.assertEqual(st, 202, a)
        self.assertTrue(hdrs["location"].startswith("/api/v1/operations/"))
        done = self.wait(c["id"])
        self.assertEqual(done["state"], "ready", done)
        self.assertEqual(done["decision_reason"], "quarterly retrain")
        # the plan is the module with exactly its variables
        st, _, plan = self.srv.json("GET", f"/api/v1/compute/{c['id']}/plan", token=self.ds)
        self.assertEqual(st, 200)
        self.assertEqual(plan["terraform"]["required_providers"]["azurerm"]["version"], "4.14.0")
        self.assertIn("azurerm", plan["terraform"]["backend"])
        args = dict(plan["module"]["compute"])
        source = args.pop("source")
        self.assertTrue(source.endswith("/terraform/modules/aml_compute_cluster"))
        self.assertEqual(set(args), module_variables("aml_compute_cluster"))
        self.assertEqual((args["max_nodes"], args["vm_priority"]), (4, "Dedicated"))
        # the operation shows the render and the local realisation
        _, _, op = self.srv.json("GET", hdrs["location"], token=self.ds)
        self.assertEqual([(a["step"], a["target"]) for a in op["actions"]],
                         [("render", "terraform"), ("provision", "local")])

    def test_c_rejection_keeps_the_reason(self):
        self.set_limits(0)
        _, _, c = self.ask({"name": "too-much", "kind": "cluster", "vm_size": "Standard_D8s_v3",
                            "max_nodes": 10}, status=201)
        st, _, err = self.srv.json("POST", f"/api/v1/compute/{c['id']}/reject", {},
                                   token=self.admin)
        self.assertEqual((st, err["errors"][0]["field"]), (400, "reason"))
        st, _, r = self.srv.json("POST", f"/api/v1/compute/{c['id']}/reject",
                                 {"reason": "use low priority"}, token=self.admin)
        self.assertEqual((st, r["state"], r["decision_reason"]),
                         (200, "rejected", "use low priority"))
        st, _, _ = self.srv.json("POST", f"/api/v1/compute/{c['id']}/approve", {},
                                 token=self.admin2)
        self.assertEqual(st, 409)
        # the name is free again once deleted
        st, _, d = self.srv.json("DELETE", f"/api/v1/compute/{c['id']}", token=self.ds)
        self.assertEqual((st, d["state"]), (200, "deleted"))
        self.ask({"name": "too-much", "kind": "local", "max_nodes": 1}, status=202)

    def test_d_within_quota_and_budget_is_automatic_then_scales(self):
        self.set_limits(5000, "standardDSv3Family", 6)
        st, _, c = self.ask({"name": "auto-ok", "kind": "cluster", "vm_size": "Standard_D4s_v3",
                             "max_nodes": 2, "priority": "low_priority"}, status=202)
        self.assertTrue(c["decision"]["automatic"])
        c = self.wait(c["id"])
        self.assertEqual(c["state"], "ready")
        self.assertGreater(c["project_committed_usd"], 0)
        # scale within the quota: automatic again
        st, hdrs, _ = self.srv.json("GET", f"/api/v1/compute/{c['id']}", token=self.ds)
        st, _, s = self.srv.json("PATCH", f"/api/v1/compute/{c['id']}", {"max_nodes": 3},
                                 {"If-Match": hdrs["etag"]}, token=self.ds)
        self.assertEqual(st, 202, s)
        self.assertEqual(self.wait(c["id"])["max_nodes"], 3)
        # a stale ETag is refused
        st, _, _ = self.srv.json("PATCH", f"/api/v1/compute/{c['id']}", {"max_nodes": 2},
                                 {"If-Match": hdrs["etag"]}, token=self.ds)
        self.assertEqual(st, 412)
        # beyond the quota: pending; rejected, it stays as carried out
        st, _, s = self.srv.json("PATCH", f"/api/v1/compute/{c['id']}", {"max_nodes": 9},
                                 token=self.ds)
        self.assertEqual((st, s["state"]), (200, "pending_approval"))
        st, _, r = self.srv.json("POST", f"/api/v1/compute/{c['id']}/reject",
                                 {"reason": "not this month"}, token=self.admin)
        self.assertEqual((r["state"], r["max_nodes"]), ("ready", 3))
        # deletion goes through an operation
        st, hdrs, d = self.srv.json("DELETE", f"/api/v1/compute/{c['id']}", token=self.ds)
        self.assertEqual((st, d["state"]), (202, "deleting"))
        self.assertEqual(self.wait(c["id"], ("deleted",))["state"], "deleted")

    def test_e_expiry_deletes(self):
        _, _, now = self.srv.json("GET", "/healthz", token=None)
        expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 2))
        _, _, c = self.ask({"name": "short-lived", "kind": "local", "max_nodes": 1,
                            "expires_at": expires}, status=202)
        self.assertEqual(self.wait(c["id"])["state"], "ready")
        gone = self.wait(c["id"], ("deleted",), timeout=30)
        self.assertEqual(gone["state"], "deleted")
        admin_audit = self.srv.json("GET", f"/api/v1/audit?subject=compute/{c['id']}",
                                    token=self.admin)[2]
        self.assertIn("compute.expire", [e["action"] for e in admin_audit["items"]])

    def test_f_bad_requests_name_the_field(self):
        cases = [({"name": "Bad_Name", "kind": "cluster", "vm_size": "Standard_DS3_v2"}, "name"),
                 ({"name": "ok-name", "kind": "gpu"}, "kind"),
                 ({"name": "ok-name", "kind": "cluster", "vm_size": "Standard_Nope"}, "vm_size"),
                 ({"name": "ok-name", "kind": "cluster"}, "vm_size"),
                 ({"name": "ok-name", "kind": "cluster", "vm_size": "Standard_DS3_v2",
                   "min_nodes": 3, "max_nodes": 2}, "min_nodes"),
                 ({"name": "ok-name", "kind": "instance", "vm_size": "Standard_DS3_v2",
                   "max_nodes": 2}, "max_nodes"),
                 ({"name": "ok-name", "kind": "local", "expires_at": "2001-01-01T00:00:00Z"},
                  "expires_at"),
                 ({"name": "ok-name", "kind": "local", "expires_at": "soon"}, "expires_at"),
                 ({"name": "ok-name", "kind": "local", "colour": "red"}, "colour")]
        for body, field in cases:
            st, _, p = self.ask(body)
            self.assertEqual(st, 400, (body, p))
            self.assertIn(field, [e["field"] for e in p["errors"]], body)

    def test_g_store_managers_never_see_compute(self):
        mgr = self.srv.token("sam-manager", "StoreManager")
        _, _, me = self.srv.json("GET", "/api/v1/me", token=mgr)
        self.srv.json("PUT", f"/api/v1/projects/{self.project}/members/{me['oid']}",
                      {"role": "reader"}, token=self.admin)
        self.assertEqual(self.srv.json("GET", f"/api/v1/projects/{self.project}/compute",
                                       token=mgr)[0], 404)
        self.assertEqual(self.srv.json("GET", "/api/v1/compute", token=mgr)[0], 403)


class ComputeAzureTest(ComputeBase):
    """The azure executor running the recording fake terraform."""
    tf_log = tempfile.mktemp(prefix="fake-terraform-", suffix=".jsonl")
    tf_state = tempfile.mkdtemp(prefix="fake-terraform-state-")
    env = {"ROASTERY_EXECUTOR": "azure", "ROASTERY_TERRAFORM_BIN": FAKE_TERRAFORM,
           "ROASTERY_TERRAFORM_TIMEOUT_SECONDS": "5", "FAKE_TERRAFORM_LOG": tf_log,
           "ROASTERY_TERRAFORM_ENV": "FAKE_TERRAFORM_*",  # the fake's own knobs
           "FAKE_TERRAFORM_STATE_DIR": tf_state,
           "ROASTERY_AZURE_SUBSCRIPTION_ID": "11111111-2222-3333-4444-555555555555",
           "ROASTERY_AZURE_RESOURCE_GROUP": "rg-ml", "ROASTERY_AZUREML_WORKSPACE": "ws-globojava"}

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        shutil.rmtree(cls.tf_state, ignore_errors=True)
        if os.path.exists(cls.tf_log):
            os.unlink(cls.tf_log)

    def calls(self):
        if not os.path.exists(self.tf_log):
            return []
        with open(self.tf_log) as f:
            return [json.loads(line) for line in f if line.strip()]

    def test_a_apply_then_destroy(self):
        self.set_limits(5000, "standardDSv2Family", 8)
        before = len(self.calls())
        st, hdrs, c = self.ask({"name": "tf-cluster", "kind": "cluster",
                                "vm_size": "Standard_DS3_v2", "max_nodes": 2}, status=202)
        c = self.wait(c["id"])
        self.assertEqual(c["state"], "ready", c)
        self.assertEqual(c["plan_summary"]["add"], 1)
        self.assertTrue(c["arm_id"].endswith("/workspaces/ws-globojava/computes/tf-cluster"),
                        c["arm_id"])
        cmds = [call["args"][0] for call in self.calls()[before:]]
        self.assertEqual(cmds, ["init", "plan", "show", "apply", "output"])
        workdir = self.calls()[-1]["cwd"]
        self.assertFalse(os.path.exists(workdir), "the working directory is cleaned")
        _, _, op = self.srv.json("GET", hdrs["location"], token=self.ds)
        self.assertEqual([a["step"] for a in op["actions"]], ["render", "plan", "apply"])
        apply = op["actions"][2]
        self.assertIn("Apply complete", json.dumps(apply["response"]))
        # scaling plans a change of the same resource
        st, _, _ = self.srv.json("PATCH", f"/api/v1/compute/{c['id']}", {"max_nodes": 3},
                                 token=self.ds)
        self.assertEqual(st, 202)
        c = self.wait(c["id"])
        self.assertEqual((c["state"], c["plan_summary"]["change"]), ("ready", 1), c)
        # and deleting destroys it
        before = len(self.calls())
        self.srv.json("DELETE", f"/api/v1/compute/{c['id']}", token=self.ds)
        self.assertEqual(self.wait(c["id"], ("deleted", "failed"))["state"], "deleted")
        self.assertEqual([call["args"][0] for call in self.calls()[before:]],
                         ["init", "destroy"])

    def test_b_a_failing_apply_fails_with_the_tools_message(self):
        self.set_limits(5000, "standardDSv2Family", 8)
        _, _, c = self.ask({"name": "tf-fail-apply", "kind": "cluster",
                            "vm_size": "Standard_DS3_v2", "max_nodes": 1}, status=202)
        c = self.wait(c["id"])
        self.assertEqual((c["state"], c["failure"]["step"]), ("failed", "apply"), c)
        self.assertIn("terraform apply failed", c["failure"]["message"])
        self.assertIn("Error:", c["failure"]["message"])
        st, hdrs, r = self.srv.json("POST", f"/api/v1/compute/{c['id']}/retry", {},
                                    token=self.ds)
        self.assertEqual(st, 202)
        self.assertIn(r["state"], ("approved", "provisioning", "failed"))  # workers are quick
        self.assertEqual(self.wait(c["id"])["state"], "failed")

    def test_c_a_hanging_apply_times_out(self):
        self.set_limits(5000, "standardDSv2Family", 8)
        _, _, c = self.ask({"name": "tf-hang-apply", "kind": "cluster",
                            "vm_size": "Standard_DS3_v2", "max_nodes": 1}, status=202)
        c = self.wait(c["id"], timeout=60)
        self.assertEqual(c["state"], "failed", c)
        self.assertIn("timed out", c["failure"]["message"])


class ComputeNoTerraformTest(ComputeBase):
    env = {"ROASTERY_EXECUTOR": "azure", "ROASTERY_TERRAFORM_BIN": "/nonexistent/terraform"}

    def test_refused_at_request_time(self):
        st, _, p = self.ask({"name": "needs-tf", "kind": "cluster",
                             "vm_size": "Standard_DS3_v2"})
        self.assertEqual((st, p["type"].rsplit("/", 1)[1]), (503, "executor-unavailable"))
        self.assertIn("terraform", p["detail"])
        # local compute needs no terraform
        self.ask({"name": "slots", "kind": "local", "max_nodes": 1}, status=202)


if __name__ == "__main__":
    http_test.BINARY = os.path.abspath(sys.argv.pop(1))
    if not http_test.BASE_URL:
        sys.exit(77)
    result = unittest.main(exit=False, verbosity=2).result
    sys.exit(0 if result.wasSuccessful() else 1)
