#!/usr/bin/env python3
"""Each limit that keeps slow clients from holding the server's threads (review finding 2), one
test per limit, against a server with small limits so that each shows within seconds:
the header deadline is total (not per read), a body must keep its minimum rate, one address and
one identity hold at most so many connections or requests, and authorisation is decided before a
body is read. Also: /metrics only on the probe listener (finding 14).

usage: tests/security/connection_limits_test.py path/to/roastery"""
import json
import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, HERE)
import http_test  # noqa: E402
from http_test import Server, fresh_database  # noqa: E402
import raw_http  # noqa: E402

HEADER_MS = 1500
GRACE_MS = 1000
RATE = 8192
PER_ADDRESS = 4
PER_IDENTITY = 3
NIL = "00000000-0000-0000-0000-000000000000"


def contract(method, path, status, hdrs, body):
    http_test.CONTRACT.check(method, path, status, hdrs.get("content-type"), body)


class ConnectionLimits(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.db = fresh_database("security_conn_limits")
        cls.srv = Server({"ROASTERY_DATABASE_URL": cls.db, "ROASTERY_WORKERS": "0",
                          "ROASTERY_HTTP_THREADS": "24",
                          "ROASTERY_HEADER_TIMEOUT_MS": str(HEADER_MS),
                          "ROASTERY_BODY_GRACE_MS": str(GRACE_MS),
                          "ROASTERY_BODY_MIN_BYTES_PER_SECOND": str(RATE),
                          "ROASTERY_CONN_PER_ADDRESS": str(PER_ADDRESS),
                          "ROASTERY_CONN_PER_IDENTITY": str(PER_IDENTITY)})
        cls.ds = cls.srv.token("slow-ds", "DataScientist")
        cls.other = cls.srv.token("other-ds", "DataScientist")
        cls.norole = cls.srv.token("nobody-norole", "")
        for t in (cls.ds, cls.other, cls.norole):
            assert raw_http.get(cls.srv.port, "/api/v1/me", t)[0] == 200

    @classmethod
    def tearDownClass(cls):
        code = cls.srv.stop()
        assert code == 0, f"server exited {code} on SIGTERM"

    def slow_post(self, path, token, source, length=100000, first=b"{", method="POST",
                  ctype="application/json"):
        s = raw_http.connect(self.srv.port, source)
        s.sendall(raw_http.request_head(method, path, {"Authorization": f"Bearer {token}",
                                                       "Content-Type": ctype}, length) + first)
        return s

    # ---- header deadline ------------------------------------------------------------------

    def test_header_deadline_is_total_not_per_read(self):
        s = raw_http.connect(self.srv.port, "127.0.2.1")
        s.sendall(b"GET /api/v1/me HTTP/1.1\r\nHost: x\r\n")
        t0 = time.monotonic()
        closed = None
        while time.monotonic() - t0 < 12:  # a header line every 0.3 s, as slow.py does
            try:
                s.send(b"X-Slow: 1\r\n")
            except OSError:
                closed = time.monotonic() - t0
                break
            took = raw_http.closed_within(s, 0.3)
            if took is not None:
                closed = time.monotonic() - t0
                break
        s.close()
        self.assertIsNotNone(closed, "a trickle of header lines kept the connection for 12 s")
        self.assertLess(closed, HEADER_MS / 1000 + 0.7)
        self.assertGreater(closed, HEADER_MS / 1000 - 0.3)

    def test_idle_connection_and_idle_keep_alive_are_closed(self):
        s = raw_http.connect(self.srv.port, "127.0.2.2")
        took = raw_http.closed_within(s, 12)
        s.close()
        self.assertIsNotNone(took)
        self.assertLess(took, HEADER_MS / 1000 + 0.7)
        s = raw_http.connect(self.srv.port, "127.0.2.2")
        s.sendall(raw_http.request_head("GET", "/healthz"))
        st, _, _, _ = raw_http.read_reply(s, 5)
        self.assertEqual(st, 200)
        took = raw_http.closed_within(s, 12)  # CivetWeb's own keep-alive timeout is 5 s
        s.close()
        self.assertIsNotNone(took)
        self.assertLess(took, HEADER_MS / 1000 + 0.7)

    # ---- per address ------------------------------------------------------------------------

    def test_one_address_holds_at_most_its_cap(self):
        held = [raw_http.connect(self.srv.port, "127.0.3.1") for _ in range(PER_ADDRESS)]
        time.sleep(0.3)  # each taken by a worker thread
        try:
            s = raw_http.connect(self.srv.port, "127.0.3.1")
            s.sendall(raw_http.request_head("GET", "/api/v1/me", {"Authorization": f"Bearer {self.ds}"}))
            st, hdrs, body, took = raw_http.read_reply(s, 5)
            self.assertEqual(st, 429, body)
            self.assertLess(took, 0.5)
            self.assertEqual(hdrs["content-type"], "application/problem+json")
            self.assertIn("retry-after", hdrs)
            p = raw_http.problem(body)
            self.assertEqual(p["type"], "https://roastery.dev/problems/too-many-connections")
            http_test.CONTRACT._validate_problem(body, hdrs["content-type"], "per-address 429")
            self.assertIsNotNone(raw_http.closed_within(s, 1), "a refused connection stays open")
            s.close()
            # an idle one that never sends anything is refused the same way
            s = raw_http.connect(self.srv.port, "127.0.3.1")
            st, _, _, took = raw_http.read_reply(s, 5)
            self.assertEqual((st, took < 0.5), (429, True))
            s.close()
            # other addresses are served meanwhile
            self.assertEqual(raw_http.get(self.srv.port, "/api/v1/me", self.ds, "127.0.3.2")[0], 200)
        finally:
            for h in held:
                h.close()
        time.sleep(0.3)
        self.assertEqual(raw_http.get(self.srv.port, "/api/v1/me", self.ds, "127.0.3.1")[0], 200)

    # ---- per identity -------------------------------------------------------------------------

    def test_one_identity_has_at_most_its_cap_in_progress(self):
        path = "/api/v1/projects"
        slow = [self.slow_post(path, self.ds, f"127.0.4.{i + 1}") for i in range(PER_IDENTITY)]
        time.sleep(0.3)
        try:
            st, hdrs, body, took = raw_http.get(self.srv.port, "/api/v1/me", self.ds, "127.0.4.9")
            self.assertEqual(st, 429, body)
            self.assertLess(took, 0.5)
            self.assertIn("retry-after", hdrs)
            self.assertEqual(raw_http.problem(body)["type"],
                             "https://roastery.dev/problems/too-many-requests-in-progress")
            contract("GET", "/api/v1/me", st, hdrs, body)
            # the same identity's POST is refused before its body is read, at once
            s = self.slow_post(path, self.ds, "127.0.4.10")
            st, _, _, took = raw_http.read_reply(s, 5)
            s.close()
            self.assertEqual((st, took < 0.5), (429, True))
            # another identity is not affected
            self.assertEqual(raw_http.get(self.srv.port, "/api/v1/me", self.other, "127.0.4.9")[0],
                             200)
        finally:
            replies = [raw_http.read_reply(s, 10)[0] for s in slow]
            for s in slow:
                s.close()
        self.assertEqual(replies, [408] * PER_IDENTITY)  # cut by the body rate, then
        self.assertEqual(raw_http.get(self.srv.port, "/api/v1/me", self.ds, "127.0.4.9")[0], 200)

    # ---- body rate -------------------------------------------------------------------------------

    def trickle(self, s, every=0.2, limit=15):
        """Sends a byte every `every` s until the server answers; (status, headers, body, s)."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < limit:
            st, hdrs, body, _ = raw_http.read_reply(s, every)
            if st != "timeout":
                return st, hdrs, body, time.monotonic() - t0
            try:
                s.send(b" ")
            except OSError:
                pass
        return "timeout", {}, b"", limit

    def test_a_body_below_the_minimum_rate_is_cut(self):
        s = self.slow_post("/api/v1/projects", self.ds, "127.0.5.1")
        st, hdrs, body, took = self.trickle(s)
        s.close()
        self.assertEqual(st, 408, body)
        # due: the grace, then 8 KiB (the first read) at the minimum rate, plus a tick
        self.assertLess(took, (GRACE_MS + 8192 * 1000 / RATE) / 1000 + 1.0)
        self.assertGreater(took, GRACE_MS / 1000)
        self.assertEqual(raw_http.problem(body)["type"], "https://roastery.dev/problems/body-too-slow")
        contract("POST", "/api/v1/projects", st, hdrs, body)

    def test_a_body_that_keeps_the_rate_is_read_whole(self):
        doc = json.dumps({"id": "steady-rate", "display_name": "Steady"}).encode()
        body = doc[:-1] + b" " * (60000 - len(doc)) + b"}"
        s = self.slow_post("/api/v1/projects", self.ds, "127.0.5.2", length=len(body), first=b"")
        for i in range(0, len(body), 4000):  # 20 KB/s for 3 s: past the grace, above the rate
            s.sendall(body[i:i + 4000])
            time.sleep(0.2)
        st, _, reply, _ = raw_http.read_reply(s, 5)
        s.close()
        self.assertEqual(st, 201, reply)

    def test_an_upload_below_the_minimum_rate_is_cut(self):
        p = "/api/v1/projects/slow-upload"
        self.assertEqual(self.srv.json("POST", "/api/v1/projects",
                                       {"id": "slow-upload", "display_name": "U"}, token=self.ds)[0], 201)
        self.assertEqual(self.srv.json("POST", p + "/datasets", {"name": "sales"}, token=self.ds)[0], 201)
        s = self.slow_post(p + "/datasets/sales/versions", self.ds, "127.0.5.3", length=10 ** 7,
                           first=b"date,", ctype="text/csv")
        st, _, body, took = self.trickle(s)
        s.close()
        self.assertEqual(st, 408, body)
        self.assertLess(took, (GRACE_MS + 8192 * 1000 / RATE) / 1000 + 1.0)

    # ---- authorisation before the body -------------------------------------------------------------

    def test_authorisation_is_decided_before_the_body_is_read(self):
        routes = [("POST", f"/api/v1/promotions/{NIL}/approve"),
                  ("POST", f"/api/v1/promotions/{NIL}/reject"),
                  ("POST", f"/api/v1/compute/{NIL}/approve"),
                  ("POST", f"/api/v1/compute/{NIL}/reject"),
                  ("PATCH", f"/api/v1/compute/{NIL}"),
                  ("POST", "/api/v1/projects/nothing/models/demand/rollback")]
        for i, (method, path) in enumerate(routes):
            # a token without roles, a body declared and never sent (slowbody.py)
            s = self.slow_post(path, self.norole, f"127.0.6.{i + 1}", first=b"", method=method)
            st, hdrs, body, took = raw_http.read_reply(s, 5)
            self.assertIn(st, (403, 404), (method, path, body))
            self.assertLess(took, 0.5, (method, path))
            self.assertEqual(hdrs.get("connection"), "close")
            contract(method, path, st, hdrs, body)
            # and its thread is let go: the unread body is not waited for
            self.assertIsNotNone(raw_http.closed_within(s, 2.5), (method, path))
            s.close()

    # ---- metrics ---------------------------------------------------------------------------------

    def test_metrics_only_on_the_probe_listener(self):
        st, _, _, _ = raw_http.get(self.srv.port, "/metrics")
        self.assertEqual(st, 404)
        st, _, body, _ = raw_http.get(self.srv.probe_port, "/metrics")
        self.assertEqual(st, 200)
        self.assertIn(b"roastery_db_pool_connections", body)
        self.assertEqual(raw_http.get(self.srv.probe_port, "/healthz")[0], 200)
        self.assertEqual(raw_http.get(self.srv.probe_port, "/readyz")[0], 200)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    http_test.BINARY = os.path.abspath(sys.argv.pop(1))
    if not http_test.BASE_URL:
        print("skipped: ROASTERY_TEST_DATABASE_URL is not set (run under scripts/with-temp-pg)")
        sys.exit(77)
    unittest.main(verbosity=2)
