/* train_data: a tiny hand-made CSV becomes the expected dense series (zero
 * days, duplicate rows summed, prices carried, promotion, weather and holiday
 * fallbacks), and bad input is refused with the line. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "datasets/sales.h"
#include "trainer/train_data.h"
#include "lib/util.h"

#define HEADER SALES_CANONICAL_HEADER "\n"

/* Four days, 2022-12-31 .. 2023-01-03 (New Year's Day in between, no rows). */
static const char tiny[] =
    HEADER "2022-12-31,S2,USA,Seattle,Coffee,Latte,5,4.00,20.00,Rainy,No,No\n"
           "2022-12-31,S1,Canada,Toronto,Pastry,Muffin,3,2.50,7.50,Sunny,Yes,\n"
           "2022-12-31,S1,Canada,Toronto,Coffee,Latte,2,4.10,8.20,Sunny,Yes,\n"
           "2022-12-31,S1,Canada,Toronto,Coffee,Latte,1,4.20,4.20,Cloudy,Yes,\n"
           "2023-01-02,S1,Canada,Toronto,Coffee,Latte,7,4.30,30.10,,Yes,Yes\n"
           "2023-01-02,S2,USA,Seattle,Coffee,Latte,4,4.00,16.00,Snowy,No,No\n"
           "2023-01-02,S3,Canada,Toronto,Coffee,Latte,1,4.00,4.00,Hot,No,No\n"
           "2023-01-03,S1,Canada,Toronto,Pastry,Muffin,2,3.00,6.00,Cloudy,No,No\n";

static train_data *load(const char *csv)
{
    train_data *d = NULL;
    char err[256] = "";
    int rc = train_data_load_buffer(csv, strlen(csv), &d, err, sizeof err);
    if (rc != RST_OK)
        fail_msg("load: %d %s", rc, err);
    return d;
}

static void expect_series(const float *a, const float *want, int n)
{
    for (int i = 0; i < n; i++)
        if (fabsf(a[i] - want[i]) > 1e-5f)
            fail_msg("day %d: %g, expected %g", i, (double)a[i], (double)want[i]);
}

static void test_series_zero_filled(void **state)
{
    (void)state;
    train_data *d = load(tiny);
    int32_t first;
    assert_int_equal(sales_parse_date("2022-12-31", 10, &first), RST_OK);
    assert_int_equal(d->first_day, first);
    assert_int_equal(d->ndays, 4);
    assert_int_equal(d->rows, 8);
    assert_int_equal(d->nstores, 3);
    assert_string_equal(d->store_ids[0], "S1");
    assert_string_equal(d->store_ids[2], "S3");
    assert_int_equal(d->nproducts, 2);
    assert_string_equal(d->product_names[0], "Latte");
    assert_int_equal(d->product_category[1], SALES_CATEGORY_PASTRY);
    assert_int_equal(d->ncities, 2);
    assert_string_equal(d->city_names[d->store_city[0]], "Toronto");
    assert_int_equal(d->store_country[1], SALES_COUNTRY_USA);
    /* series in (store, product) order; S2 and S3 never sold a Muffin */
    assert_int_equal(d->nseries, 4);
    assert_int_equal(d->series_store[1], 0);
    assert_int_equal(d->series_product[1], 1);
    assert_int_equal(d->series_store[3], 2);
    const float q0[] = {3, 0, 7, 0}, q1[] = {3, 0, 0, 2}, q2[] = {5, 0, 4, 0}, q3[] = {0, 0, 1, 0};
    expect_series(d->qty, q0, 4);
    expect_series(d->qty + 4, q1, 4);
    expect_series(d->qty + 8, q2, 4);
    expect_series(d->qty + 12, q3, 4);
    /* the day's price is its biggest row's; carried over days without rows,
     * and back to the first day */
    const float p0[] = {4.10f, 4.10f, 4.30f, 4.30f}, p1[] = {2.5f, 2.5f, 2.5f, 3.0f},
                p3[] = {4.0f, 4.0f, 4.0f, 4.0f};
    expect_series(d->price, p0, 4);
    expect_series(d->price + 4, p1, 4);
    expect_series(d->price + 12, p3, 4);
    /* promotion: the series' rows, else its store's rows that day */
    const uint8_t m0[] = {1, 0, 1, 0}, m1[] = {1, 0, 1, 0}, m2[] = {0, 0, 0, 0};
    assert_memory_equal(d->promo, m0, 4);
    assert_memory_equal(d->promo + 4, m1, 4);
    assert_memory_equal(d->promo + 8, m2, 4);
    train_data_free(d);
}

static void test_weather_and_holidays(void **state)
{
    (void)state;
    train_data *d = load(tiny);
    /* S1: two Sunny rows beat one Cloudy; no rows; empty -> its city's (S3 Hot); Cloudy */
    const uint8_t w1[] = {SALES_WEATHER_SUNNY, SALES_WEATHER_NONE, SALES_WEATHER_HOT,
                          SALES_WEATHER_CLOUDY};
    const uint8_t w2[] = {SALES_WEATHER_RAINY, SALES_WEATHER_NONE, SALES_WEATHER_SNOWY,
                          SALES_WEATHER_NONE};
    assert_memory_equal(d->weather, w1, 4);
    assert_memory_equal(d->weather + 4, w2, 4);
    /* S1 (Canada): empty column -> calendar (no); no rows -> calendar (New Year's
     * Day); the column says Yes (a day the calendar does not know); No */
    const uint8_t h1[] = {0, 1, 1, 0}, h2[] = {0, 1, 0, 0};
    assert_memory_equal(d->holiday, h1, 4);
    assert_memory_equal(d->holiday + 4, h2, 4);
    assert_string_equal(d->holiday_names[d->holiday_name[1]], "New Year's Day");
    assert_int_equal(d->holiday_name[2], TRAIN_DATA_HOLIDAY_OTHER);
    assert_int_equal(d->holiday_name[0], TRAIN_DATA_HOLIDAY_NONE);
    /* distances use the calendar past the data: Boxing Day (26 Dec) was 5 days
     * before the first day; Family Day is weeks after the last */
    const uint8_t next1[] = {1, 0, 0, TRAIN_DATA_HOLIDAY_CLIP}, last1[] = {5, 0, 0, 1};
    assert_memory_equal(d->holiday_next, next1, 4);
    assert_memory_equal(d->holiday_last, last1, 4);
    assert_int_equal(train_data_find(d->store_ids, d->nstores, "S2"), 1);
    assert_int_equal(train_data_find(d->store_ids, d->nstores, "S9"), -1);
    train_data_free(d);
}

static void test_row_order_does_not_matter(void **state)
{
    (void)state;
    /* the same rows, last first */
    static const char reversed[] =
        HEADER "2023-01-03,S1,Canada,Toronto,Pastry,Muffin,2,3.00,6.00,Cloudy,No,No\n"
               "2023-01-02,S3,Canada,Toronto,Coffee,Latte,1,4.00,4.00,Hot,No,No\n"
               "2023-01-02,S2,USA,Seattle,Coffee,Latte,4,4.00,16.00,Snowy,No,No\n"
               "2023-01-02,S1,Canada,Toronto,Coffee,Latte,7,4.30,30.10,,Yes,Yes\n"
               "2022-12-31,S1,Canada,Toronto,Coffee,Latte,1,4.20,4.20,Cloudy,Yes,\n"
               "2022-12-31,S1,Canada,Toronto,Coffee,Latte,2,4.10,8.20,Sunny,Yes,\n"
               "2022-12-31,S1,Canada,Toronto,Pastry,Muffin,3,2.50,7.50,Sunny,Yes,\n"
               "2022-12-31,S2,USA,Seattle,Coffee,Latte,5,4.00,20.00,Rainy,No,No\n";
    train_data *a = load(tiny), *b = load(reversed);
    size_t nd = a->nseries * (size_t)a->ndays, sd = a->nstores * (size_t)a->ndays;
    assert_int_equal(a->nseries, b->nseries);
    assert_memory_equal(a->qty, b->qty, nd * sizeof *a->qty);
    assert_memory_equal(a->price, b->price, nd * sizeof *a->price);
    assert_memory_equal(a->promo, b->promo, nd);
    assert_memory_equal(a->weather, b->weather, sd);
    assert_memory_equal(a->holiday, b->holiday, sd);
    assert_string_not_equal(a->sha256, b->sha256);
    train_data_free(a);
    train_data_free(b);
}

static void test_bad_input(void **state)
{
    (void)state;
    train_data *d = NULL;
    char err[256];
    static const char bad_row[] =
        HEADER "2023-01-01,S1,USA,Seattle,Coffee,Latte,5,4.00,20.00,,No,No\n"
               "2023-01-02,S1,USA,Seattle,Coffee,Latte,-3,4.00,,,No,No\n";
    assert_int_equal(train_data_load_buffer(bad_row, strlen(bad_row), &d, err, sizeof err),
                     RST_EINVAL);
    assert_null(d);
    assert_non_null(strstr(err, "line 3"));
    static const char not_sales[] = "a,b\n1,2\n";
    assert_int_equal(train_data_load_buffer(not_sales, strlen(not_sales), &d, err, sizeof err),
                     RST_EINVAL);
    assert_non_null(strstr(err, "header"));
    assert_int_equal(train_data_load_buffer(HEADER, strlen(HEADER), &d, err, sizeof err),
                     RST_EINVAL);
    assert_non_null(strstr(err, "no data rows"));
    assert_int_equal(train_data_load("/nonexistent/sales.csv", NULL, &d, err, sizeof err), RST_EIO);
    train_data_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_series_zero_filled),
        cmocka_unit_test(test_weather_and_holidays),
        cmocka_unit_test(test_row_order_does_not_matter),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
