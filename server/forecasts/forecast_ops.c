/* forecast.generate: resolve, generate into a partition, switch, prune. */
#include "forecasts/forecast_ops.h"
#include "db/db.h"
#include "forecasts/forecast_cache.h"
#include "core/log.h"
#include "core/metrics.h"
#include "ops/ops.h"
#include "lib/util.h"
#include "events/webhooks.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const config *cfg;
static artifact_store *store;

/* Seconds between SIGTERM and SIGKILL for a generator being stopped. */
#define KILL_GRACE_SECONDS 10
#define COPY_CHUNK (256 * 1024)
/* A generator running longer than this is stopped (the whole chain takes
 * minutes; a hang must not hold a worker forever). */
#define GENERATOR_MAX_SECONDS 3600

typedef struct {
    char run[40], project[80], model[80], dataset[80];
    int version, dataset_version, horizon;
    char train_run[40]; /* the training run whose artifacts are the model */
    char part[48];
    char *workdir;
    json_t *result; /* the generator's result event */
    int cancel_checks; /* cancellation asked about while the COPY streamed */
    char last_err[400];
} fc_job;

void forecast_partition_name(const char *run_id, char out[48])
{
    size_t n = 0;
    n += (size_t)snprintf(out, 48, "forecasts_");
    for (const char *p = run_id; *p && n < 47; p++)
        if (*p != '-')
            out[n++] = *p;
    out[n] = '\0';
}

int forecast_ops_enqueue(PGconn *c, const char *project, const char *model, const char *trigger,
                         const char *by, char *run_id, char *op_id)
{
    PGresult *r = db_exec(
        c,
        "SELECT a.model, a.version, rn.dataset, (SELECT max(v.number) FROM dataset_versions v"
        " WHERE v.project_id = a.project_id AND v.dataset = rn.dataset AND v.state = 'ready')"
        " FROM model_aliases a JOIN model_versions mv ON mv.project_id = a.project_id AND"
        " mv.model = a.model AND mv.version = a.version JOIN runs rn ON rn.id = mv.run_id"
        " WHERE a.project_id = $1 AND a.alias = 'production' AND ($2::text IS NULL OR a.model ="
        " $2) ORDER BY a.set_at DESC LIMIT 1",
        2, (const char *[]){project, model}, NULL);
    if (!r)
        return RST_EDB;
    if (PQntuples(r) != 1 || PQgetisnull(r, 0, 3)) {
        PQclear(r);
        return RST_ENOTFOUND;
    }
    PGresult *ins = db_exec(c,
                            "INSERT INTO forecast_runs(project_id, model, model_version, dataset,"
                            " dataset_version, trigger, created_by) VALUES ($1, $2, $3::int, $4,"
                            " $5::int, $6, $7) RETURNING id",
                            7,
                            (const char *[]){project, PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1),
                                             PQgetvalue(r, 0, 2), PQgetvalue(r, 0, 3), trigger,
                                             by},
                            NULL);
    PQclear(r);
    if (!ins)
        return RST_EDB;
    char id[40];
    snprintf(id, sizeof id, "%s", PQgetvalue(ins, 0, 0));
    PQclear(ins);
    json_t *input = json_pack("{s:s, s:s}", "forecast_run_id", id, "project", project);
    char op[37];
    int rc = ops_enqueue(c, "forecast.generate", project, input, by, 3, op);
    json_decref(input);
    if (rc)
        return RST_EDB;
    PQclear(db_exec(c, "UPDATE forecast_runs SET operation_id = $2::uuid WHERE id = $1::uuid", 2,
                    (const char *[]){id, op}, NULL));
    if (run_id)
        snprintf(run_id, 40, "%s", id);
    if (op_id)
        snprintf(op_id, 37, "%s", op);
    return RST_OK;
}

/* ---- inputs ------------------------------------------------------------------------ */

static int load_job(PGconn *c, const char *run, fc_job *j)
{
    PGresult *r = db_exec(
        c,
        "SELECT f.project_id, f.model, f.model_version, f.dataset, f.dataset_version,"
        " p.forecast_horizon_days, mv.run_id FROM forecast_runs f JOIN projects p ON p.id ="
        " f.project_id JOIN model_versions mv ON mv.project_id = f.project_id AND mv.model ="
        " f.model AND mv.version = f.model_version WHERE f.id = $1::uuid",
        1, (const char *[]){run}, NULL);
    if (!r || PQntuples(r) != 1) {
        PQclear(r);
        return r ? RST_ENOTFOUND : RST_EDB;
    }
    snprintf(j->run, sizeof j->run, "%s", run);
    snprintf(j->project, sizeof j->project, "%s", PQgetvalue(r, 0, 0));
    snprintf(j->model, sizeof j->model, "%s", PQgetvalue(r, 0, 1));
    j->version = (int)strtol(PQgetvalue(r, 0, 2), NULL, 10);
    snprintf(j->dataset, sizeof j->dataset, "%s", PQgetvalue(r, 0, 3));
    j->dataset_version = (int)strtol(PQgetvalue(r, 0, 4), NULL, 10);
    j->horizon = (int)strtol(PQgetvalue(r, 0, 5), NULL, 10);
    snprintf(j->train_run, sizeof j->train_run, "%s", PQgetvalue(r, 0, 6));
    PQclear(r);
    forecast_partition_name(run, j->part);
    j->workdir = xasprintf("%s/forecasts/%s", cfg->data_dir, run);
    return RST_OK;
}

/* Writes the result of a query as CSV with a header (the planned promotions
 * and the weather outlook the generator reads). */
static int write_query_csv(PGconn *c, const char *path, const char *header, const char *sql,
                           const char *project)
{
    PGresult *r = db_exec(c, sql, 1, (const char *[]){project}, NULL);
    if (!r)
        return RST_EDB;
    FILE *f = fopen(path, "w");
    if (!f) {
        PQclear(r);
        return RST_EIO;
    }
    fprintf(f, "%s\n", header);
    for (int i = 0; i < PQntuples(r); i++) {
        for (int k = 0; k < PQnfields(r); k++)
            fprintf(f, "%s%s", k ? "," : "", PQgetvalue(r, i, k));
        fputc('\n', f);
    }
    PQclear(r);
    return fclose(f) ? RST_EIO : RST_OK;
}

static int mkdir_p(const char *dir)
{
    char *tmp = xstrdup(dir);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0700) && errno != EEXIST) {
                free(tmp);
                return RST_EIO;
            }
            *p = '/';
        }
    int rc = mkdir(tmp, 0700) && errno != EEXIST ? RST_EIO : RST_OK;
    free(tmp);
    return rc;
}

static int prepare_inputs(PGconn *c, fc_job *j, char *err, size_t errlen)
{
    if (mkdir_p(j->workdir)) {
        snprintf(err, errlen, "cannot create %s", j->workdir);
        return RST_EIO;
    }
    static const char *const files[] = {"model.json", "features.json", NULL};
    for (int i = 0; files[i]; i++) {
        char *key = xasprintf("projects/%s/runs/%s/artifacts/%s", j->project, j->train_run,
                              files[i]);
        char *path = xasprintf("%s/%s", j->workdir, files[i]);
        int rc = artifacts_fetch(store, key, path);
        free(path);
        free(key);
        if (rc) {
            snprintf(err, errlen, "model %s v%d: %s is missing from the artifact store", j->model,
                     j->version, files[i]);
            return rc;
        }
    }
    char *key = xasprintf("projects/%s/datasets/%s/versions/%d/canonical.csv", j->project,
                          j->dataset, j->dataset_version);
    char *path = xasprintf("%s/history.csv", j->workdir);
    int rc = artifacts_fetch(store, key, path);
    free(path);
    free(key);
    if (rc) {
        snprintf(err, errlen, "dataset %s v%d is missing from the artifact store", j->dataset,
                 j->dataset_version);
        return rc;
    }
    char *promo = xasprintf("%s/promotions.csv", j->workdir);
    char *weather = xasprintf("%s/weather.csv", j->workdir);
    rc = write_query_csv(c, promo, "store_id,product,start_date,end_date",
                         "SELECT store_id, product, start_date, end_date FROM planned_promotions"
                         " WHERE project_id = $1 ORDER BY start_date",
                         j->project);
    if (!rc)
        rc = write_query_csv(c, weather, "city,date,weather",
                             "SELECT city, day, weather FROM weather_outlook WHERE project_id = $1"
                             " ORDER BY city, day",
                             j->project);
    free(promo);
    free(weather);
    if (rc)
        snprintf(err, errlen, "cannot write the known future inputs");
    return rc;
}

/* ---- the generator into COPY ------------------------------------------------------ */

static pid_t spawn_generator(const fc_job *j, int out_fd, int err_fd)
{
    char exe[4096];
    if (self_exe(exe, sizeof exe))
        return -1;
    char *model = xasprintf("%s", j->workdir);
    char *input = xasprintf("%s/history.csv", j->workdir);
    char *promo = xasprintf("%s/promotions.csv", j->workdir);
    char *weather = xasprintf("%s/weather.csv", j->workdir);
    char horizon[16], version[16];
    snprintf(horizon, sizeof horizon, "%d", j->horizon);
    snprintf(version, sizeof version, "%d", j->version);
    char *const argv[] = {exe,      "forecast",     "--model",   model,  "--input",
                          input,    "--output",     "-",         "--horizon",
                          horizon,  "--promotions", promo,       "--weather",
                          weather,  "--model-version", version,  NULL};
    pid_t pid = -1;
    int rc = spawn_in_group(argv, out_fd, err_fd, NULL, &pid);
    free(model);
    free(input);
    free(promo);
    free(weather);
    return rc ? -1 : pid;
}

/* The generator's stderr: JSON events; the result is kept, errors remembered. */
static void on_event_line(fc_job *j, const char *line, size_t len)
{
    json_t *ev = json_loadb(line, len, 0, NULL);
    const char *kind = json_string_value(json_object_get(ev, "event"));
    if (kind && !strcmp(kind, "result")) {
        json_decref(j->result);
        j->result = json_incref(ev);
    } else if (kind && !strcmp(kind, "log")) {
        const char *lvl = json_string_value(json_object_get(ev, "level"));
        const char *msg = json_string_value(json_object_get(ev, "msg"));
        if (lvl && msg && (!strcmp(lvl, "error") || !strcmp(lvl, "warn")))
            snprintf(j->last_err, sizeof j->last_err, "%s", msg);
    } else if (!kind && len) {
        snprintf(j->last_err, sizeof j->last_err, "%.*s", (int)(len < 399 ? len : 399), line);
    }
    json_decref(ev);
}

static void drain_events(fc_job *j, buf_t *b, int final)
{
    size_t start = 0;
    for (size_t i = 0; i < b->len; i++)
        if (b->data[i] == '\n') {
            on_event_line(j, b->data + start, i - start);
            start = i + 1;
        }
    if (final && start < b->len) {
        on_event_line(j, b->data + start, b->len - start);
        start = b->len;
    }
    if (start && start < b->len)
        memmove(b->data, b->data + start, b->len - start);
    b->len -= start;
}

/* Runs the generator with its stdout going into COPY on c (already in COPY
 * IN state). Returns the child's exit status (negative: could not start),
 * *copy_ok whether every byte reached the server. */
static int pump(ops_ctx *ctx, fc_job *j, PGconn *c, int *copy_ok, int *stopped)
{
    int out[2], err[2];
    if (pipe2(out, O_CLOEXEC))
        return -1;
    if (pipe2(err, O_CLOEXEC)) {
        close(out[0]);
        close(out[1]);
        return -1;
    }
    pid_t pid = spawn_generator(j, out[1], err[1]);
    close(out[1]);
    close(err[1]);
    if (pid < 0) {
        close(out[0]);
        close(err[0]);
        return -1;
    }
    *copy_ok = 1;
    buf_t ev;
    buf_init(&ev, 0);
    char *chunk = xmalloc(COPY_CHUNK);
    struct pollfd fds[2] = {{.fd = out[0], .events = POLLIN}, {.fd = err[0], .events = POLLIN}};
    int open_fds = 2;
    time_t started = time(NULL), last_check = started, term_at = 0;
    while (open_fds) {
        int pr = poll(fds, 2, 500);
        for (int i = 0; pr > 0 && i < 2; i++) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t got = read(fds[i].fd, chunk, COPY_CHUNK);
            if (got > 0 && i == 0) {
                if (*copy_ok && PQputCopyData(c, chunk, (int)got) != 1)
                    *copy_ok = 0;
            } else if (got > 0) {
                buf_append(&ev, chunk, (size_t)got);
                drain_events(j, &ev, 0);
            } else if (got == 0 || errno != EINTR) {
                close(fds[i].fd);
                fds[i].fd = -1;
                open_fds--;
            }
        }
        time_t now = time(NULL);
        if (!term_at && now != last_check) {
            last_check = now;
            int overdue = now - started > GENERATOR_MAX_SECONDS;
            if (overdue)
                snprintf(j->last_err, sizeof j->last_err, "stopped after %d s",
                         GENERATOR_MAX_SECONDS);
            int stopping = ops_stopping(ctx), cancel = 0;
            if (!stopping) {
                j->cancel_checks++;
                cancel = ops_cancel_requested(ctx);
            }
            if (stopping || cancel || !*copy_ok || overdue) {
                *stopped = *copy_ok && !overdue;
                kill(-pid, SIGTERM);
                term_at = now;
            }
        } else if (term_at && now - term_at >= KILL_GRACE_SECONDS) {
            kill(-pid, SIGKILL);
            term_at = now + 3600;
        }
    }
    drain_events(j, &ev, 1);
    buf_free(&ev);
    free(chunk);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Dynamic SQL (partition names): sent as is, never prepared. */
static int exec_ok(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    int ok = r && (PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK);
    if (!ok)
        log_fields(LOG_WARN, "forecast sql failed",
                   json_pack("{s:s, s:s}", "sql", sql, "error", PQerrorMessage(c)));
    PQclear(r);
    return ok ? RST_OK : RST_EDB;
}

/* Generates into a fresh partition table (dropped first if an earlier
 * attempt left one), in one transaction with COPY FREEZE. */
static ops_result step_generate(ops_ctx *ctx, json_t *request, json_t **response, void *arg)
{
    (void)request;
    fc_job *j = arg;
    PGconn *c = ops_conn(ctx);
    char err[400] = "";
    if (prepare_inputs(c, j, err, sizeof err)) {
        ops_set_error(ctx, "inputs_unavailable", err);
        return OPS_FAIL;
    }
    char *sql = xasprintf("DROP TABLE IF EXISTS %s", j->part);
    exec_ok(c, sql);
    free(sql);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    sql = xasprintf("BEGIN; CREATE TABLE %s (LIKE forecasts); ALTER TABLE %s ALTER run_id SET"
                    " DEFAULT '%s', ADD CONSTRAINT %s_run CHECK (run_id = '%s')",
                    j->part, j->part, j->run, j->part, j->run);
    int rc = exec_ok(c, sql);
    free(sql);
    PGresult *r = NULL;
    if (!rc) {
        sql = xasprintf("COPY %s (store_id, product, day, forecast, lo80, hi80, lo95, hi95)"
                        " FROM STDIN (FORMAT csv, HEADER true, FREEZE true)",
                        j->part);
        r = PQexec(c, sql);
        free(sql);
    }
    if (!r || PQresultStatus(r) != PGRES_COPY_IN) {
        PQclear(r);
        PQclear(PQexec(c, "ROLLBACK"));
        ops_set_error(ctx, "database", "cannot start the bulk load");
        return OPS_RETRY;
    }
    PQclear(r);
    int copy_ok = 0, stopped = 0;
    int status = pump(ctx, j, c, &copy_ok, &stopped);
    /* a failed generator aborts the COPY: nothing of it stays */
    PQputCopyEnd(c, status == 0 && copy_ok ? NULL : "the forecast generator failed");
    r = PQgetResult(c);
    int copied = r && PQresultStatus(r) == PGRES_COMMAND_OK;
    const char *tuples = copied ? PQcmdTuples(r) : "0";
    long long rows = strtoll(tuples, NULL, 10);
    if (!copied && status == 0)
        snprintf(err, sizeof err, "COPY failed: %s", PQerrorMessage(c));
    PQclear(r);
    while ((r = PQgetResult(c)))
        PQclear(r);
    if (status != 0 || !copied) {
        PQclear(PQexec(c, "ROLLBACK"));
        if (stopped && ops_stopping(ctx))
            return OPS_INTERRUPTED;
        if (stopped)
            return OPS_CANCELED;
        char msg[600];
        snprintf(msg, sizeof msg, "roastery forecast exited with status %d%s%s", status,
                 j->last_err[0] || err[0] ? ": " : "", j->last_err[0] ? j->last_err : err);
        ops_set_error(ctx, status == 3 ? "not_enough_history" : "generator_failed", msg);
        *response = json_pack("{s:i}", "exit_status", status);
        return status < 0 || (status == 0 && !copied) ? OPS_RETRY : OPS_FAIL;
    }
    if (exec_ok(c, "COMMIT")) {
        ops_set_error(ctx, "database", "cannot commit the bulk load");
        return OPS_RETRY;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double load_s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    /* indexed before readers can see it */
    sql = xasprintf("CREATE INDEX ON %s (store_id, product, day); ANALYZE %s", j->part, j->part);
    rc = exec_ok(c, sql);
    free(sql);
    if (rc) {
        ops_set_error(ctx, "database", "cannot index the forecast partition");
        return OPS_RETRY;
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    double index_s = (double)(t0.tv_sec - t1.tv_sec) + (double)(t0.tv_nsec - t1.tv_nsec) / 1e9;
    *response = json_pack("{s:I, s:f, s:f, s:f, s:i, s:O?}", "rows", (json_int_t)rows,
                          "load_seconds", load_s, "index_seconds", index_s, "rows_per_second",
                          load_s > 0 ? (double)rows / load_s : 0.0, "cancel_checks",
                          j->cancel_checks, "generator", j->result);
    metrics_count("roastery_forecast_rows_total", "Forecast rows written.");
    return OPS_DONE;
}

/* Attaches the partition and makes the run current, in one transaction. */
static ops_result step_switch(ops_ctx *ctx, json_t *request, json_t **response, void *arg)
{
    fc_job *j = arg;
    PGconn *c = ops_conn(ctx);
    json_t *gen = json_object_get(request, "generator");
    char *stats = json_dumps(request, JSON_COMPACT);
    char rows[24], days[16];
    snprintf(rows, sizeof rows, "%lld", (long long)json_integer_value(json_object_get(request,
                                                                                        "rows")));
    snprintf(days, sizeof days, "%lld", (long long)json_integer_value(json_object_get(gen, "days")));
    const char *start = json_string_value(json_object_get(gen, "start"));
    char *attach = xasprintf("ALTER TABLE forecasts ATTACH PARTITION %s FOR VALUES IN ('%s')",
                             j->part, j->run);
    int rc = exec_ok(c, "BEGIN");
    /* an earlier attempt may have attached it already */
    PGresult *r = rc ? NULL
                     : db_exec(c,
                               "SELECT 1 FROM pg_inherits i JOIN pg_class k ON k.oid = i.inhrelid"
                               " WHERE k.relname = $1",
                               1, (const char *[]){j->part}, NULL);
    int attached = r && PQntuples(r) == 1;
    PQclear(r);
    if (!rc && !attached)
        rc = exec_ok(c, attach);
    free(attach);
    if (!rc) {
        r = db_exec(c,
                    "UPDATE forecast_runs SET current = false WHERE project_id = $1 AND current",
                    1, (const char *[]){j->project}, NULL);
        rc = r ? RST_OK : RST_EDB;
        PQclear(r);
    }
    if (!rc) {
        r = db_exec(
            c,
            "UPDATE forecast_runs f SET current = true, state = 'ready', ready_at = now(), rows ="
            " $2::bigint, start_date = $3::date, days = $4::int, stats = $5::jsonb, stores = s.n,"
            " products = s.p FROM (SELECT count(DISTINCT store_id) AS n, array_agg(DISTINCT"
            " product ORDER BY product) AS p FROM forecasts WHERE run_id = $1::uuid) s"
            " WHERE f.id = $1::uuid",
            5, (const char *[]){j->run, rows, start, days, stats}, NULL);
        rc = r ? RST_OK : RST_EDB;
        PQclear(r);
    }
    if (!rc) {
        r = db_exec(c,
                    "UPDATE projects SET forecast_next_at = now() + make_interval(hours =>"
                    " forecast_every_hours) WHERE id = $1",
                    1, (const char *[]){j->project}, NULL);
        rc = r ? RST_OK : RST_EDB;
        PQclear(r);
    }
    free(stats);
    if (!rc) {
        json_t *data = json_pack("{s:s, s:s, s:i, s:s?, s:s}", "forecast_run_id", j->run, "model",
                                 j->model, "model_version", j->version, "start_date", start,
                                 "rows", rows);
        rc = webhooks_emit(c, j->project, "forecast.ready", data);
        json_decref(data);
    }
    if (rc || exec_ok(c, "COMMIT")) {
        PQclear(PQexec(c, "ROLLBACK"));
        ops_set_error(ctx, "database", "cannot make the forecast run current");
        return OPS_RETRY;
    }
    forecast_cache_invalidate();
    *response = json_pack("{s:s, s:s}", "current", j->run, "partition", j->part);
    return OPS_DONE;
}

/* Drops the partitions of runs past the project's retention (never the
 * current one). DETACH CONCURRENTLY does not block readers. */
static ops_result step_prune(ops_ctx *ctx, json_t *request, json_t **response, void *arg)
{
    (void)request;
    fc_job *j = arg;
    PGconn *c = ops_conn(ctx);
    PGresult *r = db_exec(c,
                          "SELECT f.id FROM forecast_runs f JOIN projects p ON p.id = f.project_id"
                          " WHERE f.project_id = $1 AND f.state = 'ready' AND NOT f.current AND"
                          " f.created_at < now() - make_interval(days => p.forecast_retention_days)",
                          1, (const char *[]){j->project}, NULL);
    if (!r) {
        ops_set_error(ctx, "database", "cannot list old forecast runs");
        return OPS_RETRY;
    }
    json_t *pruned = json_array();
    for (int i = 0; i < PQntuples(r); i++) {
        char part[48];
        forecast_partition_name(PQgetvalue(r, i, 0), part);
        char *sql = xasprintf("ALTER TABLE forecasts DETACH PARTITION %s CONCURRENTLY", part);
        exec_ok(c, sql);
        free(sql);
        sql = xasprintf("DROP TABLE IF EXISTS %s", part);
        int rc = exec_ok(c, sql);
        free(sql);
        if (!rc) {
            PQclear(db_exec(c,
                            "UPDATE forecast_runs SET state = 'pruned', pruned_at = now()"
                            " WHERE id = $1::uuid",
                            1, (const char *[]){PQgetvalue(r, i, 0)}, NULL));
            json_array_append_new(pruned, json_string(PQgetvalue(r, i, 0)));
        }
    }
    PQclear(r);
    *response = json_pack("{s:o}", "pruned", pruned);
    return OPS_DONE;
}

static ops_result generate(ops_ctx *ctx)
{
    PGconn *c = ops_conn(ctx);
    const char *id = json_string_value(json_object_get(ops_input(ctx), "forecast_run_id"));
    fc_job j;
    memset(&j, 0, sizeof j);
    if (!id || load_job(c, id, &j)) {
        ops_set_error(ctx, "no_forecast_run", "the forecast run or its model no longer exists");
        return OPS_FAIL;
    }
    PQclear(db_exec(c, "UPDATE forecast_runs SET state = 'generating' WHERE id = $1::uuid", 1,
                    (const char *[]){id}, NULL));
    json_t *gen = NULL;
    json_t *req = json_pack("{s:s, s:i, s:s, s:i, s:i, s:s}", "model", j.model, "model_version",
                            j.version, "dataset", j.dataset, "dataset_version", j.dataset_version,
                            "horizon_days", j.horizon, "partition", j.part);
    ops_result res = ops_step(ctx, "generate", "local",
                              "roastery forecast into COPY of a new partition", req,
                              step_generate, &j, &gen);
    json_decref(req);
    if (res == OPS_DONE)
        res = ops_step(ctx, "switch", "local", "attach the partition and make the run current",
                       gen, step_switch, &j, NULL);
    if (res == OPS_DONE)
        res = ops_step(ctx, "prune", "local", "drop runs past the retention", NULL, step_prune,
                       &j, NULL);
    if (res == OPS_DONE) {
        ops_set_output(ctx, json_pack("{s:s, s:O?}", "forecast_run_id", id, "rows",
                                      json_object_get(gen, "rows")));
    } else if (res == OPS_FAIL || res == OPS_CANCELED) {
        char *sql = xasprintf("DROP TABLE IF EXISTS %s", j.part);
        exec_ok(c, sql);
        free(sql);
        PQclear(db_exec(c,
                        "UPDATE forecast_runs SET state = 'failed', error = jsonb_build_object("
                        "'code', $2::text) WHERE id = $1::uuid AND NOT current",
                        2, (const char *[]){id, res == OPS_FAIL ? "generation_failed" : "canceled"},
                        NULL));
    }
    if (res != OPS_RETRY && res != OPS_INTERRUPTED)
        remove_tree(j.workdir);
    json_decref(j.result);
    free(j.workdir);
    return res;
}

/* Daily (per project, forecast_every_hours) regeneration of projects that
 * have forecasts: claimed with SKIP LOCKED, so one worker queues it. */
static void schedule(PGconn *c)
{
    PGresult *r = db_exec(c, "BEGIN", 0, NULL, NULL);
    PQclear(r);
    r = db_exec(c,
                "UPDATE projects SET forecast_next_at = now() + make_interval(hours =>"
                " forecast_every_hours) WHERE id IN (SELECT id FROM projects WHERE"
                " forecast_next_at <= now() FOR UPDATE SKIP LOCKED) RETURNING id",
                0, NULL, NULL);
    for (int i = 0; r && i < PQntuples(r); i++)
        forecast_ops_enqueue(c, PQgetvalue(r, i, 0), NULL, "schedule", "roastery-scheduler",
                             NULL, NULL);
    PQclear(r);
    PQclear(db_exec(c, r ? "COMMIT" : "ROLLBACK", 0, NULL, NULL));
}

void forecast_ops_register(const config *c, artifact_store *s)
{
    cfg = c;
    store = s;
    ops_register("forecast.generate", generate);
    ops_register_periodic(schedule);
}
