#!/usr/bin/env python3
"""Events in and out, end to end: the real server with Azurite as its Azure Blob artifact store.
In: the Event Grid webhook (handshakes in both schemas, shared secret and bearer token, bad
secrets, malformed and unknown events, BlobCreated registering a version once however often it
is delivered). Out: webhooks signed with HMAC-SHA256 to a local receiver that checks every
signature, retries seen in the delivery log, 410 disabling a webhook, run.finished from a real
training run, audit entries, and every bad request answered with the field that is wrong."""
import base64
import datetime
import hashlib
import hmac
import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import http_test  # noqa: E402
from http_test import Server, fresh_database, psql  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
AZURITE = os.path.join(ROOT, "tools", "node_modules", ".bin", "azurite-blob")
ACCOUNT = "devstoreaccount1"
# Azurite's published development key (not a secret).
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
CONTAINER = "roastery-art"
SECRET = "eg-s3cret-for-tests"
P = "/api/v1/projects/demand"
EG = "/api/v1/events/azure"
PATH = f"/blobServices/default/containers/{CONTAINER}/blobs/incoming/demand/"
TOPIC = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/globojava"


def put_blob(port, name, data):
    """Put Blob with Shared Key, as azure_test.py does."""
    path = f"/{ACCOUNT}/{CONTAINER}/{urllib.parse.quote(name)}"
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%a, %d %b %Y %H:%M:%S GMT")
    hdrs = {"x-ms-date": date, "x-ms-version": "2021-08-06", "x-ms-blob-type": "BlockBlob"}
    canon = "".join(f"{k}:{v}\n" for k, v in sorted(hdrs.items()))
    sts = "\n".join(["PUT", "", "", str(len(data)), "", "application/octet-stream",
                     "", "", "", "", "", ""]) + "\n" + canon + f"/{ACCOUNT}{path}"
    sig = base64.b64encode(hmac.new(base64.b64decode(KEY), sts.encode(),
                                    hashlib.sha256).digest()).decode()
    hdrs["Authorization"] = f"SharedKey {ACCOUNT}:{sig}"
    hdrs["Content-Type"] = "application/octet-stream"
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, headers=hdrs,
                                 method="PUT")
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.read()


def blob_event(name, size, event_id=None, container=CONTAINER, etag="0x8DC0FFEE"):
    return {"id": event_id or str(uuid.uuid4()), "topic": TOPIC,
            "subject": f"/blobServices/default/containers/{container}/blobs/{name}",
            "eventType": "Microsoft.Storage.BlobCreated",
            "eventTime": "2024-05-01T06:00:12.1234567Z",
            "data": {"api": "PutBlob", "eTag": etag, "contentType": "text/csv",
                     "contentLength": size, "blobType": "BlockBlob",
                     "url": f"https://globojava.blob.core.windows.net/{container}/{name}",
                     "sequencer": "0000000000000442"},
            "dataVersion": "", "metadataVersion": "1"}


class Receiver(http.server.BaseHTTPRequestHandler):
    """/hook fails the first two attempts of each delivery; /gone answers 410; /ok 200.
    Every request is checked against the webhook's secret."""
    secrets = {}
    seen = []
    attempts = {}
    lock = threading.Lock()

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        ts = self.headers.get("X-Roastery-Timestamp", "")
        sig = self.headers.get("X-Roastery-Signature", "")
        secret = self.secrets.get(self.path, "")
        want = "sha256=" + hmac.new(secret.encode(), ts.encode() + b"." + body,
                                    hashlib.sha256).hexdigest()
        delivery = self.headers.get("X-Roastery-Delivery", "")
        with self.lock:
            self.attempts[delivery] = self.attempts.get(delivery, 0) + 1
            n = self.attempts[delivery]
            self.seen.append({"path": self.path, "event": self.headers.get("X-Roastery-Event"),
                              "delivery": delivery, "valid": hmac.compare_digest(sig, want),
                              "fresh": ts.isdigit() and abs(time.time() - int(ts)) < 300,
                              "body": json.loads(body)})
        status = 410 if self.path == "/gone" else 500 if self.path == "/hook" and n <= 2 else 200
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


class EventsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="roastery-events-")
        cls.az_port = http_test.free_port()
        cls.azurite = subprocess.Popen(
            [AZURITE, "--blobHost", "127.0.0.1", "--blobPort", str(cls.az_port), "--location",
             os.path.join(cls.tmp, "azurite"), "--silent", "--skipApiVersionCheck", "--loose",
             "--disableTelemetry"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{cls.az_port}/{ACCOUNT}?comp=list",
                                       timeout=1)
            except urllib.error.HTTPError:
                break  # answering (403 without a signature)
            except OSError:
                if time.time() > deadline:
                    raise RuntimeError("azurite did not start")
                time.sleep(0.1)
        cls.receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
        cls.hook_base = f"http://127.0.0.1:{cls.receiver.server_address[1]}"
        threading.Thread(target=cls.receiver.serve_forever, daemon=True).start()
        cls.db = fresh_database("events")
        cls.srv = Server({
            "ROASTERY_DATABASE_URL": cls.db, "ROASTERY_WORKERS": "3",
            "ROASTERY_ARTIFACTS": f"azblob://{CONTAINER}",
            "ROASTERY_AZURE_STORAGE_CONNECTION_STRING":
                f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
                f"BlobEndpoint=http://127.0.0.1:{cls.az_port}/{ACCOUNT};",
            "ROASTERY_EVENTGRID_SECRET": SECRET,
            "ROASTERY_WEBHOOK_RETRY_BASE_MS": "200", "ROASTERY_WEBHOOK_TIMEOUT_SECONDS": "5",
            "ROASTERY_WEBHOOK_PORTS": str(cls.receiver.server_address[1])})
        cls.ds = cls.srv.token("dana-scientist", "DataScientist")
        cls.admin = cls.srv.token("ada-admin", "PlatformAdmin")
        assert cls.srv.json("POST", "/api/v1/projects", {"id": "demand", "display_name": "D"},
                            token=cls.ds)[0] == 201
        st, _, d = cls.srv.json("POST", P + "/datasets",
                                {"name": "sales", "event_grid_path": PATH}, token=cls.ds)
        assert st == 201 and d["event_grid_path"] == PATH, d
        cls.csv = subprocess.run([http_test.BINARY, "generate-sales", "--stores", "2",
                                  "--products", "2", "--start", "2022-01-01", "--end",
                                  "2023-06-30", "--seed", "4"],
                                 capture_output=True, check=True).stdout

    @classmethod
    def tearDownClass(cls):
        code = cls.srv.stop()
        cls.receiver.shutdown()
        cls.azurite.send_signal(signal.SIGTERM)
        cls.azurite.wait(timeout=10)
        shutil.rmtree(cls.srv.data_dir, ignore_errors=True)
        shutil.rmtree(cls.tmp, ignore_errors=True)
        assert code == 0, f"server exited {code} on SIGTERM (a sanitizer report?)"

    def deliver(self, events, code=SECRET, headers=None, token=None):
        q = f"?code={urllib.parse.quote(code)}" if code is not None else ""
        h = {"aeg-event-type": "Notification"}
        h.update(headers or {})
        return self.srv.json("POST", EG + q, events, h, token=token)

    @staticmethod
    def wait_for(get, done, timeout=60):
        deadline = time.time() + timeout
        while True:
            v = get()
            if done(v):
                return v
            if time.time() > deadline:
                raise AssertionError(f"still {v}")
            time.sleep(0.1)

    # ---- Event Grid in

    def test_handshakes(self):
        code = str(uuid.uuid4())
        validation = [{"id": str(uuid.uuid4()), "topic": TOPIC, "subject": "",
                       "data": {"validationCode": code,
                                "validationUrl": "https://rp-eastus2.eventgrid.azure.net/x"},
                       "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
                       "eventTime": "2024-05-01T06:00:12Z", "metadataVersion": "1",
                       "dataVersion": "1"}]
        st, _, body = self.deliver(validation, headers={"aeg-event-type": "SubscriptionValidation"})
        self.assertEqual((st, body), (200, {"validationResponse": code}))
        # the secret as a delivery-property header instead of the query
        st, _, body = self.deliver(validation, code=None, headers={"aeg-sas-key": SECRET})
        self.assertEqual((st, body), (200, {"validationResponse": code}))
        # CloudEvents 1.0 abuse protection
        st, hdrs, _ = self.srv.request("OPTIONS", f"{EG}?code={SECRET}", token=None,
                                       headers={"WebHook-Request-Origin": "eventgrid.azure.net"})
        self.assertEqual(st, 200)
        self.assertEqual(hdrs["webhook-allowed-origin"], "eventgrid.azure.net")
        self.assertEqual(hdrs["webhook-allowed-rate"], "*")
        st, _, _ = self.srv.request("OPTIONS", EG, token=None,
                                    headers={"WebHook-Request-Origin": "eventgrid.azure.net"})
        self.assertEqual(st, 401)

    def test_bad_secrets_and_tokens(self):
        ev = [blob_event("elsewhere/a.csv", 10)]
        for code, hdrs in [(None, {}), ("wrong", {}), (None, {"x-roastery-key": "wrong"}),
                           (SECRET[:-1], {}), ("x" * 600, {})]:
            st, h, body = self.deliver(ev, code=code, headers=hdrs)
            self.assertEqual(st, 401, (code, hdrs))
            self.assertEqual(body["type"], "https://roastery.dev/problems/invalid-credentials")
            self.assertNotIn(SECRET, json.dumps(body))
        self.assertNotIn(SECRET, self.srv.read_log())
        # Azure AD tokens: a PlatformAdmin (or a listed principal) may deliver, others may not
        st, _, body = self.deliver(ev, code=None, token=self.ds)
        self.assertEqual(st, 403, body)
        st, _, body = self.deliver(ev, code=None, token="not-a-jwt")
        self.assertEqual(st, 401, body)
        st, _, body = self.deliver(ev, code=None, token=self.admin)
        self.assertEqual((st, body["results"][0]["result"]), (200, "no_dataset"))
        st, _, audit = self.srv.json("GET", "/api/v1/audit?action=eventgrid.deliver",
                                     token=self.admin)
        self.assertEqual(st, 200)
        self.assertTrue(audit["items"])
        self.assertEqual(audit["items"][0]["outcome"], "denied")

    def test_malformed_and_unknown_events(self):
        ev = blob_event("incoming/demand/x.csv", 10)
        del ev["eventTime"]
        ev["data"]["contentLength"] = "ten"
        st, _, body = self.deliver([ev])
        self.assertEqual(st, 400)
        fields = {e["field"] for e in body["errors"]}
        self.assertEqual(fields, {"[0].eventTime", "[0].data.contentLength"})
        st, _, body = self.deliver({"not": "an array"})
        self.assertEqual((st, body["errors"][0]["field"]), (400, "body"))
        st, _, body = self.srv.json("POST", f"{EG}?code={SECRET}", b"[{", 
                                    {"Content-Type": "application/json"}, token=None)
        self.assertEqual((st, body["errors"][0]["field"]), (400, "body"))
        unknown = blob_event("incoming/demand/x.csv", 10)
        unknown["eventType"] = "Microsoft.Storage.BlobDeleted"
        st, _, body = self.deliver([blob_event("incoming/demand/y.csv", 10), unknown])
        self.assertEqual(st, 400)
        self.assertEqual(body["type"], "https://roastery.dev/problems/unknown-event-type")
        self.assertEqual(body["errors"][0]["field"], "[1].eventType")
        self.assertIn("Microsoft.Storage.BlobDeleted", body["detail"])
        st, _, body = self.deliver([ev], headers={"aeg-event-type": "Surprise"})
        self.assertEqual((st, body["errors"][0]["field"]), (400, "aeg-event-type"))
        st, _, body = self.srv.json("POST", f"{EG}?code={SECRET}", "[]",
                                    {"Content-Type": "text/plain"}, token=None)
        self.assertEqual(st, 415)

    def test_blob_created_registers_a_version_once(self):
        name = "incoming/demand/2024/05.csv"
        put_blob(self.az_port, name, self.csv)
        ev = blob_event(name, len(self.csv))
        st, _, body = self.deliver([ev])
        self.assertEqual(st, 200, body)
        r = body["results"][0]
        self.assertEqual((r["result"], r["duplicate"], r["dataset"]),
                         ("version_created", False, "sales"))
        number = r["version"]
        st, _, v = self.srv.json("GET", f"{P}/datasets/sales/versions/{number}", token=self.ds)
        self.assertEqual(v["source"]["kind"], "event_grid")
        self.assertEqual(v["source"]["event_id"], ev["id"])
        self.assertEqual(v["source"]["etag"], "0x8DC0FFEE")
        self.assertEqual(v["source"]["uri"], ev["data"]["url"])
        self.assertEqual(v["raw_sha256"], hashlib.sha256(self.csv).hexdigest())
        _, _, audit = self.srv.json("GET", "/api/v1/audit?action=eventgrid.blob_created",
                                    token=self.admin)
        self.assertEqual(audit["items"][0]["subject"],
                         f"projects/demand/datasets/sales/versions/{number}")
        self.wait_for(lambda: self.srv.json("GET", f"{P}/datasets/sales/versions/{number}",
                                            token=self.ds)[2]["state"],
                      lambda s: s not in ("pending", "ingesting"))
        # Event Grid redelivers: nothing new, 200
        for _ in range(2):
            st, _, body = self.deliver([ev])
            self.assertEqual((st, body["results"][0]["duplicate"]), (200, True))
            self.assertEqual(body["results"][0]["version"], number)
        # the same bytes under another event (CloudEvents schema this time)
        ce = {"specversion": "1.0", "type": "Microsoft.Storage.BlobCreated", "source": TOPIC,
              "id": str(uuid.uuid4()), "time": "2024-05-01T07:00:00Z", "subject": ev["subject"],
              "data": ev["data"]}
        st, _, body = self.srv.json("POST", f"{EG}?code={SECRET}", ce,
                                    {"Content-Type": "application/cloudevents+json"}, token=None)
        self.assertEqual((st, body["results"][0]["result"]), (200, "same_content"))
        _, _, versions = self.srv.json("GET", f"{P}/datasets/sales/versions", token=self.ds)
        self.assertEqual(len([x for x in versions["items"]
                              if x["source"]["kind"] == "event_grid"]), 1)
        rows = psql(self.db, "SELECT result, deliveries FROM eventgrid_events WHERE id = :'v1';",
                    ev["id"])
        self.assertEqual(rows, [["version_created", "3"]])
        # an empty blob (Data Lake's CreateFile) and a blob under no dataset are recorded, ignored
        st, _, body = self.deliver([blob_event("incoming/demand/empty.csv", 0),
                                    blob_event("unrelated/b.csv", 10)])
        self.assertEqual([r["result"] for r in body["results"]], ["empty_blob", "no_dataset"])

    def test_blob_the_server_cannot_read_is_422(self):
        psql(self.db, "INSERT INTO datasets(project_id, name, created_by, event_grid_path) VALUES"
                      " ('demand', 'elsewhere', 'x', '/blobServices/default/containers/other-c/"
                      "blobs/incoming/demand/drop/');")
        st, _, body = self.deliver([blob_event("incoming/demand/drop/a.csv", 10,
                                               container="other-c")])
        self.assertEqual(st, 422, body)
        self.assertEqual(body["errors"][0]["field"], "[0].subject")
        self.assertIn("outside the artifact store", body["detail"])
        st, _, body = self.deliver([blob_event("incoming/demand/missing.csv", 10)])
        self.assertEqual(st, 422, body)
        self.assertIn("does not exist", body["detail"])

    def test_dataset_event_grid_path_is_checked(self):
        assert self.srv.json("POST", P + "/datasets", {"name": "other"}, token=self.ds)[0] == 201
        for path, part in [(f"/blobServices/default/containers/{CONTAINER}/blobs/projects/demand/",
                            "projects/"),
                           (f"/blobServices/default/containers/{CONTAINER}/blobs/drop", "'/'"),
                           ("/blobServices/default/containers/another/blobs/drop/", CONTAINER),
                           ("drop/", "blobServices")]:
            st, _, body = self.srv.json("PATCH", P + "/datasets/other", {"event_grid_path": path},
                                        token=self.ds)
            self.assertEqual((st, body["errors"][0]["field"]), (400, "event_grid_path"), path)
            self.assertIn(part, body["errors"][0]["reason"])
        st, _, body = self.srv.json("PATCH", P + "/datasets/other", {"event_grid_path": PATH},
                                    token=self.ds)
        self.assertEqual(st, 409, body)  # one dataset per path
        # since the 2026-12 review: outside the project's folder, or nested with another
        # dataset's path (even of the same project), is a denial (403), no longer allowed
        for path in (f"/blobServices/default/containers/{CONTAINER}/blobs/drop/",
                     f"/blobServices/default/containers/{CONTAINER}/blobs/incoming/",
                     PATH + "other/"):
            st, _, body = self.srv.json("PATCH", P + "/datasets/other", {"event_grid_path": path},
                                        token=self.ds)
            self.assertEqual(st, 403, (path, body))
        sibling = f"/blobServices/default/containers/{CONTAINER}/blobs/incoming/demand-other/"
        st, _, body = self.srv.json("PATCH", P + "/datasets/other", {"event_grid_path": sibling},
                                    token=self.ds)
        self.assertEqual(st, 403, body)  # project demand-other's folder, not demand's
        st, hdrs, body = self.srv.json("PATCH", P + "/datasets/other", {"description": "d"},
                                       token=self.ds)
        self.assertEqual((st, body["event_grid_path"], body["description"]), (200, None, "d"))
        st, _, _ = self.srv.json("PATCH", P + "/datasets/other", {"event_grid_path": None},
                                 {"If-Match": '"v1"'}, token=self.ds)
        self.assertEqual(st, 412)
        st, _, body = self.srv.json("PATCH", P + "/datasets/other", {"event_grid_path": None},
                                    {"If-Match": hdrs["etag"]}, token=self.ds)
        self.assertEqual((st, body["event_grid_path"]), (200, None))
        # one owner per blob: anything under sales's folder is sales's
        st, _, body = self.deliver([blob_event("incoming/demand/other/none.csv", 10)])
        self.assertEqual((st, body["errors"][0]["field"]), (422, "[0].data.url"))

    # ---- webhooks out

    def create_hook(self, path, events, status=201):
        st, hdrs, hook = self.srv.json("POST", P + "/webhooks",
                                       {"url": self.hook_base + path, "events": events},
                                       token=self.ds)
        self.assertEqual(st, status, hook)
        if status == 201:
            Receiver.secrets[path] = hook["secret"]
        return hook, hdrs

    def deliveries(self, hook_id):
        return self.srv.json("GET", f"{P}/webhooks/{hook_id}/deliveries", token=self.ds)[2]["items"]

    def test_webhook_bad_requests(self):
        for body, field in [({"url": "http://hooks.example.com/x", "events": ["run.finished"]},
                             "url"),
                            ({"url": "ftp://127.0.0.1/x", "events": ["run.finished"]}, "url"),
                            ({"url": "https://u:p@hooks.example.com/", "events": ["run.finished"]},
                             "url"),
                            ({"url": "https://hooks.example.com/", "events": []}, "events"),
                            ({"url": "https://hooks.example.com/",
                              "events": ["run.finished", "run.started"]}, "events[1]"),
                            ({"url": "https://hooks.example.com/",
                              "events": ["run.finished", "run.finished"]}, "events[1]"),
                            ({"url": "https://hooks.example.com/", "events": ["run.finished"],
                              "secret": "mine"}, "secret")]:
            st, _, problem = self.srv.json("POST", P + "/webhooks", body, token=self.ds)
            self.assertEqual(st, 400, body)
            self.assertIn(field, [e["field"] for e in problem["errors"]], problem)
        st, _, _ = self.srv.json("GET", f"{P}/webhooks/not-a-uuid", token=self.ds)
        self.assertEqual(st, 400)
        st, _, _ = self.srv.json("GET", f"{P}/webhooks/{uuid.uuid4()}", token=self.ds)
        self.assertEqual(st, 404)
        st, _, _ = self.srv.json("GET", f"{P}/webhooks?cursor=zz", token=self.ds)
        self.assertEqual(st, 400)
        outsider = self.srv.token("olga-outsider", "DataScientist")
        st, _, _ = self.srv.json("GET", P + "/webhooks", token=outsider)
        self.assertEqual(st, 404)

    def test_webhook_lifecycle_signed_retried_and_audited(self):
        hook, hdrs = self.create_hook("/hook", ["run.finished", "model.promoted"])
        self.assertTrue(hook["secret"].startswith("whsec_"))
        st, _, shown = self.srv.json("GET", f"{P}/webhooks/{hook['id']}", token=self.ds)
        self.assertEqual(st, 200)
        self.assertNotIn("secret", shown)
        st, _, d = self.srv.json("POST", f"{P}/webhooks/{hook['id']}/ping", token=self.ds)
        self.assertEqual(st, 202, d)
        done = self.wait_for(lambda: self.deliveries(hook["id"])[0],
                             lambda x: x["state"] == "delivered", timeout=30)
        self.assertEqual(done["attempts"], 3)
        self.assertEqual([a["status"] for a in done["history"]], [500, 500, 200])
        self.assertEqual(done["payload"]["type"], "ping")
        got = [s for s in Receiver.seen if s["delivery"] == d["id"]]
        self.assertEqual(len(got), 3)
        self.assertTrue(all(s["valid"] and s["fresh"] for s in got), got)
        self.assertEqual(len({json.dumps(s["body"], sort_keys=True) for s in got}), 1)
        # update with If-Match, disable, delete; each audited
        st, h2, upd = self.srv.json("PATCH", f"{P}/webhooks/{hook['id']}",
                                    {"description": "ci"}, {"If-Match": hdrs["etag"]},
                                    token=self.ds)
        self.assertEqual((st, upd["description"]), (200, "ci"))
        st, _, _ = self.srv.json("PATCH", f"{P}/webhooks/{hook['id']}", {"active": False},
                                 {"If-Match": hdrs["etag"]}, token=self.ds)
        self.assertEqual(st, 412)
        st, _, body = self.srv.json("PATCH", f"{P}/webhooks/{hook['id']}",
                                    {"events": ["forecast.ready", "nope"]}, token=self.ds)
        self.assertEqual((st, body["errors"][0]["field"]), (400, "events[1]"))
        other, _ = self.create_hook("/ok", ["drift.detected"])
        st, _, page = self.srv.json("GET", f"{P}/webhooks?limit=1", token=self.ds)
        self.assertEqual((len(page["items"]), page["items"][0]["id"]), (1, other["id"]))
        st, _, page2 = self.srv.json("GET", f"{P}/webhooks?limit=1&cursor={page['next_cursor']}",
                                     token=self.ds)
        self.assertNotEqual(page2["items"][0]["id"], other["id"])
        st, _, _ = self.srv.json("DELETE", f"{P}/webhooks/{other['id']}", token=self.ds)
        self.assertEqual(st, 204)
        st, _, _ = self.srv.json("GET", f"{P}/webhooks/{other['id']}", token=self.ds)
        self.assertEqual(st, 404)
        _, _, audit = self.srv.json(
            "GET", f"/api/v1/audit?subject=projects/demand/webhooks/{other['id']}",
            token=self.admin)
        self.assertEqual(sorted(a["action"] for a in audit["items"]),
                         ["DELETE /api/v1/projects/{project}/webhooks/{id}",
                          "POST /api/v1/projects/{project}/webhooks"])

    def test_410_disables_the_webhook(self):
        hook, _ = self.create_hook("/gone", ["run.finished"])
        st, _, d = self.srv.json("POST", f"{P}/webhooks/{hook['id']}/ping", token=self.ds)
        self.assertEqual(st, 202)
        done = self.wait_for(lambda: self.deliveries(hook["id"])[0],
                             lambda x: x["state"] == "failed", timeout=30)
        self.assertEqual((done["attempts"], done["last_status"]), (1, 410))
        st, _, shown = self.srv.json("GET", f"{P}/webhooks/{hook['id']}", token=self.ds)
        self.assertFalse(shown["active"])
        self.assertIn("410", shown["disabled_reason"])
        st, _, body = self.srv.json("POST", f"{P}/webhooks/{hook['id']}/ping", token=self.ds)
        self.assertEqual(st, 409, body)
        st, _, shown = self.srv.json("PATCH", f"{P}/webhooks/{hook['id']}", {"active": True},
                                     token=self.ds)
        self.assertEqual((st, shown["active"], shown["disabled_reason"]), (200, True, None))

    def test_z_runs_and_promotions_emit_events(self):
        hook, _ = self.create_hook("/ok", ["run.finished", "model.promoted",
                                           "promotion.pending_approval"])
        assert self.srv.json("POST", P + "/datasets", {"name": "train"}, token=self.ds)[0] == 201
        st, _, v = self.srv.json("POST", P + "/datasets/train/versions", self.csv,
                                 {"Content-Type": "text/csv"}, token=self.ds)
        self.assertEqual(st, 202, v)
        self.wait_for(lambda: self.srv.json("GET", f"{P}/datasets/train/versions/1",
                                            token=self.ds)[2]["state"],
                      lambda s: s == "ready")
        st, _, c = self.srv.json("POST", P + "/compute", {"name": "laptop", "kind": "local",
                                                          "max_nodes": 1}, token=self.ds)
        self.assertEqual(st, 202, c)
        self.wait_for(lambda: self.srv.json("GET", f"/api/v1/compute/{c['id']}",
                                            token=self.ds)[2]["state"],
                      lambda s: s == "ready")
        st, _, run = self.srv.json("POST", P + "/runs",
                                   {"dataset": "train", "compute": "laptop", "experiment": "hooks",
                                    "params": {"num_round": 30}}, token=self.ds)
        self.assertEqual(st, 202, run)
        d = self.wait_for(lambda: self.deliveries(hook["id"]),
                          lambda items: items and items[0]["state"] == "delivered", timeout=90)[0]
        self.assertEqual(d["event"], "run.finished")
        data = d["payload"]["data"]
        self.assertEqual((data["run_id"], data["state"]), (run["id"], "completed"))
        self.assertIn("wape", json.dumps(data["metrics"]).lower())
        sent = [s for s in Receiver.seen if s["delivery"] == d["id"]]
        self.assertTrue(sent and sent[0]["valid"] and sent[0]["event"] == "run.finished")
        self.assertEqual(sent[0]["body"]["project"], "demand")
        # promotions: staging moves at once (model.promoted), production waits for an admin
        _, hdrs, _ = self.srv.json("GET", P, token=self.admin)
        self.srv.json("PATCH", P, {"promotion_margin": 0}, {"If-Match": hdrs["etag"]},
                      token=self.admin)
        assert self.srv.json("POST", P + "/models", {"name": "demand"}, token=self.ds)[0] == 201
        st, _, mv = self.srv.json("POST", P + "/models/demand/versions", {"run_id": run["id"]},
                                  token=self.ds)
        self.assertEqual(st, 201, mv)
        for target, event in (("staging", "model.promoted"),
                              ("production", "promotion.pending_approval")):
            st, _, promo = self.srv.json("POST", f"{P}/models/demand/versions/1/promotions",
                                         {"target": target}, token=self.ds)
            self.assertEqual(st, 202, promo)
            d = self.wait_for(lambda: self.deliveries(hook["id"]),
                              lambda items: items[0]["event"] == event
                              and items[0]["state"] == "delivered", timeout=60)[0]
            data = d["payload"]["data"]
            self.assertEqual((data["promotion_id"], data["model"], data["version"],
                              data["target"]), (promo["id"], "demand", 1, target))

if __name__ == "__main__":
    http_test.BINARY = os.path.abspath(sys.argv.pop(1))
    if not http_test.BASE_URL:
        print("ROASTERY_TEST_DATABASE_URL is not set (run under scripts/with-temp-pg)")
        sys.exit(77)
    if not os.path.exists(AZURITE):
        print(f"{AZURITE} is missing (scripts/install-deps installs it)")
        sys.exit(1)
    result = unittest.main(exit=False, verbosity=2).result
    print(f"contract: {len(http_test.CONTRACT.checked)} (method, route, status) combinations checked")
    sys.exit(0 if result.wasSuccessful() else 1)
