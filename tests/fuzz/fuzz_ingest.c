/* libFuzzer harness for the whole ingestion path (not built by CMake).
 *
 *   clang -g -O1 -std=c17 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -Iserver \
 *         tests/fuzz/fuzz_ingest.c server/datasets/ingest.c server/datasets/sales.c \
 *         server/datasets/profile.c server/lib/csv.c server/lib/util.c \
 *         $(pkg-config --cflags --libs jansson) -lm \
 *         -o build/fuzz_ingest
 *   mkdir -p build/fuzz_ingest_corpus && build/fuzz_ingest -max_total_time=60
 * build/fuzz_ingest_corpus
 *
 * The first byte picks the policy, whether a valid header is put in front
 * (so the fuzzer reaches row validation at once) and the chunk size. Checked
 * besides memory errors: the result JSON always serialises with every key
 * present (no string was dropped for invalid UTF-8); the counts add up; and the
 * canonical output, ingested again, is accepted whole and reproduces itself. */
#include "datasets/ingest.h"
#include "lib/util.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
    buf_t canonical, quarantine;
} sink;

static int w_c(void *arg, const char *d, size_t n)
{
    return buf_append(&((sink *)arg)->canonical, d, n);
}

static int w_q(void *arg, const char *d, size_t n)
{
    return buf_append(&((sink *)arg)->quarantine, d, n);
}

static const char header[] = "Store ID,Date,Country,City,Product Category,Product,Quantity Sold,"
                             "Price,Total Sale,Weather,Promotion,Holiday\n";

static json_t *ingest_all(const char *d, size_t n, size_t chunk, int quarantine, sink *s)
{
    ingest_options o = {.on_error_quarantine = quarantine, .max_errors_kept = 5};
    ingest *g = ingest_new(&o, w_c, w_q, s);
    if (!g)
        abort();
    for (size_t at = 0; at < n && !ingest_done(g); at += chunk)
        if (ingest_feed(g, d + at, n - at < chunk ? n - at : chunk))
            abort();
    if (ingest_finish(g))
        abort();
    json_t *r = ingest_result_json(g);
    ingest_free(g);
    return r;
}

static json_int_t num(json_t *r, const char *k)
{
    json_t *v = json_object_get(r, k);
    if (!json_is_integer(v))
        abort();
    return json_integer_value(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int quarantine = data[0] & 1;
    size_t chunk = 1 + (data[0] >> 2) * 7;
    buf_t in;
    buf_init(&in, 0);
    if (data[0] & 2)
        buf_puts(&in, header);
    buf_append(&in, data + 1, size - 1);

    sink s;
    buf_init(&s.canonical, 0);
    buf_init(&s.quarantine, 0);
    json_t *r = ingest_all(in.data, in.len, chunk, quarantine, &s);
    static const char *keys[] = {"rejected",      "reason",        "policy",           "rows_read",
                                 "rows_accepted", "rows_rejected", "quarantined",      "header",
                                 "error_count",   "errors",        "errors_truncated", "profile"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (!json_object_get(r, keys[i]))
            abort();
    json_t *errs = json_object_get(r, "errors");
    for (size_t i = 0; i < json_array_size(errs); i++)
        if (!json_is_string(json_object_get(json_array_get(errs, i), "value")) ||
            !json_is_string(json_object_get(json_array_get(errs, i), "reason")))
            abort();
    char *dump = json_dumps(r, JSON_COMPACT);
    if (!dump)
        abort();
    free(dump);
    json_int_t read = num(r, "rows_read"), acc = num(r, "rows_accepted"),
               rej = num(r, "rows_rejected");
    if (read != acc + rej)
        abort();
    json_t *prof = json_object_get(r, "profile");
    if (num(prof, "rows") != acc)
        abort();
    if (!quarantine && rej && !json_is_true(json_object_get(r, "rejected")))
        abort();

    /* canonical output is a fixed point */
    if (!json_is_true(json_object_get(r, "rejected")) && acc > 0) {
        sink t;
        buf_init(&t.canonical, 0);
        buf_init(&t.quarantine, 0);
        json_t *r2 = ingest_all(s.canonical.data, s.canonical.len, 4096, 0, &t);
        if (json_is_true(json_object_get(r2, "rejected")) || num(r2, "rows_accepted") != acc ||
            t.canonical.len != s.canonical.len ||
            memcmp(t.canonical.data, s.canonical.data, s.canonical.len) || t.quarantine.len)
            abort();
        json_decref(r2);
        buf_free(&t.canonical);
        buf_free(&t.quarantine);
    }
    json_decref(r);
    buf_free(&s.canonical);
    buf_free(&s.quarantine);
    buf_free(&in);
    return 0;
}
