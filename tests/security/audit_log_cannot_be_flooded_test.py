#!/usr/bin/env python3
"""The audit log cannot be flooded, and what it records is true (review findings 9 and 11):
unauthenticated failures are limited per client address before they reach the database,
repeats are one row with a count (every refusal counted once), refusals served from the store
ACL cache are audited, the client address comes from X-Forwarded-For only when the peer is a
trusted proxy, and request ids are the server's with the client's kept apart."""
import os
import shutil
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import http_test  # noqa: E402
from http_test import Server, fresh_database, psql  # noqa: E402

WINDOW = 2  # ROASTERY_AUDIT_AGGREGATE_SECONDS of these servers
SECRET = "eg-s3cret-for-flood-tests"


def blast(port, n, path="/api/v1/me", token="a.b.c", method="GET", headers=""):
    """n requests, one connection each, as the review's reproduction; their statuses."""
    statuses = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        auth = f"Authorization: Bearer {token}\r\n" if token else ""
        body = "[]" if method == "POST" else ""
        s.sendall(f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}{headers}"
                  f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                  f"Connection: close\r\n\r\n{body}".encode())
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        s.close()
        statuses.append(int(data.split(b" ", 2)[1]))
    return statuses


class FloodTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.db = fresh_database("sec_audit_flood")
        cls.srv = Server({"ROASTERY_DATABASE_URL": cls.db, "ROASTERY_WORKERS": "0",
                          "ROASTERY_AUDIT_AGGREGATE_SECONDS": str(WINDOW),
                          "ROASTERY_EVENTGRID_SECRET": SECRET})
        # a second server behind a "proxy" on 127.0.0.1, sharing the database
        cls.proxied = Server({"ROASTERY_DATABASE_URL": cls.db, "ROASTERY_WORKERS": "0",
                              "ROASTERY_MIGRATE_ON_START": "0",
                              "ROASTERY_AUDIT_AGGREGATE_SECONDS": str(WINDOW),
                              "ROASTERY_TRUSTED_PROXIES": "127.0.0.0/8,::1"},
                             data_dir=cls.srv.data_dir)

    @classmethod
    def tearDownClass(cls):
        codes = [cls.proxied.stop(), cls.srv.stop()]
        shutil.rmtree(cls.srv.data_dir, ignore_errors=True)
        assert codes == [0, 0], f"servers exited {codes} on SIGTERM"

    def rows(self, where, *args):
        return psql(self.db, "SELECT status, count, client_addr, request_id, reason FROM audit_log"
                    f" WHERE {where} ORDER BY id;", *args)

    @staticmethod
    def settle():
        time.sleep(WINDOW + 2)  # the window closes; the flusher runs every second

    def test_unauthenticated_failures_do_not_flood_the_audit_log(self):
        self.settle()  # earlier tests' windows are closed
        last = psql(self.db, "SELECT coalesce(max(id), 0) FROM audit_log;")[0][0]
        statuses = blast(self.srv.port, 500, path="/api/v1/projects")
        self.assertEqual(set(statuses) - {401, 429}, set(), statuses)
        self.assertGreaterEqual(statuses.count(429), 400, "no per-address limit")
        self.settle()
        rows = self.rows(f"id > {int(last)}")
        added = len(rows)
        self.assertLessEqual(added, 8, rows)
        # and every one of the 500 is counted, under the status it was answered with
        by_status = {}
        for status, count, addr, _, _ in rows:
            by_status[int(status)] = by_status.get(int(status), 0) + int(count)
            self.assertEqual(addr, "127.0.0.1")
        self.assertEqual(by_status, {401: statuses.count(401), 429: statuses.count(429)}, rows)

    def test_event_grid_refusals_do_not_flood_the_audit_log(self):
        statuses = blast(self.srv.port, 120, path="/api/v1/events/azure?code=wrong", token=None,
                         method="POST", headers="aeg-event-type: Notification\r\n")
        self.assertEqual(set(statuses) - {401, 429}, set(), statuses)
        self.settle()
        n = psql(self.db, "SELECT count(*) FROM audit_log WHERE action = 'eventgrid.deliver';")
        self.assertLessEqual(int(n[0][0]), 6)
        rows = self.rows("action = 'eventgrid.deliver'")
        self.assertEqual(sum(int(r[1]) for r in rows), 120, rows)

    def test_client_address_comes_from_a_trusted_proxy_only(self):
        xff = "X-Forwarded-For: 6.6.6.6, 198.51.100.7\r\n"
        # not a trusted proxy: the header is the client's own claim
        blast(self.srv.port, 1, path="/api/v1/me", headers=xff)
        # a trusted proxy: the right-most hop it did not add itself
        blast(self.proxied.port, 1, path="/api/v1/users", headers=xff)
        untrusted = psql(self.db, "SELECT client_addr FROM audit_log WHERE action = 'auth.token'"
                         " AND subject = '/api/v1/me';")
        self.assertEqual(untrusted, [["127.0.0.1"]], "X-Forwarded-For believed from an untrusted peer")
        trusted = psql(self.db, "SELECT client_addr FROM audit_log WHERE action = 'auth.token'"
                       " AND subject = '/api/v1/users';")
        self.assertEqual(trusted, [["198.51.100.7"]])

    def test_failure_budget_is_per_forwarded_client(self):
        # one forwarded client exhausts its budget; another behind the same proxy does not
        # share it
        a = blast(self.proxied.port, 40, path="/api/v1/stores",
                  headers="X-Forwarded-For: 198.51.100.20\r\n")
        b = blast(self.proxied.port, 5, path="/api/v1/stores",
                  headers="X-Forwarded-For: 198.51.100.21\r\n")
        self.assertIn(429, a)
        self.assertEqual(b, [401] * 5)

    def test_request_ids_are_the_servers_and_the_clients_is_kept_apart(self):
        st, hdrs, body = self.srv.json("POST", "/api/v1/projects",
                                       {"id": "rid-probe", "display_name": "R"},
                                       {"X-Request-Id": "forged-id-1"},
                                       token=self.srv.token("dana-scientist", "DataScientist"))
        self.assertEqual(st, 201, body)
        self.assertNotEqual(hdrs["x-request-id"], "forged-id-1")
        rows = psql(self.db, "SELECT request_id, client_request_id FROM audit_log"
                    " WHERE action = 'POST /api/v1/projects' AND subject LIKE '%%rid-probe%%';")
        self.assertEqual(rows, [[hdrs["x-request-id"], "forged-id-1"]])
        st, _, audit = self.srv.json("GET", "/api/v1/audit?action=POST%20/api/v1/projects")
        self.assertEqual(st, 200)
        mine = [a for a in audit["items"] if a["request_id"] == hdrs["x-request-id"]]
        self.assertEqual([(a["client_request_id"], a["count"]) for a in mine],
                         [("forged-id-1", 1)])
        # refusals too: the server's id, the client's beside it
        s = socket.create_connection(("127.0.0.1", self.srv.port), timeout=10)
        s.sendall(b"GET /api/v1/operations HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Request-Id: forged-2\r\n"
                  b"Authorization: Bearer x.y.z\r\nConnection: close\r\n\r\n")
        s.recv(4096)
        s.close()
        ids = psql(self.db, "SELECT request_id, client_request_id FROM audit_log"
                   " WHERE client_request_id = 'forged-2';")
        self.assertEqual(len(ids), 1, ids)
        self.assertNotEqual(ids[0][0], "forged-2")

    def test_refusals_served_from_the_store_acl_cache_are_audited(self):
        st, _, _ = self.srv.json("POST", "/api/v1/stores",
                                 {"id": "US-SEC-001", "name": "S", "country": "USA",
                                  "city": "Boston", "timezone": "America/New_York"})
        self.assertIn(st, (201, 200))
        mgr = self.srv.token("sam-manager", "StoreManager")
        for _ in range(5):
            st, _, _ = self.srv.json("GET", "/api/v1/stores/US-SEC-001/forecasts", token=mgr)
            self.assertIn(st, (403, 404))
        rows = psql(self.db, "SELECT count(*) FROM audit_log WHERE outcome = 'denied'"
                    " AND action = 'GET /api/v1/stores/{store}/forecasts';")
        self.assertEqual(rows, [["5"]])



class ShutdownTest(unittest.TestCase):
    def test_refusals_counted_in_memory_are_written_at_shutdown(self):
        # An hour's window that never closes while the server runs: the counts still reach
        # the log when it stops.
        db = fresh_database("sec_audit_shutdown")
        srv = Server({"ROASTERY_DATABASE_URL": db, "ROASTERY_WORKERS": "0",
                      "ROASTERY_AUDIT_AGGREGATE_SECONDS": "3600"})
        try:
            statuses = blast(srv.port, 60)
        finally:
            code = srv.stop()
            shutil.rmtree(srv.data_dir, ignore_errors=True)
        self.assertEqual(code, 0)
        rows = psql(db, "SELECT status, count FROM audit_log WHERE action = 'auth.token';")
        self.assertLessEqual(len(rows), 4, rows)
        self.assertEqual(sum(int(c) for _, c in rows), 60, rows)
        self.assertEqual(sorted({int(st) for st, _ in rows}), sorted(set(statuses)))


if __name__ == "__main__":
    http_test.BINARY = os.path.abspath(sys.argv.pop(1))
    if not http_test.BASE_URL:
        print("ROASTERY_TEST_DATABASE_URL is not set (run under scripts/with-temp-pg)")
        sys.exit(77)
    result = unittest.main(exit=False, verbosity=2).result
    sys.exit(0 if result.wasSuccessful() else 1)
