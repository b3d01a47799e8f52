/* Forecasts for store managers (served from a hot cache with ETags), their
 * accuracy, actuals, forecast runs, and the known future inputs (planned
 * promotions, weather outlook) that data scientists and admins maintain.
 * size: six resources of one concern in one file; to be split by resource (store_forecasts,
 * actuals, forecast_runs, forecast_inputs: review 2026-12 §3.7). */
#include "identity/access.h"
#include "forecasts/accuracy.h"
#include "api.h"
#include "http/app.h"
#include "db/db.h"
#include "forecasts/forecast_cache.h"
#include "forecasts/forecast_ops.h"
#include "identity/policy.h"
#include "datasets/sales.h"
#include "lib/util.h"
#include "http/validate.h"
#include "lib/csvout.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Days one read may span, and rows one actuals upload may carry. */
#define MAX_SPAN_DAYS 366
#define MAX_ACTUALS_ROWS 200000
#define MAX_ACTUALS_BYTES ((size_t)32 << 20)
#define MAX_ERRORS 20

/* ---- helpers ------------------------------------------------------------------------ */

static int valid_date(const char *s)
{
    int32_t d;
    return sales_parse_date(s, strlen(s), &d) == 0;
}

static int wants_csv(http_req *req)
{
    const char *a = http_header(req, "Accept");
    return a && strstr(a, "text/csv") && !strstr(a, "application/json");
}

/* Whether the caller may read store's forecasts and accuracy (policy: admins, its store
 * managers, members of its serving project), the decision cached like the answer. A refusal,
 * cached or not, is answered and audited by the policy module. */
static int store_allowed(http_req *req, const char *store, PGconn **conn)
{
    caller *who = access_caller(req);
    if (policy_is_admin(who))
        return 1;
    char key[300], *body = NULL, etag[72];
    size_t len;
    snprintf(key, sizeof key, "acl|%s|%s", who ? who->id.oid : "", store);
    if (forecast_cache_get(key, &body, &len, etag)) {
        /* A cached refusal is a refusal like any other: answered and audited the same way. */
        policy_decision d = body[0] == 'A'   ? POLICY_ALLOW
                            : body[0] == 'F' ? POLICY_FORBIDDEN
                                             : POLICY_HIDDEN;
        free(body);
        return !policy_answer(req, d, "store");
    }
    if (!*conn && !(*conn = api_conn(req)))
        return 0;
    policy_decision d = policy_check(*conn, who, ACT_STORE_FORECAST_READ, store);
    if (d == POLICY_ALLOW || d == POLICY_HIDDEN || d == POLICY_FORBIDDEN)
        forecast_cache_put(key,
                           d == POLICY_ALLOW       ? "A"
                           : d == POLICY_FORBIDDEN ? "F"
                                                   : "H",
                           1, etag);
    return !policy_answer(req, d, "store");
}

/* Replies body with its ETag, or 304 when the client has it. */
static void reply_cached(http_req *req, const char *ctype, const char *body, size_t len,
                         const char *etag)
{
    http_add_header(req, "ETag", etag);
    http_add_header(req, "Cache-Control", "private, max-age=60");
    http_add_header(req, "Vary", "Accept, Authorization");
    const char *inm = http_header(req, "If-None-Match");
    if (inm && (strstr(inm, etag) || !strcmp(inm, "*")))
        http_reply_empty(req, 304);
    else
        http_reply_bytes(req, 200, ctype, body, len);
}

/* ---- GET /stores/{store}/forecasts -------------------------------------------------- */

/* Renders a store's forecasts: for each product and day in [from, to] the
 * forecast of the latest ready run that covers the day (what was being
 * served on that day), and the actual when known. Only the store's serving
 * project (an admin's choice) is served. NULL on a database error;
 * *missing when the store has no current forecast. */
static char *render_forecasts(PGconn *c, const char *store, const char *from, const char *to,
                              const char *product, int csv, size_t *len, int *missing)
{
    *missing = 0;
    PGresult *cur = db_exec(
        c,
        "SELECT f.id, f.project_id, f.model, f.model_version, to_char(f.ready_at AT TIME ZONE"
        " 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), f.start_date, f.start_date + f.days - 1"
        " FROM stores s JOIN forecast_runs f ON f.project_id = s.serving_project WHERE s.id = $1"
        " AND f.current AND f.state = 'ready' AND EXISTS (SELECT 1 FROM forecasts x WHERE"
        " x.run_id = f.id AND x.store_id = $1)",
        1, (const char *[]){store}, NULL);
    if (!cur)
        return NULL;
    if (PQntuples(cur) != 1) {
        PQclear(cur);
        *missing = 1;
        return NULL;
    }
    const char *lo = from[0] ? from : PQgetvalue(cur, 0, 5);
    const char *hi = to[0] ? to : PQgetvalue(cur, 0, 6);
    PGresult *r = db_exec(
        c,
        "SELECT DISTINCT ON (fc.product, fc.day) fc.product, fc.day, fc.forecast, fc.lo80,"
        " fc.hi80, fc.lo95, fc.hi95, a.quantity FROM forecasts fc JOIN forecast_runs r ON r.id ="
        " fc.run_id AND r.project_id = $2 AND r.state = 'ready' LEFT JOIN actuals a ON"
        " a.store_id = fc.store_id AND a.product = fc.product AND a.day = fc.day WHERE"
        " fc.store_id = $1 AND fc.day BETWEEN $3::date AND $4::date AND ($5::text IS NULL OR"
        " fc.product = $5) ORDER BY fc.product, fc.day, r.ready_at DESC",
        5, (const char *[]){store, PQgetvalue(cur, 0, 1), lo, hi, product[0] ? product : NULL},
        NULL);
    if (!r) {
        PQclear(cur);
        return NULL;
    }
    buf_t b;
    buf_init(&b, 0);
    if (csv) {
        buf_puts(&b, "product,date,forecast,lo80,hi80,lo95,hi95,actual\n");
        for (int i = 0; i < PQntuples(r); i++) {
            /* the product is text (formula-guarded); the rest are our own numbers */
            csvout_text(&b, PQgetvalue(r, i, 0), (size_t)PQgetlength(r, i, 0));
            for (int k = 1; k < 8; k++)
                buf_printf(&b, ",%s", PQgetvalue(r, i, k));
            buf_puts(&b, "\n");
        }
    } else {
        json_t *head = json_pack(
            "{s:s, s:s, s:s, s:i, s:s, s:s, s:s, s:s}", "store", store, "project",
            PQgetvalue(cur, 0, 1), "model", PQgetvalue(cur, 0, 2), "model_version",
            (int)strtol(PQgetvalue(cur, 0, 3), NULL, 10), "forecast_run", PQgetvalue(cur, 0, 0),
            "generated_at", PQgetvalue(cur, 0, 4), "from", lo, "to", hi);
        char *h = json_dumps(head, JSON_COMPACT);
        json_decref(head);
        buf_append(&b, h, strlen(h) - 1); /* without the closing brace */
        free(h);
        buf_puts(&b, ",\"items\":[");
        for (int i = 0; i < PQntuples(r); i++) {
            json_t *name = json_string(PQgetvalue(r, i, 0));
            char *n = json_dumps(name, JSON_ENCODE_ANY);
            json_decref(name);
            buf_printf(&b,
                       "%s{\"product\":%s,\"date\":\"%s\",\"forecast\":%s,\"lo80\":%s,"
                       "\"hi80\":%s,\"lo95\":%s,\"hi95\":%s,\"actual\":%s}",
                       i ? "," : "", n, PQgetvalue(r, i, 1), PQgetvalue(r, i, 2),
                       PQgetvalue(r, i, 3), PQgetvalue(r, i, 4), PQgetvalue(r, i, 5),
                       PQgetvalue(r, i, 6), PQgetisnull(r, i, 7) ? "null" : PQgetvalue(r, i, 7));
            free(n);
        }
        buf_puts(&b, "]}");
    }
    PQclear(r);
    PQclear(cur);
    *len = b.len;
    return b.data;
}

void api_store_forecasts(http_req *req)
{
    const char *store = http_param(req, "store");
    char from[16] = "", to[16] = "", product[SALES_MAX_TEXT_BYTES + 1] = "";
    int fn = http_query(req, "from", from, sizeof from);
    int tn = http_query(req, "to", to, sizeof to);
    int pn = http_query(req, "product", product, sizeof product);
    if (fn == -2 || (fn > 0 && !valid_date(from))) {
        http_problem_field(req, "from", "must be a date YYYY-MM-DD");
        return;
    }
    if (tn == -2 || (tn > 0 && !valid_date(to))) {
        http_problem_field(req, "to", "must be a date YYYY-MM-DD");
        return;
    }
    int32_t df = 0, dt = 0;
    if (fn > 0 && tn > 0) {
        sales_parse_date(from, strlen(from), &df);
        sales_parse_date(to, strlen(to), &dt);
        if (dt < df || dt - df >= MAX_SPAN_DAYS) {
            http_problem_field(req, "to", dt < df ? "must not be before from"
                                                  : "spans more than 366 days from from");
            return;
        }
    }
    if (pn == -2 || (pn > 0 && v_check_printable(product))) {
        http_problem_field(req, "product", "must be a product name of at most 200 bytes");
        return;
    }
    PGconn *c = NULL;
    if (!store_allowed(req, store, &c)) {
        api_release(req, c);
        return;
    }
    int csv = wants_csv(req);
    char key[600], etag[72];
    snprintf(key, sizeof key, "fc|%s|%s|%s|%s|%d", store, from, to, product, csv);
    char *body = NULL;
    size_t len = 0;
    const char *ctype = csv ? "text/csv; charset=utf-8" : "application/json";
    if (forecast_cache_get(key, &body, &len, etag)) {
        api_release(req, c);
        reply_cached(req, ctype, body, len, etag);
        free(body);
        return;
    }
    if (!c && !(c = api_conn(req)))
        return;
    int missing = 0;
    body = render_forecasts(c, store, from, to, product, csv, &len, &missing);
    if (!body && missing)
        http_problem(req, 404, "no-forecast", "No forecast", NULL,
                     "store %s has no forecast yet: forecasts appear once a model of its project"
                     " is in production",
                     store);
    else if (!body)
        http_problem_unavailable(req);
    else {
        forecast_cache_put(key, body, len, etag);
        reply_cached(req, ctype, body, len, etag);
    }
    free(body);
    api_release(req, c);
}

/* ---- GET /stores/{store}/accuracy --------------------------------------------------- */

void api_store_accuracy(http_req *req)
{
    const char *store = http_param(req, "store");
    char weeks_s[8] = "";
    long weeks = 8;
    int wn = http_query(req, "weeks", weeks_s, sizeof weeks_s);
    if (wn == -2 || (wn > 0 && parse_long(weeks_s, 1, 104, &weeks))) {
        http_problem_field(req, "weeks", "must be an integer from 1 to 104");
        return;
    }
    PGconn *c = NULL;
    if (!store_allowed(req, store, &c)) {
        api_release(req, c);
        return;
    }
    if (!c && !(c = api_conn(req)))
        return;
    char w[8];
    snprintf(w, sizeof w, "%ld", weeks);
    /* The weeks up to the last day with both a forecast and an actual: the
     * forecasts as served (latest ready run of the serving project covering
     * the day) against what was sold. */
    PGresult *r = db_exec(
        c,
        "WITH served AS (SELECT DISTINCT ON (fc.product, fc.day) fc.product, fc.day, fc.forecast,"
        " fc.lo80, fc.hi80, fc.lo95, fc.hi95, a.quantity FROM forecasts fc JOIN forecast_runs r"
        " ON r.id = fc.run_id AND r.state = 'ready' AND r.project_id = (SELECT serving_project"
        " FROM stores WHERE id = $1) JOIN actuals a ON a.store_id = fc.store_id"
        " AND a.product = fc.product AND a.day = fc.day WHERE fc.store_id = $1 ORDER BY"
        " fc.product, fc.day, r.ready_at DESC), last AS (SELECT max(day) AS d FROM served)"
        " SELECT json_build_object('store', $1::text, 'weeks', $2::int, 'items', coalesce("
        "json_agg(json_build_object('product', product, 'week', week, 'wape', wape, 'bias',"
        " bias, 'coverage80', c80, 'coverage95', c95, 'n', n) ORDER BY week, product),"
        " '[]'))::text FROM (SELECT s.product, date_trunc('week', s.day)::date AS week,"
        " round((sum(abs(s.quantity - s.forecast)) / nullif(sum(s.quantity), 0))::numeric, 4)"
        " AS wape, round((sum(s.forecast - s.quantity) / nullif(sum(s.quantity), 0))::numeric,"
        " 4) AS bias, round(avg((s.quantity BETWEEN s.lo80 AND s.hi80)::int)::numeric, 4) AS"
        " c80, round(avg((s.quantity BETWEEN s.lo95 AND s.hi95)::int)::numeric, 4) AS c95,"
        " count(*) AS n FROM served s, last WHERE s.day > last.d - 7 * $2::int GROUP BY 1, 2)"
        " g",
        2, (const char *[]){store, w}, NULL);
    api_reply_row(req, r, 200);
    PQclear(r);
    api_release(req, c);
}

/* ---- GET /projects/{project}/accuracy ------------------------------------------------ */

void api_project_accuracy(http_req *req)
{
    const char *project = http_param(req, "project");
    char weeks_s[8] = "";
    long weeks = 12;
    int wn = http_query(req, "weeks", weeks_s, sizeof weeks_s);
    if (wn == -2 || (wn > 0 && parse_long(weeks_s, 1, 520, &weeks))) {
        http_problem_field(req, "weeks", "must be an integer from 1 to 520");
        return;
    }
    PGconn *c = api_conn(req);
    if (!c)
        return;
    if (!policy_answer(req, policy_check(c, access_caller(req), ACT_PROJECT_READ, project),
                       "project")) {
        char w[8];
        snprintf(w, sizeof w, "%ld", weeks);
        PGresult *r = db_exec(
            c,
            "SELECT json_build_object('project', $1::text, 'items', coalesce(json_agg("
            "json_build_object('week', week, 'wape', wape, 'bias', bias, 'coverage80',"
            " coverage80, 'coverage95', coverage95, 'n', n, 'computed_at', computed_at) ORDER BY"
            " week), '[]'))::text FROM (SELECT * FROM accuracy_weekly WHERE project_id = $1"
            " ORDER BY week DESC LIMIT $2::int) a",
            2, (const char *[]){project, w}, NULL);
        api_reply_row(req, r, 200);
        PQclear(r);
    }
    api_release(req, c);
}

/* ---- POST /actuals ------------------------------------------------------------------ */

typedef struct {
    char **store, **product, **day, **qty;
    size_t n, cap;
    json_t *errors;
} actual_rows;

static void rows_add(actual_rows *a, const char *s, const char *p, const char *d, const char *q)
{
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 256;
        a->store = xrealloc(a->store, a->cap * sizeof *a->store);
        a->product = xrealloc(a->product, a->cap * sizeof *a->product);
        a->day = xrealloc(a->day, a->cap * sizeof *a->day);
        a->qty = xrealloc(a->qty, a->cap * sizeof *a->qty);
    }
    a->store[a->n] = xstrdup(s);
    a->product[a->n] = xstrdup(p);
    a->day[a->n] = xstrdup(d);
    a->qty[a->n] = xstrdup(q);
    a->n++;
}

static void rows_free(actual_rows *a)
{
    for (size_t i = 0; i < a->n; i++) {
        free(a->store[i]);
        free(a->product[i]);
        free(a->day[i]);
        free(a->qty[i]);
    }
    free(a->store);
    free(a->product);
    free(a->day);
    free(a->qty);
    json_decref(a->errors);
}

static void row_error(actual_rows *a, size_t row, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void row_error(actual_rows *a, size_t row, const char *field, const char *fmt, ...)
{
    if (json_array_size(a->errors) >= MAX_ERRORS)
        return;
    char reason[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    char f[80];
    snprintf(f, sizeof f, "items[%zu].%s", row, field);
    json_array_append_new(a->errors, json_pack("{s:s, s:s}", "field", f, "reason", reason));
}

/* Checks the shape of each row; the database checks stores and products. */
static void check_row(actual_rows *a, size_t i, int32_t today)
{
    int32_t d;
    if (v_check_store_id(a->store[i]))
        row_error(a, i, "store_id", "must be a store id");
    if (!a->product[i][0] || strlen(a->product[i]) > SALES_MAX_TEXT_BYTES ||
        v_check_printable(a->product[i]))
        row_error(a, i, "product", "must be a product name of 1 to 200 bytes");
    if (sales_parse_date(a->day[i], strlen(a->day[i]), &d))
        row_error(a, i, "date", "must be a date YYYY-MM-DD");
    else if (d > today)
        row_error(a, i, "date", "%s is in the future: actuals are what was sold", a->day[i]);
    char *end = NULL;
    double q = strtod(a->qty[i], &end);
    if (!a->qty[i][0] || !end || *end || q != q)
        row_error(a, i, "quantity", "must be a number");
    else if (q < 0)
        row_error(a, i, "quantity", "must not be negative");
    else if (q > 1e9)
        row_error(a, i, "quantity", "is implausibly large");
}

/* Splits one CSV line into at most n fields (quotes honoured), in place. */
static int csv_fields(char *line, char **out, int n)
{
    int k = 0;
    char *p = line;
    while (k < n) {
        char *start = p, *w = p;
        if (*p == '"') {
            start = w = ++p;
            while (*p && !(*p == '"' && p[1] != '"')) {
                if (*p == '"')
                    p++;
                *w++ = *p++;
            }
            if (*p == '"')
                p++;
        } else {
            while (*p && *p != ',')
                *w++ = *p++;
        }
        char sep = *p;
        *w = '\0';
        out[k++] = start;
        if (sep != ',')
            break;
        p++;
    }
    return k;
}

static int parse_csv(http_req *req, const char *data, size_t len, actual_rows *a)
{
    char *text = xmalloc(len + 1);
    memcpy(text, data, len);
    text[len] = '\0';
    int col[4] = {-1, -1, -1, -1};
    static const char *const names[] = {"store_id", "product", "date", "quantity"};
    char *save = text, *line;
    size_t row = 0;
    int header = 1, rc = 0;
    while ((line = save) && *line) {
        char *nl = strchr(line, '\n');
        save = nl ? nl + 1 : line + strlen(line);
        if (nl)
            *nl = '\0';
        size_t ll = strlen(line);
        if (ll && line[ll - 1] == '\r')
            line[ll - 1] = '\0';
        if (!line[0])
            continue;
        char *f[16];
        int nf = csv_fields(line, f, 16);
        if (header) {
            for (int i = 0; i < nf; i++)
                for (int k = 0; k < 4; k++)
                    if (!strcasecmp(f[i], names[k]))
                        col[k] = i;
            for (int k = 0; k < 4; k++)
                if (col[k] < 0) {
                    char reason[160];
                    snprintf(reason, sizeof reason,
                             "the header must name store_id, product, date and quantity; %s is "
                             "missing",
                             names[k]);
                    http_problem_field(req, "body", reason);
                    rc = 1;
                    goto out;
                }
            header = 0;
            continue;
        }
        if (a->n >= MAX_ACTUALS_ROWS) {
            http_problem_field(req, "body", "more than 200000 rows: split the upload");
            rc = 1;
            goto out;
        }
        const char *v[4];
        for (int k = 0; k < 4; k++)
            v[k] = col[k] < nf ? f[col[k]] : "";
        rows_add(a, v[0], v[1], v[2], v[3]);
        row++;
    }
    if (header) {
        http_problem_field(req, "body", "is empty: expected a CSV header and rows");
        rc = 1;
    }
out:
    free(text);
    return rc;
}

static int parse_json(http_req *req, json_t *body, actual_rows *a)
{
    json_t *items = json_is_array(body) ? body : json_object_get(body, "items");
    if (!json_is_array(items)) {
        http_problem_field(req, "items", "must be an array of {store_id, product, date, quantity}");
        return 1;
    }
    if (json_array_size(items) > MAX_ACTUALS_ROWS) {
        http_problem_field(req, "items", "more than 200000 rows: split the upload");
        return 1;
    }
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it)
    {
        const char *s = json_string_value(json_object_get(it, "store_id"));
        const char *p = json_string_value(json_object_get(it, "product"));
        const char *d = json_string_value(json_object_get(it, "date"));
        json_t *q = json_object_get(it, "quantity");
        char qs[64] = "";
        if (json_is_number(q))
            snprintf(qs, sizeof qs, "%.17g", json_number_value(q));
        rows_add(a, s ? s : "", p ? p : "", d ? d : "", qs);
    }
    return 0;
}

/* Postgres array literal of the strings (quoted, escaped). new: free. */
static char *pg_array(char **v, size_t n)
{
    buf_t b;
    buf_init(&b, 0);
    buf_puts(&b, "{");
    for (size_t i = 0; i < n; i++) {
        buf_puts(&b, i ? ",\"" : "\"");
        for (const char *p = v[i]; *p; p++) {
            if (*p == '"' || *p == '\\')
                buf_append(&b, "\\", 1);
            buf_append(&b, p, 1);
        }
        buf_puts(&b, "\"");
    }
    buf_puts(&b, "}");
    char *out = xstrdup(b.data);
    buf_free(&b);
    return out;
}

void api_actuals_post(http_req *req)
{
    caller *who = access_caller(req);
    access_set_subject(req, "actuals");
    /* Whether these roles report actuals at all; which stores, once the rows are read. */
    if (policy_answer(req, policy_check(NULL, who, ACT_ACTUALS_REPORT, NULL), "report actuals"))
        return;
    actual_rows a;
    memset(&a, 0, sizeof a);
    a.errors = json_array();
    const char *ctype = http_header(req, "Content-Type");
    int rc;
    if (ctype && !strncasecmp(ctype, "text/csv", 8)) {
        const char *data;
        size_t len;
        rc = http_body(req, &data, &len) || parse_csv(req, data, len, &a);
    } else {
        json_t *body = NULL;
        rc = http_read_json(req, &body) || parse_json(req, body, &a);
        json_decref(body);
    }
    if (rc) {
        rows_free(&a);
        return;
    }
    if (!a.n) {
        http_problem_field(req, "items", "has no rows");
        rows_free(&a);
        return;
    }
    /* today in the easternmost store zone we serve is at most UTC + 1 day */
    int32_t today = (int32_t)(time(NULL) / 86400) + 1;
    for (size_t i = 0; i < a.n; i++)
        check_row(&a, i, today);
    PGconn *c = NULL;
    if (!json_array_size(a.errors) && !(c = api_conn(req))) {
        rows_free(&a);
        return;
    }
    char *st = NULL, *pr = NULL, *dy = NULL, *qt = NULL;
    if (!json_array_size(a.errors)) {
        st = pg_array(a.store, a.n);
        pr = pg_array(a.product, a.n);
        dy = pg_array(a.day, a.n);
        qt = pg_array(a.qty, a.n);
        /* Duplicates in the upload, unknown stores, unknown products: each row
         * named by its index. Whose stores they are is the policy's, below. */
        PGresult *r = db_exec(
            c,
            "WITH u AS (SELECT i - 1 AS i, s, p, d::date AS d FROM unnest($1::text[], $2::text[],"
            " $3::text[]) WITH ORDINALITY AS t(s, p, d, i)), known AS (SELECT DISTINCT unnest("
            "products) AS p FROM forecast_runs WHERE state = 'ready' UNION SELECT DISTINCT product"
            " FROM actuals) SELECT i, CASE WHEN count(*) OVER (PARTITION BY s, p, d) > 1 AND i >"
            " min(i) OVER (PARTITION BY s, p, d) THEN 'duplicate' WHEN NOT EXISTS (SELECT 1 FROM"
            " stores WHERE id = s) THEN 'store' WHEN NOT EXISTS (SELECT 1 FROM known WHERE"
            " known.p = u.p) THEN 'product' END AS why, min(i) OVER (PARTITION BY s, p, d) AS"
            " first, s, p FROM u ORDER BY i",
            3, (const char *[]){st, pr, dy}, NULL);
        if (!r) {
            http_problem_unavailable(req);
            goto out;
        }
        for (int i = 0; i < PQntuples(r); i++) {
            if (PQgetisnull(r, i, 1))
                continue;
            size_t row = (size_t)strtoul(PQgetvalue(r, i, 0), NULL, 10);
            const char *why = PQgetvalue(r, i, 1);
            if (!strcmp(why, "duplicate"))
                row_error(&a, row, "date", "repeats row %s (same store, product and date)",
                          PQgetvalue(r, i, 2));
            else if (!strcmp(why, "store"))
                row_error(&a, row, "store_id", "unknown store %s", PQgetvalue(r, i, 3));
            else
                row_error(&a, row, "product",
                          "unknown product %s: not in any forecast or earlier actuals",
                          PQgetvalue(r, i, 4));
        }
        PQclear(r);
    }
    if (json_array_size(a.errors)) {
        http_problem(req, 400, "validation", "Invalid actuals", json_incref(a.errors),
                     "%zu rows, at least %zu refused: nothing was applied", a.n,
                     json_array_size(a.errors));
        goto out;
    }
    /* Every store within the caller's reach (its manager, a contributor of the project that
     * serves it, an admin), or nothing is applied: a denial, not a validation failure. */
    char refused[80], what[160];
    policy_decision d =
        policy_check_stores(c, who, ACT_ACTUALS_REPORT, st, refused, sizeof refused);
    snprintf(what, sizeof what, "report actuals for store %s", refused);
    if (policy_answer(req, d, what))
        goto out;
    /* One upload, one statement: all rows or none; a row equal to what is
     * stored is left alone, so a repeated upload changes nothing. A person's
     * report takes precedence over a dataset-derived row (it becomes 'api' even
     * at the same quantity), which then no dataset version replaces. */
    PGresult *r = db_exec(
        c,
        "WITH u AS (SELECT s, p, d::date AS d, q::float8 AS q FROM unnest($1::text[],"
        " $2::text[], $3::text[], $4::text[]) AS t(s, p, d, q)), w AS (INSERT INTO actuals AS a"
        " (store_id, product, day, quantity, source, reported_by) SELECT s, p, d, q, 'api', $5"
        " FROM u ON CONFLICT (store_id, product, day) DO UPDATE SET quantity ="
        " EXCLUDED.quantity, source = 'api', reported_by = EXCLUDED.reported_by, source_project"
        " = NULL, updated_at = now() WHERE a.quantity IS DISTINCT FROM EXCLUDED.quantity OR"
        " a.source <> 'api' RETURNING (xmax = 0) AS inserted) SELECT count(*) FILTER (WHERE"
        " inserted), count(*) FILTER (WHERE NOT inserted) FROM w",
        5, (const char *[]){st, pr, dy, qt, who->id.oid}, NULL);
    if (!r || PQntuples(r) != 1) {
        PQclear(r);
        http_problem_unavailable(req);
        goto out;
    }
    long ins = strtol(PQgetvalue(r, 0, 0), NULL, 10), upd = strtol(PQgetvalue(r, 0, 1), NULL, 10);
    PQclear(r);
    if (ins || upd) {
        forecast_cache_invalidate();
        accuracy_enqueue(c, NULL, who->id.oid);
    }
    http_reply_json(req, 200,
                    json_pack("{s:I, s:I, s:I, s:I}", "received", (json_int_t)a.n, "inserted",
                              (json_int_t)ins, "updated", (json_int_t)upd, "unchanged",
                              (json_int_t)(a.n - (size_t)ins - (size_t)upd)));
out:
    free(st);
    free(pr);
    free(dy);
    free(qt);
    rows_free(&a);
    api_release(req, c);
}

/* ---- forecast runs ------------------------------------------------------------------ */

#define RUN_JSON                                                                                   \
    "json_build_object('id', f.id, 'project', f.project_id, 'model', f.model, 'model_version',"   \
    " f.model_version, 'dataset', f.dataset, 'dataset_version', f.dataset_version, 'trigger',"    \
    " f.trigger, 'state', f.state, 'current', f.current, 'start_date', f.start_date, 'days',"     \
    " f.days, 'rows', f.rows, 'stores', f.stores, 'products', f.products, 'stats', f.stats,"      \
    " 'error', f.error, 'operation_id', f.operation_id, 'created_by', f.created_by,"              \
    " 'created_at', f.created_at, 'ready_at', f.ready_at, 'pruned_at', f.pruned_at)"

void api_forecast_runs_list(http_req *req)
{
    const char *project = http_param(req, "project");
    long limit;
    char cursor[64] = "";
    if (api_limit(req, &limit))
        return;
    int cn = http_query(req, "cursor", cursor, sizeof cursor);
    if (cn == -2 || (cn > 0 && strspn(cursor, "0123456789") != strlen(cursor))) {
        http_problem_field(req, "cursor", "is not a cursor this API issued");
        return;
    }
    PGconn *c = api_conn(req);
    if (!c)
        return;
    if (!policy_answer(req, policy_check(c, access_caller(req), ACT_PROJECT_WORK_READ, project),
                       "forecast runs")) {
        char lim[24];
        snprintf(lim, sizeof lim, "%ld", limit + 1);
        PGresult *r = db_exec(c,
                              "SELECT (extract(epoch FROM f.created_at) * 1000000)::bigint::text, "
                              RUN_JSON "::text FROM forecast_runs f WHERE f.project_id = $1 AND"
                              " ($2::text = '' OR f.created_at < to_timestamp($2::bigint /"
                              " 1000000.0)) ORDER BY f.created_at DESC LIMIT $3::int",
                              3, (const char *[]){project, cursor, lim}, NULL);
        api_reply_page(req, r, 0, 1, limit);
        PQclear(r);
    }
    api_release(req, c);
}

void api_forecast_runs_create(http_req *req)
{
    const char *project = http_param(req, "project");
    caller *who = access_caller(req);
    char subject[200];
    snprintf(subject, sizeof subject, "projects/%.80s/forecast-runs", project);
    access_set_subject(req, subject);
    json_t *body = NULL;
    PGconn *c = api_conn(req);
    if (!c)
        return;
    /* Project work, as compute: store managers start no forecast runs, even as contributors. */
    if (policy_answer(req, policy_check(c, who, ACT_COMPUTE_WRITE, project), "forecast runs") ||
        http_read_json(req, &body))
        goto out;
    validator v;
    v_init(&v);
    static const char *const allowed[] = {"model", NULL};
    v_only(&v, body, allowed);
    const char *model = v_string(&v, body, "model", 0, 64, v_check_slug);
    if (v_finish(&v, req))
        goto out;
    PQclear(db_exec(c, "BEGIN", 0, NULL, NULL));
    char run[40], op[37];
    int rc = forecast_ops_enqueue(c, project, model, "manual", who->id.oid, run, op);
    if (rc) {
        PQclear(db_exec(c, "ROLLBACK", 0, NULL, NULL));
        if (rc == RST_ENOTFOUND)
            http_problem(req, 409, "no-production-model", "No production model", NULL,
                         "project %s has no model in production%s%s (or its dataset has no ready"
                         " version)",
                         project, model ? " named " : "", model ? model : "");
        else
            http_problem_unavailable(req);
        goto out;
    }
    PGresult *r = db_exec(c, "COMMIT", 0, NULL, NULL);
    PQclear(r);
    r = db_exec(c, "SELECT " RUN_JSON "::text FROM forecast_runs f WHERE f.id = $1::uuid", 1,
                (const char *[]){run}, NULL);
    if (r && PQntuples(r) == 1) {
        char loc[80];
        snprintf(loc, sizeof loc, "/api/v1/operations/%s", op);
        http_add_header(req, "Location", loc);
        http_reply_bytes(req, 202, "application/json", PQgetvalue(r, 0, 0),
                         (size_t)PQgetlength(r, 0, 0));
    } else {
        http_problem_unavailable(req);
    }
    PQclear(r);
out:
    json_decref(body);
    api_release(req, c);
}

/* ---- planned promotions ------------------------------------------------------------- */

#define PROMO_JSON                                                                                 \
    "json_build_object('id', id, 'project', project_id, 'store_id', store_id, 'product',"         \
    " product, 'start_date', start_date, 'end_date', end_date, 'description', description,"       \
    " 'created_by', created_by, 'created_at', created_at)"

void api_planned_promotions_list(http_req *req)
{
    const char *project = http_param(req, "project");
    PGconn *c = api_conn(req);
    if (!c)
        return;
    if (!policy_answer(req, policy_check(c, access_caller(req), ACT_PROJECT_READ, project),
                       "project")) {
        PGresult *r = db_exec(c,
                              "SELECT json_build_object('items', coalesce(json_agg(" PROMO_JSON
                              " ORDER BY start_date, id), '[]'))::text FROM planned_promotions"
                              " WHERE project_id = $1",
                              1, (const char *[]){project}, NULL);
        api_reply_row(req, r, 200);
        PQclear(r);
    }
    api_release(req, c);
}

static const char *check_store_or_all(const char *s)
{
    return !strcmp(s, "*") ? NULL : v_check_store_id(s);
}

void api_planned_promotions_create(http_req *req)
{
    const char *project = http_param(req, "project");
    caller *who = access_caller(req);
    char subject[200];
    snprintf(subject, sizeof subject, "projects/%.80s/planned-promotions", project);
    access_set_subject(req, subject);
    json_t *body = NULL;
    PGconn *c = api_conn(req);
    if (!c)
        return;
    if (policy_answer(req, policy_check(c, who, ACT_PROJECT_WRITE, project), "project") ||
        http_read_json(req, &body))
        goto out;
    validator v;
    v_init(&v);
    static const char *const allowed[] = {"store_id", "product", "start_date", "end_date",
                                          "description", NULL};
    v_only(&v, body, allowed);
    const char *store = v_string(&v, body, "store_id", 1, 64, check_store_or_all);
    const char *product = v_string(&v, body, "product", 1, 200, v_check_printable);
    const char *start = v_string(&v, body, "start_date", 1, 10, NULL);
    const char *end = v_string(&v, body, "end_date", 1, 10, NULL);
    const char *desc = v_string(&v, body, "description", 0, 500, v_check_printable);
    int32_t ds = 0, de = 0;
    if (start && sales_parse_date(start, strlen(start), &ds))
        v_error(&v, "start_date", "must be a date YYYY-MM-DD");
    if (end && sales_parse_date(end, strlen(end), &de))
        v_error(&v, "end_date", "must be a date YYYY-MM-DD");
    else if (start && end && de < ds)
        v_error(&v, "end_date", "must not be before start_date");
    else if (start && end && de - ds > 366)
        v_error(&v, "end_date", "a promotion lasts at most a year");
    if (v_finish(&v, req))
        goto out;
    if (strcmp(store, "*")) {
        PGresult *s = db_exec(c, "SELECT 1 FROM stores WHERE id = $1", 1,
                              (const char *[]){store}, NULL);
        int known = s && PQntuples(s) == 1;
        PQclear(s);
        if (!known) {
            http_problem_field(req, "store_id", "unknown store (or * for every store)");
            goto out;
        }
    }
    PGresult *r = db_exec(c,
                          "INSERT INTO planned_promotions(project_id, store_id, product, start_date,"
                          " end_date, description, created_by) VALUES ($1, $2, $3, $4::date,"
                          " $5::date, coalesce($6, ''), $7) RETURNING " PROMO_JSON "::text",
                          7, (const char *[]){project, store, product, start, end, desc,
                                              who->id.oid},
                          NULL);
    api_reply_row(req, r, 201);
    PQclear(r);
out:
    json_decref(body);
    api_release(req, c);
}

void api_planned_promotions_delete(http_req *req)
{
    const char *project = http_param(req, "project");
    const char *id = http_param(req, "id");
    char subject[200];
    snprintf(subject, sizeof subject, "projects/%.80s/planned-promotions/%.40s", project, id);
    access_set_subject(req, subject);
    PGconn *c = api_conn(req);
    if (!c)
        return;
    if (!policy_answer(req, policy_check(c, access_caller(req), ACT_PROJECT_WRITE, project),
                       "project")) {
        PGresult *r = db_exec(c,
                              "DELETE FROM planned_promotions WHERE project_id = $1 AND id::text ="
                              " $2",
                              2, (const char *[]){project, id}, NULL);
        if (!r)
            http_problem_unavailable(req);
        else if (PQcmdTuples(r)[0] == '0')
            http_problem(req, 404, "not-found", "Not found", NULL, "no resource at this path");
        else
            http_reply_empty(req, 204);
        PQclear(r);
    }
    api_release(req, c);
}

/* ---- weather outlook ---------------------------------------------------------------- */

void api_weather_outlook_get(http_req *req)
{
    const char *project = http_param(req, "project");
    PGconn *c = api_conn(req);
    if (!c)
        return;
    if (!policy_answer(req, policy_check(c, access_caller(req), ACT_PROJECT_READ, project),
                       "project")) {
        PGresult *r = db_exec(c,
                              "SELECT json_build_object('items', coalesce(json_agg(json_build_object("
                              "'city', city, 'date', day, 'weather', weather) ORDER BY city, day),"
                              " '[]'))::text FROM weather_outlook WHERE project_id = $1",
                              1, (const char *[]){project}, NULL);
        api_reply_row(req, r, 200);
        PQclear(r);
    }
    api_release(req, c);
}

/* PUT replaces the outlook with the given items (one city, day each). */
void api_weather_outlook_put(http_req *req)
{
    const char *project = http_param(req, "project");
    char subject[200];
    snprintf(subject, sizeof subject, "projects/%.80s/weather-outlook", project);
    access_set_subject(req, subject);
    json_t *body = NULL;
    PGconn *c = api_conn(req);
    if (!c)
        return;
    if (policy_answer(req, policy_check(c, access_caller(req), ACT_PROJECT_WRITE, project),
                      "project") ||
        http_read_json(req, &body))
        goto out;
    json_t *items = json_object_get(body, "items");
    if (!json_is_array(items) || json_array_size(items) > 100000) {
        http_problem_field(req, "items", "must be an array of {city, date, weather} (at most 100000)");
        goto out;
    }
    static const char *const weathers[] = {"Sunny", "Rainy", "Snowy", "Cloudy", "Hot", "Cold",
                                           NULL};
    json_t *errors = json_array();
    buf_t cities, days, ws;
    buf_init(&cities, 0);
    buf_init(&days, 0);
    buf_init(&ws, 0);
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it)
    {
        const char *city = json_string_value(json_object_get(it, "city"));
        const char *day = json_string_value(json_object_get(it, "date"));
        const char *w = json_string_value(json_object_get(it, "weather"));
        char f[48];
        int ok = 1;
        if (!city || !city[0] || strlen(city) > 100 || v_check_printable(city) ||
            strpbrk(city, "\",{}\\")) {
            snprintf(f, sizeof f, "items[%zu].city", i);
            json_array_append_new(errors, json_pack("{s:s, s:s}", "field", f, "reason",
                                                    "must be a city name"));
            ok = 0;
        }
        if (!day || !valid_date(day)) {
            snprintf(f, sizeof f, "items[%zu].date", i);
            json_array_append_new(errors, json_pack("{s:s, s:s}", "field", f, "reason",
                                                    "must be a date YYYY-MM-DD"));
            ok = 0;
        }
        int known = 0;
        for (int k = 0; w && weathers[k]; k++)
            known |= !strcmp(w, weathers[k]);
        if (!known) {
            snprintf(f, sizeof f, "items[%zu].weather", i);
            json_array_append_new(errors,
                                  json_pack("{s:s, s:s}", "field", f, "reason",
                                            "must be Sunny, Rainy, Snowy, Cloudy, Hot or Cold"));
            ok = 0;
        }
        if (ok) {
            buf_printf(&cities, "%s\"%s\"", cities.len ? "," : "{", city);
            buf_printf(&days, "%s%s", days.len ? "," : "{", day);
            buf_printf(&ws, "%s%s", ws.len ? "," : "{", w);
        }
        if (json_array_size(errors) >= MAX_ERRORS)
            break;
    }
    if (json_array_size(errors)) {
        http_problem(req, 400, "validation", "Invalid weather outlook", errors,
                     "nothing was changed");
    } else {
        json_decref(errors);
        buf_puts(&cities, cities.len ? "}" : "{}");
        buf_puts(&days, days.len ? "}" : "{}");
        buf_puts(&ws, ws.len ? "}" : "{}");
        PGresult *r = db_exec(c, "BEGIN", 0, NULL, NULL);
        PQclear(r);
        r = db_exec(c, "DELETE FROM weather_outlook WHERE project_id = $1", 1,
                    (const char *[]){project}, NULL);
        PQclear(r);
        r = !r ? NULL
               : db_exec(c,
                         "INSERT INTO weather_outlook(project_id, city, day, weather) SELECT $1,"
                         " c, d::date, w FROM unnest($2::text[], $3::text[], $4::text[]) AS"
                         " t(c, d, w) ON CONFLICT (project_id, city, day) DO UPDATE SET weather"
                         " = EXCLUDED.weather, updated_at = now()",
                         4, (const char *[]){project, cities.data, days.data, ws.data}, NULL);
        if (r) {
            PQclear(r);
            r = db_exec(c, "COMMIT", 0, NULL, NULL);
        }
        if (r) {
            PQclear(r);
            http_reply_json(req, 200,
                            json_pack("{s:I}", "items", (json_int_t)json_array_size(items)));
        } else {
            PQclear(PQexec(c, "ROLLBACK"));
            http_problem_unavailable(req);
        }
    }
    buf_free(&cities);
    buf_free(&days);
    buf_free(&ws);
out:
    json_decref(body);
    api_release(req, c);
}
