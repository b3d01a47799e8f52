#!/usr/bin/env python3
"""Identity, access and audit through the real server in azuread mode:
tokens are minted here by python3-jwt (not by our code) against a JWKS
file this test writes; every response is checked against openapi.yaml."""
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import uuid

import jwt
from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import http_test  # noqa: E402
from http_test import Server, fresh_database, psql  # noqa: E402

TENANT = "3f2c1a9e-5b7d-4e21-9c0a-1d2e3f4a5b6c"
OTHER_TENANT = "99999999-5b7d-4e21-9c0a-1d2e3f4a5b6c"
AUDIENCE = "api://roastery"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwk(key, kid):
    pub = key.public_key().public_numbers()
    n = pub.n.to_bytes((pub.n.bit_length() + 7) // 8, "big")
    e = pub.e.to_bytes((pub.e.bit_length() + 7) // 8, "big")
    return {"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": b64url(n), "e": b64url(e)}


class Issuer:
    def __init__(self, directory):
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.rotated = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.path = os.path.join(directory, "jwks.json")
        self.write([jwk(self.key, "key-1")])

    def write(self, keys):
        with open(self.path + ".tmp", "w") as f:
            json.dump({"keys": keys}, f)
        os.replace(self.path + ".tmp", self.path)

    def token(self, oid=None, roles=("DataScientist",), key=None, kid="key-1", **overrides):
        now = int(time.time())
        claims = {"iss": f"https://login.microsoftonline.com/{TENANT}/v2.0", "aud": AUDIENCE,
                  "tid": TENANT, "oid": oid or str(uuid.uuid4()), "name": "Test Person",
                  "iat": now, "nbf": now, "exp": now + 3600, "roles": None if roles is None else list(roles)}
        claims.update(overrides)
        claims = {k: v for k, v in claims.items() if v is not None}
        return jwt.encode(claims, key or self.key, algorithm="RS256", headers={"kid": kid})


class AccessTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="roastery-access-")
        cls.issuer = Issuer(cls.dir)
        cls.db = fresh_database("http_access")
        cls.srv = Server({"ROASTERY_DATABASE_URL": cls.db, "ROASTERY_AUTH": "azuread",
                          "ROASTERY_AAD_JWKS_URL": "file://" + cls.issuer.path,
                          "ROASTERY_AAD_TENANT_ID": TENANT, "ROASTERY_AAD_AUDIENCE": AUDIENCE,
                          "ROASTERY_RATE_LIMIT_PER_SECOND": "1000", "ROASTERY_WORKERS": "0",
                          "ROASTERY_AAD_JWKS_MIN_REFETCH_SECONDS": "3"})
        cls.admin_oid = str(uuid.uuid4())
        cls.admin = cls.issuer.token(cls.admin_oid, roles=["PlatformAdmin"])
        cls.scientist_oid = str(uuid.uuid4())
        cls.scientist = cls.issuer.token(cls.scientist_oid, roles=["DataScientist"])
        cls.manager_oid = str(uuid.uuid4())
        cls.manager = cls.issuer.token(cls.manager_oid, roles=["StoreManager"])
        for store, country, city, tz in [("US-SEA-001", "USA", "Seattle", "America/Los_Angeles"),
                                         ("CA-TOR-001", "Canada", "Toronto", "America/Toronto")]:
            status, _, _ = cls.srv.json("POST", "/api/v1/stores", {
                "id": store, "name": f"GloboJava {city}", "country": country, "city": city,
                "timezone": tz}, token=cls.admin)
            assert status == 201, status
        status, _, _ = cls.srv.json("PUT", f"/api/v1/stores/US-SEA-001/managers/{cls.manager_oid}",
                                    token=cls.admin)
        assert status == 201, status

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()
        shutil.rmtree(cls.srv.data_dir, ignore_errors=True)
        shutil.rmtree(cls.dir, ignore_errors=True)

    def call(self, method, path, token, body=None, headers=None):
        return self.srv.json(method, path, body, headers, token=token)

    def assert_401(self, token, reason):
        status, hdrs, body = self.call("GET", "/api/v1/me", token)
        self.assertEqual(status, 401, reason)
        self.assertIn('error="invalid_token"', hdrs["www-authenticate"])
        self.assertIn(reason, body["detail"])
        if token:
            self.assertNotIn(token, body["detail"])
            parts = token.split(".")
            if len(parts) > 1 and len(parts[1]) >= 40:
                self.assertNotIn(parts[1][:40], self.srv.read_log())

    # ---- tokens -------------------------------------------------------------

    def test_valid_token_for_each_role(self):
        for roles in (["PlatformAdmin"], ["DataScientist"], ["StoreManager"],
                      ["DataScientist", "PlatformAdmin"]):
            oid = str(uuid.uuid4())
            status, _, me = self.call("GET", "/api/v1/me", self.issuer.token(oid, roles=roles))
            self.assertEqual(status, 200)
            self.assertEqual((me["oid"], sorted(me["roles"])), (oid, sorted(roles)))

    def test_token_failures(self):
        now = int(time.time())
        t = self.issuer.token
        self.assert_401(None, "missing bearer token")
        self.assert_401(t(exp=now - 3600, iat=now - 7200, nbf=now - 7200), "expired")
        self.assert_401(t(nbf=now + 3600), "not yet valid")
        self.assert_401(t(iss="https://login.microsoftonline.com/evil/v2.0"), "issuer")
        self.assert_401(t(aud="api://someone-else"), "audience")
        self.assert_401(t(tid=OTHER_TENANT, iss=f"https://login.microsoftonline.com/{OTHER_TENANT}/v2.0"),
                        "tenant")
        self.assert_401(t(iss=f"https://sts.windows.net/{TENANT}/"), "issuer")
        self.assert_401(t(kid="nobody-knows"), "unknown signing key")
        self.assert_401(t(key=self.issuer.rotated), "signature")
        good = t()
        header, payload, sig = good.split(".")
        claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
        claims["roles"] = ["PlatformAdmin"]
        self.assert_401(f"{header}.{b64url(json.dumps(claims).encode())}.{sig}", "signature")
        self.assert_401(good[:-20], "")
        self.assert_401(good[: len(good) // 2], "")
        none_hdr = b64url(json.dumps({"alg": "none", "typ": "JWT", "kid": "key-1"}).encode())
        self.assert_401(f"{none_hdr}.{payload}.", "algorithm")
        pem = self.issuer.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        hs_hdr = b64url(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "key-1"}).encode())
        mac = hmac.HMAC(pem, hashes.SHA256())
        mac.update(f"{hs_hdr}.{payload}".encode())
        self.assert_401(f"{hs_hdr}.{payload}.{b64url(mac.finalize())}", "algorithm")
        self.assert_401("not-a-jwt", "malformed")
        status, _, _ = self.srv.request("GET", "/api/v1/me", check=False,
                                        headers={"Authorization": "Bearer " + "A" * 100_000},
                                        token=None)
        self.assertIn(status, (400, 401, 431))
        self.assertEqual(self.srv.request("GET", "/healthz")[0], 200)
        # token failures land in the audit log without the token
        _, _, page = self.call("GET", "/api/v1/audit?action=auth.token&outcome=denied&limit=200",
                               self.admin)
        reasons = {e["reason"] for e in page["items"]}
        self.assertTrue(any("expired" in r for r in reasons))
        self.assertFalse(any(good[:30] in r for r in reasons))

    def test_missing_roles_is_valid_but_without_rights(self):
        token = self.issuer.token(roles=None)
        status, _, me = self.call("GET", "/api/v1/me", token)
        self.assertEqual((status, me["roles"]), (200, []))
        status, _, body = self.call("POST", "/api/v1/projects", token,
                                    {"id": "nope", "display_name": "Nope"})
        self.assertEqual(status, 403)

    def test_delegated_token_needs_scope(self):
        status, _, _ = self.call("GET", "/api/v1/me", self.issuer.token(scp="User.Read"))
        self.assertEqual(status, 401)
        status, _, _ = self.call("GET", "/api/v1/me",
                                 self.issuer.token(scp="User.Read access_as_user"))
        self.assertEqual(status, 200)

    def test_key_rollover(self):
        rotated = self.issuer.token(key=self.issuer.rotated, kid="key-2")
        self.issuer.write([jwk(self.issuer.key, "key-1"), jwk(self.issuer.rotated, "key-2")])
        try:
            deadline = time.time() + 10  # unknown kids refetch at most every 3 s here
            while time.time() < deadline:
                if self.call("GET", "/api/v1/me", rotated)[0] == 200:
                    break
                time.sleep(1)
            self.assertEqual(self.call("GET", "/api/v1/me", rotated)[0], 200)
            self.assertEqual(self.call("GET", "/api/v1/me", self.issuer.token())[0], 200)
        finally:
            self.issuer.write([jwk(self.issuer.key, "key-1")])

    # ---- access -------------------------------------------------------------

    def test_projects_members_and_hidden_existence(self):
        owner_oid = str(uuid.uuid4())
        owner = self.issuer.token(owner_oid)
        outsider = self.issuer.token()
        status, hdrs, p = self.call("POST", "/api/v1/projects", owner,
                                    {"id": "demand-forecast", "display_name": "Demand forecast"})
        self.assertEqual(status, 201)
        self.assertEqual(hdrs["location"], "/api/v1/projects/demand-forecast")
        self.assertEqual(self.call("GET", "/api/v1/projects/demand-forecast", outsider)[0], 404)
        self.assertEqual(self.call("GET", "/api/v1/projects/no-such-project", outsider)[0], 404)
        status, _, body = self.call("PATCH", "/api/v1/projects/demand-forecast", owner,
                                    {"monthly_budget_usd": 5000})
        self.assertEqual(status, 403)
        status, hdrs, p = self.call("PATCH", "/api/v1/projects/demand-forecast", self.admin,
                                    {"monthly_budget_usd": 5000, "compute_quota_cores": 64})
        self.assertEqual((status, p["monthly_budget_usd"], p["compute_quota_cores"]), (200, 5000, 64))
        status, _, _ = self.call("PATCH", "/api/v1/projects/demand-forecast", owner,
                                 {"description": "x"}, headers={"If-Match": '"v1"'})
        self.assertEqual(status, 412)
        status, _, p = self.call("PATCH", "/api/v1/projects/demand-forecast", owner,
                                 {"description": "GloboJava daily demand"},
                                 headers={"If-Match": hdrs["etag"]})
        self.assertEqual((status, p["description"]), (200, "GloboJava daily demand"))
        reader_oid = str(uuid.uuid4())
        status, _, m = self.call("PUT", f"/api/v1/projects/demand-forecast/members/{reader_oid}",
                                 owner, {"role": "reader", "name": "Rita Reader"})
        self.assertEqual((status, m["role"], m["name"]), (201, "reader", "Rita Reader"))
        reader = self.issuer.token(reader_oid)
        self.assertEqual(self.call("GET", "/api/v1/projects/demand-forecast", reader)[0], 200)
        self.assertEqual(self.call("PATCH", "/api/v1/projects/demand-forecast", reader,
                                   {"description": "y"})[0], 403)
        status, _, _ = self.call("DELETE", f"/api/v1/projects/demand-forecast/members/{owner_oid}", owner)
        self.assertEqual(status, 409)  # the last owner stays
        _, _, page = self.call("GET", "/api/v1/projects", reader)
        self.assertEqual([x["id"] for x in page["items"]], ["demand-forecast"])
        _, _, page = self.call("GET", "/api/v1/projects", outsider)
        self.assertEqual(page["items"], [])

    def test_validation_names_fields(self):
        status, _, body = self.call("POST", "/api/v1/projects", self.scientist,
                                    {"id": "Bad Id!", "display_name": "", "colour": "red"})
        self.assertEqual(status, 400)
        fields = {e["field"] for e in body["errors"]}
        self.assertEqual(fields, {"id", "display_name", "colour"})
        status, _, body = self.srv.json("POST", "/api/v1/projects", None, token=self.scientist,
                                        headers={"Content-Type": "text/plain"})
        self.assertEqual(status, 415)
        status, _, body = self.srv.request("POST", "/api/v1/projects", body='{"id": "a",',
                                           headers={"Content-Type": "application/json"},
                                           token=self.scientist)
        self.assertEqual(status, 400)
        self.assertIn("line 1", json.loads(body)["detail"])

    def test_store_manager_sees_only_assigned_stores(self):
        _, _, page = self.call("GET", "/api/v1/stores", self.manager)
        self.assertEqual([s["id"] for s in page["items"]], ["US-SEA-001"])
        self.assertEqual(self.call("GET", "/api/v1/stores/US-SEA-001", self.manager)[0], 200)
        self.assertEqual(self.call("GET", "/api/v1/stores/CA-TOR-001", self.manager)[0], 404)
        self.assertEqual(self.call("GET", "/api/v1/stores/CA-TOR-001/managers", self.manager)[0], 403)
        _, _, me = self.call("GET", "/api/v1/me", self.manager)
        self.assertEqual([s["id"] for s in me["stores"]], ["US-SEA-001"])
        _, _, page = self.call("GET", "/api/v1/stores", self.scientist)
        self.assertEqual(len(page["items"]), 2)
        self.assertEqual(self.call("POST", "/api/v1/stores", self.scientist,
                                   {"id": "MX-1", "name": "x", "country": "Mexico", "city": "CDMX",
                                    "timezone": "America/Mexico_City"})[0], 403)
        for path in ["/api/v1/audit", "/api/v1/users"]:
            self.assertEqual(self.call("GET", path, self.manager)[0], 403)

    def test_operations_are_visible_to_their_project_only(self):
        owner = self.issuer.token()
        self.call("POST", "/api/v1/projects", owner, {"id": "ops-vis", "display_name": "Ops"})
        rows = psql(self.db, "INSERT INTO operations(kind, subject, next_attempt_at) VALUES "
                    "('test.x', 'projects/ops-vis/datasets/1', now() + interval '1 day') RETURNING id;")
        op = rows[0][0]
        self.assertEqual(self.call("GET", f"/api/v1/operations/{op}", owner)[0], 200)
        self.assertEqual(self.call("GET", f"/api/v1/operations/{op}", self.scientist)[0], 404)
        _, _, page = self.call("GET", "/api/v1/operations?subject=projects/ops-vis/datasets/1",
                               self.scientist)
        self.assertEqual(page["items"], [])
        self.assertEqual(self.call("POST", f"/api/v1/operations/{op}/cancel", self.manager)[0], 404)
        self.assertEqual(self.call("POST", f"/api/v1/operations/{op}/cancel", owner)[0], 202)

    # ---- audit, idempotency, rate limit ------------------------------------

    def test_audit_log_records_and_is_append_only(self):
        owner = self.issuer.token()
        self.call("POST", "/api/v1/projects", owner, {"id": "audited", "display_name": "A"})
        self.call("GET", "/api/v1/projects/audited", self.manager)  # hidden: denied
        _, _, page = self.call("GET", "/api/v1/audit?subject=audited", self.admin)
        self.assertTrue(any(e["action"] == "POST /api/v1/projects" and e["outcome"] == "succeeded"
                            for e in page["items"]))
        _, _, page = self.call("GET", f"/api/v1/audit?actor={self.manager_oid}&outcome=denied",
                               self.admin)
        self.assertTrue(page["items"])
        for sql in ["UPDATE audit_log SET outcome = 'allowed';", "DELETE FROM audit_log;",
                    "TRUNCATE audit_log;"]:
            with self.assertRaises(subprocess.CalledProcessError):
                psql(self.db, sql)

    def test_idempotency_key_replays_and_refuses_other_bodies(self):
        key = str(uuid.uuid4())
        body = {"id": "idem-proj", "display_name": "Idem"}
        h = {"Idempotency-Key": key}
        s1, h1, b1 = self.call("POST", "/api/v1/projects", self.scientist, body, h)
        s2, h2, b2 = self.call("POST", "/api/v1/projects", self.scientist, body, h)
        self.assertEqual((s1, s2, b1, h2.get("idempotent-replayed")), (201, 201, b2, "true"))
        self.assertEqual(h2["location"], h1["location"])
        s3, _, b3 = self.call("POST", "/api/v1/projects", self.scientist,
                              {"id": "idem-other", "display_name": "Other"}, h)
        self.assertEqual(s3, 422)
        s4, _, _ = self.call("POST", "/api/v1/projects", self.scientist, body,
                             {"Idempotency-Key": str(uuid.uuid4())})
        self.assertEqual(s4, 409)  # a new key runs the request again: it already exists

    def test_rate_limit_answers_429_with_retry_after(self):
        srv = Server({"ROASTERY_DATABASE_URL": self.db, "ROASTERY_AUTH": "azuread",
                      "ROASTERY_AAD_JWKS_URL": "file://" + self.issuer.path,
                      "ROASTERY_AAD_TENANT_ID": TENANT, "ROASTERY_AAD_AUDIENCE": AUDIENCE,
                      "ROASTERY_RATE_LIMIT_PER_SECOND": "1", "ROASTERY_RATE_LIMIT_BURST": "5",
                      "ROASTERY_WORKERS": "0", "ROASTERY_MIGRATE_ON_START": "0"})
        try:
            token = self.issuer.token()
            statuses = [srv.json("GET", "/api/v1/me", token=token)[0] for _ in range(8)]
            self.assertEqual(statuses[:5], [200] * 5)
            self.assertIn(429, statuses[5:])
            status, hdrs, _ = srv.json("GET", "/api/v1/me", token=token)
            self.assertEqual((status, hdrs.get("retry-after")), (429, "1"))
            self.assertEqual(srv.json("GET", "/api/v1/me", token=self.issuer.token())[0], 200)
        finally:
            srv.stop()
            shutil.rmtree(srv.data_dir, ignore_errors=True)


if __name__ == "__main__":
    http_test.BINARY = os.path.abspath(sys.argv.pop(1))
    if not http_test.BASE_URL:
        sys.exit(77)
    result = unittest.main(exit=False, verbosity=2).result
    print(f"contract: {len(http_test.CONTRACT.checked)} (method, route, status) combinations checked")
    sys.exit(0 if result.wasSuccessful() else 1)
