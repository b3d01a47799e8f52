/* dataset.ingest. Two idempotent steps: "ingest" streams raw -> canonical
 * (+ quarantine) into deterministic keys, so a retry after a crash rewrites
 * the same files; "record" stores the results in one transaction. */
#include "datasets/ingest_op.h"
#include "datasets/version_ready.h"
#include "db/db.h"
#include "datasets/ingest.h"
#include "datasets/profile.h"
#include "core/log.h"
#include "ops/ops.h"
#include "lib/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static artifact_store *store;

typedef struct {
    artifact_writer *canonical;
    artifact_writer *quarantine;
    int quarantine_used;
} sinks;

static int write_canonical(void *arg, const char *data, size_t len)
{
    sinks *s = arg;
    return artifacts_writer_write(s->canonical, data, len);
}

static int write_quarantine(void *arg, const char *data, size_t len)
{
    sinks *s = arg;
    s->quarantine_used = 1;
    return artifacts_writer_write(s->quarantine, data, len);
}

typedef struct {
    char id[40];
    char project[80];
    char dataset[80];
    char number[16];
    char *raw_key;
    int gzip;
    int quarantine;
} version_info;

static int load_version(PGconn *c, const char *id, version_info *v)
{
    PGresult *r = db_exec(c,
                          "SELECT project_id, dataset, number, raw_key, content_encoding,"
                          " on_error FROM dataset_versions WHERE id = $1::uuid",
                          1, (const char *[]){id}, NULL);
    if (!r)
        return RST_EDB;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return RST_ENOTFOUND;
    }
    snprintf(v->id, sizeof v->id, "%s", id);
    snprintf(v->project, sizeof v->project, "%s", PQgetvalue(r, 0, 0));
    snprintf(v->dataset, sizeof v->dataset, "%s", PQgetvalue(r, 0, 1));
    snprintf(v->number, sizeof v->number, "%s", PQgetvalue(r, 0, 2));
    v->raw_key = db_value(r, 0, 3) ? xstrdup(PQgetvalue(r, 0, 3)) : NULL;
    v->gzip = db_value(r, 0, 4) && !strcmp(PQgetvalue(r, 0, 4), "gzip");
    v->quarantine = !strcmp(PQgetvalue(r, 0, 5), "quarantine");
    PQclear(r);
    return RST_OK;
}

/* The bounds of one version after decompression (review 2026-12, finding 8: a
 * 709 KB gzip became 209 MB and 2.75 M rows). */
static struct {
    uint64_t max_bytes; /* CSV bytes fed to the ingester */
    uint64_t max_ratio; /* decompressed : compressed, gzip only */
    uint64_t max_rows;
} limits;

/* Below this much output a ratio means nothing (a small file of repeated rows
 * is no bomb); above it, the ratio is checked after every inflate call. */
#define RATIO_FLOOR ((uint64_t)1 << 20)

/* Feeds len more CSV bytes unless that passes the byte limit, in which case the
 * version is refused instead (and ingest_done says so). */
static int feed(ingest *g, const char *data, size_t len, uint64_t *fed)
{
    if (*fed + len > limits.max_bytes) {
        char why[200];
        snprintf(why, sizeof why,
                 "the file is larger than %llu bytes (decompressed), the limit per version"
                 " (ROASTERY_MAX_DECOMPRESSED_BYTES)",
                 (unsigned long long)limits.max_bytes);
        ingest_refuse(g, "ROASTERY_MAX_DECOMPRESSED_BYTES", limits.max_bytes, why);
        return RST_OK;
    }
    *fed += len;
    return ingest_feed(g, data, len);
}

/* Streams the raw artifact through gunzip (when needed) into the ingester,
 * stopping as soon as the outcome is settled (a limit passed, an unusable
 * file): a bomb is never inflated further than the limit that refuses it. */
static int pump(artifact_reader *rd, int gz, ingest *g, char *err, size_t errlen)
{
    enum { CHUNK = 1 << 18 };
    char *in = xmalloc(CHUNK), *out = gz ? xmalloc(CHUNK) : NULL;
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    int rc = RST_OK;
    uint64_t fed = 0;
    if (gz && inflateInit2(&zs, 15 + 32) != Z_OK) {
        snprintf(err, errlen, "cannot start gunzip");
        rc = RST_EIO;
        goto out;
    }
    size_t got = 0;
    int zdone = 0;
    while (rc == RST_OK && !ingest_done(g) && !(rc = artifacts_reader_read(rd, in, CHUNK, &got)) &&
           got) {
        if (!gz) {
            rc = feed(g, in, got, &fed);
            continue;
        }
        zs.next_in = (Bytef *)in;
        zs.avail_in = (uInt)got;
        while (zs.avail_in && rc == RST_OK && !zdone && !ingest_done(g)) {
            zs.next_out = (Bytef *)out;
            zs.avail_out = CHUNK;
            int z = inflate(&zs, Z_NO_FLUSH);
            if (z != Z_OK && z != Z_STREAM_END) {
                snprintf(err, errlen, "the upload is not valid gzip (%s)", zs.msg ? zs.msg : "?");
                rc = RST_EINVAL;
                break;
            }
            zdone = z == Z_STREAM_END;
            uint64_t zin = zs.total_in, zout = zs.total_out;
            if (zout > RATIO_FLOOR && zout / limits.max_ratio > zin) {
                char why[240];
                snprintf(why, sizeof why,
                         "the gzip upload decompresses more than %llu times its size"
                         " (%llu bytes from the first %llu), the limit"
                         " (ROASTERY_MAX_COMPRESSION_RATIO)",
                         (unsigned long long)limits.max_ratio, (unsigned long long)zout,
                         (unsigned long long)zin);
                ingest_refuse(g, "ROASTERY_MAX_COMPRESSION_RATIO", limits.max_ratio, why);
                break;
            }
            rc = feed(g, out, CHUNK - zs.avail_out, &fed);
        }
    }
    if (rc == RST_OK && gz && !zdone && !ingest_done(g)) {
        snprintf(err, errlen, "the gzip stream is truncated");
        rc = RST_EINVAL;
    }
out:
    if (gz)
        inflateEnd(&zs);
    free(in);
    free(out);
    return rc;
}

typedef struct {
    version_info *v;
} step_arg;

static int to_writer(void *arg, const char *data, size_t len)
{
    return artifacts_writer_write(arg, data, len);
}

/* Stores the profile (without its daily totals) as JSON and the daily
 * totals as COPY-ready CSV: both can be far larger than an action record. */
static int store_profile(const profile_t *p, const char *pkey, const char *dkey)
{
    artifact_writer *w = NULL;
    char sha[65];
    uint64_t size;
    json_t *j = profile_to_json_ex(p, 0);
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    int rc = artifacts_writer_open(store, pkey, &w);
    if (rc == RST_OK && (rc = artifacts_writer_write(w, text, strlen(text))) == RST_OK)
        rc = artifacts_writer_commit(w, sha, &size);
    else
        artifacts_writer_abort(w);
    free(text);
    if (rc)
        return rc;
    rc = artifacts_writer_open(store, dkey, &w);
    if (rc == RST_OK && (rc = profile_write_daily_csv(p, to_writer, w)) == RST_OK)
        rc = artifacts_writer_commit(w, sha, &size);
    else
        artifacts_writer_abort(w);
    return rc;
}

/* Reads a whole (small) artifact as text. new: free(); NULL on failure. */
static char *read_text(const char *key)
{
    artifact_reader *r = NULL;
    if (artifacts_reader_open(store, key, 0, 0, &r))
        return NULL;
    buf_t b;
    buf_init(&b, 256u << 20);
    char chunk[65536];
    size_t got = 0;
    int rc;
    while ((rc = artifacts_reader_read(r, chunk, sizeof chunk, &got)) == RST_OK && got)
        if (buf_append(&b, chunk, got)) {
            rc = RST_ETOOBIG;
            break;
        }
    artifacts_reader_close(r);
    if (rc) {
        buf_free(&b);
        return NULL;
    }
    if (!b.data)
        return xstrdup("");
    return b.data;
}

static ops_result step_ingest(ops_ctx *ctx, json_t *request, json_t **response, void *arg)
{
    (void)request;
    version_info *v = ((step_arg *)arg)->v;
    char base[300], ckey[340], qkey[340], err[256] = "";
    snprintf(base, sizeof base, "projects/%s/datasets/%s/versions/%s", v->project, v->dataset,
             v->number);
    snprintf(ckey, sizeof ckey, "%s/canonical.csv", base);
    snprintf(qkey, sizeof qkey, "%s/quarantine.csv", base);
    sinks s = {0};
    artifact_reader *rd = NULL;
    ingest *g = NULL;
    ops_result res = OPS_RETRY;
    if (!v->raw_key || artifacts_reader_open(store, v->raw_key, 0, 0, &rd)) {
        ops_set_error(ctx, "source_missing", "the uploaded file is not in the artifact store");
        return OPS_FAIL;
    }
    if (artifacts_writer_open(store, ckey, &s.canonical) ||
        artifacts_writer_open(store, qkey, &s.quarantine)) {
        ops_set_error(ctx, "artifacts_unavailable", "cannot write to the artifact store");
        goto out;
    }
    ingest_options o = {.on_error_quarantine = v->quarantine,
                        .min_date = NULL,
                        .max_date = NULL,
                        .max_errors_kept = 100,
                        .max_daily_keys = 0,
                        .max_rows = limits.max_rows};
    g = ingest_new(&o, write_canonical, write_quarantine, &s);
    int rc = pump(rd, v->gzip, g, err, sizeof err);
    if (rc == RST_OK)
        rc = ingest_finish(g);
    if (rc == RST_EINVAL && err[0]) {
        ops_set_error(ctx, "unreadable", err);
        res = OPS_FAIL;
        goto out;
    }
    if (rc) {
        ops_set_error(ctx, "ingest_failed", "reading or writing the data failed");
        goto out;
    }
    json_t *result = ingest_result_json(g);
    json_object_del(result, "profile"); /* large: stored as an artifact below */
    char pkey[340], dkey[340];
    snprintf(pkey, sizeof pkey, "%s/profile.json", base);
    snprintf(dkey, sizeof dkey, "%s/daily.csv", base);
    if (!ingest_rejected(g) && store_profile(ingest_profile(g), pkey, dkey)) {
        json_decref(result);
        ops_set_error(ctx, "artifacts_unavailable", "cannot store the profile");
        goto out;
    }
    char csha[65], qsha[65];
    uint64_t csize = 0, qsize = 0;
    int qused = s.quarantine_used, keep = !ingest_rejected(g);
    /* A rejected version has no canonical file: what was written before a
     * limit refused it (up to the limit) is not kept. */
    rc = keep ? artifacts_writer_commit(s.canonical, csha, &csize) : RST_OK;
    if (!keep)
        artifacts_writer_abort(s.canonical);
    s.canonical = NULL;
    if (rc == RST_OK && qused)
        rc = artifacts_writer_commit(s.quarantine, qsha, &qsize);
    else
        artifacts_writer_abort(s.quarantine);
    s.quarantine = NULL;
    if (rc) {
        json_decref(result);
        ops_set_error(ctx, "artifacts_unavailable", "cannot store the canonical file");
        goto out;
    }
    /* Keys only: this is shown as the operation's action and the version's result, and a
     * file:// URI would show the server's paths. */
    if (keep)
        json_object_set_new(result, "canonical",
                            json_pack("{s:s, s:s, s:I}", "key", ckey, "sha256", csha, "bytes",
                                      (json_int_t)csize));
    if (qused)
        json_object_set_new(result, "quarantine",
                            json_pack("{s:s, s:I}", "key", qkey, "bytes", (json_int_t)qsize));
    *response = result;
    res = OPS_DONE;
out:
    artifacts_reader_close(rd);
    artifacts_writer_abort(s.canonical);
    artifacts_writer_abort(s.quarantine);
    ingest_free(g);
    return res;
}

static const char *jstr(json_t *o, const char *path1, const char *path2)
{
    json_t *v = json_object_get(o, path1);
    if (path2)
        v = json_object_get(v, path2);
    return json_string_value(v);
}

static char *jnum(json_t *o, const char *path1, const char *path2)
{
    json_t *v = json_object_get(o, path1);
    if (path2)
        v = json_object_get(v, path2);
    return json_is_integer(v) ? xasprintf("%lld", (long long)json_integer_value(v)) : NULL;
}

/* Stores the results and the profile, and settles the version. The daily
 * totals stay an artifact (daily.csv): loading millions of rows into the
 * database took longer than the whole ingestion, and nothing searches them. */
static ops_result step_record(ops_ctx *ctx, json_t *request, json_t **response, void *arg)
{
    version_info *v = ((step_arg *)arg)->v;
    PGconn *c = ops_conn(ctx);
    json_t *res = request;
    int rejected = json_is_true(json_object_get(res, "rejected"));
    char *cbytes = jnum(res, "canonical", "bytes");
    char *read = jnum(res, "rows_read", NULL);
    char *acc = jnum(res, "rows_accepted", NULL);
    char *rej = jnum(res, "rows_rejected", NULL);
    char base[300], pkey[340];
    snprintf(base, sizeof base, "projects/%s/datasets/%s/versions/%s", v->project, v->dataset,
             v->number);
    snprintf(pkey, sizeof pkey, "%s/profile.json", base);
    char *prof = rejected ? NULL : read_text(pkey);
    if (!rejected && !prof) {
        free(cbytes);
        free(read);
        free(acc);
        free(rej);
        ops_set_error(ctx, "artifacts_unavailable", "cannot read the stored profile");
        return OPS_RETRY;
    }
    char *sum = json_dumps(res, JSON_COMPACT);
    const char *ckey = jstr(res, "canonical", "key"), *qkey = jstr(res, "quarantine", "key");
    char *curi = !rejected && ckey ? artifacts_uri(store, ckey) : NULL;
    char *quri = qkey ? artifacts_uri(store, qkey) : NULL;
    ops_result out = OPS_RETRY;
    PGresult *r = db_exec(c, "BEGIN", 0, NULL, NULL);
    PQclear(r);
    const char *p[] = {v->id,
                       rejected ? "rejected" : "ready",
                       curi,
                       rejected ? NULL : jstr(res, "canonical", "sha256"),
                       rejected ? NULL : cbytes,
                       quri,
                       read,
                       acc,
                       rej,
                       sum,
                       rejected ? NULL : prof};
    r = db_exec(c,
                "UPDATE dataset_versions SET state = $2, canonical_uri = $3,"
                " canonical_sha256 = $4, canonical_bytes = $5::bigint, quarantine_uri = $6,"
                " rows_read = $7::bigint, rows_accepted = $8::bigint, rows_rejected = $9::bigint,"
                " result = $10::jsonb, profile = $11::jsonb, finished_at = now() WHERE id = $1",
                11, p, NULL);
    if (r) {
        PQclear(r);
        r = db_exec(c, "COMMIT", 0, NULL, NULL);
    }
    if (r) {
        *response = json_pack("{s:s}", "state", rejected ? "rejected" : "ready");
        out = OPS_DONE;
    } else {
        PQclear(PQexec(c, "ROLLBACK"));
        ops_set_error(ctx, "database", "cannot record the ingestion results");
    }
    PQclear(r);
    free(cbytes);
    free(read);
    free(acc);
    free(rej);
    free(prof);
    free(sum);
    free(curi);
    free(quri);
    return out;
}

static ops_result handle(ops_ctx *ctx)
{
    const char *id = json_string_value(json_object_get(ops_input(ctx), "version_id"));
    version_info v;
    memset(&v, 0, sizeof v);
    if (!id || load_version(ops_conn(ctx), id, &v)) {
        ops_set_error(ctx, "no_version", "the dataset version no longer exists");
        return OPS_FAIL;
    }
    step_arg a = {&v};
    PQclear(db_exec(ops_conn(ctx),
                    "UPDATE dataset_versions SET state = 'ingesting' WHERE id = $1"
                    " AND state = 'pending'",
                    1, (const char *[]){id}, NULL));
    json_t *req = json_pack("{s:s?, s:b, s:s}", "raw_key", v.raw_key, "gzip", v.gzip, "on_error",
                            v.quarantine ? "quarantine" : "reject");
    json_t *result = NULL;
    ops_result r = ops_step(ctx, "ingest", "local", "validate, normalise and profile", req,
                            step_ingest, &a, &result);
    json_decref(req);
    if (r == OPS_DONE)
        r = ops_step(ctx, "record", "local", "record version results", result, step_record, &a,
                     NULL);
    /* Once recorded the version is ours whatever its reactions say: a failure
     * of one (e.g. to publish it to Azure) fails the operation, not the version. */
    int recorded = r == OPS_DONE;
    if (recorded && !json_is_true(json_object_get(result, "rejected"))) {
        version_ready ready = {id, v.project, v.dataset, v.number, store};
        r = version_ready_emit(ctx, &ready); /* main.c's list: datasets/version_ready.h */
    }
    if (r == OPS_DONE)
        ops_set_output(ctx, json_pack("{s:s, s:O?}", "version_id", id, "rows_accepted",
                                      json_object_get(result, "rows_accepted")));
    if (r == OPS_FAIL && !recorded)
        PQclear(db_exec(ops_conn(ctx),
                        "UPDATE dataset_versions SET state = 'failed', finished_at = now()"
                        " WHERE id = $1",
                        1, (const char *[]){id}, NULL));
    free(v.raw_key);
    return r;
}

void ingest_op_register(artifact_store *s, const config *cfg)
{
    store = s;
    limits.max_bytes = (uint64_t)cfg->max_decompressed_bytes;
    limits.max_ratio = (uint64_t)cfg->max_compression_ratio;
    limits.max_rows = (uint64_t)cfg->max_rows_per_version;
    ops_register("dataset.ingest", handle);
}
