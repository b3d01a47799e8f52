#!/usr/bin/env python3
"""`roastery worker` with its probe listener (ROASTERY_WORKER_LISTEN): /healthz, /readyz and
/metrics as the worker Deployment's probes and the Prometheus agent see them, against a real
PostgreSQL (ROASTERY_TEST_DATABASE_URL, from scripts/with-temp-pg).

usage: tests/integration/worker_test.py path/to/roastery"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import http_test  # noqa: E402
from http_test import Server, free_port, fresh_database, psql  # noqa: E402


class Worker(Server):
    """A `roastery worker` process; request() talks to its probe listener."""

    def __init__(self, env_extra, listen=True):
        self.port = free_port()
        self.data_dir = tempfile.mkdtemp(prefix="roastery-worker-")
        env = {k: v for k, v in os.environ.items() if not k.startswith("ROASTERY_")}
        env.update({"ROASTERY_DATA_DIR": self.data_dir, "ROASTERY_WORKERS": "2",
                    "ROASTERY_LOG_LEVEL": "info", "ROASTERY_POLL_INTERVAL_MS": "200",
                    "ROASTERY_RETRY_BASE_MS": "100", "ROASTERY_LEASE_SECONDS": "6"})
        if listen:
            env["ROASTERY_WORKER_LISTEN"] = f"127.0.0.1:{self.port}"
        env.update(env_extra)
        self.env = env
        self.tokens = {}
        self.log_dir = tempfile.mkdtemp(prefix="roastery-log-")
        self.log = open(os.path.join(self.log_dir, "worker.log"), "w+")
        self.proc = subprocess.Popen([http_test.BINARY, "worker"], env=env, stdout=self.log,
                                     stderr=self.log)

    def wait_listening(self, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("worker exited: " + self.read_log())
            try:
                if self.request("GET", "/healthz", check=False)[0] == 200:
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("worker did not listen: " + self.read_log())

    def wait_ready(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            status = self.request("GET", "/readyz", check=False)[0]
            if status == 200:
                return
            time.sleep(0.1)
        raise AssertionError("worker never ready: " + self.read_log())

    def cleanup(self):
        code = self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)
        return code


class WorkerProbes(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.db = fresh_database("worker_probes")
        cls.w = Worker({"ROASTERY_DATABASE_URL": cls.db}).wait_listening()
        cls.w.wait_ready()

    @classmethod
    def tearDownClass(cls):
        code = cls.w.cleanup()
        assert code == 0, f"worker exited {code} on SIGTERM"

    def test_healthz(self):
        status, hdrs, body = self.w.json("GET", "/healthz")
        self.assertEqual((status, body), (200, {"status": "ok"}))

    def test_readyz(self):
        status, hdrs, body = self.w.json("GET", "/readyz")
        self.assertEqual(status, 200)
        self.assertEqual((body["status"], body["database"]), ("ready", "ok"))

    def test_metrics_include_operations_and_database(self):
        status, hdrs, data = self.w.request("GET", "/metrics")
        self.assertEqual(status, 200)
        self.assertTrue(hdrs["content-type"].startswith("text/plain"))
        text = data.decode()
        self.assertIn("roastery_database_up 1", text)
        self.assertIn('roastery_operations{state="queued"}', text)
        self.assertIn("roastery_db_pool_connections 2", text)
        # The probes themselves are counted like any request.
        self.assertIn('roastery_http_requests_total{method="GET",route="/healthz",status="200"}', text)

    def test_only_the_probes_are_served(self):
        self.assertEqual(self.w.request("GET", "/api/v1/me", check=False, token=None)[0], 404)
        self.assertEqual(self.w.request("GET", "/openapi.yaml", check=False)[0], 404)
        self.assertEqual(self.w.request("POST", "/readyz", check=False)[0], 405)

    def test_workers_carry_out_operations(self):
        op = psql(self.db, "INSERT INTO operations(kind, state, subject) VALUES "
                  "('test.unknown', 'queued', '') RETURNING id;")[0][0]
        deadline = time.time() + 20
        state = None
        while time.time() < deadline:
            state = psql(self.db, "SELECT state FROM operations WHERE id = :'v1';", op)[0][0]
            if state == "failed":
                break
            time.sleep(0.1)
        self.assertEqual(state, "failed")
        text = self.w.request("GET", "/metrics")[2].decode()
        self.assertRegex(text, r'roastery_operations\{state="failed"\} [1-9]')


class WorkerReadiness(unittest.TestCase):
    def test_not_ready_while_a_migration_is_pending(self):
        db = fresh_database("worker_unmigrated")
        w = Worker({"ROASTERY_DATABASE_URL": db, "ROASTERY_MIGRATE_ON_START": "0"}).wait_listening()
        try:
            status, hdrs, body = w.json("GET", "/readyz")  # no schema at all: unavailable
            self.assertEqual(status, 503)
            subprocess.run([http_test.BINARY, "migrate"], env=w.env, capture_output=True,
                           check=True)
            w.wait_ready()
            # One migration of this binary missing (a rollout before the migrate Job ran).
            version, checksum = psql(db, "DELETE FROM schema_migrations WHERE version = "
                                     "(SELECT max(version) FROM schema_migrations) "
                                     "RETURNING version, checksum;")[0]
            status, hdrs, body = w.json("GET", "/readyz")
            self.assertEqual(status, 503)
            self.assertTrue(body["type"].endswith("/migrations-pending"), body)
            self.assertEqual(w.request("GET", "/healthz")[0], 200)  # alive all the same
            psql(db, "INSERT INTO schema_migrations(version, checksum) VALUES (:'v1', :'v2');",
                 version, checksum)
            w.wait_ready()
        finally:
            self.assertEqual(w.cleanup(), 0)

    def test_database_unreachable_is_not_ready_but_alive(self):
        dead = f"host=127.0.0.1 port={free_port()} dbname=none user=none connect_timeout=1"
        w = Worker({"ROASTERY_DATABASE_URL": dead, "ROASTERY_MIGRATE_ON_START": "0"}).wait_listening()
        try:
            status, hdrs, body = w.json("GET", "/readyz")
            self.assertEqual(status, 503)
            self.assertIn("retry-after", hdrs)
            self.assertEqual(w.request("GET", "/healthz")[0], 200)
            text = w.request("GET", "/metrics")[2].decode()
            self.assertIn("roastery_database_up 0", text)
        finally:
            self.assertEqual(w.cleanup(), 0)


class WorkerListenConfig(unittest.TestCase):
    def setUp(self):
        self.db = fresh_database("worker_config")

    def test_no_listener_by_default(self):
        w = Worker({"ROASTERY_DATABASE_URL": self.db}, listen=False)
        try:
            deadline = time.time() + 30
            while "workers started" not in w.read_log() and time.time() < deadline:
                self.assertIsNone(w.proc.poll(), w.read_log())
                time.sleep(0.1)
            self.assertIn("workers started", w.read_log())
            self.assertNotIn("worker probes listening", w.read_log())
            with self.assertRaises(OSError):
                socket.create_connection(("127.0.0.1", w.port), timeout=1).close()
        finally:
            self.assertEqual(w.cleanup(), 0)

    def test_port_taken_exits_1_naming_the_variable(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        try:
            w = Worker({"ROASTERY_DATABASE_URL": self.db,
                        "ROASTERY_WORKER_LISTEN": f"127.0.0.1:{port}"})
            self.assertEqual(w.proc.wait(timeout=60), 1)
            self.assertIn("ROASTERY_WORKER_LISTEN", w.read_log())
            w.cleanup()
        finally:
            s.close()

    def test_bad_value_exits_2(self):
        w = Worker({"ROASTERY_DATABASE_URL": self.db, "ROASTERY_WORKER_LISTEN": "nowhere"})
        self.assertEqual(w.proc.wait(timeout=30), 2)
        self.assertIn("ROASTERY_WORKER_LISTEN=nowhere", w.read_log())
        w.cleanup()


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    http_test.BINARY = os.path.abspath(sys.argv.pop(1))
    if not http_test.BASE_URL:
        print("skipped: ROASTERY_TEST_DATABASE_URL is not set (run under scripts/with-temp-pg)")
        sys.exit(77)
    unittest.main(verbosity=2)
