/* cron: parsing (lists, ranges, steps, names, macros, errors naming the field
 * and position) and next fire times in UTC and in zones with daylight saving,
 * including the skipped and the repeated hour. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "lib/cron.h"
#include "lib/util.h"

/* "2024-03-10T07:00" (UTC) to Unix seconds. */
static int64_t at(const char *s)
{
    int y, mo, d, h, mi;
    assert_int_equal(sscanf(s, "%d-%d-%dT%d:%d", &y, &mo, &d, &h, &mi), 5);
    return (int64_t)util_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60;
}

static void iso(int64_t t, char out[64])
{
    int y, m, d;
    int64_t day = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
    util_civil_from_days((int32_t)day, &y, &m, &d);
    int64_t s = t - day * 86400;
    snprintf(out, 64, "%04d-%02d-%02dT%02d:%02d", y, m, d, (int)(s / 3600), (int)(s / 60 % 60));
}

/* Asserts the next fire of expr in zone after `after` (UTC text). */
static void expect_next(const char *expr, const char *zone, const char *after, const char *want)
{
    cron_expr e;
    char err[200] = "";
    if (cron_parse(expr, &e, err, sizeof err) != RST_OK)
        fail_msg("%s: %s", expr, err);
    cron_tz *tz = NULL;
    assert_int_equal(cron_tz_load(zone, &tz, err, sizeof err), RST_OK);
    int64_t next = 0;
    assert_int_equal(cron_next(&e, tz, at(after), &next), RST_OK);
    char got[64];
    iso(next, got);
    if (strcmp(got, want))
        fail_msg("%s in %s after %s: got %s, want %s", expr, zone, after, got, want);
    cron_tz_free(tz);
}

static void expect_error(const char *expr, const char *want)
{
    cron_expr e;
    char err[200] = "";
    assert_int_equal(cron_parse(expr, &e, err, sizeof err), RST_EINVAL);
    if (!strstr(err, want))
        fail_msg("'%s': error '%s' lacks '%s'", expr, err, want);
}

static void test_fields_lists_ranges_steps(void **state)
{
    (void)state;
    cron_expr e;
    char err[200];
    assert_int_equal(cron_parse("*/15 9-17/4 1,15 JAN-MAR,jul mon-fri", &e, err, sizeof err),
                     RST_OK);
    assert_true(e.minutes == ((1ULL << 0) | (1ULL << 15) | (1ULL << 30) | (1ULL << 45)));
    assert_int_equal(e.hours, (1u << 9) | (1u << 13) | (1u << 17));
    assert_int_equal(e.mdays, (1u << 1) | (1u << 15));
    assert_int_equal(e.months, (1u << 1) | (1u << 2) | (1u << 3) | (1u << 7));
    assert_int_equal(e.wdays, 0x3e);
    assert_false(e.mday_star);
    assert_false(e.wday_star);
    assert_int_equal(cron_parse("5/20 0 * * 7", &e, err, sizeof err), RST_OK);
    assert_true(e.minutes == ((1ULL << 5) | (1ULL << 25) | (1ULL << 45)));
    assert_int_equal(e.wdays, 1); /* 7 is Sunday */
    assert_int_equal(cron_parse("0 0 * * FRI-SUN", &e, err, sizeof err), RST_OK);
    assert_int_equal(e.wdays, (1u << 5) | (1u << 6) | 1u);
    assert_int_equal(cron_parse("  0   3 * * MON  ", &e, err, sizeof err), RST_OK);
    assert_true(e.wday_star == 0 && e.mday_star == 1);
    cron_expr d;
    assert_int_equal(cron_parse("@daily", &d, err, sizeof err), RST_OK);
    assert_int_equal(cron_parse("0 0 * * *", &e, err, sizeof err), RST_OK);
    assert_memory_equal(&d, &e, sizeof d);
    assert_int_equal(cron_parse("@WEEKLY", &d, err, sizeof err), RST_OK);
    assert_int_equal(d.wdays, 1);
}

static void test_next_in_utc(void **state)
{
    (void)state;
    expect_next("0 3 * * MON", "UTC", "2024-01-01T00:00", "2024-01-01T03:00");
    expect_next("0 3 * * MON", "UTC", "2024-01-01T03:00", "2024-01-08T03:00"); /* strictly after */
    expect_next("*/15 * * * *", "UTC", "2024-01-01T10:07", "2024-01-01T10:15");
    expect_next("*/15 * * * *", "UTC", "2024-01-01T23:59", "2024-01-02T00:00");
    expect_next("0 9-17/4 * * 1-5", "UTC", "2024-01-05T17:00", "2024-01-08T09:00");
    expect_next("0 0 1,15 * *", "UTC", "2024-01-02T00:00", "2024-01-15T00:00");
    expect_next("0 0 1 jan,jul *", "UTC", "2024-01-01T00:00", "2024-07-01T00:00");
    /* both day fields restricted: either matches (Friday the 13th or any Friday or 13th) */
    expect_next("0 0 13 * FRI", "UTC", "2024-01-01T00:00", "2024-01-05T00:00");
    expect_next("0 0 13 * FRI", "UTC", "2024-01-12T00:00", "2024-01-13T00:00");
    /* a star day field means both must match */
    expect_next("0 0 */10 * FRI", "UTC", "2024-01-01T00:00", "2024-03-01T00:00");
    expect_next("0 0 29 2 *", "UTC", "2024-03-01T00:00", "2028-02-29T00:00");
    expect_next("@hourly", "UTC", "2024-01-01T10:00", "2024-01-01T11:00");
    expect_next("@yearly", "UTC", "2024-06-01T00:00", "2025-01-01T00:00");
    expect_next("59 23 31 12 *", "UTC", "2024-12-31T23:58", "2024-12-31T23:59");
}

static void test_next_across_daylight_saving(void **state)
{
    (void)state;
    /* New York: EST (UTC-5), EDT (UTC-4) from 2024-03-10 02:00 to 2024-11-03 02:00. */
    expect_next("0 3 * * MON", "America/New_York", "2024-03-04T09:00", "2024-03-11T07:00");
    expect_next("0 3 * * MON", "America/New_York", "2024-01-01T00:00", "2024-01-01T08:00");
    /* 02:30 does not exist on 2024-03-10: it fires when the clocks jump, once */
    expect_next("30 2 * * *", "America/New_York", "2024-03-10T05:00", "2024-03-10T07:00");
    expect_next("30 2 * * *", "America/New_York", "2024-03-10T07:00", "2024-03-11T06:30");
    expect_next("*/20 2 * * *", "America/New_York", "2024-03-10T06:59", "2024-03-10T07:00");
    expect_next("*/20 2 * * *", "America/New_York", "2024-03-10T07:00", "2024-03-11T06:00");
    /* 01:30 happens twice on 2024-11-03: only the first (EDT) fires */
    expect_next("30 1 * * *", "America/New_York", "2024-11-03T05:00", "2024-11-03T05:30");
    expect_next("30 1 * * *", "America/New_York", "2024-11-03T05:30", "2024-11-04T06:30");
    /* an hourly job fires once in the repeated hour, and right after the skipped one */
    expect_next("0 * * * *", "America/New_York", "2024-11-03T05:00", "2024-11-03T07:00");
    expect_next("0 * * * *", "America/New_York", "2024-03-10T06:00", "2024-03-10T07:00");
    /* after the zone file's last transition (2037): its POSIX rule */
    expect_next("0 12 1 7 *", "America/New_York", "2040-01-01T00:00", "2040-07-01T16:00");
    expect_next("0 12 1 1 *", "America/New_York", "2040-06-01T00:00", "2041-01-01T17:00");
    expect_next("0 12 * * *", "Europe/Berlin", "2024-07-01T00:00", "2024-07-01T10:00");
    expect_next("0 12 * * *", "Europe/Berlin", "2024-12-01T00:00", "2024-12-01T11:00");
    expect_next("0 0 * * *", "Asia/Kolkata", "2024-01-01T00:00", "2024-01-01T18:30");
    expect_next("0 0 * * *", "Australia/Sydney", "2024-01-01T00:00", "2024-01-01T13:00");
    expect_next("0 0 * * *", "Australia/Sydney", "2024-07-01T00:00", "2024-07-01T14:00");
}

static void test_bad_expressions_name_field_and_position(void **state)
{
    (void)state;
    expect_error("60 * * * *", "minute field at position 1: 60 is out of range 0-59");
    expect_error("* 24 * * *", "hour field at position 3: 24 is out of range 0-23");
    expect_error("0 0 0 * *", "day-of-month field at position 5: 0 is out of range 1-31");
    expect_error("0 0 * 13 *", "month field at position 7: 13 is out of range 1-12");
    expect_error("0 0 * * MOX", "day-of-week field at position 9: 'MOX' is not a day name");
    expect_error("0 0 * FOO *", "month field at position 7: 'FOO' is not a month name");
    expect_error("5-2 * * * *", "minute field at position 1: the range 5-2 runs backwards");
    expect_error("*/0 * * * *", "minute field at position 3: the step 0 must be from 1 to 60");
    expect_error("*/x * * * *", "minute field at position 3: the step 'x' is not a number");
    expect_error("1,,2 * * * *", "minute field at position 3: an empty list item");
    expect_error("0 3 * *", "expected 5 fields (minute hour day-of-month month day-of-week),"
                            " found 4");
    expect_error("0 3 * * * *", "found 6");
    expect_error("", "is empty");
    expect_error("@reboot", "unknown macro '@reboot'");
    expect_error("@daily 5", "nothing may follow @daily");
    expect_error("0 0 30 2 *", "day-of-month field at position 5: no chosen month has such a day");
    expect_error("0 0 31 4,6 *", "never fires");
    expect_error("*x * * * *", "minute field at position 2: unexpected 'x' after '*'");
    expect_error("0 0 * * 8", "day-of-week field at position 9: 8 is out of range 0-7");
    expect_error("0 0-", "found 2");
    expect_error("0 0- * * *", "hour field at position 5: a value is missing");
    expect_error("0 3 * * MON\n", "control character");
    cron_expr e;
    char err[200];
    /* 31 in a month that has it, or a weekday to fall back on, is fine */
    assert_int_equal(cron_parse("0 0 31 4,5 *", &e, err, sizeof err), RST_OK);
    assert_int_equal(cron_parse("0 0 30 2 MON", &e, err, sizeof err), RST_OK);
}

static void test_time_zone_names(void **state)
{
    (void)state;
    cron_tz *tz = NULL;
    char err[200] = "";
    assert_int_equal(cron_tz_load("Mars/Olympus_Mons", &tz, err, sizeof err), RST_ENOTFOUND);
    assert_non_null(strstr(err, "unknown time zone Mars/Olympus_Mons"));
    assert_int_equal(cron_tz_load("../../etc/passwd", &tz, err, sizeof err), RST_EINVAL);
    assert_int_equal(cron_tz_load("/etc/passwd", &tz, err, sizeof err), RST_EINVAL);
    assert_int_equal(cron_tz_load("UTC", &tz, err, sizeof err), RST_OK);
    assert_int_equal(cron_tz_offset(tz, at("2024-07-01T00:00")), 0);
    cron_tz_free(tz);
    assert_int_equal(cron_tz_load("America/New_York", &tz, err, sizeof err), RST_OK);
    assert_int_equal(cron_tz_offset(tz, at("2024-07-01T00:00")), -4 * 3600);
    assert_int_equal(cron_tz_offset(tz, at("2024-01-01T00:00")), -5 * 3600);
    assert_int_equal(cron_tz_offset(tz, at("2060-07-01T00:00")), -4 * 3600);
    assert_int_equal(cron_tz_offset(tz, at("2060-12-01T00:00")), -5 * 3600);
    cron_tz_free(tz);
    cron_tz_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fields_lists_ranges_steps),
        cmocka_unit_test(test_next_in_utc),
        cmocka_unit_test(test_next_across_daylight_saving),
        cmocka_unit_test(test_bad_expressions_name_field_and_position),
        cmocka_unit_test(test_time_zone_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
