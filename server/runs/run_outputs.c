/* What a training run leaves, whoever carried it out (runs/run_local.c on this machine,
 * runs/run_azure.c in Azure ML): its log chunks and its output files as artifacts, with the
 * metrics, lineage and artifact list recorded on the run (moved whole from run_exec.c). */
#include "runs/run_outputs.h"

#include "db/db.h"
#include "lib/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static artifact_store *store;

void run_outputs_init(artifact_store *s)
{
    store = s;
}

char *run_outputs_log_key(const char *project, const char *run_id, int n)
{
    return xasprintf("projects/%s/runs/%s/logs/%06d.log", project, run_id, n);
}

void run_outputs_append_log(PGconn *c, const char *project, const char *run_id, const char *lines)
{
    PGresult *res = db_exec(c, "SELECT log_chunks FROM runs WHERE id = $1::uuid", 1,
                            (const char *[]){run_id}, NULL);
    long n;
    if (!res || PQntuples(res) != 1 || parse_long(PQgetvalue(res, 0, 0), 0, 100000000, &n)) {
        PQclear(res);
        return;
    }
    PQclear(res);
    /* One writer per run (the operation's holder): the chunk first, then the
     * count that makes readers look for it. */
    char *key = run_outputs_log_key(project, run_id, (int)n);
    artifact_writer *w = NULL;
    char sha[65];
    uint64_t size;
    if (artifacts_writer_open(store, key, &w) == RST_OK &&
        artifacts_writer_write(w, lines, strlen(lines)) == RST_OK &&
        artifacts_writer_commit(w, sha, &size) == RST_OK) {
        char next[24];
        snprintf(next, sizeof next, "%ld", n + 1);
        PQclear(db_exec(c, "UPDATE runs SET log_chunks = $2::int WHERE id = $1::uuid", 2,
                        (const char *[]){run_id, next}, NULL));
    } else {
        artifacts_writer_abort(w);
    }
    free(key);
}

static const char *const outputs[] = {"model.json", "features.json", "metrics.json",
                                      "backtest.csv", "run.json", NULL};

ops_result run_outputs_store(ops_ctx *ctx, const char *project, const char *run_id,
                             const char *outdir, json_t **response)
{
    json_t *list = json_array();
    for (int i = 0; outputs[i]; i++) {
        char *path = xasprintf("%s/%s", outdir, outputs[i]);
        char *key = xasprintf("projects/%s/runs/%s/artifacts/%s", project, run_id, outputs[i]);
        FILE *f = fopen(path, "rb");
        artifact_writer *w = NULL;
        int rc = f ? artifacts_writer_open(store, key, &w) : RST_ENOTFOUND;
        char buf[65536], sha[65];
        size_t got;
        uint64_t size = 0;
        while (rc == RST_OK && (got = fread(buf, 1, sizeof buf, f)) > 0)
            rc = artifacts_writer_write(w, buf, got);
        if (rc == RST_OK)
            rc = artifacts_writer_commit(w, sha, &size);
        else
            artifacts_writer_abort(w);
        if (f)
            fclose(f);
        if (rc == RST_OK) {
            /* The API URL, not the store's URI: this list is shown (the operation, the run). */
            char *uri = xasprintf("/api/v1/runs/%s/artifacts/%s", run_id, outputs[i]);
            json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:I, s:s}", "name", outputs[i],
                                                  "key", key, "uri", uri, "bytes",
                                                  (json_int_t)size, "sha256", sha));
            free(uri);
        }
        free(path);
        free(key);
        if (rc && rc != RST_ENOTFOUND) {
            json_decref(list);
            ops_set_error(ctx, "artifacts_unavailable", "cannot store the run's artifacts");
            return OPS_RETRY;
        }
    }
    /* metrics.json without its per-store and per-product detail goes into the
     * row (the whole file is an artifact); run.json is the lineage. */
    char *mpath = xasprintf("%s/metrics.json", outdir);
    char *lpath = xasprintf("%s/run.json", outdir);
    json_t *metrics = json_load_file(mpath, 0, NULL), *lineage = json_load_file(lpath, 0, NULL);
    free(mpath);
    free(lpath);
    json_object_del(metrics, "per_store");
    json_object_del(metrics, "per_product");
    char *m = metrics ? json_dumps(metrics, JSON_COMPACT) : NULL;
    char *l = lineage ? json_dumps(lineage, JSON_COMPACT) : NULL;
    char *a = json_dumps(list, JSON_COMPACT);
    PGresult *r = db_exec(ops_conn(ctx),
                          "UPDATE runs SET metrics = $2::jsonb, lineage = $3::jsonb,"
                          " artifacts = $4::jsonb WHERE id = $1::uuid",
                          4, (const char *[]){run_id, m, l, a}, NULL);
    free(m);
    free(l);
    free(a);
    json_decref(metrics);
    json_decref(lineage);
    if (!r) {
        json_decref(list);
        ops_set_error(ctx, "database", "cannot record the run's results");
        return OPS_RETRY;
    }
    PQclear(r);
    *response = json_pack("{s:o}", "artifacts", list);
    return OPS_DONE;
}
