#!/usr/bin/env python3
"""The Azure ML executor end to end: the real server with ROASTERY_EXECUTOR=azure against the
Azure ML contract stub (tests/azure-stub: Microsoft's published examples, every request body
checked against the published schema), Azurite as the workspace's blob datastore and the
recording fake terraform for the cluster. This test plays the Azure ML compute: it reads the
job the server submitted, downloads the data asset the job names, runs the job's own command
(`roastery train ...`) and uploads the outputs where the job said, then lets the stub report the
job Completed. Paths: happy (with throttled polls), failed, canceled, a 4xx on submission, and a
duplicate submission after a crash."""
import base64
import datetime
import hashlib
import hmac
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import http_test  # noqa: E402
from http_test import Server, fresh_database, psql  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STUB = os.path.join(ROOT, "tests", "azure-stub")
AZURITE = os.path.join(ROOT, "tools", "node_modules", ".bin", "azurite-blob")
FAKE_TERRAFORM = os.path.join(ROOT, "tests", "fake-terraform")
ACCOUNT = "devstoreaccount1"
# Azurite's published development key (not a secret).
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
CONTAINER = "azureml-blobstore-roastery-test"
P = "/api/v1/projects/demand"


def wait_port_file(path, proc, what):
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited during start-up")
        if os.path.exists(path):
            with open(path) as f:
                text = f.read().strip()
            if text:
                return int(text)
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not start")


class Blob:
    """Just enough of the Blob service (Shared Key) to play the compute."""

    def __init__(self, port):
        self.base = f"http://127.0.0.1:{port}/{ACCOUNT}"

    def _call(self, method, name, body=b""):
        path = f"/{ACCOUNT}/{CONTAINER}/{urllib.parse.quote(name)}"
        date = datetime.datetime.now(datetime.timezone.utc).strftime("%a, %d %b %Y %H:%M:%S GMT")
        hdrs = {"x-ms-date": date, "x-ms-version": "2021-08-06"}
        if method == "PUT":
            hdrs["x-ms-blob-type"] = "BlockBlob"
        length = str(len(body)) if body else ""
        canon = "".join(f"{k}:{v}\n" for k, v in sorted(hdrs.items()))
        sts = "\n".join([method, "", "", length, "", "application/octet-stream" if body else "",
                         "", "", "", "", "", ""]) + "\n" + canon + f"/{ACCOUNT}{path}"
        sig = base64.b64encode(hmac.new(base64.b64decode(KEY), sts.encode(),
                                        hashlib.sha256).digest()).decode()
        hdrs["Authorization"] = f"SharedKey {ACCOUNT}:{sig}"
        if body:
            hdrs["Content-Type"] = "application/octet-stream"
        req = urllib.request.Request(f"http://127.0.0.1:{self.port()}{path}", data=body or None,
                                     headers=hdrs, method=method)
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.read()

    def port(self):
        return urllib.parse.urlparse(self.base).port

    def get(self, name):
        return self._call("GET", name)

    def put(self, name, data):
        self._call("PUT", name, data)


def datastore_path(uri):
    """azureml://datastores/<ds>/paths/<path> -> <path>"""
    prefix = "azureml://datastores/workspaceblobstore/paths/"
    assert uri.startswith(prefix), uri
    return uri[len(prefix):]


class AzureExecutorTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="roastery-azure-")
        # Azurite: the storage account behind the workspace datastore
        az_port = http_test.free_port()
        cls.azurite = subprocess.Popen(
            [AZURITE, "--blobHost", "127.0.0.1", "--blobPort", str(az_port), "--location",
             os.path.join(cls.tmp, "azurite"), "--silent", "--skipApiVersionCheck", "--loose",
             "--disableTelemetry"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cls.blob = Blob(az_port)
        # the ARM + token stub, its datastore in Azurite's account
        port_file = os.path.join(cls.tmp, "stub.port")
        cls.stub = subprocess.Popen([STUB, "--port", "0", "--port-file", port_file,
                                     "--datastore-account", ACCOUNT, "--datastore-container",
                                     CONTAINER], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
        cls.stub_url = f"http://127.0.0.1:{wait_port_file(port_file, cls.stub, 'azure-stub')}"
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(cls.blob.base + "?comp=list", timeout=1)
            except urllib.error.HTTPError:
                break  # answering (403 without a signature)
            except OSError:
                if time.time() > deadline:
                    raise RuntimeError("azurite did not start")
                time.sleep(0.1)
        cls.db = fresh_database("azure_executor")
        cls.env = {
            "ROASTERY_DATABASE_URL": cls.db, "ROASTERY_WORKERS": "3", "ROASTERY_LEASE_SECONDS": "3",
            "ROASTERY_EXECUTOR": "azure", "ROASTERY_TERRAFORM_BIN": FAKE_TERRAFORM,
            "FAKE_TERRAFORM_LOG": os.path.join(cls.tmp, "tf.jsonl"),
            "ROASTERY_TERRAFORM_ENV": "FAKE_TERRAFORM_*",  # the fake's own knobs
            "FAKE_TERRAFORM_STATE_DIR": os.path.join(cls.tmp, "tf-state"),
            "ROASTERY_ARM_ENDPOINT": cls.stub_url, "ROASTERY_AAD_AUTHORITY": cls.stub_url,
            "ROASTERY_AZURE_TENANT_ID": "00000000-0000-0000-0000-00000000aaaa",
            "ROASTERY_AZURE_CLIENT_ID": "11111111-2222-3333-4444-555555555555",
            "ROASTERY_AZURE_CLIENT_SECRET": "stub-client-secret",
            "ROASTERY_AZURE_SUBSCRIPTION_ID": "00000000-1111-2222-3333-444444444444",
            "ROASTERY_AZURE_RESOURCE_GROUP": "rg-ml", "ROASTERY_AZUREML_WORKSPACE": "ws-globojava",
            "ROASTERY_AZURE_LOCATION": "westeurope",
            "ROASTERY_AZUREML_DATASTORE_CONNECTION":
                f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
                f"BlobEndpoint={cls.blob.base};",
            "ROASTERY_TRAINER_IMAGE": "roasteryacr.azurecr.io/roastery-trainer:0.1.0",
            "ROASTERY_AZUREML_POLL_SECONDS": "1",
        }
        os.makedirs(cls.env["FAKE_TERRAFORM_STATE_DIR"])
        cls.srv = Server(cls.env)
        cls.ds = cls.srv.token("dana-scientist", "DataScientist")
        cls.admin = cls.srv.token("ada-admin", "PlatformAdmin")
        assert cls.srv.json("POST", "/api/v1/projects", {"id": "demand", "display_name": "D"},
                            token=cls.ds)[0] == 201
        _, hdrs, _ = cls.srv.json("GET", P, token=cls.admin)
        assert cls.srv.json("PATCH", P, {"monthly_budget_usd": 5000}, {"If-Match": hdrs["etag"]},
                            token=cls.admin)[0] == 200
        assert cls.srv.json("PUT", P + "/quotas/standardDSv2Family", {"max_nodes": 8},
                            token=cls.admin)[0] == 200
        assert cls.srv.json("POST", P + "/datasets", {"name": "sales"}, token=cls.ds)[0] == 201
        csv = subprocess.run([http_test.BINARY, "generate-sales", "--stores", "3", "--products",
                              "3", "--start", "2022-01-01", "--end", "2023-12-31", "--seed", "5"],
                             capture_output=True, check=True).stdout
        st, hdrs, v = cls.srv.json("POST", P + "/datasets/sales/versions", csv,
                                   {"Content-Type": "text/csv"}, token=cls.ds)
        assert st == 202, v
        cls.ingest_op = hdrs["location"]
        cls.version = cls.wait_for(lambda: cls.srv.json(
            "GET", P + "/datasets/sales/versions/1", token=cls.ds)[2],
            lambda v: v["state"] not in ("pending", "ingesting"))
        st, _, c = cls.srv.json("POST", P + "/compute", {"name": "gpu-less", "kind": "cluster",
                                                         "vm_size": "Standard_DS3_v2",
                                                         "region": "eastus",
                                                         "max_nodes": 2}, token=cls.ds)
        assert st == 202, c
        cls.wait_for(lambda: cls.srv.json("GET", f"/api/v1/compute/{c['id']}", token=cls.ds)[2],
                     lambda c: c["state"] == "ready")

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()
        for p in (cls.stub, cls.azurite):
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=10)
        shutil.rmtree(cls.srv.data_dir, ignore_errors=True)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @staticmethod
    def wait_for(get, done, timeout=90):
        deadline = time.time() + timeout
        while True:
            v = get()
            if done(v):
                return v
            if time.time() > deadline:
                raise AssertionError(f"still {v}")
            time.sleep(0.2)

    # -- the stub

    def stub_call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.stub_url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            raw = r.read()
            return json.loads(raw) if raw else None

    def stub_requests(self):
        return self.stub_call("GET", "/_stub/requests")["requests"]

    def hold_jobs(self, statuses):
        self.stub_call("POST", "/_stub/config", {"job_statuses": statuses})

    # -- runs

    def start_run(self, params=None, status=202):
        st, _, run = self.srv.json("POST", P + "/runs", {
            "dataset": "sales", "compute": "gpu-less", "experiment": "azure",
            "params": params or {"num_round": 30}}, token=self.ds)
        self.assertEqual(st, status, run)
        return run

    def get_run(self, run_id):
        return self.srv.json("GET", f"/api/v1/runs/{run_id}", token=self.ds)[2]

    def job_put(self, run_id):
        """The job body the server sent for the run, as the stub received it."""
        name = f"roastery-run-{run_id}"
        puts = [r for r in self.stub_requests()
                if r["method"] == "PUT" and r["path"].endswith(f"/jobs/{name}")]
        return puts

    def play_compute(self, body):
        """Runs the submitted command job as Azure ML would on the cluster."""
        props = body["properties"]
        work = tempfile.mkdtemp(dir=self.tmp)
        asset = props["inputs"]["sales"]["uri"]  # azureml:demand-sales:1
        _, name, version = asset.split(":")
        state = self.stub_call("GET", "/_stub/state")
        data = [r for k, r in state["resources"].items()
                if k.lower().endswith(f"/data/{name}/versions/{version}".lower())]
        self.assertEqual(len(data), 1, f"the data asset {asset} the job names exists")
        src = datastore_path(data[0]["body"]["properties"]["dataUri"])
        inp = os.path.join(work, "sales.csv")
        with open(inp, "wb") as f:
            f.write(self.blob.get(src))
        out = os.path.join(work, "out")
        os.makedirs(out)
        cmd = props["command"].replace("${{inputs.sales}}", shlex.quote(inp)).replace(
            "${{outputs.model}}", shlex.quote(out))
        self.assertTrue(cmd.startswith("roastery train "), cmd)
        cmd = shlex.quote(http_test.BINARY) + cmd[len("roastery"):]
        subprocess.run(["sh", "-c", cmd], check=True, capture_output=True)
        dest = datastore_path(props["outputs"]["model"]["uri"]).rstrip("/")
        for f in os.listdir(out):
            with open(os.path.join(out, f), "rb") as fh:
                self.blob.put(f"{dest}/{f}", fh.read())
        shutil.rmtree(work)

    def test_a_dataset_versions_are_published_as_data_assets(self):
        _, _, op = self.srv.json("GET", self.ingest_op, token=self.ds)
        steps = {a["step"]: a for a in op["actions"]}
        self.assertEqual(steps["azureml-upload"]["state"], "succeeded", steps)
        self.assertEqual(steps["azureml-data"]["target"], "azureml")
        sent = steps["azureml-data"]["response"]["requests"]
        self.assertTrue(sent[-1]["url"].endswith("/data/demand-sales/versions/1"
                                                 "?api-version=2025-12-01"), sent[-1]["url"])
        uri = sent[-1]["body"]["properties"]["dataUri"]
        self.assertEqual(uri, "azureml://datastores/workspaceblobstore/paths/roastery/projects/"
                              "demand/datasets/sales/versions/1/canonical.csv")
        got = self.blob.get(datastore_path(uri))
        self.assertEqual(hashlib.sha256(got).hexdigest(), self.version["canonical_sha256"])

    def test_b_happy_path_with_throttled_polls(self):
        self.hold_jobs(["Queued", "Running"])
        self.stub_call("POST", "/_stub/faults", {"match": "/jobs/roastery-run-", "method": "GET",
                                                 "status": 429, "retry_after": 1, "times": 2})
        run = self.start_run()
        running = self.wait_for(lambda: self.get_run(run["id"]), lambda r: r["state"] == "running")
        self.assertEqual(running["azure_job"]["name"], f"roastery-run-{run['id']}")
        self.assertEqual(running["azure_job"]["status"], "Running")
        puts = self.job_put(run["id"])
        self.assertEqual(len(puts), 1)
        body = puts[0]["body"]
        self.assertEqual(body["properties"]["jobType"], "Command")
        self.assertEqual(body["properties"]["computeId"].rsplit("/", 1)[-1], "gpu-less")
        self.assertEqual(body["properties"]["inputs"]["sales"]["uri"], "azureml:demand-sales:1")
        self.play_compute(body)
        self.hold_jobs(["Queued", "Running", "Completed"])
        done = self.wait_for(lambda: self.get_run(run["id"]),
                             lambda r: r["state"] in ("completed", "failed", "canceled"))
        self.assertEqual(done["state"], "completed", done.get("error"))
        self.assertEqual(done["azure_job"]["status"], "Completed")
        self.assertGreater(done["metrics"]["overall"]["wape"], 0)
        names = {a["name"] for a in done["artifacts"]}
        self.assertTrue({"model.json", "features.json", "metrics.json", "run.json"} <= names)
        self.assertEqual(done["lineage"]["input_sha256"], self.version["canonical_sha256"])
        _, _, log = self.srv.request("GET", f"/api/v1/runs/{run['id']}/logs", token=self.ds)
        self.assertIn(b"submitted Azure ML job roastery-run-", log)
        self.assertIn(b"Running -> Completed", log)
        _, _, op = self.srv.json("GET", f"/api/v1/operations/{done['operation_id']}",
                                 token=self.ds)
        steps = [a["step"] for a in op["actions"]]
        self.assertEqual(steps, ["azureml-upload", "azureml-data", "submit", "wait", "fetch"])
        throttled = [r for r in self.stub_requests() if r.get("fault") and r["status"] == 429]
        self.assertGreaterEqual(len(throttled), 2, "the throttled polls were retried")
        # the run's model promotes through Azure ML like any other
        st, _, mv = self.srv.json("POST", P + "/models", {"name": "demand"}, token=self.ds)
        self.assertIn(st, (201, 409), mv)
        st, _, mv = self.srv.json("POST", P + "/models/demand/versions", {"run_id": run["id"]},
                                  token=self.ds)
        self.assertEqual(st, 201, mv)

    def test_c_failed_job_fails_the_run(self):
        self.hold_jobs(["Queued", "Running", "Failed"])
        run = self.start_run({"num_round": 20})
        done = self.wait_for(lambda: self.get_run(run["id"]),
                             lambda r: r["state"] in ("completed", "failed", "canceled"))
        self.assertEqual(done["state"], "failed")
        self.assertEqual(done["error"]["code"], "azureml_job_failed")
        self.assertEqual(done["error"]["azure_status"], "Failed")

    def test_d_cancel_is_passed_on_to_azure(self):
        self.hold_jobs(["Queued", "Running"])
        run = self.start_run({"num_round": 21})
        self.wait_for(lambda: self.get_run(run["id"]), lambda r: r["state"] == "running")
        st, _, _ = self.srv.json("POST", f"/api/v1/runs/{run['id']}/cancel", {}, token=self.ds)
        self.assertEqual(st, 202)
        done = self.wait_for(lambda: self.get_run(run["id"]),
                             lambda r: r["state"] in ("completed", "failed", "canceled"))
        self.assertEqual(done["state"], "canceled")
        cancels = [r for r in self.stub_requests() if r["method"] == "POST"
                   and r["path"].endswith(f"/jobs/roastery-run-{run['id']}/cancel")]
        self.assertEqual(len(cancels), 1)

    def test_e_a_refused_submission_fails_with_arms_code(self):
        self.stub_call("POST", "/_stub/faults", {"match": "/jobs/roastery-run-", "method": "PUT",
                                                 "status": 400, "code": "ComputeNotFound",
                                                 "message": "compute gpu-less is gone"})
        run = self.start_run({"num_round": 22})
        done = self.wait_for(lambda: self.get_run(run["id"]),
                             lambda r: r["state"] in ("completed", "failed", "canceled"))
        self.assertEqual(done["state"], "failed")
        _, _, op = self.srv.json("GET", f"/api/v1/operations/{done['operation_id']}",
                                 token=self.ds)
        self.assertEqual(op["error"]["code"], "ComputeNotFound")
        self.assertIn("compute gpu-less is gone", op["error"]["message"])
        submit = [a for a in op["actions"] if a["step"] == "submit"][0]
        self.assertEqual(submit["response"]["error"]["code"], "ComputeNotFound")

    def test_f_duplicate_submission_after_a_crash_adopts_the_job(self):
        self.hold_jobs(["Queued", "Running"])
        before = self.stub_call("GET", "/_stub/state")["counters"]["job_creates"]
        run = self.start_run({"num_round": 23})
        self.wait_for(lambda: self.get_run(run["id"]), lambda r: r["state"] == "running")
        # the server dies; its record of the submission is lost, as if it died mid-call
        self.srv.proc.send_signal(signal.SIGKILL)
        self.srv.proc.wait()
        psql(self.db, "UPDATE operation_actions SET state = 'running', response = NULL"
                      " WHERE step = 'submit' AND operation_id = (SELECT operation_id FROM runs"
                      " WHERE id = :'v1'); UPDATE runs SET azure_job = NULL WHERE id = :'v1'",
             run["id"])
        type(self).srv = Server(self.env, data_dir=self.srv.data_dir)
        self.hold_jobs(["Queued", "Running"])
        self.wait_for(lambda: len(self.job_put(run["id"])), lambda n: n >= 2, timeout=60)
        body = self.job_put(run["id"])[-1]["body"]
        self.play_compute(body)
        self.hold_jobs(["Queued", "Running", "Completed"])
        done = self.wait_for(lambda: self.get_run(run["id"]),
                             lambda r: r["state"] in ("completed", "failed", "canceled"))
        self.assertEqual(done["state"], "completed", done.get("error"))
        after = self.stub_call("GET", "/_stub/state")["counters"]["job_creates"]
        self.assertEqual(after - before, 1, "one job, however many submissions")
        _, _, log = self.srv.request("GET", f"/api/v1/runs/{run['id']}/logs", token=self.ds)
        self.assertIn(b"adopted Azure ML job", log)


if __name__ == "__main__":
    if len(sys.argv) < 2 or not os.environ.get("ROASTERY_TEST_DATABASE_URL"):
        print("usage: ROASTERY_TEST_DATABASE_URL=... azure_test.py BINARY", file=sys.stderr)
        sys.exit(77)
    if not os.path.exists(AZURITE):
        print("azurite is not installed (scripts/install-deps)", file=sys.stderr)
        sys.exit(77)
    http_test.BINARY = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
