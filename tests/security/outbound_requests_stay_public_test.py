#!/usr/bin/env python3
"""Outbound requests stay public (review finding 5): webhook targets are refused at
registration when they name a private, shared, platform or IPv4-embedding address (in any
spelling) or a port other than 443 (80 in dev); the delivery connects only where the filter
allows, never through a proxy from the environment; and the delivery log keeps a generic error
class, not what the receiver or the client library said. Every listener is on 127.0.0.1."""
import http.server
import json
import os
import shutil
import socket
import sys
import threading
import time
import unittest
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import http_test  # noqa: E402
from http_test import Server, fresh_database, psql  # noqa: E402

P = "/api/v1/projects/hooks"
LEAK = "internal: db password is hunter2"


class Answer(http.server.BaseHTTPRequestHandler):
    """Answers every POST with the status its server was built with and a revealing body."""

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.hits += 1
        self.send_response(self.server.status)
        body = LEAK.encode() if self.server.status >= 300 else b"ok"
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_CONNECT(self):  # as a proxy: count and refuse
        self.server.hits += 1
        self.send_response(502)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def answering(status):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    srv.status, srv.hits = status, 0
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


class Silent:
    """Accepts connections and never answers (a timeout); counts what connected."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted, self.held = 0, []
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            self.held.append(c)

    def close(self):
        self.sock.close()
        for c in self.held:
            c.close()


class OutboundTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.failing = answering(500)
        cls.ok = answering(200)
        cls.proxy = answering(502)
        cls.silent = Silent()
        cls.closed = http_test.free_port()  # nothing listens there
        ports = [cls.failing.server_address[1], cls.ok.server_address[1], cls.silent.port,
                 cls.closed]
        cls.db = fresh_database("sec_outbound")
        proxy = f"http://127.0.0.1:{cls.proxy.server_address[1]}"
        cls.srv = Server({
            "ROASTERY_DATABASE_URL": cls.db, "ROASTERY_WORKERS": "2",
            "ROASTERY_WEBHOOK_PORTS": ",".join(map(str, ports)),
            "ROASTERY_WEBHOOK_MAX_ATTEMPTS": "1", "ROASTERY_WEBHOOK_TIMEOUT_SECONDS": "1",
            # a proxy in the environment must not carry deliveries past the address filter
            "http_proxy": proxy, "https_proxy": proxy, "HTTPS_PROXY": proxy, "all_proxy": proxy,
            "ALL_PROXY": proxy, "no_proxy": "", "NO_PROXY": ""})
        cls.ds = cls.srv.token("dana-scientist", "DataScientist")
        assert cls.srv.json("POST", "/api/v1/projects", {"id": "hooks", "display_name": "H"},
                            token=cls.ds)[0] == 201

    @classmethod
    def tearDownClass(cls):
        code = cls.srv.stop()
        for s in (cls.failing, cls.ok, cls.proxy):
            s.shutdown()
        cls.silent.close()
        shutil.rmtree(cls.srv.data_dir, ignore_errors=True)
        assert code == 0, f"server exited {code} on SIGTERM"

    def register(self, url):
        return self.srv.json("POST", P + "/webhooks", {"url": url, "events": ["run.finished"]},
                             token=self.ds)

    def delivered(self, hook_id, timeout=30):
        st, _, d = self.srv.json("POST", f"{P}/webhooks/{hook_id}/ping", token=self.ds)
        self.assertEqual(st, 202, d)
        deadline = time.time() + timeout
        while True:
            items = self.srv.json("GET", f"{P}/webhooks/{hook_id}/deliveries",
                                  token=self.ds)[2]["items"]
            if items and items[0]["state"] in ("delivered", "failed"):
                return items[0]
            if time.time() > deadline:
                raise AssertionError(f"delivery still {items}")
            time.sleep(0.1)

    def test_webhook_registration_refuses_private_shared_and_embedded_addresses(self):
        for url in ["https://10.9.9.9/hook", "https://0x0a090909/", "https://167772161/",
                    "https://012.011.011.011/", "https://192.168.77.7/", "https://172.16.5.5/",
                    "https://100.64.1.1/", "https://168.63.129.16/machine",
                    "https://169.254.169.254/latest/meta-data", "https://[fd00::77]/x",
                    "https://[::ffff:10.9.9.9]/", "https://[::ffff:169.254.169.254]/",
                    "https://[64:ff9b::a9fe:a9fe]/", "https://[2002:a09:909::1]/",
                    "https://[fec0::1]/", "https://198.18.0.1/", "https://240.0.0.1/",
                    "https://0/"]:
            st, _, problem = self.register(url)
            self.assertEqual(st, 400, (url, problem))
            reasons = {e["field"]: e["reason"] for e in problem["errors"]}
            self.assertIn("public address", reasons.get("url", ""), (url, problem))
        # nor can a PATCH move an accepted webhook there
        st, _, hook = self.register("https://hooks.example.com/roastery")
        self.assertEqual(st, 201, hook)
        st, _, problem = self.srv.json("PATCH", f"{P}/webhooks/{hook['id']}",
                                       {"url": "https://[::ffff:10.9.9.9]/"}, token=self.ds)
        self.assertEqual(st, 400, problem)

    def test_webhook_ports_are_443_or_80_in_dev(self):
        for url in ["https://hooks.example.com:8443/", "https://hooks.example.com:22/",
                    "http://127.0.0.1:5432/", "http://localhost:6379/"]:
            st, _, problem = self.register(url)
            self.assertEqual(st, 400, (url, problem))
            self.assertEqual(problem["errors"][0]["field"], "url")
        for url in ["https://hooks.example.com:443/a", "http://127.0.0.1/hook"]:
            self.assertEqual(self.register(url)[0], 201, url)

    def test_delivery_log_keeps_a_generic_error_class_not_the_receivers_answer(self):
        cases = [(f"http://127.0.0.1:{self.failing.server_address[1]}/h", "HTTP 5xx", 500),
                 (f"http://127.0.0.1:{self.closed}/h", "connection failed", None),
                 (f"https://127.0.0.1:{self.ok.server_address[1]}/h", "TLS failed", None),
                 (f"http://127.0.0.1:{self.silent.port}/h", "timeout", None)]
        for url, error, status in cases:
            st, _, hook = self.register(url)
            self.assertEqual(st, 201, (url, hook))
            d = self.delivered(hook["id"])
            self.assertEqual((d["state"], d["last_error"], d["last_status"]),
                             ("failed", error, status), url)
            self.assertEqual([a.get("error") for a in d["history"]], [error], url)
            self.assertNotIn("hunter2", json.dumps(d))
            self.assertNotIn("Connection refused", json.dumps(d))

    def test_deliveries_ignore_a_proxy_in_the_environment(self):
        st, _, hook = self.register(f"http://127.0.0.1:{self.ok.server_address[1]}/ok")
        self.assertEqual(st, 201, hook)
        before = self.ok.hits
        d = self.delivered(hook["id"])
        self.assertEqual((d["state"], d["last_status"]), ("delivered", 200), d)
        self.assertEqual(self.ok.hits, before + 1)
        self.assertEqual(self.proxy.hits, 0)

    def test_a_stored_webhook_to_an_embedded_address_is_refused_at_delivery(self):
        # A row from before the rules (or written around the API) is held to them too: the
        # IPv4-mapped spelling of a loopback listener never connects.
        listener = Silent()
        try:
            owner = psql(self.db, "SELECT created_by FROM projects WHERE id = 'hooks';")[0][0]
            hook = psql(self.db, "INSERT INTO webhooks(project_id, url, events, secret,"
                        " created_by) VALUES ('hooks', :'v1', '{run.finished}', 'whsec_x',"
                        " :'v2') RETURNING id;",
                        f"https://[::ffff:127.0.0.1]:{listener.port}/", owner)[0][0]
            d = self.delivered(str(uuid.UUID(hook)))
            self.assertEqual((d["state"], d["last_error"]), ("failed", "address not allowed"))
            self.assertEqual(listener.accepted, 0)
        finally:
            listener.close()


if __name__ == "__main__":
    http_test.BINARY = os.path.abspath(sys.argv.pop(1))
    if not http_test.BASE_URL:
        print("ROASTERY_TEST_DATABASE_URL is not set (run under scripts/with-temp-pg)")
        sys.exit(77)
    result = unittest.main(exit=False, verbosity=2).result
    sys.exit(0 if result.wasSuccessful() else 1)
