/* XGBoost's trees, evaluated by us (moved whole from forecast_gen.c). XGBoost's own prediction
 * walks the trees through generic row views and costs about 1.2 us per row here (42 trees), most
 * of a forecast's CPU. This evaluator walks the same trees of model.json over the dense feature
 * rows, with XGBoost's rules (1.7): a missing (NaN) value takes the default child; a numeric split
 * goes left when value < condition; a categorical split goes right when the value is a valid
 * category (0 <= v < 2^24, truncated) listed in the node's categories, else left; the margin is
 * the base margin plus the leaves in tree order, in float; then the objective's transform. It is
 * only used for the objectives it knows and after its predictions matched XGBoost's bit for bit
 * (forecast_gen_run checks the first block whole and a sample of every other, and returns to
 * XGBoost on any difference). */
#include "forecasts/xgb_forest.h"

#include "lib/util.h"

#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { NODE_NUM = 0, NODE_CAT = 1, NODE_LEAF = 2 };

typedef struct {
    int32_t left, right; /* node indexes in the forest's array */
    float value;         /* split condition, or the leaf's value */
    uint16_t feature;
    uint8_t kind, default_left;
    uint32_t cat_first, cat_n; /* categories going right: cats[cat_first ..] (sorted) */
} tree_node;

/* The layout walked: each tree breadth first with a node's children side by
 * side (right = left + 1). A leaf has cond NaN and goes right when missing, so
 * every value takes it right, and left = itself - 1: a row that reached it
 * stays, so a row goes down a tree for the tree's depth with one comparison
 * per level and no branch on the node's kind (XGBoost's walk mispredicts
 * there). Leaf values are in leaf[]. */
enum { FAST_DEFAULT_RIGHT = 1, FAST_CAT = 2 };

typedef struct {
    float cond;   /* split condition; NaN for a leaf */
    int32_t left; /* a leaf: itself - 1 */
    uint8_t feature, flags;
    uint16_t cat_n; /* FAST_CAT: categories going right, at cats[cat_first] */
} fast_node;

struct xgb_forest {
    tree_node *nodes;
    size_t nnodes;
    fast_node *fast;
    float *leaf;                  /* by fast node: a leaf's value */
    uint32_t *cat_first;          /* by fast node (0 unless FAST_CAT) */
    uint32_t *fast_roots, *depth; /* ntrees */
    uint32_t *roots;              /* ntrees */
    size_t ntrees;
    int32_t *cats;
    size_t ncats;
    float base;  /* margin before the first tree */
    int exp_out; /* 1: prediction = expf(margin) (log-link objectives) */
    int nfeat;
};

void xgb_forest_free(xgb_forest *f)
{
    if (!f)
        return;
    free(f->nodes);
    free(f->fast);
    free(f->leaf);
    free(f->cat_first);
    free(f->fast_roots);
    free(f->depth);
    free(f->roots);
    free(f->cats);
    free(f);
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* Fills f's fast layout from its nodes. 0 when a tree is not a tree (a node
 * reached twice, deeper than its size, a category list too long). */
static int forest_compile(xgb_forest *f)
{
    f->fast = xmalloc((f->nnodes ? f->nnodes : 1) * sizeof *f->fast);
    f->leaf = xcalloc(f->nnodes ? f->nnodes : 1, sizeof *f->leaf);
    f->cat_first = xcalloc(f->nnodes ? f->nnodes : 1, sizeof *f->cat_first);
    f->fast_roots = xmalloc(f->ntrees * sizeof *f->fast_roots);
    f->depth = xcalloc(f->ntrees, sizeof *f->depth);
    uint32_t *queue = xmalloc((f->nnodes ? f->nnodes : 1) * sizeof *queue); /* old index */
    uint32_t *level = xmalloc((f->nnodes ? f->nnodes : 1) * sizeof *level);
    uint8_t *seen = xcalloc(f->nnodes ? f->nnodes : 1, 1);
    size_t out = 0;
    int ok = 1;
    for (size_t t = 0; t < f->ntrees && ok; t++) {
        size_t end = t + 1 < f->ntrees ? f->roots[t + 1] : f->nnodes;
        size_t size = end - f->roots[t], head = out, tail = out;
        /* breadth first; the slot of a node is its place in the queue */
        queue[tail] = f->roots[t];
        level[tail++] = 0;
        f->fast_roots[t] = (uint32_t)out;
        for (; head < tail; head++) {
            uint32_t old = queue[head];
            const tree_node *nd = &f->nodes[old];
            fast_node *fn = &f->fast[head];
            if (seen[old] || level[head] > size || old < f->roots[t] || old >= end ||
                nd->cat_n > UINT16_MAX) {
                ok = 0;
                break;
            }
            seen[old] = 1;
            memset(fn, 0, sizeof *fn);
            if (level[head] > f->depth[t])
                f->depth[t] = level[head];
            if (nd->kind == NODE_LEAF) {
                fn->cond = NAN;
                fn->left = (int32_t)head - 1;
                fn->flags = FAST_DEFAULT_RIGHT;
                f->leaf[head] = nd->value;
                continue;
            }
            if (tail + 2 > end - f->roots[t] + out) {
                ok = 0;
                break;
            }
            fn->cond = nd->value;
            fn->left = (int32_t)tail;
            fn->feature = (uint8_t)nd->feature;
            fn->flags = (uint8_t)((nd->default_left ? 0 : FAST_DEFAULT_RIGHT) |
                                  (nd->kind == NODE_CAT ? FAST_CAT : 0));
            fn->cat_n = (uint16_t)nd->cat_n;
            f->cat_first[head] = nd->cat_first;
            queue[tail] = (uint32_t)nd->left;
            level[tail++] = level[head] + 1;
            queue[tail] = (uint32_t)nd->right;
            level[tail++] = level[head] + 1;
        }
        out = tail;
    }
    free(queue);
    free(level);
    free(seen);
    return ok && f->nfeat <= 256;
}

xgb_forest *xgb_forest_load(const char *data, size_t len, int nfeat)
{
    /* XGBoost writes NaN (a categorical split's unused condition), which is
     * not JSON: a null instead, outside strings */
    buf_t b;
    buf_init(&b, 0);
    int in_string = 0;
    size_t from = 0;
    for (size_t i = 0; i < len; i++) {
        if (in_string) {
            if (data[i] == '\\')
                i++;
            else if (data[i] == '"')
                in_string = 0;
        } else if (data[i] == '"') {
            in_string = 1;
        } else if (data[i] == 'N' && len - i >= 3 && !memcmp(data + i, "NaN", 3)) {
            buf_append(&b, data + from, i - from);
            buf_puts(&b, "null");
            from = i + 3;
            i += 2;
        }
    }
    buf_append(&b, data + from, len - from);
    json_t *root = json_loadb(b.data ? b.data : "", b.len, 0, NULL);
    buf_free(&b);
    xgb_forest *f = xcalloc(1, sizeof *f);
    int ok = 0;
    json_t *learner = json_object_get(root, "learner");
    json_t *param = json_object_get(learner, "learner_model_param");
    json_t *gb = json_object_get(learner, "gradient_booster");
    json_t *model = json_object_get(gb, "model");
    json_t *trees = json_object_get(model, "trees");
    const char *obj =
        json_string_value(json_object_get(json_object_get(learner, "objective"), "name"));
    const char *bs = json_string_value(json_object_get(param, "base_score"));
    const char *ntarget = json_string_value(json_object_get(param, "num_target"));
    const char *nclass = json_string_value(json_object_get(param, "num_class"));
    const char *npar = json_string_value(
        json_object_get(json_object_get(model, "gbtree_model_param"), "num_parallel_tree"));
    if (!obj || !bs || !json_is_array(trees) ||
        strcmp(json_string_value(json_object_get(gb, "name"))
                   ? json_string_value(json_object_get(gb, "name"))
                   : "",
               "gbtree") ||
        (ntarget && strcmp(ntarget, "1") && strcmp(ntarget, "0")) ||
        (nclass && strcmp(nclass, "0")) || (npar && strcmp(npar, "1")))
        goto out;
    char *end;
    double base = strtod(bs, &end);
    if (*end || !(base > 0))
        goto out;
    /* the base score is a prediction; the margin starts at its inverse link */
    if (!strcmp(obj, "reg:tweedie") || !strcmp(obj, "count:poisson") || !strcmp(obj, "reg:gamma")) {
        f->exp_out = 1;
        f->base = logf((float)base);
    } else if (!strcmp(obj, "reg:squarederror") || !strcmp(obj, "reg:absoluteerror") ||
               !strcmp(obj, "reg:pseudohubererror")) {
        f->base = (float)base;
    } else {
        goto out;
    }
    f->nfeat = nfeat;
    f->ntrees = json_array_size(trees);
    f->roots = xmalloc((f->ntrees ? f->ntrees : 1) * sizeof *f->roots);
    size_t cap = 0, ccap = 0;
    for (size_t t = 0; t < f->ntrees; t++) {
        json_t *tr = json_array_get(trees, t);
        json_t *L = json_object_get(tr, "left_children"),
               *R = json_object_get(tr, "right_children");
        json_t *C = json_object_get(tr, "split_conditions"),
               *I = json_object_get(tr, "split_indices");
        json_t *DL = json_object_get(tr, "default_left"), *ST = json_object_get(tr, "split_type");
        json_t *cats = json_object_get(tr, "categories"),
               *cnodes = json_object_get(tr, "categories_nodes");
        json_t *cseg = json_object_get(tr, "categories_segments"),
               *csz = json_object_get(tr, "categories_sizes");
        size_t n = json_array_size(L);
        if (!n || json_array_size(R) != n || json_array_size(C) != n || json_array_size(I) != n ||
            json_array_size(DL) != n || (ST && json_array_size(ST) != n))
            goto out;
        size_t at = f->nnodes;
        if (at + n > cap) {
            while (at + n > cap)
                cap = cap ? cap * 2 : 4096;
            f->nodes = xrealloc(f->nodes, cap * sizeof *f->nodes);
        }
        f->roots[t] = (uint32_t)at;
        for (size_t k = 0; k < n; k++) {
            tree_node *nd = &f->nodes[at + k];
            json_int_t l = json_integer_value(json_array_get(L, k));
            json_int_t r = json_integer_value(json_array_get(R, k));
            json_int_t fi = json_integer_value(json_array_get(I, k));
            json_t *cv = json_array_get(C, k);
            memset(nd, 0, sizeof *nd);
            nd->value = json_is_number(cv) ? (float)json_number_value(cv) : NAN;
            nd->default_left = json_integer_value(json_array_get(DL, k)) != 0;
            if (l == -1) {
                if (!json_is_number(cv))
                    goto out;
                nd->kind = NODE_LEAF;
                continue;
            }
            if (l < 0 || r < 0 || (size_t)l >= n || (size_t)r >= n || fi < 0 || fi >= nfeat)
                goto out;
            nd->left = (int32_t)(at + (size_t)l);
            nd->right = (int32_t)(at + (size_t)r);
            nd->feature = (uint16_t)fi;
            nd->kind = ST && json_integer_value(json_array_get(ST, k)) == 1 ? NODE_CAT : NODE_NUM;
            if (nd->kind == NODE_NUM && !json_is_number(cv))
                goto out;
        }
        size_t nc = json_array_size(cnodes);
        if (json_array_size(cseg) != nc || json_array_size(csz) != nc)
            goto out;
        for (size_t c = 0; c < nc; c++) {
            json_int_t node = json_integer_value(json_array_get(cnodes, c));
            json_int_t seg = json_integer_value(json_array_get(cseg, c));
            json_int_t sz = json_integer_value(json_array_get(csz, c));
            if (node < 0 || (size_t)node >= n || seg < 0 || sz < 0 ||
                (size_t)(seg + sz) > json_array_size(cats) ||
                f->nodes[at + (size_t)node].kind != NODE_CAT)
                goto out;
            if (f->ncats + (size_t)sz > ccap) {
                while (f->ncats + (size_t)sz > ccap)
                    ccap = ccap ? ccap * 2 : 1024;
                f->cats = xrealloc(f->cats, ccap * sizeof *f->cats);
            }
            tree_node *nd = &f->nodes[at + (size_t)node];
            nd->cat_first = (uint32_t)f->ncats;
            nd->cat_n = (uint32_t)sz;
            for (json_int_t q = 0; q < sz; q++)
                f->cats[f->ncats++] =
                    (int32_t)json_integer_value(json_array_get(cats, (size_t)(seg + q)));
            qsort(f->cats + nd->cat_first, nd->cat_n, sizeof *f->cats, cmp_i32);
        }
        f->nnodes += n;
    }
    ok = f->ntrees > 0 && forest_compile(f);
out:
    json_decref(root);
    if (!ok) {
        xgb_forest_free(f);
        return NULL;
    }
    return f;
}

static int in_sorted(const int32_t *v, uint32_t n, int32_t x)
{
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (v[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && v[lo] == x;
}

/* The categorical rule: right for a valid category listed at the node. */
static int cat_right(const xgb_forest *f, size_t node, float v)
{
    const fast_node *fn = &f->fast[node];
    return v >= 0 && v < 16777216.0f &&
           in_sorted(f->cats + f->cat_first[node], fn->cat_n, (int32_t)v);
}

#define GROUP 8 /* rows walked together: independent loads overlap */

#define TILE 64 /* rows that go through all trees together: a tree's nodes stay in L1 */

/* Adds tree t's leaves of GROUP rows (x: row-major, nfeat each) to margin. */
static inline void tree_group(const xgb_forest *f, size_t t, const float *x, float *margin)
{
    const fast_node *fast = f->fast;
    const size_t nf = (size_t)f->nfeat;
    int32_t at[GROUP];
    const int32_t root = (int32_t)f->fast_roots[t];
    for (int r = 0; r < GROUP; r++)
        at[r] = root;
    for (uint32_t l = 0; l < f->depth[t]; l++) {
#pragma GCC unroll 8
        for (int r = 0; r < GROUP; r++) {
            const fast_node *fn = &fast[at[r]];
            float v = x[(size_t)r * nf + fn->feature];
            unsigned flags = fn->flags, right;
            if (__builtin_expect(flags & FAST_CAT, 0))
                right = isnan(v) ? (flags & FAST_DEFAULT_RIGHT)
                                 : (unsigned)cat_right(f, (size_t)at[r], v);
            else /* v >= cond, or missing (NaN: both comparisons false) and default right */
                right = (unsigned)(v >= fn->cond) |
                        ((unsigned)!(v < fn->cond) & flags & FAST_DEFAULT_RIGHT);
            at[r] = fn->left + (int32_t)right;
        }
    }
    for (int r = 0; r < GROUP; r++)
        margin[r] += f->leaf[at[r]];
}

/* Predictions of n rows (a multiple of GROUP, at most TILE) into out: every
 * row's margin gets the trees' leaves in tree order, as XGBoost adds them. */
static void forest_tile(const xgb_forest *f, const float *x, size_t n, float *out)
{
    const size_t nf = (size_t)f->nfeat;
    float margin[TILE];
    for (size_t r = 0; r < n; r++)
        margin[r] = f->base;
    for (size_t t = 0; t < f->ntrees; t++)
        for (size_t g = 0; g < n; g += GROUP)
            tree_group(f, t, x + g * nf, margin + g);
    for (size_t r = 0; r < n; r++)
        out[r] = f->exp_out ? expf(margin[r]) : margin[r];
}

typedef struct {
    const xgb_forest *f;
    const float *x;
    float *out;
    size_t r0, r1;
} forest_job;

static void *forest_worker(void *arg)
{
    forest_job *J = arg;
    const size_t nf = (size_t)J->f->nfeat;
    size_t r = J->r0;
    for (; r + GROUP <= J->r1; r += TILE) {
        size_t n = (J->r1 - r) / GROUP * GROUP;
        forest_tile(J->f, J->x + r * nf, n < TILE ? n : TILE, J->out + r);
        if (n < TILE) {
            r += n;
            break;
        }
    }
    if (r < J->r1) { /* the last rows, padded with copies of the last one */
        float x[GROUP * 256], out[GROUP];
        size_t n = J->r1 - r;
        for (size_t k = 0; k < GROUP; k++)
            memcpy(x + k * nf, J->x + (r + (k < n ? k : n - 1)) * nf, nf * sizeof *x);
        forest_tile(J->f, x, GROUP, out);
        memcpy(J->out + r, out, n * sizeof *out);
    }
    return NULL;
}

void xgb_forest_predict(const xgb_forest *f, const float *x, size_t rows, int threads, float *out)
{
    if (threads < 1)
        threads = 1;
    if ((size_t)threads > rows)
        threads = rows ? (int)rows : 1;
    forest_job jobs[64];
    pthread_t tids[64];
    int started[64] = {0};
    if (threads > 64)
        threads = 64;
    for (int k = 0; k < threads; k++) {
        jobs[k] = (forest_job){f, x, out, rows * (size_t)k / (size_t)threads,
                               rows * (size_t)(k + 1) / (size_t)threads};
        started[k] = k > 0 && pthread_create(&tids[k], NULL, forest_worker, &jobs[k]) == 0;
    }
    forest_worker(&jobs[0]);
    for (int k = 1; k < threads; k++) {
        if (started[k])
            pthread_join(tids[k], NULL);
        else
            forest_worker(&jobs[k]);
    }
}
