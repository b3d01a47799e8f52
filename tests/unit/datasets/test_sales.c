/* sales: header aliases, every row rule with its reason, canonical lines, and
 * a real dataset with other columns refused by name. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/csv.h"
#include "datasets/sales.h"
#include "lib/util.h"

#ifndef SHARED_DIR
#define SHARED_DIR "/work/shared"
#endif

typedef struct {
    const sales_options *o;
    sales_schema *s;
    json_t *report;
    buf_t out;
    int header_rc;
} run_ctx;

/* Renders each row: its canonical line, or "E<line> <column>/<field> '<value>': <reason>". */
static int on_rec(void *arg, const csv_record *r)
{
    run_ctx *c = arg;
    if (!c->report) {
        c->header_rc = sales_schema_new(c->o, r, &c->s, &c->report);
        if (c->header_rc) {
            buf_printf(&c->out, "HEADER: %s\n",
                       json_string_value(json_object_get(c->report, "error")));
            return 1;
        }
        return 0;
    }
    sales_row row;
    sales_error errs[SALES_MAX_ROW_ERRORS];
    size_t n = sales_parse_row(c->s, r, &row, errs, SALES_MAX_ROW_ERRORS);
    if (!n)
        return sales_write_row(&c->out, &row);
    for (size_t i = 0; i < n; i++)
        buf_printf(&c->out, "E%llu %s/%s '%.*s': %s\n", (unsigned long long)errs[i].line,
                   errs[i].column, errs[i].field, (int)errs[i].value_len, errs[i].value,
                   errs[i].reason);
    return 0;
}

/* new: the rendering (free()); *report_out (optional) gets the header report. */
static char *run(const char *csv, const sales_options *o, json_t **report_out)
{
    run_ctx c;
    memset(&c, 0, sizeof c);
    c.o = o;
    buf_init(&c.out, 0);
    buf_puts(&c.out, "");
    csv_parser *p = csv_new(NULL, on_rec, &c);
    int rc = csv_feed(p, csv, strlen(csv));
    if (rc == RST_OK)
        rc = csv_finish(p);
    assert_true(rc == RST_OK || rc == 1);
    csv_free(p);
    sales_schema_free(c.s);
    if (report_out)
        *report_out = c.report;
    else
        json_decref(c.report);
    return c.out.data;
}

#define HDR                                                                                        \
    "Store ID,Date,Country,City,Product Category,Product,Quantity Sold,Price,Total "               \
    "Sale,Weather,Promotion,Holiday\n"

static void expect(const char *csv, const char *want)
{
    char *got = run(csv, NULL, NULL);
    if (strcmp(got, want))
        fail_msg("input:\n%s\nwant:\n%s\ngot:\n%s", csv, want, got);
    free(got);
}

static void test_article_columns_and_canonical_line(void **state)
{
    (void)state;
    json_t *rep = NULL;
    char *got = run(HDR "S001,2023-01-15,USA,Seattle,Coffee,Caffe Latte,3,4.50,13.50,Sunny,No,Yes\n"
                        "S002,2022-12-31,Mexico,\"Ciudad de M\xC3\xA9xico\",Pastry,\"Muffin, "
                        "Blueberry\",2,2.5,,rainy,yes,0\n",
                    NULL, &rep);
    assert_string_equal(got,
                        "2023-01-15,S001,USA,Seattle,Coffee,Caffe Latte,3,4.50,13.50,Sunny,No,Yes\n"
                        "2022-12-31,S002,Mexico,Ciudad de M\xC3\xA9xico,Pastry,\"Muffin, "
                        "Blueberry\",2,2.50,5.00,Rainy,Yes,No\n");
    free(got);
    json_t *cols = json_object_get(rep, "columns");
    assert_string_equal(json_string_value(json_object_get(cols, "store_id")), "Store ID");
    assert_string_equal(json_string_value(json_object_get(cols, "quantity")), "Quantity Sold");
    assert_string_equal(json_string_value(json_object_get(cols, "total")), "Total Sale");
    assert_int_equal(json_array_size(json_object_get(rep, "ignored_columns")), 0);
    assert_null(json_object_get(rep, "error"));
    json_decref(rep);

    buf_t b;
    buf_init(&b, 0);
    assert_int_equal(sales_write_header(&b), RST_OK);
    assert_string_equal(b.data, "date,store_id,country,city,category,product,quantity,unit_price,"
                                "total,weather,promotion,holiday\n");
    b.len = 0;
    assert_int_equal(sales_write_field(&b, "say \"hi\", ok", 12), RST_OK);
    assert_int_equal(sales_write_field(&b, " x", 2), RST_OK);
    assert_string_equal(b.data, "\"say \"\"hi\"\", ok\"\" x\"");
    buf_free(&b);
}

static void test_aliases_case_spacing_and_dmy(void **state)
{
    (void)state;
    json_t *rep = NULL;
    char *got = run("\xEF\xBB\xBF"
                    "  storeid ,DAY,month,Year,COUNTRY,city,category,PRODUCT,qty,unit_price,"
                    "TOTAL,weather,promo,holiday,Customer ID,Loyalty Tier,\n"
                    "7,5,3,2023,us,Toronto,COFFEE,Espresso,1,3,3.00,,N,TRUE,C9,gold,\n"
                    "8,29,Feb,2024,M\xC3\x89XICO,Monterrey,merch,Mug,10,12.00,120,Hot,1,false,,,\n"
                    "9,1,december,2022,United States,Austin,Beverage,Tea,0,0.00,0,cold,,,,,\n",
                    NULL, &rep);
    assert_string_equal(got, "2023-03-05,7,USA,Toronto,Coffee,Espresso,1,3.00,3.00,,No,Yes\n"
                             "2024-02-29,8,Mexico,Monterrey,Merchandise,Mug,10,12.00,120.00,Hot,"
                             "Yes,No\n"
                             "2022-12-01,9,USA,Austin,Beverage,Tea,0,0.00,0.00,Cold,,\n");
    free(got);
    json_t *cols = json_object_get(rep, "columns");
    assert_string_equal(json_string_value(json_object_get(cols, "store_id")), "storeid");
    assert_string_equal(json_string_value(json_object_get(cols, "day")), "DAY");
    assert_string_equal(json_string_value(json_object_get(cols, "customer_id")), "Customer ID");
    json_t *ign = json_object_get(rep, "ignored_columns");
    assert_int_equal(json_array_size(ign), 2);
    assert_string_equal(json_string_value(json_array_get(ign, 0)), "Loyalty Tier");
    assert_string_equal(json_string_value(json_array_get(ign, 1)), "");
    json_t *warn = json_object_get(rep, "warnings");
    assert_int_equal(json_array_size(warn), 2); /* the nameless column, the customer id */
    assert_string_equal(json_string_value(json_array_get(warn, 0)),
                        "column 17 has no name and was ignored");
    json_decref(rep);

    /* spelled other ways */
    static const char *stores[] = {"Store ID", "store_id", "StoreId", "store", "STORE-ID"};
    for (size_t i = 0; i < sizeof stores / sizeof stores[0]; i++) {
        char csv[512];
        snprintf(csv, sizeof csv,
                 "%s,date,country,city,Category,product,quantity,Price,total_sale\n"
                 "S1,2023-01-01,CA,Ottawa,pastries,Croissant,2,1.25,2.50\n",
                 stores[i]);
        got = run(csv, NULL, NULL);
        assert_string_equal(got, "2023-01-01,S1,Canada,Ottawa,Pastry,Croissant,2,1.25,2.50,,,\n");
        free(got);
    }

    /* a date column wins over day/month/year, which are then ignored */
    got = run("store,date,day,country,city,category,product,qty,price\n"
              "S1,2023-01-02,99,MX,Puebla,Coffee,Latte,1,1\n",
              NULL, &rep);
    assert_string_equal(got, "2023-01-02,S1,Mexico,Puebla,Coffee,Latte,1,1.00,1.00,,,\n");
    free(got);
    assert_string_equal(json_string_value(json_array_get(json_object_get(rep, "warnings"), 0)),
                        "column \"day\" is ignored: the date comes from \"date\"");
    json_decref(rep);
}

static void test_header_errors(void **state)
{
    (void)state;
    expect("store,city,product\nx,y,z\n",
           "HEADER: missing required columns: date, country, category, quantity, unit_price\n");
    expect("store,day,year,country,city,category,product,qty,price\n",
           "HEADER: missing required columns: month\n");
    expect("store,date,country,city,category,product,qty,Quantity,price\n",
           "HEADER: columns \"qty\" and \"Quantity\" both map to quantity\n");
    json_t *rep = NULL;
    char *got = run("store,date\n", NULL, &rep);
    json_t *miss = json_object_get(rep, "missing_columns");
    assert_int_equal(json_array_size(miss), 6);
    assert_string_equal(json_string_value(json_array_get(miss, 0)), "country");
    assert_string_equal(json_string_value(json_array_get(miss, 5)), "unit_price");
    free(got);
    json_decref(rep);
}

/* The coffee vending log has other columns: refused, naming what is missing. */
static void test_vending_dataset_is_refused(void **state)
{
    (void)state;
    const char *path = SHARED_DIR "/datasets/coffee_vending_ihelon/index_1.csv";
    FILE *f = fopen(path, "rb");
    if (!f) {
        print_message("skipped: %s not readable\n", path);
        skip();
    }
    buf_t b;
    buf_init(&b, 0);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        buf_append(&b, chunk, n);
    fclose(f);
    json_t *rep = NULL;
    char *got = run(b.data, NULL, &rep);
    assert_string_equal(got, "HEADER: missing required columns: store_id, country, city, "
                             "category, product, quantity, unit_price\n");
    json_t *ign = json_object_get(rep, "ignored_columns");
    assert_int_equal(json_array_size(ign), 5);
    assert_string_equal(json_string_value(json_array_get(ign, 0)), "datetime");
    assert_string_equal(json_string_value(json_array_get(ign, 4)), "coffee_name");
    assert_string_equal(json_string_value(json_object_get(json_object_get(rep, "columns"), "date")),
                        "date");
    free(got);
    json_decref(rep);
    buf_free(&b);
}

static void test_row_rules(void **state)
{
    (void)state;
    /* one bad value per row; the rest is valid */
    static const struct {
        const char *row, *want;
    } cases[] = {
        {"S1,2023-01-15,USA,Seattle,Coffee,Latte,-3,4.50,,Sunny,No,No",
         "E2 Quantity Sold/quantity '-3': must be a whole number >= 0\n"},
        {"S1,2023-01-15,USA,Seattle,Coffee,Latte,2.5,4.50,,Sunny,No,No",
         "E2 Quantity Sold/quantity '2.5': must be a whole number >= 0\n"},
        {"S1,2023-01-15,USA,Seattle,Coffee,Latte,lots,4.50,,Sunny,No,No",
         "E2 Quantity Sold/quantity 'lots': must be a whole number >= 0\n"},
        {"S1,2023-01-15,USA,Seattle,Coffee,Latte,99999999999,4.50,,Sunny,No,No",
         "E2 Quantity Sold/quantity '99999999999': is larger than 1000000000\n"},
        {"S1,2023-01-15,USA,Seattle,Coffee,Latte,3,-4.50,,Sunny,No,No",
         "E2 Price/unit_price '-4.50': must not be negative\n"},
        {"S1,2023-01-15,USA,Seattle,Coffee,Latte,3,4.505,,Sunny,No,No",
         "E2 Price/unit_price '4.505': has more than 2 decimals\n"},
        {"S1,2023-01-15,USA,Seattle,Coffee,Latte,3,$4.50,,Sunny,No,No",
         "E2 Price/unit_price '$4.50': must be an amount like 3.50\n"},
        {"S1,2023-01-15,USA,Seattle,Coffee,Latte,3,4.50,13.52,Sunny,No,No",
         "E2 Total Sale/total '13.52': does not match quantity x unit price (expected 13.50)\n"},
        {"S1,2023-01-15,Brazil,Seattle,Coffee,Latte,3,4.50,,Sunny,No,No",
         "E2 Country/country 'Brazil': must be USA, Canada or Mexico\n"},
        {"S1,2023-02-29,USA,Seattle,Coffee,Latte,3,4.50,,Sunny,No,No",
         "E2 Date/date '2023-02-29': is not a real calendar date\n"},
        {"S1,15/01/2023,USA,Seattle,Coffee,Latte,3,4.50,,Sunny,No,No",
         "E2 Date/date '15/01/2023': must be a date in the form YYYY-MM-DD\n"},
        {"S1,1999-12-31,USA,Seattle,Coffee,Latte,3,4.50,,Sunny,No,No",
         "E2 Date/date '1999-12-31': 1999-12-31 is outside the accepted range "
         "2000-01-01..2100-12-31\n"},
        {"S1,2023-01-15,USA,Seattle,Coffee,Latte,3,4.50,,Sunny,maybe,No",
         "E2 Promotion/promotion 'maybe': must be Yes or No\n"},
        {"S1,2023-01-15,USA,Seattle,Coffee,Latte,3,4.50,,Foggy,No,No",
         "E2 Weather/weather 'Foggy': must be Sunny, Rainy, Snowy, Cloudy, Hot or Cold (or "
         "empty)\n"},
        {"S1,2023-01-15,USA,Seattle,Tea,Latte,3,4.50,,Sunny,No,No",
         "E2 Product Category/category 'Tea': must be Coffee, Pastry, Beverage or Merchandise\n"},
        {" ,2023-01-15,USA,Seattle,Coffee,Latte,3,4.50,,Sunny,No,No",
         "E2 Store ID/store_id '': must not be empty\n"},
        {"S1,2023-01-15,USA,,Coffee,Latte,3,4.50,,Sunny,No,No",
         "E2 City/city '': must not be empty\n"},
        {"S1,2023-01-15,USA,Seattle,Coffee,\"La\ntte\",3,4.50,,Sunny,No,No",
         "E2 Product/product 'La\ntte': contains a control character\n"},
        {"S1,2023-01-15,USA,Seattle,Coffee,Latte,3",
         "E2 (row)/(row) 'S1': has 7 fields, the header has 12\n"},
        /* accepted edge values */
        {"S1,2023-01-15,USA,Seattle,Coffee,Latte,3.00,4.5000,13.51,Sunny,No,No",
         "2023-01-15,S1,USA,Seattle,Coffee,Latte,3,4.50,13.51,Sunny,No,No\n"},
        {"S1,2023-01-15,USA,Seattle,Coffee,Latte,0,.99,0,SUNNY,Y,n",
         "2023-01-15,S1,USA,Seattle,Coffee,Latte,0,0.99,0.00,Sunny,Yes,No\n"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char csv[1024];
        snprintf(csv, sizeof csv, "%s%s\n", HDR, cases[i].row);
        expect(csv, cases[i].want);
    }
    /* several errors in one row are all reported */
    expect(HDR "S1,2023-13-01,Narnia,Seattle,Coffee,Latte,x,y,,Sunny,No,No\n",
           "E2 Date/date '2023-13-01': is not a real calendar date\n"
           "E2 Country/country 'Narnia': must be USA, Canada or Mexico\n"
           "E2 Quantity Sold/quantity 'x': must be a whole number >= 0\n"
           "E2 Price/unit_price 'y': must be an amount like 3.50\n");
}

static void test_dmy_rules_and_range_option(void **state)
{
    (void)state;
    expect("store,day,month,year,country,city,category,product,qty,price\n"
           "S,31,4,2023,USA,A,Coffee,L,1,1\n"
           "S,0,4,2023,USA,A,Coffee,L,1,1\n"
           "S,1,Smarch,2023,USA,A,Coffee,L,1,1\n"
           "S,1,1,23x,USA,A,Coffee,L,1,1\n",
           "E2 day/day '31': 2023-04-31 is not a real calendar date\n"
           "E3 day/day '0': must be a day of the month 1-31\n"
           "E4 month/month 'Smarch': must be a month 1-12 or a month name\n"
           "E5 year/year '23x': must be a year like 2023\n");
    sales_options o = {.min_date = "2022-01-01", .max_date = "2023-12-31"};
    char *got = run("store,date,country,city,category,product,qty,price\n"
                    "S,2021-12-31,USA,A,Coffee,L,1,1\nS,2022-01-01,USA,A,Coffee,L,1,1\n",
                    &o, NULL);
    assert_string_equal(got, "E2 date/date '2021-12-31': 2021-12-31 is outside the accepted "
                             "range 2022-01-01..2023-12-31\n"
                             "2022-01-01,S,USA,A,Coffee,L,1,1.00,1.00,,,\n");
    free(got);
    assert_int_equal(sales_options_check(&o), RST_OK);
    assert_int_equal(sales_options_check(NULL), RST_OK);
    o.max_date = "2021-01-01";
    assert_int_equal(sales_options_check(&o), RST_EINVAL);
    o.max_date = "2023-02-30";
    assert_int_equal(sales_options_check(&o), RST_EINVAL);
}

static void test_dates(void **state)
{
    (void)state;
    int32_t d;
    char iso[11];
    assert_int_equal(sales_parse_date("1970-01-01", 10, &d), RST_OK);
    assert_int_equal(d, 0);
    assert_int_equal(sales_parse_date("2000-02-29", 10, &d), RST_OK);
    sales_format_date(d, iso);
    assert_string_equal(iso, "2000-02-29");
    assert_int_equal(sales_parse_date("1900-02-29", 10, &d), RST_EINVAL);
    assert_int_equal(sales_parse_date("2023-1-01", 9, &d), RST_EINVAL);
    for (int32_t x = -1000; x < 80000; x += 7) {
        sales_format_date(x, iso);
        assert_int_equal(sales_parse_date(iso, 10, &d), RST_OK);
        assert_int_equal(d, x);
    }
}

static void test_error_json_is_safe(void **state)
{
    (void)state;
    char big[300];
    memset(big, 'a', sizeof big);
    big[98] = '\xC3'; /* a 2-byte character straddling byte 100 */
    big[99] = '\xA9';
    big[100] = '\xC3';
    big[101] = '\xA9';
    sales_error e = {
        .line = 3, .column = "Product", .field = "product", .value = big, .value_len = sizeof big};
    snprintf(e.reason, sizeof e.reason, "is longer than 200 bytes");
    json_t *j = sales_error_json(&e);
    const char *v = json_string_value(json_object_get(j, "value"));
    assert_non_null(v);
    assert_int_equal(strlen(v), 100);
    assert_true(json_is_true(json_object_get(j, "value_truncated")));
    assert_int_equal(json_integer_value(json_object_get(j, "line")), 3);
    json_decref(j);

    /* invalid UTF-8 and NUL become U+FFFD; the JSON serialises */
    sales_error e2 = {.line = 1, .column = "x", .field = "x", .value = "a\xFF\0b", .value_len = 4};
    j = sales_error_json(&e2);
    assert_string_equal(json_string_value(json_object_get(j, "value")), "a\xEF\xBF\xBD\xEF\xBF\xBD"
                                                                        "b");
    char *s = json_dumps(j, JSON_COMPACT);
    assert_non_null(s);
    free(s);
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_article_columns_and_canonical_line),
        cmocka_unit_test(test_aliases_case_spacing_and_dmy),
        cmocka_unit_test(test_header_errors),
        cmocka_unit_test(test_vending_dataset_is_refused),
        cmocka_unit_test(test_row_rules),
        cmocka_unit_test(test_dmy_rules_and_range_option),
        cmocka_unit_test(test_dates),
        cmocka_unit_test(test_error_json_is_safe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
