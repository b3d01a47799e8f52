/* daily.csv (date,store_id,product,quantity,total,rows) into actuals, in batches, for the
 * stores the project serves only; what a person reported stays. */
#include "forecasts/actuals_load.h"
#include "forecasts/accuracy.h"
#include "db/db.h"
#include "forecasts/forecast_cache.h"
#include "lib/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH 5000

typedef struct {
    buf_t store, product, day, qty; /* Postgres array literals being built */
    size_t n;
} batch;

static void batch_reset(batch *b)
{
    buf_free(&b->store);
    buf_free(&b->product);
    buf_free(&b->day);
    buf_free(&b->qty);
    buf_init(&b->store, 0);
    buf_init(&b->product, 0);
    buf_init(&b->day, 0);
    buf_init(&b->qty, 0);
    b->n = 0;
}

static void add_quoted(buf_t *b, const char *s, size_t len)
{
    buf_puts(b, b->len ? ",\"" : "{\"");
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '"' || s[i] == '\\')
            buf_append(b, "\\", 1);
        buf_append(b, s + i, 1);
    }
    buf_puts(b, "\"");
}

typedef struct {
    long taken;      /* rows inserted or changed */
    long not_served; /* rows of stores the project does not serve */
    long manual;     /* rows a person reported, left as they are */
} load_counts;

/* Upserts one batch: only rows of stores the project serves (an admin's binding), and never
 * over a row a person reported ('api'), which takes precedence over any dataset. */
static int flush(PGconn *c, batch *b, const char *project, const char *source, load_counts *n)
{
    if (!b->n)
        return RST_OK;
    buf_puts(&b->store, "}");
    buf_puts(&b->product, "}");
    buf_puts(&b->day, "}");
    buf_puts(&b->qty, "}");
    PGresult *r = db_exec(
        c,
        "WITH u AS (SELECT s, p, d::date AS d, q::float8 AS q FROM unnest($1::text[], $2::text[],"
        " $3::text[], $4::text[]) AS t(s, p, d, q)), own AS (SELECT u.* FROM u JOIN stores st ON"
        " st.id = u.s AND st.serving_project = $6), w AS (INSERT INTO actuals AS a (store_id,"
        " product, day, quantity, source, source_project) SELECT s, p, d, q, $5, $6 FROM own ON"
        " CONFLICT (store_id, product, day) DO UPDATE SET quantity = EXCLUDED.quantity, source ="
        " EXCLUDED.source, source_project = EXCLUDED.source_project, reported_by = NULL,"
        " updated_at = now() WHERE a.source <> 'api' AND a.quantity IS DISTINCT FROM"
        " EXCLUDED.quantity RETURNING 1) SELECT (SELECT count(*) FROM w), (SELECT count(*) FROM"
        " u) - (SELECT count(*) FROM own), (SELECT count(*) FROM own JOIN actuals a ON"
        " a.store_id = own.s AND a.product = own.p AND a.day = own.d AND a.source = 'api')",
        6,
        (const char *[]){b->store.data, b->product.data, b->day.data, b->qty.data, source, project},
        NULL);
    if (!r || PQntuples(r) != 1) {
        PQclear(r);
        return RST_EDB;
    }
    n->taken += strtol(PQgetvalue(r, 0, 0), NULL, 10);
    n->not_served += strtol(PQgetvalue(r, 0, 1), NULL, 10);
    n->manual += strtol(PQgetvalue(r, 0, 2), NULL, 10);
    PQclear(r);
    batch_reset(b);
    return RST_OK;
}

/* Splits a simple CSV line (daily.csv quotes only names with commas or quotes). */
static int fields(const char *line, size_t len, const char *f[6], size_t flen[6], char *scratch)
{
    int k = 0;
    size_t i = 0, w = 0;
    while (k < 6 && i <= len) {
        f[k] = scratch + w;
        size_t start = w;
        if (i < len && line[i] == '"') {
            i++;
            while (i < len && !(line[i] == '"' && (i + 1 >= len || line[i + 1] != '"'))) {
                if (line[i] == '"')
                    i++;
                scratch[w++] = line[i++];
            }
            i++; /* closing quote */
        } else {
            while (i < len && line[i] != ',')
                scratch[w++] = line[i++];
        }
        flen[k] = w - start;
        scratch[w++] = '\0';
        k++;
        if (i >= len || line[i] != ',')
            break;
        i++;
    }
    return k;
}

int actuals_load_version(PGconn *c, artifact_store *store, const char *project,
                         const char *dataset, const char *number, json_t **summary)
{
    *summary = NULL;
    PGresult *r = db_exec(c,
                          "SELECT min(start_date)::text FROM forecast_runs WHERE project_id = $1"
                          " AND state = 'ready'",
                          1, (const char *[]){project}, NULL);
    if (!r)
        return RST_EDB;
    char from[16] = "";
    if (!PQgetisnull(r, 0, 0))
        snprintf(from, sizeof from, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    if (!from[0]) {
        *summary = json_pack("{s:s}", "skipped", "the project has no forecasts yet");
        return RST_OK;
    }
    char *key = xasprintf("projects/%s/datasets/%s/versions/%s/daily.csv", project, dataset,
                          number);
    char *source = xasprintf("dataset:%s:%s", dataset, number);
    artifact_reader *rd = NULL;
    int rc = artifacts_reader_open(store, key, 0, 0, &rd);
    free(key);
    if (rc) {
        free(source);
        return RST_EIO;
    }
    batch b;
    memset(&b, 0, sizeof b);
    batch_reset(&b);
    buf_t pending;
    buf_init(&pending, 0);
    char *chunk = xmalloc(1 << 20), *scratch = NULL;
    size_t got = 0, scratch_cap = 0;
    long read = 0;
    load_counts n = {0};
    int header = 1;
    while (rc == RST_OK && (rc = artifacts_reader_read(rd, chunk, 1 << 20, &got)) == RST_OK) {
        if (got)
            buf_append(&pending, chunk, got);
        size_t start = 0;
        for (size_t i = 0; i < pending.len && rc == RST_OK; i++) {
            if (pending.data[i] != '\n' && !(got == 0 && i + 1 == pending.len))
                continue;
            size_t end = pending.data[i] == '\n' ? i : i + 1;
            const char *line = pending.data + start;
            size_t len = end - start;
            start = i + 1;
            if (len && line[len - 1] == '\r')
                len--;
            if (header || !len) {
                header = 0;
                continue;
            }
            if (len + 8 > scratch_cap) {
                scratch_cap = len * 2 + 64;
                scratch = xrealloc(scratch, scratch_cap);
            }
            const char *f[6];
            size_t fl[6];
            if (fields(line, len, f, fl, scratch) < 4)
                continue;
            read++;
            /* ISO dates compare as strings */
            if (strcmp(f[0], from) < 0)
                continue;
            add_quoted(&b.day, f[0], fl[0]);
            add_quoted(&b.store, f[1], fl[1]);
            add_quoted(&b.product, f[2], fl[2]);
            add_quoted(&b.qty, f[3], fl[3]);
            if (++b.n >= BATCH)
                rc = flush(c, &b, project, source, &n);
        }
        if (start) {
            memmove(pending.data, pending.data + start, pending.len - start);
            pending.len -= start;
        }
        if (!got)
            break;
    }
    if (rc == RST_OK)
        rc = flush(c, &b, project, source, &n);
    artifacts_reader_close(rd);
    batch_reset(&b);
    buf_free(&b.store);
    buf_free(&b.product);
    buf_free(&b.day);
    buf_free(&b.qty);
    buf_free(&pending);
    free(chunk);
    free(scratch);
    free(source);
    if (rc)
        return rc == RST_EDB ? RST_EDB : RST_EIO;
    if (n.taken) {
        forecast_cache_invalidate();
        accuracy_enqueue(c, project, "roastery");
    }
    *summary = json_pack("{s:I, s:I, s:I, s:I, s:s}", "rows_read", (json_int_t)read, "rows_taken",
                         (json_int_t)n.taken, "rows_not_served", (json_int_t)n.not_served,
                         "rows_reported_by_people", (json_int_t)n.manual, "from", from);
    return RST_OK;
}

/* ---- the reaction to a new dataset version (step_actuals: from datasets/ingest_op.c) */

static ops_result step_actuals(ops_ctx *ctx, json_t *request, json_t **response, void *arg)
{
    (void)request;
    const version_ready *v = arg;
    int rc =
        actuals_load_version(ops_conn(ctx), v->store, v->project, v->dataset, v->number, response);
    if (rc == RST_OK)
        return OPS_DONE;
    ops_set_error(ctx, rc == RST_EDB ? "database" : "artifacts_unavailable",
                  "cannot take the version's daily sales as actuals");
    return OPS_RETRY;
}

ops_result actuals_load_on_version(ops_ctx *ctx, const version_ready *v)
{
    return ops_step(ctx, "actuals", "local", "take the daily sales as actuals of the forecasts",
                    NULL, step_actuals, (void *)v, NULL);
}
