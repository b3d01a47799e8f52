/* The public holiday calendar the trainer and the forecaster observe, and the demo's generator
 * models: the rules of the USA, Canada and Mexico with the years each held (moved whole from
 * demo/salesgen.c, so that the trainer and the forecaster no longer depend on the demo). */
#include "trainer/holidays.h"

#include "lib/util.h"

#include <stddef.h>
#include <string.h>

/* The countries of the rules (names as the sales schema spells them). */
enum { C_USA, C_CANADA, C_MEXICO, C__N };

static const char *const country_names[C__N] = {"USA", "Canada", "Mexico"};

/* ---- Easter ---------------------------------------------------------------- */

void holidays_easter(int year, int *month, int *day)
{
    /* Meeus/Jones/Butcher Gregorian computus */
    int a = year % 19, b = year / 100, c = year % 100;
    int d = b / 4, e = b % 4;
    int f = (b + 8) / 25, g = (b - f + 1) / 3;
    int h = (19 * a + b - d - g + 15) % 30;
    int i = c / 4, k = c % 4;
    int l = (32 + 2 * e + 2 * i - h - k) % 7;
    int m = (a + 11 * h + 22 * l) / 451;
    *month = (h + l - 7 * m + 114) / 31;
    *day = (h + l - 7 * m + 114) % 31 + 1;
}

/* ---- holidays ------------------------------------------------------------ */

enum { R_FIXED, R_NTH, R_LAST, R_EASTER, R_VICTORIA, R_MX_INAUGURATION };

typedef struct {
    int country;
    const char *name;
    int rule;
    int month;
    int a; /* R_FIXED: day; R_NTH: n; R_EASTER: offset in days */
    int b; /* R_NTH, R_LAST: weekday (0 = Monday) */
    int from, to;
    int major; /* stores see far fewer customers */
} holiday_rule;

static const holiday_rule holiday_rules[] = {
    {C_USA, "New Year's Day", R_FIXED, 1, 1, 0, 0, 9999, 1},
    {C_USA, "Martin Luther King Jr. Day", R_NTH, 1, 3, 0, 1986, 9999, 0},
    {C_USA, "Presidents' Day", R_NTH, 2, 3, 0, 0, 9999, 0},
    {C_USA, "Memorial Day", R_LAST, 5, 0, 0, 0, 9999, 0},
    {C_USA, "Juneteenth", R_FIXED, 6, 19, 0, 2021, 9999, 0},
    {C_USA, "Independence Day", R_FIXED, 7, 4, 0, 0, 9999, 0},
    {C_USA, "Labor Day", R_NTH, 9, 1, 0, 0, 9999, 0},
    {C_USA, "Columbus Day", R_NTH, 10, 2, 0, 0, 9999, 0},
    {C_USA, "Veterans Day", R_FIXED, 11, 11, 0, 0, 9999, 0},
    {C_USA, "Thanksgiving", R_NTH, 11, 4, 3, 0, 9999, 1},
    {C_USA, "Christmas Day", R_FIXED, 12, 25, 0, 0, 9999, 1},

    {C_CANADA, "New Year's Day", R_FIXED, 1, 1, 0, 0, 9999, 1},
    {C_CANADA, "Family Day", R_NTH, 2, 3, 0, 2008, 9999, 0},
    {C_CANADA, "Good Friday", R_EASTER, 0, -2, 0, 0, 9999, 0},
    {C_CANADA, "Victoria Day", R_VICTORIA, 5, 0, 0, 0, 9999, 0},
    {C_CANADA, "Canada Day", R_FIXED, 7, 1, 0, 0, 9999, 0},
    {C_CANADA, "Civic Holiday", R_NTH, 8, 1, 0, 0, 9999, 0},
    {C_CANADA, "Labour Day", R_NTH, 9, 1, 0, 0, 9999, 0},
    {C_CANADA, "National Day for Truth and Reconciliation", R_FIXED, 9, 30, 0, 2021, 9999, 0},
    {C_CANADA, "Thanksgiving", R_NTH, 10, 2, 0, 0, 9999, 0},
    {C_CANADA, "Remembrance Day", R_FIXED, 11, 11, 0, 0, 9999, 0},
    {C_CANADA, "Christmas Day", R_FIXED, 12, 25, 0, 0, 9999, 1},
    {C_CANADA, "Boxing Day", R_FIXED, 12, 26, 0, 0, 9999, 0},

    {C_MEXICO, "New Year's Day", R_FIXED, 1, 1, 0, 0, 9999, 1},
    {C_MEXICO, "Constitution Day", R_FIXED, 2, 5, 0, 0, 2005, 0},
    {C_MEXICO, "Constitution Day", R_NTH, 2, 1, 0, 2006, 9999, 0},
    {C_MEXICO, "Benito Juarez's Birthday", R_FIXED, 3, 21, 0, 0, 2005, 0},
    {C_MEXICO, "Benito Juarez's Birthday", R_NTH, 3, 3, 0, 2006, 9999, 0},
    {C_MEXICO, "Holy Thursday", R_EASTER, 0, -3, 0, 0, 9999, 0},
    {C_MEXICO, "Good Friday", R_EASTER, 0, -2, 0, 0, 9999, 0},
    {C_MEXICO, "Labour Day", R_FIXED, 5, 1, 0, 0, 9999, 0},
    {C_MEXICO, "Independence Day", R_FIXED, 9, 16, 0, 0, 9999, 0},
    {C_MEXICO, "Inauguration Day", R_MX_INAUGURATION, 0, 0, 0, 0, 9999, 0},
    {C_MEXICO, "Revolution Day", R_FIXED, 11, 20, 0, 0, 2005, 0},
    {C_MEXICO, "Revolution Day", R_NTH, 11, 3, 0, 2006, 9999, 0},
    {C_MEXICO, "Christmas Day", R_FIXED, 12, 25, 0, 0, 9999, 1},
};

/* The rule that makes y-m-d a holiday in country, or NULL. wd: 0 = Monday. */
static const holiday_rule *holiday_find(int country, int y, int m, int d, int wd)
{
    for (size_t i = 0; i < ARRAY_SIZE(holiday_rules); i++) {
        const holiday_rule *r = &holiday_rules[i];
        if (r->country != country || y < r->from || y > r->to)
            continue;
        int hit = 0;
        switch (r->rule) {
        case R_FIXED:
            hit = m == r->month && d == r->a;
            break;
        case R_NTH:
            hit = m == r->month && wd == r->b && (d - 1) / 7 + 1 == r->a;
            break;
        case R_LAST:
            hit = m == r->month && wd == r->b && d + 7 > util_month_days(y, m);
            break;
        case R_EASTER: {
            int em, ed;
            holidays_easter(y, &em, &ed);
            hit = util_days_from_civil(y, m, d) == util_days_from_civil(y, em, ed) + r->a;
            break;
        }
        case R_VICTORIA: /* the Monday before May 25 */
            hit = m == 5 && wd == 0 && d >= 18 && d <= 24;
            break;
        case R_MX_INAUGURATION: /* every six years: Dec 1 until 2018, Oct 1 since 2024 */
            hit = y >= 2024 ? (y - 2024) % 6 == 0 && m == 10 && d == 1
                            : (2018 - y) % 6 == 0 && m == 12 && d == 1;
            break;
        default:
            break;
        }
        if (hit)
            return r;
    }
    return NULL;
}

/* The rule that makes the date a holiday in country (by name), or NULL. */
static const holiday_rule *rule_on(const char *country, int year, int month, int day)
{
    if (!country || year < 1583 || year > 9999 || month < 1 || month > 12 || day < 1 ||
        day > util_month_days(year, month))
        return NULL;
    for (int c = 0; c < C__N; c++)
        if (!strcmp(country, country_names[c])) {
            const holiday_rule *r = holiday_find(
                c, year, month, day, util_weekday(util_days_from_civil(year, month, day)));
            return r;
        }
    return NULL;
}

const char *holidays_name(const char *country, int year, int month, int day)
{
    const holiday_rule *r = rule_on(country, year, month, day);
    return r ? r->name : NULL;
}

int holidays_level(const char *country, int year, int month, int day)
{
    const holiday_rule *r = rule_on(country, year, month, day);
    return r ? 1 + r->major : 0;
}
