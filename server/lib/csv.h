/* An incremental RFC 4180 CSV parser: feed byte chunks of any size, get whole
 * records through a callback. It does no I/O; every size that comes from the
 * input is checked against csv_limits before anything is allocated, and the
 * input must be UTF-8 (a leading BOM is skipped). */
#ifndef ROASTERY_CSV_H
#define ROASTERY_CSV_H

#include <stddef.h>
#include <stdint.h>

#define CSV_DEFAULT_MAX_FIELD_BYTES ((size_t)64 * 1024)
#define CSV_DEFAULT_MAX_FIELDS ((size_t)512)
#define CSV_DEFAULT_MAX_RECORD_BYTES ((size_t)1024 * 1024)

/* Hard limits; a 0 member takes the default above. They are checked by
 * position in the input, before anything is copied or allocated, so the
 * first problem in the input is the one reported whatever the chunking. */
typedef struct {
    size_t max_field_bytes;  /* one decoded field */
    size_t max_fields;       /* fields in one record */
    size_t max_record_bytes; /* one record's text as sent, line end excluded */
    int keep_raw;            /* 1: give each record's text as sent (csv_record.raw) */
} csv_limits;

/* One decoded field: quotes removed, doubled quotes undone. data[len] is '\0'
 * (a field may still contain NUL bytes of its own). */
typedef struct {
    const char *data;
    size_t len;
} csv_field;

/* One record, all borrowed: valid only during the callback. */
typedef struct {
    const csv_field *fields;
    size_t count;  /* >= 1; empty lines are skipped, never reported */
    uint64_t line; /* 1-based physical line where the record starts */
    /* With keep_raw: the record's bytes exactly as sent, without its line end
     * (may contain the newlines of quoted fields); otherwise NULL and 0. */
    const char *raw;
    size_t raw_len;
} csv_record;

/* Why parsing stopped on bad input. */
typedef struct {
    uint64_t line;   /* 1-based physical line */
    uint64_t column; /* 1-based byte offset in that line; 0 when not about one spot */
    char message[192];
} csv_error;

/* Called once per record. Return 0 to go on; any other value stops the parser
 * and is returned by csv_feed/csv_finish (use values that are not RST_* codes
 * if the caller must tell them apart). */
typedef int (*csv_record_fn)(void *arg, const csv_record *rec);

typedef struct csv_parser csv_parser;

/* new: caller frees with csv_free. limits may be NULL (all defaults); arg is
 * borrowed and passed to on_record. Never returns NULL (aborts on OOM). */
csv_parser *csv_new(const csv_limits *limits, csv_record_fn on_record, void *arg);

/* Parses the next chunk; records may span chunks. Returns RST_OK, RST_EINVAL
 * (malformed CSV or invalid UTF-8), RST_ETOOBIG (a limit was passed), RST_ENOMEM,
 * or the callback's non-zero value. After a failure the parser stays stopped and
 * every later call returns the same status. */
int csv_feed(csv_parser *p, const char *data, size_t len);

/* Ends the input: emits a last record without a line end, and fails with
 * RST_EINVAL on an unterminated quoted field or a truncated UTF-8 sequence.
 * Later csv_feed/csv_finish calls return RST_EINVAL. */
int csv_finish(csv_parser *p);

/* borrowed: valid until csv_free. NULL unless the parser stopped on bad input
 * (RST_EINVAL, RST_ETOOBIG). */
const csv_error *csv_get_error(const csv_parser *p);

/* Records emitted so far. */
uint64_t csv_records(const csv_parser *p);

/* NULL-safe. */
void csv_free(csv_parser *p);

#endif
