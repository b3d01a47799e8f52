/* roastery forecast on small generated sales and a model trained here: the
 * shape of the output, the trainer's own backtest reproduced from the same
 * inputs, no leakage from days after the origin, promotions and the weather
 * outlook, a later --start, blocks of any size, stdout, the baselines, and
 * every refusal with its exit status; the speed-ups give the same bytes:
 * XGBoost's in-place prediction and forecast_gen's tree evaluator against
 * XGBoost's DMatrix prediction, the hand-made 3 decimals against printf, the
 * canonical fast path of train_data_load against the general CSV path. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "forecasts/forecast_cli.h"
#include "forecasts/forecast_gen.h"
#include "datasets/sales.h"
#include "demo/salesgen.h"
#include "trainer/train_data.h"
#include "trainer/train_report.h"
#include "trainer/train_features.h"
#include "trainer/train_xgb.h"
#include "trainer/trainer.h"
#include "lib/util.h"

static char tmp[64];
static char *csv, *short_csv, *model_xgb, *model_ma, *model_sn, *out_path, *err_path;

static int to_file(void *arg, const char *data, size_t len)
{
    return fwrite(data, 1, len, arg) == len ? 0 : -1;
}

static char *generate(const char *name, int stores, int products, const char *start,
                      const char *end)
{
    salesgen_options o;
    salesgen_defaults(&o);
    o.stores = stores;
    o.products = products;
    o.start = start;
    o.end = end;
    char *path = xasprintf("%s/%s", tmp, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    char err[160];
    assert_int_equal(salesgen_write(&o, to_file, f, NULL, err, sizeof err), RST_OK);
    assert_int_equal(fclose(f), 0);
    return path;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    buf_t b;
    buf_init(&b, 0);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        buf_append(&b, chunk, n);
    fclose(f);
    if (len)
        *len = b.len;
    return b.data ? b.data : xstrdup("");
}

static void spit(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
}

static char *in_tmp(const char *name)
{
    return xasprintf("%s/%s", tmp, name);
}

static int train(const char *out, const char *algorithm)
{
    const char *full[16] = {"train",       "--input", csv,         "--output", out,
                            "--algorithm", algorithm, "--threads", "2"};
    int argc = 9;
    if (!strcmp(algorithm, "xgboost")) {
        full[argc++] = "--params";
        full[argc++] = "{\"num_round\": 40}";
    }
    char *ev = in_tmp("train-events.jsonl");
    FILE *f = fopen(ev, "w");
    assert_non_null(f);
    train_report_set_stream(f);
    int rc = trainer_main(argc, (char **)full);
    train_report_set_stream(NULL);
    fclose(f);
    free(ev);
    return rc;
}

/* Runs `roastery forecast ARGS...` (NULL-terminated) with stdout and stderr
 * sent to out_path and err_path. */
static int forecast(const char *first, ...)
{
    const char *argv[40] = {"forecast", first};
    int argc = 2;
    va_list ap;
    va_start(ap, first);
    const char *a;
    while ((a = va_arg(ap, const char *)) && argc < 39)
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    fflush(stdout);
    fflush(stderr);
    int save1 = dup(1), save2 = dup(2);
    int fd1 = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int fd2 = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(save1 >= 0 && save2 >= 0 && fd1 >= 0 && fd2 >= 0);
    dup2(fd1, 1);
    dup2(fd2, 2);
    int rc = forecast_cli_main(argc, (char **)argv);
    fflush(stdout);
    fflush(stderr);
    dup2(save1, 1);
    dup2(save2, 2);
    close(fd1);
    close(fd2);
    close(save1);
    close(save2);
    return rc;
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmp, sizeof tmp, "/tmp/test_forecast_gen.XXXXXX");
    if (!mkdtemp(tmp))
        return -1;
    csv = generate("sales.csv", 3, 3, "2022-01-01", "2023-12-31");
    short_csv = generate("short.csv", 2, 2, "2023-01-01", "2023-10-31");
    out_path = in_tmp("stdout.txt");
    err_path = in_tmp("stderr.txt");
    model_xgb = in_tmp("xgb");
    model_ma = in_tmp("ma");
    model_sn = in_tmp("sn");
    if (train(model_xgb, "xgboost") || train(model_ma, "moving_average") ||
        train(model_sn, "seasonal_naive"))
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char *cmd = xasprintf("rm -rf '%s'", tmp);
    int rc = system(cmd);
    free(cmd);
    free(csv);
    free(short_csv);
    free(model_xgb);
    free(model_ma);
    free(model_sn);
    free(out_path);
    free(err_path);
    return rc == 0 ? 0 : -1;
}

/* ---- reading the output ------------------------------------------------------------- */

typedef struct {
    char store[32], product[48], date[11];
    double v[5]; /* forecast, lo80, hi80, lo95, hi95 */
} row;

/* new: the rows of a forecast CSV (header checked); *n their count. */
static row *read_rows(const char *path, size_t *n)
{
    char *text = slurp(path, NULL);
    assert_non_null(text);
    const char *hdr = FORECAST_GEN_CSV_HEADER "\n";
    assert_memory_equal(text, hdr, strlen(hdr));
    size_t cap = 64, k = 0;
    row *rows = xmalloc(cap * sizeof *rows);
    char *save = NULL;
    for (char *line = strtok_r(text + strlen(hdr), "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        if (k == cap)
            rows = xrealloc(rows, (cap *= 2) * sizeof *rows);
        row *r = &rows[k++];
        char *f[8] = {0};
        int nf = 0;
        for (char *p = line; nf < 8; nf++) {
            f[nf] = p;
            char *c = strchr(p, ',');
            if (!c) {
                nf++;
                break;
            }
            *c = '\0';
            p = c + 1;
        }
        assert_int_equal(nf, 8);
        snprintf(r->store, sizeof r->store, "%s", f[0]);
        snprintf(r->product, sizeof r->product, "%s", f[1]);
        snprintf(r->date, sizeof r->date, "%s", f[2]);
        for (int j = 0; j < 5; j++) {
            char *end;
            r->v[j] = strtod(f[3 + j], &end);
            assert_true(*end == '\0' && strchr(f[3 + j], '.') &&
                        strlen(strchr(f[3 + j], '.')) == 4);
        }
    }
    free(text);
    *n = k;
    return rows;
}

static const row *find_row(const row *rows, size_t n, const char *store, const char *product,
                           const char *date)
{
    for (size_t k = 0; k < n; k++)
        if (!strcmp(rows[k].store, store) && !strcmp(rows[k].product, product) &&
            !strcmp(rows[k].date, date))
            return &rows[k];
    return NULL;
}

static void check_intervals(const row *rows, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        const double *v = rows[k].v;
        assert_true(v[0] >= 0 && v[3] >= 0);
        assert_true(v[3] <= v[1] && v[1] <= v[0] && v[0] <= v[2] && v[2] <= v[4]);
    }
}

static json_t *result_event(const char *path)
{
    char *text = slurp(path, NULL);
    assert_non_null(text);
    char *at = strstr(text, "{\"event\":\"result\"");
    assert_non_null(at);
    json_t *j = json_loadb(at, strcspn(at, "\n"), 0, NULL);
    free(text);
    assert_non_null(j);
    return j;
}

/* ---- tests -------------------------------------------------------------------------- */

static void test_shape(void **state)
{
    (void)state;
    char *o = in_tmp("f.csv");
    assert_int_equal(
        forecast("--model", model_xgb, "--input", csv, "--output", o, "--model-version", "7", NULL),
        0);
    size_t n;
    row *rows = read_rows(o, &n);
    assert_int_equal(n, 9 * 14);
    /* series by series, day by day within a series */
    assert_string_equal(rows[0].date, "2024-01-01");
    assert_string_equal(rows[13].date, "2024-01-14");
    assert_string_equal(rows[14].date, "2024-01-01");
    for (size_t k = 0; k < n; k++)
        for (size_t q = k + 1; q < n; q++)
            assert_false(!strcmp(rows[k].store, rows[q].store) &&
                         !strcmp(rows[k].product, rows[q].product) &&
                         !strcmp(rows[k].date, rows[q].date));
    check_intervals(rows, n);
    double sum = 0;
    for (size_t k = 0; k < n; k++)
        sum += rows[k].v[0];
    assert_true(sum / (double)n > 1); /* coffee sells */
    json_t *res = result_event(out_path);
    assert_int_equal(json_integer_value(json_object_get(res, "rows")), 126);
    assert_int_equal(json_integer_value(json_object_get(res, "series")), 9);
    assert_int_equal(json_integer_value(json_object_get(res, "days")), 14);
    assert_string_equal(json_string_value(json_object_get(res, "start")), "2024-01-01");
    assert_string_equal(json_string_value(json_object_get(res, "model_version")), "7");
    assert_true(json_is_number(json_object_get(res, "seconds")));
    json_decref(res);

    /* --output -: the same bytes on stdout, the events on stderr */
    char *file = slurp(o, NULL);
    assert_int_equal(forecast("--model", model_xgb, "--input", csv, "--output", "-", NULL), 0);
    char *piped = slurp(out_path, NULL);
    assert_string_equal(file, piped);
    res = result_event(err_path);
    assert_true(json_is_null(json_object_get(res, "model_version")));
    json_decref(res);

    /* a FIFO (or a device such as /dev/null) is written in place, never replaced */
    char *fifo = in_tmp("fifo"), *copy = in_tmp("from-fifo.csv");
    assert_int_equal(mkfifo(fifo, 0644), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        FILE *r = fopen(fifo, "rb"), *w = fopen(copy, "wb");
        char chunk[4096];
        size_t got;
        while (r && w && (got = fread(chunk, 1, sizeof chunk, r)) > 0)
            fwrite(chunk, 1, got, w);
        _exit(r && w && fclose(w) == 0 ? 0 : 1);
    }
    assert_int_equal(forecast("--model", model_xgb, "--input", csv, "--output", fifo, NULL), 0);
    int wst;
    assert_int_equal(waitpid(pid, &wst, 0), pid);
    assert_true(WIFEXITED(wst) && WEXITSTATUS(wst) == 0);
    struct stat sb;
    assert_int_equal(stat(fifo, &sb), 0);
    assert_true(S_ISFIFO(sb.st_mode));
    char *through = slurp(copy, NULL);
    assert_string_equal(file, through);
    free(through);
    free(fifo);
    free(copy);
    free(file);
    free(piped);
    free(rows);
    free(o);
}

/* Forecasting from the first day of the trainer's backtest with the data's own
 * weather and promotions as the outlook and plan gives backtest.csv's rows. */
static void test_reproduces_the_backtest(void **state)
{
    (void)state;
    char err[200];
    train_data *d = NULL;
    assert_int_equal(train_data_load(csv, NULL, &d, err, sizeof err), RST_OK);
    const int32_t w0 = d->ndays - 28; /* the default backtest window */
    buf_t w, p;
    buf_init(&w, 0);
    buf_init(&p, 0);
    buf_puts(&w, "city,date,weather\n");
    buf_puts(&p, "store_id,product,start_date,end_date\n");
    for (size_t s = 0; s < d->nstores; s++)
        for (int32_t t = w0; t < d->ndays; t++) {
            char date[11];
            sales_format_date(d->first_day + t, date);
            uint8_t wx = d->weather[s * (size_t)d->ndays + (size_t)t];
            if (wx) /* one store per city in this data */
                buf_printf(&w, "%s,%s,%s\n", d->city_names[d->store_city[s]], date,
                           sales_weather_name(wx));
        }
    for (size_t i = 0; i < d->nseries; i++)
        for (int32_t t = w0; t < d->ndays; t++)
            if (d->promo[i * (size_t)d->ndays + (size_t)t]) {
                char date[11];
                sales_format_date(d->first_day + t, date);
                buf_printf(&p, "%s,%s,%s,%s\n", d->store_ids[d->series_store[i]],
                           d->product_names[d->series_product[i]], date, date);
            }
    char *wp = in_tmp("outlook.csv"), *pp = in_tmp("plan.csv"), *o = in_tmp("bt.csv");
    spit(wp, w.data);
    spit(pp, p.data);
    char start[11];
    sales_format_date(d->first_day + w0, start);
    assert_int_equal(forecast("--model", model_xgb, "--input", csv, "--output", o, "--start", start,
                              "--weather", wp, "--promotions", pp, NULL),
                     0);
    size_t n;
    row *rows = read_rows(o, &n);
    assert_int_equal(n, 9 * 14);
    char *bt = in_tmp("xgb/backtest.csv");
    char *text = slurp(bt, NULL);
    assert_non_null(text);
    size_t matched = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char date[11], store[32], product[48], alg[32];
        double actual, v[5];
        if (sscanf(line, "%10[^,],%31[^,],%47[^,],%lf,%lf,%lf,%lf,%lf,%lf,%31s", date, store,
                   product, &actual, &v[0], &v[1], &v[2], &v[3], &v[4], alg) != 10 ||
            strcmp(alg, "xgboost"))
            continue;
        const row *r = find_row(rows, n, store, product, date);
        if (!r)
            continue; /* a day of the second origin */
        for (int j = 0; j < 5; j++)
            assert_float_equal(r->v[j], v[j], 1e-9);
        matched++;
    }
    assert_int_equal(matched, 9 * 14);
    free(text);
    free(bt);
    free(rows);
    free(wp);
    free(pp);
    free(o);
    buf_free(&w);
    buf_free(&p);
    train_data_free(d);
}

/* Whatever the file says about the days after the origin (sales, prices,
 * promotions, weather), the forecast made at the origin is the same. */
static void test_no_leakage(void **state)
{
    (void)state;
    char err[200];
    train_data *d = NULL;
    assert_int_equal(train_data_load(csv, NULL, &d, err, sizeof err), RST_OK);
    size_t len;
    char *text = slurp(csv, &len);
    buf_t b;
    buf_init(&b, 0);
    buf_append(&b, text, len);
    free(text);
    /* the generator's columns: Store ID,Date,Country,City,Product Category,Product,
     * Quantity Sold,Price,Total Sale,Weather,Promotion,Holiday */
    for (int32_t t = d->ndays; t < d->ndays + 40; t++) {
        char date[11];
        sales_format_date(d->first_day + t, date);
        for (size_t i = 0; i < d->nseries; i++) {
            size_t s = d->series_store[i], p = d->series_product[i];
            buf_printf(&b, "%s,%s,%s,%s,%s,%s,%d,1.00,%d.00,Snowy,Yes,Yes\n", d->store_ids[s], date,
                       sales_country_name(d->store_country[s]), d->city_names[d->store_city[s]],
                       sales_category_name(d->product_category[p]), d->product_names[p],
                       900 + (int)i, 900 + (int)i);
        }
    }
    char *longer = in_tmp("longer.csv"), *a = in_tmp("cut.csv"), *bb = in_tmp("long.csv");
    spit(longer, b.data);
    buf_free(&b);
    assert_int_equal(forecast("--model", model_xgb, "--input", csv, "--output", a, "--start",
                              "2024-01-01", NULL),
                     0);
    assert_int_equal(forecast("--model", model_xgb, "--input", longer, "--output", bb, "--start",
                              "2024-01-01", NULL),
                     0);
    char *x = slurp(a, NULL), *y = slurp(bb, NULL);
    assert_string_equal(x, y);
    free(x);
    free(y);
    /* the baselines too */
    assert_int_equal(forecast("--model", model_ma, "--input", csv, "--output", a, NULL), 0);
    assert_int_equal(forecast("--model", model_ma, "--input", longer, "--output", bb, "--start",
                              "2024-01-01", NULL),
                     0);
    x = slurp(a, NULL);
    y = slurp(bb, NULL);
    assert_string_equal(x, y);
    free(x);
    free(y);
    free(longer);
    free(a);
    free(bb);
    train_data_free(d);
}

static double product_sum(const row *rows, size_t n, const char *product)
{
    double s = 0;
    for (size_t k = 0; k < n; k++)
        if (!strcmp(rows[k].product, product))
            s += rows[k].v[0];
    return s;
}

static void test_promotions_and_outlook(void **state)
{
    (void)state;
    char *o0 = in_tmp("plain.csv"), *o1 = in_tmp("promo.csv"), *pp = in_tmp("p.csv");
    assert_int_equal(forecast("--model", model_xgb, "--input", csv, "--output", o0, NULL), 0);
    size_t n0, n1;
    row *r0 = read_rows(o0, &n0);
    const char *product = r0[0].product;
    char *plan = xasprintf("store_id,product,start_date,end_date\n"
                           "*,%s,2024-01-01,2024-01-14\n"
                           "US-XXX-999,*,2024-01-01,2024-01-14\n",
                           product);
    spit(pp, plan);
    free(plan);
    assert_int_equal(
        forecast("--model", model_xgb, "--input", csv, "--output", o1, "--promotions", pp, NULL),
        0);
    row *r1 = read_rows(o1, &n1);
    assert_int_equal(n0, n1);
    /* the generated chain sells more on promotion, and the model learned it */
    assert_true(product_sum(r1, n1, product) > product_sum(r0, n0, product));
    for (size_t k = 0; k < n0; k++)
        if (strcmp(r0[k].product, product))
            assert_float_equal(r0[k].v[0], r1[k].v[0], 0); /* the others are not promoted */
    check_intervals(r1, n1);
    json_t *res = result_event(out_path);
    assert_int_equal(json_integer_value(json_object_get(res, "promoted_series_days")), 3 * 14);
    json_decref(res);
    char *ev = slurp(err_path, NULL);
    assert_non_null(strstr(ev, "ignored 1 promotion row"));
    free(ev);

    /* an outlook changes the weather feature of the days it names */
    char *wp = in_tmp("w.csv");
    spit(wp, "city,date,weather\nSeattle,2024-01-03,snowy\nChicago,2024-01-03,Hot\n"
             "Seattle,2023-01-03,Rainy\n");
    assert_int_equal(
        forecast("--model", model_xgb, "--input", csv, "--output", o1, "--weather", wp, NULL), 0);
    res = result_event(out_path);
    assert_int_equal(json_integer_value(json_object_get(res, "outlook_days_used")), 2);
    json_decref(res);
    free(r1);
    r1 = read_rows(o1, &n1);
    for (size_t k = 0; k < n0; k++)
        if (strcmp(r0[k].date, "2024-01-03"))
            assert_float_equal(r0[k].v[0], r1[k].v[0], 0);
    free(r0);
    free(r1);
    free(wp);
    free(o0);
    free(o1);
    free(pp);
}

/* Direct forecasting: a day's forecast does not depend on the origin within
 * the horizon, so a later --start gives the same rows for the days it shares. */
static void test_later_start(void **state)
{
    (void)state;
    char *o0 = in_tmp("s0.csv"), *o1 = in_tmp("s1.csv");
    assert_int_equal(forecast("--model", model_xgb, "--input", csv, "--output", o0, NULL), 0);
    assert_int_equal(forecast("--model", model_xgb, "--input", csv, "--output", o1, "--start",
                              "2024-01-05", NULL),
                     0);
    size_t n0, n1;
    row *r0 = read_rows(o0, &n0), *r1 = read_rows(o1, &n1);
    assert_int_equal(n1, 9 * 10); /* the model reaches 2024-01-14 */
    for (size_t k = 0; k < n1; k++) {
        const row *r = find_row(r0, n0, r1[k].store, r1[k].product, r1[k].date);
        assert_non_null(r);
        for (int j = 0; j < 5; j++)
            assert_float_equal(r->v[j], r1[k].v[j], 0);
    }
    assert_int_equal(forecast("--model", model_xgb, "--input", csv, "--output", o1, "--start",
                              "2024-01-05", "--horizon", "3", NULL),
                     0);
    free(r1);
    r1 = read_rows(o1, &n1);
    assert_int_equal(n1, 9 * 3);
    free(r0);
    free(r1);
    free(o0);
    free(o1);
}

typedef struct {
    buf_t b;
    int blocks;
} collect;

static int collect_rows(void *arg, const forecast_gen_block *blk)
{
    collect *c = arg;
    char line[FORECAST_GEN_MAX_LINE];
    for (size_t i = 0; i < blk->nseries; i++)
        for (int j = 0; j < blk->ndays; j++)
            buf_append(&c->b, line, forecast_gen_format_row(line, blk, i, j));
    c->blocks++;
    return 0;
}

static int refuse(void *arg, const forecast_gen_block *blk)
{
    (void)arg;
    (void)blk;
    return 42;
}

/* Blocks of one series give the same rows as one block of all. */
static void test_blocks(void **state)
{
    (void)state;
    char err[300];
    train_data *d = NULL;
    forecast_gen_model *m = NULL;
    assert_int_equal(train_data_load(csv, NULL, &d, err, sizeof err), RST_OK);
    assert_int_equal(forecast_gen_model_load(model_xgb, 2, &m, err, sizeof err), RST_OK);
    assert_int_equal(forecast_gen_model_horizon(m), 14);
    assert_string_equal(forecast_gen_model_algorithm(m), "xgboost");
    collect a = {0}, b = {0};
    buf_init(&a.b, 0);
    buf_init(&b.b, 0);
    forecast_gen_options o = {.start = INT32_MIN, .threads = 2, .block_rows = 1};
    forecast_gen_stats st;
    assert_int_equal(forecast_gen_run(m, d, NULL, &o, collect_rows, &a, &st, err, sizeof err), 0);
    assert_int_equal(a.blocks, 9);
    assert_int_equal(st.rows, 126);
    /* the tree evaluator predicted, checked against XGBoost on the first block
     * whole and on every other */
    assert_int_equal(st.own_trees, 1);
    assert_int_equal(st.checked_rows, 126);
    o.block_rows = 0;
    o.threads = 1;
    assert_int_equal(forecast_gen_run(m, d, NULL, &o, collect_rows, &b, &st, err, sizeof err), 0);
    assert_int_equal(b.blocks, 1);
    assert_string_equal(a.b.data, b.b.data);
    /* a sink's refusal stops the run with its value */
    assert_int_equal(forecast_gen_run(m, d, NULL, &o, refuse, NULL, &st, err, sizeof err), 42);
    buf_free(&a.b);
    buf_free(&b.b);
    forecast_gen_model_free(m);
    train_data_free(d);
}

static void test_baselines(void **state)
{
    (void)state;
    char err[200];
    train_data *d = NULL;
    assert_int_equal(train_data_load(csv, NULL, &d, err, sizeof err), RST_OK);
    char *o = in_tmp("b.csv");
    size_t n;
    /* moving_average: the mean of the last 28 days, every day */
    assert_int_equal(forecast("--model", model_ma, "--input", csv, "--output", o, NULL), 0);
    row *rows = read_rows(o, &n);
    assert_int_equal(n, 9 * 14);
    check_intervals(rows, n);
    const float *q = d->qty; /* series 0 */
    double sum = 0;
    for (int32_t t = d->ndays - 28; t < d->ndays; t++)
        sum += q[t];
    assert_string_equal(rows[0].store, d->store_ids[d->series_store[0]]);
    assert_float_equal(rows[0].v[0], sum / 28, 0.0006);
    assert_float_equal(rows[13].v[0], rows[0].v[0], 0);
    free(rows);
    /* seasonal_naive: the same weekday of the last week */
    assert_int_equal(
        forecast("--model", model_sn, "--input", csv, "--output", o, "--horizon", "7", NULL), 0);
    rows = read_rows(o, &n);
    assert_int_equal(n, 9 * 7);
    for (int j = 0; j < 7; j++)
        assert_float_equal(rows[j].v[0], q[d->ndays - 7 + j], 1e-9);
    check_intervals(rows, n);
    free(rows);
    free(o);
    train_data_free(d);
}

static void test_refusals(void **state)
{
    (void)state;
    char *o = in_tmp("refused/f.csv"), *dir = in_tmp("refused");
    assert_int_equal(mkdir(dir, 0755), 0);
    char *bad = in_tmp("bad.csv");
#define F(...) forecast(__VA_ARGS__, NULL)
    assert_int_equal(F("--input", csv, "--output", o), 2);
    assert_int_equal(F("--model", model_xgb, "--output", o), 2);
    assert_int_equal(F("--model", model_xgb, "--input", csv), 2);
    assert_int_equal(F("--model", model_xgb, "--input", csv, "--output", o, "--bogus", "1"), 2);
    assert_int_equal(
        F("--model", model_xgb, "--input", csv, "--output", o, "--start", "2024-13-01"), 2);
    char *ev = slurp(err_path, NULL);
    assert_non_null(strstr(ev, "--start"));
    free(ev);
    assert_int_equal(F("--model", model_xgb, "--input", csv, "--output", o, "--horizon", "0"), 2);
    assert_int_equal(F("--model", model_xgb, "--input", csv, "--output", o, "--threads", "x"), 2);
    assert_int_equal(F("--model", model_xgb, "--input", csv, "--output", o, "--horizon", "15"), 2);
    /* more than the horizon after the history's last day (2023-12-31) */
    assert_int_equal(
        F("--model", model_xgb, "--input", csv, "--output", o, "--start", "2024-01-15"), 2);
    ev = slurp(err_path, NULL);
    assert_non_null(strstr(ev, "--start 2024-01-15 is 15 days after"));
    free(ev);
    assert_int_equal(F("--model", model_xgb, "--input", csv, "--output", o, "--start", "2024-01-05",
                       "--horizon", "11"),
                     2);
    ev = slurp(err_path, NULL);
    assert_non_null(strstr(ev, "--horizon 11"));
    free(ev);
    /* bad plans and outlooks name their flag and line */
    spit(bad, "store_id,product,start_date,end_date\n*,*,2024-01-05,2024-01-01\n");
    assert_int_equal(F("--model", model_xgb, "--input", csv, "--output", o, "--promotions", bad),
                     2);
    ev = slurp(err_path, NULL);
    assert_non_null(strstr(ev, "--promotions"));
    assert_non_null(strstr(ev, "line 2"));
    free(ev);
    spit(bad, "store,product,start_date,end_date\n");
    assert_int_equal(F("--model", model_xgb, "--input", csv, "--output", o, "--promotions", bad),
                     2);
    spit(bad, "city,date,weather\nSeattle,2024-01-01,Foggy\n");
    assert_int_equal(F("--model", model_xgb, "--input", csv, "--output", o, "--weather", bad), 2);
    spit(bad, "city,date,weather\nSeattle,2024-01-01,Sunny\nSeattle,2024-01-01,Rainy\n");
    assert_int_equal(F("--model", model_xgb, "--input", csv, "--output", o, "--weather", bad), 2);
    char *missing = in_tmp("nothing");
    assert_int_equal(F("--model", model_xgb, "--input", csv, "--output", o, "--weather", missing),
                     2);
    assert_int_equal(F("--help"), 0);
    /* other failures */
    assert_int_equal(F("--model", missing, "--input", csv, "--output", o), 1);
    assert_int_equal(F("--model", model_xgb, "--input", missing, "--output", o), 1);
    /* 304 days cannot hold the model's year-ago lags */
    assert_int_equal(F("--model", model_xgb, "--input", short_csv, "--output", o), 3);
    ev = slurp(out_path, NULL);
    assert_non_null(strstr(ev, "not enough history"));
    assert_non_null(strstr(ev, "needs 405 days"));
    free(ev);
    /* the baselines need four weeks only */
    assert_int_equal(F("--model", model_ma, "--input", short_csv, "--output", o), 0);
    unlink(o);
#undef F
    /* nothing was left in the output directory by a refused command */
    char *cmd = xasprintf("test -z \"$(ls -A '%s')\"", dir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    free(missing);
    free(bad);
    free(dir);
    free(o);
}

/* XGBoost's in-place (dense) prediction and forecast_gen's own tree evaluator
 * give the floats of XGBoost's DMatrix prediction, bit for bit, on every
 * feature row of the history, also with missing and odd categories. */
static void test_predictors(void **state)
{
    (void)state;
    char err[300];
    train_data *d = NULL;
    forecast_gen_model *m = NULL;
    train_xgb *x = NULL;
    assert_int_equal(train_data_load(csv, NULL, &d, err, sizeof err), RST_OK);
    assert_int_equal(forecast_gen_model_load(model_xgb, 2, &m, err, sizeof err), RST_OK);
    char *mp = in_tmp("xgb/model.json"), *fp = in_tmp("xgb/features.json");
    assert_int_equal(train_xgb_load(mp, 2, &x, err, sizeof err), RST_OK);
    json_t *spec = json_load_file(fp, 0, NULL);
    assert_non_null(spec);
    train_features f;
    memset(&f, 0, sizeof f);
    assert_int_equal(train_features_bind(&f, spec, d, err, sizeof err), RST_OK);
    float *mx = train_features_matrix(&f, d, 0, d->ndays, 2, NULL, NULL);
    assert_non_null(mx);
    const size_t rows = d->nseries * (size_t)d->ndays, nf = (size_t)f.nfeat;
    /* every second row again with odd values in the categorical columns:
     * missing, unseen, negative, fractional, past the bitsets, huge */
    const float odd[] = {NAN, 999, -1, 2.5f, 31.0f, 64.0f, 1e9f, -0.0f};
    const size_t total = rows + rows / 2;
    mx = xrealloc(mx, total * nf * sizeof *mx);
    for (size_t r = 0; r < rows / 2; r++) {
        float *to = mx + (rows + r) * nf;
        memcpy(to, mx + 2 * r * nf, nf * sizeof *to);
        for (size_t k = 0; k < nf; k++)
            if (f.types[k] == 'c' && (r + k) % 3 == 0)
                to[k] = odd[(r + k) % (sizeof odd / sizeof *odd)];
    }
    float *a = xmalloc(total * sizeof *a), *b = xmalloc(total * sizeof *b),
          *c = xmalloc(total * sizeof *c);
    train_xgb_set set = {mx, NULL, total};
    assert_int_equal(train_xgb_predict(x, &set, f.nfeat, 2, a, err, sizeof err), RST_OK);
    assert_int_equal(train_xgb_predict_dense(x, mx, total, f.nfeat, b, err, sizeof err), RST_OK);
    assert_int_equal(forecast_gen_model_predict(m, mx, total, 2, c), RST_OK);
    assert_memory_equal(a, b, total * sizeof *a);
    assert_memory_equal(a, c, total * sizeof *a);
    /* any number of rows and threads (the evaluator walks rows in groups) */
    for (size_t n = 1; n < 40; n += 3) {
        assert_int_equal(forecast_gen_model_predict(m, mx + 5 * nf, n, 3, c), RST_OK);
        assert_memory_equal(a + 5, c, n * sizeof *c);
    }
    /* a baseline has no trees */
    forecast_gen_model *ma = NULL;
    assert_int_equal(forecast_gen_model_load(model_ma, 1, &ma, err, sizeof err), RST_OK);
    assert_int_equal(forecast_gen_model_predict(ma, mx, 1, 1, c), RST_EINVAL);
    forecast_gen_model_free(ma);
    free(a);
    free(b);
    free(c);
    free(mx);
    train_features_clear(&f);
    json_decref(spec);
    train_xgb_free(x);
    free(mp);
    free(fp);
    forecast_gen_model_free(m);
    train_data_free(d);
}

/* The hand-made numbers are printf's "%.3f", rounding ties of the binary
 * value included. */
static void test_three_decimals(void **state)
{
    (void)state;
    char *store = xstrdup("S"), *product = xstrdup("P");
    uint32_t zero = 0;
    train_data h;
    memset(&h, 0, sizeof h);
    h.series_store = &zero;
    h.series_product = &zero;
    const char dates[1][11] = {"2024-01-01"};
    float v[5];
    float bounds[4];
    forecast_gen_block b = {.history = &h,
                            .nseries = 1,
                            .ndays = 1,
                            .forecast = v,
                            .bounds = bounds,
                            .store_csv = &store,
                            .product_csv = &product,
                            .dates = dates};
    uint64_t seed = 42;
    for (long k = 0; k < 2000000; k++) {
        float x;
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        uint32_t r = (uint32_t)(seed >> 32);
        switch (k % 5) {
        case 0: /* near a tie at the fourth decimal */
            x = (float)((double)(r % 10000000) / 1000.0 + 0.0005);
            break;
        case 1: /* exact thousandths and their float neighbours */
            x = nextafterf((float)((double)(r % 1000000) / 1000.0), r & 1 ? INFINITY : 0);
            break;
        case 2: /* any positive float up to 1e9 */
            memcpy(&x, &r, sizeof x);
            x = fabsf(x);
            if (!(x < 1e9f))
                x = (float)(r % 1000);
            break;
        case 3: /* small */
            x = (float)(r % 100000) / 1e7f;
            break;
        default:
            x = (float)(r % 100000) / 8.0f; /* exact binary fractions, some ties */
        }
        v[0] = x;
        for (int q = 0; q < 4; q++)
            bounds[q] = x * (float)(q + 1) / 3.0f;
        char line[FORECAST_GEN_MAX_LINE + 1], want[200];
        size_t n = forecast_gen_format_row(line, &b, 0, 0);
        line[n] = '\0';
        snprintf(want, sizeof want, "S,P,2024-01-01,%.3f,%.3f,%.3f,%.3f,%.3f\n", (double)v[0],
                 (double)bounds[0], (double)bounds[1], (double)bounds[2], (double)bounds[3]);
        if (strcmp(line, want))
            fail_msg("%.9g: '%s' != '%s'", (double)x, line, want);
    }
    free(store);
    free(product);
}

/* Two loads of the same history: the same series, arrays and counts. */
static void assert_same_data(const train_data *a, const train_data *b)
{
    assert_int_equal(a->first_day, b->first_day);
    assert_int_equal(a->ndays, b->ndays);
    assert_int_equal(a->nseries, b->nseries);
    assert_int_equal(a->nstores, b->nstores);
    assert_int_equal(a->nproducts, b->nproducts);
    assert_int_equal(a->ncities, b->ncities);
    assert_int_equal(a->nholidays, b->nholidays);
    assert_int_equal(a->rows, b->rows);
    assert_int_equal(a->mismatches, b->mismatches);
    const size_t N = a->nseries * (size_t)a->ndays, S = a->nstores * (size_t)a->ndays;
    for (size_t s = 0; s < a->nstores; s++) {
        assert_string_equal(a->store_ids[s], b->store_ids[s]);
        assert_int_equal(a->store_country[s], b->store_country[s]);
        assert_int_equal(a->store_city[s], b->store_city[s]);
    }
    for (size_t p = 0; p < a->nproducts; p++) {
        assert_string_equal(a->product_names[p], b->product_names[p]);
        assert_int_equal(a->product_category[p], b->product_category[p]);
    }
    for (size_t c = 0; c < a->ncities; c++)
        assert_string_equal(a->city_names[c], b->city_names[c]);
    assert_memory_equal(a->series_store, b->series_store, a->nseries * sizeof *a->series_store);
    assert_memory_equal(a->series_product, b->series_product,
                        a->nseries * sizeof *a->series_product);
    assert_memory_equal(a->qty, b->qty, N * sizeof *a->qty);
    assert_memory_equal(a->price, b->price, N * sizeof *a->price);
    assert_memory_equal(a->promo, b->promo, N);
    assert_memory_equal(a->weather, b->weather, S);
    assert_memory_equal(a->holiday, b->holiday, S);
    assert_memory_equal(a->holiday_name, b->holiday_name, S * sizeof *a->holiday_name);
    assert_memory_equal(a->holiday_next, b->holiday_next, S);
    assert_memory_equal(a->holiday_last, b->holiday_last, S);
}

/* new: the generated history rewritten as the canonical file (server/datasets/ingest.c's
 * column order), keeping its first ncols columns. */
static char *canonical(int ncols, size_t *len)
{
    char *text = slurp(csv, NULL);
    buf_t b;
    buf_init(&b, 0);
    static const char *const names[] = {"date",     "store_id", "country",   "city",
                                        "category", "product",  "quantity",  "unit_price",
                                        "total",    "weather",  "promotion", "holiday"};
    static const int from[] = {1, 0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}; /* generator's order */
    for (int k = 0; k < ncols; k++)
        buf_printf(&b, "%s%s", k ? "," : "", names[k]);
    buf_puts(&b, "\n");
    char *save = NULL;
    int first = 1;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (first) { /* the generator's header */
            first = 0;
            continue;
        }
        char *f[12] = {0};
        int nf = 0;
        for (char *p = line; nf < 12; nf++) {
            f[nf] = p;
            char *c = strchr(p, ',');
            if (!c) {
                nf++;
                break;
            }
            *c = '\0';
            p = c + 1;
        }
        assert_int_equal(nf, 12);
        for (int k = 0; k < ncols; k++)
            buf_printf(&b, "%s%s", k ? "," : "", f[from[k]]);
        buf_puts(&b, "\n");
    }
    free(text);
    *len = b.len;
    return b.data;
}

/* train_data_load's fast path for canonical files reads what the general CSV
 * path reads (train_data_load_buffer always takes the general path), and a
 * file with a line it does not take is read by the general path whole. */
static void test_canonical_fast_path(void **state)
{
    (void)state;
    char err[300], err2[300];
    for (int ncols = 8; ncols <= 12; ncols += 4) {
        size_t len;
        char *text = canonical(ncols, &len);
        char *path = in_tmp("canonical.csv");
        spit(path, text);
        train_data *a = NULL, *b = NULL;
        assert_int_equal(train_data_load(path, NULL, &a, err, sizeof err), RST_OK);
        assert_int_equal(train_data_load_buffer(text, len, &b, err, sizeof err), RST_OK);
        assert_same_data(a, b);
        assert_string_equal(a->sha256, b->sha256);
        assert_int_equal(a->bytes, len);
        train_data_free(a);
        /* no hash when asked */
        train_data_options o = {.skip_sha256 = 1};
        assert_int_equal(train_data_load(path, &o, &a, err, sizeof err), RST_OK);
        assert_string_equal(a->sha256, "");
        assert_same_data(a, b);
        train_data_free(a);

        /* a quoted name, spaces, other spellings, CRLF: the general path, the same data */
        for (size_t k = 0; k < 3; k++) {
            buf_t t;
            buf_init(&t, 0);
            char *nl = strchr(text, '\n'), *second = strchr(nl + 1, '\n');
            buf_append(&t, text, (size_t)(nl + 1 - text));
            /* the first data line's store quoted / spaced / CR ended */
            char *line = xstrndup(nl + 1, (size_t)(second - nl - 1));
            char *comma = strchr(line, ','), *rest = strchr(comma + 1, ',');
            buf_append(&t, line, (size_t)(comma + 1 - line));
            char *store = xstrndup(comma + 1, (size_t)(rest - comma - 1));
            if (k == 0)
                buf_printf(&t, "\"%s\"%s", store, rest);
            else if (k == 1)
                buf_printf(&t, " %s%s", store, rest);
            else
                buf_printf(&t, "%s%s\r", store, rest);
            buf_puts(&t, "\n");
            buf_puts(&t, second + 1);
            free(store);
            free(line);
            spit(path, t.data);
            assert_int_equal(train_data_load(path, NULL, &a, err, sizeof err), RST_OK);
            train_data *c = NULL;
            assert_int_equal(train_data_load_buffer(t.data, t.len, &c, err, sizeof err), RST_OK);
            assert_same_data(a, c);
            assert_same_data(a, b);
            train_data_free(a);
            train_data_free(c);
            buf_free(&t);
        }
        /* a bad last line: the general path's error */
        buf_t t;
        buf_init(&t, 0);
        buf_append(&t, text, len);
        buf_puts(&t, "2023-12-31,US-X,USA,Somewhere,Coffee,Latte,-3,1.00");
        for (int k = 8; k < ncols; k++)
            buf_puts(&t, ",");
        buf_puts(&t, "\n");
        spit(path, t.data);
        assert_int_equal(train_data_load(path, NULL, &a, err, sizeof err), RST_EINVAL);
        assert_int_equal(train_data_load_buffer(t.data, t.len, &a, err2, sizeof err2), RST_EINVAL);
        assert_string_equal(err, err2);
        assert_non_null(strstr(err, "quantity"));
        buf_free(&t);
        train_data_free(b);
        free(path);
        free(text);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shape),
        cmocka_unit_test(test_reproduces_the_backtest),
        cmocka_unit_test(test_no_leakage),
        cmocka_unit_test(test_promotions_and_outlook),
        cmocka_unit_test(test_later_start),
        cmocka_unit_test(test_blocks),
        cmocka_unit_test(test_baselines),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_predictors),
        cmocka_unit_test(test_three_decimals),
        cmocka_unit_test(test_canonical_fast_path),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
