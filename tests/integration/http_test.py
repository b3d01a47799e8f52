#!/usr/bin/env python3
"""HTTP-level integration tests: the real roastery binary against a real
PostgreSQL (ROASTERY_TEST_DATABASE_URL, from scripts/with-temp-pg), talked
to with a real HTTP client; every response is checked against openapi.yaml."""
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from contract import Contract  # noqa: E402

BINARY = None
BASE_URL = os.environ.get("ROASTERY_TEST_DATABASE_URL")
CONTRACT = Contract()
PG_BIN = sorted(os.path.dirname(p) for p in
                __import__("glob").glob("/usr/lib/postgresql/*/bin/initdb"))[-1]


def psql(conninfo, sql, *args):
    """Runs sql with psql variables :v1.. and returns rows as lists."""
    cmd = ["psql", "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-d", conninfo]
    for i, a in enumerate(args, 1):
        cmd += ["-v", f"v{i}={a}"]
    out = subprocess.run(cmd, input=sql, capture_output=True, text=True, check=True).stdout
    return [line.split("\t") for line in out.splitlines() if line]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def fresh_database(name):
    psql(BASE_URL, f'DROP DATABASE IF EXISTS "{name}"; CREATE DATABASE "{name}";')
    return BASE_URL.replace("dbname=postgres", f"dbname={name}")


class Server:
    def __init__(self, env_extra, data_dir=None, command="serve"):
        self.port = free_port()
        self.probe_port = free_port()  # /healthz, /readyz and /metrics on threads of their own
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="roastery-test-")
        env = {k: v for k, v in os.environ.items() if not k.startswith("ROASTERY_")}
        env.update({"ROASTERY_LISTEN": f"127.0.0.1:{self.port}", "ROASTERY_DATA_DIR": self.data_dir,
                    "ROASTERY_AUTH": "dev",
                    "ROASTERY_PROBE_LISTEN": f"127.0.0.1:{self.probe_port}",
                    "ROASTERY_HTTP_THREADS": "8", "ROASTERY_LOG_LEVEL": "info",
                    "ROASTERY_POLL_INTERVAL_MS": "200", "ROASTERY_RETRY_BASE_MS": "100"})
        env.update(env_extra)
        self.env = env
        self.tokens = {}
        self.log_dir = tempfile.mkdtemp(prefix="roastery-log-")
        self.log = open(os.path.join(self.log_dir, "server.log"), "w+")
        self.proc = subprocess.Popen([BINARY, command], env=env, stdout=self.log, stderr=self.log)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("server exited: " + self.read_log())
            try:
                if self.request("GET", "/healthz", check=False)[0] == 200:
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("server did not start: " + self.read_log())

    def read_log(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def token(self, user="test-admin", roles="PlatformAdmin"):
        """A token from the dev issuer, minted by `roastery token` as a user would."""
        if (user, roles) not in self.tokens:
            p = subprocess.run([BINARY, "token", "--user", user, "--roles", roles], env=self.env,
                               capture_output=True, text=True, check=True)
            self.tokens[(user, roles)] = p.stdout.strip()
        return self.tokens[(user, roles)]

    def request(self, method, path, body=None, headers=None, check=True, token="admin", port=None):
        conn = http.client.HTTPConnection("127.0.0.1", port or self.port, timeout=10)
        hdrs = dict(headers or {})
        if token == "admin" and path.startswith("/api/"):
            token = self.token()
        if token and token != "admin":
            hdrs.setdefault("Authorization", f"Bearer {token}")
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
            hdrs.setdefault("Content-Type", "application/json")
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        if check:
            CONTRACT.check(method, path, resp.status, resp.getheader("Content-Type"), data)
        return resp.status, dict((k.lower(), v) for k, v in resp.getheaders()), data

    def json(self, method, path, body=None, headers=None, token="admin"):
        status, hdrs, data = self.request(method, path, body, headers, token=token)
        return status, hdrs, (json.loads(data) if data else None)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.log_dir, ignore_errors=True)
        return self.proc.returncode


class ApiTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.db = fresh_database("http_api")
        cls.srv = Server({"ROASTERY_DATABASE_URL": cls.db, "ROASTERY_WORKERS": "2"})

    @classmethod
    def tearDownClass(cls):
        code = cls.srv.stop()
        shutil.rmtree(cls.srv.data_dir, ignore_errors=True)
        assert code == 0, f"server exited {code} on SIGTERM"

    def insert_operation(self, kind="test.unknown", state="queued", subject="", extra=""):
        rows = psql(self.db, "INSERT INTO operations(kind, state, subject, next_attempt_at) "
                    "VALUES (:'v1', :'v2', :'v3', now() + interval '1 hour') RETURNING id;",
                    kind, state, subject)
        return rows[0][0]

    def test_health_and_readiness(self):
        status, hdrs, body = self.srv.json("GET", "/healthz")
        self.assertEqual((status, body), (200, {"status": "ok"}))
        status, _, body = self.srv.json("GET", "/readyz")
        self.assertEqual(status, 200)
        self.assertEqual(body["status"], "ready")
        self.assertGreaterEqual(body["migrations"], 1)

    def test_request_id_always_generated_by_the_server(self):
        # a client's id is kept apart (client_request_id in logs and audit), never adopted
        _, hdrs, _ = self.srv.request("GET", "/healthz", headers={"X-Request-Id": "nb-42.a"})
        self.assertRegex(hdrs["x-request-id"], r"^[0-9a-f]{32}$")
        _, hdrs, _ = self.srv.request("GET", "/healthz", headers={"X-Request-Id": "bad id; drop"})
        self.assertRegex(hdrs["x-request-id"], r"^[0-9a-f]{32}$")
        self.assertIn("nb-42.a", self.srv.read_log())

    def test_metrics_prometheus(self):
        self.srv.request("GET", "/healthz")
        status, hdrs, data = self.srv.request("GET", "/metrics", port=self.srv.probe_port)
        self.assertEqual(status, 200)
        # not on the public listener (project names and accuracy)
        self.assertEqual(self.srv.request("GET", "/metrics", check=False)[0], 404)
        text = data.decode()
        self.assertIn('roastery_http_requests_total{method="GET",route="/healthz",status="200"}', text)
        self.assertIn("roastery_http_request_duration_seconds_bucket", text)
        self.assertIn("roastery_db_pool_in_use", text)
        self.assertIn('roastery_operations{state="queued"}', text)
        self.assertIn("roastery_database_up 1", text)

    def test_openapi_served(self):
        status, hdrs, data = self.srv.request("GET", "/openapi.yaml")
        self.assertEqual(status, 200)
        with open(os.path.join(os.path.dirname(__file__), "..", "..", "openapi.yaml"), "rb") as f:
            self.assertEqual(data, f.read())

    def test_unknown_route_and_wrong_method(self):
        status, hdrs, body = self.srv.json("GET", "/api/v1/nothing-here")
        self.assertEqual(status, 404)
        self.assertEqual(body["type"], "https://roastery.dev/problems/not-found")
        status, hdrs, body = self.srv.json("DELETE", "/healthz")
        self.assertEqual(status, 405)
        self.assertIn("GET", hdrs["allow"])
        self.assertEqual(body["status"], 405)
        status, hdrs, _ = self.srv.request("OPTIONS", "/api/v1/operations",
                                           headers={"Origin": "https://evil.example",
                                                    "Access-Control-Request-Method": "DELETE"})
        self.assertEqual(status, 204)
        self.assertNotIn("access-control-allow-origin", hdrs)

    def test_operation_show_and_list(self):
        a = self.insert_operation(subject="projects/p1")
        b = self.insert_operation(kind="other.kind", subject="projects/p2")
        status, _, body = self.srv.json("GET", f"/api/v1/operations/{a}")
        self.assertEqual(status, 200)
        self.assertEqual((body["id"], body["state"], body["actions"]), (a, "queued", []))
        status, _, body = self.srv.json("GET", "/api/v1/operations?kind=other.kind")
        self.assertEqual([o["id"] for o in body["items"]], [b])
        status, _, body = self.srv.json("GET", "/api/v1/operations?subject=projects/p1")
        self.assertIn(a, [o["id"] for o in body["items"]])

    def test_pagination_walks_every_operation_once(self):
        ids = {self.insert_operation(kind="page.test") for _ in range(7)}
        seen, cursor, pages = [], None, 0
        while True:
            path = "/api/v1/operations?kind=page.test&limit=3" + (f"&cursor={cursor}" if cursor else "")
            status, _, body = self.srv.json("GET", path)
            self.assertEqual(status, 200)
            seen += [o["id"] for o in body["items"]]
            pages += 1
            cursor = body["next_cursor"]
            if not cursor:
                break
        self.assertEqual((sorted(seen), pages), (sorted(ids), 3))

    def test_bad_query_parameters(self):
        for q, field in [("limit=0", "limit"), ("limit=abc", "limit"), ("limit=201", "limit"),
                         ("state=sleeping", "state"), ("cursor=zzz", "cursor"),
                         ("kind=" + "k" * 500, "kind")]:
            status, _, body = self.srv.json("GET", "/api/v1/operations?" + q)
            self.assertEqual(status, 400, q)
            self.assertEqual(body["errors"][0]["field"], field, q)
        status, _, body = self.srv.json("GET", "/api/v1/operations/not-a-uuid")
        self.assertEqual((status, body["errors"][0]["field"]), (400, "id"))
        status, _, body = self.srv.json("GET", f"/api/v1/operations/{uuid.uuid4()}")
        self.assertEqual(status, 404)

    def test_cancel(self):
        op = self.insert_operation()
        status, hdrs, body = self.srv.json("POST", f"/api/v1/operations/{op}/cancel")
        self.assertEqual((status, body["state"], body["cancel_requested"]), (202, "canceled", True))
        self.assertEqual(hdrs["location"], f"/api/v1/operations/{op}")
        status, _, body = self.srv.json("POST", f"/api/v1/operations/{op}/cancel")
        self.assertEqual(status, 409)
        status, _, _ = self.srv.json("POST", f"/api/v1/operations/{uuid.uuid4()}/cancel")
        self.assertEqual(status, 404)

    def test_worker_fails_unknown_kind_with_reason(self):
        rows = psql(self.db, "INSERT INTO operations(kind) VALUES ('no.such.executor') RETURNING id;")
        op = rows[0][0]
        deadline = time.time() + 20
        while time.time() < deadline:
            _, _, body = self.srv.json("GET", f"/api/v1/operations/{op}")
            if body["state"] == "failed":
                break
            time.sleep(0.1)
        self.assertEqual(body["state"], "failed")
        self.assertEqual(body["error"]["code"], "unknown_kind")

    def test_malformed_input_never_breaks_the_server(self):
        junk = [b"GET /\x00\xff HTTP/1.1\r\n\r\n", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
                b"POST /api/v1/operations/x/cancel HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
                b"GET /api/v1/operations?limit=%zz%00 HTTP/1.1\r\nHost: x\r\n\r\n",
                b"GET /" + b"a/" * 3000 + b" HTTP/1.1\r\n\r\n",
                b"GET / HTTP/1.1\r\n" + b"X: " + b"y" * 20000 + b"\r\n\r\n",
                b"BREW /healthz HTCPCP/1.0\r\n\r\n"]
        for raw in junk:
            with socket.create_connection(("127.0.0.1", self.srv.port), timeout=5) as s:
                reply = b""
                try:  # the server may already have closed on junk: that is fine
                    s.sendall(raw)
                    s.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                try:
                    while chunk := s.recv(65536):
                        reply += chunk
                except OSError:
                    pass
                self.assertNotIn(b" 500 ", reply.split(b"\r\n", 1)[0], raw[:40])
        for path in ["/api/v1/operations/%2e%2e%2f", "/api/v1/operations/" + "%ff" * 40,
                     "/api/v1/operations//cancel", "/api/v1/%00", "/api/v1/operations?state=%00"]:
            status, _, _ = self.srv.request("GET", path, check=False)
            self.assertIn(status, (400, 404, 405), path)
        self.assertEqual(self.srv.request("GET", "/healthz")[0], 200)


class DatabaseDownTest(unittest.TestCase):
    def test_answers_503_with_retry_after_while_database_unreachable(self):
        missing = tempfile.mkdtemp(prefix="roastery-nodb-")
        srv = Server({"ROASTERY_DATABASE_URL": f"host={missing} dbname=x user=x",
                      "ROASTERY_MIGRATE_ON_START": "0", "ROASTERY_WORKERS": "1"})
        try:
            self.assertEqual(srv.request("GET", "/healthz")[0], 200)
            status, hdrs, body = srv.json("GET", "/readyz")
            self.assertEqual((status, hdrs.get("retry-after")), (503, "5"))
            status, hdrs, body = srv.json("GET", f"/api/v1/operations/{uuid.uuid4()}")
            self.assertEqual((status, hdrs.get("retry-after")), (503, "5"))
            self.assertEqual(body["type"], "https://roastery.dev/problems/unavailable")
        finally:
            self.assertEqual(srv.stop(), 0)
            shutil.rmtree(missing, ignore_errors=True)
            shutil.rmtree(srv.data_dir, ignore_errors=True)


class DatabaseRestartTest(unittest.TestCase):
    """The database goes away under a running server and comes back."""

    def pg(self, *args):
        cmd = [PG_BIN + "/pg_ctl", "-D", self.dir + "/data", *args]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--"] + cmd
        subprocess.run(cmd, check=True, capture_output=True)

    def test_readiness_follows_the_database_and_recovers(self):
        self.dir = tempfile.mkdtemp(prefix="roastery-pgrestart-")
        os.chmod(self.dir, 0o755)
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        initdb = [PG_BIN + "/initdb", "-D", self.dir + "/data", "-U", "roastery", "-A", "trust",
                  "--no-sync"]
        subprocess.run((["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []) + initdb,
                       check=True, capture_output=True)
        opts = f"-k {self.dir} -c listen_addresses=''"
        self.pg("-l", self.dir + "/log", "-o", opts, "-w", "start")
        srv = Server({"ROASTERY_DATABASE_URL": f"host={self.dir} dbname=postgres user=roastery",
                      "ROASTERY_WORKERS": "1"})
        try:
            self.assertEqual(srv.json("GET", "/readyz")[0], 200)
            self.assertEqual(srv.json("GET", "/api/v1/operations")[0], 200)
            self.pg("-m", "fast", "-w", "stop")
            statuses = [srv.request("GET", "/readyz")[0] for _ in range(3)]
            self.assertEqual(statuses[-1], 503)
            self.assertEqual(srv.request("GET", "/healthz")[0], 200)
            status, hdrs, _ = srv.json("GET", "/api/v1/operations")
            self.assertEqual((status, hdrs.get("retry-after")), (503, "5"))
            self.pg("-l", self.dir + "/log", "-o", opts, "-w", "start")
            deadline = time.time() + 20
            while srv.request("GET", "/readyz")[0] != 200 and time.time() < deadline:
                time.sleep(0.2)
            self.assertEqual(srv.json("GET", "/readyz")[0], 200)
            self.assertEqual(srv.json("GET", "/api/v1/operations")[0], 200)
        finally:
            self.assertEqual(srv.stop(), 0)
            try:
                self.pg("-m", "immediate", "-w", "stop")
            except subprocess.CalledProcessError:
                pass
            shutil.rmtree(self.dir, ignore_errors=True)
            shutil.rmtree(srv.data_dir, ignore_errors=True)


class ConfigTest(unittest.TestCase):
    def run_bin(self, *args, **env):
        e = {k: v for k, v in os.environ.items() if not k.startswith("ROASTERY_")}
        e.update(env)
        return subprocess.run([BINARY, *args], env=e, capture_output=True, text=True, timeout=30)

    def test_bad_values_exit_2_naming_the_variable(self):
        for var, val in [("ROASTERY_HTTP_THREADS", "lots"), ("ROASTERY_LISTEN", "127.0.0.1:99999"),
                         ("ROASTERY_LOG_LEVEL", "chatty"), ("ROASTERY_MAX_BODY_BYTES", "-1"),
                         ("ROASTERY_WORKERS", "1e3")]:
            p = self.run_bin("serve", **{var: val})
            self.assertEqual(p.returncode, 2, var)
            lines = p.stderr.strip().splitlines()
            self.assertEqual(len(lines), 1, p.stderr)
            self.assertIn(f"{var}={val}", lines[0])
            self.assertIn("expected", lines[0])

    def test_dev_auth_refuses_non_loopback(self):
        p = self.run_bin("serve", ROASTERY_AUTH="dev", ROASTERY_LISTEN="0.0.0.0:18099",
                         ROASTERY_DATABASE_URL="host=/nonexistent")
        self.assertEqual(p.returncode, 2)
        self.assertIn("ROASTERY_AUTH=dev", p.stderr)
        self.assertIn("loopback", p.stderr)

    def test_azuread_requires_tenant(self):
        p = self.run_bin("serve", ROASTERY_AUTH="azuread", ROASTERY_DATABASE_URL="host=/nonexistent")
        self.assertEqual(p.returncode, 2)
        self.assertIn("ROASTERY_AAD_TENANT_ID", p.stderr)

    def test_help_and_version(self):
        for cmd in ["serve", "worker", "migrate", "version"]:
            p = self.run_bin(cmd, "--help")
            self.assertEqual(p.returncode, 0, cmd)
            self.assertIn(f"usage: roastery {cmd}", p.stdout)
        p = self.run_bin("version")
        self.assertIn("roastery ", p.stdout)
        self.assertEqual(self.run_bin("frobnicate").returncode, 2)

    def test_migrate_is_idempotent_and_refuses_edited_migration(self):
        db = fresh_database("http_migrate")
        p = self.run_bin("migrate", ROASTERY_DATABASE_URL=db)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.run_bin("migrate", ROASTERY_DATABASE_URL=db).returncode, 0)
        psql(db, "UPDATE schema_migrations SET checksum = 'edited' WHERE version = '0001_operations.sql';")
        p = self.run_bin("migrate", ROASTERY_DATABASE_URL=db)
        self.assertEqual(p.returncode, 1)
        self.assertIn("0001_operations.sql", p.stderr)


class EmbeddedDatabaseTest(unittest.TestCase):
    def test_serve_without_database_url_runs_a_private_cluster(self):
        parent = tempfile.mkdtemp(prefix="roastery-embedded-")
        os.chmod(parent, 0o755)
        data = os.path.join(parent, "var")  # created by the server, as `make demo` does
        srv = Server({"ROASTERY_WORKERS": "1"}, data_dir=data)
        try:
            deadline = time.time() + 30
            while srv.request("GET", "/readyz", check=False)[0] != 200 and time.time() < deadline:
                time.sleep(0.2)
            self.assertEqual(srv.json("GET", "/readyz")[0], 200)
            self.assertEqual(srv.json("GET", "/api/v1/operations")[0], 200)
        finally:
            self.assertEqual(srv.stop(), 0)
        pid_file = os.path.join(data, "pg", "data", "postmaster.pid")
        self.assertFalse(os.path.exists(pid_file), "embedded PostgreSQL still running after stop")
        shutil.rmtree(parent, ignore_errors=True)


if __name__ == "__main__":
    BINARY = os.path.abspath(sys.argv.pop(1))
    if not BASE_URL:
        print("ROASTERY_TEST_DATABASE_URL is not set (run under scripts/with-temp-pg)")
        sys.exit(77)
    result = unittest.main(exit=False, verbosity=2).result
    print(f"contract: {len(CONTRACT.checked)} (method, route, status) combinations checked")
    sys.exit(0 if result.wasSuccessful() else 1)
