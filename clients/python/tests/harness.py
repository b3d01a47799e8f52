"""Starts the real roastery server for the client's tests, like
tests/integration does: a fresh database in the PostgreSQL of
scripts/with-temp-pg (ROASTERY_TEST_DATABASE_URL), ROASTERY_AUTH=dev and
tokens minted by `roastery token`."""
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # roastery_client

DATABASE_URL = os.environ.get("ROASTERY_TEST_DATABASE_URL")
SKIP = 77


def psql(conninfo, sql):
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", conninfo], input=sql,
                   capture_output=True, text=True, check=True)


def fresh_database(name):
    psql(DATABASE_URL, f'DROP DATABASE IF EXISTS "{name}"; CREATE DATABASE "{name}";')
    return DATABASE_URL.replace("dbname=postgres", f"dbname={name}")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Server:
    """`roastery serve` on a free loopback port with its own data directory."""

    def __init__(self, binary, database, env_extra=None):
        self.binary = binary
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = tempfile.mkdtemp(prefix="roastery-client-test-")
        env = {k: v for k, v in os.environ.items() if not k.startswith("ROASTERY_")}
        env.update({"ROASTERY_LISTEN": f"127.0.0.1:{self.port}",
                    "ROASTERY_DATA_DIR": self.data_dir, "ROASTERY_AUTH": "dev",
                    "ROASTERY_DATABASE_URL": fresh_database(database),
                    "ROASTERY_WORKERS": "3", "ROASTERY_HTTP_THREADS": "8",
                    "ROASTERY_POLL_INTERVAL_MS": "200", "ROASTERY_RETRY_BASE_MS": "100"})
        env.update(env_extra or {})
        self.env = env
        self.log_path = os.path.join(self.data_dir, "server.log")
        self.log = open(self.log_path, "w+")
        self.proc = subprocess.Popen([binary, "serve"], env=env, stdout=self.log,
                                     stderr=self.log)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("server exited: " + self.read_log())
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("server did not start: " + self.read_log())

    def read_log(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path) as f:
            return f.read()

    def token(self, user, roles):
        """A dev-issuer token, minted by `roastery token` as a user would."""
        p = subprocess.run([self.binary, "token", "--user", user, "--roles", roles],
                           env=self.env, capture_output=True, text=True, check=True)
        return p.stdout.strip()

    def generate_sales(self, path, stores=2, products=3, start="2022-06-01",
                       end="2023-12-31", seed=5):
        subprocess.run([self.binary, "generate-sales", "--stores", str(stores), "--products",
                        str(products), "--start", start, "--end", end, "--seed", str(seed),
                        "--output", path], check=True, capture_output=True)
        return path

    def stop(self):
        code = None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        code = self.proc.returncode
        self.log.close()
        return code

    def cleanup(self):
        shutil.rmtree(self.data_dir, ignore_errors=True)


def pg_available():
    return bool(DATABASE_URL) and bool(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
