#!/usr/bin/python3
"""Self-test of tests/fake-terraform, the recording stand-in for terraform.

    /usr/bin/python3 tests/terraform/fake_terraform_test.py [-v]

Standard library only; needs no network, no terraform and no Azure.
"""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FAKE = os.path.join(ROOT, "tests", "fake-terraform")
MODULES = os.path.join(ROOT, "terraform", "modules")
SUB = "11111111-2222-3333-4444-555555555555"
WS = f"/subscriptions/{SUB}/resourceGroups/ml-rg/providers/Microsoft.MachineLearningServices/workspaces/ml-ws"


def root_module(kind="aml_compute_cluster", key="computes/1.tfstate", **args):
    """A root main.tf.json like the one the server renders."""
    if kind == "aml_compute_cluster":
        base = {"name": "cpu-train", "location": "westeurope", "workspace_id": WS, "vm_size": "Standard_DS3_v2",
                "vm_priority": "LowPriority", "min_nodes": 0, "max_nodes": 4, "idle_minutes": 30,
                "subnet_id": None, "tags": None}
    elif kind == "aml_inference_cluster":
        base = {"name": "scoring", "location": "westeurope", "resource_group_name": "ml-rg", "workspace_id": WS,
                "vm_size": "Standard_D4s_v3", "min_nodes": 3, "max_nodes": 6, "cluster_purpose": None,
                "subnet_id": None, "tags": None}
    else:
        base = {"name": "nb-alice", "location": "westeurope", "workspace_id": WS, "vm_size": "Standard_DS3_v2",
                "subnet_id": None, "assigned_user_object_id": None, "assigned_user_tenant_id": None, "tags": None}
    base.update(args)
    return {
        "terraform": {
            "required_version": ">= 1.5.0",
            "required_providers": {"azurerm": {"source": "hashicorp/azurerm", "version": "4.14.0"}},
            "backend": {"azurerm": {"resource_group_name": "roastery-tfstate", "storage_account_name": "roasterytf",
                                    "container_name": "tfstate", "key": key, "use_azuread_auth": True}},
        },
        "provider": {"azurerm": {"features": {}, "subscription_id": SUB}},
        "module": {"compute": {"source": os.path.join(MODULES, kind), **base}},
        "output": {o: {"value": "${module.compute.%s}" % o}
                   for o in {"aml_compute_cluster": ["id", "name", "principal_id"],
                             "aml_inference_cluster": ["id", "kubernetes_cluster_id"],
                             "aml_compute_instance": ["id"]}[kind]},
    }


class FakeTerraformTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="fake-tf-")
        self.work = os.path.join(self.tmp, "work")
        self.state_dir = os.path.join(self.tmp, "state")
        self.log = os.path.join(self.tmp, "log.jsonl")
        os.mkdir(self.work)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("FAKE_TERRAFORM_", "ARM_", "TF_"))}
        self.env.update(FAKE_TERRAFORM_LOG=self.log, FAKE_TERRAFORM_STATE_DIR=self.state_dir)

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def write(self, doc):
        with open(os.path.join(self.work, "main.tf.json"), "w") as f:
            json.dump(doc, f, indent=2)

    def tf(self, *args, ok=True, env=None, timeout=30):
        e = dict(self.env, **(env or {}))
        p = subprocess.run([FAKE, *args], cwd=self.work, env=e, capture_output=True, text=True, timeout=timeout)
        if ok is True:
            self.assertEqual(p.returncode, 0, f"terraform {' '.join(args)} failed:\n{p.stdout}\n{p.stderr}")
        elif ok is False:
            self.assertEqual(p.returncode, 1, f"terraform {' '.join(args)} should have failed:\n{p.stdout}\n{p.stderr}")
        return p

    def init_plan(self, *plan_flags, env=None):
        self.tf("init", "-input=false", "-no-color", env=env)
        return self.tf("plan", "-input=false", "-no-color", "-out=tfplan", *plan_flags, env=env)

    def log_lines(self):
        with open(self.log) as f:
            return [json.loads(line) for line in f]

    # ------------------------------------------------------------ the flow ---

    def test_full_lifecycle_of_a_compute_cluster(self):
        self.write(root_module())
        p = self.tf("version")
        self.assertEqual(p.stdout.splitlines()[:2], ["Terraform v1.9.8", "on linux_amd64"])

        p = self.tf("init", "-input=false", "-no-color")
        for line in ("Initializing the backend...", 'Successfully configured the backend "azurerm"!',
                     "Initializing modules...", "- compute in", "Initializing provider plugins...",
                     "- Installing hashicorp/azurerm v4.14.0...", "Terraform has been successfully initialized!"):
            self.assertIn(line, p.stdout)
        self.assertTrue(os.path.isdir(os.path.join(self.work, ".terraform")))
        with open(os.path.join(self.work, ".terraform.lock.hcl")) as f:
            self.assertIn('version     = "4.14.0"', f.read())

        p = self.tf("plan", "-input=false", "-no-color", "-out=tfplan")
        self.assertIn("Terraform will perform the following actions:", p.stdout)
        self.assertIn("Plan: 1 to add, 0 to change, 0 to destroy.", p.stdout)
        self.assertTrue(os.path.isfile(os.path.join(self.work, "tfplan")))

        p = self.tf("show", "-json", "tfplan")
        self.assertEqual(len(p.stdout.strip().splitlines()), 1)
        plan = json.loads(p.stdout)
        self.assertEqual(plan["format_version"], "1.2")
        self.assertEqual(plan["terraform_version"], "1.9.8")
        [rc] = plan["resource_changes"]
        self.assertEqual(rc["address"], "module.compute.azurerm_machine_learning_compute_cluster.this")
        self.assertEqual(rc["type"], "azurerm_machine_learning_compute_cluster")
        self.assertEqual(rc["change"]["actions"], ["create"])
        after = rc["change"]["after"]
        self.assertEqual(after["name"], "cpu-train")
        self.assertEqual(after["vm_priority"], "LowPriority")
        self.assertEqual(after["scale_settings"], [{"min_node_count": 0, "max_node_count": 4,
                                                    "scale_down_nodes_after_idle_duration": "PT30M"}])
        self.assertEqual(after["tags"], {})
        self.assertTrue(rc["change"]["after_unknown"]["id"])
        args = plan["configuration"]["root_module"]["module_calls"]["compute"]["expressions"]
        self.assertEqual(args["max_nodes"], {"constant_value": 4})

        p = self.tf("apply", "-input=false", "-no-color", "tfplan")
        self.assertIn("Apply complete! Resources: 1 added, 0 changed, 0 destroyed.", p.stdout)
        compute_id = WS + "/computes/cpu-train"
        self.assertIn(f"[id={compute_id}]", p.stdout)

        p = self.tf("output", "-json")
        outputs = json.loads(p.stdout)
        self.assertEqual(outputs["id"], {"sensitive": False, "type": "string", "value": compute_id})
        self.assertEqual(outputs["name"]["value"], "cpu-train")
        self.assertRegex(outputs["principal_id"]["value"], r"^[0-9a-f-]{36}$")

        # The same configuration again: nothing to do.
        p = self.tf("plan", "-input=false", "-no-color", "-out=tfplan", "-detailed-exitcode")
        self.assertIn("No changes.", p.stdout)

        # A changed argument: an in-place update.
        self.write(root_module(max_nodes=8))
        p = self.tf("plan", "-input=false", "-no-color", "-out=tfplan", "-detailed-exitcode", ok=None)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("Plan: 0 to add, 1 to change, 0 to destroy.", p.stdout)
        plan = json.loads(self.tf("show", "-json", "tfplan").stdout)
        self.assertEqual(plan["resource_changes"][0]["change"]["actions"], ["update"])
        self.assertIn("Apply complete! Resources: 0 added, 1 changed, 0 destroyed.",
                      self.tf("apply", "-input=false", "tfplan").stdout)

        # A plan of the destruction, shown but not applied.
        p = self.tf("plan", "-input=false", "-destroy", "-out=dplan")
        self.assertIn("Plan: 0 to add, 0 to change, 1 to destroy.", p.stdout)
        plan = json.loads(self.tf("show", "-json", "dplan").stdout)
        self.assertEqual(plan["resource_changes"][0]["change"]["actions"], ["delete"])
        self.assertIsNone(plan["resource_changes"][0]["change"]["after"])

        p = self.tf("destroy", "-input=false", "-auto-approve", "-no-color")
        self.assertIn("Destroy complete! Resources: 1 destroyed.", p.stdout)
        self.assertEqual(json.loads(self.tf("output", "-json").stdout), {})
        self.assertEqual(os.listdir(self.state_dir), [])

        # Every invocation was logged, with its arguments and directory.
        lines = self.log_lines()
        self.assertEqual(lines[0]["args"], ["version"])
        self.assertEqual(lines[1]["args"], ["init", "-input=false", "-no-color"])
        self.assertTrue(all(line["cwd"] == self.work for line in lines))
        self.assertTrue(all(isinstance(line["time"], float) for line in lines))
        self.assertEqual(len(lines), 14)

    def test_inference_cluster_creates_two_resources(self):
        self.write(root_module("aml_inference_cluster"))
        p = self.init_plan()
        self.assertIn("Plan: 2 to add, 0 to change, 0 to destroy.", p.stdout)
        plan = json.loads(self.tf("show", "-json", "tfplan").stdout)
        self.assertEqual([c["address"] for c in plan["resource_changes"]],
                         ["module.compute.azurerm_kubernetes_cluster.this",
                          "module.compute.azurerm_machine_learning_inference_cluster.this"])
        self.assertEqual(plan["resource_changes"][1]["change"]["after"]["cluster_purpose"], "FastProd")
        self.assertIn("Resources: 2 added", self.tf("apply", "-input=false", "tfplan").stdout)
        outputs = json.loads(self.tf("output", "-json").stdout)
        self.assertEqual(outputs["kubernetes_cluster_id"]["value"],
                         f"/subscriptions/{SUB}/resourceGroups/ml-rg/providers/Microsoft.ContainerService/managedClusters/scoring-aks")
        self.assertIn("Destroy complete! Resources: 2 destroyed.",
                      self.tf("destroy", "-input=false", "-auto-approve").stdout)

    def test_compute_instance(self):
        self.write(root_module("aml_compute_instance", name="nb-alice",
                               assigned_user_object_id="aaaaaaaa-0000-0000-0000-000000000000",
                               assigned_user_tenant_id="bbbbbbbb-0000-0000-0000-000000000000"))
        self.assertIn("Plan: 1 to add", self.init_plan().stdout)
        plan = json.loads(self.tf("show", "-json", "tfplan").stdout)
        after = plan["resource_changes"][0]["change"]["after"]
        self.assertEqual(after["virtual_machine_size"], "Standard_DS3_v2")
        self.assertEqual(after["assign_to_user"][0]["object_id"], "aaaaaaaa-0000-0000-0000-000000000000")
        self.assertNotIn("location", after)

    def test_state_survives_a_cleaned_working_directory(self):
        self.write(root_module(key="computes/7.tfstate"))
        self.init_plan()
        self.tf("apply", "-input=false", "tfplan")
        for name in os.listdir(self.work):
            if name != "main.tf.json":
                p = os.path.join(self.work, name)
                shutil.rmtree(p) if os.path.isdir(p) else os.unlink(p)
        p = self.init_plan()
        self.assertIn("Refreshing state...", p.stdout)
        self.assertIn("No changes.", p.stdout)
        self.assertEqual(json.loads(self.tf("output", "-json").stdout)["name"]["value"], "cpu-train")

    # ------------------------------------------------ terraform's own checks ---

    def test_plan_before_init_fails(self):
        self.write(root_module())
        p = self.tf("plan", "-input=false", "-out=tfplan", ok=False)
        self.assertIn('Error: Backend initialization required, please run "terraform init"', p.stderr)

    def test_missing_module_directory_fails_init(self):
        doc = root_module()
        doc["module"]["compute"]["source"] = os.path.join(self.tmp, "no-such-module")
        self.write(doc)
        p = self.tf("init", "-input=false", ok=False)
        self.assertIn("Error: Unreadable module directory", p.stderr)

    def test_module_arguments_are_checked(self):
        self.write(root_module(colour="blue"))
        self.tf("init", "-input=false")
        p = self.tf("plan", "-input=false", "-out=tfplan", ok=False)
        self.assertIn("Error: Unsupported argument", p.stderr)
        self.assertIn('An argument named "colour" is not expected here.', p.stderr)
        doc = root_module()
        del doc["module"]["compute"]["vm_size"]
        self.write(doc)
        p = self.tf("plan", "-input=false", "-out=tfplan", ok=False)
        self.assertIn('The argument "vm_size" is required', p.stderr)
        self.write(root_module(vm_size=None))
        p = self.tf("plan", "-input=false", "-out=tfplan", ok=False)
        self.assertIn("required variable may not be set to null", p.stderr)

    def test_bad_command_line(self):
        self.write(root_module())
        p = self.tf("frobnicate", ok=False)
        self.assertIn('Terraform has no command named "frobnicate".', p.stderr)
        p = self.tf("init", "-input=false", "-bogus", ok=False)
        self.assertIn("flag provided but not defined: -bogus", p.stderr)
        p = self.tf("init", ok=False)
        self.assertIn("-input=false", p.stderr)
        self.tf("init", "-input=false")
        p = self.tf("apply", "-input=false", "missing.tfplan", ok=False)
        self.assertIn("Failed to read the given file as a state or plan file", p.stderr)

    def test_a_stale_plan_is_refused(self):
        self.write(root_module())
        self.init_plan()
        self.tf("apply", "-input=false", "tfplan")
        p = self.tf("apply", "-input=false", "tfplan", ok=False)
        self.assertIn("Error: Saved plan is stale", p.stderr)

    # ------------------------------------------------------ failure modes ---

    def test_fail_by_environment(self):
        self.write(root_module(vm_size="Standard_XYZ"))
        self.init_plan()
        p = self.tf("apply", "-input=false", "-no-color", "tfplan", ok=False, env={"FAKE_TERRAFORM_FAIL": "apply"})
        self.assertIn("Error: creating Compute (Subscription:", p.stderr)
        self.assertIn("performing ComputeCreateOrUpdate: unexpected status 400 (400 Bad Request)", p.stderr)
        self.assertIn("InvalidPropertyValue: The vm size Standard_XYZ is not supported", p.stderr)
        # Nothing was created: the same plan applies cleanly afterwards.
        self.assertEqual(json.loads(self.tf("output", "-json").stdout), {})
        self.assertIn("Apply complete!", self.tf("apply", "-input=false", "tfplan").stdout)

    def test_fail_by_compute_name(self):
        self.write(root_module(name="tf-fail-destroy"))
        self.init_plan()
        self.tf("apply", "-input=false", "tfplan")
        p = self.tf("destroy", "-input=false", "-auto-approve", ok=False)
        self.assertIn("Error: deleting Compute", p.stderr)
        self.assertIn("409 Conflict", p.stderr)
        self.assertIn("Refreshing state...", p.stdout)

        self.write(root_module(name="tf-fail-init", key="computes/2.tfstate"))
        p = self.tf("init", "-input=false", "-reconfigure", ok=False)
        self.assertIn("Initializing the backend...", p.stdout)
        self.assertIn("Error: Failed to get existing workspaces", p.stderr)

    def test_hang_by_environment_is_cut_by_a_timeout(self):
        self.write(root_module())
        self.init_plan()
        start = time.monotonic()
        with self.assertRaises(subprocess.TimeoutExpired) as cm:
            self.tf("apply", "-input=false", "tfplan", env={"FAKE_TERRAFORM_HANG": "apply"}, timeout=2)
        self.assertLess(time.monotonic() - start, 10)
        stdout = cm.exception.stdout
        stdout = stdout.decode() if isinstance(stdout, bytes) else (stdout or "")
        self.assertEqual(stdout.strip(), "module.compute.azurerm_machine_learning_compute_cluster.this: Creating...")
        # Killed like that (SIGKILL), it leaves the state locked, as terraform
        # leaves the blob lease of an azurerm backend.
        p = self.tf("plan", "-input=false", "-out=tfplan", ok=False)
        self.assertIn("Error: Error acquiring the state lock", p.stderr)
        lock_id = [line.split()[-1] for line in p.stderr.splitlines() if line.strip().startswith("ID:")][0]
        self.tf("force-unlock", "-force", lock_id)
        self.tf("plan", "-input=false", "-out=tfplan")

    def test_hang_of_destroy_by_compute_name(self):
        self.write(root_module(name="tf-hang-destroy"))
        self.init_plan()
        self.tf("apply", "-input=false", "tfplan")
        with self.assertRaises(subprocess.TimeoutExpired) as cm:
            self.tf("destroy", "-input=false", "-auto-approve", timeout=2)
        stdout = cm.exception.stdout
        stdout = stdout.decode() if isinstance(stdout, bytes) else (stdout or "")
        self.assertEqual(stdout.strip(), "module.compute.azurerm_machine_learning_compute_cluster.this: "
                         f"Destroying... [id={WS}/computes/tf-hang-destroy]")

    def test_hang_by_compute_name_stops_on_sigterm(self):
        self.write(root_module(name="tf-hang-plan"))
        self.tf("init", "-input=false")
        proc = subprocess.Popen([FAKE, "plan", "-input=false", "-out=tfplan"], cwd=self.work, env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        first = proc.stdout.readline()
        self.assertTrue(first.strip())
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=10)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("Interrupt received.", stderr)
        # A terraform stopped that way releases its lock.
        self.write(root_module())
        self.tf("plan", "-input=false", "-out=tfplan")


if __name__ == "__main__":
    unittest.main()
