/* Reading inside a ready version: a paginated preview of the canonical rows
 * and the daily totals per store and product (for charts). Both read the
 * version's artifacts, never PostgreSQL: a version can hold millions of rows
 * and the database keeps only what it must search. */
#include "api.h"
#include "http/app.h"
#include "artifacts/artifacts.h"
#include "lib/csv.h"
#include "identity/access.h"
#include "identity/policy.h"
#include "datasets/sales.h"
#include "lib/util.h"
#include "lib/csvout.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PREVIEW_MAX_LIMIT 1000
#define DAILY_MAX_ITEMS 100000

/* Checks access and that the version is ready; fills key with the artifact
 * key of file (e.g. "canonical.csv"). Answers and returns 1 otherwise. */
static int ready_version(http_req *req, const char *file, char *key, size_t keylen)
{
    const char *project = http_param(req, "project"), *dataset = http_param(req, "dataset");
    long n;
    if (parse_long(http_param(req, "number"), 1, 1000000000L, &n)) {
        http_problem_field(req, "number", "must be a version number (1, 2, ...)");
        return 1;
    }
    PGconn *c = api_conn(req);
    if (!c)
        return 1;
    if (policy_answer(req, policy_check(c, access_caller(req), ACT_DATASET_READ, project),
                      "datasets")) {
        api_release(req, c);
        return 1;
    }
    PGresult *r = db_exec(c,
                          "SELECT state FROM dataset_versions"
                          " WHERE project_id = $1 AND dataset = $2 AND number = $3::int",
                          3, (const char *[]){project, dataset, http_param(req, "number")}, NULL);
    api_release(req, c);
    if (!r) {
        http_problem_unavailable(req);
        return 1;
    }
    int found = PQntuples(r) == 1, ready = found && !strcmp(PQgetvalue(r, 0, 0), "ready");
    PQclear(r);
    if (!found) {
        http_problem(req, 404, "not-found", "Not found", NULL, "no version %ld of dataset %s", n,
                     dataset);
        return 1;
    }
    if (!ready) {
        http_problem(req, 409, "not-ready", "Version not ready", NULL,
                     "version %ld is not ready: its rows are readable once ingestion succeeded",
                     n);
        return 1;
    }
    snprintf(key, keylen, "projects/%s/datasets/%s/versions/%ld/%s", project, dataset, n, file);
    return 0;
}

/* ---- preview ------------------------------------------------------------ */

enum { COL_QUANTITY = 6, COL_UNIT_PRICE = 7, COL_TOTAL = 8, COL_PROMOTION = 10 };

static const char *const canonical_cols[] = {
    "date",     "store_id",   "country", "city",    "category",  "product",
    "quantity", "unit_price", "total",   "weather", "promotion", "holiday"};
#define N_CANONICAL_COLS (sizeof canonical_cols / sizeof canonical_cols[0])

typedef struct {
    long want;
    long got;
    uint64_t offset;      /* file offset of the next record not yet taken */
    uint64_t next_offset; /* where the page's successor starts; 0 = none */
    int header_pending;   /* the first record is the header (cursor 0) */
    json_t *items;
} preview;

/* One canonical record as typed JSON: numbers stay numbers, Yes/No booleans. */
static json_t *row_json(const csv_record *rec)
{
    json_t *o = json_object();
    for (size_t i = 0; i < N_CANONICAL_COLS; i++) {
        const char *s = i < rec->count ? rec->fields[i].data : "";
        size_t len = i < rec->count ? rec->fields[i].len : 0;
        json_t *v;
        if (len == 0)
            v = json_null();
        else if (i == COL_QUANTITY)
            v = json_integer(strtoll(s, NULL, 10));
        else if (i == COL_UNIT_PRICE || i == COL_TOTAL)
            v = json_real(strtod(s, NULL));
        else if (i >= COL_PROMOTION)
            v = json_boolean(!strcmp(s, "Yes"));
        else /* names as uploaded: without the guard a would-be formula has in the file */
            v = json_stringn(s + csvout_unguard(s, len), len - csvout_unguard(s, len));
        json_object_set_new(o, canonical_cols[i], v);
    }
    return o;
}

#define PREVIEW_STOP 1000 /* not an RST_* code: the page is full */

static int on_preview_row(void *arg, const csv_record *rec)
{
    preview *p = arg;
    uint64_t start = p->offset;
    p->offset += rec->raw_len + 1; /* canonical files end lines with "\n" only */
    if (p->header_pending) {
        p->header_pending = 0;
        return 0;
    }
    if (p->got == p->want) {
        p->next_offset = start;
        return PREVIEW_STOP;
    }
    json_array_append_new(p->items, row_json(rec));
    p->got++;
    return 0;
}

/* GET .../versions/{number}/rows?limit=&cursor= : the cursor is the byte
 * offset of the next row in the canonical file, so any page is one ranged
 * read however deep it is. */
void api_versions_rows(http_req *req)
{
    app_ctx *app = http_app(req);
    char key[400], s[32];
    long limit = 100;
    int n = http_query(req, "limit", s, sizeof s);
    if (n != -1 && (n == -2 || parse_long(s, 1, PREVIEW_MAX_LIMIT, &limit))) {
        http_problem_field(req, "limit", "must be an integer from 1 to 1000");
        return;
    }
    long cursor = 0;
    n = http_query(req, "cursor", s, sizeof s);
    if (n != -1 && (n == -2 || parse_long(s, 1, 0x7fffffffffffffffL, &cursor))) {
        http_problem_field(req, "cursor", "must be a next_cursor returned by this endpoint");
        return;
    }
    if (ready_version(req, "canonical.csv", key, sizeof key))
        return;
    uint64_t size = 0;
    if (artifacts_stat(app->artifacts, key, &size)) {
        http_problem_unavailable(req);
        return;
    }
    if ((uint64_t)cursor >= size && cursor) {
        http_problem_field(req, "cursor", "is past the end of this version's rows");
        return;
    }
    artifact_reader *rd = NULL;
    if (artifacts_reader_open(app->artifacts, key, (uint64_t)cursor, 0, &rd)) {
        http_problem(req, 503, "unavailable", "Artifact store unavailable", NULL,
                     "the rows cannot be read from the artifact store; retry later");
        return;
    }
    preview p = {.want = limit,
                 .offset = (uint64_t)cursor,
                 .header_pending = cursor == 0,
                 .items = json_array()};
    csv_limits lim = {.keep_raw = 1};
    csv_parser *parser = csv_new(&lim, on_preview_row, &p);
    char *chunk = xmalloc(1 << 16);
    size_t got = 0;
    int rc = RST_OK;
    while ((rc = artifacts_reader_read(rd, chunk, 1 << 16, &got)) == RST_OK && got)
        if ((rc = csv_feed(parser, chunk, got)) != RST_OK)
            break;
    if (rc == RST_OK)
        rc = csv_finish(parser);
    free(chunk);
    csv_free(parser);
    artifacts_reader_close(rd);
    if (rc != RST_OK && rc != PREVIEW_STOP) {
        json_decref(p.items);
        http_problem(req, 503, "unavailable", "Artifact store unavailable", NULL,
                     "the rows cannot be read (a cursor must come from next_cursor)");
        return;
    }
    json_t *next = json_null();
    if (p.next_offset) {
        snprintf(s, sizeof s, "%llu", (unsigned long long)p.next_offset);
        next = json_string(s);
    }
    http_reply_json(req, 200, json_pack("{s:o, s:o}", "items", p.items, "next_cursor", next));
}

/* ---- daily totals --------------------------------------------------------- */

typedef struct {
    const char *store;
    const char *product; /* NULL: every product of the store */
    int header_pending;
    long count;
    json_t *items;
} daily_filter;

#define DAILY_STOP 1001

static int on_daily_row(void *arg, const csv_record *rec)
{
    daily_filter *f = arg;
    if (f->header_pending) {
        f->header_pending = 0;
        return 0;
    }
    /* day,store_id,product,quantity,total,rows */
    if (rec->count < 6 || strcmp(rec->fields[1].data, f->store) ||
        (f->product && strcmp(rec->fields[2].data, f->product)))
        return 0;
    if (++f->count > DAILY_MAX_ITEMS)
        return DAILY_STOP;
    json_array_append_new(
        f->items, json_pack("{s:s, s:s, s:I, s:f, s:I}", "day", rec->fields[0].data, "product",
                            rec->fields[2].data, "quantity",
                            (json_int_t)strtoll(rec->fields[3].data, NULL, 10), "total",
                            strtod(rec->fields[4].data, NULL), "rows",
                            (json_int_t)strtoll(rec->fields[5].data, NULL, 10)));
    return 0;
}

static int by_product_then_day(const void *a, const void *b)
{
    json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    int c = strcmp(json_string_value(json_object_get(x, "product")),
                   json_string_value(json_object_get(y, "product")));
    return c ? c : strcmp(json_string_value(json_object_get(x, "day")),
                          json_string_value(json_object_get(y, "day")));
}

/* GET .../versions/{number}/daily-totals?store=&product= : one store's daily
 * series (all its products, or one), ordered by product and day. */
void api_versions_daily_totals(http_req *req)
{
    app_ctx *app = http_app(req);
    char store[SALES_MAX_TEXT_BYTES + 1], product[SALES_MAX_TEXT_BYTES + 1], key[400];
    int sn = http_query(req, "store", store, sizeof store);
    int pn = http_query(req, "product", product, sizeof product);
    if (sn <= 0) {
        http_problem_field(req, "store", "is required: the store whose daily totals to chart");
        return;
    }
    if (pn == -2 || pn == 0) {
        http_problem_field(req, "product", "must be a product name of at most 200 bytes");
        return;
    }
    if (ready_version(req, "daily.csv", key, sizeof key))
        return;
    artifact_reader *rd = NULL;
    if (artifacts_reader_open(app->artifacts, key, 0, 0, &rd)) {
        http_problem(req, 503, "unavailable", "Artifact store unavailable", NULL,
                     "the daily totals cannot be read from the artifact store; retry later");
        return;
    }
    daily_filter f = {.store = store,
                      .product = pn > 0 ? product : NULL,
                      .header_pending = 1,
                      .items = json_array()};
    csv_parser *parser = csv_new(NULL, on_daily_row, &f);
    char *chunk = xmalloc(1 << 18);
    size_t got = 0;
    int rc = RST_OK;
    while ((rc = artifacts_reader_read(rd, chunk, 1 << 18, &got)) == RST_OK && got)
        if ((rc = csv_feed(parser, chunk, got)) != RST_OK)
            break;
    if (rc == RST_OK)
        rc = csv_finish(parser);
    free(chunk);
    csv_free(parser);
    artifacts_reader_close(rd);
    if (rc == DAILY_STOP) {
        json_decref(f.items);
        http_problem_field(req, "product",
                           "more than 100000 daily totals match: name one product");
        return;
    }
    if (rc != RST_OK) {
        json_decref(f.items);
        http_problem_unavailable(req);
        return;
    }
    /* Sort through a plain array: jansson arrays have no sort of their own. */
    size_t m = json_array_size(f.items);
    json_t **v = xmalloc((m ? m : 1) * sizeof *v);
    for (size_t i = 0; i < m; i++)
        v[i] = json_incref(json_array_get(f.items, i));
    qsort(v, m, sizeof *v, by_product_then_day);
    json_array_clear(f.items);
    for (size_t i = 0; i < m; i++)
        json_array_append_new(f.items, v[i]);
    free(v);
    http_reply_json(req, 200,
                    json_pack("{s:s, s:s?, s:o}", "store", store, "product", f.product, "items",
                              f.items));
}
