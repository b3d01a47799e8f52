/* Boosters by model version, loaded on first use. */
#include "models/model_cache.h"
#include "core/log.h"
#include "lib/util.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xgboost/c_api.h>

#define MAX_FEATURES 128

typedef struct {
    char id[40];
    BoosterHandle booster;
    json_t *spec;               /* features.json */
    int nfeat;
    const char *names[MAX_FEATURES];  /* borrowed from spec */
    int categorical[MAX_FEATURES];
    json_t *levels[MAX_FEATURES];     /* borrowed: level names of a categorical feature */
    const char *types[MAX_FEATURES];  /* "q" or "c" for XGBoost */
    unsigned long long used;
    pthread_mutex_t lock; /* one prediction at a time per booster */
} entry;

struct model_cache {
    artifact_store *store;
    char *scratch;
    pthread_mutex_t lock;
    entry *e[MODEL_CACHE_ENTRIES];
    unsigned long long clock;
};

model_cache *model_cache_new(artifact_store *store, const char *scratch_dir)
{
    model_cache *mc = xcalloc(1, sizeof *mc);
    mc->store = store;
    mc->scratch = xstrdup(scratch_dir);
    pthread_mutex_init(&mc->lock, NULL);
    return mc;
}

static void entry_free(entry *e)
{
    if (!e)
        return;
    if (e->booster)
        XGBoosterFree(e->booster);
    json_decref(e->spec);
    pthread_mutex_destroy(&e->lock);
    free(e);
}

void model_cache_free(model_cache *mc)
{
    if (!mc)
        return;
    for (int i = 0; i < MODEL_CACHE_ENTRIES; i++)
        entry_free(mc->e[i]);
    pthread_mutex_destroy(&mc->lock);
    free(mc->scratch);
    free(mc);
}

int model_cache_size(model_cache *mc)
{
    int n = 0;
    pthread_mutex_lock(&mc->lock);
    for (int i = 0; i < MODEL_CACHE_ENTRIES; i++)
        n += mc->e[i] != NULL;
    pthread_mutex_unlock(&mc->lock);
    return n;
}

/* Copies artifact name of the list into path. */
static int fetch(model_cache *mc, json_t *artifacts, const char *name, const char *path)
{
    const char *key = NULL;
    for (size_t i = 0; i < json_array_size(artifacts) && !key; i++) {
        json_t *a = json_array_get(artifacts, i);
        const char *n = json_string_value(json_object_get(a, "name"));
        if (n && !strcmp(n, name))
            key = json_string_value(json_object_get(a, "key"));
    }
    return key ? artifacts_fetch(mc->store, key, path) : RST_ENOTFOUND;
}

static entry *load(model_cache *mc, const char *id, json_t *artifacts, char *reason,
                   size_t reasonlen)
{
    char rnd[33];
    random_hex_id(rnd);
    char *mpath = xasprintf("%s/model-%s.json", mc->scratch, rnd);
    char *fpath = xasprintf("%s/features-%s.json", mc->scratch, rnd);
    entry *e = xcalloc(1, sizeof *e);
    pthread_mutex_init(&e->lock, NULL);
    snprintf(e->id, sizeof e->id, "%s", id);
    int rc = fetch(mc, artifacts, "model.json", mpath);
    if (rc == RST_OK)
        rc = fetch(mc, artifacts, "features.json", fpath);
    if (rc) {
        snprintf(reason, reasonlen, "the version's model.json or features.json is not readable");
        goto fail;
    }
    e->spec = json_load_file(fpath, 0, NULL);
    json_t *list = json_object_get(e->spec, "features");
    if (!json_is_array(list) || json_array_size(list) == 0 ||
        json_array_size(list) > MAX_FEATURES) {
        snprintf(reason, reasonlen, "the version's features.json has no feature list");
        rc = RST_EIO;
        goto fail;
    }
    json_t *f;
    size_t i;
    json_array_foreach(list, i, f)
    {
        e->names[i] = json_string_value(json_object_get(f, "name"));
        const char *xt = json_string_value(json_object_get(f, "xgboost_type"));
        e->categorical[i] = xt && !strcmp(xt, "c");
        e->types[i] = e->categorical[i] ? "c" : "q";
        e->levels[i] = json_object_get(json_object_get(e->spec, "levels"), e->names[i]);
        if (!e->names[i]) {
            snprintf(reason, reasonlen, "a feature of features.json has no name");
            rc = RST_EIO;
            goto fail;
        }
    }
    e->nfeat = (int)json_array_size(list);
    if (XGBoosterCreate(NULL, 0, &e->booster) || XGBoosterLoadModel(e->booster, mpath)) {
        snprintf(reason, reasonlen, "xgboost cannot load the model: %s", XGBGetLastError());
        rc = RST_EIO;
        goto fail;
    }
    XGBoosterSetParam(e->booster, "nthread", "1");
    unlink(mpath);
    unlink(fpath);
    free(mpath);
    free(fpath);
    return e;
fail:
    unlink(mpath);
    unlink(fpath);
    free(mpath);
    free(fpath);
    entry_free(e);
    return NULL;
}

/* The cached entry for id, loading it (and evicting the least recently used
 * one) when absent. */
static entry *get(model_cache *mc, const char *id, json_t *artifacts, char *reason,
                  size_t reasonlen)
{
    pthread_mutex_lock(&mc->lock);
    for (int i = 0; i < MODEL_CACHE_ENTRIES; i++)
        if (mc->e[i] && !strcmp(mc->e[i]->id, id)) {
            mc->e[i]->used = ++mc->clock;
            entry *e = mc->e[i];
            pthread_mutex_lock(&e->lock);
            pthread_mutex_unlock(&mc->lock);
            return e;
        }
    /* Loading under the cache lock keeps two threads from loading the same
     * model twice; loads are rare next to predictions. */
    entry *e = load(mc, id, artifacts, reason, reasonlen);
    if (e) {
        int slot = 0;
        for (int i = 0; i < MODEL_CACHE_ENTRIES; i++) {
            if (!mc->e[i]) {
                slot = i;
                break;
            }
            if (mc->e[i]->used < mc->e[slot]->used)
                slot = i;
        }
        if (mc->e[slot]) {
            pthread_mutex_lock(&mc->e[slot]->lock); /* no prediction is using it */
            pthread_mutex_unlock(&mc->e[slot]->lock);
            entry_free(mc->e[slot]);
        }
        mc->e[slot] = e;
        e->used = ++mc->clock;
        pthread_mutex_lock(&e->lock);
        log_fields(LOG_INFO, "model loaded into the serving cache", json_pack("{s:s}", "id", id));
    }
    pthread_mutex_unlock(&mc->lock);
    return e;
}

/* The code of a categorical value: its level's index, or the integer given. */
static int level_code(const entry *e, int k, json_t *v, float *out)
{
    if (json_is_integer(v)) {
        *out = (float)json_integer_value(v);
        return 0;
    }
    const char *s = json_string_value(v);
    if (!s)
        return 1;
    for (size_t i = 0; i < json_array_size(e->levels[k]); i++) {
        const char *l = json_string_value(json_array_get(e->levels[k], i));
        if (l && !strcmp(l, s)) {
            *out = (float)i;
            return 0;
        }
    }
    *out = NAN; /* a level the model never saw: missing */
    return 0;
}

int model_cache_predict(model_cache *mc, const char *id, json_t *artifacts, json_t *rows,
                        json_t **out, char *field, size_t fieldlen, char *reason,
                        size_t reasonlen)
{
    size_t n = json_array_size(rows);
    if (!json_is_array(rows) || n == 0 || n > MODEL_CACHE_MAX_ROWS) {
        snprintf(field, fieldlen, "rows");
        snprintf(reason, reasonlen, "must be an array of 1 to %d feature rows",
                 MODEL_CACHE_MAX_ROWS);
        return RST_EINVAL;
    }
    entry *e = get(mc, id, artifacts, reason, reasonlen);
    if (!e)
        return RST_EIO;
    float *x = xmalloc(n * (size_t)e->nfeat * sizeof *x);
    int rc = RST_OK;
    for (size_t r = 0; r < n && rc == RST_OK; r++) {
        json_t *row = json_array_get(rows, r);
        if (!json_is_object(row)) {
            snprintf(field, fieldlen, "rows[%zu]", r);
            snprintf(reason, reasonlen, "must be an object of feature values");
            rc = RST_EINVAL;
            break;
        }
        size_t found = 0;
        for (int k = 0; k < e->nfeat && rc == RST_OK; k++) {
            json_t *v2 = json_object_get(row, e->names[k]);
            found += v2 != NULL;
            float *cell = &x[r * (size_t)e->nfeat + (size_t)k];
            if (!v2 || json_is_null(v2))
                *cell = NAN;
            else if (e->categorical[k] ? level_code(e, k, v2, cell) : !json_is_number(v2)) {
                snprintf(field, fieldlen, "rows[%zu].%s", r, e->names[k]);
                snprintf(reason, reasonlen,
                         e->categorical[k] ? "must be a level name or code" : "must be a number");
                rc = RST_EINVAL;
            } else if (!e->categorical[k])
                *cell = (float)json_number_value(v2);
        }
        /* a key that is no feature: found only when the counts differ */
        if (rc == RST_OK && found != json_object_size(row)) {
            const char *key;
            json_t *v;
            json_object_foreach(row, key, v)
            {
                int known = 0;
                for (int k = 0; k < e->nfeat && !known; k++)
                    known = !strcmp(e->names[k], key);
                if (!known) {
                    snprintf(field, fieldlen, "rows[%zu].%s", r, key);
                    snprintf(reason, reasonlen,
                             "is not a feature of this model (see features.json)");
                    rc = RST_EINVAL;
                    break;
                }
            }
        }
    }
    DMatrixHandle dm = NULL;
    bst_ulong len = 0;
    const float *pred = NULL;
    if (rc == RST_OK &&
        (XGDMatrixCreateFromMat(x, (bst_ulong)n, (bst_ulong)e->nfeat, NAN, &dm) ||
         XGDMatrixSetStrFeatureInfo(dm, "feature_type", e->types, (bst_ulong)e->nfeat) ||
         XGBoosterPredict(e->booster, dm, 0, 0, 0, &len, &pred) || len != n)) {
        snprintf(reason, reasonlen, "xgboost could not score the rows: %s", XGBGetLastError());
        rc = RST_EIO;
    }
    if (rc == RST_OK) {
        json_t *p = json_array();
        /* demand is never negative; a regression tree may say so near zero */
        for (size_t r = 0; r < n; r++)
            json_array_append_new(p, json_real(pred[r] < 0 ? 0.0 : (double)pred[r]));
        *out = json_pack("{s:o, s:i}", "predictions", p, "features", e->nfeat);
    }
    if (dm)
        XGDMatrixFree(dm);
    pthread_mutex_unlock(&e->lock);
    free(x);
    return rc;
}
