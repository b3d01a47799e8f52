/* Cron expressions and time zones for the retraining scheduler. The zone
 * data comes from TZif files (RFC 8536): transitions as 64-bit UTC instants,
 * then the POSIX TZ rule for everything after the last one. */
#include "lib/cron.h"
#include "lib/util.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- parsing ------------------------------------------------------------------ */

typedef struct {
    const char *name;
    int min, max;
    const char *const *names; /* index = value - names_base */
    int names_base;
} field_def;

static const char *const month_names[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL",
                                          "AUG", "SEP", "OCT", "NOV", "DEC", NULL};
static const char *const day_names[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", NULL};

static const field_def fields[5] = {
    {"minute", 0, 59, NULL, 0},          {"hour", 0, 23, NULL, 0},
    {"day-of-month", 1, 31, NULL, 0},    {"month", 1, 12, month_names, 1},
    {"day-of-week", 0, 7, day_names, 0},
};

typedef struct {
    const char *text; /* the whole expression, for positions */
    char *err;
    size_t errlen;
} parse_ctx;

static int fail(parse_ctx *p, const field_def *f, const char *at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(parse_ctx *p, const field_def *f, const char *at, const char *fmt, ...)
{
    char reason[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    if (f)
        snprintf(p->err, p->errlen, "%s field at position %d: %s", f->name, (int)(at - p->text) + 1,
                 reason);
    else
        snprintf(p->err, p->errlen, "%s", reason);
    return RST_EINVAL;
}

/* Reads one value (number or name) from [s, end); *used gets its length. */
static int read_value(parse_ctx *p, const field_def *f, const char *s, const char *end, int *out,
                      size_t *used, int *was_name)
{
    size_t n = 0;
    *was_name = 0;
    if (s < end && isdigit((unsigned char)*s)) {
        long v = 0;
        while (s + n < end && isdigit((unsigned char)s[n]) && n < 9)
            v = v * 10 + (s[n++] - '0');
        if (s + n < end && isdigit((unsigned char)s[n]))
            return fail(p, f, s, "%.*s is out of range %d-%d", (int)(end - s), s, f->min, f->max);
        *out = (int)v;
        *used = n;
        return RST_OK;
    }
    while (s + n < end && isalpha((unsigned char)s[n]))
        n++;
    if (n == 0) {
        if (s == end)
            return fail(p, f, s, "a value is missing");
        return fail(p, f, s, "'%c' is not a number%s", *s, f->names ? " or a name" : "");
    }
    if (f->names && n == 3) {
        for (int i = 0; f->names[i]; i++)
            if (!strncasecmp(s, f->names[i], 3)) {
                *out = i + f->names_base;
                *used = 3;
                *was_name = 1;
                return RST_OK;
            }
    }
    if (f->names)
        return fail(p, f, s, "'%.*s' is not a %s name (%s)", (int)n, s,
                    f->names == month_names ? "month" : "day",
                    f->names == month_names ? "JAN-DEC" : "SUN-SAT");
    return fail(p, f, s, "'%.*s' is not a number", (int)n, s);
}

static int check_range(parse_ctx *p, const field_def *f, const char *at, int v)
{
    if (v < f->min || v > f->max)
        return fail(p, f, at, "%d is out of range %d-%d", v, f->min, f->max);
    return RST_OK;
}

/* One comma-separated item of a field: * | v | v-w, each optionally /step. */
static int parse_item(parse_ctx *p, const field_def *f, const char *s, const char *end,
                      uint64_t *bits, int *starred)
{
    if (s == end)
        return fail(p, f, s, "an empty list item");
    int lo, hi, step = 1, name = 0;
    const char *slash = memchr(s, '/', (size_t)(end - s));
    const char *base_end = slash ? slash : end;
    size_t used = 0;
    if (*s == '*') {
        if (s + 1 != base_end)
            return fail(p, f, s + 1, "unexpected '%c' after '*'", s[1]);
        lo = f->min;
        hi = f->max == 7 ? 6 : f->max;
        *starred = 1;
    } else {
        if (read_value(p, f, s, base_end, &lo, &used, &name) || check_range(p, f, s, lo))
            return RST_EINVAL;
        const char *q = s + used;
        hi = slash ? f->max : lo; /* 5/15 means 5-max/15 */
        if (slash && f->max == 7)
            hi = 6;
        if (q < base_end && *q == '-') {
            int hname = 0;
            if (read_value(p, f, q + 1, base_end, &hi, &used, &hname))
                return RST_EINVAL;
            if (f->max == 7 && hname && hi == 0 && lo > 0)
                hi = 7; /* FRI-SUN */
            if (check_range(p, f, q + 1, hi))
                return RST_EINVAL;
            if (hi < lo)
                return fail(p, f, s, "the range %d-%d runs backwards", lo, hi);
            q += 1 + used;
        }
        if (q != base_end)
            return fail(p, f, q, "unexpected '%c'", *q);
    }
    if (slash) {
        const char *st = slash + 1;
        int sname = 0;
        if (st == end)
            return fail(p, f, slash, "a step is missing after '/'");
        if (!isdigit((unsigned char)*st))
            return fail(p, f, st, "the step '%.*s' is not a number", (int)(end - st), st);
        if (read_value(p, f, st, end, &step, &used, &sname))
            return RST_EINVAL;
        if (st + used != end)
            return fail(p, f, st + used, "unexpected '%c'", st[used]);
        int span = f->max - f->min + 1;
        if (step < 1 || step > span)
            return fail(p, f, st, "the step %d must be from 1 to %d", step, span);
    }
    for (int v = lo; v <= hi; v += step)
        *bits |= (uint64_t)1 << (f->max == 7 && v == 7 ? 0 : v);
    return RST_OK;
}

static int parse_field(parse_ctx *p, int idx, const char *s, const char *end, uint64_t *bits,
                       int *starred)
{
    const field_def *f = &fields[idx];
    *bits = 0;
    *starred = 0;
    int first_star = *s == '*';
    for (const char *item = s;;) {
        const char *comma = memchr(item, ',', (size_t)(end - item));
        const char *iend = comma ? comma : end;
        int st = 0;
        if (parse_item(p, f, item, iend, bits, &st))
            return RST_EINVAL;
        if (!comma)
            break;
        item = comma + 1;
    }
    *starred = first_star;
    return RST_OK;
}

static const int month_days[13] = {0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

int cron_parse(const char *text, cron_expr *out, char *err, size_t errlen)
{
    parse_ctx p = {text, err, errlen};
    memset(out, 0, sizeof *out);
    if (!text)
        return fail(&p, NULL, NULL, "is missing");
    size_t len = strlen(text);
    if (len > CRON_MAX_TEXT)
        return fail(&p, NULL, NULL, "is longer than %d characters", CRON_MAX_TEXT);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)text[i] < 0x20 && text[i] != '\t')
            return fail(&p, NULL, NULL, "contains a control character at position %zu", i + 1);
    const char *s = text;
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s == '@') {
        static const struct {
            const char *name, *expr;
        } macros[] = {{"@yearly", "0 0 1 1 *"},  {"@annually", "0 0 1 1 *"},
                      {"@monthly", "0 0 1 * *"}, {"@weekly", "0 0 * * 0"},
                      {"@daily", "0 0 * * *"},   {"@midnight", "0 0 * * *"},
                      {"@hourly", "0 * * * *"}};
        size_t n = strcspn(s, " \t");
        const char *rest = s + n;
        while (*rest == ' ' || *rest == '\t')
            rest++;
        for (size_t i = 0; i < sizeof macros / sizeof macros[0]; i++)
            if (strlen(macros[i].name) == n && !strncasecmp(s, macros[i].name, n)) {
                if (*rest)
                    return fail(&p, NULL, NULL, "position %d: nothing may follow %s",
                                (int)(rest - text) + 1, macros[i].name);
                return cron_parse(macros[i].expr, out, err, errlen);
            }
        return fail(&p, NULL, NULL,
                    "position %d: unknown macro '%.*s': expected @yearly, @annually, @monthly,"
                    " @weekly, @daily, @midnight or @hourly",
                    (int)(s - text) + 1, (int)(n > 20 ? 20 : n), s);
    }
    const char *start[6], *end[6];
    int n = 0;
    while (*s) {
        if (n == 5) {
            int extra = n;
            while (*s) {
                while (*s && *s != ' ' && *s != '\t')
                    s++;
                while (*s == ' ' || *s == '\t')
                    s++;
                extra++;
            }
            return fail(&p, NULL, NULL,
                        "expected 5 fields (minute hour day-of-month month day-of-week),"
                        " found %d",
                        extra);
        }
        start[n] = s;
        while (*s && *s != ' ' && *s != '\t')
            s++;
        end[n++] = s;
        while (*s == ' ' || *s == '\t')
            s++;
    }
    if (n == 0)
        return fail(&p, NULL, NULL,
                    "is empty: expected 5 fields (minute hour day-of-month"
                    " month day-of-week) or a macro such as @daily");
    if (n < 5)
        return fail(&p, NULL, NULL,
                    "expected 5 fields (minute hour day-of-month month day-of-week), found %d", n);
    uint64_t bits[5];
    int star[5];
    for (int i = 0; i < 5; i++)
        if (parse_field(&p, i, start[i], end[i], &bits[i], &star[i]))
            return RST_EINVAL;
    out->minutes = bits[0];
    out->hours = (uint32_t)bits[1];
    out->mdays = (uint32_t)bits[2];
    out->months = (uint16_t)bits[3];
    out->wdays = (uint8_t)bits[4];
    out->mday_star = star[2];
    out->wday_star = star[4];
    /* 30 February: a day-of-month no chosen month has, with no weekday to fall back on. */
    if (!out->mday_star && out->wday_star) {
        int possible = 0;
        for (int m = 1; m <= 12 && !possible; m++)
            for (int d = 1; (out->months >> m & 1) && d <= month_days[m]; d++)
                if (out->mdays >> d & 1) {
                    possible = 1;
                    break;
                }
        if (!possible)
            return fail(&p, &fields[2], start[2],
                        "no chosen month has such a day: the expression never fires");
    }
    return RST_OK;
}

/* ---- time zones --------------------------------------------------------------- */

/* A POSIX TZ rule date: Mm.w.d, Jn (1-365, no Feb 29) or n (0-365). */
typedef struct {
    char kind; /* 'M', 'J', 'D' */
    int m, w, d, n;
    int32_t secs; /* local time of day of the change, may be negative or > 24h */
} tz_rule_date;

typedef struct {
    int32_t std_off, dst_off; /* seconds east of UTC */
    int has_dst;
    tz_rule_date start, end;
} tz_rule;

struct cron_tz {
    size_t n;        /* transitions */
    int64_t *at;     /* UTC instants, ascending */
    int32_t *off_at; /* offset from at[i] on */
    int32_t first_off;
    int has_rule;
    tz_rule rule;
};

static const char *rule_name(const char *s)
{
    if (*s == '<') {
        const char *e = strchr(s, '>');
        return e ? e + 1 : NULL;
    }
    const char *b = s;
    while (isalpha((unsigned char)*s))
        s++;
    return s - b >= 3 ? s : NULL;
}

/* [+-]hh[:mm[:ss]] into seconds. */
static const char *rule_hms(const char *s, int32_t *out)
{
    int sign = 1;
    if (*s == '+' || *s == '-')
        sign = *s++ == '-' ? -1 : 1;
    if (!isdigit((unsigned char)*s))
        return NULL;
    long h = strtol(s, (char **)&s, 10), m = 0, sec = 0;
    if (*s == ':') {
        m = strtol(s + 1, (char **)&s, 10);
        if (*s == ':')
            sec = strtol(s + 1, (char **)&s, 10);
    }
    if (h > 167 || m > 59 || sec > 59)
        return NULL;
    *out = (int32_t)(sign * (h * 3600 + m * 60 + sec));
    return s;
}

static const char *rule_date(const char *s, tz_rule_date *d)
{
    memset(d, 0, sizeof *d);
    d->secs = 7200;
    if (*s == 'M') {
        d->kind = 'M';
        d->m = (int)strtol(s + 1, (char **)&s, 10);
        if (*s++ != '.')
            return NULL;
        d->w = (int)strtol(s, (char **)&s, 10);
        if (*s++ != '.')
            return NULL;
        d->d = (int)strtol(s, (char **)&s, 10);
        if (d->m < 1 || d->m > 12 || d->w < 1 || d->w > 5 || d->d < 0 || d->d > 6)
            return NULL;
    } else if (*s == 'J' || isdigit((unsigned char)*s)) {
        d->kind = *s == 'J' ? 'J' : 'D';
        if (*s == 'J')
            s++;
        d->n = (int)strtol(s, (char **)&s, 10);
        if (d->n < 0 || d->n > 365)
            return NULL;
    } else {
        return NULL;
    }
    if (*s == '/' && !(s = rule_hms(s + 1, &d->secs)))
        return NULL;
    return s;
}

/* Parses a TZif footer such as EST5EDT,M3.2.0,M11.1.0. RST_OK or RST_EINVAL. */
static int rule_parse(const char *s, tz_rule *r)
{
    memset(r, 0, sizeof *r);
    int32_t v;
    if (!(s = rule_name(s)) || !(s = rule_hms(s, &v)))
        return RST_EINVAL;
    r->std_off = -v;
    if (!*s)
        return RST_OK;
    if (!(s = rule_name(s)))
        return RST_EINVAL;
    r->has_dst = 1;
    r->dst_off = r->std_off + 3600;
    if (*s && *s != ',') {
        if (!(s = rule_hms(s, &v)))
            return RST_EINVAL;
        r->dst_off = -v;
    }
    if (*s != ',' || !(s = rule_date(s + 1, &r->start)) || *s != ',' ||
        !(s = rule_date(s + 1, &r->end)) || *s)
        return RST_EINVAL;
    return RST_OK;
}

static int is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* The local midnight-based seconds since the epoch at which d happens in year y. */
static int64_t rule_local(const tz_rule_date *d, int y)
{
    int32_t day;
    if (d->kind == 'M') {
        int32_t first = util_days_from_civil(y, d->m, 1);
        int wd = (int)(((first + 4) % 7 + 7) % 7); /* 1970-01-01 was a Thursday */
        int mday = 1 + (d->d - wd + 7) % 7 + (d->w - 1) * 7;
        int dim = d->m == 2 && is_leap(y) ? 29 : (d->m == 2 ? 28 : month_days[d->m]);
        while (mday > dim)
            mday -= 7;
        day = first + mday - 1;
    } else if (d->kind == 'J') {
        day = util_days_from_civil(y, 1, 1) + d->n - 1;
        if (is_leap(y) && d->n >= 60)
            day++;
    } else {
        day = util_days_from_civil(y, 1, 1) + d->n;
    }
    return (int64_t)day * 86400 + d->secs;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && ((a < 0) != (b < 0)));
}

static int32_t rule_offset(const tz_rule *r, int64_t t)
{
    if (!r->has_dst)
        return r->std_off;
    int y, m, d;
    util_civil_from_days((int32_t)floor_div(t + r->std_off, 86400), &y, &m, &d);
    int64_t start = rule_local(&r->start, y) - r->std_off; /* given in standard time */
    int64_t end = rule_local(&r->end, y) - r->dst_off;     /* given in daylight time */
    int dst = start < end ? t >= start && t < end : !(t >= end && t < start);
    return dst ? r->dst_off : r->std_off;
}

int32_t cron_tz_offset(const cron_tz *tz, int64_t t)
{
    if (!tz)
        return 0;
    if (tz->n == 0 || t < tz->at[0])
        return tz->n == 0 && tz->has_rule ? rule_offset(&tz->rule, t) : tz->first_off;
    if (t >= tz->at[tz->n - 1] && tz->has_rule)
        return rule_offset(&tz->rule, t);
    size_t lo = 0, hi = tz->n; /* last transition <= t */
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (tz->at[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    return tz->off_at[lo];
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Parses a TZif file (version 2 or later: the 64-bit block and the footer). */
static int tzif_parse(const unsigned char *b, size_t len, cron_tz *tz)
{
    if (len < 44 || memcmp(b, "TZif", 4) || b[4] < '2')
        return RST_EINVAL;
    /* Skip the version 1 block: its counts are in its own header. */
    uint32_t c[6];
    for (int i = 0; i < 6; i++)
        c[i] = be32(b + 20 + 4 * i); /* isutcnt isstdcnt leapcnt timecnt typecnt charcnt */
    size_t skip = 44 + (size_t)c[3] * 5 + (size_t)c[4] * 6 + c[5] + (size_t)c[2] * 8 + c[1] + c[0];
    if (skip + 44 > len || memcmp(b + skip, "TZif", 4))
        return RST_EINVAL;
    const unsigned char *h = b + skip;
    for (int i = 0; i < 6; i++)
        c[i] = be32(h + 20 + 4 * i);
    uint32_t timecnt = c[3], typecnt = c[4], charcnt = c[5], leapcnt = c[2];
    if (typecnt == 0 || typecnt > 256 || timecnt > 100000)
        return RST_EINVAL;
    size_t body =
        (size_t)timecnt * 9 + (size_t)typecnt * 6 + charcnt + (size_t)leapcnt * 12 + c[1] + c[0];
    const unsigned char *p = h + 44;
    if ((size_t)(p - b) + body > len)
        return RST_EINVAL;
    const unsigned char *idx = p + (size_t)timecnt * 8, *types = idx + timecnt;
    tz->n = timecnt;
    tz->at = xcalloc(timecnt ? timecnt : 1, sizeof *tz->at);
    tz->off_at = xcalloc(timecnt ? timecnt : 1, sizeof *tz->off_at);
    for (uint32_t i = 0; i < timecnt; i++) {
        uint64_t v = (uint64_t)be32(p + 8 * i) << 32 | be32(p + 8 * i + 4);
        tz->at[i] = (int64_t)v;
        if (idx[i] >= typecnt)
            return RST_EINVAL;
        tz->off_at[i] = (int32_t)be32(types + 6 * idx[i]);
    }
    /* Before the first transition: the first standard-time type (RFC 8536 3.2). */
    tz->first_off = (int32_t)be32(types);
    for (uint32_t i = 0; i < typecnt; i++)
        if (!types[6 * i + 4]) {
            tz->first_off = (int32_t)be32(types + 6 * i);
            break;
        }
    const unsigned char *foot = p + body;
    if ((size_t)(foot - b) < len && *foot == '\n') {
        const unsigned char *fe = memchr(foot + 1, '\n', len - (size_t)(foot + 1 - b));
        if (fe && fe > foot + 1 && fe - foot < 128) {
            char rule[128];
            memcpy(rule, foot + 1, (size_t)(fe - foot - 1));
            rule[fe - foot - 1] = '\0';
            tz->has_rule = rule_parse(rule, &tz->rule) == RST_OK;
        }
    }
    return RST_OK;
}

int cron_tz_load(const char *name, cron_tz **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!name || !*name || !strcmp(name, "UTC") || !strcmp(name, "Etc/UTC")) {
        *out = xcalloc(1, sizeof **out);
        return RST_OK;
    }
    size_t n = strlen(name);
    int ok = n < 64 && name[0] != '/' && !strstr(name, "..");
    for (size_t i = 0; ok && i < n; i++)
        ok = isalnum((unsigned char)name[i]) || strchr("/_-+", name[i]);
    if (!ok) {
        snprintf(err, errlen, "must be an IANA time zone such as America/New_York");
        return RST_EINVAL;
    }
    char path[128];
    snprintf(path, sizeof path, "/usr/share/zoneinfo/%s", name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen,
                 "unknown time zone %s (expected an IANA name such as"
                 " America/New_York)",
                 name);
        return RST_ENOTFOUND;
    }
    unsigned char *b = xmalloc(1 << 17);
    size_t len = fread(b, 1, 1 << 17, f);
    fclose(f);
    cron_tz *tz = xcalloc(1, sizeof *tz);
    int rc = tzif_parse(b, len, tz);
    free(b);
    if (rc) {
        cron_tz_free(tz);
        snprintf(err, errlen, "unknown time zone %s (not a time zone file)", name);
        return RST_ENOTFOUND;
    }
    *out = tz;
    return RST_OK;
}

void cron_tz_free(cron_tz *tz)
{
    if (!tz)
        return;
    free(tz->at);
    free(tz->off_at);
    free(tz);
}

/* ---- next fire time ------------------------------------------------------------- */

/* The UTC instant of wall-clock time local (seconds since the epoch as if it
 * were UTC): the first occurrence when it repeats, the moment of the jump
 * when it was skipped. */
static int64_t local_to_utc(const cron_tz *tz, int64_t local)
{
    int32_t oa = cron_tz_offset(tz, local - 86400), ob = cron_tz_offset(tz, local + 86400);
    int64_t ua = local - oa, ub = local - ob;
    int va = cron_tz_offset(tz, ua) == oa, vb = cron_tz_offset(tz, ub) == ob;
    if (va && vb)
        return ua < ub ? ua : ub;
    if (va)
        return ua;
    if (vb)
        return ub;
    /* Skipped: find the jump between the two readings. */
    int64_t lo = ua < ub ? ua : ub, hi = ua < ub ? ub : ua;
    int32_t before = cron_tz_offset(tz, lo);
    while (hi - lo > 1) {
        int64_t mid = lo + (hi - lo) / 2;
        if (cron_tz_offset(tz, mid) == before)
            lo = mid;
        else
            hi = mid;
    }
    return hi;
}

int cron_next(const cron_expr *e, const cron_tz *tz, int64_t after, int64_t *next)
{
    int64_t start = floor_div(after, 60) * 60 + 60;
    int64_t local = start + cron_tz_offset(tz, start);
    int64_t day0 = floor_div(local, 86400);
    for (int64_t day = day0 - 1; day < day0 + 366 * 10; day++) {
        int y, m, d;
        util_civil_from_days((int32_t)day, &y, &m, &d);
        if (!(e->months >> m & 1))
            continue;
        int wd = (int)(((day + 4) % 7 + 7) % 7);
        int dm = (int)(e->mdays >> d & 1), dw = (int)(e->wdays >> wd & 1);
        if (!(e->mday_star || e->wday_star ? dm && dw : dm || dw))
            continue;
        for (int h = 0; h < 24; h++) {
            if (!(e->hours >> h & 1))
                continue;
            for (int mi = 0; mi < 60; mi++) {
                if (!(e->minutes >> mi & 1))
                    continue;
                int64_t u = local_to_utc(tz, day * 86400 + h * 3600 + mi * 60);
                if (u >= start) {
                    *next = u;
                    return RST_OK;
                }
            }
        }
    }
    return RST_ENOTFOUND;
}
