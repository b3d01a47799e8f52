/* Training runs: started on a ready dataset version and a ready compute
 * target, validated entirely at request time (so a worker never discovers
 * a bad request), then watched: state, logs (followed live), metrics and
 * artifacts. */
#include "api.h"
#include "http/app.h"
#include "artifacts/artifacts.h"
#include "ops/ops.h"
#include "identity/access.h"
#include "identity/policy.h"
#include "runs/run_outputs.h"
#include "trainer/train_params.h"
#include "runs/run_request.h"
#include "lib/util.h"
#include "http/validate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* What runs keep, shown without the server's own paths (review finding 14): each artifact's
 * uri is the API URL that serves it, the lineage's input a file name. */
#define RUN_ARTIFACTS                                                                              \
    "(SELECT coalesce(jsonb_agg(a || jsonb_build_object('uri', '/api/v1/runs/' || r.id ||"         \
    " '/artifacts/' || (a->>'name')) ORDER BY o), '[]'::jsonb) FROM"                               \
    " jsonb_array_elements(coalesce(r.artifacts, '[]'::jsonb)) WITH ORDINALITY AS x(a, o))"
#define RUN_LINEAGE                                                                                \
    "CASE WHEN jsonb_typeof(r.lineage->'input') = 'string' THEN jsonb_set(r.lineage, '{input}',"   \
    " to_jsonb(regexp_replace(r.lineage->>'input', '^.*/', ''))) ELSE r.lineage END"

#define RUN_JSON                                                                                   \
    "json_build_object('id', r.id, 'project', r.project_id, 'number', r.number, 'experiment',"     \
    " r.experiment, 'dataset', r.dataset, 'dataset_version', r.dataset_version,"                   \
    " 'dataset_sha256', r.dataset_sha256, 'compute_id', r.compute_id, 'compute', (SELECT t.name"   \
    " FROM compute_targets t WHERE t.id = r.compute_id), 'algorithm', r.algorithm, 'params',"      \
    " r.params, 'horizon_days', r.horizon_days, 'backtest_days', r.backtest_days,"                 \
    " 'rolling_origins', r.rolling_origins, 'seed', r.seed, 'state', r.state, 'queued_at',"        \
    " r.queued_at, 'preparing_at', r.preparing_at, 'running_at', r.running_at, 'finished_at',"     \
    " r.finished_at, 'exit_status', r.exit_status, 'error', r.error, 'metrics', r.metrics,"        \
    " 'lineage', " RUN_LINEAGE ", 'artifacts', " RUN_ARTIFACTS ", 'log_chunks',"                   \
    " r.log_chunks, 'azure_job', r.azure_job, 'operation_id', r.operation_id, 'created_by', "      \
    "r.created_by, 'created_at',"                                                                  \
    " r.created_at, 'updated_at', r.updated_at, 'version', r.version)"

static const char *check_algorithm(const char *s)
{
    return strcmp(s, "xgboost") && strcmp(s, "seasonal_naive") && strcmp(s, "moving_average")
               ? "must be xgboost, seasonal_naive or moving_average"
               : NULL;
}

void api_runs_create(http_req *req)
{
    caller *who = access_caller(req);
    const char *project = http_param(req, "project");
    json_t *body = NULL;
    PGconn *c = api_conn(req);
    if (!c)
        return;
    if (policy_answer(req, policy_check(c, who, ACT_COMPUTE_WRITE, project), "runs") ||
        http_read_json(req, &body))
        goto out;
    validator v;
    v_init(&v);
    static const char *const allowed[] = {"experiment",      "dataset",       "dataset_version",
                                          "compute",         "algorithm",     "params",
                                          "horizon_days",    "backtest_days", "rolling_origins",
                                          "seed",            NULL};
    v_only(&v, body, allowed);
    const char *experiment = v_string(&v, body, "experiment", 0, 63, v_check_slug);
    const char *dataset = v_string(&v, body, "dataset", 1, 63, v_check_slug);
    const char *compute = v_string(&v, body, "compute", 1, 16, v_check_printable);
    const char *algorithm = v_string(&v, body, "algorithm", 0, 32, check_algorithm);
    long long number = 0, horizon = TRAIN_DEFAULT_HORIZON, backtest = TRAIN_DEFAULT_BACKTEST,
              origins = 1, seed = 42;
    v_integer(&v, body, "dataset_version", 1, 1000000000, &number);
    v_integer(&v, body, "horizon_days", 1, TRAIN_MAX_HORIZON, &horizon);
    v_integer(&v, body, "backtest_days", 7, 365, &backtest);
    v_integer(&v, body, "rolling_origins", 1, 12, &origins);
    v_integer(&v, body, "seed", 0, 2147483647, &seed);
    json_t *params = json_object_get(body, "params");
    char field[80], reason[200];
    if (params && !json_is_object(params))
        v_error(&v, "params", "must be an object of algorithm parameters");
    else if (params && train_params_check(algorithm ? algorithm : "xgboost", params, field,
                                          sizeof field, reason, sizeof reason))
        v_error(&v, field, reason);
    if (v_finish(&v, req))
        goto out;
    if (!experiment)
        experiment = "default";
    if (!algorithm)
        algorithm = "xgboost";
    run_request rq = {.project = project,
                      .experiment = experiment,
                      .dataset = dataset,
                      .dataset_version = number,
                      .compute = compute,
                      .algorithm = algorithm,
                      .params = params,
                      .horizon_days = horizon,
                      .backtest_days = backtest,
                      .rolling_origins = origins,
                      .seed = seed,
                      .created_by = who->id.oid};
    char id[40], op[37];
    int rc = run_request_create(c, &rq, id, op, field, sizeof field, reason, sizeof reason);
    if (rc == RST_EINVAL) {
        http_problem_field(req, field, reason);
        goto out;
    }
    if (rc) {
        http_problem_unavailable(req);
        goto out;
    }
    char subject[200];
    snprintf(subject, sizeof subject, "projects/%s/runs/%s", project, id);
    access_set_subject(req, subject);
    PGresult *r = db_exec(c, "SELECT " RUN_JSON "::text FROM runs r WHERE r.id = $1::uuid", 1,
                          (const char *[]){id}, NULL);
    if (r && PQntuples(r) == 1) {
        char loc[80];
        snprintf(loc, sizeof loc, "/api/v1/operations/%s", op);
        http_add_header(req, "Location", loc);
        http_reply_bytes(req, 202, "application/json", PQgetvalue(r, 0, 0),
                         (size_t)PQgetlength(r, 0, 0));
    } else {
        http_problem_unavailable(req);
    }
    PQclear(r);
out:
    json_decref(body);
    api_release(req, c);
}

void api_runs_list(http_req *req)
{
    const char *project = http_param(req, "project");
    long limit;
    char experiment[64], state[16], cursor[16];
    int he = http_query(req, "experiment", experiment, sizeof experiment);
    int hs = http_query(req, "state", state, sizeof state);
    int hc = http_query(req, "cursor", cursor, sizeof cursor);
    long cur = 0;
    if (api_limit(req, &limit))
        return;
    if (he == -2 || hs == -2 || (hc != -1 && (hc == -2 || parse_long(cursor, 1, 2000000000, &cur)))) {
        http_problem_field(req, he == -2 ? "experiment" : hs == -2 ? "state" : "cursor",
                           "is not valid here");
        return;
    }
    PGconn *c = api_conn(req);
    if (!c)
        return;
    if (!policy_answer(req, policy_check(c, access_caller(req), ACT_COMPUTE_READ, project),
                       "runs")) {
        char lim[24];
        snprintf(lim, sizeof lim, "%ld", limit + 1);
        PGresult *r = db_exec(c,
                              "SELECT r.number::text, " RUN_JSON "::text FROM runs r"
                              " WHERE r.project_id = $1 AND ($2::text IS NULL OR r.experiment = $2)"
                              " AND ($3::text IS NULL OR r.state = $3)"
                              " AND ($4::int IS NULL OR r.number < $4::int)"
                              " ORDER BY r.number DESC LIMIT $5::int",
                              5,
                              (const char *[]){project, he >= 0 ? experiment : NULL,
                                               hs >= 0 ? state : NULL, hc >= 0 ? cursor : NULL,
                                               lim},
                              NULL);
        if (r)
            api_reply_page(req, r, 0, 1, limit);
        else
            http_problem_unavailable(req);
        PQclear(r);
    }
    api_release(req, c);
}

/* Access check on a run by id; fills project (and state). 404 when absent. */
static int run_access(http_req *req, PGconn *c, policy_action act, char *project, size_t plen,
                      char *state, size_t slen)
{
    const char *id = http_param(req, "id");
    PGresult *r = db_exec(c, "SELECT project_id, state FROM runs WHERE id::text = $1", 1,
                          (const char *[]){id}, NULL);
    if (!r) {
        http_problem_unavailable(req);
        return 1;
    }
    int found = PQntuples(r) == 1;
    if (found) {
        snprintf(project, plen, "%s", PQgetvalue(r, 0, 0));
        snprintf(state, slen, "%s", PQgetvalue(r, 0, 1));
    }
    PQclear(r);
    if (!found) {
        http_problem(req, 404, "not-found", "Not found", NULL, "no run %s", id);
        return 1;
    }
    return policy_answer(req, policy_check(c, access_caller(req), act, project), "runs");
}

void api_runs_show(http_req *req)
{
    char project[80], state[16];
    PGconn *c = api_conn(req);
    if (!c)
        return;
    if (!run_access(req, c, ACT_COMPUTE_READ, project, sizeof project, state, sizeof state)) {
        PGresult *r = db_exec(c, "SELECT " RUN_JSON "::text, r.version FROM runs r"
                                 " WHERE r.id::text = $1",
                              1, (const char *[]){http_param(req, "id")}, NULL);
        api_reply_versioned(req, r, 200, NULL);
        PQclear(r);
    }
    api_release(req, c);
}

/* POST /cancel: a queued run ends at once; a live one gets SIGTERM, then
 * SIGKILL after a grace period. */
void api_runs_cancel(http_req *req)
{
    char project[80], state[16];
    const char *id = http_param(req, "id");
    PGconn *c = api_conn(req);
    if (!c)
        return;
    if (run_access(req, c, ACT_COMPUTE_WRITE, project, sizeof project, state, sizeof state))
        goto out;
    char subject[200];
    snprintf(subject, sizeof subject, "projects/%s/runs/%s", project, id);
    access_set_subject(req, subject);
    if (strcmp(state, "queued") && strcmp(state, "preparing") && strcmp(state, "running")) {
        http_problem(req, 409, "conflict", "Run finished", NULL, "the run is already %s", state);
        goto out;
    }
    PGresult *r = db_exec(c, "SELECT operation_id::text FROM runs WHERE id::text = $1", 1,
                          (const char *[]){id}, NULL);
    if (r && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
        ops_request_cancel(c, PQgetvalue(r, 0, 0));
    PQclear(r);
    /* Still queued (waiting for a slot): canceled now; the worker that next
     * looks at it finds it canceled and ends the operation. */
    PQclear(db_exec(c,
                    "UPDATE runs SET state = 'canceled', finished_at = now(), updated_at = now(),"
                    " version = version + 1 WHERE id::text = $1 AND state = 'queued'",
                    1, (const char *[]){id}, NULL));
    r = db_exec(c, "SELECT " RUN_JSON "::text FROM runs r WHERE r.id::text = $1", 1,
                (const char *[]){id}, NULL);
    if (r && PQntuples(r) == 1)
        http_reply_bytes(req, 202, "application/json", PQgetvalue(r, 0, 0),
                         (size_t)PQgetlength(r, 0, 0));
    else
        http_problem_unavailable(req);
    PQclear(r);
out:
    api_release(req, c);
}

void api_runs_metrics(http_req *req)
{
    char project[80], state[16], name[64];
    int hn = http_query(req, "name", name, sizeof name);
    if (hn == -2) {
        http_problem_field(req, "name", "is too long");
        return;
    }
    PGconn *c = api_conn(req);
    if (!c)
        return;
    if (!run_access(req, c, ACT_COMPUTE_READ, project, sizeof project, state, sizeof state)) {
        PGresult *r = db_exec(c,
                              "SELECT json_build_object('items', coalesce(json_agg("
                              "json_build_object('name', m.name, 'step', m.step, 'value', m.value,"
                              " 'at', m.at) ORDER BY m.name, m.step), '[]'))::text FROM"
                              " (SELECT * FROM run_metrics WHERE run_id::text = $1 AND"
                              " ($2::text IS NULL OR name = $2) ORDER BY name, step LIMIT 100000) m",
                              2, (const char *[]){http_param(req, "id"), hn >= 0 ? name : NULL},
                              NULL);
        if (r)
            http_reply_bytes(req, 200, "application/json", PQgetvalue(r, 0, 0),
                             (size_t)PQgetlength(r, 0, 0));
        else
            http_problem_unavailable(req);
        PQclear(r);
    }
    api_release(req, c);
}

/* ---- logs ------------------------------------------------------------------ */

typedef struct {
    app_ctx *app;
    char project[80];
    char id[40];
    int next;      /* next chunk to read */
    int follow;
    int64_t started_ms; /* monotonic */
    int max_seconds; /* a follower holds a thread: it ends after this (ROASTERY_LOG_FOLLOW_SECONDS) */
    artifact_reader *rd;
} log_stream;

/* Whether the run still writes logs (or may, after a requeue). */
static int run_live(log_stream *s, int *chunks)
{
    PGconn *c = NULL;
    if (db_acquire(s->app->pool, 2000, &c))
        return 1; /* cannot tell: keep waiting */
    PGresult *r = db_exec(c, "SELECT state, log_chunks FROM runs WHERE id::text = $1", 1,
                          (const char *[]){s->id}, NULL);
    int live = 0;
    if (r && PQntuples(r) == 1) {
        const char *st = PQgetvalue(r, 0, 0);
        live = !strcmp(st, "queued") || !strcmp(st, "preparing") || !strcmp(st, "running");
        *chunks = (int)strtol(PQgetvalue(r, 0, 1), NULL, 10);
    }
    PQclear(r);
    db_release(s->app->pool, c);
    return live;
}

static int next_log_bytes(void *arg, char *buf, size_t cap, size_t *got)
{
    log_stream *s = arg;
    *got = 0;
    for (;;) {
        if (s->follow && now_ms_monotonic() - s->started_ms >= s->max_seconds * 1000LL)
            return 0; /* even while the log keeps growing */
        if (s->rd) {
            int rc = artifacts_reader_read(s->rd, buf, cap, got);
            if (rc == RST_OK && *got)
                return 0;
            artifacts_reader_close(s->rd);
            s->rd = NULL;
            s->next++;
            continue;
        }
        char *key = run_outputs_log_key(s->project, s->id, s->next);
        int rc = artifacts_reader_open(s->app->artifacts, key, 0, 0, &s->rd);
        free(key);
        if (rc == RST_OK)
            continue;
        s->rd = NULL;
        int chunks = 0;
        int live = run_live(s, &chunks);
        if (chunks > s->next)
            continue; /* written between our two looks */
        if (!s->follow || !live || http_stopping())
            return 0; /* the end */
        usleep(300 * 1000);
    }
}

static void close_log_stream(void *arg)
{
    log_stream *s = arg;
    artifacts_reader_close(s->rd);
    free(s);
}

/* GET /logs[?follow=true]: the chunks written so far, then (when following)
 * the ones still to come until the run ends; chunked transfer. */
void api_runs_logs(http_req *req)
{
    char project[80], state[16], follow[8];
    int hf = http_query(req, "follow", follow, sizeof follow);
    if (hf != -1 && (hf == -2 || (strcmp(follow, "true") && strcmp(follow, "false")))) {
        http_problem_field(req, "follow", "must be true or false");
        return;
    }
    PGconn *c = api_conn(req);
    if (!c)
        return;
    int denied = run_access(req, c, ACT_COMPUTE_READ, project, sizeof project, state,
                            sizeof state);
    api_release(req, c);
    if (denied)
        return;
    log_stream *s = xcalloc(1, sizeof *s);
    s->app = http_app(req);
    snprintf(s->project, sizeof s->project, "%s", project);
    snprintf(s->id, sizeof s->id, "%s", http_param(req, "id"));
    s->follow = hf > 0 && !strcmp(follow, "true");
    s->started_ms = now_ms_monotonic();
    s->max_seconds = s->app->cfg->log_follow_seconds;
    http_reply_stream(req, 200, "text/plain; charset=utf-8", HTTP_LENGTH_UNKNOWN, next_log_bytes,
                      close_log_stream, s);
}

/* ---- artifacts ----------------------------------------------------------- */

void api_runs_artifacts(http_req *req)
{
    char project[80], state[16];
    PGconn *c = api_conn(req);
    if (!c)
        return;
    if (!run_access(req, c, ACT_COMPUTE_READ, project, sizeof project, state, sizeof state)) {
        PGresult *r = db_exec(c,
                              "SELECT json_build_object('items', " RUN_ARTIFACTS ")::text"
                              " FROM runs r WHERE r.id::text = $1",
                              1, (const char *[]){http_param(req, "id")}, NULL);
        if (r)
            http_reply_bytes(req, 200, "application/json", PQgetvalue(r, 0, 0),
                             (size_t)PQgetlength(r, 0, 0));
        else
            http_problem_unavailable(req);
        PQclear(r);
    }
    api_release(req, c);
}

static int next_chunk(void *arg, char *buf, size_t cap, size_t *got)
{
    return artifacts_reader_read(arg, buf, cap, got);
}

static void close_reader(void *arg)
{
    artifacts_reader_close(arg);
}

void api_runs_artifact(http_req *req)
{
    app_ctx *app = http_app(req);
    char project[80], state[16];
    const char *name = http_param(req, "name");
    PGconn *c = api_conn(req);
    if (!c)
        return;
    int denied = run_access(req, c, ACT_COMPUTE_READ, project, sizeof project, state,
                            sizeof state);
    PGresult *r = denied ? NULL
                         : db_exec(c,
                                   "SELECT a->>'key' FROM runs, jsonb_array_elements(artifacts) a"
                                   " WHERE id::text = $1 AND a->>'name' = $2",
                                   2, (const char *[]){http_param(req, "id"), name}, NULL);
    api_release(req, c);
    if (denied)
        return;
    if (!r || PQntuples(r) != 1) {
        PQclear(r);
        http_problem(req, 404, "not-found", "Not found", NULL, "the run has no artifact %s",
                     name);
        return;
    }
    uint64_t size = 0;
    artifact_reader *rd = NULL;
    int rc = artifacts_stat(app->artifacts, PQgetvalue(r, 0, 0), &size);
    if (rc == RST_OK)
        rc = artifacts_reader_open(app->artifacts, PQgetvalue(r, 0, 0), 0, 0, &rd);
    PQclear(r);
    if (rc) {
        http_problem_unavailable(req);
        return;
    }
    size_t n = strlen(name);
    const char *type = n > 4 && !strcmp(name + n - 4, ".csv") ? "text/csv; charset=utf-8"
                                                              : "application/json";
    http_reply_stream(req, 200, type, size, next_chunk, close_reader, rd);
}
