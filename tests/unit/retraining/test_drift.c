/* drift: the population stability index against known values, reference
 * bins, the compared window, and whole reports over small canonical files in
 * a file artifact store (no change, a doubled series, a mix shift). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "retraining/drift.h"
#include "datasets/sales.h"
#include "lib/util.h"

static void test_psi_known_values(void **state)
{
    (void)state;
    double a[] = {25, 25, 25, 25}, b[] = {10, 20, 30, 40};
    assert_float_equal(drift_psi(a, b, 4), 0.2282174096, 1e-9);
    double c[] = {50, 50}, d[] = {5, 5}; /* same shares, other totals */
    assert_float_equal(drift_psi(c, d, 2), 0.0, 1e-12);
    double e[] = {100, 0}, f[] = {90, 10}; /* an empty reference bin is floored at 1e-4 */
    assert_float_equal(drift_psi(e, f, 2), 0.7006208039, 1e-9);
    double g[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, h[] = {10, 9, 8, 7, 6, 5, 4, 3, 2, 1};
    assert_float_equal(drift_psi(g, h, 10), 1.3824408291, 1e-9);
    assert_float_equal(drift_psi(h, g, 10), 1.3824408291, 1e-9); /* symmetric */
    double z[] = {0, 0};
    assert_float_equal(drift_psi(z, f, 2), 0.0, 1e-12);
}

static void test_edges_from_reference(void **state)
{
    (void)state;
    double v[100], edges[10];
    for (int i = 0; i < 100; i++)
        v[i] = i + 1;
    size_t n = drift_edges(v, 100, 10, edges);
    assert_int_equal(n, 9);
    assert_float_equal(edges[0], 10, 0);
    assert_float_equal(edges[8], 90, 0);
    /* heavy ties collapse to distinct edges */
    double t[10] = {1, 1, 1, 1, 1, 1, 1, 2, 2, 3};
    n = drift_edges(t, 10, 10, edges);
    assert_int_equal(n, 2);
    assert_float_equal(edges[0], 1, 0);
    assert_float_equal(edges[1], 2, 0);
    double one[3] = {5, 5, 5};
    assert_int_equal(drift_edges(one, 3, 10, edges), 0);
}

static void test_window(void **state)
{
    (void)state;
    drift_options o = {.ref_first = 0, .ref_last = 729, .cur_first = 0, .cur_last = 819};
    int32_t a, b;
    drift_window(&o, &a, &b); /* 90 new days: all of them */
    assert_int_equal(a, 730);
    assert_int_equal(b, 819);
    o.cur_last = 740; /* 11 new days: too few, the last 90 */
    drift_window(&o, &a, &b);
    assert_int_equal(a, 651);
    o.cur_first = 700;
    drift_window(&o, &a, &b);
    assert_int_equal(a, 700);
    o = (drift_options){.ref_first = 0, .ref_last = 100, .cur_first = 0, .cur_last = 2000};
    drift_window(&o, &a, &b); /* at most a year */
    assert_int_equal(a, 2000 - 364);
}

/* ---- whole reports over files ------------------------------------------------------------- */

static char tmpdir[64];
static artifact_store *store;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)flag;
    (void)f;
    return remove(path);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/roastery-drift-XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    char url[128], err[200];
    snprintf(url, sizeof url, "file://%s", tmpdir);
    return artifacts_open(url, NULL, &store, err, sizeof err);
}

static int teardown(void **state)
{
    (void)state;
    artifacts_close(store);
    nftw(tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    return 0;
}

/* Writes days [0, days) from 2022-01-01 for stores S1, S2 x Latte, Mocha:
 * quantity 10 + weekday; from day `from` on, Latte at S1 sells factor times
 * as much and, when promo, every row is on promotion. */
static void write_csv(const char *key, int days, int from, double factor, int promo)
{
    artifact_writer *w = NULL;
    assert_int_equal(artifacts_writer_open(store, key, &w), RST_OK);
    buf_t b;
    buf_init(&b, 0);
    buf_puts(&b, SALES_CANONICAL_HEADER "\n");
    int32_t d0 = util_days_from_civil(2022, 1, 1);
    static const char *const stores[] = {"S1", "S2"}, *const products[] = {"Latte", "Mocha"};
    for (int d = 0; d < days; d++) {
        char date[11];
        sales_format_date(d0 + d, date);
        for (int s = 0; s < 2; s++)
            for (int p = 0; p < 2; p++) {
                long q = 10 + (d0 + d + 4) % 7;
                if (d >= from && s == 0 && p == 0)
                    q = (long)(q * factor);
                int on = d >= from && promo;
                buf_printf(&b, "%s,%s,USA,Seattle,Coffee,%s,%ld,4.00,%ld.00,Sunny,%s,No\n", date,
                           stores[s], products[p], q, q * 4, on ? "Yes" : "No");
            }
    }
    assert_int_equal(artifacts_writer_write(w, b.data, b.len), RST_OK);
    char sha[65];
    uint64_t size;
    assert_int_equal(artifacts_writer_commit(w, sha, &size), RST_OK);
    buf_free(&b);
}

static json_t *feature(json_t *report, const char *name)
{
    size_t i;
    json_t *f;
    json_array_foreach(
        json_object_get(report, "features"), i,
        f) if (!strcmp(json_string_value(json_object_get(f, "feature")), name)) return f;
    fail_msg("no feature %s", name);
    return NULL;
}

static double psi_of(json_t *report, const char *name)
{
    return json_real_value(json_object_get(feature(report, name), "psi"));
}

static void test_reports(void **state)
{
    (void)state;
    write_csv("ref.csv", 400, 400, 1, 0);
    write_csv("same.csv", 460, 460, 1, 0);
    write_csv("doubled.csv", 460, 400, 2, 0);
    write_csv("promo.csv", 460, 400, 1, 1);
    int32_t d0 = util_days_from_civil(2022, 1, 1);
    drift_options o = {
        .ref_first = d0, .ref_last = d0 + 399, .cur_first = d0, .cur_last = d0 + 459};
    json_t *r = NULL;
    double max_psi = -1;
    char err[200] = "";

    /* the same process, 60 more days: nothing moves */
    assert_int_equal(drift_compare(store, "ref.csv", "same.csv", &o, &r, &max_psi, err, sizeof err),
                     RST_OK);
    assert_true(max_psi < 0.05);
    assert_false(json_is_true(json_object_get(r, "drifted")));
    json_t *w = json_object_get(r, "window");
    assert_string_equal(json_string_value(json_object_get(w, "first_date")), "2023-02-05");
    assert_int_equal(json_integer_value(json_object_get(w, "days")), 60);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(r, "reference"), "rows")),
                     1600);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(r, "current"), "rows")),
                     240);
    json_t *ls = json_object_get(r, "level_shift");
    assert_string_equal(json_string_value(json_object_get(ls, "baseline")),
                        "same_window_last_year");
    assert_int_equal(json_integer_value(json_object_get(ls, "series")), 4);
    assert_int_equal(json_integer_value(json_object_get(ls, "shifted")), 0);
    assert_int_equal(json_array_size(json_object_get(ls, "top")), 0);
    json_decref(r);

    /* one series doubles: it leads the level shifts, quantity and the mixes move */
    assert_int_equal(
        drift_compare(store, "ref.csv", "doubled.csv", &o, &r, &max_psi, err, sizeof err), RST_OK);
    ls = json_object_get(r, "level_shift");
    assert_int_equal(json_integer_value(json_object_get(ls, "shifted")), 1);
    json_t *top = json_array_get(json_object_get(ls, "top"), 0);
    assert_string_equal(json_string_value(json_object_get(top, "store_id")), "S1");
    assert_string_equal(json_string_value(json_object_get(top, "product")), "Latte");
    assert_float_equal(json_real_value(json_object_get(top, "relative_change")), 1.0, 0.02);
    assert_true(psi_of(r, "quantity") > 0.2);
    assert_true(psi_of(r, "product_mix") > 0.01);
    assert_true(psi_of(r, "store_mix") > 0.01);
    assert_true(psi_of(r, "weather") < 1e-9);
    assert_true(max_psi > 0.2);
    assert_true(json_is_true(json_object_get(r, "drifted")));
    assert_string_equal(json_string_value(json_object_get(r, "max_psi_feature")), "quantity");
    json_decref(r);

    /* a threshold above it: reported, not drifted */
    o.psi_threshold = 50;
    assert_int_equal(
        drift_compare(store, "ref.csv", "doubled.csv", &o, &r, &max_psi, err, sizeof err), RST_OK);
    assert_false(json_is_true(json_object_get(r, "drifted")));
    json_decref(r);
    o.psi_threshold = 0;

    /* everything on promotion: the promotion rate's PSI is large, levels unchanged */
    assert_int_equal(
        drift_compare(store, "ref.csv", "promo.csv", &o, &r, &max_psi, err, sizeof err), RST_OK);
    assert_true(psi_of(r, "promotion") > 5);
    assert_string_equal(json_string_value(json_object_get(r, "max_psi_feature")), "promotion");
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(r, "level_shift"), "shifted")), 0);
    json_decref(r);

    /* a missing file */
    assert_int_equal(drift_compare(store, "ref.csv", "nope.csv", &o, &r, &max_psi, err, sizeof err),
                     RST_ENOTFOUND);
    assert_null(r);
    assert_non_null(strstr(err, "nope.csv"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_psi_known_values),
        cmocka_unit_test(test_edges_from_reference),
        cmocka_unit_test(test_window),
        cmocka_unit_test_setup_teardown(test_reports, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
