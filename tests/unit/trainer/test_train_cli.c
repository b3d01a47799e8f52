/* roastery train as a command, on small generated sales: SIGTERM leaves no
 * outputs, the same seed gives the same model bytes, the outputs' shapes, a
 * saved model scored again, the baselines, rolling origins, and every refusal
 * with its exit status. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "demo/salesgen.h"
#include "trainer/train_data.h"
#include "trainer/train_report.h"
#include "trainer/trainer.h"
#include "lib/util.h"

static char tmp[64];
static char *csv, *short_csv, *events_path;

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

static int setup(void **state)
{
    (void)state;
    snprintf(tmp, sizeof tmp, "/tmp/test_train_cli.XXXXXX");
    if (!mkdtemp(tmp))
        return -1;
    csv = generate("sales.csv", 3, 3, "2022-01-01", "2023-12-31");
    short_csv = generate("short.csv", 2, 2, "2023-01-01", "2023-10-31");
    events_path = xasprintf("%s/events.jsonl", tmp);
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
    free(events_path);
    return rc == 0 ? 0 : -1;
}

/* Runs `roastery train ARGS...` (NULL-terminated), events into events_path. */
static int train(const char *first, ...)
{
    const char *argv[40] = {"train", first};
    int argc = 2;
    va_list ap;
    va_start(ap, first);
    const char *a;
    while ((a = va_arg(ap, const char *)) && argc < 39)
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    FILE *ev = fopen(events_path, "w");
    assert_non_null(ev);
    train_report_set_stream(ev);
    int rc = trainer_main(argc, (char **)argv);
    train_report_set_stream(NULL);
    fclose(ev);
    return rc;
}

/* new: the whole file, NUL-terminated; NULL when it cannot be read. */
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

static char *path_in(const char *dir, const char *name)
{
    return xasprintf("%s/%s/%s", tmp, dir, name);
}

static json_t *load_json(const char *dir, const char *name)
{
    char *p = path_in(dir, name);
    json_t *j = json_load_file(p, 0, NULL);
    free(p);
    assert_non_null(j);
    return j;
}

static double get_num(json_t *o, const char *a, const char *b, const char *c)
{
    json_t *v = json_object_get(o, a);
    if (b)
        v = json_object_get(v, b);
    if (c)
        v = json_object_get(v, c);
    if (!json_is_number(v))
        fail_msg("%s.%s.%s is not a number", a, b ? b : "", c ? c : "");
    return json_number_value(v);
}

/* Entries of dir other than . and .. */
static int entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

static char *out_dir(const char *name)
{
    return xasprintf("%s/%s", tmp, name);
}

/* First: the forked child must not inherit an OpenMP pool from this process. */
static void test_sigterm_leaves_no_outputs(void **state)
{
    (void)state;
    char *out = out_dir("stopped");
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int rc =
            train("--input", csv, "--output", out, "--threads", "1", "--params",
                  "{\"num_round\": 5000, \"eta\": 0.001, \"early_stopping_rounds\": 1000}", NULL);
        _exit(rc);
    }
    /* wait until it trains, then stop it */
    int training = 0;
    for (int i = 0; i < 400 && !training; i++) {
        char *ev = slurp(events_path, NULL);
        training = ev && strstr(ev, "\"name\":\"valid-rmse\"") != NULL;
        free(ev);
        if (!training)
            nanosleep(&(struct timespec){0, 50 * 1000 * 1000}, NULL);
    }
    assert_true(training);
    kill(pid, SIGTERM);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 128 + SIGTERM);
    assert_int_equal(entries(out), 0); /* no outputs, no temporary files */
    char *ev = slurp(events_path, NULL);
    assert_non_null(strstr(ev, "stopped by signal 15"));
    free(ev);
    free(out);
}

static void test_same_seed_same_model_and_outputs(void **state)
{
    (void)state;
    char *a = out_dir("a"), *b = out_dir("b");
    const char *params = "{\"num_round\": 40}";
    assert_int_equal(
        train("--input", csv, "--output", a, "--threads", "2", "--params", params, NULL), 0);
    assert_int_equal(
        train("--input", csv, "--output", b, "--threads", "2", "--params", params, NULL), 0);
    char *pa = path_in("a", "model.json"), *pb = path_in("b", "model.json");
    size_t la = 0, lb = 0;
    char *ma = slurp(pa, &la), *mb = slurp(pb, &lb);
    assert_non_null(ma);
    assert_true(la > 1000);
    assert_int_equal(la, lb);
    assert_memory_equal(ma, mb, la);
    free(ma);
    free(mb);
    free(pa);
    free(pb);
    assert_int_equal(entries(a), 5); /* and nothing else */

    json_t *m = load_json("a", "metrics.json");
    assert_string_equal(json_string_value(json_object_get(m, "algorithm")), "xgboost");
    double w = get_num(m, "overall", "wape", NULL);
    assert_true(w > 0 && w < 1);
    assert_true(get_num(m, "baselines", "seasonal_naive", "wape") > 0);
    assert_true(get_num(m, "baselines", "moving_average", "wape") > 0);
    assert_true(get_num(m, "overall", "coverage80", NULL) > 0.5);
    get_num(m, "improvement_vs_seasonal_naive", NULL, NULL);
    assert_true(get_num(m, "best_iteration", NULL, NULL) < 40);
    assert_int_equal(json_object_size(json_object_get(m, "per_store")), 3);
    assert_int_equal(json_object_size(json_object_get(m, "per_product")), 3);
    assert_true(json_object_size(json_object_get(m, "feature_importance")) > 5);
    get_num(m, "per_store", "US-SEA-001", "wape");
    json_decref(m);

    json_t *r = load_json("a", "run.json");
    train_data *d = NULL;
    char err[200];
    assert_int_equal(train_data_load(csv, NULL, &d, err, sizeof err), RST_OK);
    assert_string_equal(json_string_value(json_object_get(r, "input_sha256")), d->sha256);
    assert_int_equal(get_num(r, "rows", NULL, NULL), d->rows);
    assert_int_equal(get_num(r, "parameters", "params", "num_round"), 40);
    assert_int_equal(get_num(r, "parameters", "params", "max_depth"), 8);
    assert_int_equal(get_num(r, "parameters", "seed", NULL), 42);
    assert_non_null(json_string_value(json_object_get(r, "xgboost_version")));
    json_decref(r);

    json_t *f = load_json("a", "features.json");
    assert_int_equal(get_num(f, "horizon", NULL, NULL), 14);
    assert_true(json_array_size(json_object_get(f, "features")) > 40);
    assert_int_equal(json_array_size(json_object_get(json_object_get(f, "levels"), "store")), 3);
    json_decref(f);

    char *bt = path_in("a", "backtest.csv");
    char *text = slurp(bt, NULL);
    static const char header[] =
        "date,store_id,product,actual,forecast,lo80,hi80,lo95,hi95,algorithm\n";
    assert_true(!strncmp(text, header, strlen(header)));
    size_t lines = 0;
    for (char *p = text; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 1 + 3 * 28 * d->nseries); /* xgboost + the two baselines */
    assert_non_null(strstr(text, ",seasonal_naive\n"));
    free(text);
    free(bt);

    /* events: phases in order, per-round metrics, the result last */
    char *ev = slurp(events_path, NULL);
    const char *phases[] = {"\"phase\":\"load\"",  "\"phase\":\"features\"",
                            "\"phase\":\"train\"", "\"phase\":\"backtest\"",
                            "\"phase\":\"write\"", "\"event\":\"result\""};
    const char *at = ev;
    for (size_t k = 0; k < sizeof phases / sizeof phases[0]; k++) {
        at = strstr(at, phases[k]);
        if (!at)
            fail_msg("no %s in order", phases[k]);
    }
    assert_non_null(strstr(ev, "\"name\":\"valid-wape\""));
    assert_non_null(strstr(ev, "\"rss_mib\""));
    free(ev);
    train_data_free(d);
    free(a);
    free(b);
}

static void test_score_a_saved_model(void **state)
{
    (void)state;
    char *model = out_dir("a"), *scored = out_dir("scored");
    assert_int_equal(train("--score", model, "--input", csv, "--output", scored, "--horizon", "14",
                           "--backtest-days", "28", NULL),
                     0);
    /* the same model on the same window: the training's backtest figures */
    json_t *s = load_json("scored", "metrics.json"), *t = load_json("a", "metrics.json");
    assert_float_equal(get_num(s, "overall", "wape", NULL), get_num(t, "overall", "wape", NULL),
                       1e-9);
    assert_float_equal(get_num(s, "overall", "coverage80", NULL),
                       get_num(t, "overall", "coverage80", NULL), 1e-9);
    assert_string_equal(json_string_value(json_object_get(s, "mode")), "score");
    json_decref(s);
    json_decref(t);
    free(model);
    free(scored);
}

static void test_baselines_and_origins(void **state)
{
    (void)state;
    char *sn = out_dir("sn"), *k3 = out_dir("k3");
    assert_int_equal(train("--input", csv, "--output", sn, "--algorithm", "seasonal_naive",
                           "--params", "{}", NULL),
                     0);
    json_t *m = load_json("sn", "metrics.json"), *model = load_json("sn", "model.json");
    assert_float_equal(get_num(m, "overall", "wape", NULL),
                       get_num(m, "baselines", "seasonal_naive", "wape"), 1e-12);
    assert_float_equal(get_num(m, "improvement_vs_seasonal_naive", NULL, NULL), 0, 1e-12);
    assert_true(json_is_null(json_object_get(m, "best_iteration")));
    assert_string_equal(json_string_value(json_object_get(model, "algorithm")), "seasonal_naive");
    json_decref(m);
    json_decref(model);
    /* a baseline model scores too */
    char *scored = out_dir("sn-scored");
    assert_int_equal(train("--score", sn, "--input", csv, "--output", scored, NULL), 0);
    free(scored);

    assert_int_equal(train("--input", csv, "--output", k3, "--rolling-origins", "3", "--horizon",
                           "7", "--params", "{\"num_round\": 15}", NULL),
                     0);
    m = load_json("k3", "metrics.json");
    json_t *folds = json_object_get(m, "folds");
    assert_int_equal(json_array_size(folds), 3);
    /* 28 days in folds of 9, 9 and 10 days, origins every 7 days inside each */
    assert_string_equal(json_string_value(json_object_get(json_array_get(folds, 1), "origin")),
                        "2023-12-12");
    assert_int_equal(json_array_size(json_object_get(json_array_get(folds, 2), "origins")), 2);
    assert_int_equal(get_num(m, "overall", "n", NULL), 28 * 9);
    json_decref(m);
    free(sn);
    free(k3);
}

static void test_refusals(void **state)
{
    (void)state;
    char *o = out_dir("refused");
    assert_int_equal(train("--input", csv, "--output", o, "--algorithm", "prophet", NULL), 2);
    assert_int_equal(
        train("--input", csv, "--output", o, "--params", "{\"learning_rate_typo\": 1}", NULL), 2);
    assert_int_equal(
        train("--input", csv, "--output", o, "--params", "{\"max_depth\": \"deep\"}", NULL), 2);
    assert_int_equal(train("--input", csv, "--output", o, "--params", "{\"eta\": 0}", NULL), 2);
    assert_int_equal(train("--input", csv, "--output", o, "--params", "[1]", NULL), 2);
    assert_int_equal(train("--input", csv, "--output", o, "--params", "{\"a\": 1, \"a\": 2}", NULL),
                     2);
    assert_int_equal(train("--input", csv, "--output", o, "--algorithm", "moving_average",
                           "--params", "{\"eta\": 0.1}", NULL),
                     2);
    assert_int_equal(train("--input", csv, "--output", o, "--horizon", "0", NULL), 2);
    assert_int_equal(train("--input", csv, "--output", o, "--horizon", "91", NULL), 2);
    assert_int_equal(train("--input", csv, "--output", o, "--rolling-origins", "13", NULL), 2);
    assert_int_equal(train("--input", csv, "--output", o, "--backtest-days", "10",
                           "--rolling-origins", "11", NULL),
                     2);
    assert_int_equal(train("--output", o, NULL), 2);
    assert_int_equal(train("--input", csv, "--output", o, "--bogus", "1", NULL), 2);
    assert_int_equal(train("--help", NULL), 0);
    assert_int_equal(entries(o), -1); /* nothing created by a refused command */

    /* 304 days cannot hold a year of lags, validation and backtest */
    assert_int_equal(train("--input", short_csv, "--output", o, NULL), 3);
    char *ev = slurp(events_path, NULL);
    assert_non_null(strstr(ev, "covers 304 days"));
    assert_non_null(strstr(ev, "needs at least 451"));
    free(ev);
    char *missing = xasprintf("%s/nothing.csv", tmp);
    assert_int_equal(train("--input", missing, "--output", o, NULL), 1);
    free(missing);
    free(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sigterm_leaves_no_outputs),
        cmocka_unit_test(test_same_seed_same_model_and_outputs),
        cmocka_unit_test(test_score_a_saved_model),
        cmocka_unit_test(test_baselines_and_origins),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
