/* Streaming ingestion of a sales dataset version: raw CSV bytes in (any
 * chunking), canonical CSV and quarantine CSV out through callbacks, plus the
 * results and the profile. No I/O of its own. */
#ifndef ROASTERY_INGEST_H
#define ROASTERY_INGEST_H

#include "datasets/profile.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    int on_error_quarantine; /* 0 = reject the version on any bad row */
    const char *min_date;    /* YYYY-MM-DD; NULL = SALES_DEFAULT_MIN_DATE */
    const char *max_date;    /* NULL = SALES_DEFAULT_MAX_DATE */
    size_t max_errors_kept;  /* row errors kept for the result; 0 = 100 */
    size_t max_daily_keys;   /* profile's (date, store, product) keys; 0 = 2,000,000
                                (about 40 bytes of memory each) */
    uint64_t max_rows;       /* data rows of one version; more rejects it (see ingest_refuse);
                                0 = no limit */
} ingest_options;

typedef struct ingest ingest;

/* Output callbacks get the bytes of one file each, in order, in pieces of up to
 * about 256 KiB; they return 0, or a non-zero status that stops the ingest and
 * is returned by ingest_feed/ingest_finish.
 *  - canonical: SALES_CANONICAL_HEADER then one line per valid row. With
 *    on_error_quarantine = 0 it stops after the first bad row: when the result
 *    says "rejected", discard whatever was written.
 *  - quarantine: only called when a row is bad: the header line as sent plus
 *    ",error", then each bad row's text exactly as sent plus "," and the
 *    reasons as one quoted field. Written under both policies. A line with a
 *    cell a spreadsheet would run as a formula (= + - @ TAB CR first) has its
 *    cells re-written spreadsheet-safe instead (csvout_text: "'=x").
 * arg is borrowed. new: caller frees with ingest_free. Returns NULL when o is
 * NULL or its dates are not YYYY-MM-DD with min <= max. */
ingest *ingest_new(const ingest_options *o,
                   int (*write_canonical)(void *arg, const char *data, size_t len),
                   int (*write_quarantine)(void *arg, const char *data, size_t len), void *arg);

/* Raw CSV bytes, any chunking. Bad data never fails the call: it ends up in
 * the result (and, when the file itself is unusable, makes the rest of the
 * input ignored: see ingest_done). Returns RST_OK, the status of a failed
 * write callback, RST_ENOMEM, or RST_EINVAL after ingest_finish. */
int ingest_feed(ingest *g, const char *data, size_t len);

/* Ends the input and flushes both outputs. Same returns as ingest_feed. */
int ingest_finish(ingest *g);

/* 1 when the input can no longer change the outcome (unusable header or CSV,
 * or a write failure): the caller may stop feeding and call ingest_finish. */
int ingest_done(const ingest *g);

/* Rejects the version because the input passed a limit (setting names it, e.g.
 * "ROASTERY_MAX_DECOMPRESSED_BYTES", value is its value; reason is copied):
 * the result gets "reason", and "limit" {"setting", "value"} plus "problem", a
 * problem+json object (type .../problems/upload-limit, status 413) naming it.
 * What is written to the canonical file is of no use any more; feeding stops
 * (ingest_done). The first rejection wins. */
void ingest_refuse(ingest *g, const char *setting, uint64_t value, const char *reason);

/* 1 when the version must be rejected (valid after ingest_finish). */
int ingest_rejected(const ingest *g);

/* new: caller json_decref's. Valid after ingest_finish (earlier: so far).
 * {
 *   "rejected": false, "reason": null | "missing required columns: ...",
 *   "policy": "reject" | "quarantine",
 *   "rows_read": 10000, "rows_accepted": 9990, "rows_rejected": 10,
 *   "quarantined": true,                 quarantine output was written
 *   "header": {"columns": {...}, "ignored_columns": [...], "missing_columns": [...],
 *              "warnings": [...], "error": "..."}          null before a header was read
 *   "error_count": 12,                   row errors in all (a row may have several)
 *   "errors": [{"line": 7, "column": "Quantity Sold", "field": "quantity",
 *               "value": "-3", "reason": "must be a whole number >= 0"}, ...],
 *   "errors_truncated": false,           more errors than max_errors_kept
 *   "parse_error": {"line": 5, "column": 3, "message": "..."},   only when the CSV is broken
 *   "limit": {"setting": "ROASTERY_MAX_ROWS_PER_VERSION", "value": 50000000},  only when a
 *            limit rejected the version, with "problem": {type, title, status, detail, limit}
 *   "profile": {...}                     profile_to_json() of the accepted rows
 * } */
json_t *ingest_result_json(const ingest *g);

/* borrowed: valid until ingest_free. The profile of the accepted rows. */
const profile_t *ingest_profile(const ingest *g);

/* NULL-safe. */
void ingest_free(ingest *g);

#endif
