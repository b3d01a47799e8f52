#!/usr/bin/env python3
"""Event Grid folder claims stay within a project (security review 2026-12, finding 12),
against the real server with Azurite as its Azure Blob artifact store: a dataset's
event_grid_path lies under its project's own folder incoming/<project>/, never inside or
around another dataset's path, and a blob goes only to a dataset of the project whose folder
holds it. Refusals are denials (403), audited."""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import http_test  # noqa: E402
from http_test import Server, fresh_database, psql  # noqa: E402
from events_test import ACCOUNT, AZURITE, CONTAINER, KEY, SECRET, blob_event, put_blob  # noqa: E402

BLOBS = f"/blobServices/default/containers/{CONTAINER}/blobs/"
EG = "/api/v1/events/azure"


class EventGridClaimsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(AZURITE):
            raise unittest.SkipTest("azurite is not installed (scripts/install-deps)")
        cls.tmp = tempfile.mkdtemp(prefix="roastery-egclaims-")
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
                break
            except OSError:
                if time.time() > deadline:
                    raise RuntimeError("azurite did not start")
                time.sleep(0.1)
        cls.db = fresh_database("security_eg_claims")
        cls.srv = Server({
            "ROASTERY_DATABASE_URL": cls.db, "ROASTERY_WORKERS": "2",
            "ROASTERY_ARTIFACTS": f"azblob://{CONTAINER}",
            "ROASTERY_AZURE_STORAGE_CONNECTION_STRING":
                f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
                f"BlobEndpoint=http://127.0.0.1:{cls.az_port}/{ACCOUNT};",
            "ROASTERY_EVENTGRID_SECRET": SECRET})
        cls.alice = cls.srv.token("alice-a", "DataScientist")  # owner of project alpha
        cls.bob = cls.srv.token("bob-b", "DataScientist")      # owner of project bravo
        cls.admin = cls.srv.token("ada-admin", "PlatformAdmin")
        cls.alice_oid = cls.srv.json("GET", "/api/v1/me", token=cls.alice)[2]["oid"]
        for pid, tok in [("alpha", cls.alice), ("bravo", cls.bob)]:
            assert cls.srv.json("POST", "/api/v1/projects", {"id": pid, "display_name": pid},
                                token=tok)[0] == 201
            assert cls.srv.json("POST", f"/api/v1/projects/{pid}/datasets", {"name": "sales"},
                                token=tok)[0] == 201
        st, _, d = cls.srv.json("PATCH", "/api/v1/projects/bravo/datasets/sales",
                                {"event_grid_path": BLOBS + "incoming/bravo/"}, token=cls.bob)
        assert st == 200, d
        cls.csv = subprocess.run([http_test.BINARY, "generate-sales", "--stores", "1",
                                  "--products", "1", "--start", "2023-01-01", "--end",
                                  "2023-03-31", "--seed", "6"],
                                 capture_output=True, check=True).stdout

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()
        cls.azurite.send_signal(signal.SIGTERM)
        cls.azurite.wait(timeout=10)
        shutil.rmtree(cls.srv.data_dir, ignore_errors=True)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def claim(self, path, token=None, project="alpha"):
        return self.srv.json("PATCH", f"/api/v1/projects/{project}/datasets/sales",
                             {"event_grid_path": path}, token=token or self.alice)

    def deliver(self, events):
        return self.srv.json("POST", f"{EG}?code={SECRET}", events,
                             {"aeg-event-type": "Notification"}, token=None)

    def test_cannot_claim_a_folder_outside_the_projects_own(self):
        for folder in ("shared/", "incoming/", "incoming/bravo-archive/", "alpha/"):
            st, _, prob = self.claim(BLOBS + folder)
            self.assertEqual(st, 403, (folder, prob))
            self.assertIn("incoming/alpha/", prob["detail"])
        # also at creation
        st, _, prob = self.srv.json("POST", "/api/v1/projects/alpha/datasets",
                                    {"name": "drop", "event_grid_path": BLOBS + "shared/"},
                                    token=self.alice)
        self.assertEqual(st, 403, prob)
        _, _, page = self.srv.json("GET", f"/api/v1/audit?actor={self.alice_oid}&outcome=denied",
                                   token=self.admin)
        self.assertTrue([e for e in page["items"] if e["status"] == 403 and
                         e["action"] == "PATCH /api/v1/projects/{project}/datasets/{dataset}"])

    def test_cannot_claim_a_subfolder_of_another_teams_path(self):
        # the review's case: B's new blobs under .../incoming/2026/ would become A's
        st, _, prob = self.claim(BLOBS + "incoming/bravo/2026/")
        self.assertEqual(st, 403, prob)
        put_blob(self.az_port, "incoming/bravo/2026/01.csv", self.csv)
        st, _, body = self.deliver([blob_event("incoming/bravo/2026/01.csv", len(self.csv))])
        self.assertEqual(st, 200, body)
        r = body["results"][0]
        self.assertIn(r["result"], ("version_created", "same_content"), body)
        self.assertEqual((r["project"], r["dataset"]), ("bravo", "sales"), body)

    def test_no_dataset_path_nests_with_another_of_the_same_project(self):
        assert self.srv.json("POST", "/api/v1/projects/alpha/datasets", {"name": "extra"},
                             token=self.alice)[0] == 201
        st, _, d = self.claim(BLOBS + "incoming/alpha/daily/")
        self.assertEqual(st, 200, d)
        for path in (BLOBS + "incoming/alpha/", BLOBS + "incoming/alpha/daily/late/"):
            st, _, prob = self.srv.json("PATCH", "/api/v1/projects/alpha/datasets/extra",
                                        {"event_grid_path": path}, token=self.alice)
            self.assertEqual(st, 403, (path, prob))
        st, _, d = self.srv.json("PATCH", "/api/v1/projects/alpha/datasets/extra",
                                 {"event_grid_path": BLOBS + "incoming/alpha/weekly/"},
                                 token=self.alice)
        self.assertEqual(st, 200, d)

    def test_a_path_set_outside_the_projects_folder_claims_no_blob(self):
        # a path an older server let alpha set inside bravo's folder is ignored when matching
        psql(self.db, "INSERT INTO datasets(project_id, name, created_by, event_grid_path)"
                      " VALUES ('alpha', 'legacy', 'x', :'v1');",
             BLOBS + "incoming/bravo/legacy/")
        put_blob(self.az_port, "incoming/bravo/legacy/02.csv", self.csv)
        st, _, body = self.deliver([blob_event("incoming/bravo/legacy/02.csv", len(self.csv))])
        self.assertEqual(st, 200, body)
        self.assertEqual((body["results"][0]["project"], body["results"][0]["dataset"]),
                         ("bravo", "sales"), body)


if __name__ == "__main__":
    if len(sys.argv) < 2 or not os.environ.get("ROASTERY_TEST_DATABASE_URL"):
        print("usage: ROASTERY_TEST_DATABASE_URL=... event_grid_claims_test.py BINARY",
              file=sys.stderr)
        sys.exit(77)
    http_test.BINARY = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
