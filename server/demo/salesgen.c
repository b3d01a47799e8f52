/* GloboJava's sales generator: a seeded generative model streamed as CSV.
 * All randomness is counter-based (hashes of seed, city or store, and day), so
 * a shorter date range or fewer stores/products gives a slice of the larger
 * output, and memory never depends on the date range. See
 * docs/generative-model.md for the model and its parameters.
 * size: the model's tables (cities, products, weights) are 130 of its lines, the command 160. */
#include "demo/salesgen.h"

#include "lib/util.h"
#include "trainer/holidays.h"

#include <errno.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
#define OUT_BUF_SIZE ((size_t)64 * 1024)
#define ROW_MAX 512 /* longest row is well under 200 bytes */
#define PI 3.14159265358979323846
#define YEAR_DAYS 365.25

/* ---- static tables ------------------------------------------------------- */

enum { C_USA, C_CANADA, C_MEXICO, C__N };
enum { CAT_COFFEE, CAT_PASTRY, CAT_BEVERAGE, CAT_MERCH, CAT__N };
enum { W_SUNNY, W_RAINY, W_SNOWY, W_CLOUDY, W_HOT, W_COLD, W__N };

static const char *const country_names[C__N] = {"USA", "Canada", "Mexico"};
static const char *const country_codes[C__N] = {"US", "CA", "MX"};
static const char *const category_names[CAT__N] = {"Coffee", "Pastry", "Beverage", "Merchandise"};
static const char *const weather_names[W__N] = {"Sunny", "Rainy", "Snowy", "Cloudy", "Hot", "Cold"};

/* Price level of each country's menu, converted to USD (per mille), and store size. */
static const int country_price_pm[C__N] = {1000, 920, 720};
static const double country_scale[C__N] = {1.00, 0.90, 0.85};

/* Climate: afternoon high (mean, half the summer-winter swing, day of year of
 * the peak, day-to-day spread) and chance of precipitation (mean, seasonal
 * swing, day of year of the wettest time). */
typedef struct {
    const char *name;
    const char *code;
    int country;
    double t_mean, t_amp;
    int t_peak;
    double t_sd;
    double wet_mean, wet_amp;
    int wet_peak;
    int price_pm; /* city premium on the country's menu */
    const char *timezone;
} city_info;

/* The first twelve are the default stores; the rest follow when --stores > 12. */
static const city_info cities[] = {
    {"Seattle", "SEA", C_USA, 16.0, 8.5, 205, 3.0, 0.42, 0.22, 350, 1050, "America/Los_Angeles"},
    {"New York", "NYC", C_USA, 17.0, 12.5, 200, 4.0, 0.32, 0.03, 180, 1100, "America/New_York"},
    {"Chicago", "CHI", C_USA, 15.0, 14.5, 200, 5.0, 0.32, 0.05, 150, 1000, "America/Chicago"},
    {"Austin", "AUS", C_USA, 26.5, 9.0, 210, 3.5, 0.22, 0.05, 140, 1000, "America/Chicago"},
    {"Toronto", "TOR", C_CANADA, 13.0, 14.0, 200, 4.5, 0.33, 0.04, 330, 1030, "America/Toronto"},
    {"Vancouver", "VAN", C_CANADA, 14.5, 8.0, 205, 2.5, 0.45, 0.22, 340, 1050, "America/Vancouver"},
    {"Montreal", "MTL", C_CANADA, 11.5, 15.5, 200, 5.0, 0.36, 0.04, 340, 1000, "America/Toronto"},
    {"Calgary", "CGY", C_CANADA, 11.0, 12.0, 205, 6.0, 0.25, 0.08, 170, 1000, "America/Edmonton"},
    {"Mexico City", "MEX", C_MEXICO, 24.0, 3.0, 125, 2.0, 0.30, 0.28, 200, 1000, "America/Mexico_City"},
    {"Guadalajara", "GDL", C_MEXICO, 29.0, 4.0, 135, 2.0, 0.25, 0.25, 200, 1000, "America/Mexico_City"},
    {"Monterrey", "MTY", C_MEXICO, 29.0, 8.0, 215, 3.5, 0.18, 0.08, 260, 1000, "America/Monterrey"},
    {"Puebla", "PUE", C_MEXICO, 23.5, 3.0, 125, 2.0, 0.28, 0.25, 200, 1000, "America/Mexico_City"},
    {"Los Angeles", "LAX", C_USA, 23.0, 5.0, 225, 3.0, 0.10, 0.09, 30, 1050, "America/Los_Angeles"},
    {"Ottawa", "OTT", C_CANADA, 11.0, 15.5, 200, 5.0, 0.34, 0.04, 330, 1000, "America/Toronto"},
    {"Tijuana", "TIJ", C_MEXICO, 22.5, 4.0, 230, 2.5, 0.10, 0.08, 30, 1000, "America/Tijuana"},
    {"Miami", "MIA", C_USA, 29.0, 3.5, 210, 1.5, 0.35, 0.15, 200, 1000, "America/New_York"},
    {"Edmonton", "EDM", C_CANADA, 9.5, 13.5, 200, 6.0, 0.25, 0.08, 180, 1000, "America/Edmonton"},
    {"Cancun", "CUN", C_MEXICO, 30.0, 2.5, 215, 1.5, 0.30, 0.12, 270, 1000, "America/Cancun"},
    {"Denver", "DEN", C_USA, 18.5, 12.5, 200, 5.5, 0.22, 0.06, 150, 1000, "America/Denver"},
    {"Halifax", "HFX", C_CANADA, 11.0, 12.0, 210, 4.0, 0.40, 0.05, 340, 1000, "America/Halifax"},
    {"Merida", "MID", C_MEXICO, 33.0, 3.0, 135, 2.0, 0.25, 0.18, 220, 1000, "America/Merida"},
    {"Boston", "BOS", C_USA, 15.5, 12.0, 200, 4.5, 0.32, 0.03, 60, 1050, "America/New_York"},
    {"Winnipeg", "WPG", C_CANADA, 8.5, 17.5, 200, 6.0, 0.25, 0.08, 170, 1000, "America/Winnipeg"},
    {"Queretaro", "QRO", C_MEXICO, 27.0, 3.5, 130, 2.0, 0.20, 0.18, 200, 1000, "America/Mexico_City"},
};
#define NCITIES ((int)COUNT(cities))

/* base: expected units per day in an average US store; hc: hot (-1) to cold
 * (+1) character; cents: 2022 US price; growth: yearly trend on top of the
 * common one; pref: taste by country (USA, Canada, Mexico); gift: sells in the
 * gift season. The first six are the sample's coffee-derived products. */
typedef struct {
    const char *name;
    int category;
    double base, hc;
    int cents;
    double growth;
    double pref[C__N];
    int gift;
} product_info;

static const product_info products[SALESGEN_MAX_PRODUCTS] = {
    {"Caffe Latte", CAT_COFFEE, 55, -0.25, 445, 0.00, {1.00, 1.00, 1.00}, 0},
    {"Cappuccino", CAT_COFFEE, 32, -0.25, 425, -0.01, {1.00, 1.05, 1.00}, 0},
    {"Americano", CAT_COFFEE, 38, -0.25, 325, 0.00, {1.00, 1.10, 1.25}, 0},
    {"Espresso", CAT_COFFEE, 18, -0.10, 245, -0.02, {1.00, 1.00, 1.15}, 0},
    {"Iced Coffee", CAT_COFFEE, 26, 1.00, 365, 0.02, {1.05, 0.90, 1.10}, 0},
    {"Cold Brew", CAT_COFFEE, 20, 0.90, 415, 0.10, {1.10, 0.85, 0.80}, 0},
    {"Blueberry Muffin", CAT_PASTRY, 22, 0.00, 295, 0.00, {1.00, 1.05, 0.90}, 0},
    {"Croissant", CAT_PASTRY, 26, -0.05, 325, 0.00, {1.00, 1.10, 0.95}, 0},
    {"Hot Chocolate", CAT_BEVERAGE, 13, -1.00, 375, 0.00, {1.00, 1.25, 1.30}, 0},
    {"Iced Tea", CAT_BEVERAGE, 12, 1.00, 295, 0.01, {1.10, 0.85, 0.90}, 0},
    {"Mug", CAT_MERCH, 1.1, 0.00, 1495, 0.00, {1.00, 1.00, 1.00}, 1},
    {"Tumbler", CAT_MERCH, 0.8, 0.15, 2495, 0.03, {1.00, 1.00, 0.90}, 1},
    {"Lemonade", CAT_BEVERAGE, 9, 1.00, 325, 0.00, {1.00, 0.80, 1.20}, 0},
    {"Mocha", CAT_COFFEE, 17, -0.50, 495, 0.00, {1.00, 1.00, 1.10}, 0},
    {"Flat White", CAT_COFFEE, 15, -0.30, 475, 0.04, {1.00, 1.10, 0.80}, 0},
    {"Chocolate Chip Cookie", CAT_PASTRY, 19, 0.00, 245, 0.00, {1.00, 1.00, 1.00}, 0},
    {"Cinnamon Roll", CAT_PASTRY, 11, -0.15, 375, 0.00, {1.00, 1.15, 0.90}, 0},
    {"Chai Latte", CAT_BEVERAGE, 13, -0.60, 445, 0.02, {1.00, 1.15, 0.80}, 0},
    {"Iced Latte", CAT_COFFEE, 19, 0.90, 465, 0.06, {1.05, 0.90, 1.05}, 0},
    {"Banana Bread", CAT_PASTRY, 9, 0.00, 345, 0.00, {1.00, 1.00, 1.00}, 0},
    {"Green Tea", CAT_BEVERAGE, 7, -0.40, 275, 0.01, {1.00, 1.00, 0.90}, 0},
    {"Whole Bean Coffee", CAT_MERCH, 2.0, -0.10, 1495, 0.00, {1.00, 1.00, 1.20}, 1},
    {"Caramel Macchiato", CAT_COFFEE, 16, -0.30, 525, 0.00, {1.00, 1.00, 1.05}, 0},
    {"Cheese Danish", CAT_PASTRY, 8, 0.00, 345, 0.00, {1.00, 1.00, 1.10}, 0},
};

/* Weekday profile per category, Monday first. */
static const double weekly[CAT__N][7] = {
    {1.06, 1.06, 1.06, 1.06, 1.03, 0.90, 0.83},
    {0.94, 0.94, 0.95, 0.96, 1.00, 1.12, 1.09},
    {0.93, 0.93, 0.95, 0.97, 1.03, 1.13, 1.06},
    {0.85, 0.85, 0.88, 0.92, 1.02, 1.30, 1.18},
};

/* Weather: store traffic, and a shift towards cold (+) or hot (-) products. */
static const double weather_traffic[W__N] = {1.03, 0.92, 0.80, 1.00, 0.97, 0.90};
static const double weather_shift[W__N] = {0.10, -0.12, -0.30, 0.00, 0.30, -0.25};

static const double promo_lift[CAT__N] = {1.22, 1.30, 1.20, 1.15};
static const double holiday_lift[CAT__N] = {0.82, 1.08, 1.12, 1.10};
static const double major_holiday_lift[CAT__N] = {0.55, 0.55, 0.55, 0.40};

#define TEMP_SLOPE 0.045     /* log-demand per degree C per unit of hot/cold character */
#define TEMP_PIVOT 18.0      /* degrees C where hot and cold products are at base demand */
#define TREND_COMMON 0.03    /* yearly growth of every product */
#define INFLATION_PCT 4      /* yearly menu price increase */
#define PROMO_WEEK_PROB 0.08 /* a store runs a 3-day campaign in 8% of weeks */
#define GIFT_LIFT 2.0        /* merchandise from Nov 20 to Dec 24 */
#define TRAFFIC_SD 0.10      /* day-to-day store traffic (log scale) */
#define STORE_SD 0.20        /* store size (log scale) */
#define HOT_AT 32.0          /* afternoon high for "Hot" */
#define COLD_AT (-3.0)       /* afternoon high for "Cold" */
#define SNOW_AT 2.5          /* precipitation falls as snow at or below this high */

/* ---- calendar ------------------------------------------------------------ */

/* Exactly YYYY-MM-DD, a real date within the supported range. 0 or -1. */
static int parse_date(const char *s, int32_t *out)
{
    if (!s || strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return -1;
    int v[3] = {0, 0, 0};
    static const int at[3] = {0, 5, 8}, len[3] = {4, 2, 2};
    for (int f = 0; f < 3; f++)
        for (int i = 0; i < len[f]; i++) {
            char c = s[at[f] + i];
            if (c < '0' || c > '9')
                return -1;
            v[f] = v[f] * 10 + (c - '0');
        }
    if (v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > util_month_days(v[0], v[1]))
        return -1;
    int32_t d = util_days_from_civil(v[0], v[1], v[2]);
    if (d < util_days_from_civil(1970, 1, 1) || d > util_days_from_civil(2100, 12, 31))
        return -1;
    *out = d;
    return 0;
}

/* ---- randomness ---------------------------------------------------------- */

static uint64_t mix64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

enum {
    TAG_TEMP = 1,
    TAG_TEMP_DAY,
    TAG_WET,
    TAG_WET_DAY,
    TAG_CLOUD,
    TAG_STORE,
    TAG_TRAFFIC,
    TAG_PROMO,
    TAG_DEMAND,
    TAG_ORDERS,
};

/* A hash of (seed, what, who, when): independent streams for every purpose. */
static uint64_t key(uint64_t seed, unsigned tag, uint32_t who, uint32_t when)
{
    uint64_t h = mix64(seed ^ ((uint64_t)tag << 56));
    return mix64(h ^ ((uint64_t)who << 32 | when));
}

static double unit_open(uint64_t h) /* (0, 1) */
{
    return ((double)(h >> 11) + 0.5) * 0x1.0p-53;
}

static double gauss(uint64_t h) /* standard normal (Box-Muller) */
{
    double u1 = unit_open(h), u2 = unit_open(mix64(h));
    return sqrt(-2.0 * log(u1)) * cos(2.0 * PI * u2);
}

/* A standard normal that varies smoothly over `span` days (interpolated knots,
 * rescaled so the variance stays 1 between knots): spells of weather. */
static double smooth_gauss(uint64_t seed, unsigned tag, uint32_t who, int32_t day, int span)
{
    int32_t i = day / span;
    double t = (double)(day - i * span) / span;
    double a = gauss(key(seed, tag, who, (uint32_t)i));
    double b = gauss(key(seed, tag, who, (uint32_t)i + 1));
    return ((1 - t) * a + t * b) / sqrt((1 - t) * (1 - t) + t * t);
}

/* xoshiro256** (Blackman, Vigna), seeded through splitmix64. */
typedef struct {
    uint64_t s[4];
} rng_t;

static void rng_seed(rng_t *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++) {
        seed += 0x9e3779b97f4a7c15ULL;
        uint64_t z = seed;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        r->s[i] = z ^ (z >> 31);
    }
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(rng_t *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

static double rng_unit(rng_t *r) /* [0, 1) */
{
    return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

#define LOGFACT_TABLE 256

static double log_factorial(const double *table, double k)
{
    if (k < LOGFACT_TABLE)
        return table[(int)k];
    /* Stirling's series; exact to double precision beyond 255 */
    return (k + 0.5) * log(k) - k + 0.91893853320467274178 + 1.0 / (12.0 * k) -
           1.0 / (360.0 * k * k * k);
}

/* Poisson(lam): inversion for small means, Hormann's PTRS (transformed
 * rejection, 1993) from 10 on, which costs O(1) whatever the mean. */
static uint64_t poisson(rng_t *r, const double *lf, double lam)
{
    if (lam <= 0)
        return 0;
    if (lam < 10) {
        double p = exp(-lam), f = p, u = rng_unit(r);
        uint64_t k = 0;
        while (u > f && k < 1000) {
            k++;
            p *= lam / (double)k;
            f += p;
        }
        return k;
    }
    double slam = sqrt(lam), loglam = log(lam);
    double b = 0.931 + 2.53 * slam;
    double a = -0.059 + 0.02483 * b;
    double inv_alpha = 1.1239 + 1.1328 / (b - 3.4);
    double vr = 0.9277 - 3.6224 / (b - 2);
    for (;;) {
        double u = rng_unit(r) - 0.5;
        double v = rng_unit(r);
        double us = 0.5 - fabs(u);
        double k = floor((2 * a / us + b) * u + lam + 0.43);
        if (us >= 0.07 && v <= vr)
            return (uint64_t)k;
        if (k < 0 || (us < 0.013 && v > us))
            continue;
        if (log(v) + log(inv_alpha) - log(a / (us * us) + b) <=
            -lam + k * loglam - log_factorial(lf, k))
            return (uint64_t)k;
    }
}

/* ---- the generator ------------------------------------------------------- */

typedef struct {
    int city;
    int number; /* within its city, from 1 */
    double scale;
    char id[16]; /* US-SEA-001 */
} store_t;

typedef struct {
    int weather;
    double temp; /* afternoon high, degrees C */
} city_day;

/* What every product row of one store on one day shares. */
typedef struct {
    int promo;
    double cat_factor[CAT__N]; /* store size, traffic, weekday, holiday, promotion */
    double shift;              /* temperature and weather shift, times hot/cold character */
} store_day;

typedef struct {
    salesgen_options o;
    int32_t first, last;
    int nproducts;
    int (*write_fn)(void *arg, const char *data, size_t len);
    void *arg;
    char *buf;
    size_t len;
    uint64_t rows;
    store_t *stores;
    int32_t *price; /* [store * nproducts + product], cents in price_year */
    int price_year;
    int city_used[NCITIES];
    double logfact[LOGFACT_TABLE];

    /* the current day */
    int32_t day;
    int y, m, d, wd;
    int holiday[C__N]; /* 0 none, 1 holiday, 2 major holiday */
    city_day cday[NCITIES];
    double product_factor[SALESGEN_MAX_PRODUCTS][C__N];
    char date[16];
    size_t date_len;
} gen_t;

static int flush_out(gen_t *g)
{
    if (g->len == 0)
        return RST_OK;
    int rc = g->write_fn(g->arg, g->buf, g->len);
    g->len = 0;
    return rc ? RST_EIO : RST_OK;
}

/* Room for one more row. */
static int reserve_row(gen_t *g)
{
    return OUT_BUF_SIZE - g->len < ROW_MAX ? flush_out(g) : RST_OK;
}

static char *put(char *p, const char *s)
{
    size_t n = strlen(s);
    memcpy(p, s, n);
    return p + n;
}

static char *put_u64(char *p, uint64_t v)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *p++ = tmp[--n];
    return p;
}

static char *put_cents(char *p, uint64_t cents)
{
    p = put_u64(p, cents / 100);
    *p++ = '.';
    *p++ = (char)('0' + cents / 10 % 10);
    *p++ = (char)('0' + cents % 10);
    return p;
}

static void set_err(char *err, size_t errlen, const char *msg)
{
    if (err && errlen)
        snprintf(err, errlen, "%s", msg);
}

/* RST_OK with the inclusive day range, or RST_EINVAL with a reason naming the flag. */
static int check_options(const salesgen_options *o, int32_t *first, int32_t *last, char *err,
                         size_t errlen)
{
    if (o->stores < 1 || o->stores > SALESGEN_MAX_STORES) {
        char m[96];
        snprintf(m, sizeof m, "--stores must be a whole number from 1 to %d", SALESGEN_MAX_STORES);
        set_err(err, errlen, m);
        return RST_EINVAL;
    }
    if (!o->seed_sample && (o->products < 1 || o->products > SALESGEN_MAX_PRODUCTS)) {
        char m[96];
        snprintf(m, sizeof m, "--products must be a whole number from 1 to %d",
                 SALESGEN_MAX_PRODUCTS);
        set_err(err, errlen, m);
        return RST_EINVAL;
    }
    const char *start = o->seed_sample || !o->start ? SALESGEN_SAMPLE_START : o->start;
    const char *end = o->seed_sample || !o->end ? SALESGEN_SAMPLE_END : o->end;
    if (parse_date(start, first)) {
        set_err(err, errlen,
                "--start must be a date YYYY-MM-DD from " SALESGEN_MIN_DATE
                " to " SALESGEN_MAX_DATE);
        return RST_EINVAL;
    }
    if (parse_date(end, last)) {
        set_err(err, errlen,
                "--end must be a date YYYY-MM-DD from " SALESGEN_MIN_DATE " to " SALESGEN_MAX_DATE);
        return RST_EINVAL;
    }
    if (*last < *first) {
        set_err(err, errlen, "--end must not be before --start");
        return RST_EINVAL;
    }
    return RST_OK;
}

/* Writes the id of store number index (0-based) into id[16]: US-SEA-001. */
static void store_id(int index, char *id)
{
    const city_info *c = &cities[index % NCITIES];
    int number = index / NCITIES + 1;
    char *p = put(id, country_codes[c->country]);
    *p++ = '-';
    p = put(p, c->code);
    *p++ = '-';
    *p++ = (char)('0' + number / 100 % 10);
    *p++ = (char)('0' + number / 10 % 10);
    *p++ = (char)('0' + number % 10);
    *p = '\0';
}

int salesgen_store_info(int index, salesgen_store *out)
{
    if (index < 0 || index >= SALESGEN_MAX_STORES)
        return RST_EINVAL;
    const city_info *c = &cities[index % NCITIES];
    store_id(index, out->id);
    out->city = c->name;
    out->country = country_names[c->country];
    out->timezone = c->timezone;
    return RST_OK;
}

static void init_stores(gen_t *g)
{
    for (int s = 0; s < g->o.stores; s++) {
        store_t *st = &g->stores[s];
        st->city = s % NCITIES;
        st->number = s / NCITIES + 1;
        st->scale = country_scale[cities[st->city].country] *
                    exp(STORE_SD * gauss(key(g->o.seed, TAG_STORE, (uint32_t)s, 0)));
        store_id(s, st->id);
        g->city_used[st->city] = 1;
    }
}

/* Menu prices for year y: the 2022 price at the country's and city's level,
 * INFLATION_PCT more each later year (less each earlier one), to 5 cents.
 * Integer arithmetic only, so the same on every machine. */
static void set_prices(gen_t *g, int y)
{
    for (int s = 0; s < g->o.stores; s++) {
        const city_info *c = &cities[g->stores[s].city];
        for (int p = 0; p < g->nproducts; p++) {
            int64_t milli = (int64_t)products[p].cents * country_price_pm[c->country] *
                            c->price_pm / 1000; /* thousandths of a cent */
            for (int k = 2022; k < y; k++)
                milli = milli * (100 + INFLATION_PCT) / 100;
            for (int k = y; k < 2022; k++)
                milli = milli * 100 / (100 + INFLATION_PCT);
            int64_t cents = (milli + 2500) / 5000 * 5;
            g->price[s * g->nproducts + p] = (int32_t)(cents < 5 ? 5 : cents);
        }
    }
    g->price_year = y;
}

static int pick_weather(const gen_t *g, int city, int doy, double *temp_out)
{
    const city_info *c = &cities[city];
    uint64_t seed = g->o.seed;
    uint32_t who = (uint32_t)city;
    uint32_t when = (uint32_t)g->day;
    double season = cos(2 * PI * (doy - c->t_peak) / YEAR_DAYS);
    double z = 0.8 * smooth_gauss(seed, TAG_TEMP, who, g->day, 4) +
               0.6 * gauss(key(seed, TAG_TEMP_DAY, who, when));
    double temp = c->t_mean + c->t_amp * season + c->t_sd * z;
    *temp_out = temp;

    double p_wet = c->wet_mean + c->wet_amp * cos(2 * PI * (doy - c->wet_peak) / YEAR_DAYS);
    p_wet = p_wet < 0.02 ? 0.02 : p_wet > 0.95 ? 0.95 : p_wet;
    double w = 0.75 * smooth_gauss(seed, TAG_WET, who, g->day, 3) +
               0.6614 * gauss(key(seed, TAG_WET_DAY, who, when));
    if (0.5 * erfc(-w / sqrt(2.0)) < p_wet)
        return temp <= SNOW_AT ? W_SNOWY : W_RAINY;
    if (temp >= HOT_AT)
        return W_HOT;
    if (temp <= COLD_AT)
        return W_COLD;
    double p_cloud = 0.30 + 0.12 * cos(2 * PI * (doy - 15) / YEAR_DAYS);
    return unit_open(key(seed, TAG_CLOUD, who, when)) < p_cloud ? W_CLOUDY : W_SUNNY;
}

static void begin_day(gen_t *g, int32_t day)
{
    g->day = day;
    util_civil_from_days(day, &g->y, &g->m, &g->d);
    g->wd = util_weekday(day);
    if (g->y != g->price_year)
        set_prices(g, g->y);
    int doy = (int)(day - util_days_from_civil(g->y, 1, 1));
    for (int c = 0; c < C__N; c++)
        g->holiday[c] = holidays_level(country_names[c], g->y, g->m, g->d);
    for (int c = 0; c < NCITIES; c++)
        if (g->city_used[c])
            g->cday[c].weather = pick_weather(g, c, doy, &g->cday[c].temp);

    double years = (day - util_days_from_civil(2022, 1, 1)) / YEAR_DAYS;
    int gift = (g->m == 11 && g->d >= 20) || (g->m == 12 && g->d <= 24);
    for (int p = 0; p < g->nproducts; p++) {
        const product_info *pi = &products[p];
        double f = pi->base * exp((TREND_COMMON + pi->growth) * years);
        if (gift && pi->gift)
            f *= GIFT_LIFT;
        for (int c = 0; c < C__N; c++)
            g->product_factor[p][c] = f * pi->pref[c];
    }

    char *q = g->date;
    if (g->o.date_columns) {
        q = put_u64(q, (uint64_t)g->d);
        *q++ = ',';
        q = put_u64(q, (uint64_t)g->m);
        *q++ = ',';
        q = put_u64(q, (uint64_t)g->y);
    } else {
        q = put_u64(q, (uint64_t)g->y);
        *q++ = '-';
        *q++ = (char)('0' + g->m / 10);
        *q++ = (char)('0' + g->m % 10);
        *q++ = '-';
        *q++ = (char)('0' + g->d / 10);
        *q++ = (char)('0' + g->d % 10);
    }
    g->date_len = (size_t)(q - g->date);
}

/* A store's 3-day campaign starts Monday to Friday in PROMO_WEEK_PROB of weeks. */
static int promo_on(const gen_t *g, int s)
{
    int32_t week = (g->day + 3) / 7; /* weeks start on Monday */
    uint64_t h = key(g->o.seed, TAG_PROMO, (uint32_t)s, (uint32_t)week);
    if (unit_open(h) >= PROMO_WEEK_PROB)
        return 0;
    int from = (int)(mix64(h) % 5);
    return g->wd >= from && g->wd < from + 3;
}

static void begin_store_day(const gen_t *g, int s, store_day *sd)
{
    const store_t *st = &g->stores[s];
    const city_info *c = &cities[st->city];
    const city_day *cd = &g->cday[st->city];
    double traffic =
        exp(TRAFFIC_SD * gauss(key(g->o.seed, TAG_TRAFFIC, (uint32_t)s, (uint32_t)g->day)) -
            TRAFFIC_SD * TRAFFIC_SD / 2);
    double base = st->scale * traffic * weather_traffic[cd->weather];
    sd->promo = promo_on(g, s);
    int hol = g->holiday[c->country];
    for (int k = 0; k < CAT__N; k++) {
        double f = base * weekly[k][g->wd];
        if (hol == 1)
            f *= holiday_lift[k];
        else if (hol == 2)
            f *= major_holiday_lift[k];
        if (sd->promo)
            f *= promo_lift[k];
        sd->cat_factor[k] = f;
    }
    double t = TEMP_SLOPE * (cd->temp - TEMP_PIVOT);
    t = t < -1.2 ? -1.2 : t > 1.0 ? 1.0 : t;
    sd->shift = t + weather_shift[cd->weather];
}

static double lambda(const gen_t *g, const store_day *sd, int country, int p)
{
    const product_info *pi = &products[p];
    double f = sd->cat_factor[pi->category] * g->product_factor[p][country];
    return pi->hc != 0 ? f * exp(pi->hc * sd->shift) : f;
}

/* "US-SEA-001,2022-01-01,USA,Seattle," */
static char *put_prefix(const gen_t *g, char *p, int s)
{
    const store_t *st = &g->stores[s];
    const city_info *c = &cities[st->city];
    p = put(p, st->id);
    *p++ = ',';
    memcpy(p, g->date, g->date_len);
    p += g->date_len;
    *p++ = ',';
    p = put(p, country_names[c->country]);
    *p++ = ',';
    p = put(p, c->name);
    *p++ = ',';
    return p;
}

/* "Coffee,Caffe Latte,3,4.45,13.35," */
static char *put_sale(const gen_t *g, char *p, int s, int prod, uint64_t qty)
{
    const product_info *pi = &products[prod];
    uint64_t price = (uint64_t)g->price[s * g->nproducts + prod];
    p = put(p, category_names[pi->category]);
    *p++ = ',';
    p = put(p, pi->name);
    *p++ = ',';
    p = put_u64(p, qty);
    *p++ = ',';
    p = put_cents(p, price);
    *p++ = ',';
    p = put_cents(p, qty * price);
    *p++ = ',';
    return p;
}

/* "Sunny,No,No" */
static char *put_suffix(const gen_t *g, char *p, int s, const store_day *sd)
{
    const store_t *st = &g->stores[s];
    int w = g->cday[st->city].weather;
    if (g->o.seed_sample) /* the article's sample knows four kinds of weather */
        w = w == W_HOT ? W_SUNNY : w == W_COLD ? W_CLOUDY : w;
    p = put(p, weather_names[w]);
    p = put(p, sd->promo ? ",Yes," : ",No,");
    p = put(p, g->holiday[cities[st->city].country] ? "Yes" : "No");
    return p;
}

static int write_header(gen_t *g)
{
    char *p = g->buf + g->len;
    p = put(p, "Store ID,");
    p = put(p, g->o.date_columns ? "Day,Month,Year," : "Date,");
    p = put(p, "Country,City,Product Category,Product,Quantity Sold,Price,Total Sale,Weather,"
               "Promotion,Holiday");
    if (g->o.seed_sample)
        p = put(p, ",Customer ID");
    *p++ = '\n';
    g->len = (size_t)(p - g->buf);
    return RST_OK;
}

/* Daily store x product aggregates: one row per store, product and day with
 * at least one unit sold. */
static int write_daily(gen_t *g)
{
    int rc = RST_OK;
    for (int32_t day = g->first; day <= g->last; day++) {
        begin_day(g, day);
        for (int s = 0; s < g->o.stores; s++) {
            store_day sd;
            begin_store_day(g, s, &sd);
            int country = cities[g->stores[s].city].country;
            rng_t r;
            rng_seed(&r, key(g->o.seed, TAG_DEMAND, (uint32_t)s, (uint32_t)day));
            for (int p = 0; p < g->nproducts; p++) {
                uint64_t qty = poisson(&r, g->logfact, lambda(g, &sd, country, p));
                if (qty == 0)
                    continue;
                if ((rc = reserve_row(g)) != RST_OK)
                    return rc;
                char *q = g->buf + g->len;
                q = put_prefix(g, q, s);
                q = put_sale(g, q, s, p, qty);
                q = put_suffix(g, q, s, &sd);
                *q++ = '\n';
                g->len = (size_t)(q - g->buf);
                g->rows++;
            }
        }
    }
    return rc;
}

/* The next of n sorted uniforms, ascending (Bentley and Saxe, 1980): *m holds
 * the maximum of the `left` uniforms still to come. */
static double next_sorted_uniform(rng_t *r, double *m, uint64_t left)
{
    *m *= pow(1.0 - rng_unit(r), 1.0 / (double)left);
    return 1.0 - *m;
}

/* A customer for an order in store s: mostly the store's own regulars (the
 * first ones visit most), sometimes anyone. 1-based. */
static int pick_customer(const gen_t *g, rng_t *r, int s)
{
    int n = g->o.stores;
    int own = s < SALESGEN_SAMPLE_CUSTOMERS ? (SALESGEN_SAMPLE_CUSTOMERS - s + n - 1) / n : 0;
    double u = rng_unit(r);
    if (own == 0 || u < 0.07)
        return (int)(rng_unit(r) * SALESGEN_SAMPLE_CUSTOMERS) + 1;
    double v = rng_unit(r);
    int k = (int)(own * v * v);
    return s + k * n + 1;
}

/* The article's sample: exactly SALESGEN_SAMPLE_ORDERS individual orders,
 * spread over store x day x product cells in proportion to the model's
 * expected demand. Pass 1 sums the demand; pass 2 walks the same cells in
 * the same order against a stream of sorted uniforms. */
static int write_sample(gen_t *g)
{
    int rc = RST_OK;
    double total = 0;
    for (int32_t day = g->first; day <= g->last; day++) {
        begin_day(g, day);
        for (int s = 0; s < g->o.stores; s++) {
            store_day sd;
            begin_store_day(g, s, &sd);
            int country = cities[g->stores[s].city].country;
            for (int p = 0; p < g->nproducts; p++)
                total += lambda(g, &sd, country, p);
        }
    }

    rng_t r;
    rng_seed(&r, key(g->o.seed, TAG_ORDERS, 0, 0));
    uint64_t left = SALESGEN_SAMPLE_ORDERS;
    double m = 1.0;
    double next = next_sorted_uniform(&r, &m, left) * total;
    double cum = 0;
    for (int32_t day = g->first; day <= g->last && left; day++) {
        begin_day(g, day);
        for (int s = 0; s < g->o.stores && left; s++) {
            store_day sd;
            begin_store_day(g, s, &sd);
            int country = cities[g->stores[s].city].country;
            for (int p = 0; p < g->nproducts && left; p++) {
                cum += lambda(g, &sd, country, p);
                int last_cell = day == g->last && s == g->o.stores - 1 && p == g->nproducts - 1;
                while (left && (next < cum || last_cell)) {
                    double u = rng_unit(&r);
                    uint64_t qty = u < 0.72 ? 1 : u < 0.92 ? 2 : u < 0.98 ? 3 : 4;
                    int customer = pick_customer(g, &r, s);
                    if ((rc = reserve_row(g)) != RST_OK)
                        return rc;
                    char *q = g->buf + g->len;
                    q = put_prefix(g, q, s);
                    q = put_sale(g, q, s, p, qty);
                    q = put_suffix(g, q, s, &sd);
                    q = put(q, ",CUST-");
                    *q++ = (char)('0' + customer / 1000 % 10);
                    *q++ = (char)('0' + customer / 100 % 10);
                    *q++ = (char)('0' + customer / 10 % 10);
                    *q++ = (char)('0' + customer % 10);
                    *q++ = '\n';
                    g->len = (size_t)(q - g->buf);
                    g->rows++;
                    if (--left)
                        next = next_sorted_uniform(&r, &m, left) * total;
                }
            }
        }
    }
    return rc;
}

void salesgen_defaults(salesgen_options *o)
{
    o->stores = 12;
    o->products = 12;
    o->start = SALESGEN_SAMPLE_START;
    o->end = SALESGEN_SAMPLE_END;
    o->seed = 42;
    o->seed_sample = 0;
    o->date_columns = 0;
}

int salesgen_write(const salesgen_options *o,
                   int (*write_fn)(void *arg, const char *data, size_t len), void *arg,
                   uint64_t *rows_out, char *err, size_t errlen)
{
    int rc;
    gen_t *g = xcalloc(1, sizeof *g);
    if (rows_out)
        *rows_out = 0;
    if ((rc = check_options(o, &g->first, &g->last, err, errlen)) != RST_OK)
        goto out;
    g->o = *o;
    g->o.seed_sample = o->seed_sample != 0;
    g->o.date_columns = o->date_columns != 0;
    g->nproducts = g->o.seed_sample ? SALESGEN_SAMPLE_PRODUCTS : o->products;
    g->write_fn = write_fn;
    g->arg = arg;
    g->buf = xmalloc(OUT_BUF_SIZE);
    g->stores = xcalloc((size_t)o->stores, sizeof *g->stores);
    g->price = xcalloc((size_t)o->stores * (size_t)g->nproducts, sizeof *g->price);
    g->logfact[0] = 0;
    for (int k = 1; k < LOGFACT_TABLE; k++)
        g->logfact[k] = g->logfact[k - 1] + log((double)k);
    init_stores(g);

    if ((rc = write_header(g)) != RST_OK)
        goto out;
    rc = g->o.seed_sample ? write_sample(g) : write_daily(g);
    if (rc == RST_OK)
        rc = flush_out(g);
    if (rc != RST_OK)
        set_err(err, errlen, "write failed");
out:
    if (rows_out)
        *rows_out = g->rows;
    free(g->price);
    free(g->stores);
    free(g->buf);
    free(g);
    return rc;
}

/* ---- the command --------------------------------------------------------- */

static const char usage_text[] =
    "usage: roastery generate-sales [--stores N] [--products N] [--start YYYY-MM-DD]\n"
    "                               [--end YYYY-MM-DD] [--seed N] [--seed-sample]\n"
    "                               [--date-columns] [--output FILE]\n"
    "\n"
    "Writes GloboJava's synthetic sales history as CSV (stdout by default).\n"
    "  --stores N        stores in cities of the USA, Canada and Mexico (1-2000, default 12)\n"
    "  --products N      products across Coffee, Pastry, Beverage, Merchandise\n"
    "                    (1-24, default 12)\n"
    "  --start, --end    inclusive date range (default 2022-01-01 to 2023-12-31)\n"
    "  --seed N          same options and seed give the same bytes (default 42)\n"
    "  --seed-sample     the article's sample: 10,000 orders over 2022-2023,\n"
    "                    6 coffee products, 1,000 customers\n"
    "  --date-columns    Day, Month, Year columns instead of one ISO Date\n"
    "  --output FILE     write to FILE instead of stdout\n"
    "The model is described in docs/generative-model.md.\n";

static int write_stream(void *arg, const char *data, size_t len)
{
    return fwrite(data, 1, len, (FILE *)arg) == len ? 0 : -1;
}

/* Prints a one-line usage error and returns exit status 2. */
static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("roastery generate-sales: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs(" (try --help)\n", stderr);
    va_end(ap);
    return 2;
}

/* Strict unsigned decimal: digits only, no sign, no overflow. 0 or -1. */
static int parse_u64(const char *s, uint64_t *out)
{
    if (!s || !*s)
        return -1;
    uint64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        unsigned digit = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - digit) / 10)
            return -1;
        v = v * 10 + digit;
    }
    *out = v;
    return 0;
}

int salesgen_main(int argc, char **argv)
{
    salesgen_options o;
    salesgen_defaults(&o);
    const char *output = NULL;
    const char *fixed_by_sample = NULL; /* a flag the sample overrides */
    FILE *f = NULL;
    int status = 0;

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            fputs(usage_text, stdout);
            return 0;
        }
        if (!strcmp(arg, "--seed-sample")) {
            o.seed_sample = 1;
            continue;
        }
        if (!strcmp(arg, "--date-columns")) {
            o.date_columns = 1;
            continue;
        }
        static const char *const with_value[] = {"--stores", "--products", "--start",
                                                 "--end",    "--seed",     "--output"};
        const char *flag = NULL, *val = NULL;
        for (size_t k = 0; k < COUNT(with_value) && !flag; k++) {
            size_t n = strlen(with_value[k]);
            if (!strcmp(arg, with_value[k])) {
                flag = with_value[k];
                if (i + 1 >= argc)
                    return usage_error("%s needs a value", flag);
                val = argv[++i];
            } else if (!strncmp(arg, with_value[k], n) && arg[n] == '=') {
                flag = with_value[k];
                val = arg + n + 1;
            }
        }
        if (!flag)
            return usage_error("unknown option %s", arg);
        long n = 0;
        if (!strcmp(flag, "--stores")) {
            if (parse_long(val, 1, SALESGEN_MAX_STORES, &n) != RST_OK)
                return usage_error("--stores must be a whole number from 1 to %d",
                                   SALESGEN_MAX_STORES);
            o.stores = (int)n;
        } else if (!strcmp(flag, "--products")) {
            if (parse_long(val, 1, SALESGEN_MAX_PRODUCTS, &n) != RST_OK)
                return usage_error("--products must be a whole number from 1 to %d",
                                   SALESGEN_MAX_PRODUCTS);
            o.products = (int)n;
            fixed_by_sample = flag;
        } else if (!strcmp(flag, "--start")) {
            o.start = val;
            fixed_by_sample = flag;
        } else if (!strcmp(flag, "--end")) {
            o.end = val;
            fixed_by_sample = flag;
        } else if (!strcmp(flag, "--seed")) {
            if (parse_u64(val, &o.seed))
                return usage_error("--seed must be a whole number from 0 to %llu",
                                   (unsigned long long)UINT64_MAX);
        } else {
            if (!*val)
                return usage_error("--output needs a file name");
            output = val;
        }
    }
    if (o.seed_sample && fixed_by_sample)
        return usage_error("%s cannot be combined with --seed-sample (the sample is fixed: "
                           "%d products, %s to %s)",
                           fixed_by_sample, SALESGEN_SAMPLE_PRODUCTS, SALESGEN_SAMPLE_START,
                           SALESGEN_SAMPLE_END);

    /* Check the options before creating (and truncating) the output file. */
    char err[160] = "";
    int32_t first, last;
    if (check_options(&o, &first, &last, err, sizeof err) != RST_OK)
        return usage_error("%s", err);
    if (output && !(f = fopen(output, "wb"))) {
        fprintf(stderr, "roastery generate-sales: cannot open %s: %s\n", output, strerror(errno));
        return 1;
    }
    uint64_t rows = 0;
    int rc = salesgen_write(&o, write_stream, f ? f : stdout, &rows, err, sizeof err);
    if (rc == RST_EINVAL) {
        status = usage_error("%s", err);
        goto out;
    }
    if (rc != RST_OK || fflush(f ? f : stdout) != 0 || ferror(f ? f : stdout)) {
        fprintf(stderr, "roastery generate-sales: cannot write %s: %s\n",
                output ? output : "to stdout", strerror(errno));
        status = 1;
        goto out;
    }
    if (output)
        fprintf(stderr, "roastery generate-sales: wrote %llu rows to %s\n",
                (unsigned long long)rows, output);
out:
    if (f && fclose(f) != 0 && status == 0) {
        fprintf(stderr, "roastery generate-sales: cannot write %s: %s\n", output, strerror(errno));
        status = 1;
    }
    return status;
}
