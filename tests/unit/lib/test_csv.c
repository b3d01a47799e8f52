/* csv: RFC 4180 details, chunking at every boundary, limits, UTF-8, speed. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/csv.h"
#include "lib/util.h"

/* Records rendered as text: "L<line>[<field>|<field>]{raw}\n", bytes escaped. */
typedef struct {
    buf_t out;
    int stop_after; /* return 42 after this many records (0 = never) */
    int seen;
} collect;

static void esc(buf_t *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\r')
            buf_puts(b, "\\r");
        else if (c == '\n')
            buf_puts(b, "\\n");
        else if (c == '|' || c == '\\' || c == '[' || c == ']' || c == '{' || c == '}')
            buf_printf(b, "\\%c", c);
        else
            buf_append(b, &c, 1);
    }
}

static int on_rec(void *arg, const csv_record *r)
{
    collect *c = arg;
    buf_printf(&c->out, "L%llu[", (unsigned long long)r->line);
    for (size_t i = 0; i < r->count; i++) {
        if (i)
            buf_puts(&c->out, "|");
        esc(&c->out, r->fields[i].data, r->fields[i].len);
        assert_int_equal(r->fields[i].data[r->fields[i].len], '\0');
    }
    buf_puts(&c->out, "]");
    if (r->raw) {
        buf_puts(&c->out, "{");
        esc(&c->out, r->raw, r->raw_len);
        buf_puts(&c->out, "}");
    }
    buf_puts(&c->out, "\n");
    c->seen++;
    return c->stop_after && c->seen >= c->stop_after ? 42 : 0;
}

/* Parses s split at the given cut points; returns the rendering (caller frees)
 * and the final status in *rc. */
static char *parse_cuts(const char *s, size_t n, const size_t *cuts, size_t ncuts,
                        const csv_limits *lim, int *rc, csv_error *err)
{
    collect c;
    memset(&c, 0, sizeof c);
    buf_init(&c.out, 0);
    buf_puts(&c.out, "");
    csv_parser *p = csv_new(lim, on_rec, &c);
    size_t at = 0;
    int r = RST_OK;
    for (size_t i = 0; i <= ncuts && r == RST_OK; i++) {
        size_t to = i < ncuts ? cuts[i] : n;
        r = csv_feed(p, s + at, to - at);
        at = to;
    }
    if (r == RST_OK)
        r = csv_finish(p);
    *rc = r;
    if (err) {
        const csv_error *e = csv_get_error(p);
        memset(err, 0, sizeof *err);
        if (e)
            *err = *e;
    }
    csv_free(p);
    return c.out.data;
}

static char *parse_all(const char *s, const csv_limits *lim, int *rc, csv_error *err)
{
    return parse_cuts(s, strlen(s), NULL, 0, lim, rc, err);
}

static const csv_limits raw_lim = {.keep_raw = 1};

static const char tricky[] = "\xEF\xBB\xBF"
                             "name,\"quoted, comma\",x\r\n"
                             "\"multi\r\nline\",\"say \"\"hi\"\"\",\n"
                             "\n"
                             "caf\xC3\xA9,\xE2\x82\xAC,\xF0\x9F\x98\x80,\"\xC3\xA9\"\r\n"
                             "\r\n"
                             "\"\",,\n"
                             "ab\"c,\"x\"\r"
                             "last,line";

static const char tricky_expected[] =
    "L1[name|quoted, comma|x]{name,\"quoted, comma\",x}\n"
    "L2[multi\\r\\nline|say \"hi\"|]{\"multi\\r\\nline\",\"say \"\"hi\"\"\",}\n"
    "L5[caf\xC3\xA9|\xE2\x82\xAC|\xF0\x9F\x98\x80|\xC3\xA9]{caf\xC3\xA9,\xE2\x82\xAC,\xF0\x9F\x98"
    "\x80,\"\xC3\xA9\"}\n"
    "L7[||]{\"\",,}\n"
    "L8[ab\"c|x]{ab\"c,\"x\"}\n"
    "L9[last|line]{last,line}\n";

static void test_tricky_whole(void **state)
{
    (void)state;
    int rc;
    char *got = parse_all(tricky, &raw_lim, &rc, NULL);
    assert_int_equal(rc, RST_OK);
    assert_string_equal(got, tricky_expected);
    free(got);
}

static void test_every_chunk_boundary(void **state)
{
    (void)state;
    size_t n = sizeof tricky - 1;
    int rc;
    /* one cut anywhere, two cuts anywhere */
    for (size_t i = 0; i <= n; i++) {
        for (size_t j = i; j <= n; j++) {
            size_t cuts[2] = {i, j};
            char *got = parse_cuts(tricky, n, cuts, 2, &raw_lim, &rc, NULL);
            assert_int_equal(rc, RST_OK);
            if (strcmp(got, tricky_expected))
                fail_msg("cuts at %zu and %zu:\n%s", i, j, got);
            free(got);
        }
    }
    /* byte by byte */
    size_t *cuts = malloc(n * sizeof *cuts);
    for (size_t i = 0; i < n; i++)
        cuts[i] = i;
    char *got = parse_cuts(tricky, n, cuts, n, &raw_lim, &rc, NULL);
    assert_int_equal(rc, RST_OK);
    assert_string_equal(got, tricky_expected);
    free(got);
    /* without raw text the fields are the same */
    got = parse_cuts(tricky, n, cuts, n, NULL, &rc, NULL);
    assert_int_equal(rc, RST_OK);
    assert_non_null(strstr(got, "L2[multi\\r\\nline|say \"hi\"|]\n"));
    free(got);
    free(cuts);
}

static void test_line_ends_and_empty_lines(void **state)
{
    (void)state;
    int rc;
    char *got = parse_all("\n\r\n\na,b\n\n\nc\rd\r\n\r\n", NULL, &rc, NULL);
    assert_int_equal(rc, RST_OK);
    assert_string_equal(got, "L4[a|b]\nL7[c]\nL8[d]\n");
    free(got);
    got = parse_all("", NULL, &rc, NULL);
    assert_int_equal(rc, RST_OK);
    assert_string_equal(got, "");
    free(got);
    got = parse_all("\xEF\xBB\xBF", NULL, &rc, NULL); /* only a BOM */
    assert_int_equal(rc, RST_OK);
    assert_string_equal(got, "");
    free(got);
    got = parse_all("x", NULL, &rc, NULL); /* no line end at all */
    assert_int_equal(rc, RST_OK);
    assert_string_equal(got, "L1[x]\n");
    free(got);
    got = parse_all("a,", NULL, &rc, NULL); /* a last empty field */
    assert_int_equal(rc, RST_OK);
    assert_string_equal(got, "L1[a|]\n");
    free(got);
    got = parse_all("\"a\"\"\"", NULL, &rc, NULL); /* ends right after a doubled quote */
    assert_int_equal(rc, RST_OK);
    assert_string_equal(got, "L1[a\"]\n");
    free(got);
    got = parse_all(" a , b ", NULL, &rc, NULL); /* spaces are data */
    assert_int_equal(rc, RST_OK);
    assert_string_equal(got, "L1[ a | b ]\n");
    free(got);
}

static void test_bad_quotes(void **state)
{
    (void)state;
    int rc;
    csv_error e;
    char *got = parse_all("a,b\n\"ab\"c,d\n", NULL, &rc, &e);
    assert_int_equal(rc, RST_EINVAL);
    assert_int_equal(e.line, 2);
    assert_int_equal(e.column, 5);
    assert_non_null(strstr(e.message, "unexpected character after a closing quote at line 2"));
    assert_string_equal(got, "L1[a|b]\n");
    free(got);

    got = parse_all("a\nx,\"never\nclosed\n", NULL, &rc, &e);
    assert_int_equal(rc, RST_EINVAL);
    assert_int_equal(e.line, 2);
    assert_int_equal(e.column, 3);
    assert_string_equal(e.message, "the quoted field opened at line 2, column 3 is never closed");
    free(got);
}

static void test_limits(void **state)
{
    (void)state;
    int rc;
    csv_error e;
    csv_limits lim = {.max_field_bytes = 5};
    char *got = parse_all("abcde,x\n\"ab\"\"cd\"\nabcdef\n", &lim, &rc, &e);
    assert_int_equal(rc, RST_ETOOBIG);
    assert_string_equal(e.message, "field 1 of the record at line 3 is longer than 5 bytes");
    assert_string_equal(got, "L1[abcde|x]\nL2[ab\"cd]\n");
    free(got);

    lim = (csv_limits){.max_fields = 3};
    got = parse_all("a,b,c\n\n1,2,3,4\n", &lim, &rc, &e);
    assert_int_equal(rc, RST_ETOOBIG);
    assert_int_equal(e.line, 3);
    assert_string_equal(e.message, "the record at line 3 has more than 3 fields");
    free(got);

    lim = (csv_limits){.max_record_bytes = 8, .keep_raw = 1};
    got = parse_all("abc,def\n\"a\",\"b\",\"c\"\n", &lim, &rc, &e);
    assert_int_equal(rc, RST_ETOOBIG);
    assert_string_equal(e.message, "the record at line 2 is longer than 8 bytes");
    free(got);

    /* a huge field is refused long before it is all read: chunk by chunk */
    lim = (csv_limits){.max_field_bytes = 1000};
    collect c;
    memset(&c, 0, sizeof c);
    buf_init(&c.out, 0);
    csv_parser *p = csv_new(&lim, on_rec, &c);
    char chunk[600];
    memset(chunk, 'x', sizeof chunk);
    assert_int_equal(csv_feed(p, chunk, sizeof chunk), RST_OK);
    assert_int_equal(csv_feed(p, chunk, sizeof chunk), RST_ETOOBIG);
    assert_int_equal(csv_feed(p, "\n", 1), RST_ETOOBIG); /* stays stopped */
    assert_int_equal(csv_finish(p), RST_ETOOBIG);
    assert_non_null(csv_get_error(p));
    csv_free(p);
    buf_free(&c.out);
}

/* Found by fuzz_csv: a field both too long and holding invalid UTF-8 gave a
 * different error depending on chunking. The first problem in the input wins. */
static void test_first_problem_wins_whatever_the_chunking(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        int rc;
        const char *message;
    } cases[] = {
        {"x,abcdefgh\xFF\n", RST_ETOOBIG, "field 2 of the record at line 1 is longer than 5 bytes"},
        {"x,ab\xFF"
         "cdefgh\n",
         RST_EINVAL, "invalid UTF-8 at line 1, column 5 (the file must be UTF-8 encoded)"},
        /* a character crossing the limit is too long, valid or not */
        {"abcd\xC3\xA9\n", RST_ETOOBIG, "field 1 of the record at line 1 is longer than 5 bytes"},
        {"abcd\xC3(\n", RST_ETOOBIG, "field 1 of the record at line 1 is longer than 5 bytes"},
        {"\"abcde\"\"\"\n", RST_ETOOBIG, "field 1 of the record at line 1 is longer than 5 bytes"},
        {"\"abcde\"\n", RST_OK, ""},
        {"abcde,abcde,\"ab\"\n", RST_ETOOBIG, "the record at line 1 is longer than 14 bytes"},
        {"abcde,abcde,a\xFF\n", RST_EINVAL,
         "invalid UTF-8 at line 1, column 14 (the file must be UTF-8 encoded)"},
        {"abcde,abcde,ab\n", RST_OK, ""},
    };
    csv_limits lim = {.max_field_bytes = 5, .max_record_bytes = 14, .keep_raw = 1};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = strlen(cases[i].in);
        for (size_t cut = 0; cut <= n; cut++) {
            int rc;
            csv_error e;
            char *got = parse_cuts(cases[i].in, n, &cut, 1, &lim, &rc, &e);
            if (rc != cases[i].rc || strcmp(e.message, cases[i].message))
                fail_msg("case %zu cut %zu: rc %d: %s", i, cut, rc, e.message);
            free(got);
        }
    }
}

static void test_invalid_utf8(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        unsigned line, column;
    } cases[] = {
        {"ok\nab\xC3(,x\n", 2, 3},       /* lead byte without continuation */
        {"a,\xC0\xAF\n", 1, 3},          /* overlong */
        {"\"q\n\xED\xA0\x80\"\n", 2, 1}, /* surrogate, inside quotes on line 2 */
        {"abc\xF4\x90\x80\x80\n", 1, 4}, /* above U+10FFFF */
        {"x\n\x80\n", 2, 1},             /* stray continuation byte */
        {"\xEF\xBBx\n", 1, 1},           /* a BOM that is not one */
        {"a,b\nc,d\xE2\x82", 2, 4},      /* cut at the end of the input */
        {"\xFF", 1, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = strlen(cases[i].in);
        for (size_t cut = 0; cut <= n; cut++) {
            int rc;
            csv_error e;
            char *got = parse_cuts(cases[i].in, n, &cut, 1, NULL, &rc, &e);
            if (rc != RST_EINVAL || e.line != cases[i].line || e.column != cases[i].column)
                fail_msg("case %zu cut %zu: rc %d at %llu:%llu (%s)", i, cut, rc,
                         (unsigned long long)e.line, (unsigned long long)e.column, e.message);
            assert_non_null(strstr(e.message, "invalid UTF-8 at line"));
            free(got);
        }
    }
}

static void test_callback_stops(void **state)
{
    (void)state;
    collect c;
    memset(&c, 0, sizeof c);
    buf_init(&c.out, 0);
    c.stop_after = 2;
    csv_parser *p = csv_new(NULL, on_rec, &c);
    assert_int_equal(csv_feed(p, "a\nb\nc\n", 6), 42);
    assert_int_equal(csv_feed(p, "d\n", 2), 42);
    assert_int_equal(csv_finish(p), 42);
    assert_null(csv_get_error(p));
    assert_int_equal(csv_records(p), 2);
    assert_string_equal(c.out.data, "L1[a]\nL2[b]\n");
    csv_free(p);
    buf_free(&c.out);

    p = csv_new(NULL, on_rec, &c);
    assert_int_equal(csv_finish(p), RST_OK);
    assert_int_equal(csv_feed(p, "a", 1), RST_EINVAL); /* after the end */
    csv_free(p);
}

static int count_only(void *arg, const csv_record *r)
{
    size_t *n = arg;
    *n += r->count;
    return 0;
}

/* Typical sales CSV through the parser alone; printed, not asserted. */
static void test_throughput(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b, 0);
    buf_puts(&b, "date,store_id,country,city,category,product,quantity,unit_price,total,weather,"
                 "promotion,holiday\n");
    static const char *products[] = {"Caffe Latte",      "Blueberry Muffin", "Espresso",
                                     "\"Mocha, Large\"", "Cold Brew",        "Travel Mug"};
    size_t rows = 0;
    while (b.len < 64u * 1024 * 1024) {
        buf_printf(&b,
                   "2023-%02zu-%02zu,S%03zu,USA,Seattle,Coffee,%s,%zu,4.50,%zu.00,Sunny,No,Yes\n",
                   rows % 12 + 1, rows % 28 + 1, rows % 200, products[rows % 6], rows % 9 + 1,
                   (rows % 9 + 1) * 4);
        rows++;
    }
    for (int raw = 0; raw < 2; raw++) {
        size_t fields = 0;
        csv_limits lim = {.keep_raw = raw};
        csv_parser *p = csv_new(&lim, count_only, &fields);
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (size_t at = 0; at < b.len; at += 256 * 1024) {
            size_t n = b.len - at < 256 * 1024 ? b.len - at : 256 * 1024;
            assert_int_equal(csv_feed(p, b.data + at, n), RST_OK);
        }
        assert_int_equal(csv_finish(p), RST_OK);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        assert_int_equal(fields, (rows + 1) * 12);
        printf("csv_feed%s: %zu rows, %.1f MB in %.3f s: %.0f MB/s, %.2f M rows/s\n",
               raw ? " (keep_raw)" : "", rows, (double)b.len / 1e6, s, (double)b.len / 1e6 / s,
               (double)rows / 1e6 / s);
        csv_free(p);
    }
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tricky_whole),
        cmocka_unit_test(test_every_chunk_boundary),
        cmocka_unit_test(test_line_ends_and_empty_lines),
        cmocka_unit_test(test_bad_quotes),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_first_problem_wins_whatever_the_chunking),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_callback_stops),
        cmocka_unit_test(test_throughput),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
