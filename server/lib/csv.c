/* Incremental CSV parsing. Unquoted fields are found with a table-driven scan
 * (no call per byte), quoted runs likewise; bytes are copied into one record
 * buffer in spans. UTF-8 is validated on the way; only non-ASCII bytes leave
 * the fast loop. */
#include "lib/csv.h"
#include "lib/util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    S_REC_START,   /* between records: blank lines are skipped here */
    S_FIELD_START, /* at the first byte of a field */
    S_UNQUOTED,
    S_QUOTED,
    S_QUOTE_SEEN, /* a quote inside a quoted field: closing, or the first of "" */
    S_FINISHED,
};

struct csv_parser {
    csv_limits lim;
    csv_record_fn cb;
    void *arg;
    int state;
    int status; /* sticky once non-zero */
    int has_error;
    csv_error err;
    uint64_t records;

    uint64_t line;       /* current physical line */
    uint64_t abs;        /* bytes before the current chunk (BOM excluded) */
    uint64_t line_start; /* absolute offset of the current line's first byte */
    int skip_lf;         /* the previous byte was a CR ending a line */

    /* A UTF-8 sequence cut by the end of a chunk. */
    int u8_need;
    uint8_t u8_lo, u8_hi;
    uint64_t u8_lead_abs;

    /* The record being built. */
    uint64_t rec_line;
    uint64_t rec_limit; /* first absolute offset past max_record_bytes */
    uint64_t quote_line, quote_col;
    char *buf; /* decoded fields, each followed by NUL */
    size_t blen, bcap;
    size_t fstart; /* start of the current field in buf */
    size_t *offs;
    csv_field *fields;
    size_t nf, fcap;

    /* Raw text of a record that began in an earlier chunk. */
    char *raw;
    size_t rlen, rcap;
    int raw_spill;

    int bom_done;
    size_t bom_n;
    unsigned char bom[3];
};

/* Every byte >= 0x80 stops a scan: it is checked as UTF-8 outside the fast loop. */
#define HI16(b)                                                                                    \
    [b] = 1, [b + 1] = 1, [b + 2] = 1, [b + 3] = 1, [b + 4] = 1, [b + 5] = 1, [b + 6] = 1,         \
    [b + 7] = 1, [b + 8] = 1, [b + 9] = 1, [b + 10] = 1, [b + 11] = 1, [b + 12] = 1, [b + 13] = 1, \
    [b + 14] = 1, [b + 15] = 1
#define HI128                                                                                      \
    HI16(0x80), HI16(0x90), HI16(0xA0), HI16(0xB0), HI16(0xC0), HI16(0xD0), HI16(0xE0), HI16(0xF0)

/* Unquoted fields stop at the delimiter and line ends. */
static const uint8_t stop_plain[256] = {['\n'] = 1, ['\r'] = 1, [','] = 1, HI128};
/* Quoted fields stop at the quote, and at LF to count lines. */
static const uint8_t stop_quoted[256] = {['\n'] = 1, ['"'] = 1, HI128};

static inline const uint8_t *scan(const uint8_t *q, const uint8_t *end, const uint8_t *stop)
{
    while (end - q >= 8) {
        if (stop[q[0]])
            return q;
        if (stop[q[1]])
            return q + 1;
        if (stop[q[2]])
            return q + 2;
        if (stop[q[3]])
            return q + 3;
        if (stop[q[4]])
            return q + 4;
        if (stop[q[5]])
            return q + 5;
        if (stop[q[6]])
            return q + 6;
        if (stop[q[7]])
            return q + 7;
        q += 8;
    }
    while (q < end && !stop[*q])
        q++;
    return q;
}

static int fail(csv_parser *P, int status, uint64_t line, uint64_t column, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int fail(csv_parser *P, int status, uint64_t line, uint64_t column, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(P->err.message, sizeof P->err.message, fmt, ap);
    va_end(ap);
    P->err.line = line;
    P->err.column = column;
    P->has_error = 1;
    P->status = status;
    return status;
}

static int fail_utf8(csv_parser *P, uint64_t at_abs)
{
    uint64_t col = at_abs - P->line_start + 1;
    return fail(P, RST_EINVAL, P->line, col,
                "invalid UTF-8 at line %llu, column %llu (the file must be UTF-8 encoded)",
                (unsigned long long)P->line, (unsigned long long)col);
}

/* Grows *p to hold need bytes, never past max. RST_OK or RST_ENOMEM. */
static int grow(char **p, size_t *cap, size_t need, size_t max)
{
    size_t c = *cap ? *cap : 256;
    while (c < need) {
        if (c > max / 2) {
            c = max;
            break;
        }
        c *= 2;
    }
    if (c < need)
        c = need;
    char *n = realloc(*p, c);
    if (!n)
        return RST_ENOMEM;
    *p = n;
    *cap = c;
    return RST_OK;
}

/* Limits are checked by position, not when bytes are copied: the first
 * problem in the input wins, so the outcome never depends on chunking. */
static int record_too_long(csv_parser *P)
{
    return fail(P, RST_ETOOBIG, P->rec_line, 0, "the record at line %llu is longer than %zu bytes",
                (unsigned long long)P->rec_line, P->lim.max_record_bytes);
}

static int field_too_long(csv_parser *P)
{
    return fail(P, RST_ETOOBIG, P->rec_line, 0,
                "field %zu of the record at line %llu is longer than %zu bytes", P->nf + 1,
                (unsigned long long)P->rec_line, P->lim.max_field_bytes);
}

static int overflow(csv_parser *P, int is_record)
{
    return is_record ? record_too_long(P) : field_too_long(P);
}

/* Decoded fields plus one NUL each never pass this. */
static size_t buf_max(const csv_parser *P)
{
    return P->lim.max_record_bytes + P->lim.max_fields + 1;
}

/* Appends decoded bytes to the current field (limits already checked). */
static int field_append(csv_parser *P, const uint8_t *s, size_t n)
{
    if (!n)
        return RST_OK;
    if (n > P->lim.max_field_bytes - (P->blen - P->fstart))
        return field_too_long(P); /* not reached: spans are bounded first */
    if (P->blen + n + 1 > P->bcap && grow(&P->buf, &P->bcap, P->blen + n + 1, buf_max(P)))
        return fail(P, RST_ENOMEM, P->rec_line, 0, "out of memory");
    memcpy(P->buf + P->blen, s, n);
    P->blen += n;
    return RST_OK;
}

static int field_end(csv_parser *P)
{
    if (P->nf == P->lim.max_fields)
        return fail(P, RST_ETOOBIG, P->rec_line, 0,
                    "the record at line %llu has more than %zu fields",
                    (unsigned long long)P->rec_line, P->lim.max_fields);
    if (P->blen + 1 > P->bcap && grow(&P->buf, &P->bcap, P->blen + 1, buf_max(P)))
        return fail(P, RST_ENOMEM, P->rec_line, 0, "out of memory");
    if (P->nf == P->fcap) {
        size_t c = P->fcap ? P->fcap * 2 : 16;
        if (c > P->lim.max_fields)
            c = P->lim.max_fields;
        size_t *o = realloc(P->offs, c * sizeof *o);
        if (o)
            P->offs = o;
        csv_field *f = o ? realloc(P->fields, c * sizeof *f) : NULL;
        if (!f)
            return fail(P, RST_ENOMEM, P->rec_line, 0, "out of memory");
        P->fields = f;
        P->fcap = c;
    }
    P->offs[P->nf] = P->fstart;
    P->fields[P->nf].len = P->blen - P->fstart;
    P->nf++;
    P->buf[P->blen++] = '\0';
    P->fstart = P->blen;
    return RST_OK;
}

static int raw_append(csv_parser *P, const uint8_t *s, size_t n)
{
    if (n > P->lim.max_record_bytes - P->rlen)
        return record_too_long(P); /* not reached: positions are checked first */
    if (P->rlen + n + 1 > P->rcap &&
        grow(&P->raw, &P->rcap, P->rlen + n + 1, P->lim.max_record_bytes + 1))
        return fail(P, RST_ENOMEM, P->rec_line, 0, "out of memory");
    memcpy(P->raw + P->rlen, s, n);
    P->rlen += n;
    P->raw[P->rlen] = '\0';
    return RST_OK;
}

/* Hands the finished record to the callback. */
static int emit(csv_parser *P, const char *raw, size_t raw_len)
{
    for (size_t i = 0; i < P->nf; i++)
        P->fields[i].data = P->buf + P->offs[i];
    csv_record r = {.fields = P->fields,
                    .count = P->nf,
                    .line = P->rec_line,
                    .raw = P->lim.keep_raw ? raw : NULL,
                    .raw_len = P->lim.keep_raw ? raw_len : 0};
    P->records++;
    int rc = P->cb(P->arg, &r);
    P->blen = 0;
    P->fstart = 0;
    P->nf = 0;
    P->rlen = 0;
    P->raw_spill = 0;
    if (rc)
        P->status = rc;
    return rc;
}

/* Ends the record whose line end is at t (in the chunk starting at d). */
static int record_end(csv_parser *P, const uint8_t *d, const uint8_t *rstart, const uint8_t *t)
{
    int rc = field_end(P);
    if (rc)
        return rc;
    if (!P->lim.keep_raw)
        return emit(P, NULL, 0);
    if (P->raw_spill) {
        if ((rc = raw_append(P, d, (size_t)(t - d))))
            return rc;
        return emit(P, P->raw, P->rlen);
    }
    return emit(P, (const char *)rstart, (size_t)(t - rstart));
}

/* Bytes in a UTF-8 sequence with this lead byte; 0 if it cannot lead one. */
static size_t u8_seq_len(uint8_t c)
{
    if (c >= 0xC2 && c <= 0xDF)
        return 2;
    if (c >= 0xE0 && c <= 0xEF)
        return 3;
    if (c >= 0xF0 && c <= 0xF4)
        return 4;
    return 0;
}

/* Validates the UTF-8 sequence whose lead byte is at q; *next is past it, or
 * end with the rest pending when the chunk ends inside it. */
static int utf8_seq(csv_parser *P, const uint8_t *d, const uint8_t *q, const uint8_t *end,
                    const uint8_t **next)
{
    uint64_t lead_abs = P->abs + (uint64_t)(q - d);
    uint8_t c = *q, lo = 0x80, hi = 0xBF;
    int need = (int)u8_seq_len(c) - 1;
    if (need < 0)
        return fail_utf8(P, lead_abs);
    if (c == 0xE0)
        lo = 0xA0; /* overlong */
    else if (c == 0xED)
        hi = 0x9F; /* surrogates */
    else if (c == 0xF0)
        lo = 0x90; /* overlong */
    else if (c == 0xF4)
        hi = 0x8F; /* above U+10FFFF */
    q++;
    while (need) {
        if (q == end) {
            P->u8_need = need;
            P->u8_lo = lo;
            P->u8_hi = hi;
            P->u8_lead_abs = lead_abs;
            *next = end;
            return RST_OK;
        }
        if (*q < lo || *q > hi)
            return fail_utf8(P, lead_abs);
        lo = 0x80;
        hi = 0xBF;
        q++;
        need--;
    }
    *next = q;
    return RST_OK;
}

/* The first absolute offset the current field's span may not reach: there the
 * field would pass max_field_bytes, or the record max_record_bytes. Field
 * bytes are input bytes one to one inside a span. */
static uint64_t span_bound(const csv_parser *P, uint64_t at, int *is_record)
{
    uint64_t fb = at + (P->lim.max_field_bytes - (P->blen - P->fstart));
    *is_record = P->rec_limit <= fb;
    return *is_record ? P->rec_limit : fb;
}

/* Scans field bytes from q (validating UTF-8, counting lines inside quotes)
 * up to the first stop byte, the bound, or the chunk end. */
static int scan_span(csv_parser *P, const uint8_t *d, const uint8_t *p, const uint8_t *q,
                     const uint8_t *end, int quoted, const uint8_t **out)
{
    int is_record;
    uint64_t at = P->abs + (uint64_t)(p - d);
    uint64_t bound = span_bound(P, at, &is_record);
    const uint8_t *lim = bound - at < (uint64_t)(end - p) ? p + (bound - at) : end;
    const uint8_t *stop = quoted ? stop_quoted : stop_plain;
    int rc;
    for (;;) {
        q = scan(q, lim, stop);
        if (q >= lim)
            break;
        if (*q == '\n' && quoted) {
            q++;
            P->line++;
            P->line_start = P->abs + (uint64_t)(q - d);
            continue;
        }
        if (*q < 0x80)
            break; /* a delimiter, line end or quote */
        size_t len = u8_seq_len(*q);
        if (!len)
            return fail_utf8(P, P->abs + (uint64_t)(q - d));
        if (P->abs + (uint64_t)(q - d) + len > bound)
            return overflow(P, is_record);
        if ((rc = utf8_seq(P, d, q, end, &q)))
            return rc;
    }
    if (q == lim && lim < end) {
        /* at the bound only a byte that ends the field may follow; at the
         * record's bound only a line end */
        uint8_t c = *q;
        int ends =
            quoted ? c == '"' && !is_record : c == '\n' || c == '\r' || (c == ',' && !is_record);
        if (!ends)
            return overflow(P, is_record);
    }
    *out = q;
    return RST_OK;
}

/* A byte of the record outside any span (quote, delimiter) at p. */
static int record_byte(csv_parser *P, const uint8_t *d, const uint8_t *p)
{
    return P->abs + (uint64_t)(p - d) >= P->rec_limit ? record_too_long(P) : RST_OK;
}

/* Parses one chunk (BOM already handled). */
static int feed_core(csv_parser *P, const uint8_t *d, size_t n)
{
    const uint8_t *p = d, *end = d + n;
    const uint8_t *rstart = d; /* where the current record's raw text starts in this chunk */
    size_t skip = 0;           /* bytes at p already validated (a resumed UTF-8 sequence) */
    int rc = RST_OK;

    if (P->u8_need) {
        const uint8_t *q = d;
        while (P->u8_need && q < end) {
            if (*q < P->u8_lo || *q > P->u8_hi)
                return fail_utf8(P, P->u8_lead_abs);
            P->u8_lo = 0x80;
            P->u8_hi = 0xBF;
            P->u8_need--;
            q++;
        }
        skip = (size_t)(q - d);
    }

    while (p < end) {
        switch (P->state) {
        case S_REC_START: {
            uint8_t c = *p;
            if (P->skip_lf) {
                P->skip_lf = 0;
                if (c == '\n') {
                    p++;
                    P->line_start = P->abs + (uint64_t)(p - d);
                    continue;
                }
            }
            if (c == '\n' || c == '\r') { /* a blank line */
                P->line++;
                p++;
                P->skip_lf = c == '\r';
                P->line_start = P->abs + (uint64_t)(p - d);
                continue;
            }
            P->rec_line = P->line;
            P->rec_limit = P->abs + (uint64_t)(p - d) + P->lim.max_record_bytes;
            P->raw_spill = 0;
            P->rlen = 0;
            rstart = p;
            P->state = S_FIELD_START;
        }
            /* fall through */
        case S_FIELD_START:
            if (*p == '"') {
                if ((rc = record_byte(P, d, p)))
                    return rc;
                P->quote_line = P->line;
                P->quote_col = P->abs + (uint64_t)(p - d) - P->line_start + 1;
                p++;
                P->state = S_QUOTED;
                continue;
            }
            P->state = S_UNQUOTED;
            /* fall through */
        case S_UNQUOTED: {
            const uint8_t *q;
            if ((rc = scan_span(P, d, p, p + skip, end, 0, &q)))
                return rc;
            skip = 0;
            if ((rc = field_append(P, p, (size_t)(q - p))))
                return rc;
            if (q == end) {
                p = end;
                break;
            }
            uint8_t c = *q;
            p = q + 1;
            if (c == ',') {
                if ((rc = field_end(P)))
                    return rc;
                P->state = S_FIELD_START;
            } else {
                if ((rc = record_end(P, d, rstart, q)))
                    return rc;
                P->line++;
                P->skip_lf = c == '\r';
                P->line_start = P->abs + (uint64_t)(p - d);
                P->state = S_REC_START;
            }
            break;
        }
        case S_QUOTED: {
            const uint8_t *q;
            if ((rc = scan_span(P, d, p, p + skip, end, 1, &q)))
                return rc;
            skip = 0;
            if ((rc = field_append(P, p, (size_t)(q - p))))
                return rc;
            if (q == end) {
                p = end;
                break;
            }
            p = q + 1; /* the quote is a record byte: scan_span checked it */
            P->state = S_QUOTE_SEEN;
            break;
        }
        case S_QUOTE_SEEN: {
            uint8_t c = *p;
            if (c == '"') { /* "" is one quote; it is part of the field */
                if ((rc = record_byte(P, d, p)))
                    return rc;
                if (P->blen - P->fstart == P->lim.max_field_bytes)
                    return field_too_long(P);
                if ((rc = field_append(P, p, 1)))
                    return rc;
                p++;
                P->state = S_QUOTED;
            } else if (c == ',') {
                if ((rc = record_byte(P, d, p)) || (rc = field_end(P)))
                    return rc;
                p++;
                P->state = S_FIELD_START;
            } else if (c == '\n' || c == '\r') {
                if ((rc = record_end(P, d, rstart, p)))
                    return rc;
                p++;
                P->line++;
                P->skip_lf = c == '\r';
                P->line_start = P->abs + (uint64_t)(p - d);
                P->state = S_REC_START;
            } else {
                uint64_t col = P->abs + (uint64_t)(p - d) - P->line_start + 1;
                return fail(P, RST_EINVAL, P->line, col,
                            "unexpected character after a closing quote at line %llu, column %llu "
                            "(a quote inside a quoted field must be doubled)",
                            (unsigned long long)P->line, (unsigned long long)col);
            }
            break;
        }
        default:
            return fail(P, RST_EINVAL, P->line, 0, "input after the end");
        }
    }

    /* The record goes on in the next chunk: keep its text so far. */
    if (P->state != S_REC_START && P->lim.keep_raw) {
        const uint8_t *from = P->raw_spill ? d : rstart;
        if ((rc = raw_append(P, from, (size_t)(end - from))))
            return rc;
        P->raw_spill = 1;
    }
    P->abs += n;
    return RST_OK;
}

csv_parser *csv_new(const csv_limits *limits, csv_record_fn on_record, void *arg)
{
    csv_parser *P = xcalloc(1, sizeof *P);
    if (limits)
        P->lim = *limits;
    if (!P->lim.max_field_bytes)
        P->lim.max_field_bytes = CSV_DEFAULT_MAX_FIELD_BYTES;
    if (!P->lim.max_fields)
        P->lim.max_fields = CSV_DEFAULT_MAX_FIELDS;
    if (!P->lim.max_record_bytes)
        P->lim.max_record_bytes = CSV_DEFAULT_MAX_RECORD_BYTES;
    if (P->lim.max_record_bytes < 2)
        P->lim.max_record_bytes = 2;
    P->cb = on_record;
    P->arg = arg;
    P->line = 1;
    P->state = S_REC_START;
    return P;
}

int csv_feed(csv_parser *P, const char *data, size_t len)
{
    if (P->status)
        return P->status;
    if (P->state == S_FINISHED)
        return RST_EINVAL;
    const uint8_t *d = (const uint8_t *)data;
    if (!P->bom_done) {
        static const uint8_t bom[3] = {0xEF, 0xBB, 0xBF};
        while (len && P->bom_n < 3 && *d == bom[P->bom_n]) {
            P->bom[P->bom_n++] = *d++;
            len--;
        }
        if (P->bom_n == 3) {
            P->bom_done = 1;
        } else if (len) { /* not a BOM: parse what was held back, then the rest */
            P->bom_done = 1;
            int rc = P->bom_n ? feed_core(P, P->bom, P->bom_n) : RST_OK;
            if (rc)
                return rc;
        } else {
            return RST_OK; /* all of it could still be a BOM */
        }
    }
    return len ? feed_core(P, d, len) : RST_OK;
}

int csv_finish(csv_parser *P)
{
    if (P->status)
        return P->status;
    if (P->state == S_FINISHED)
        return RST_EINVAL;
    int rc = RST_OK;
    if (!P->bom_done) {
        P->bom_done = 1;
        if (P->bom_n && (rc = feed_core(P, P->bom, P->bom_n)))
            return rc;
    }
    if (P->u8_need)
        return fail_utf8(P, P->u8_lead_abs);
    switch (P->state) {
    case S_QUOTED:
        return fail(P, RST_EINVAL, P->quote_line, P->quote_col,
                    "the quoted field opened at line %llu, column %llu is never closed",
                    (unsigned long long)P->quote_line, (unsigned long long)P->quote_col);
    case S_FIELD_START:
    case S_UNQUOTED:
    case S_QUOTE_SEEN:
        if ((rc = field_end(P)))
            return rc;
        if ((rc = emit(P, P->raw ? P->raw : "", P->rlen)))
            return rc;
        break;
    default:
        break;
    }
    P->state = S_FINISHED;
    return RST_OK;
}

const csv_error *csv_get_error(const csv_parser *P)
{
    return P->has_error ? &P->err : NULL;
}

uint64_t csv_records(const csv_parser *P)
{
    return P->records;
}

void csv_free(csv_parser *P)
{
    if (!P)
        return;
    free(P->buf);
    free(P->offs);
    free(P->fields);
    free(P->raw);
    free(P);
}
