/* The GloboJava demo seeding, over HTTP against our own API. */
#include "demo/demo.h"
#include "identity/auth.h"
#include "core/log.h"
#include "demo/salesgen.h"
#include "lib/util.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct demo_seeder {
    pthread_t thread;
    char base[96];
    devissuer *dev;
    volatile sig_atomic_t stop;
};

typedef struct {
    const char *base;
    volatile sig_atomic_t *stop;
    char *admin, *scientist, *manager, *approver; /* tokens */
    char run_id[40];                               /* the run that becomes model v1 */
    int new_version;      /* the upload made a new dataset version (not a restart's same bytes) */
    int was_in_production; /* a restarted demo: the model already serves */
} seed_ctx;

/* ---- the terminal ------------------------------------------------------------------ */

static int64_t console_started_ms, step_started_ms;
static char console_data_dir[512] = "./var";

void demo_console_begin(const config *cfg)
{
    console_started_ms = now_ms_monotonic();
    snprintf(console_data_dir, sizeof console_data_dir, "%s", cfg->data_dir);
    mkdir(cfg->data_dir, 0755); /* the embedded cluster's user must enter it */
    char *path = xasprintf("%s/roastery.log", cfg->data_dir);
    int logged = log_to_file(path, LOG_WARN) == RST_OK;
    printf("Roastery %s: the GloboJava demo\n", ROASTERY_VERSION);
    printf("  data        %s (delete it to start over)\n", cfg->data_dir);
    printf("  log         %s\n\n", logged ? path : "stderr");
    fflush(stdout);
    free(path);
}

void demo_console_step_begin(const char *label)
{
    step_started_ms = now_ms_monotonic();
    printf("  %-34s ", label);
    fflush(stdout);
}

void demo_console_step_end(const char *fmt, ...)
{
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
    } else {
        fputs("done", stdout);
    }
    printf(" (%.1f s)\n", (double)(now_ms_monotonic() - step_started_ms) / 1000.0);
    fflush(stdout);
}

void demo_history_range(char start[11], char end[11])
{
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    tm.tm_mday -= 1; /* yesterday: mktime normalises across months and years */
    tm.tm_hour = 12; /* away from daylight-saving edges */
    tm.tm_isdst = -1;
    time_t t = mktime(&tm);
    localtime_r(&t, &tm);
    strftime(end, 11, "%Y-%m-%d", &tm);
    tm.tm_mday -= DEMO_HISTORY_DAYS - 1;
    tm.tm_isdst = -1;
    t = mktime(&tm);
    localtime_r(&t, &tm);
    strftime(start, 11, "%Y-%m-%d", &tm);
}

/* ---- the API ------------------------------------------------------------------------ */

static size_t collect(char *data, size_t size, size_t n, void *arg)
{
    return buf_append(arg, data, size * n) ? 0 : size * n;
}

/* One request; *status gets the HTTP status (0 when no answer) and *reply,
 * when given, the body (caller frees with buf_free). Retries while the
 * server answers 503 or cannot be reached yet. */
static int call(seed_ctx *s, const char *method, const char *path, const char *token,
                const char *ctype, const char *body, size_t len, long *status, buf_t *reply)
{
    char url[512], auth[4096], ct[96];
    snprintf(url, sizeof url, "%s%s", s->base, path);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
    snprintf(ct, sizeof ct, "Content-Type: %s", ctype ? ctype : "application/json");
    buf_t local;
    buf_init(&local, 16u << 20);
    if (!reply)
        reply = &local;
    *status = 0;
    for (int attempt = 0; attempt < 30 && !(s->stop && *s->stop); attempt++) {
        reply->len = 0;
        CURL *h = curl_easy_init();
        struct curl_slist *hdrs = curl_slist_append(NULL, auth);
        hdrs = curl_slist_append(hdrs, ct);
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, reply);
        curl_easy_setopt(h, CURLOPT_TIMEOUT, 300L);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        if (body) {
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        }
        CURLcode rc = curl_easy_perform(h);
        if (rc == CURLE_OK)
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
        curl_slist_free_all(hdrs);
        curl_easy_cleanup(h);
        if (rc == CURLE_OK && *status != 503)
            break;
        *status = 0;
        sleep(1);
    }
    buf_free(&local);
    return *status ? RST_OK : RST_EIO;
}

/* A JSON call whose success is any of the listed statuses (e.g. 201 and
 * 409 for "created or already there"). */
static int call_json(seed_ctx *s, const char *method, const char *path, const char *token,
                     json_t *body, long ok1, long ok2, json_t **out)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    long status;
    buf_t reply;
    buf_init(&reply, 16u << 20);
    int rc = call(s, method, path, token, NULL, text, text ? strlen(text) : 0, &status, &reply);
    free(text);
    if (rc == RST_OK && status != ok1 && status != ok2) {
        log_fields(LOG_WARN, "demo step failed",
                   json_pack("{s:s, s:s, s:I, s:s%}", "method", method, "path", path, "status",
                             (json_int_t)status, "reply", reply.data ? reply.data : "",
                             reply.len));
        rc = RST_EINVAL;
    }
    if (rc == RST_OK && out)
        *out = json_loadb(reply.data ? reply.data : "", reply.len, 0, NULL);
    buf_free(&reply);
    return rc;
}

static int gen_write(void *arg, const char *data, size_t len)
{
    return buf_append(arg, data, len);
}

static char *oid_of(seed_ctx *s, const char *token)
{
    json_t *me = NULL;
    if (call_json(s, "GET", "/api/v1/me", token, NULL, 200, 200, &me))
        return NULL;
    const char *oid = json_string_value(json_object_get(me, "oid"));
    char *out = oid ? xstrdup(oid) : NULL;
    json_decref(me);
    return out;
}

static void say_failed(int rc)
{
    if (rc)
        demo_console_step_end("FAILED: see the log");
}

static int seed_people_and_stores(seed_ctx *s)
{
    demo_console_step_begin("People and stores");
    char *scientist = oid_of(s, s->scientist), *manager = oid_of(s, s->manager);
    int rc = scientist && manager ? RST_OK : RST_EIO;
    if (rc == RST_OK)
        rc = call_json(s, "POST", "/api/v1/projects", s->scientist,
                       json_pack("{s:s, s:s}", "id", DEMO_PROJECT, "display_name",
                                 "GloboJava demand forecasting"),
                       201, 409, NULL);
    for (int i = 0; i < DEMO_STORES && rc == RST_OK; i++) {
        salesgen_store st;
        salesgen_store_info(i, &st);
        char name[120], path[160];
        snprintf(name, sizeof name, "GloboJava %s #%d", st.city, i / 24 + 1);
        rc = call_json(s, "POST", "/api/v1/stores", s->admin,
                       json_pack("{s:s, s:s, s:s, s:s, s:s}", "id", st.id, "name", name,
                                 "country", st.country, "city", st.city, "timezone", st.timezone),
                       201, 409, NULL);
        /* GloboJava's project serves every store: an admin's decision, as anyone's would be. */
        if (rc == RST_OK) {
            snprintf(path, sizeof path, "/api/v1/stores/%s/serving-project", st.id);
            rc = call_json(s, "PUT", path, s->admin, json_pack("{s:s}", "project", DEMO_PROJECT),
                           200, 200, NULL);
        }
        /* Sam manages the first two stores, and no other. */
        if (rc == RST_OK && i < 2) {
            snprintf(path, sizeof path, "/api/v1/stores/%s/managers/%s", st.id, manager);
            rc = call_json(s, "PUT", path, s->admin, json_object(), 200, 201, NULL);
        }
    }
    free(scientist);
    free(manager);
    if (rc == RST_OK)
        demo_console_step_end("4 people, %d stores in the USA, Canada and Mexico", DEMO_STORES);
    say_failed(rc);
    return rc;
}

/* Uploads the generated history as a version of dataset "sales" and waits
 * until it is ingested. The same bytes are recognised as the same version,
 * so a restarted demo does not add another one. */
static int seed_sales(seed_ctx *s)
{
    demo_console_step_begin("Two years of sales, ingested");
    int rc = call_json(s, "POST", "/api/v1/projects/" DEMO_PROJECT "/datasets", s->scientist,
                       json_pack("{s:s, s:s}", "name", "sales", "description",
                                 "GloboJava daily sales, generated (docs/generative-model.md)"),
                       201, 409, NULL);
    if (rc)
        return rc;
    salesgen_options o;
    salesgen_defaults(&o);
    o.stores = DEMO_STORES;
    o.products = DEMO_PRODUCTS;
    char start[11], end[11];
    demo_history_range(start, end);
    o.start = start;
    o.end = end;
    buf_t csv;
    buf_init(&csv, 256u << 20);
    uint64_t rows = 0;
    if (salesgen_write(&o, gen_write, &csv, &rows, NULL, 0)) {
        buf_free(&csv);
        return RST_EIO;
    }
    long status;
    buf_t reply;
    buf_init(&reply, 1u << 20);
    rc = call(s, "POST", "/api/v1/projects/" DEMO_PROJECT "/datasets/sales/versions",
              s->scientist, "text/csv", csv.data, csv.len, &status, &reply);
    s->new_version = rc == RST_OK && status == 202; /* 200: the same bytes, already a version */
    buf_free(&csv);
    json_t *v = rc == RST_OK && (status == 200 || status == 202)
                    ? json_loadb(reply.data ? reply.data : "", reply.len, 0, NULL)
                    : NULL;
    buf_free(&reply);
    if (!v) {
        log_fields(LOG_WARN, "demo upload failed", json_pack("{s:I}", "status", (json_int_t)status));
        return RST_EIO;
    }
    char path[160];
    snprintf(path, sizeof path, "/api/v1/projects/" DEMO_PROJECT "/datasets/sales/versions/%lld",
             (long long)json_integer_value(json_object_get(v, "number")));
    json_decref(v);
    const char *state = "pending";
    json_t *cur = NULL;
    for (int i = 0; i < 600 && !(s->stop && *s->stop); i++) {
        json_decref(cur);
        cur = NULL;
        if ((rc = call_json(s, "GET", path, s->scientist, NULL, 200, 200, &cur)))
            break;
        state = json_string_value(json_object_get(cur, "state"));
        if (state && strcmp(state, "pending") && strcmp(state, "ingesting"))
            break;
        sleep(1);
    }
    if (rc == RST_OK && state && !strcmp(state, "ready"))
        demo_console_step_end("%lld rows, %s to %s",
                              (long long)json_integer_value(json_object_get(cur, "rows_accepted")),
                              start, end);
    if (rc == RST_OK)
        log_fields(LOG_INFO, "demo sales ingested",
                   json_pack("{s:s, s:s, s:I, s:O?}", "version", path, "state",
                             state ? state : "?", "rows_generated", (json_int_t)rows,
                             "rows_accepted", json_object_get(cur, "rows_accepted")));
    rc = rc == RST_OK && state && !strcmp(state, "ready") ? RST_OK : RST_EIO;
    json_decref(cur);
    say_failed(rc);
    return rc;
}

/* Polls path until field is one of the comma-separated states (or time
 * runs out). new: *out, the last answer. */
static int wait_state(seed_ctx *s, const char *path, const char *token, const char *field,
                      const char *states, int seconds, json_t **out)
{
    *out = NULL;
    int rc = RST_EUNAVAIL;
    for (int i = 0; i < seconds && !(s->stop && *s->stop); i++) {
        json_decref(*out);
        *out = NULL;
        if ((rc = call_json(s, "GET", path, token, NULL, 200, 200, out)))
            return rc;
        const char *st = json_string_value(json_object_get(*out, field));
        char want[200];
        snprintf(want, sizeof want, ",%s,", states);
        char have[64];
        snprintf(have, sizeof have, ",%s,", st ? st : "");
        if (st && strstr(want, have))
            return RST_OK;
        rc = RST_EUNAVAIL;
        sleep(1);
    }
    return rc;
}

/* Prints the run's backtest against the seasonal-naive baseline. */
static void say_run(const json_t *run)
{
    const json_t *m = json_object_get(run, "metrics");
    const json_t *w = json_object_get(json_object_get(m, "overall"), "wape");
    const json_t *sn = json_object_get(json_object_get(m, "baselines"), "seasonal_naive");
    const json_t *snw = json_object_get(sn, "wape");
    if (!snw)
        snw = json_object_get(json_object_get(sn, "overall"), "wape");
    if (json_is_number(w) && json_is_number(snw))
        demo_console_step_end("backtest WAPE %.3f, seasonal-naive %.3f", json_number_value(w),
                              json_number_value(snw));
    else
        demo_console_step_end(NULL);
}

/* A local compute target (one slot on this machine) and a first xgboost run
 * on the sales history, unless one already completed; waits for it and
 * keeps its id in s->run_id. */
static int seed_training(seed_ctx *s)
{
    demo_console_step_begin("Training xgboost on this machine");
    json_t *c = NULL, *runs = NULL, *run = NULL;
    int rc = call_json(s, "POST", "/api/v1/projects/" DEMO_PROJECT "/compute", s->scientist,
                       json_pack("{s:s, s:s, s:i}", "name", DEMO_COMPUTE, "kind", "local",
                                 "max_nodes", 1),
                       202, 409, NULL);
    if (rc == RST_OK)
        rc = call_json(s, "GET", "/api/v1/projects/" DEMO_PROJECT "/runs?state=completed&limit=1",
                       s->scientist, NULL, 200, 200, &runs);
    run = json_incref(json_array_get(json_object_get(runs, "items"), 0));
    if (rc == RST_OK && !run) {
        /* the compute becomes ready in a moment: the run request needs it ready */
        for (int i = 0; i < 60 && !(s->stop && *s->stop); i++) {
            json_decref(c);
            c = NULL;
            rc = call_json(s, "GET", "/api/v1/projects/" DEMO_PROJECT "/compute?state=ready",
                           s->scientist, NULL, 200, 200, &c);
            if (rc || json_array_size(json_object_get(c, "items")))
                break;
            sleep(1);
        }
        json_t *started = NULL;
        if (rc == RST_OK)
            rc = call_json(s, "POST", "/api/v1/projects/" DEMO_PROJECT "/runs", s->scientist,
                           json_pack("{s:s, s:s, s:s, s:s}", "dataset", "sales", "compute",
                                     DEMO_COMPUTE, "experiment", "demand-baseline", "algorithm",
                                     "xgboost"),
                           202, 202, &started);
        const char *id = json_string_value(json_object_get(started, "id"));
        if (rc == RST_OK && id) {
            char path[120];
            snprintf(path, sizeof path, "/api/v1/runs/%s", id);
            rc = wait_state(s, path, s->scientist, "state", "completed,failed,canceled", 900,
                            &run);
            const char *st = json_string_value(json_object_get(run, "state"));
            if (rc == RST_OK && (!st || strcmp(st, "completed"))) {
                log_fields(LOG_WARN, "demo training run did not complete",
                           json_pack("{s:s, s:O?}", "run", id, "error",
                                     json_object_get(run, "error")));
                rc = RST_EINVAL;
            }
        } else if (rc == RST_OK) {
            rc = RST_EINVAL;
        }
        json_decref(started);
    }
    const char *id = json_string_value(json_object_get(run, "id"));
    if (rc == RST_OK && id) {
        snprintf(s->run_id, sizeof s->run_id, "%s", id);
        say_run(run);
    }
    say_failed(rc);
    json_decref(c);
    json_decref(runs);
    json_decref(run);
    return rc;
}

/* The first completed run becomes version 1 of model "demand" and goes to
 * production through the gates and a second admin's approval, as anyone's
 * would; production then forecasts every store for the next 14 days. */
static int seed_production(seed_ctx *s)
{
    const char *models = "/api/v1/projects/" DEMO_PROJECT "/models";
    json_t *m = NULL, *runs = NULL, *v = NULL, *p = NULL;
    int rc = call_json(s, "POST", models, s->scientist,
                       json_pack("{s:s, s:s}", "name", "demand", "description",
                                 "daily demand per store and product"),
                       201, 409, NULL);
    if (rc == RST_OK)
        rc = call_json(s, "GET", "/api/v1/projects/" DEMO_PROJECT "/models/demand", s->scientist,
                       NULL, 200, 200, &m);
    demo_console_step_begin("Promotion to production");
    if (rc == RST_OK && json_object_get(json_object_get(m, "aliases"), "production")) {
        s->was_in_production = 1; /* a restarted demo */
        demo_console_step_end("model demand v%lld already serves",
                              (long long)json_integer_value(json_object_get(
                                  json_object_get(m, "aliases"), "production")));
        goto out;
    }
    if (rc)
        goto out;
    const char *run_id = s->run_id;
    rc = call_json(s, "POST", "/api/v1/projects/" DEMO_PROJECT "/models/demand/versions",
                   s->scientist, json_pack("{s:s}", "run_id", run_id), 201, 409, NULL);
    if (rc == RST_OK)
        rc = call_json(s, "GET", "/api/v1/projects/" DEMO_PROJECT "/models/demand/versions",
                       s->scientist, NULL, 200, 200, &v);
    long long version = 0;
    size_t i;
    json_t *it;
    json_array_foreach(json_object_get(v, "items"), i, it)
    {
        const char *r = json_string_value(json_object_get(it, "run_id"));
        if (r && !strcmp(r, run_id))
            version = json_integer_value(json_object_get(it, "version"));
    }
    if (rc == RST_OK && !version)
        rc = RST_ENOTFOUND;
    char path[200];
    if (rc == RST_OK) {
        snprintf(path, sizeof path,
                 "/api/v1/projects/" DEMO_PROJECT "/models/demand/versions/%lld/promotions",
                 version);
        rc = call_json(s, "POST", path, s->admin, json_pack("{s:s}", "target", "production"),
                       202, 202, &p);
    }
    const char *id = json_string_value(json_object_get(p, "id"));
    if (rc == RST_OK && id) {
        snprintf(path, sizeof path, "/api/v1/promotions/%s", id);
        json_t *cur = NULL;
        rc = wait_state(s, path, s->admin, "state",
                        "pending_approval,gates_failed,completed,failed,rejected", 600, &cur);
        const char *st = json_string_value(json_object_get(cur, "state"));
        if (rc == RST_OK && st && !strcmp(st, "pending_approval")) {
            snprintf(path, sizeof path, "/api/v1/promotions/%s/approve", id);
            rc = call_json(s, "POST", path, s->approver,
                           json_pack("{s:s}", "reason", "demo: backtest beats seasonal-naive"),
                           202, 202, NULL);
        } else if (rc == RST_OK) {
            log_fields(LOG_WARN, "demo promotion did not reach approval",
                       json_pack("{s:s?, s:O?}", "state", st, "gates",
                                 json_object_get(cur, "gates")));
            rc = RST_EINVAL;
        }
        json_decref(cur);
    }
    if (rc == RST_OK) {
        demo_console_step_end("model demand v%lld: gates passed, approved by %s", version,
                              DEMO_APPROVER);
        log_fields(LOG_INFO, "demo model in production",
                   json_pack("{s:s, s:I}", "model", "demand", "version", (json_int_t)version));
    }
    say_failed(rc);
out:
    json_decref(m);
    json_decref(runs);
    json_decref(v);
    json_decref(p);
    return rc;
}

/* Waits until the store manager is served his first store's forecast for
 * the coming days, through the same route the portal reads. A restarted
 * demo whose history moved on (a new day, a new version) forecasts again. */
static int seed_first_forecast(seed_ctx *s)
{
    demo_console_step_begin("First forecasts");
    int rc = RST_OK;
    if (s->was_in_production && s->new_version)
        rc = call_json(s, "POST", "/api/v1/projects/" DEMO_PROJECT "/forecast-runs",
                       s->scientist, json_object(), 202, 202, NULL);
    salesgen_store st;
    salesgen_store_info(0, &st);
    char path[120], today[11];
    snprintf(path, sizeof path, "/api/v1/stores/%s/forecasts", st.id);
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(today, sizeof today, "%Y-%m-%d", &tm);
    json_t *fc = NULL;
    const char *from = NULL;
    for (int i = 0; rc == RST_OK && i < 600 && !(s->stop && *s->stop); i++) {
        long status = 0;
        buf_t reply;
        buf_init(&reply, 16u << 20);
        rc = call(s, "GET", path, s->manager, NULL, NULL, 0, &status, &reply);
        json_decref(fc);
        fc = status == 200 ? json_loadb(reply.data ? reply.data : "", reply.len, 0, NULL) : NULL;
        buf_free(&reply);
        from = json_string_value(json_object_get(json_array_get(json_object_get(fc, "items"), 0),
                                                 "date"));
        if (from && strcmp(from, today) >= 0)
            break;
        sleep(1);
    }
    if (rc == RST_OK && from)
        demo_console_step_end("%zu rows for %s from %s", json_array_size(json_object_get(fc, "items")),
                              st.id, from);
    else
        rc = rc ? rc : RST_EUNAVAIL;
    say_failed(rc);
    json_decref(fc);
    return rc;
}

/* The last lines: where to go, who to be, how to stop. */
static void say_ready(seed_ctx *s)
{
    long status = 0;
    call(s, "GET", "/", s->manager, NULL, NULL, 0, &status, NULL);
    salesgen_store a, b;
    salesgen_store_info(0, &a);
    salesgen_store_info(1, &b);
    printf("\n%s %s/  (%.0f s after start)\n\n", status == 200 ? "Portal ready:" : "API ready:",
           s->base, (double)(now_ms_monotonic() - console_started_ms) / 1000.0);
    if (status != 200)
        printf("  the portal is not built here (it needs node and npm: scripts/install-deps)\n\n");
    printf("  Sign in (%s/auth/dev/sign-in) as\n", s->base);
    printf("    %-15s store manager of %s and %s: their forecasts for the next 14 days\n",
           DEMO_MANAGER, a.id, b.id);
    printf("    %-15s data scientist of project %s: datasets, runs, models, forecasts\n",
           DEMO_SCIENTIST, DEMO_PROJECT);
    printf("    %-15s platform admin: stores, approvals, quotas, the audit log\n", DEMO_ADMIN);
    printf("    %-15s the second admin that four-eyes approvals need\n\n", DEMO_APPROVER);
    char exe[4096] = "roastery";
    self_exe(exe, sizeof exe);
    printf("  The API from a shell or a notebook:\n");
    printf("    TOKEN=$(ROASTERY_DATA_DIR=%s %s token --user %s --roles DataScientist)\n",
           console_data_dir, exe, DEMO_SCIENTIST);
    printf("    curl -H \"Authorization: Bearer $TOKEN\" %s/api/v1/projects/%s/forecast-runs\n\n",
           s->base, DEMO_PROJECT);
    printf("Press Ctrl-C to stop. What was seeded stays in the data directory.\n");
    fflush(stdout);
}

int demo_seed(const char *base_url, devissuer *dev, volatile sig_atomic_t *stop)
{
    seed_ctx s = {.base = base_url,
                  .stop = stop,
                  .admin = devissuer_mint(dev, DEMO_ADMIN, AUTH_ROLE_PLATFORM_ADMIN, 3600),
                  .scientist = devissuer_mint(dev, DEMO_SCIENTIST, AUTH_ROLE_DATA_SCIENTIST, 3600),
                  .manager = devissuer_mint(dev, DEMO_MANAGER, AUTH_ROLE_STORE_MANAGER, 3600),
                  .approver = devissuer_mint(dev, DEMO_APPROVER, AUTH_ROLE_PLATFORM_ADMIN, 3600)};
    int rc = s.admin && s.scientist && s.manager && s.approver ? RST_OK : RST_EINVAL;
    if (rc == RST_OK)
        rc = seed_people_and_stores(&s);
    if (rc == RST_OK)
        rc = seed_sales(&s);
    if (rc == RST_OK)
        rc = seed_training(&s);
    if (rc == RST_OK)
        rc = seed_production(&s);
    if (rc == RST_OK)
        rc = seed_first_forecast(&s);
    if (rc == RST_OK)
        say_ready(&s);
    else if (!(stop && *stop))
        printf("\nThe demo could not finish setting up: the log says why. The API stays up.\n");
    log_fields(rc ? LOG_WARN : LOG_INFO, rc ? "demo seeding stopped" : "demo seeded",
               json_pack("{s:s, s:i, s:i, s:s, s:s}", "project", DEMO_PROJECT, "stores",
                         DEMO_STORES, "products", DEMO_PRODUCTS, "scientist", DEMO_SCIENTIST,
                         "store_manager", DEMO_MANAGER));
    free(s.admin);
    free(s.scientist);
    free(s.manager);
    free(s.approver);
    return rc;
}

static void *seeder_main(void *arg)
{
    demo_seeder *d = arg;
    demo_seed(d->base, d->dev, &d->stop);
    return NULL;
}

demo_seeder *demo_seeder_start(const char *listen, devissuer *dev)
{
    demo_seeder *d = xcalloc(1, sizeof *d);
    d->dev = dev;
    const char *colon = strrchr(listen, ':');
    const char *port = colon ? colon + 1 : listen;
    char host[64] = "127.0.0.1";
    /* A wildcard listen is reached on loopback. */
    if (colon && (size_t)(colon - listen) < sizeof host && colon != listen &&
        strncmp(listen, "0.0.0.0", 7) && strncmp(listen, "[::]", 4))
        snprintf(host, sizeof host, "%.*s", (int)(colon - listen), listen);
    snprintf(d->base, sizeof d->base, "http://%s:%s", host, port);
    if (pthread_create(&d->thread, NULL, seeder_main, d)) {
        free(d);
        return NULL;
    }
    return d;
}

void demo_seeder_stop(demo_seeder *d)
{
    if (!d)
        return;
    d->stop = 1;
    pthread_join(d->thread, NULL);
    free(d);
}
