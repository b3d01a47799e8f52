#!/usr/bin/env python3
"""Deeply nested JSON through every door that parses it (security review 2026-12, finding 1).

jansson's parser recurses once per level and CivetWeb's worker threads have 100 KiB stacks:
on the base commit a 2.7 KB unauthenticated bearer token whose header nested 1,000 arrays
killed the whole server, and so did a 2,000-deep body. Each test sends depth 5,000 through one
door (token header, token payload with a genuine signature, a request body, an Event Grid
delivery, the dev token route), expects a 400/401 problem, and checks that the process is still
alive and /healthz still answers."""
import base64
import json
import os
import shutil
import sys
import threading
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import http_test  # noqa: E402
from http_test import Server, fresh_database  # noqa: E402

from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import padding  # noqa: E402

DEPTH = 5000
SECRET = "nesting-test-secret"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def nested(depth):
    return "[" * depth + "]" * depth


class JsonNestingTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.db = fresh_database("security_json_nesting")
        # failed authentications are rate-limited per address (audit_log_cannot_be_flooded):
        # off here, where each refusal's reason is the property under test
        cls.srv = Server({"ROASTERY_DATABASE_URL": cls.db, "ROASTERY_WORKERS": "0",
                          "ROASTERY_AUTH_FAILURE_RATE_PER_MINUTE": "0",
                          "ROASTERY_EVENTGRID_SECRET": SECRET})

    @classmethod
    def tearDownClass(cls):
        code = cls.srv.stop()
        shutil.rmtree(cls.srv.data_dir, ignore_errors=True)
        assert code == 0, f"server exited {code} on SIGTERM"

    def assert_up(self):
        self.assertIsNone(self.srv.proc.poll(), "the server died: " + self.srv.read_log()[-2000:])
        status, _, body = self.srv.json("GET", "/healthz")
        self.assertEqual((status, body), (200, {"status": "ok"}))

    def send(self, method, path, body=None, headers=None, token="admin"):
        """The request, or None when the server dropped the connection (a crash)."""
        try:
            return self.srv.json(method, path, body, headers, token=token)
        except (OSError, http_test.http.client.HTTPException):
            return None

    def assert_token_refused(self, token, reason):
        got = self.send("GET", "/api/v1/me", token=token)
        self.assertIsNotNone(got, "no answer: the server went down")
        status, _, body = got
        self.assertEqual(status, 401, body)
        self.assertEqual(body["detail"], reason)
        self.assert_up()

    def dev_signed(self, payload_text):
        """A token signed with the dev issuer's own key: only the payload is hostile."""
        head = self.srv.token("nest-probe", "DataScientist").split(".")[0]
        with open(os.path.join(self.srv.data_dir, "dev-issuer", "key.pem"), "rb") as f:
            key = serialization.load_pem_private_key(f.read(), password=None)
        signing_input = head + "." + b64url(payload_text.encode())
        sig = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return signing_input + "." + b64url(sig)

    def claims_text(self):
        payload = self.srv.token("nest-probe", "DataScientist").split(".")[1]
        return json.dumps(json.loads(unb64url(payload)))

    # ---- the token ---------------------------------------------------------------------------

    def test_token_header_nested_5000_deep_is_refused_and_server_stays_up(self):
        header = '{"alg":"RS256","kid":"k","x":' + nested(DEPTH) + "}"
        token = b64url(header.encode()) + ".e30.AAAA"
        self.assert_token_refused(token, "token header is too long")

    def test_token_header_nested_1000_deep_like_the_review_is_refused_and_server_stays_up(self):
        header = '{"alg":"RS256","kid":"k","x":' + nested(1000) + "}"
        self.assert_token_refused(b64url(header.encode()) + ".e30.AAAA",
                                  "token header is too long")

    def test_token_header_nested_300_deep_within_the_size_cap_is_refused_and_server_stays_up(self):
        header = '{"alg":"RS256","kid":"k","x":' + nested(300) + "}"
        token = b64url(header.encode()) + ".e30.AAAA"
        self.assertLess(len(token.split(".")[0]), 1024)
        self.assert_token_refused(token, "token header is nested too deeply")

    def test_token_payload_nested_5000_deep_with_a_valid_signature_is_refused_and_server_stays_up(
            self):
        token = self.dev_signed(self.claims_text()[:-1] + ',"x":' + nested(DEPTH) + "}")
        self.assert_token_refused(token, "token payload is nested too deeply")
        # the same key still signs tokens that pass: only the nesting was refused
        status, _, me = self.srv.json("GET", "/api/v1/me",
                                      token=self.dev_signed(self.claims_text()))
        self.assertEqual(status, 200, me)

    def test_token_payload_over_14_kib_is_refused_before_decoding(self):
        token = self.dev_signed(self.claims_text()[:-1] + ',"x":"' + "A" * 11000 + '"}')
        self.assertLess(len(token), 16 * 1024)
        self.assert_token_refused(token, "token payload is too long")

    # ---- bodies ------------------------------------------------------------------------------

    def test_request_body_nested_5000_deep_is_refused_and_server_stays_up(self):
        body = '{"id":"deep","display_name":"D","x":' + nested(DEPTH) + "}"
        got = self.send("POST", "/api/v1/projects", body, {"Content-Type": "application/json"})
        self.assertIsNotNone(got, "no answer: the server went down")
        status, _, problem = got
        self.assertEqual(status, 400, problem)
        self.assertEqual(problem["errors"][0]["field"], "body")
        self.assertIn("nested at most 32 levels", problem["errors"][0]["reason"])
        self.assert_up()

    def test_request_body_of_a_role_less_caller_nested_5000_deep_is_refused_and_server_stays_up(
            self):
        nobody = self.srv.token("nobody-norole", "")
        got = self.send("POST", "/api/v1/projects", "[" * DEPTH,
                        {"Content-Type": "application/json"}, token=nobody)
        self.assertIsNotNone(got, "no answer: the server went down")
        self.assertIn(got[0], (400, 403), got[2])
        self.assert_up()

    def test_event_grid_body_nested_5000_deep_is_refused_and_server_stays_up(self):
        got = self.send("POST", "/api/v1/events/azure?code=" + SECRET, nested(DEPTH),
                        {"Content-Type": "application/json", "aeg-event-type": "Notification"},
                        token=None)
        self.assertIsNotNone(got, "no answer: the server went down")
        status, _, problem = got
        self.assertEqual(status, 400, problem)
        self.assertEqual(problem["errors"][0]["field"], "body")
        self.assertIn("nested at most 32 levels", problem["errors"][0]["reason"])
        self.assert_up()

    def test_dev_token_body_nested_5000_deep_is_refused_and_server_stays_up(self):
        body = '{"user":"deep","roles":' + nested(DEPTH) + "}"
        got = self.send("POST", "/auth/dev/token", body, {"Content-Type": "application/json"},
                        token=None)
        self.assertIsNotNone(got, "no answer: the server went down")
        status, _, problem = got
        self.assertEqual(status, 400, problem)
        self.assertEqual(problem["errors"][0]["field"], "body")
        self.assert_up()

    def test_brackets_inside_strings_are_text_not_nesting(self):
        body = json.dumps({"user": "[" * DEPTH, "roles": ["DataScientist"]})
        status, _, problem = self.srv.json("POST", "/auth/dev/token", body,
                                           {"Content-Type": "application/json"}, token=None)
        self.assertEqual(status, 400)
        self.assertEqual(problem["errors"][0]["field"], "user")  # parsed, then judged as a name
        self.assert_up()

    def test_forty_deep_requests_at_once_leave_the_server_up(self):
        header = b64url(('{"alg":"RS256","kid":"k","x":' + nested(300) + "}").encode())
        results = []

        def attack(i):
            if i % 2:
                results.append(self.send("GET", "/api/v1/me", token=header + ".e30.AAAA"))
            else:
                results.append(self.send("POST", "/auth/dev/token", "[" * 20000,
                                         {"Content-Type": "application/json"}, token=None))

        threads = [threading.Thread(target=attack, args=(i,)) for i in range(40)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(sorted({r[0] for r in results if r}), [400, 401])
        self.assertEqual(len([r for r in results if r]), 40)
        self.assert_up()


if __name__ == "__main__":
    http_test.BINARY = os.path.abspath(sys.argv.pop(1))
    if not http_test.BASE_URL:
        sys.exit(77)
    result = unittest.main(exit=False, verbosity=2).result
    sys.exit(0 if result.wasSuccessful() else 1)
