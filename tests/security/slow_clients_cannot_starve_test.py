#!/usr/bin/env python3
"""A few slow clients cannot starve everyone (review finding 2, slow.py, slow2.py, slowbody.py).

64 connections are held slow for 20 s against a server with the default limits and the
production thread count (32): 32 from one address that send nothing or trickle a header line a
second, and 32 from 32 other addresses that send a promotion approval with a token without roles
and trickle its body a byte a second. Whatever the server closes is opened again the next second.
Meanwhile /healthz on the probe listener (what the kubelet asks) and an authenticated read
(GET /api/v1/me) on the public listener must each answer 200 within 1 s, every time.

Loopback only (127.0.0.0/8), bounded in connections and time. The measured latencies are printed.

usage: tests/security/slow_clients_cannot_starve_test.py path/to/roastery"""
import os
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, HERE)
import http_test  # noqa: E402
from http_test import Server, fresh_database  # noqa: E402
import raw_http  # noqa: E402

DURATION = 20
HEADER_ADDRESS = "127.0.0.2"
BODY_ADDRESSES = [f"127.0.1.{i}" for i in range(1, 33)]
READER_ADDRESS = "127.0.0.1"
BOUND = 1.0  # seconds a probe or a read may take


class Slot:
    """One slow connection the attacker keeps trying to hold."""

    def __init__(self, kind, source, port, token=None):
        self.kind, self.source, self.port, self.token = kind, source, port, token
        self.sock = None
        self.opened = 0

    def open(self):
        try:
            s = raw_http.connect(self.port, self.source, timeout=2)
        except OSError:
            return
        try:
            if self.kind == "partial":
                s.sendall(b"GET /api/v1/me HTTP/1.1\r\nHost: x\r\n")
            elif self.kind == "body":
                s.sendall(raw_http.request_head(
                    "POST", "/api/v1/promotions/00000000-0000-0000-0000-000000000000/approve",
                    {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
                    length=100000) + b"{")
        except OSError:
            s.close()
            return
        self.sock = s
        self.opened += 1

    def tick(self):
        """Trickles one more piece; reopens what the server closed or answered."""
        if self.sock is not None:
            try:
                self.sock.setblocking(False)
                self.sock.recv(4096)
                alive = False  # an answer or the end: either way the server let go
            except BlockingIOError:
                alive = True
            except OSError:
                alive = False
            if alive:
                try:
                    if self.kind == "partial":
                        self.sock.send(b"X-Slow: 1\r\n")
                    elif self.kind == "body":
                        self.sock.send(b" ")
                    return
                except OSError:
                    pass
            self.sock.close()
            self.sock = None
        self.open()

    def close(self):
        if self.sock is not None:
            self.sock.close()


class SlowClientsCannotStarve(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.db = fresh_database("security_slow_starve")
        cls.srv = Server({"ROASTERY_DATABASE_URL": cls.db, "ROASTERY_WORKERS": "0",
                          "ROASTERY_HTTP_THREADS": "32"})
        cls.reader = cls.srv.token("reader-ds", "DataScientist")
        cls.norole = cls.srv.token("nobody-norole", "")

    @classmethod
    def tearDownClass(cls):
        code = cls.srv.stop()
        assert code == 0, f"server exited {code} on SIGTERM"

    def test_probes_and_reads_answer_within_1s_while_64_slow_connections_are_held(self):
        # both identities seen once, as in the review (the first request writes the users row)
        self.assertEqual(raw_http.get(self.srv.port, "/api/v1/me", self.reader)[0], 200)
        slots = [Slot("idle" if i % 2 else "partial", HEADER_ADDRESS, self.srv.port)
                 for i in range(32)]
        slots += [Slot("body", a, self.srv.port, self.norole) for a in BODY_ADDRESSES]
        for s in slots:
            s.open()
        stop = threading.Event()

        def attack():
            while not stop.wait(1.0):
                for s in slots:
                    s.tick()

        attacker = threading.Thread(target=attack, daemon=True)
        attacker.start()
        probes, reads = [], []
        t0 = time.monotonic()
        try:
            time.sleep(0.5)  # the 64 are in before the first look
            while time.monotonic() - t0 < DURATION:
                st, _, _, took = raw_http.get(self.srv.probe_port, "/healthz", timeout=3)
                probes.append((st, took))
                st, _, _, took = raw_http.get(self.srv.port, "/api/v1/me", self.reader,
                                              READER_ADDRESS, timeout=3)
                reads.append((st, took))
                time.sleep(0.25)
        finally:
            stop.set()
            attacker.join(5)
            held = sum(1 for s in slots if s.sock is not None)
            opened = sum(s.opened for s in slots)
            for s in slots:
                s.close()
        for name, got in (("healthz (probe listener)", probes), ("GET /api/v1/me", reads)):
            times = sorted(t for _, t in got)
            print(f"{name}: {len(got)} requests, {sum(1 for st, _ in got if st == 200)} x 200, "
                  f"median {times[len(times) // 2] * 1000:.1f} ms, max {times[-1] * 1000:.1f} ms",
                  file=sys.stderr)
        print(f"attack: 64 slots, {opened} connections opened in {DURATION} s, {held} open at the end",
              file=sys.stderr)
        for what, got in (("healthz", probes), ("me", reads)):
            bad = [(st, round(t, 2)) for st, t in got if st != 200 or t >= BOUND]
            self.assertEqual(bad, [], f"{what}: answers that were not 200 within {BOUND} s")
        self.assertGreater(len(probes), 20)  # about one look every 0.25 s


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    http_test.BINARY = os.path.abspath(sys.argv.pop(1))
    if not http_test.BASE_URL:
        print("skipped: ROASTERY_TEST_DATABASE_URL is not set (run under scripts/with-temp-pg)")
        sys.exit(77)
    unittest.main(verbosity=2)
