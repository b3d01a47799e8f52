#!/usr/bin/env python3
"""Uploads are bounded after decompression (security review 2026-12, finding 8).

On the base commit a 709 KB gzip of one valid row repeated became a 209 MB canonical file with
2.75 M rows accepted: ROASTERY_MAX_UPLOAD_BYTES bounds only the compressed bytes. Each limit
(ROASTERY_MAX_COMPRESSION_RATIO, ROASTERY_MAX_DECOMPRESSED_BYTES, ROASTERY_MAX_ROWS_PER_VERSION)
rejects the version with a problem naming it, keeps no canonical file, and leaves the versions
accepted before it as they were."""
import gzip
import os
import shutil
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import http_test  # noqa: E402
from http_test import Server, fresh_database  # noqa: E402

HEADER = (b"date,store_id,country,city,category,product,quantity,unit_price,total,weather,"
          b"promotion,holiday\n")
ROW = b"2024-01-01,US-NYC-001,USA,New York,Coffee,Americano,3,1.00,3.00,Sunny,No,No\n"


def rows(n, start=0):
    """n distinct valid rows (a different store per row), as CSV."""
    out = [HEADER]
    for i in range(start, start + n):
        q = i % 50 + 1
        out.append(b"2024-01-01,US-NYC-%03d,USA,New York,Coffee,Americano,%d,1.00,%d.00,"
                   b"Sunny,No,No\n" % (i % 1000, q, q))
    return b"".join(out)


def review_bomb():
    """The review's bomb: 200 MiB of one valid row, gzip -9 (about 709 KB)."""
    return gzip.compress(HEADER + ROW * 2_750_000, compresslevel=9)


class Base(unittest.TestCase):
    env = {}
    name = "base"

    @classmethod
    def setUpClass(cls):
        cls.db = fresh_database("security_upload_" + cls.name)
        env = {"ROASTERY_DATABASE_URL": cls.db, "ROASTERY_WORKERS": "2"}
        env.update(cls.env)
        cls.srv = Server(env)
        cls.ds = cls.srv.token("dana-scientist", "DataScientist")
        assert cls.srv.json("POST", "/api/v1/projects", {"id": "loot", "display_name": "L"},
                            token=cls.ds)[0] == 201
        assert cls.srv.json("POST", "/api/v1/projects/loot/datasets", {"name": "sales"},
                            token=cls.ds)[0] == 201

    @classmethod
    def tearDownClass(cls):
        code = cls.srv.stop()
        shutil.rmtree(cls.srv.data_dir, ignore_errors=True)
        assert code == 0, f"server exited {code} on SIGTERM"

    def upload(self, body, gz=False):
        hdrs = {"Content-Type": "text/csv"}
        if gz:
            hdrs["Content-Encoding"] = "gzip"
        status, _, v = self.srv.json("POST", "/api/v1/projects/loot/datasets/sales/versions",
                                     body, hdrs, token=self.ds)
        self.assertEqual(status, 202, v)
        return self.wait(v["number"])

    def wait(self, number):
        deadline = time.time() + 120
        while time.time() < deadline:
            _, _, v = self.srv.json(
                "GET", f"/api/v1/projects/loot/datasets/sales/versions/{number}", token=self.ds)
            if v["state"] not in ("pending", "ingesting"):
                return v
            time.sleep(0.1)
        raise AssertionError(f"version {number} not ingested")

    def canonical(self, number):
        return self.srv.request("GET", f"/api/v1/projects/loot/datasets/sales/versions/{number}"
                                "/canonical.csv", token=self.ds)

    def assert_refused_by(self, v, setting):
        self.assertEqual(v["state"], "rejected", v)
        result = v["result"]
        self.assertEqual(result["limit"]["setting"], setting)
        self.assertIn(setting, result["reason"])
        self.assertEqual(result["problem"]["type"], "https://roastery.dev/problems/upload-limit")
        self.assertEqual(result["problem"]["status"], 413)
        self.assertEqual(result["problem"]["limit"], setting)
        self.assertIsNone(v["canonical_uri"])
        self.assertIsNone(v["canonical_bytes"])
        self.assertEqual(self.canonical(v["number"])[0], 404)
        self.assertTrue(v["raw_uri"])  # the upload itself is kept: raise the limit, ingest again
        self.assertEqual(self.srv.request("GET", "/healthz", token=None)[0], 200)


class DefaultLimitsTest(Base):
    name = "defaults"

    def test_the_reviews_gzip_bomb_is_rejected_naming_the_compression_ratio_limit(self):
        bomb = review_bomb()
        self.assertLess(len(bomb), 1_000_000)
        started = time.time()
        v = self.upload(bomb, gz=True)
        self.assert_refused_by(v, "ROASTERY_MAX_COMPRESSION_RATIO")
        # refused early: far fewer rows were looked at than the bomb holds
        self.assertLess(v["rows_read"], 100_000)
        self.assertLess(time.time() - started, 60)

    def test_an_honest_gzip_upload_is_ingested_as_before(self):
        csv = rows(30_000)
        v = self.upload(gzip.compress(csv), gz=True)
        self.assertEqual((v["state"], v["rows_accepted"]), ("ready", 30_000), v.get("result"))
        self.assertNotIn("limit", v["result"])


class DecompressedBytesTest(Base):
    name = "bytes"
    env = {"ROASTERY_MAX_DECOMPRESSED_BYTES": str(1024 * 1024)}

    def test_a_gzip_upload_over_the_decompressed_byte_limit_is_rejected_naming_it(self):
        csv = rows(20_000)  # about 1.6 MB, compressing far less than 100:1
        self.assertGreater(len(csv), 1024 * 1024)
        v = self.upload(gzip.compress(csv), gz=True)
        self.assert_refused_by(v, "ROASTERY_MAX_DECOMPRESSED_BYTES")
        self.assertEqual(v["result"]["limit"]["value"], 1024 * 1024)

    def test_a_plain_upload_over_the_decompressed_byte_limit_is_rejected_naming_it(self):
        v = self.upload(rows(20_000, start=7))
        self.assert_refused_by(v, "ROASTERY_MAX_DECOMPRESSED_BYTES")

    def test_an_upload_within_the_byte_limit_is_ready(self):
        v = self.upload(rows(5_000, start=3))
        self.assertEqual((v["state"], v["rows_accepted"]), ("ready", 5_000))


class RowsPerVersionTest(Base):
    name = "rows"
    env = {"ROASTERY_MAX_ROWS_PER_VERSION": "1000"}

    def test_one_row_over_the_limit_rejects_the_version_and_keeps_what_was_accepted(self):
        first = self.upload(rows(1000))  # exactly the limit
        self.assertEqual((first["state"], first["rows_accepted"]), ("ready", 1000))
        status, _, before = self.canonical(first["number"])
        self.assertEqual(status, 200)

        over = self.upload(rows(1001, start=1))
        self.assert_refused_by(over, "ROASTERY_MAX_ROWS_PER_VERSION")
        self.assertEqual(over["result"]["limit"]["value"], 1000)
        self.assertEqual(over["rows_read"], 1000)

        # nothing accepted before is lost: the first version is untouched and still served
        again = self.wait(first["number"])
        self.assertEqual((again["state"], again["rows_accepted"], again["canonical_sha256"]),
                         ("ready", 1000, first["canonical_sha256"]))
        self.assertEqual(self.canonical(first["number"])[2], before)
        # and the limit is per version, not per dataset
        later = self.upload(rows(999, start=5))
        self.assertEqual(later["state"], "ready")

    def test_a_quarantine_upload_over_the_row_limit_is_rejected_too(self):
        status, _, v = self.srv.json(
            "POST", "/api/v1/projects/loot/datasets/sales/versions?on_error=quarantine",
            rows(2000, start=11), {"Content-Type": "text/csv"}, token=self.ds)
        self.assertEqual(status, 202, v)
        self.assert_refused_by(self.wait(v["number"]), "ROASTERY_MAX_ROWS_PER_VERSION")


if __name__ == "__main__":
    http_test.BINARY = os.path.abspath(sys.argv.pop(1))
    if not http_test.BASE_URL:
        sys.exit(77)
    result = unittest.main(exit=False, verbosity=2).result
    sys.exit(0 if result.wasSuccessful() else 1)
