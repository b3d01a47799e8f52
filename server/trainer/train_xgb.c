/* XGBoost through its C API. The training matrix goes in as a QuantileDMatrix
 * (one batch through the callback interface): XGBoost keeps only the
 * quantised bins, not a second copy of the floats. Validation and prediction
 * use plain DMatrix objects. */
#include "trainer/train_xgb.h"

#include "trainer/train_params.h"
#include "lib/util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xgboost/c_api.h>

struct train_xgb {
    BoosterHandle booster;
    int best;
    int nfeat;
    char **names; /* nfeat, for the importance */
};

void train_xgb_defaults(train_xgb_params *p)
{
    memset(p, 0, sizeof *p);
    p->eta = 0.2;
    p->max_depth = 8;
    p->num_round = 1000;
    p->subsample = 0.8;
    p->colsample_bytree = 0.8;
    p->min_child_weight = 1;
    p->lambda = 1;
    p->alpha = 0;
    p->max_bin = 256;
    p->early_stopping_rounds = 30;
    snprintf(p->objective, sizeof p->objective, "%s", "reg:tweedie");
    p->threads = 1;
    p->seed = 42;
}

int train_xgb_params_apply(train_xgb_params *p, json_t *overrides, char *err, size_t errlen)
{
    char field[80], reason[240];
    if (!json_is_object(overrides)) {
        snprintf(err, errlen, "must be a JSON object");
        return RST_EINVAL;
    }
    if (train_params_check("xgboost", overrides, field, sizeof field, reason, sizeof reason)) {
        snprintf(err, errlen, "%s: %s", field + strlen("params."), reason);
        return RST_EINVAL;
    }
    const char *key;
    json_t *v;
    json_object_foreach(overrides, key, v)
    {
        double x = json_number_value(v);
        if (!strcmp(key, "max_depth"))
            p->max_depth = (int)x;
        else if (!strcmp(key, "eta"))
            p->eta = x;
        else if (!strcmp(key, "num_round"))
            p->num_round = (int)x;
        else if (!strcmp(key, "subsample"))
            p->subsample = x;
        else if (!strcmp(key, "colsample_bytree"))
            p->colsample_bytree = x;
        else if (!strcmp(key, "min_child_weight"))
            p->min_child_weight = x;
        else if (!strcmp(key, "lambda"))
            p->lambda = x;
        else if (!strcmp(key, "alpha"))
            p->alpha = x;
        else if (!strcmp(key, "max_bin"))
            p->max_bin = (int)x;
        else if (!strcmp(key, "early_stopping_rounds"))
            p->early_stopping_rounds = (int)x;
        else if (!strcmp(key, "objective"))
            snprintf(p->objective, sizeof p->objective, "%s", json_string_value(v));
    }
    return RST_OK;
}

json_t *train_xgb_params_json(const train_xgb_params *p)
{
    return json_pack("{s:s, s:s, s:f, s:i, s:i, s:f, s:f, s:f, s:f, s:f, s:i, s:i, s:i, s:I, "
                     "s:[s,s]}",
                     "tree_method", "hist", "objective", p->objective, "eta", p->eta, "max_depth",
                     p->max_depth, "num_round", p->num_round, "subsample", p->subsample,
                     "colsample_bytree", p->colsample_bytree, "min_child_weight",
                     p->min_child_weight, "lambda", p->lambda, "alpha", p->alpha, "max_bin",
                     p->max_bin, "early_stopping_rounds", p->early_stopping_rounds, "nthread",
                     p->threads, "seed", (json_int_t)p->seed, "eval_metric", "rmse", "mae");
}

/* XGBoost's own messages (warnings at verbosity 1) are diagnostics: stderr,
 * never stdout, which carries the JSON events. */
static void log_to_stderr(const char *msg)
{
    fprintf(stderr, "xgboost: %s\n", msg);
}

static void route_logs(void)
{
    static int done;
    if (!done)
        XGBRegisterLogCallback(log_to_stderr);
    done = 1;
}

static int xgb_failed(int rc, const char *what, char *err, size_t errlen)
{
    if (rc == 0)
        return 0;
    snprintf(err, errlen, "xgboost: %s: %s", what, XGBGetLastError());
    return 1;
}

#define TRY(call, what)                                                                            \
    do {                                                                                           \
        if (xgb_failed((call), (what), err, errlen)) {                                             \
            rc = RST_EIO;                                                                          \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

/* ---- the training matrix through the callback interface ---------------------------- */

typedef struct {
    DMatrixHandle proxy;
    const train_xgb_set *set;
    const train_xgb_schema *schema;
    int done;
    int failed;
} batch_iter;

static void iter_reset(DataIterHandle h)
{
    ((batch_iter *)h)->done = 0;
}

static int iter_next(DataIterHandle h)
{
    batch_iter *it = h;
    if (it->done)
        return 0;
    it->done = 1;
    char iface[256];
    snprintf(iface, sizeof iface,
             "{\"data\": [%llu, true], \"shape\": [%llu, %d], \"typestr\": \"<f4\", "
             "\"version\": 3}",
             (unsigned long long)(uintptr_t)it->set->x, (unsigned long long)it->set->rows,
             it->schema->nfeat);
    if (XGProxyDMatrixSetDataDense(it->proxy, iface) ||
        XGDMatrixSetFloatInfo(it->proxy, "label", it->set->y, it->set->rows) ||
        XGDMatrixSetStrFeatureInfo(it->proxy, "feature_name", (const char **)it->schema->names,
                                   (bst_ulong)it->schema->nfeat) ||
        XGDMatrixSetStrFeatureInfo(it->proxy, "feature_type", (const char **)it->schema->types,
                                   (bst_ulong)it->schema->nfeat)) {
        it->failed = 1;
        return 0;
    }
    return 1;
}

static int quantile_matrix(const train_xgb_params *p, const train_xgb_schema *schema,
                           const train_xgb_set *set, DMatrixHandle *out, char *err, size_t errlen)
{
    int rc = RST_OK;
    batch_iter it = {.set = set, .schema = schema};
    char config[128];
    snprintf(config, sizeof config, "{\"missing\": NaN, \"nthread\": %d, \"max_bin\": %d}",
             p->threads, p->max_bin);
    TRY(XGProxyDMatrixCreate(&it.proxy), "proxy matrix");
    TRY(XGQuantileDMatrixCreateFromCallback(&it, it.proxy, NULL, iter_reset, iter_next, config,
                                            out),
        "training matrix");
    if (it.failed) {
        snprintf(err, errlen, "xgboost: training batch: %s", XGBGetLastError());
        rc = RST_EIO;
    }
out:
    if (it.proxy)
        XGDMatrixFree(it.proxy);
    return rc;
}

static int plain_matrix(const train_xgb_set *set, const train_xgb_schema *schema, int threads,
                        DMatrixHandle *out, char *err, size_t errlen)
{
    int rc = RST_OK;
    *out = NULL;
    TRY(XGDMatrixCreateFromMat_omp(set->x, set->rows, (bst_ulong)schema->nfeat, NAN, out, threads),
        "matrix");
    if (set->y)
        TRY(XGDMatrixSetFloatInfo(*out, "label", set->y, set->rows), "labels");
    TRY(XGDMatrixSetStrFeatureInfo(*out, "feature_name", (const char **)schema->names,
                                   (bst_ulong)schema->nfeat),
        "feature names");
    TRY(XGDMatrixSetStrFeatureInfo(*out, "feature_type", (const char **)schema->types,
                                   (bst_ulong)schema->nfeat),
        "feature types");
out:
    if (rc && *out) {
        XGDMatrixFree(*out);
        *out = NULL;
    }
    return rc;
}

static int set_params(BoosterHandle b, const train_xgb_params *p, char *err, size_t errlen)
{
    int rc = RST_OK;
    char v[64];
#define SETP(k, fmt, val)                                                                          \
    do {                                                                                           \
        snprintf(v, sizeof v, fmt, val);                                                           \
        TRY(XGBoosterSetParam(b, k, v), "parameter " k);                                           \
    } while (0)
    SETP("tree_method", "%s", "hist");
    SETP("objective", "%s", p->objective);
    SETP("eta", "%.17g", p->eta);
    SETP("max_depth", "%d", p->max_depth);
    SETP("subsample", "%.17g", p->subsample);
    SETP("colsample_bytree", "%.17g", p->colsample_bytree);
    SETP("min_child_weight", "%.17g", p->min_child_weight);
    SETP("lambda", "%.17g", p->lambda);
    SETP("alpha", "%.17g", p->alpha);
    SETP("max_bin", "%d", p->max_bin);
    SETP("nthread", "%d", p->threads);
    SETP("seed", "%llu", (unsigned long long)p->seed);
    SETP("eval_metric", "%s", "rmse");
    SETP("eval_metric", "%s", "mae");
    SETP("verbosity", "%d", 1);
#undef SETP
out:
    return rc;
}

/* "[3]\tvalid-rmse:1.5\tvalid-mae:0.9" -> the two figures. */
static int parse_eval(const char *s, double *rmse, double *mae)
{
    const char *r = strstr(s, "-rmse:"), *m = strstr(s, "-mae:");
    if (!r || !m)
        return RST_EINVAL;
    *rmse = strtod(r + 6, NULL);
    *mae = strtod(m + 5, NULL);
    return RST_OK;
}

static void keep_names(train_xgb *m, const train_xgb_schema *schema)
{
    m->nfeat = schema->nfeat;
    m->names = xcalloc((size_t)schema->nfeat, sizeof *m->names);
    for (int k = 0; k < schema->nfeat; k++)
        m->names[k] = xstrdup(schema->names[k]);
}

int train_xgb_fit(const train_xgb_params *p, const train_xgb_schema *schema,
                  const train_xgb_set *train, const train_xgb_set *valid, train_xgb_round_fn cb,
                  void *arg, volatile sig_atomic_t *stop, train_xgb **out, char *err, size_t errlen)
{
    int rc = RST_OK;
    DMatrixHandle dm[2] = {NULL, NULL};
    BoosterHandle b = NULL, sliced = NULL;
    *out = NULL;
    route_logs();
    rc = quantile_matrix(p, schema, train, &dm[0], err, errlen);
    if (rc == RST_OK)
        rc = plain_matrix(valid, schema, p->threads, &dm[1], err, errlen);
    if (rc != RST_OK)
        goto out;
    if (stop && *stop) {
        rc = RST_EUNAVAIL;
        goto out;
    }
    TRY(XGBoosterCreate(dm, 2, &b), "booster");
    rc = set_params(b, p, err, errlen);
    if (rc != RST_OK)
        goto out;
    double best = INFINITY;
    int best_round = 0;
    const char *names[1] = {"valid"};
    for (int round = 0; round < p->num_round; round++) {
        if (stop && *stop) {
            rc = RST_EUNAVAIL;
            goto out;
        }
        TRY(XGBoosterUpdateOneIter(b, round, dm[0]), "boosting round");
        const char *res = NULL;
        TRY(XGBoosterEvalOneIter(b, round, &dm[1], names, 1, &res), "evaluation");
        double rmse = NAN, mae = NAN;
        if (parse_eval(res, &rmse, &mae)) {
            snprintf(err, errlen, "xgboost: unexpected evaluation '%.80s'", res);
            rc = RST_EIO;
            goto out;
        }
        if (cb)
            cb(arg, round, rmse, mae);
        if (mae < best) {
            best = mae;
            best_round = round;
        } else if (round - best_round >= p->early_stopping_rounds) {
            break;
        }
    }
    TRY(XGBoosterSlice(b, 0, best_round + 1, 1, &sliced), "keeping the best rounds");
    TRY(XGBoosterSetStrFeatureInfo(sliced, "feature_name", (const char **)schema->names,
                                   (bst_ulong)schema->nfeat),
        "feature names");
    TRY(XGBoosterSetStrFeatureInfo(sliced, "feature_type", (const char **)schema->types,
                                   (bst_ulong)schema->nfeat),
        "feature types");
    {
        char v[24];
        snprintf(v, sizeof v, "%d", best_round);
        TRY(XGBoosterSetAttr(sliced, "best_iteration", v), "attribute");
    }
    train_xgb *m = xcalloc(1, sizeof *m);
    m->booster = sliced;
    m->best = best_round;
    sliced = NULL;
    keep_names(m, schema);
    *out = m;
out:
    if (sliced)
        XGBoosterFree(sliced);
    if (b)
        XGBoosterFree(b);
    for (int i = 0; i < 2; i++)
        if (dm[i])
            XGDMatrixFree(dm[i]);
    return rc;
}

int train_xgb_predict(train_xgb *m, const train_xgb_set *set, int nfeat, int threads, float *out,
                      char *err, size_t errlen)
{
    int rc = RST_OK;
    DMatrixHandle dm = NULL;
    if (!set->rows)
        return RST_OK;
    TRY(XGDMatrixCreateFromMat_omp(set->x, set->rows, (bst_ulong)nfeat, NAN, &dm, threads),
        "matrix");
    const bst_ulong *shape = NULL;
    bst_ulong dim = 0;
    const float *res = NULL;
    TRY(XGBoosterPredictFromDMatrix(m->booster, dm,
                                    "{\"type\": 0, \"training\": false, \"iteration_begin\": 0, "
                                    "\"iteration_end\": 0, \"strict_shape\": false}",
                                    &shape, &dim, &res),
        "prediction");
    if (dim < 1 || shape[0] != set->rows) {
        snprintf(err, errlen, "xgboost: prediction has an unexpected shape");
        rc = RST_EIO;
        goto out;
    }
    memcpy(out, res, set->rows * sizeof *out);
out:
    if (dm)
        XGDMatrixFree(dm);
    return rc;
}

int train_xgb_predict_dense(train_xgb *m, const float *x, size_t rows, int nfeat, float *out,
                            char *err, size_t errlen)
{
    int rc = RST_OK;
    if (!rows)
        return RST_OK;
    /* numpy's __array_interface__ (version 3): XGBoost reads the rows in place,
     * no DMatrix copy; NaN is missing, as in train_xgb_predict's matrix */
    char values[200];
    snprintf(values, sizeof values,
             "{\"data\": [%llu, true], \"shape\": [%llu, %d], \"typestr\": \"<f4\", "
             "\"version\": 3}",
             (unsigned long long)(uintptr_t)x, (unsigned long long)rows, nfeat);
    const bst_ulong *shape = NULL;
    bst_ulong dim = 0;
    const float *res = NULL;
    TRY(XGBoosterPredictFromDense(m->booster, values,
                                  "{\"type\": 0, \"training\": false, \"iteration_begin\": 0, "
                                  "\"iteration_end\": 0, \"strict_shape\": false, "
                                  "\"missing\": NaN, \"cache_id\": 0}",
                                  NULL, &shape, &dim, &res),
        "prediction");
    if (dim < 1 || shape[0] != rows) {
        snprintf(err, errlen, "xgboost: prediction has an unexpected shape");
        rc = RST_EIO;
        goto out;
    }
    memcpy(out, res, rows * sizeof *out);
out:
    return rc;
}

int train_xgb_save(train_xgb *m, char **json, size_t *len, char *err, size_t errlen)
{
    int rc = RST_OK;
    bst_ulong n = 0;
    const char *data = NULL;
    *json = NULL;
    TRY(XGBoosterSaveModelToBuffer(m->booster, "{\"format\": \"json\"}", &n, &data), "saving");
    *json = xmalloc((size_t)n + 1);
    memcpy(*json, data, (size_t)n);
    (*json)[n] = '\0';
    *len = (size_t)n;
out:
    return rc;
}

int train_xgb_load(const char *path, int threads, train_xgb **out, char *err, size_t errlen)
{
    int rc = RST_OK;
    BoosterHandle b = NULL;
    *out = NULL;
    route_logs();
    TRY(XGBoosterCreate(NULL, 0, &b), "booster");
    TRY(XGBoosterLoadModel(b, path), "loading the model");
    char v[16];
    snprintf(v, sizeof v, "%d", threads);
    TRY(XGBoosterSetParam(b, "nthread", v), "parameter nthread");
    int rounds = 0;
    TRY(XGBoosterBoostedRounds(b, &rounds), "rounds");
    train_xgb *m = xcalloc(1, sizeof *m);
    m->booster = b;
    m->best = rounds - 1;
    b = NULL;
    bst_ulong n = 0;
    const char **names = NULL;
    if (XGBoosterGetStrFeatureInfo(m->booster, "feature_name", &n, &names) == 0 && n) {
        m->nfeat = (int)n;
        m->names = xcalloc(n, sizeof *m->names);
        for (bst_ulong k = 0; k < n; k++)
            m->names[k] = xstrdup(names[k]);
    }
    *out = m;
out:
    if (b)
        XGBoosterFree(b);
    return rc;
}

int train_xgb_best_iteration(const train_xgb *m)
{
    return m->best;
}

typedef struct {
    const char *name;
    double gain;
} scored;

static int cmp_scored(const void *a, const void *b)
{
    const scored *x = a, *y = b;
    if (x->gain != y->gain)
        return x->gain > y->gain ? -1 : 1;
    return strcmp(x->name, y->name);
}

json_t *train_xgb_importance(train_xgb *m)
{
    json_t *o = json_object();
    bst_ulong n = 0, dim = 0;
    const char **names = NULL;
    const bst_ulong *shape = NULL;
    const float *scores = NULL;
    if (XGBoosterFeatureScore(m->booster, "{\"importance_type\": \"total_gain\"}", &n, &names, &dim,
                              &shape, &scores) ||
        !n)
        return o;
    scored *s = xmalloc(n * sizeof *s);
    for (bst_ulong k = 0; k < n; k++)
        s[k] = (scored){names[k], scores[k]};
    qsort(s, n, sizeof *s, cmp_scored);
    for (bst_ulong k = 0; k < n; k++)
        json_object_set_new(o, s[k].name, json_real(s[k].gain));
    free(s);
    return o;
}

const char *train_xgb_version(void)
{
    static char v[32];
    int major = 0, minor = 0, patch = 0;
    XGBoostVersion(&major, &minor, &patch);
    snprintf(v, sizeof v, "%d.%d.%d", major, minor, patch);
    return v;
}

void train_xgb_free(train_xgb *m)
{
    if (!m)
        return;
    if (m->booster)
        XGBoosterFree(m->booster);
    for (int k = 0; k < m->nfeat; k++)
        free(m->names[k]);
    free(m->names);
    free(m);
}
