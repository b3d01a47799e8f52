#!/usr/bin/env python3
"""The dev issuer is local only, for real (review findings 7, 11 and 16): every entry of a
listen list must be loopback, a request whose Host is not a loopback name is refused (DNS
rebinding), every mint is audited, and the sign-in page runs under a CSP with no framing.
Nothing listens anywhere but 127.0.0.1: the refused listen lists name addresses that cannot be
bound here, so even a server that accepted them would not expose anything."""
import base64
import hashlib
import http.client
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import http_test  # noqa: E402
from http_test import Server, fresh_database  # noqa: E402


def raw(port, method, path, host, body=None):
    """A request with exactly this Host header, as a rebinding page's browser would send."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    if host is not None:
        conn.putheader("Host", host)
    if body is not None:
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(len(body)))
    conn.endheaders(body.encode() if body is not None else None)
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, data


class DevIssuerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.db = fresh_database("sec_dev_issuer")
        cls.srv = Server({"ROASTERY_DATABASE_URL": cls.db, "ROASTERY_WORKERS": "0"})

    @classmethod
    def tearDownClass(cls):
        code = cls.srv.stop()
        shutil.rmtree(cls.srv.data_dir, ignore_errors=True)
        assert code == 0, f"server exited {code} on SIGTERM"

    def serve(self, listen):
        """Starts serve with this listen list in dev mode; (exit status, stderr)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("ROASTERY_")}
        d = tempfile.mkdtemp(prefix="roastery-devlisten-")
        env.update({"ROASTERY_AUTH": "dev", "ROASTERY_LISTEN": listen, "ROASTERY_DATA_DIR": d,
                    "ROASTERY_DATABASE_URL": self.db, "ROASTERY_WORKERS": "0",
                    "ROASTERY_MIGRATE_ON_START": "0"})
        try:
            p = subprocess.run([http_test.BINARY, "serve"], env=env, capture_output=True,
                               text=True, timeout=30)
            return p.returncode, p.stderr
        except subprocess.TimeoutExpired:
            return None, "still running after 30 s"
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def test_dev_issuer_refuses_a_non_loopback_entry_in_a_listen_list(self):
        a, b = http_test.free_port(), http_test.free_port()
        for listen in [f"127.0.0.1:{a},198.51.100.7:{b}", f"127.0.0.1:{a},[2001:db8::1]:{b}",
                       f"127.0.0.1:{a},rebind.attacker.invalid:{b}",
                       f"localhost:{a},192.0.2.1:{b}", f"127.0.0.1.attacker.invalid:{a}"]:
            code, err = self.serve(listen)
            self.assertEqual(code, 2, (listen, err))
            self.assertIn("loopback", err, listen)

    def test_dev_issuer_refuses_a_host_that_is_not_a_loopback_name(self):
        body = '{"user": "remote-admin", "roles": ["PlatformAdmin"]}'
        port = self.srv.port
        for host in ["rebind.attacker.example", f"rebind.attacker.example:{port}",
                     f"127.0.0.1.attacker.example:{port}", f"localhost.attacker.example:{port}",
                     "10.0.0.5", f"[::ffff:127.0.0.1]:{port}", f"127.0.0.1:{port}@evil", None]:
            st, _, data = raw(port, "POST", "/auth/dev/token", host, body)
            self.assertEqual(st, 403, (host, data))
            self.assertNotIn(b"access_token", data)
            st, _, _ = raw(port, "GET", "/auth/dev/sign-in", host)
            self.assertEqual(st, 403, host)
        for host in [f"127.0.0.1:{port}", "127.0.0.1", f"localhost:{port}", f"[::1]:{port}",
                     f"127.1.2.3:{port}"]:
            st, _, data = raw(port, "POST", "/auth/dev/token", host, body)
            self.assertEqual(st, 200, (host, data))
            self.assertIn(b"access_token", data)

    def test_every_dev_mint_is_audited(self):
        st, _, tok = self.srv.json("POST", "/auth/dev/token",
                                   {"user": "mallory-minted", "roles": ["PlatformAdmin",
                                                                        "StoreManager"]},
                                   token=None)
        self.assertEqual(st, 200, tok)
        st, _, audit = self.srv.json("GET", "/api/v1/audit?action=dev.token&outcome=succeeded")
        self.assertEqual(st, 200, audit)
        rows = [a for a in audit["items"] if "mallory-minted" in (a["reason"] or "")]
        self.assertEqual(len(rows), 1, audit)
        self.assertIn("PlatformAdmin", rows[0]["reason"])
        self.assertIn("StoreManager", rows[0]["reason"])
        self.assertEqual(rows[0]["client_addr"], "127.0.0.1")
        self.assertEqual(rows[0]["status"], 200)
        # a refused mint (rebound Host) is on the record as well
        raw(self.srv.port, "POST", "/auth/dev/token", "rebind.attacker.example",
            '{"user": "rebound", "roles": ["PlatformAdmin"]}')
        st, _, denied = self.srv.json("GET", "/api/v1/audit?action=dev.token&outcome=denied")
        self.assertTrue(denied["items"], denied)

    def test_dev_sign_in_page_has_a_csp_and_cannot_be_framed(self):
        st, hdrs, page = self.srv.request("GET", "/auth/dev/sign-in", token=None)
        self.assertEqual(st, 200)
        csp = hdrs.get("content-security-policy", "")
        self.assertIn("frame-ancestors 'none'", csp)
        self.assertIn("default-src 'none'", csp)
        self.assertNotIn("unsafe-inline", csp)
        self.assertEqual(hdrs.get("x-frame-options"), "DENY")
        # every inline script and style is allowed by its own hash, and only those
        for tag, directive in (("script", "script-src"), ("style", "style-src")):
            inline = re.findall(rf"<{tag}>(.*?)</{tag}>".encode(), page, re.S)
            self.assertTrue(inline, tag)
            allowed = re.search(rf"{directive} ([^;]*)", csp).group(1).split()
            want = sorted("'sha256-" + base64.b64encode(hashlib.sha256(x).digest()).decode()
                          + "'" for x in inline)
            self.assertEqual(sorted(allowed), want, directive)


if __name__ == "__main__":
    http_test.BINARY = os.path.abspath(sys.argv.pop(1))
    if not http_test.BASE_URL:
        print("ROASTERY_TEST_DATABASE_URL is not set (run under scripts/with-temp-pg)")
        sys.exit(77)
    result = unittest.main(exit=False, verbosity=2).result
    sys.exit(0 if result.wasSuccessful() else 1)
