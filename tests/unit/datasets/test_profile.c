/* profile: counts, ranges, distinct values with bounds, exact and sampled
 * quantiles, daily totals with truncation. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datasets/profile.h"
#include "datasets/sales.h"
#include "lib/util.h"

static sales_row row(const char *date, const char *store, const char *city, const char *product,
                     sales_category cat, int64_t qty, int64_t price_cents)
{
    sales_row r;
    memset(&r, 0, sizeof r);
    assert_int_equal(sales_parse_date(date, strlen(date), &r.date), RST_OK);
    r.store_id = (sales_str){store, strlen(store)};
    r.city = (sales_str){city, strlen(city)};
    r.product = (sales_str){product, strlen(product)};
    r.country = SALES_COUNTRY_USA;
    r.category = cat;
    r.quantity = qty;
    r.unit_price_cents = price_cents;
    r.total_cents = qty * price_cents;
    r.total_given = 1;
    r.weather = SALES_WEATHER_SUNNY;
    r.promotion = 0;
    r.holiday = 0;
    return r;
}

static json_t *path(json_t *o, const char *a, const char *b, const char *c)
{
    o = json_object_get(o, a);
    if (b)
        o = json_object_get(o, b);
    if (c)
        o = json_object_get(o, c);
    return o;
}

static void test_small_profile(void **state)
{
    (void)state;
    profile_t *p = profile_new(NULL);
    sales_row r = row("2023-01-02", "S1", "Seattle", "Latte", SALES_CATEGORY_COFFEE, 2, 450);
    profile_add(p, &r);
    r = row("2023-01-02", "S1", "Seattle", "Latte", SALES_CATEGORY_COFFEE, 3, 450);
    r.weather = SALES_WEATHER_NONE;
    r.total_given = 0;
    profile_add(p, &r);
    r = row("2022-12-30", "S2", "Toronto", "Muffin", SALES_CATEGORY_PASTRY, 1, 275);
    r.country = SALES_COUNTRY_CANADA;
    r.promotion = -1;
    profile_add(p, &r);
    r = row("2023-01-05", "S1", "Seattle", "Muffin", SALES_CATEGORY_PASTRY, 4, 275);
    r.holiday = -1;
    profile_add(p, &r);
    assert_int_equal(profile_rows(p), 4);

    json_t *j = profile_to_json(p);
    assert_int_equal(json_integer_value(json_object_get(j, "rows")), 4);
    assert_string_equal(json_string_value(path(j, "date_range", "min", NULL)), "2022-12-30");
    assert_string_equal(json_string_value(path(j, "date_range", "max", NULL)), "2023-01-05");
    assert_int_equal(json_integer_value(path(j, "date_range", "days", NULL)), 7);

    json_t *stores = path(j, "distinct", "store_id", NULL);
    assert_int_equal(json_integer_value(json_object_get(stores, "count")), 2);
    assert_false(json_is_true(json_object_get(stores, "more")));
    json_t *first = json_array_get(json_object_get(stores, "values"), 0);
    assert_string_equal(json_string_value(json_object_get(first, "value")), "S1");
    assert_int_equal(json_integer_value(json_object_get(first, "count")), 3);
    json_t *countries = json_object_get(path(j, "distinct", "country", NULL), "values");
    assert_int_equal(json_array_size(countries), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(countries, 0), "value")),
                        "USA");
    assert_int_equal(json_integer_value(path(j, "distinct", "category", "count")), 2);
    assert_int_equal(json_integer_value(path(j, "category_frequencies", "Pastry", NULL)), 2);
    assert_int_equal(json_integer_value(path(j, "category_frequencies", "Beverage", NULL)), 0);

    assert_int_equal(json_integer_value(path(j, "missing", "weather", NULL)), 1);
    assert_int_equal(json_integer_value(path(j, "missing", "total", NULL)), 1);
    assert_int_equal(json_integer_value(path(j, "missing", "promotion", NULL)), 1);
    assert_int_equal(json_integer_value(path(j, "missing", "holiday", NULL)), 1);
    assert_int_equal(json_integer_value(path(j, "missing", "city", NULL)), 0);

    json_t *q = path(j, "numeric", "quantity", NULL);
    assert_int_equal(json_integer_value(json_object_get(q, "min")), 1);
    assert_int_equal(json_integer_value(json_object_get(q, "max")), 4);
    assert_int_equal(json_integer_value(json_object_get(q, "sum")), 10);
    assert_string_equal(json_string_value(json_object_get(q, "mean")), "2.50");
    assert_int_equal(json_integer_value(json_object_get(q, "p50")), 2);
    assert_int_equal(json_integer_value(json_object_get(q, "p95")), 4);
    json_t *price = path(j, "numeric", "unit_price", NULL);
    assert_string_equal(json_string_value(json_object_get(price, "min")), "2.75");
    assert_string_equal(json_string_value(json_object_get(price, "max")), "4.50");
    assert_string_equal(json_string_value(json_object_get(price, "mean")), "3.63"); /* 3.625 */
    assert_string_equal(json_string_value(path(j, "numeric", "total", "sum")), "36.25");
    assert_string_equal(json_string_value(path(j, "quantiles", "method", NULL)), "exact");

    /* daily totals: (2023-01-02, S1, Latte) aggregates two rows */
    assert_int_equal(json_integer_value(path(j, "daily_totals_info", "keys", NULL)), 3);
    json_t *d0 = json_array_get(json_object_get(j, "daily_totals"), 0);
    assert_string_equal(json_string_value(json_object_get(d0, "date")), "2023-01-02");
    assert_string_equal(json_string_value(json_object_get(d0, "store_id")), "S1");
    assert_string_equal(json_string_value(json_object_get(d0, "product")), "Latte");
    assert_int_equal(json_integer_value(json_object_get(d0, "quantity")), 5);
    assert_string_equal(json_string_value(json_object_get(d0, "total")), "22.50");
    assert_int_equal(json_integer_value(json_object_get(d0, "rows")), 2);
    json_decref(j);

    j = profile_to_json_ex(p, 0);
    assert_null(json_object_get(j, "daily_totals"));
    assert_non_null(json_object_get(j, "daily_totals_info"));
    json_decref(j);
    profile_free(p);
}

static void test_empty_profile(void **state)
{
    (void)state;
    profile_t *p = profile_new(NULL);
    json_t *j = profile_to_json(p);
    assert_int_equal(json_integer_value(json_object_get(j, "rows")), 0);
    assert_true(json_is_null(json_object_get(j, "date_range")));
    assert_null(json_object_get(j, "numeric"));
    assert_int_equal(json_array_size(json_object_get(j, "daily_totals")), 0);
    char *s = json_dumps(j, 0);
    assert_non_null(s);
    free(s);
    json_decref(j);
    profile_free(p);
}

static void test_exact_quantiles(void **state)
{
    (void)state;
    profile_t *p = profile_new(NULL);
    for (int i = 100; i >= 1; i--) { /* order must not matter */
        sales_row r = row("2023-01-01", "S", "C", "P", SALES_CATEGORY_COFFEE, i, i * 100);
        profile_add(p, &r);
    }
    json_t *j = profile_to_json_ex(p, 0);
    json_t *q = path(j, "numeric", "quantity", NULL);
    assert_int_equal(json_integer_value(json_object_get(q, "p05")), 5);
    assert_int_equal(json_integer_value(json_object_get(q, "p25")), 25);
    assert_int_equal(json_integer_value(json_object_get(q, "p50")), 50);
    assert_int_equal(json_integer_value(json_object_get(q, "p75")), 75);
    assert_int_equal(json_integer_value(json_object_get(q, "p95")), 95);
    assert_string_equal(json_string_value(path(j, "numeric", "unit_price", "p25")), "25.00");
    assert_string_equal(json_string_value(path(j, "numeric", "total", "max")), "10000.00");
    json_decref(j);
    profile_free(p);
}

static void test_reservoir_beyond_the_bound(void **state)
{
    (void)state;
    profile_limits lim = {.exact_quantile_rows = 1000};
    profile_t *p = profile_new(&lim);
    for (int i = 1; i <= 20000; i++) {
        sales_row r = row("2023-01-01", "S", "C", "P", SALES_CATEGORY_COFFEE, i, 100);
        profile_add(p, &r);
    }
    json_t *j = profile_to_json_ex(p, 0);
    assert_string_equal(json_string_value(path(j, "quantiles", "method", NULL)),
                        "reservoir_sample");
    assert_int_equal(json_integer_value(path(j, "quantiles", "sample_size", NULL)), 1000);
    assert_int_equal(json_integer_value(path(j, "quantiles", "rows", NULL)), 20000);
    json_int_t p50 = json_integer_value(path(j, "numeric", "quantity", "p50"));
    json_int_t p95 = json_integer_value(path(j, "numeric", "quantity", "p95"));
    assert_true(p50 > 9000 && p50 < 11000);
    assert_true(p95 > 18000 && p95 <= 20000);
    /* min/max/mean stay exact */
    assert_int_equal(json_integer_value(path(j, "numeric", "quantity", "max")), 20000);
    assert_string_equal(json_string_value(path(j, "numeric", "quantity", "mean")), "10000.50");
    json_decref(j);
    profile_free(p);
}

static int collect_daily(void *arg, const profile_daily *d)
{
    buf_t *b = arg;
    return buf_printf(b, "%s %s %s %lld %lld %llu\n", d->date, d->store_id, d->product,
                      (long long)d->quantity, (long long)d->total_cents,
                      (unsigned long long)d->rows);
}

static int stop_at_two(void *arg, const profile_daily *d)
{
    (void)d;
    int *n = arg;
    return ++*n == 2 ? 7 : 0;
}

static int to_buf(void *arg, const char *data, size_t len)
{
    return buf_append(arg, data, len);
}

static void test_daily_csv(void **state)
{
    (void)state;
    profile_t *p = profile_new(NULL);
    sales_row r = row("2023-01-02", "S,1", "C", "Say \"hi\" latte", SALES_CATEGORY_COFFEE, 2, 450);
    profile_add(p, &r);
    profile_add(p, &r);
    r = row("2023-01-03", "S2", "C", "Muffin", SALES_CATEGORY_PASTRY, 1, 5);
    profile_add(p, &r);
    buf_t b;
    buf_init(&b, 0);
    assert_int_equal(profile_write_daily_csv(p, to_buf, &b), RST_OK);
    assert_string_equal(b.data, "date,store_id,product,quantity,total,rows\n"
                                "2023-01-02,\"S,1\",\"Say \"\"hi\"\" latte\",4,18.00,2\n"
                                "2023-01-03,S2,Muffin,1,0.05,1\n");
    buf_free(&b);
    profile_free(p);
}

static void test_daily_totals_and_truncation(void **state)
{
    (void)state;
    profile_limits lim = {.max_daily_keys = 3, .max_distinct = 2};
    profile_t *p = profile_new(&lim);
    static const char *dates[] = {"2023-01-01", "2023-01-02", "2023-01-01",
                                  "2023-01-03", "2023-01-04", "2023-01-02"};
    static const char *cities[] = {"A", "B", "A", "C", "D", "A"};
    for (size_t i = 0; i < 6; i++) {
        sales_row r = row(dates[i], "S1", cities[i], "Latte", SALES_CATEGORY_COFFEE, 1, 100);
        profile_add(p, &r);
    }
    assert_int_equal(profile_daily_count(p), 3);
    assert_int_equal(profile_daily_truncated(p), 1);
    buf_t b;
    buf_init(&b, 0);
    assert_int_equal(profile_daily_foreach(p, collect_daily, &b), RST_OK);
    assert_string_equal(b.data, "2023-01-01 S1 Latte 2 200 2\n"
                                "2023-01-02 S1 Latte 2 200 2\n"
                                "2023-01-03 S1 Latte 1 100 1\n");
    buf_free(&b);
    int n = 0;
    assert_int_equal(profile_daily_foreach(p, stop_at_two, &n), 7);

    json_t *j = profile_to_json(p);
    assert_true(json_is_true(path(j, "daily_totals_info", "truncated", NULL)));
    assert_true(json_is_true(path(j, "daily_totals_info", "in_json", NULL)));
    assert_int_equal(json_array_size(json_object_get(j, "daily_totals")), 3);
    assert_int_equal(json_integer_value(path(j, "daily_totals_info", "rows_not_aggregated", NULL)),
                     1);
    /* cities: two tracked, the rest counted as untracked */
    json_t *c = path(j, "distinct", "city", NULL);
    assert_true(json_is_true(json_object_get(c, "more")));
    assert_int_equal(json_integer_value(json_object_get(c, "count")), 2);
    assert_int_equal(json_integer_value(json_object_get(c, "rows_with_untracked_values")), 2);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(c, "values"), 0), "value")),
                        "A");
    json_decref(j);
    profile_free(p);
}

static void test_many_distinct_values(void **state)
{
    (void)state;
    profile_t *p = profile_new(NULL);
    char store[32];
    for (int i = 0; i < 60000; i++) {
        snprintf(store, sizeof store, "store-%05d", i);
        sales_row r = row("2023-01-01", store, store, "P", SALES_CATEGORY_COFFEE, 1, 100);
        profile_add(p, &r);
    }
    json_t *j = profile_to_json(p);
    json_t *s = path(j, "distinct", "store_id", NULL);
    assert_int_equal(json_integer_value(json_object_get(s, "count")), 60000);
    assert_true(json_is_true(json_object_get(s, "more")));
    assert_int_equal(json_array_size(json_object_get(s, "values")), 10000);
    json_t *c = path(j, "distinct", "city", NULL);
    assert_int_equal(json_integer_value(json_object_get(c, "count")), 10000);
    assert_int_equal(json_integer_value(json_object_get(c, "rows_with_untracked_values")), 50000);
    /* too many daily keys for the JSON: only the iterator has them */
    assert_int_equal(profile_daily_count(p), 60000);
    assert_false(json_is_true(path(j, "daily_totals_info", "in_json", NULL)));
    assert_null(json_object_get(j, "daily_totals"));
    json_decref(j);
    profile_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_profile),
        cmocka_unit_test(test_empty_profile),
        cmocka_unit_test(test_exact_quantiles),
        cmocka_unit_test(test_reservoir_beyond_the_bound),
        cmocka_unit_test(test_daily_csv),
        cmocka_unit_test(test_daily_totals_and_truncation),
        cmocka_unit_test(test_many_distinct_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
