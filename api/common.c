/* Small pieces every resource handler uses: pooled connections, ETags,
 * page limits. */
#include "api.h"
#include "http/app.h"
#include "lib/util.h"

#include <stdio.h>
#include <string.h>

PGconn *api_conn(http_req *req)
{
    app_ctx *app = http_app(req);
    PGconn *c = NULL;
    if (db_acquire(app->pool, 2000, &c)) {
        http_problem_unavailable(req);
        return NULL;
    }
    return c;
}

void api_release(http_req *req, PGconn *c)
{
    app_ctx *app = http_app(req);
    db_release(app->pool, c);
}

void api_etag(http_req *req, const char *version)
{
    char etag[40];
    snprintf(etag, sizeof etag, "\"v%s\"", version);
    http_add_header(req, "ETag", etag);
}

int api_if_match_fails(http_req *req, const char *version)
{
    const char *im = http_header(req, "If-Match");
    if (!im || !strcmp(im, "*"))
        return 0;
    char etag[40];
    snprintf(etag, sizeof etag, "\"v%s\"", version);
    if (strstr(im, etag))
        return 0;
    http_problem(req, 412, "precondition-failed", "Precondition failed", NULL,
                 "the resource changed since you read it (now %s); read it again", etag);
    return 1;
}

int api_limit(http_req *req, long *limit)
{
    char s[16];
    *limit = 50;
    int n = http_query(req, "limit", s, sizeof s);
    if (n != -1 && (n == -2 || parse_long(s, 1, 200, limit))) {
        http_problem_field(req, "limit", "must be an integer from 1 to 200");
        return 1;
    }
    return 0;
}

void api_reply_page(http_req *req, PGresult *r, int cursor_col, int json_col, long limit)
{
    int n = PQntuples(r), shown = n > limit ? (int)limit : n;
    buf_t out;
    buf_init(&out, 0);
    buf_puts(&out, "{\"items\":[");
    for (int i = 0; i < shown; i++) {
        if (i)
            buf_puts(&out, ",");
        buf_append(&out, PQgetvalue(r, i, json_col), (size_t)PQgetlength(r, i, json_col));
    }
    buf_puts(&out, "],\"next_cursor\":");
    if (n > limit) {
        json_t *cur = json_string(PQgetvalue(r, shown - 1, cursor_col));
        char *text = json_dumps(cur, JSON_ENCODE_ANY);
        buf_puts(&out, text);
        free(text);
        json_decref(cur);
        buf_puts(&out, "}");
    } else {
        buf_puts(&out, "null}");
    }
    http_reply_bytes(req, 200, "application/json", out.data, out.len);
    buf_free(&out);
}

void api_reply_versioned(http_req *req, PGresult *r, int status, const char *location)
{
    if (!r || PQntuples(r) == 0) {
        http_problem_unavailable(req);
        return;
    }
    api_etag(req, PQgetvalue(r, 0, 1));
    if (status == 201)
        http_add_header(req, "Location", location);
    http_reply_bytes(req, status, "application/json", PQgetvalue(r, 0, 0),
                     (size_t)PQgetlength(r, 0, 0));
}

void api_reply_row(http_req *req, PGresult *r, int status)
{
    if (r && PQntuples(r) >= 1)
        http_reply_bytes(req, status, "application/json", PQgetvalue(r, 0, 0),
                         (size_t)PQgetlength(r, 0, 0));
    else
        http_problem_unavailable(req);
}
