/* Ties csv -> sales -> profile together for one dataset version and keeps the
 * outcome: counts, the first errors, the quarantine of bad rows as sent. */
#include "datasets/ingest.h"
#include "lib/csv.h"
#include "datasets/sales.h"
#include "lib/util.h"
#include "lib/csvout.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FLUSH_AT ((size_t)256 * 1024)
#define STOP 1 /* from on_record: not an RST_* code */

typedef int (*write_fn)(void *arg, const char *data, size_t len);

struct ingest {
    ingest_options o;
    sales_options so;
    write_fn wc, wq;
    void *arg;
    csv_parser *csv;
    sales_schema *schema;
    json_t *header; /* sales_schema_new's report */
    profile_t *prof;
    buf_t cbuf, qbuf;
    char *qheader; /* the header line as sent, kept until a row is quarantined */
    size_t qheader_len;
    int header_seen, quarantined, stop_canonical;
    uint64_t rows_read, accepted, bad_rows, error_count;
    json_t *errors;
    int errors_truncated;
    int rejected;
    char *reason;
    json_t *parse_error;
    json_t *limit; /* {"setting", "value"} of the limit that rejected the version */
    int io_status; /* a write callback's failure */
    int done, finished;
    sales_error errs[SALES_MAX_ROW_ERRORS];
};

static void reject(ingest *g, char *reason_steals)
{
    if (!g->rejected) {
        g->rejected = 1;
        g->reason = reason_steals;
    } else {
        free(reason_steals);
    }
}

void ingest_refuse(ingest *g, const char *setting, uint64_t value, const char *reason)
{
    if (g->rejected)
        return;
    reject(g, xstrdup(reason));
    g->limit = json_pack("{s:s, s:I}", "setting", setting, "value", (json_int_t)value);
    g->done = 1;
    g->stop_canonical = 1; /* the version is refused whole: nothing more is worth writing */
    g->cbuf.len = 0;
}

static int flush(ingest *g, buf_t *b, write_fn fn)
{
    if (!b->len || g->io_status)
        return g->io_status;
    int rc = fn ? fn(g->arg, b->data, b->len) : RST_OK;
    b->len = 0;
    if (rc) {
        g->io_status = rc;
        g->done = 1;
    }
    return rc;
}

/* A record as sent, unless one of its cells would run as a formula in a
 * spreadsheet: then its fields are written anew with csvout_text (the values
 * unchanged; the sales parser reads the guarded cells back as they were). */
static void put_record(buf_t *b, const csv_record *rec)
{
    int guard = 0;
    for (size_t i = 0; i < rec->count && !guard; i++)
        guard = csvout_needs_guard(rec->fields[i].data, rec->fields[i].len);
    if (!guard) {
        buf_append(b, rec->raw, rec->raw_len);
        return;
    }
    for (size_t i = 0; i < rec->count; i++) {
        if (i)
            buf_puts(b, ",");
        csvout_text(b, rec->fields[i].data, rec->fields[i].len);
    }
}

static int quarantine(ingest *g, const csv_record *rec, size_t nerr)
{
    buf_t *q = &g->qbuf;
    if (!g->quarantined) {
        g->quarantined = 1;
        buf_append(q, g->qheader, g->qheader_len);
        buf_puts(q, ",error\n");
    }
    buf_t why;
    buf_init(&why, 0);
    for (size_t i = 0; i < nerr; i++)
        buf_printf(&why, "%s%s: %s", i ? "; " : "", g->errs[i].column, g->errs[i].reason);
    put_record(q, rec);
    buf_puts(q, ",");
    csvout_text(q, why.data ? why.data : "", why.len);
    buf_puts(q, "\n");
    buf_free(&why);
    return q->len >= FLUSH_AT ? flush(g, q, g->wq) : RST_OK;
}

static int on_header(ingest *g, const csv_record *rec)
{
    g->header_seen = 1;
    if (sales_schema_new(&g->so, rec, &g->schema, &g->header)) {
        const char *e = json_string_value(json_object_get(g->header, "error"));
        reject(g, xstrdup(e ? e : "the header does not match the sales schema"));
        g->done = 1;
        return STOP;
    }
    buf_t h;
    buf_init(&h, 0);
    put_record(&h, rec);
    g->qheader = h.data ? h.data : xstrdup("");
    g->qheader_len = h.len;
    sales_write_header(&g->cbuf);
    return 0;
}

static int on_record(void *arg, const csv_record *rec)
{
    ingest *g = arg;
    if (!g->header_seen)
        return on_header(g, rec);
    if (g->o.max_rows && g->rows_read >= g->o.max_rows) {
        char why[200];
        snprintf(why, sizeof why,
                 "the file has more than %llu data rows, the limit per version"
                 " (ROASTERY_MAX_ROWS_PER_VERSION)",
                 (unsigned long long)g->o.max_rows);
        ingest_refuse(g, "ROASTERY_MAX_ROWS_PER_VERSION", g->o.max_rows, why);
        return STOP;
    }
    g->rows_read++;
    sales_row row;
    size_t n = sales_parse_row(g->schema, rec, &row, g->errs, SALES_MAX_ROW_ERRORS);
    if (!n) {
        g->accepted++;
        profile_add(g->prof, &row);
        if (g->stop_canonical)
            return 0;
        sales_write_row(&g->cbuf, &row);
        if (g->cbuf.len >= FLUSH_AT && flush(g, &g->cbuf, g->wc))
            return STOP;
        return 0;
    }
    g->bad_rows++;
    g->error_count += n;
    for (size_t i = 0; i < n; i++) {
        if (json_array_size(g->errors) < g->o.max_errors_kept)
            json_array_append_new(g->errors, sales_error_json(&g->errs[i]));
        else
            g->errors_truncated = 1;
    }
    if (!g->o.on_error_quarantine && !g->stop_canonical) {
        /* the version is rejected: the canonical file is of no use any more */
        g->stop_canonical = 1;
        g->cbuf.len = 0;
    }
    return quarantine(g, rec, n) ? STOP : 0;
}

ingest *ingest_new(const ingest_options *o, write_fn write_canonical, write_fn write_quarantine,
                   void *arg)
{
    if (!o)
        return NULL;
    sales_options so = {o->min_date, o->max_date};
    if (sales_options_check(&so))
        return NULL;
    ingest *g = xcalloc(1, sizeof *g);
    g->o = *o;
    if (!g->o.max_errors_kept)
        g->o.max_errors_kept = 100;
    g->so = so;
    g->wc = write_canonical;
    g->wq = write_quarantine;
    g->arg = arg;
    csv_limits lim = {.keep_raw = 1};
    g->csv = csv_new(&lim, on_record, g);
    profile_limits pl = {.max_daily_keys = o->max_daily_keys};
    g->prof = profile_new(&pl);
    buf_init(&g->cbuf, 0);
    buf_init(&g->qbuf, 0);
    g->errors = json_array();
    return g;
}

/* Turns a csv_feed/csv_finish status into ours. */
static int settle(ingest *g, int rc)
{
    if (rc == RST_OK)
        return RST_OK;
    g->done = 1;
    if (rc == STOP)
        return g->io_status;
    if (rc == RST_EINVAL || rc == RST_ETOOBIG) {
        const csv_error *e = csv_get_error(g->csv);
        const char *m = e ? e->message : "the file is not valid CSV";
        g->parse_error = json_pack("{s:I, s:I, s:s}", "line", (json_int_t)(e ? e->line : 0),
                                   "column", (json_int_t)(e ? e->column : 0), "message", m);
        reject(g, xstrdup(m));
        return RST_OK;
    }
    return rc;
}

int ingest_feed(ingest *g, const char *data, size_t len)
{
    if (g->finished)
        return RST_EINVAL;
    if (g->done)
        return g->io_status;
    return settle(g, csv_feed(g->csv, data, len));
}

int ingest_finish(ingest *g)
{
    if (g->finished)
        return RST_EINVAL;
    g->finished = 1;
    if (!g->done) {
        int rc = settle(g, csv_finish(g->csv));
        if (rc)
            return rc;
    }
    if (g->io_status)
        return g->io_status;
    if (!g->header_seen)
        reject(g, xstrdup("the file is empty"));
    else if (g->schema && !g->rows_read)
        reject(g, xstrdup("the file has a header but no data rows"));
    else if (g->bad_rows && !g->o.on_error_quarantine)
        reject(g, xasprintf("%llu of %llu rows are invalid and the version rejects any bad row "
                            "(see errors; upload again with on_error=quarantine to keep the "
                            "valid rows)",
                            (unsigned long long)g->bad_rows, (unsigned long long)g->rows_read));
    else if (g->schema && !g->accepted)
        reject(g, xasprintf("none of the %llu rows is valid", (unsigned long long)g->rows_read));
    int rc = RST_OK;
    if (!g->stop_canonical)
        rc = flush(g, &g->cbuf, g->wc);
    if (!rc)
        rc = flush(g, &g->qbuf, g->wq);
    return rc;
}

int ingest_done(const ingest *g)
{
    return g->done;
}

int ingest_rejected(const ingest *g)
{
    return g->rejected;
}

json_t *ingest_result_json(const ingest *g)
{
    json_t *r = json_object();
    json_object_set_new(r, "rejected", json_boolean(g->rejected));
    json_object_set_new(r, "reason", g->reason ? json_string(g->reason) : json_null());
    json_object_set_new(r, "policy",
                        json_string(g->o.on_error_quarantine ? "quarantine" : "reject"));
    json_object_set_new(r, "rows_read", json_integer((json_int_t)g->rows_read));
    json_object_set_new(r, "rows_accepted", json_integer((json_int_t)g->accepted));
    json_object_set_new(r, "rows_rejected", json_integer((json_int_t)g->bad_rows));
    json_object_set_new(r, "quarantined", json_boolean(g->quarantined));
    json_object_set_new(r, "header", g->header ? json_deep_copy(g->header) : json_null());
    json_object_set_new(r, "error_count", json_integer((json_int_t)g->error_count));
    json_object_set_new(r, "errors", json_deep_copy(g->errors));
    json_object_set_new(r, "errors_truncated", json_boolean(g->errors_truncated));
    if (g->parse_error)
        json_object_set_new(r, "parse_error", json_deep_copy(g->parse_error));
    if (g->limit) {
        json_object_set_new(r, "limit", json_deep_copy(g->limit));
        json_object_set_new(r, "problem",
                            json_pack("{s:s, s:s, s:i, s:s, s:O}", "type",
                                      "https://roastery.dev/problems/upload-limit", "title",
                                      "Upload over a limit", "status", 413, "detail", g->reason,
                                      "limit", json_object_get(g->limit, "setting")));
    }
    json_object_set_new(r, "profile", profile_to_json(g->prof));
    return r;
}

const profile_t *ingest_profile(const ingest *g)
{
    return g->prof;
}

void ingest_free(ingest *g)
{
    if (!g)
        return;
    csv_free(g->csv);
    sales_schema_free(g->schema);
    json_decref(g->header);
    profile_free(g->prof);
    buf_free(&g->cbuf);
    buf_free(&g->qbuf);
    free(g->qheader);
    json_decref(g->errors);
    free(g->reason);
    json_decref(g->parse_error);
    json_decref(g->limit);
    free(g);
}
