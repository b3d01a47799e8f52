#!/usr/bin/python3
"""Self-test of tests/azure-stub: the contract checks (token endpoint, bearer token,
api-version, schema), the state it keeps, its long-running operations and its fault
injection. Standard library only:  python3 tests/azure/stub_test.py"""

import base64
import json
import os
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
STUB = os.path.join(HERE, "..", "azure-stub")
TENANT = "00000000-0000-0000-0000-00000000aaaa"
CLIENT = "11111111-2222-3333-4444-555555555555"
SECRET = "stub-client-secret"
API = "2025-12-01"
WS = ("/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/test-rg/providers/"
      "Microsoft.MachineLearningServices/workspaces/my-aml-workspace")


class Stub:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="azure-stub-test.")
        port_file = os.path.join(self.dir, "port")
        self.proc = subprocess.Popen([sys.executable, STUB, "--port", "0", "--port-file", port_file],
                                     stdout=subprocess.DEVNULL)
        for _ in range(100):
            if os.path.exists(port_file):
                break
            time.sleep(0.05)
        with open(port_file) as f:
            self.base = "http://127.0.0.1:%d" % int(f.read())

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


def call(method, url, body=None, headers=None, form=None, timeout=10):
    data = None
    headers = dict(headers or {})
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
    elif body is not None:
        data = json.dumps(body).encode()
        headers.setdefault("Content-Type", "application/json")
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
            return r.status, (json.loads(raw) if raw else None), dict(r.headers)
    except urllib.error.HTTPError as e:
        raw = e.read()
        return e.code, (json.loads(raw) if raw else None), dict(e.headers)


class StubTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stub = Stub()
        cls.base = cls.stub.base

    @classmethod
    def tearDownClass(cls):
        cls.stub.stop()

    def setUp(self):
        call("POST", self.base + "/_stub/reset")
        call("POST", self.base + "/_stub/config", {"async_polls": 2})
        self.token = self.get_token()

    def get_token(self, **over):
        form = {"grant_type": "client_credentials", "client_id": CLIENT, "client_secret": SECRET,
                "scope": self.base + "/.default"}
        form.update(over)
        st, body, _ = call("POST", "%s/%s/oauth2/v2.0/token" % (self.base, TENANT), form=form)
        if st != 200:
            return (st, body)
        return body["access_token"]

    def arm(self, method, path, body=None, api=API, token=None, headers=None):
        sep = "&" if "?" in path else "?"
        url = self.base + (path if path.startswith("/subscriptions") else WS + "/" + path)
        if api is not None and "api-version=" not in url:
            url += sep + "api-version=" + api
        h = {"Authorization": "Bearer " + (token or self.token)}
        h.update(headers or {})
        return call(method, url, body, h)

    def poll_until_done(self, url):
        for _ in range(20):
            st, body, headers = call("GET", url, headers={"Authorization": "Bearer " + self.token})
            if "mfeOperationsStatus" in url:
                if body["status"] != "InProgress":
                    return st, body
            elif st != 202:
                return st, body
        self.fail("operation never finished")

    def requests(self):
        return call("GET", self.base + "/_stub/requests")[1]["requests"]

    # -------------------------------------------------------------- identity

    def test_token_ok_and_logged_without_secret(self):
        st, body, _ = call("POST", "%s/%s/oauth2/v2.0/token" % (self.base, TENANT),
                           form={"grant_type": "client_credentials", "client_id": CLIENT,
                                 "client_secret": SECRET, "scope": self.base + "/.default"})
        self.assertEqual(st, 200)
        self.assertEqual(body["token_type"], "Bearer")
        self.assertEqual(body["expires_in"], 3599)
        self.assertTrue(body["access_token"])
        log = json.dumps(self.requests())
        self.assertNotIn(SECRET, log)
        self.assertNotIn(body["access_token"], log)

    def test_token_errors_are_aad_style(self):
        st, body = self.get_token(client_secret="wrong")
        self.assertEqual(st, 401)
        self.assertEqual(body["error"], "invalid_client")
        self.assertTrue(body["error_description"].startswith("AADSTS7000215"))
        self.assertEqual(body["error_codes"], [7000215])
        self.assertEqual(self.get_token(grant_type="password")[1]["error"], "unsupported_grant_type")
        self.assertEqual(self.get_token(client_id="nobody")[1]["error"], "unauthorized_client")
        self.assertEqual(self.get_token(scope="https://graph.microsoft.com/.default")[1]["error"],
                         "invalid_scope")

    def assertion(self, **over):
        """A JWT-shaped federated assertion as AKS projects it (unsigned: the stub reads claims)."""
        claims = {"iss": "https://oidc.stub.invalid/roastery/",
                  "sub": "system:serviceaccount:roastery:roastery-worker",
                  "aud": ["api://AzureADTokenExchange"], "exp": int(time.time()) + 3600,
                  "jti": "jti-1"}
        claims.update(over)
        enc = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()
        return enc({"alg": "RS256", "kid": "k1"}) + "." + enc(claims) + ".c2ln"

    def federated(self, assertion, **over):
        form = {"grant_type": "client_credentials", "client_id": CLIENT,
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": assertion, "scope": self.base + "/.default"}
        form.update(over)
        return call("POST", "%s/%s/oauth2/v2.0/token" % (self.base, TENANT), form=form)

    def test_federated_assertion_grant(self):
        a = self.assertion()
        st, body, _ = self.federated(a)
        self.assertEqual(st, 200)
        st, _, _ = self.arm("GET", "datastores/workspaceblobstore", token=body["access_token"])
        self.assertEqual(st, 200)
        info = call("POST", self.base + "/_stub/tokens/introspect", {"token": body["access_token"]})[1]
        self.assertEqual((info["active"], info["credential"]), (True, "federated"))
        log = json.dumps(self.requests())
        self.assertNotIn(a, log)
        self.assertIn('"client_assertion_jti": "jti-1"', log)

    def test_federated_assertion_refused(self):
        cases = [({"iss": "https://elsewhere/"}, {}, "AADSTS700211"),
                 ({"sub": "system:serviceaccount:x:y"}, {}, "AADSTS700213"),
                 ({"aud": "api://other"}, {}, "AADSTS700212"),
                 ({"exp": int(time.time()) - 5}, {}, "AADSTS700024"),
                 ({}, {"client_assertion_type": "jwt"}, "AADSTS50027"),
                 ({}, {"client_secret": SECRET}, "AADSTS90014")]
        for claims, form, code in cases:
            st, body, _ = self.federated(self.assertion(**claims), **form)
            self.assertEqual(st, 400, code)
            self.assertTrue(body["error_description"].startswith(code), body)
        st, body, _ = self.federated("not-a-jwt")
        self.assertEqual(body["error_codes"], [50027])

    def test_storage_scope_token_not_accepted_by_arm(self):
        st, body, _ = self.federated(self.assertion(), scope="https://storage.azure.com/.default")
        self.assertEqual(st, 200)
        st, _, _ = self.arm("GET", "datastores/workspaceblobstore", token=body["access_token"])
        self.assertEqual(st, 401)
        info = call("POST", self.base + "/_stub/tokens/introspect", {"token": body["access_token"]})[1]
        self.assertEqual(info["scope"], "https://storage.azure.com/.default")
        self.assertFalse(call("POST", self.base + "/_stub/tokens/introspect",
                              {"token": "stub.forged"})[1]["active"])

    def test_bearer_required_and_revocable(self):
        st, body, h = call("GET", self.base + WS + "/jobs/x?api-version=" + API)
        self.assertEqual(st, 401)
        self.assertEqual(body["error"]["code"], "AuthenticationFailed")
        self.assertIn("WWW-Authenticate", h)
        st, body, _ = self.arm("GET", "jobs/x", token="stub.forged")
        self.assertEqual(body["error"]["code"], "InvalidAuthenticationToken")
        self.assertEqual(self.arm("GET", "datastores/workspaceblobstore")[0], 200)
        call("POST", self.base + "/_stub/tokens/revoke")
        st, body, _ = self.arm("GET", "datastores/workspaceblobstore")
        self.assertEqual(st, 401)

    def test_token_expiry(self):
        call("POST", self.base + "/_stub/config", {"token_expires_in": 1})
        tok = self.get_token()
        time.sleep(1.1)
        st, body, _ = self.arm("GET", "datastores/workspaceblobstore", token=tok)
        self.assertEqual((st, body["error"]["code"]), (401, "ExpiredAuthenticationToken"))

    def test_api_version_checked(self):
        st, body, _ = self.arm("GET", "datastores/workspaceblobstore", api=None)
        self.assertEqual((st, body["error"]["code"]), (400, "MissingApiVersionParameter"))
        st, body, _ = self.arm("GET", "datastores/workspaceblobstore", api="2024-04-01")
        self.assertEqual((st, body["error"]["code"]), (400, "NoRegisteredProviderFound"))
        st, body, _ = self.arm("GET", "datastores/workspaceblobstore", api="latest")
        self.assertEqual((st, body["error"]["code"]), (400, "InvalidApiVersionParameter"))

    # -------------------------------------------------------------- schema

    def example_request(self, rel):
        with open(os.path.join(HERE, "examples", rel)) as f:
            return json.load(f)["parameters"]["body"]

    def test_published_example_requests_pass_the_schema(self):
        cases = [
            ("examples/Job/CommandJob/createOrUpdate.json", "jobs/ex-job"),
            ("examples-2024-10-01/Workspace/DataVersionBase/createOrUpdate.json", "data/ex/versions/1"),
            ("examples/Workspace/ModelContainer/createOrUpdate.json", "models/ex"),
            ("examples/Workspace/ModelVersion/createOrUpdate.json", "models/ex/versions/1"),
        ]
        for rel, path in cases:
            body = self.example_request(rel)
            # The published job example names a literal input "string" and an int-keyed
            # resources.properties bag; both are valid as published.
            st, answer, _ = self.arm("PUT", path, body)
            self.assertIn(st, (200, 201), (rel, answer))

    def test_published_data_container_example_uses_an_undeclared_enum_value(self):
        # Known divergence: the example says dataType "UriFile"; DataType declares
        # uri_file, uri_folder and mltable (modelAsString). The stub is strict.
        body = self.example_request("examples/Workspace/DataContainer/createOrUpdate.json")
        st, answer, _ = self.arm("PUT", "data/ex", body)
        self.assertEqual(st, 400)
        self.assertIn("properties.dataType", answer["error"]["message"])
        body["properties"]["dataType"] = "uri_file"
        self.assertEqual(self.arm("PUT", "data/ex", body)[0], 201)

    def test_endpoint_and_deployment_examples(self):
        ep = self.example_request("examples/Workspace/OnlineEndpoint/createOrUpdate.json")
        ep["properties"].pop("traffic")  # names a deployment that does not exist here
        st, body, h = self.arm("PUT", "onlineEndpoints/ep1", ep)
        self.assertEqual(st, 201, body)
        dep = self.example_request("examples/OnlineDeployment/ManagedOnlineDeployment/createOrUpdate.json")
        st, body, h = self.arm("PUT", "onlineEndpoints/ep1/deployments/blue", dep)
        self.assertEqual(st, 201, body)
        self.assertIn("Azure-AsyncOperation", h)

    def test_invalid_bodies_rejected_with_arm_errors(self):
        bad = {"properties": {"jobType": "Command", "command": "train",
                              "inputs": {"x": {"jobInputType": "uri_file"}}, "extra": 1}}
        st, body, _ = self.arm("PUT", "jobs/bad", bad)
        self.assertEqual(st, 400)
        self.assertEqual(body["error"]["code"], "UserError")
        targets = {d["target"] for d in body["error"]["details"]}
        self.assertEqual(targets, {"properties.environmentId", "properties.inputs.x.uri",
                                   "properties.extra"})
        st, body, _ = self.arm("PUT", "data/d/versions/1", {"properties": {"dataType": "uri_file"}})
        self.assertEqual(st, 400)
        self.assertIn("properties.dataUri", body["error"]["message"])
        st, body, _ = self.arm("PUT", "onlineEndpoints/e", {"properties": {"authMode": "Password"}})
        self.assertEqual(st, 400)
        self.assertIn("location", body["error"]["message"])
        self.assertIn("authMode", body["error"]["message"])
        st, body, _ = self.arm("PUT", "jobs/j", None, headers={"Content-Type": "text/plain"})
        self.assertEqual(st, 415)

    # -------------------------------------------------------------- state

    def job_body(self, command="python train.py"):
        return {"properties": {"jobType": "Command", "command": command,
                               "environmentId": "azureml:roastery-image:1",
                               "computeId": WS + "/computes/cpu",
                               "inputs": {"sales": {"jobInputType": "uri_file", "uri": "azureml:sales:1"}},
                               "outputs": {"model": {"jobOutputType": "uri_folder"}},
                               "tags": {"run": "r1"}}}

    def test_job_lifecycle_and_resubmission(self):
        st, body, _ = self.arm("PUT", "jobs/run-1", self.job_body())
        self.assertEqual(st, 201)
        self.assertEqual(body["properties"]["status"], "NotStarted")
        self.assertEqual(body["id"], WS + "/jobs/run-1")
        self.assertTrue(body["properties"]["outputs"]["model"]["uri"].startswith("azureml://"))
        seen = [self.arm("GET", "jobs/run-1")[1]["properties"]["status"] for _ in range(4)]
        self.assertEqual(seen, ["Queued", "Running", "Completed", "Completed"])
        again = self.job_body()
        again["properties"]["tags"] = {"run": "r1", "retry": "1"}
        st, body, _ = self.arm("PUT", "jobs/run-1", again)
        self.assertEqual(st, 200)
        self.assertEqual(body["properties"]["status"], "Completed")
        self.assertEqual(body["properties"]["tags"]["retry"], "1")
        st, body, _ = self.arm("PUT", "jobs/run-1", self.job_body("python other.py"))
        self.assertEqual(st, 400)
        self.assertEqual(body["error"]["code"], "UserError")
        self.assertIn("already exists", body["error"]["message"])
        self.assertEqual(body["error"]["innerError"]["code"], "Immutable")
        state = call("GET", self.base + "/_stub/state")[1]
        self.assertEqual(state["counters"]["job_creates"], 1)

    def test_job_cancel_polls_location(self):
        self.arm("PUT", "jobs/run-2", self.job_body())
        st, body, h = self.arm("POST", "jobs/run-2/cancel")
        self.assertEqual(st, 202)
        self.assertIn("mfeOperationResults", h["Location"])
        self.assertEqual(self.arm("GET", "jobs/run-2")[1]["properties"]["status"], "Canceled")
        st, _ = self.poll_until_done(h["Location"])
        self.assertEqual(st, 200)
        st, _, _ = self.arm("POST", "jobs/run-2/cancel")
        self.assertEqual(st, 200)  # already terminal
        self.assertEqual(self.arm("POST", "jobs/none/cancel")[0], 404)

    def test_endpoint_async_and_traffic(self):
        st, body, h = self.arm("PUT", "onlineEndpoints/ep", {"location": "westeurope",
                                                             "properties": {"authMode": "Key"}})
        self.assertEqual(st, 201)
        self.assertEqual(body["properties"]["provisioningState"], "Creating")
        url = h["Azure-AsyncOperation"]
        st, body, _ = call("GET", url, headers={"Authorization": "Bearer " + self.token})
        self.assertEqual(body["status"], "InProgress")
        st, body = self.poll_until_done(url)
        self.assertEqual(body["status"], "Succeeded")
        self.assertEqual(self.arm("GET", "onlineEndpoints/ep")[1]["properties"]["provisioningState"],
                         "Succeeded")
        traffic = {"location": "westeurope", "properties": {"authMode": "Key", "traffic": {"blue": 100}}}
        st, body, _ = self.arm("PUT", "onlineEndpoints/ep", traffic)
        self.assertEqual(st, 400)
        self.assertIn("blue", body["error"]["message"])
        dep = {"location": "westeurope", "sku": {"name": "Default", "capacity": 1},
               "properties": {"endpointComputeType": "Managed", "model": "azureml:m:1",
                              "instanceType": "Standard_DS3_v2"}}
        st, body, h = self.arm("PUT", "onlineEndpoints/ep/deployments/blue", dep)
        self.assertEqual(st, 201)
        self.poll_until_done(h["Azure-AsyncOperation"])
        self.assertEqual(self.arm("PUT", "onlineEndpoints/ep", traffic)[0], 200)
        st, body, _ = self.arm("DELETE", "onlineEndpoints/ep/deployments/blue")
        self.assertEqual(st, 400)  # still takes traffic
        traffic["properties"]["traffic"] = {"blue": 0}
        self.assertEqual(self.arm("PUT", "onlineEndpoints/ep", traffic)[0], 200)
        st, body, h = self.arm("DELETE", "onlineEndpoints/ep/deployments/blue")
        self.assertEqual(st, 202)
        st, _ = self.poll_until_done(h["Location"])
        self.assertEqual(st, 204)
        self.assertEqual(self.arm("GET", "onlineEndpoints/ep/deployments/blue")[0], 404)

    def test_async_failure_injected(self):
        call("POST", self.base + "/_stub/faults", {"match": "/onlineEndpoints/", "method": "PUT",
                                                   "async_fail": True, "code": "InvalidVmSize",
                                                   "message": "no such size"})
        st, body, h = self.arm("PUT", "onlineEndpoints/bad", {"location": "westeurope",
                                                              "properties": {"authMode": "Key"}})
        self.assertEqual(st, 201)
        st, body = self.poll_until_done(h["Azure-AsyncOperation"])
        self.assertEqual(body["status"], "Failed")
        self.assertEqual(body["error"]["code"], "InvalidVmSize")

    def test_datastore(self):
        st, body, _ = self.arm("GET", "datastores/workspaceblobstore")
        self.assertEqual(st, 200)
        self.assertEqual(body["properties"]["accountName"], "roasterystubstorage")
        self.assertTrue(body["properties"]["containerName"].startswith("azureml-blobstore-"))
        self.assertEqual(self.arm("GET", "datastores/other")[0], 404)

    # -------------------------------------------------------------- faults

    def test_fault_throttle_then_success_and_log(self):
        call("POST", self.base + "/_stub/faults", {"match": "/datastores/", "method": "GET",
                                                   "status": 429, "retry_after": 1, "times": 2})
        got = [self.arm("GET", "datastores/workspaceblobstore") for _ in range(3)]
        self.assertEqual([g[0] for g in got], [429, 429, 200])
        self.assertEqual(got[0][2]["Retry-After"], "1")
        self.assertEqual(got[0][1]["error"]["code"], "TooManyRequests")
        log = [e for e in self.requests() if "/datastores/" in e["path"]]
        self.assertEqual([e["status"] for e in log], [429, 429, 200])
        self.assertEqual([e["fault"] for e in log], [True, True, False])
        self.assertTrue(all(e["api_version"] == API and e["authorization"] == "bearer" for e in log))

    def test_fault_custom_code_and_stall(self):
        call("POST", self.base + "/_stub/faults", {"rules": [
            {"match": "/jobs/", "status": 400, "code": "InvalidVmSize", "message": "bad size"},
            {"match": "/models/", "stall_seconds": 3}]})
        st, body, _ = self.arm("PUT", "jobs/j", self.job_body())
        self.assertEqual((st, body["error"]["code"], body["error"]["message"]),
                         (400, "InvalidVmSize", "bad size"))
        t0 = time.monotonic()
        with self.assertRaises(Exception):
            call("GET", self.base + WS + "/models/m?api-version=" + API, timeout=0.5,
                 headers={"Authorization": "Bearer " + self.token})
        self.assertLess(time.monotonic() - t0, 2)
        self.assertEqual(call("GET", self.base + "/_stub/faults")[1]["rules"], [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
