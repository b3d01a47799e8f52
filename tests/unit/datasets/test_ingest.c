/* ingest: reject and quarantine policies, the quarantine file, the result
 * JSON, chunking, unusable files, write failures, and throughput. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "datasets/ingest.h"
#include "lib/util.h"

#ifndef SHARED_DIR
#define SHARED_DIR "/work/shared"
#endif

typedef struct {
    buf_t canonical, quarantine;
    int canonical_calls, quarantine_calls;
    int fail_with; /* non-zero: every write fails with it */
    int count_only;
} sink;

static int w_canonical(void *arg, const char *data, size_t len)
{
    sink *s = arg;
    s->canonical_calls++;
    if (s->fail_with)
        return s->fail_with;
    return s->count_only ? (int)(s->canonical.len += len, 0) : buf_append(&s->canonical, data, len);
}

static int w_quarantine(void *arg, const char *data, size_t len)
{
    sink *s = arg;
    s->quarantine_calls++;
    if (s->fail_with)
        return s->fail_with;
    return buf_append(&s->quarantine, data, len);
}

static void sink_init(sink *s)
{
    memset(s, 0, sizeof *s);
    buf_init(&s->canonical, 0);
    buf_init(&s->quarantine, 0);
    buf_puts(&s->canonical, "");
    buf_puts(&s->quarantine, "");
}

static void sink_free(sink *s)
{
    buf_free(&s->canonical);
    buf_free(&s->quarantine);
}

/* Runs the input in chunks of `chunk` bytes (0: all at once); returns the
 * result JSON (new). */
static json_t *run(const char *in, size_t n, size_t chunk, const ingest_options *o, sink *s)
{
    ingest *g = ingest_new(o, w_canonical, w_quarantine, s);
    assert_non_null(g);
    if (!chunk)
        chunk = n ? n : 1;
    for (size_t at = 0; at < n; at += chunk)
        assert_int_equal(ingest_feed(g, in + at, n - at < chunk ? n - at : chunk), RST_OK);
    assert_int_equal(ingest_finish(g), RST_OK);
    json_t *r = ingest_result_json(g);
    assert_int_equal(ingest_rejected(g), json_is_true(json_object_get(r, "rejected")));
    assert_non_null(ingest_profile(g));
    ingest_free(g);
    return r;
}

static const char mixed[] =
    "\xEF\xBB\xBF"
    "Store ID,Date,Country,City,Product Category,Product,Quantity Sold,Price,Total Sale,Weather,"
    "Promotion,Holiday\r\n"
    "S1,2023-01-15,USA,Seattle,Coffee,Caffe Latte,3,4.50,13.50,Sunny,No,Yes\r\n"
    "S1,2023-01-15,US,Seattle,Coffee,Caffe Latte,1,4.50,,sunny,no,yes\r\n"
    "S2,2023-01-16,Brazil,\"Rio\",Coffee,\"Cafe\r\nzinho\",-2,1.00,,Hot,No,No\r\n"
    "\r\n"
    "S3,2023-01-17,Canada,Toronto,Pastry,Croissant,2,2.25,4.50,Cold,Yes,No\r\n"
    "S4,2023-02-30,Mexico,Puebla,Beverage,\"Horchata, grande\",1,3.00,3.00,,,\r\n";

static const char mixed_canonical[] =
    "date,store_id,country,city,category,product,quantity,unit_price,total,weather,promotion,"
    "holiday\n"
    "2023-01-15,S1,USA,Seattle,Coffee,Caffe Latte,3,4.50,13.50,Sunny,No,Yes\n"
    "2023-01-15,S1,USA,Seattle,Coffee,Caffe Latte,1,4.50,4.50,Sunny,No,Yes\n"
    "2023-01-17,S3,Canada,Toronto,Pastry,Croissant,2,2.25,4.50,Cold,Yes,No\n";

static const char mixed_quarantine[] =
    "Store ID,Date,Country,City,Product Category,Product,Quantity Sold,Price,Total Sale,Weather,"
    "Promotion,Holiday,error\n"
    "S2,2023-01-16,Brazil,\"Rio\",Coffee,\"Cafe\r\nzinho\",-2,1.00,,Hot,No,No,\"Country: must be "
    "USA, Canada or Mexico; Product: contains a control character; Quantity Sold: must be a "
    "whole number >= 0\"\n"
    "S4,2023-02-30,Mexico,Puebla,Beverage,\"Horchata, grande\",1,3.00,3.00,,,,Date: is not a real "
    "calendar date\n";

static void test_quarantine_policy(void **state)
{
    (void)state;
    sink s;
    sink_init(&s);
    ingest_options o = {.on_error_quarantine = 1};
    json_t *r = run(mixed, sizeof mixed - 1, 0, &o, &s);
    assert_string_equal(s.canonical.data, mixed_canonical);
    assert_string_equal(s.quarantine.data, mixed_quarantine);
    assert_false(json_is_true(json_object_get(r, "rejected")));
    assert_true(json_is_null(json_object_get(r, "reason")));
    assert_string_equal(json_string_value(json_object_get(r, "policy")), "quarantine");
    assert_int_equal(json_integer_value(json_object_get(r, "rows_read")), 5);
    assert_int_equal(json_integer_value(json_object_get(r, "rows_accepted")), 3);
    assert_int_equal(json_integer_value(json_object_get(r, "rows_rejected")), 2);
    assert_int_equal(json_integer_value(json_object_get(r, "error_count")), 4);
    assert_true(json_is_true(json_object_get(r, "quarantined")));
    json_t *errs = json_object_get(r, "errors");
    assert_int_equal(json_array_size(errs), 4);
    json_t *e0 = json_array_get(errs, 0);
    assert_int_equal(json_integer_value(json_object_get(e0, "line")), 4);
    assert_string_equal(json_string_value(json_object_get(e0, "column")), "Country");
    assert_string_equal(json_string_value(json_object_get(e0, "field")), "country");
    assert_string_equal(json_string_value(json_object_get(e0, "value")), "Brazil");
    assert_string_equal(json_string_value(json_object_get(e0, "reason")),
                        "must be USA, Canada or Mexico");
    json_t *e3 = json_array_get(errs, 3);
    assert_int_equal(json_integer_value(json_object_get(e3, "line")), 8);
    assert_string_equal(json_string_value(json_object_get(e3, "value")), "2023-02-30");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(r, "profile"), "rows")), 3);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_object_get(r, "header"), "columns"), "quantity")),
                        "Quantity Sold");
    json_decref(r);
    sink_free(&s);
}

static void test_reject_policy(void **state)
{
    (void)state;
    sink s;
    sink_init(&s);
    ingest_options o = {.on_error_quarantine = 0, .max_errors_kept = 100};
    json_t *r = run(mixed, sizeof mixed - 1, 0, &o, &s);
    assert_true(json_is_true(json_object_get(r, "rejected")));
    assert_string_equal(json_string_value(json_object_get(r, "reason")),
                        "2 of 5 rows are invalid and the version rejects any bad row (see errors; "
                        "upload again with on_error=quarantine to keep the valid rows)");
    assert_string_equal(json_string_value(json_object_get(r, "policy")), "reject");
    assert_int_equal(json_integer_value(json_object_get(r, "rows_accepted")), 3);
    assert_int_equal(json_integer_value(json_object_get(r, "rows_rejected")), 2);
    /* bad rows are still kept for the user to see */
    assert_string_equal(s.quarantine.data, mixed_quarantine);
    json_decref(r);
    sink_free(&s);

    /* all good: accepted under the strict policy */
    sink_init(&s);
    r = run(mixed_canonical, sizeof mixed_canonical - 1, 0, &o, &s);
    assert_false(json_is_true(json_object_get(r, "rejected")));
    assert_string_equal(s.canonical.data, mixed_canonical); /* canonical is a fixed point */
    assert_int_equal(s.quarantine_calls, 0);
    assert_false(json_is_true(json_object_get(r, "quarantined")));
    json_decref(r);
    sink_free(&s);
}

static void test_any_chunking_same_outcome(void **state)
{
    (void)state;
    ingest_options o = {.on_error_quarantine = 1};
    sink a;
    sink_init(&a);
    json_t *ra = run(mixed, sizeof mixed - 1, 0, &o, &a);
    char *ja = json_dumps(ra, JSON_SORT_KEYS);
    for (size_t chunk = 1; chunk < 40; chunk++) {
        sink b;
        sink_init(&b);
        json_t *rb = run(mixed, sizeof mixed - 1, chunk, &o, &b);
        char *jb = json_dumps(rb, JSON_SORT_KEYS);
        assert_string_equal(a.canonical.data, b.canonical.data);
        assert_string_equal(a.quarantine.data, b.quarantine.data);
        assert_string_equal(ja, jb);
        free(jb);
        json_decref(rb);
        sink_free(&b);
    }
    free(ja);
    json_decref(ra);
    sink_free(&a);
}

static void test_unusable_files(void **state)
{
    (void)state;
    ingest_options o = {.on_error_quarantine = 1};
    sink s;

    sink_init(&s);
    json_t *r = run("", 0, 0, &o, &s);
    assert_string_equal(json_string_value(json_object_get(r, "reason")), "the file is empty");
    assert_true(json_is_null(json_object_get(r, "header")));
    json_decref(r);
    sink_free(&s);

    sink_init(&s);
    static const char only_header[] = "store,date,country,city,category,product,qty,price\n";
    r = run(only_header, sizeof only_header - 1, 0, &o, &s);
    assert_string_equal(json_string_value(json_object_get(r, "reason")),
                        "the file has a header but no data rows");
    json_decref(r);
    sink_free(&s);

    sink_init(&s);
    static const char all_bad[] = "store,date,country,city,category,product,qty,price\n"
                                  "S,2023-01-01,Peru,Lima,Coffee,L,1,1\n";
    r = run(all_bad, sizeof all_bad - 1, 0, &o, &s);
    assert_string_equal(json_string_value(json_object_get(r, "reason")),
                        "none of the 1 rows is valid");
    json_decref(r);
    sink_free(&s);

    /* Latin-1 bytes: the CSV itself is refused, with the place */
    sink_init(&s);
    static const char latin1[] = "store,date,country,city,category,product,qty,price\n"
                                 "S,2023-01-01,USA,A,Coffee,L,1,1\n"
                                 "S,2023-01-01,M\xE9xico,A,Coffee,L,1,1\n"
                                 "S,2023-01-01,USA,A,Coffee,L,1,1\n";
    ingest *g = ingest_new(&o, w_canonical, w_quarantine, &s);
    assert_int_equal(ingest_feed(g, latin1, sizeof latin1 - 1), RST_OK);
    assert_true(ingest_done(g));
    assert_int_equal(ingest_feed(g, "more", 4), RST_OK); /* ignored */
    assert_int_equal(ingest_finish(g), RST_OK);
    assert_int_equal(ingest_feed(g, "x", 1), RST_EINVAL);
    r = ingest_result_json(g);
    assert_true(json_is_true(json_object_get(r, "rejected")));
    json_t *pe = json_object_get(r, "parse_error");
    assert_int_equal(json_integer_value(json_object_get(pe, "line")), 3);
    assert_int_equal(json_integer_value(json_object_get(pe, "column")), 15);
    assert_string_equal(json_string_value(json_object_get(r, "reason")),
                        "invalid UTF-8 at line 3, column 15 (the file must be UTF-8 encoded)");
    assert_int_equal(json_integer_value(json_object_get(r, "rows_read")), 1);
    json_decref(r);
    ingest_free(g);
    sink_free(&s);
}

static void test_vending_dataset_is_refused(void **state)
{
    (void)state;
    const char *path = SHARED_DIR "/datasets/coffee_vending_ihelon/index_1.csv";
    FILE *f = fopen(path, "rb");
    if (!f) {
        print_message("skipped: %s not readable\n", path);
        skip();
    }
    sink s;
    sink_init(&s);
    ingest_options o = {.on_error_quarantine = 1};
    ingest *g = ingest_new(&o, w_canonical, w_quarantine, &s);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0 && !ingest_done(g))
        assert_int_equal(ingest_feed(g, chunk, n), RST_OK);
    fclose(f);
    assert_true(ingest_done(g));
    assert_int_equal(ingest_finish(g), RST_OK);
    json_t *r = ingest_result_json(g);
    assert_true(json_is_true(json_object_get(r, "rejected")));
    assert_string_equal(json_string_value(json_object_get(r, "reason")),
                        "missing required columns: store_id, country, city, category, product, "
                        "quantity, unit_price");
    json_t *miss = json_object_get(json_object_get(r, "header"), "missing_columns");
    assert_int_equal(json_array_size(miss), 7);
    assert_int_equal(json_integer_value(json_object_get(r, "rows_read")), 0);
    assert_int_equal(s.canonical_calls, 0);
    assert_int_equal(s.quarantine_calls, 0);
    json_decref(r);
    ingest_free(g);
    sink_free(&s);
}

static void test_errors_kept_are_bounded(void **state)
{
    (void)state;
    buf_t in;
    buf_init(&in, 0);
    buf_puts(&in, "store,date,country,city,category,product,qty,price\n");
    for (int i = 0; i < 50; i++)
        buf_puts(&in, "S,2023-01-01,USA,A,Coffee,L,x,1\n");
    sink s;
    sink_init(&s);
    ingest_options o = {.on_error_quarantine = 1, .max_errors_kept = 10};
    json_t *r = run(in.data, in.len, 0, &o, &s);
    assert_int_equal(json_array_size(json_object_get(r, "errors")), 10);
    assert_true(json_is_true(json_object_get(r, "errors_truncated")));
    assert_int_equal(json_integer_value(json_object_get(r, "error_count")), 50);
    assert_int_equal(json_integer_value(json_object_get(r, "rows_rejected")), 50);
    json_decref(r);
    sink_free(&s);
    buf_free(&in);
}

static void test_write_failure_and_options(void **state)
{
    (void)state;
    sink s;
    sink_init(&s);
    s.fail_with = RST_EIO;
    ingest_options o = {.on_error_quarantine = 1};
    ingest *g = ingest_new(&o, w_canonical, w_quarantine, &s);
    assert_int_equal(ingest_feed(g, mixed, sizeof mixed - 1), RST_OK); /* buffered so far */
    assert_int_equal(ingest_finish(g), RST_EIO);
    assert_true(ingest_done(g));
    ingest_free(g);
    sink_free(&s);

    ingest_options bad = {.min_date = "2023-01-01", .max_date = "2022-01-01"};
    assert_null(ingest_new(&bad, w_canonical, w_quarantine, &s));
    bad.max_date = "tomorrow";
    assert_null(ingest_new(&bad, w_canonical, w_quarantine, &s));
    assert_null(ingest_new(NULL, w_canonical, w_quarantine, &s));
    ingest_free(NULL);

    /* a narrower date range and fewer daily keys from the options */
    sink_init(&s);
    ingest_options narrow = {
        .on_error_quarantine = 1, .min_date = "2023-01-16", .max_daily_keys = 1};
    json_t *r = run(mixed, sizeof mixed - 1, 0, &narrow, &s);
    assert_int_equal(json_integer_value(json_object_get(r, "rows_accepted")), 1);
    json_t *info = json_object_get(json_object_get(r, "profile"), "daily_totals_info");
    assert_int_equal(json_integer_value(json_object_get(info, "max_keys")), 1);
    json_decref(r);
    sink_free(&s);
}

/* Generates GloboJava-like rows into b starting at row i, until b holds about
 * `bytes`; returns the next row number. */
static size_t gen_rows(buf_t *b, size_t i, size_t until_row, size_t bytes)
{
    static const struct {
        const char *name, *category, *price;
        int cents;
    } products[] = {
        {"Caffe Latte", "Coffee", "4.50", 450},
        {"Cappuccino", "Coffee", "4.25", 425},
        {"Blueberry Muffin", "Pastry", "2.75", 275},
        {"Croissant", "Pastry", "2.50", 250},
        {"Iced Tea", "Beverage", "3.00", 300},
        {"\"Mug, Ceramic\"", "Merchandise", "12.00", 1200},
    };
    static const struct {
        const char *country, *city;
    } places[] = {
        {"USA", "Seattle"}, {"USA", "New York"}, {"Canada", "Toronto"}, {"Mexico", "Monterrey"}};
    static const char *weather[] = {"Sunny", "Rainy", "Snowy", "Cloudy", "Hot", "Cold"};
    while (i < until_row && b->len < bytes) {
        size_t p = i % 6, s = (i / 6) % 40, day = (i / 240) % 730, q = i % 9 + 1;
        int y = 2022 + (int)(day / 365), doy = (int)(day % 365);
        int m = doy / 31 + 1, d = doy % 28 + 1;
        buf_printf(b, "S%03zu,%d-%02d-%02d,%s,%s,%s,%s,%zu,%s,%zu.%02zu,%s,%s,%s\n", s, y,
                   m > 12 ? 12 : m, d, places[s % 4].country, places[s % 4].city,
                   products[p].category, products[p].name, q, products[p].price,
                   q * (size_t)products[p].cents / 100, q * (size_t)products[p].cents % 100,
                   weather[i % 6], i % 5 ? "No" : "Yes", i % 17 ? "No" : "Yes");
        i++;
    }
    return i;
}

/* Throughput of ingest_feed on a generated 1-million-row file: printed, not
 * asserted. Rows are generated in chunks outside the timed region. */
static void test_throughput_1m_rows(void **state)
{
    (void)state;
    const size_t rows = 1000000;
    sink s;
    sink_init(&s);
    s.count_only = 1;
    ingest_options o = {.on_error_quarantine = 1};
    ingest *g = ingest_new(&o, w_canonical, w_quarantine, &s);
    buf_t b;
    buf_init(&b, 0);
    buf_puts(&b, "Store ID,Date,Country,City,Product Category,Product,Quantity Sold,Price,"
                 "Total Sale,Weather,Promotion,Holiday\n");
    size_t i = 0, bytes = 0;
    double secs = 0;
    while (i < rows || b.len) {
        i = gen_rows(&b, i, rows, 1 << 20);
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        assert_int_equal(ingest_feed(g, b.data, b.len), RST_OK);
        if (i == rows)
            assert_int_equal(ingest_finish(g), RST_OK);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        secs += (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        bytes += b.len;
        b.len = 0;
        if (i == rows)
            break;
    }
    json_t *r = ingest_result_json(g);
    assert_int_equal(json_integer_value(json_object_get(r, "rows_accepted")), (json_int_t)rows);
    assert_int_equal(json_integer_value(json_object_get(r, "rows_rejected")), 0);
    printf("ingest_feed: %zu rows, %.1f MB in %.3f s: %.0f rows/s, %.1f MB/s (canonical %.1f MB, "
           "%zu daily keys)\n",
           rows, (double)bytes / 1e6, secs, (double)rows / secs, (double)bytes / 1e6 / secs,
           (double)s.canonical.len / 1e6, profile_daily_count(ingest_profile(g)));
    json_decref(r);
    ingest_free(g);
    buf_free(&b);
    s.canonical.len = 0;
    sink_free(&s);
}

/* Review 2026-12, finding 8: 2.75 M identical rows were all accepted. A version
 * holds at most max_rows data rows; one more rejects it whole, naming the limit. */
static void test_row_limit_rejects_the_version_naming_it(void **state)
{
    (void)state;
    buf_t in;
    buf_init(&in, 0);
    buf_puts(&in, "Store ID,Date,Country,City,Product Category,Product,Quantity Sold,Price,"
                  "Total Sale,Weather,Promotion,Holiday\n");
    for (int i = 0; i < 101; i++)
        buf_puts(&in, "S1,2023-01-15,USA,Seattle,Coffee,Caffe Latte,3,4.50,13.50,Sunny,No,Yes\n");
    size_t header_len = strcspn(in.data, "\n") + 1, row_len = (in.len - header_len) / 101;
    for (int quarantine = 0; quarantine < 2; quarantine++) {
        sink s;
        sink_init(&s);
        ingest_options o = {.on_error_quarantine = quarantine, .max_rows = 100};
        json_t *r = run(in.data, in.len, 7, &o, &s); /* 101 rows: one too many */
        assert_true(json_is_true(json_object_get(r, "rejected")));
        assert_non_null(strstr(json_string_value(json_object_get(r, "reason")),
                               "ROASTERY_MAX_ROWS_PER_VERSION"));
        json_t *lim = json_object_get(r, "limit");
        assert_string_equal(json_string_value(json_object_get(lim, "setting")),
                            "ROASTERY_MAX_ROWS_PER_VERSION");
        assert_int_equal(json_integer_value(json_object_get(lim, "value")), 100);
        json_t *p = json_object_get(r, "problem");
        assert_string_equal(json_string_value(json_object_get(p, "type")),
                            "https://roastery.dev/problems/upload-limit");
        assert_int_equal(json_integer_value(json_object_get(p, "status")), 413);
        assert_string_equal(json_string_value(json_object_get(p, "limit")),
                            "ROASTERY_MAX_ROWS_PER_VERSION");
        assert_int_equal(json_integer_value(json_object_get(r, "rows_read")), 100);
        json_decref(r);
        sink_free(&s);
    }
    /* exactly the limit is a version like any other */
    sink s;
    sink_init(&s);
    ingest_options o = {.max_rows = 100};
    json_t *r = run(in.data, in.len - row_len, 0, &o, &s);
    assert_false(json_is_true(json_object_get(r, "rejected")));
    assert_null(json_object_get(r, "limit"));
    assert_int_equal(json_integer_value(json_object_get(r, "rows_accepted")), 100);
    json_decref(r);
    sink_free(&s);
    buf_free(&in);
}

/* A limit enforced by the caller (bytes after gunzip, the ratio) stops the
 * ingest: later input is ignored and the first rejection stands. */
static void test_refused_by_the_caller_ignores_the_rest(void **state)
{
    (void)state;
    sink s;
    sink_init(&s);
    ingest_options o = {.on_error_quarantine = 1};
    ingest *g = ingest_new(&o, w_canonical, w_quarantine, &s);
    assert_int_equal(ingest_feed(g, mixed, 200), RST_OK);
    assert_false(ingest_done(g));
    ingest_refuse(g, "ROASTERY_MAX_DECOMPRESSED_BYTES", 200,
                  "too big (ROASTERY_MAX_DECOMPRESSED_BYTES)");
    ingest_refuse(g, "ROASTERY_MAX_COMPRESSION_RATIO", 100, "second");
    assert_true(ingest_done(g));
    assert_int_equal(ingest_feed(g, mixed + 200, sizeof mixed - 201), RST_OK);
    assert_int_equal(ingest_finish(g), RST_OK);
    assert_true(ingest_rejected(g));
    json_t *r = ingest_result_json(g);
    assert_string_equal(json_string_value(json_object_get(r, "reason")),
                        "too big (ROASTERY_MAX_DECOMPRESSED_BYTES)");
    assert_string_equal(json_string_value(json_object_get(json_object_get(r, "limit"), "setting")),
                        "ROASTERY_MAX_DECOMPRESSED_BYTES");
    assert_int_equal(json_integer_value(json_object_get(r, "rows_read")), 1);
    json_decref(r);
    ingest_free(g);
    sink_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quarantine_policy),
        cmocka_unit_test(test_reject_policy),
        cmocka_unit_test(test_any_chunking_same_outcome),
        cmocka_unit_test(test_unusable_files),
        cmocka_unit_test(test_vending_dataset_is_refused),
        cmocka_unit_test(test_errors_kept_are_bounded),
        cmocka_unit_test(test_write_failure_and_options),
        cmocka_unit_test(test_row_limit_rejects_the_version_naming_it),
        cmocka_unit_test(test_refused_by_the_caller_ignores_the_rest),
        cmocka_unit_test(test_throughput_1m_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
