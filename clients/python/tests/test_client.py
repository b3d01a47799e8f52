#!/usr/bin/env python3
"""The notebook client against the real roastery server and PostgreSQL
(auth, pagination, problem+json, idempotency, uploads, operations, runs,
promotions), plus a local stub server for retries and Retry-After.

usage: scripts/with-temp-pg python3 clients/python/tests/test_client.py build/debug/roastery
Exits 77 (skipped) without ROASTERY_TEST_DATABASE_URL."""
import email.utils
import hashlib
import http.server
import io
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import roastery_client as rc  # noqa: E402
from roastery_client import Client  # noqa: E402

BINARY = None
SRV = None
P = "demand"


class Pipe(io.RawIOBase):
    """A readable stream that cannot seek, like a pipe or a socket."""

    def __init__(self, data):
        self._b = io.BytesIO(data)

    def readable(self):
        return True

    def readinto(self, buf):
        return self._b.readinto(buf)


def setUpModule():
    global SRV
    SRV = harness.Server(BINARY, "client_tests")


def tearDownModule():
    code = SRV.stop()
    if code != 0:
        print(SRV.read_log()[-4000:], file=sys.stderr)
    SRV.cleanup()
    assert code == 0, f"server exited {code} on SIGTERM"


class ApiTest(unittest.TestCase):
    """Everything through the client against the real server."""

    @classmethod
    def setUpClass(cls):
        cls.ds = Client(SRV.url, token=SRV.token("dana-scientist", "DataScientist"))
        cls.admin = Client(SRV.url, token=SRV.token("ada-admin", "PlatformAdmin"))
        cls.tmp = tempfile.mkdtemp(prefix="roastery-client-")
        try:
            cls.ds.projects.create(P, "Demand forecast")
        except rc.Conflict:
            pass

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_auth_failure_raises(self):
        with self.assertRaises(rc.Unauthorized) as cm:
            Client(SRV.url, token="not-a-jwt").me()
        e = cm.exception
        self.assertEqual((e.status, e.slug), (401, "invalid-token"))
        self.assertTrue(e.request_id)
        self.assertIn("bearer", e.headers.get("www-authenticate", "").lower())
        with self.assertRaises(rc.AuthenticationError):
            Client(SRV.url).projects.list().to_list()
        # a token callback is asked on every request
        calls = []
        token = SRV.token("tom-scientist", "DataScientist")

        def provider():
            calls.append(1)
            return token
        c = Client(SRV.url, token_provider=provider)
        self.assertEqual(c.me()["name"], "tom-scientist")
        c.me()
        self.assertEqual(len(calls), 2)
        # a store manager's token is valid but may not create projects
        mgr = Client(SRV.url, token=SRV.token("sam-manager", "StoreManager"))
        with self.assertRaises(rc.Forbidden) as cm:
            mgr.projects.create("not-mine", "No")
        self.assertEqual(cm.exception.status, 403)

    def test_pagination_iterates_across_pages(self):
        ids = [f"page-{i}-{uuid.uuid4().hex[:6]}" for i in range(5)]
        for i in ids:
            self.admin.projects.create(i, "Paged")
        pager = self.admin.projects.list(limit=2)
        pages = list(pager.pages())
        self.assertGreaterEqual(len(pages), 3)
        self.assertTrue(all(len(p["items"]) <= 2 for p in pages))
        self.assertIsNone(pages[-1]["next_cursor"])
        seen = [p["id"] for p in self.admin.projects.list(limit=2)]
        self.assertEqual(len(seen), len(set(seen)), "no item twice")
        self.assertTrue(set(ids) <= set(seen))
        # the audit log pages the same way
        audit = list(self.admin.audit.list(action="POST /api/v1/projects", limit=3))
        self.assertGreaterEqual(len(audit), 5)
        self.assertGreaterEqual(len(list(self.admin.users.list(limit=1))), 2)
        # stores, with their own cursor
        sids = [f"T-{uuid.uuid4().hex[:6]}" for _ in range(3)]
        for sid in sids:
            self.admin.stores.create(sid, "Store " + sid, "Canada", "Toronto", "America/Toronto")
        self.assertTrue(set(sids) <= {s["id"] for s in self.admin.stores.list(limit=2)})
        self.assertEqual(self.admin.stores.update(sids[0], etag=self.admin.stores.get(sids[0]),
                                                  city="Ottawa")["city"], "Ottawa")
        if rc.has_pandas():
            df = self.admin.projects.list(limit=2).to_dataframe()
            self.assertTrue(set(ids) <= set(df["id"]))

    def test_problem_json_field_errors(self):
        with self.assertRaises(rc.ValidationError) as cm:
            self.ds.projects.create("Bad_Id!", "")
        e = cm.exception
        self.assertEqual(e.status, 400)
        self.assertTrue(e.type.startswith("https://roastery.dev/problems/"), e.type)
        self.assertTrue(e.title and e.detail)
        self.assertIn("id", e.fields)
        self.assertTrue(all("reason" in x for x in e.errors))
        self.assertIn("id", str(e))
        with self.assertRaises(rc.NotFound) as cm:
            self.ds.projects.get("no-such-project")
        self.assertEqual(cm.exception.status, 404)
        with self.assertRaises(rc.Conflict):
            self.ds.projects.create(P, "again")
        # a stale ETag
        proj = self.ds.projects.get(P)
        self.assertTrue(proj.etag)
        self.ds.projects.update(P, etag=proj, description="first")
        with self.assertRaises(rc.PreconditionFailed):
            self.ds.projects.update(P, etag=proj, description="second")
        # the error is a RoasteryError whatever its subclass
        with self.assertRaises(rc.RoasteryError):
            self.ds.runs.get(str(uuid.uuid4()))

    def test_idempotency_key_replays_the_first_answer(self):
        key = str(uuid.uuid4())
        name = "idem-" + key[:8]
        first = self.ds.datasets.create(P, name, idempotency_key=key)
        self.assertEqual(first.status, 201)
        self.assertFalse(first.replayed)
        again = self.ds.datasets.create(P, name, idempotency_key=key)
        self.assertEqual(again.status, 201)
        self.assertTrue(again.replayed)
        self.assertEqual(dict(again), dict(first))
        # the same key with another body is refused
        with self.assertRaises(rc.IdempotencyMismatch) as cm:
            self.ds.datasets.create(P, name + "-x", idempotency_key=key)
        self.assertEqual(cm.exception.status, 422)
        # without a key, each call gets its own: a second create conflicts
        with self.assertRaises(rc.Conflict):
            self.ds.datasets.create(P, name)

    def test_upload_wait_run_and_promote(self):
        path = SRV.generate_sales(os.path.join(self.tmp, "sales.csv"))
        with open(path, "rb") as f:
            sha = hashlib.sha256(f.read()).hexdigest()
        self.ds.datasets.create(P, "sales", description="generated GloboJava sales")
        v = self.ds.datasets.upload(P, "sales", path)
        self.assertEqual(v.status, 202)
        self.assertEqual(v["raw_sha256"], sha)
        self.assertTrue(v.location.startswith("/api/v1/operations/"))
        op = self.ds.operations.wait(v, timeout=120)
        self.assertEqual(op["state"], "succeeded")
        self.assertEqual([a["step"] for a in op["actions"]][:2], ["ingest", "record"])
        ver = self.ds.datasets.version(P, "sales", v["number"])
        self.assertEqual(ver["state"], "ready")
        # the same bytes from a pipe (chunked) are the same version
        with open(path, "rb") as f:
            dup = self.ds.datasets.upload(P, "sales", io.BufferedReader(Pipe(f.read())))
        self.assertEqual((dup.status, dup["number"]), (200, v["number"]))
        with open(path, "rb") as f:
            dup = self.ds.datasets.upload(P, "sales", f)
        self.assertEqual((dup.status, dup["number"]), (200, v["number"]))
        # rows page by page
        rows = self.ds.datasets.rows(P, "sales", v["number"], limit=1000)
        self.assertEqual(sum(len(p["items"]) for p in rows.pages()), ver["rows_accepted"])
        self.assertGreater(len(list(rows.pages())), 1)
        canon = self.ds.datasets.download(P, "sales", v["number"],
                                          os.path.join(self.tmp, "canonical.csv"))
        with open(canon, "rb") as f:
            self.assertEqual(hashlib.sha256(f.read()).hexdigest(), ver["canonical_sha256"])
        if rc.has_pandas():
            df = rows.to_dataframe()
            self.assertEqual(len(df), ver["rows_accepted"])
            self.assertIn("quantity", df.columns)

        # local compute, then a run waited for
        c = self.ds.compute.request(P, "laptop", "local", max_nodes=1)
        self.assertEqual(c.status, 202)
        self.assertEqual(self.ds.compute.wait(c, timeout=60)["state"], "ready")
        run = self.ds.runs.start(P, "sales", "laptop", experiment="client",
                                 params={"num_round": 30}, backtest_days=14)
        # an idle worker may have taken it before the answer was written
        self.assertEqual(run.status, 202)
        self.assertIn(run["state"], ("queued", "preparing", "running"))
        done = self.ds.runs.wait(run, timeout=120)
        self.assertEqual(done["state"], "completed")
        self.assertIn("overall", done["metrics"])
        metrics = self.ds.runs.metrics(done)
        self.assertGreater(len(metrics), 5)
        self.assertIn("trainer exited with status 0", self.ds.runs.logs(done))
        lines = list(self.ds.runs.follow_logs(done))
        self.assertTrue(any("trainer exited" in ln for ln in lines))
        self.assertIn("model.json", {a["name"] for a in self.ds.runs.artifacts(done)})
        self.assertIn("features", self.ds.runs.artifact(done, "features.json"))
        listed = [r["id"] for r in self.ds.runs.list(P, experiment="client", limit=1)]
        self.assertIn(done["id"], listed)
        cmp = self.ds.runs.compare([done])
        if rc.has_pandas():
            self.assertEqual(len(cmp), 1)
            self.assertIn("wape", cmp.columns)
            self.assertEqual(len(metrics.to_dataframe()), len(metrics))

        # register and propose for staging; the gates are evaluated by an operation
        self.ds.models.create(P, "demand")
        mv = self.ds.models.register(P, "demand", done)
        self.assertEqual(mv["version"], 1)
        prop = self.ds.models.promote(P, "demand", 1, "staging", reason="client test")
        self.assertEqual((prop.status, prop["target"]), (202, "staging"))
        settled = self.ds.promotions.wait(prop, timeout=120)
        self.assertIn(settled["state"], ("completed", "gates_failed"), settled)
        self.assertIn("metrics_present", {g["gate"] for g in settled["gates"]})
        self.assertEqual(self.ds.operations.wait(settled["operation_id"])["state"], "succeeded")
        self.assertIn(prop["id"], [p["id"] for p in self.ds.models.promotions(P, "demand")])
        # a bad run request: field errors from the server
        with self.assertRaises(rc.ValidationError) as cm:
            self.ds.runs.start(P, "sales", "laptop", params={"max_depth": "deep"})
        self.assertIn("params.max_depth", cm.exception.fields)

    def test_health_and_contract(self):
        self.assertEqual(self.ds.health()["status"], "ok")
        self.assertEqual(self.ds.ready()["status"], "ready")
        self.assertIn("openapi:", self.ds.openapi())
        self.assertIn("ada-admin", self.admin.me()["name"])
        self.assertTrue(self.ds.dev.token("pat-scientist", "DataScientist"))


class RateLimitTest(unittest.TestCase):
    """The server's own 429 with Retry-After, absorbed by the client's retries."""

    @classmethod
    def setUpClass(cls):
        cls.srv = harness.Server(BINARY, "client_rate_limit",
                                 {"ROASTERY_RATE_LIMIT_PER_SECOND": "2",
                                  "ROASTERY_RATE_LIMIT_BURST": "2", "ROASTERY_WORKERS": "0"})

    @classmethod
    def tearDownClass(cls):
        code = cls.srv.stop()
        if code != 0:
            print(cls.srv.read_log()[-4000:], file=sys.stderr)
        cls.srv.cleanup()
        assert code == 0, f"server exited {code} on SIGTERM"

    def test_429_is_retried_after_retry_after(self):
        token = self.srv.token("rita-scientist", "DataScientist")
        impatient = Client(self.srv.url, token=token, max_retries=0)
        with self.assertRaises(rc.RateLimited) as cm:
            for _ in range(10):
                impatient.me()
        self.assertEqual(cm.exception.status, 429)
        self.assertGreaterEqual(int(cm.exception.retry_after), 1)
        patient = Client(self.srv.url, token=token)
        t0 = time.monotonic()
        for _ in range(6):
            self.assertEqual(patient.me()["name"], "rita-scientist")
        self.assertGreater(time.monotonic() - t0, 0.9, "it waited as told")


# ---- retries against a local stub ------------------------------------------

class Stub(http.server.ThreadingHTTPServer):
    """Answers scripted (status, headers, body) in order; records each request."""

    daemon_threads = True

    def __init__(self, script):
        self.script = list(script)
        self.seen = []
        super().__init__(("127.0.0.1", 0), StubHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.server_address[1]

    def close(self):
        self.shutdown()
        self.server_close()


class StubHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def _body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _any(self):
        body = self._body()
        self.server.seen.append({"method": self.command, "path": self.path,
                                 "headers": {k.lower(): v for k, v in self.headers.items()},
                                 "body": body, "at": time.monotonic()})
        status, headers, payload = (self.server.script.pop(0) if self.server.script
                                    else (200, {}, {"ok": True}))
        data = json.dumps(payload).encode()
        self.send_response(status)
        ctype = "application/problem+json" if status >= 400 else "application/json"
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any


def problem(status, slug):
    return {"type": "https://roastery.dev/problems/" + slug, "title": slug, "status": status,
            "detail": slug, "request_id": "r-1"}


class RetryTest(unittest.TestCase):
    def stub(self, script):
        s = Stub(script)
        self.addCleanup(s.close)
        return s

    def test_503_then_success_waits_retry_after_and_reuses_the_key(self):
        s = self.stub([(503, {"Retry-After": "1"}, problem(503, "unavailable")),
                       (429, {"Retry-After": "0"}, problem(429, "rate-limited")),
                       (201, {"Location": "/api/v1/projects/x"}, {"id": "x"})])
        tokens = itertools.chain(["t1", "t2", "t3"], itertools.repeat("t"))
        c = Client(s.url, token_provider=lambda: next(tokens))
        p = c.projects.create("x", "X")
        self.assertEqual((p.status, p["id"], p.location), (201, "x", "/api/v1/projects/x"))
        self.assertEqual(len(s.seen), 3)
        keys = {r["headers"]["idempotency-key"] for r in s.seen}
        self.assertEqual(len(keys), 1, "one key for every retry of a call")
        uuid.UUID(keys.pop())
        self.assertGreaterEqual(s.seen[1]["at"] - s.seen[0]["at"], 0.95, "Retry-After: 1")
        self.assertEqual([r["headers"]["authorization"] for r in s.seen],
                         ["Bearer t1", "Bearer t2", "Bearer t3"])
        self.assertEqual({r["body"] for r in s.seen}, {b'{"id":"x","display_name":"X"}'})
        # another call, another key
        c.projects.create("y", "Y")
        self.assertNotEqual(s.seen[-1]["headers"]["idempotency-key"],
                            s.seen[0]["headers"]["idempotency-key"])
        # reads carry no key
        c.me()
        self.assertNotIn("idempotency-key", s.seen[-1]["headers"])

    def test_http_date_retry_after_and_bounded_retries(self):
        when = email.utils.formatdate(time.time() + 30, usegmt=True)
        self.assertTrue(25 <= rc.parse_retry_after(when) <= 30)
        self.assertEqual(rc.parse_retry_after("7"), 7)
        self.assertIsNone(rc.parse_retry_after("soon"))
        past = email.utils.formatdate(time.time() - 30, usegmt=True)
        self.assertEqual(rc.parse_retry_after(past), 0)

        s = self.stub([(429, {"Retry-After": when}, problem(429, "rate-limited"))] * 10)
        waits = []
        c = Client(s.url, token="t", max_retries=3)
        c._transport.sleep = waits.append
        with self.assertRaises(rc.RateLimited) as cm:
            c.projects.list().to_list()
        self.assertEqual(len(s.seen), 4, "the first try and 3 retries")
        self.assertEqual(len(waits), 3)
        self.assertTrue(all(25 <= w <= 30 for w in waits), waits)
        self.assertEqual(cm.exception.retry_after, when)

        # a wait longer than max_retry_wait is not attempted
        s2 = self.stub([(503, {"Retry-After": "3600"}, problem(503, "unavailable"))] * 3)
        c = Client(s2.url, token="t", max_retry_wait=10)
        c._transport.sleep = waits.append
        with self.assertRaises(rc.ServiceUnavailable):
            c.me()
        self.assertEqual(len(s2.seen), 1)

        # other errors are not retried
        s3 = self.stub([(409, {}, problem(409, "conflict"))] * 3)
        with self.assertRaises(rc.Conflict):
            Client(s3.url, token="t").runs.cancel(str(uuid.uuid4()))
        self.assertEqual(len(s3.seen), 1)

    def test_upload_is_streamed_and_resent_whole_on_retry(self):
        data = b"date,store_id\n" + b"2023-01-01,US-1\n" * 5000
        s = self.stub([(503, {"Retry-After": "0"}, problem(503, "unavailable")),
                       (202, {"Location": "/api/v1/operations/abc"}, {"number": 1}),
                       (202, {}, {"number": 2})])
        c = Client(s.url, token="t")
        with tempfile.NamedTemporaryFile(suffix=".csv") as f:
            f.write(data)
            f.flush()
            v = c.datasets.upload("p", "sales", f.name, on_error="quarantine")
        self.assertEqual((v.status, v.operation_id), (202, "abc"))
        self.assertEqual([r["body"] for r in s.seen], [data, data])
        for r in s.seen:
            self.assertEqual(r["headers"]["content-length"], str(len(data)))
            self.assertEqual(r["headers"]["content-type"], "text/csv")
            self.assertEqual(r["path"], "/api/v1/projects/p/datasets/sales/versions"
                                        "?on_error=quarantine")
        # a stream of unknown size goes chunked
        c.datasets.upload("p", "sales", io.BufferedReader(Pipe(data)))
        self.assertEqual(s.seen[-1]["headers"].get("transfer-encoding"), "chunked")
        self.assertEqual(s.seen[-1]["body"], data)

    def test_works_without_pandas(self):
        code = ("import sys; sys.modules['pandas'] = None\n"
                "import roastery_client as rc\n"
                "assert not rc.has_pandas()\n"
                "c = rc.Client('http://127.0.0.1:9')\n"
                "rows = c.runs.compare([{'id': 'a', 'number': 1, 'state': 'completed',"
                " 'algorithm': 'xgboost', 'params': {}, 'metrics': {'overall': {'wape': 0.2}}}])\n"
                "assert rows == [{'run': 1, 'id': 'a', 'state': 'completed',"
                " 'algorithm': 'xgboost', 'wape': 0.2}], rows\n"
                "try:\n    rc.ItemList(rows).to_dataframe()\nexcept ImportError:\n    pass\n"
                "else:\n    raise AssertionError('to_dataframe without pandas')\n")
        env = dict(os.environ, PYTHONPATH=os.path.dirname(harness.HERE))
        p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_wait_polls_until_terminal_and_times_out(self):
        op = {"id": "o1", "kind": "dataset.ingest"}
        s = self.stub([(200, {}, dict(op, state="queued")), (200, {}, dict(op, state="running")),
                       (200, {}, dict(op, state="succeeded"))])
        c = Client(s.url, token="t")
        self.assertEqual(c.operations.wait("/api/v1/operations/o1")["state"], "succeeded")
        self.assertEqual([r["path"] for r in s.seen], ["/api/v1/operations/o1"] * 3)
        s2 = self.stub([(200, {}, dict(op, state="failed", error={"code": "x", "message": "y"}))])
        with self.assertRaises(rc.OperationFailed) as cm:
            Client(s2.url, token="t").operations.wait("o1")
        self.assertEqual(cm.exception.resource["state"], "failed")
        s3 = self.stub([(200, {}, {"id": "r", "state": "running"})] * 50)
        with self.assertRaises(rc.WaitTimeout):
            Client(s3.url, token="t").runs.wait("r", timeout=0.5, interval=0.1)


if __name__ == "__main__":
    BINARY = os.path.abspath(sys.argv.pop(1))
    if not harness.DATABASE_URL:
        sys.exit(harness.SKIP)
    result = unittest.main(exit=False, verbosity=2).result
    sys.exit(0 if result.wasSuccessful() else 1)
