/* libFuzzer harness for the CSV parser (not built by CMake).
 *
 *   clang -g -O1 -std=c17 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined \
 *         -Iserver tests/fuzz/fuzz_csv.c server/lib/csv.c server/lib/util.c -o build/fuzz_csv
 *   mkdir -p build/fuzz_csv_corpus && build/fuzz_csv -max_total_time=60 build/fuzz_csv_corpus
 *
 * Besides memory errors it checks properties: the same input cut into random
 * chunks gives the same records and the same error; every record's raw text,
 * parsed on its own, gives the same fields; fields are NUL-terminated. The
 * first two bytes pick small limits so the limit paths are reached too. */
#include "lib/csv.h"
#include "lib/util.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
    buf_t out;
    int check_raw;
} sink;

static void render(buf_t *b, const csv_record *r)
{
    buf_printf(b, "L%llu n%zu:", (unsigned long long)r->line, r->count);
    for (size_t i = 0; i < r->count; i++) {
        if (r->fields[i].data[r->fields[i].len] != '\0')
            abort();
        buf_printf(b, "%zu:", r->fields[i].len);
        buf_append(b, r->fields[i].data, r->fields[i].len);
    }
    buf_puts(b, "\n");
}

static int on_single(void *arg, const csv_record *r)
{
    buf_t *b = arg;
    render(b, r);
    return 0;
}

static int on_rec(void *arg, const csv_record *r)
{
    sink *s = arg;
    render(&s->out, r);
    /* raw text parsed alone gives the same fields (unless it starts with what
     * would be taken for a BOM) */
    if (s->check_raw && r->raw && !(r->raw_len >= 3 && !memcmp(r->raw, "\xEF\xBB\xBF", 3))) {
        buf_t a, b;
        buf_init(&a, 0);
        buf_init(&b, 0);
        csv_record copy = *r;
        copy.line = 1;
        render(&a, &copy);
        csv_parser *p = csv_new(NULL, on_single, &b);
        if (csv_feed(p, r->raw, r->raw_len) || csv_finish(p))
            abort();
        if (a.len != b.len || memcmp(a.data, b.data, a.len))
            abort();
        csv_free(p);
        buf_free(&a);
        buf_free(&b);
    }
    return 0;
}

static void run(const uint8_t *d, size_t n, const csv_limits *lim, uint32_t seed, buf_t *out,
                int *rc, csv_error *err)
{
    sink s;
    buf_init(&s.out, 0);
    s.check_raw = lim->keep_raw && lim->max_field_bytes >= CSV_DEFAULT_MAX_FIELD_BYTES;
    csv_parser *p = csv_new(lim, on_rec, &s);
    size_t at = 0;
    int r = RST_OK;
    while (at < n && r == RST_OK) {
        size_t k = n - at;
        if (seed) {
            seed = seed * 1103515245u + 12345u;
            k = 1 + (seed >> 16) % 17;
            if (k > n - at)
                k = n - at;
        }
        r = csv_feed(p, (const char *)d + at, k);
        at += k;
    }
    if (r == RST_OK)
        r = csv_finish(p);
    *rc = r;
    memset(err, 0, sizeof *err);
    if (csv_get_error(p))
        *err = *csv_get_error(p);
    csv_free(p);
    *out = s.out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    csv_limits lim = {0};
    if (data[0] & 1)
        lim.max_field_bytes = 1 + (data[0] >> 1);
    if (data[1] & 1)
        lim.max_fields = 1 + (data[1] >> 4);
    if (data[1] & 2)
        lim.max_record_bytes = 2 + (size_t)data[0] * 2;
    lim.keep_raw = (data[1] & 4) != 0;
    const uint8_t *d = data + 2;
    size_t n = size - 2;

    buf_t a, b;
    int ra, rb;
    csv_error ea, eb;
    run(d, n, &lim, 0, &a, &ra, &ea);
    run(d, n, &lim, 0x9E37u ^ (uint32_t)size, &b, &rb, &eb);
    if (ra != rb || a.len != b.len || (a.len && memcmp(a.data, b.data, a.len)))
        abort();
    if (ea.line != eb.line || ea.column != eb.column || strcmp(ea.message, eb.message))
        abort();
    if (ra != RST_OK && ra != RST_EINVAL && ra != RST_ETOOBIG)
        abort();
    buf_free(&a);
    buf_free(&b);
    return 0;
}
