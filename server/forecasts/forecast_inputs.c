/* Reading the known future inputs (forecasts/forecast_inputs.h): promotions and a weather
 * outlook through the RFC 4180 parser with a header of named columns. */
#include "forecasts/forecast_inputs.h"

#include "datasets/sales.h"
#include "lib/csv.h"
#include "lib/util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (errlen)
        vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

forecast_inputs *forecast_inputs_new(void)
{
    return xcalloc(1, sizeof(forecast_inputs));
}

void forecast_inputs_free(forecast_inputs *in)
{
    if (!in)
        return;
    for (size_t k = 0; k < in->npromos; k++) {
        free(in->promos[k].store);
        free(in->promos[k].product);
    }
    for (size_t k = 0; k < in->noutlook; k++)
        free(in->outlook[k].city);
    free(in->promos);
    free(in->outlook);
    free(in);
}

#define PARSE_BAD 0x7101

/* A small CSV of named columns: the header must name exactly the columns of
 * want (any order, any case, surrounding spaces ignored). */
typedef struct {
    const char *const *want;
    int nwant;
    int col[4];
    int header_seen;
    int (*row)(void *ctx, const csv_field *f[4], uint64_t line);
    void *ctx;
    char *err;
    size_t errlen;
} small_csv;

static void trim(const char **s, size_t *n)
{
    while (*n && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*n)--;
    }
    while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
        (*n)--;
}

static int small_record(void *arg, const csv_record *r)
{
    small_csv *c = arg;
    if (!c->header_seen) {
        c->header_seen = 1;
        for (int k = 0; k < c->nwant; k++)
            c->col[k] = -1;
        for (size_t i = 0; i < r->count; i++) {
            const char *s = r->fields[i].data;
            size_t n = r->fields[i].len;
            if (i == 0 && n >= 3 && !memcmp(s, "\xef\xbb\xbf", 3)) {
                s += 3;
                n -= 3;
            }
            trim(&s, &n);
            int hit = -1;
            for (int k = 0; k < c->nwant; k++)
                if (strlen(c->want[k]) == n && !strncasecmp(s, c->want[k], n))
                    hit = k;
            if (hit < 0 || c->col[hit] >= 0) {
                set_err(c->err, c->errlen, "line 1: the header must be %s%s%s%s%s%s%s", c->want[0],
                        c->nwant > 1 ? "," : "", c->nwant > 1 ? c->want[1] : "",
                        c->nwant > 2 ? "," : "", c->nwant > 2 ? c->want[2] : "",
                        c->nwant > 3 ? "," : "", c->nwant > 3 ? c->want[3] : "");
                return PARSE_BAD;
            }
            c->col[hit] = (int)i;
        }
        for (int k = 0; k < c->nwant; k++)
            if (c->col[k] < 0) {
                set_err(c->err, c->errlen, "line 1: the header lacks the column %s", c->want[k]);
                return PARSE_BAD;
            }
        return 0;
    }
    const csv_field *f[4] = {NULL};
    for (int k = 0; k < c->nwant; k++) {
        if ((size_t)c->col[k] >= r->count) {
            set_err(c->err, c->errlen, "line %llu: %zu fields, the header has more",
                    (unsigned long long)r->line, r->count);
            return PARSE_BAD;
        }
        f[k] = &r->fields[c->col[k]];
    }
    return c->row(c->ctx, f, r->line);
}

static int small_parse(small_csv *c, const char *data, size_t len)
{
    csv_limits lim = {.max_field_bytes = 1024, .max_fields = 64, .max_record_bytes = 4096};
    csv_parser *p = csv_new(&lim, small_record, c);
    int rc = csv_feed(p, data, len);
    if (rc == RST_OK)
        rc = csv_finish(p);
    if (rc != RST_OK && rc != PARSE_BAD && rc != RST_ETOOBIG) {
        const csv_error *e = csv_get_error(p);
        set_err(c->err, c->errlen, "line %llu: %s", e ? (unsigned long long)e->line : 0ULL,
                e ? e->message : "not valid CSV");
    } else if (rc == RST_ETOOBIG && csv_get_error(p)) {
        const csv_error *e = csv_get_error(p);
        set_err(c->err, c->errlen, "line %llu: %s", (unsigned long long)e->line, e->message);
    }
    if (rc == RST_OK && !c->header_seen) {
        set_err(c->err, c->errlen, "the file is empty: it needs at least the header");
        rc = PARSE_BAD;
    }
    csv_free(p);
    if (rc == RST_OK)
        return RST_OK;
    return rc == RST_ETOOBIG ? RST_ETOOBIG : RST_EINVAL;
}

typedef struct {
    forecast_inputs *in;
    char *err;
    size_t errlen;
} row_ctx;

static int field_text(const csv_field *f, const char **s, size_t *n)
{
    *s = f->data;
    *n = f->len;
    trim(s, n);
    return *n > 0 && *n <= SALES_MAX_TEXT_BYTES && !memchr(*s, '\0', *n);
}

static int field_date(const csv_field *f, int32_t *day)
{
    const char *s;
    size_t n;
    field_text(f, &s, &n);
    return sales_parse_date(s, n, day) == RST_OK;
}

static int promo_row(void *arg, const csv_field *f[4], uint64_t line)
{
    row_ctx *c = arg;
    forecast_inputs *in = c->in;
    const char *store, *product;
    size_t ns, np;
    int32_t a, b;
    if (!field_text(f[0], &store, &ns) || !field_text(f[1], &product, &np)) {
        set_err(c->err, c->errlen,
                "line %llu: store_id and product must be names (or *) of 1 "
                "to %d bytes",
                (unsigned long long)line, SALES_MAX_TEXT_BYTES);
        return PARSE_BAD;
    }
    if (!field_date(f[2], &a) || !field_date(f[3], &b)) {
        set_err(c->err, c->errlen, "line %llu: start_date and end_date must be YYYY-MM-DD",
                (unsigned long long)line);
        return PARSE_BAD;
    }
    if (b < a) {
        set_err(c->err, c->errlen, "line %llu: end_date is before start_date",
                (unsigned long long)line);
        return PARSE_BAD;
    }
    if (in->npromos >= FORECAST_INPUTS_MAX_PROMOTIONS) {
        set_err(c->err, c->errlen, "more than %d promotions", FORECAST_INPUTS_MAX_PROMOTIONS);
        return RST_ETOOBIG;
    }
    if (in->npromos == in->cap_promos) {
        in->cap_promos = in->cap_promos ? in->cap_promos * 2 : 64;
        in->promos = xrealloc(in->promos, in->cap_promos * sizeof *in->promos);
    }
    forecast_inputs_promotion *p = &in->promos[in->npromos++];
    p->store = ns == 1 && *store == '*' ? NULL : xstrndup(store, ns);
    p->product = np == 1 && *product == '*' ? NULL : xstrndup(product, np);
    p->first = a;
    p->last = b;
    return 0;
}

int forecast_inputs_promotions(forecast_inputs *in, const char *data, size_t len, char *err,
                               size_t errlen)
{
    static const char *const want[] = {"store_id", "product", "start_date", "end_date"};
    row_ctx ctx = {in, err, errlen};
    small_csv c = {
        .want = want, .nwant = 4, .row = promo_row, .ctx = &ctx, .err = err, .errlen = errlen};
    return small_parse(&c, data, len);
}

static int cmp_outlook(const void *a, const void *b)
{
    const forecast_inputs_outlook *x = a, *y = b;
    int c = strcmp(x->city, y->city);
    return c ? c : (x->day > y->day) - (x->day < y->day);
}

static int weather_row(void *arg, const csv_field *f[4], uint64_t line)
{
    row_ctx *c = arg;
    forecast_inputs *in = c->in;
    const char *city, *w;
    size_t nc, nw;
    int32_t day;
    if (!field_text(f[0], &city, &nc)) {
        set_err(c->err, c->errlen, "line %llu: city must be a name of 1 to %d bytes",
                (unsigned long long)line, SALES_MAX_TEXT_BYTES);
        return PARSE_BAD;
    }
    if (!field_date(f[1], &day)) {
        set_err(c->err, c->errlen, "line %llu: date must be YYYY-MM-DD", (unsigned long long)line);
        return PARSE_BAD;
    }
    field_text(f[2], &w, &nw);
    int code = -1;
    for (int k = 1; k < SALES_WEATHER__N; k++)
        if (strlen(sales_weather_name(k)) == nw && !strncasecmp(w, sales_weather_name(k), nw))
            code = k;
    if (code < 0) {
        set_err(c->err, c->errlen,
                "line %llu: weather must be Sunny, Rainy, Snowy, Cloudy, Hot or Cold, not '%.*s'",
                (unsigned long long)line, (int)(nw > 40 ? 40 : nw), w);
        return PARSE_BAD;
    }
    if (in->noutlook >= FORECAST_INPUTS_MAX_OUTLOOK) {
        set_err(c->err, c->errlen, "more than %d outlook rows", FORECAST_INPUTS_MAX_OUTLOOK);
        return RST_ETOOBIG;
    }
    if (in->noutlook == in->cap_outlook) {
        in->cap_outlook = in->cap_outlook ? in->cap_outlook * 2 : 64;
        in->outlook = xrealloc(in->outlook, in->cap_outlook * sizeof *in->outlook);
    }
    forecast_inputs_outlook *o = &in->outlook[in->noutlook++];
    o->city = xstrndup(city, nc);
    o->day = day;
    o->weather = (uint8_t)code;
    return 0;
}

int forecast_inputs_weather(forecast_inputs *in, const char *data, size_t len, char *err,
                            size_t errlen)
{
    static const char *const want[] = {"city", "date", "weather"};
    row_ctx ctx = {in, err, errlen};
    small_csv c = {
        .want = want, .nwant = 3, .row = weather_row, .ctx = &ctx, .err = err, .errlen = errlen};
    int rc = small_parse(&c, data, len);
    if (rc != RST_OK)
        return rc;
    if (in->noutlook > 1) /* qsort(NULL, 0) is undefined: an outlook may be empty */
        qsort(in->outlook, in->noutlook, sizeof *in->outlook, cmp_outlook);
    for (size_t k = 1; k < in->noutlook; k++)
        if (!cmp_outlook(&in->outlook[k - 1], &in->outlook[k])) {
            char d[11];
            sales_format_date(in->outlook[k].day, d);
            set_err(err, errlen, "%s on %s is given twice", in->outlook[k].city, d);
            return RST_EINVAL;
        }
    return RST_OK;
}
