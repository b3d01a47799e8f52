/* run.train on Azure ML compute: publish, submit, wait, fetch, store. */
#include "runs/run_azure.h"
#include "datasets/azure_publish.h"
#include "exec/azure_exec.h"
#include "azure/azureml.h"
#include "db/db.h"
#include "core/log.h"
#include "runs/run_outputs.h"
#include "lib/util.h"
#include "events/webhooks.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const config *cfg;

/* Polls back off from the configured first wait to this many times it. */
#define POLL_MAX_FACTOR 8
/* Consecutive unanswered polls (each already retried by arm.c) before the
 * operation goes back to the queue. */
#define POLL_MAX_FAILURES 5

typedef struct {
    char id[40], project[80], dataset[80], number[16], algorithm[32], compute[64];
    int horizon, backtest, origins;
    long long seed;
    char *params;
    char job[64];
    char *output_key; /* projects/<p>/runs/<id>/outputs */
    int submitted; /* the run has a job (azure_job is set) */
    char last_status[32];
    int polls;
    int failures;     /* unanswered polls in a row */
    long long polled; /* epoch seconds of the last poll */
    int cancel_sent;
    char studio[300];
} azure_run;

void run_azure_init(const config *c)
{
    cfg = c;
}

static int load(PGconn *c, const char *id, azure_run *r)
{
    PGresult *res = db_exec(
        c,
        "SELECT r.project_id, r.dataset, r.dataset_version, r.algorithm, t.name, r.horizon_days,"
        " r.backtest_days, r.rolling_origins, r.seed, r.params::text, r.azure_job::text"
        " FROM runs r JOIN compute_targets t ON t.id = r.compute_id WHERE r.id = $1::uuid",
        1, (const char *[]){id}, NULL);
    if (!res || PQntuples(res) != 1) {
        PQclear(res);
        return res ? RST_ENOTFOUND : RST_EDB;
    }
    memset(r, 0, sizeof *r);
    snprintf(r->id, sizeof r->id, "%s", id);
    snprintf(r->project, sizeof r->project, "%s", PQgetvalue(res, 0, 0));
    snprintf(r->dataset, sizeof r->dataset, "%s", PQgetvalue(res, 0, 1));
    snprintf(r->number, sizeof r->number, "%s", PQgetvalue(res, 0, 2));
    snprintf(r->algorithm, sizeof r->algorithm, "%s", PQgetvalue(res, 0, 3));
    snprintf(r->compute, sizeof r->compute, "%s", PQgetvalue(res, 0, 4));
    long v;
    r->horizon = parse_long(PQgetvalue(res, 0, 5), 1, 1000, &v) ? 14 : (int)v;
    r->backtest = parse_long(PQgetvalue(res, 0, 6), 1, 1000, &v) ? 28 : (int)v;
    r->origins = parse_long(PQgetvalue(res, 0, 7), 1, 100, &v) ? 1 : (int)v;
    r->seed = strtoll(PQgetvalue(res, 0, 8), NULL, 10);
    r->params = xstrdup(PQgetvalue(res, 0, 9));
    json_t *job = db_value(res, 0, 10) ? json_loads(PQgetvalue(res, 0, 10), 0, NULL) : NULL;
    PQclear(res);
    if (job) {
        r->submitted = 1;
        const char *st = json_string_value(json_object_get(job, "status"));
        const char *url = json_string_value(json_object_get(job, "studio_url"));
        snprintf(r->last_status, sizeof r->last_status, "%s", st ? st : "");
        snprintf(r->studio, sizeof r->studio, "%s", url ? url : "");
        r->polls = (int)json_integer_value(json_object_get(job, "polls"));
        r->failures = (int)json_integer_value(json_object_get(job, "failures"));
        r->polled = (long long)json_integer_value(json_object_get(job, "polled_at_epoch"));
        r->cancel_sent = json_is_true(json_object_get(job, "cancel_sent"));
        json_decref(job);
    }
    snprintf(r->job, sizeof r->job, RUN_AZURE_JOB_PREFIX "%s", id);
    r->output_key = xasprintf("projects/%s/runs/%s/outputs", r->project, id);
    return RST_OK;
}

/* One timestamped line of the run's log. */
static void log_line(PGconn *c, const azure_run *r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void log_line(PGconn *c, const azure_run *r, const char *fmt, ...)
{
    char text[600], ts[32];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    char *line = xasprintf("%s roastery %s\n", ts, text);
    run_outputs_append_log(c, r->project, r->id, line);
    free(line);
}

/* Records the job as last seen on the run, and the run's state when the
 * job's status maps to a live one (a finished run stays as it is). */
static void record_job(PGconn *c, azure_run *r)
{
    char *out_uri = azure_exec_datastore_uri(r->output_key);
    json_t *job = json_pack("{s:s, s:s?, s:s?, s:s, s:i, s:i, s:I, s:b}", "name", r->job,
                            "status", r->last_status[0] ? r->last_status : NULL, "studio_url",
                            r->studio[0] ? r->studio : NULL, "output_uri", out_uri, "polls",
                            r->polls, "failures", r->failures, "polled_at_epoch",
                            (json_int_t)r->polled, "cancel_sent", r->cancel_sent);
    free(out_uri);
    char *text = json_dumps(job, JSON_COMPACT);
    json_decref(job);
    const char *ours = azureml_job_status_map(r->last_status);
    const char *live = ours && (!strcmp(ours, "queued") || !strcmp(ours, "preparing") ||
                                !strcmp(ours, "running"))
                           ? ours
                           : NULL;
    PQclear(db_exec(c,
                    "UPDATE runs SET azure_job = $2::jsonb, state = CASE WHEN $3::text IS NULL OR"
                    " state IN ('canceled', 'completed', 'failed') THEN state ELSE $3 END,"
                    " running_at = CASE WHEN $3 = 'running' THEN coalesce(running_at, now())"
                    " ELSE running_at END, updated_at = now(), version = version + 1"
                    " WHERE id = $1::uuid",
                    3, (const char *[]){r->id, text, live}, NULL));
    free(text);
}

/* Takes the job's status and Studio link from a job body. */
static void take_job(azure_run *r, json_t *body)
{
    json_t *props = json_object_get(body, "properties");
    const char *status = json_string_value(json_object_get(props, "status"));
    const char *url = json_string_value(json_object_get(
        json_object_get(json_object_get(props, "services"), "Studio"), "endpoint"));
    if (status)
        snprintf(r->last_status, sizeof r->last_status, "%s", status);
    if (url)
        snprintf(r->studio, sizeof r->studio, "%s", url);
}

/* ---- the command -------------------------------------------------------------------- */

/* Single-quotes s for a POSIX shell. */
static void shell_quote(buf_t *b, const char *s)
{
    buf_puts(b, "'");
    for (; *s; s++)
        if (*s == '\'')
            buf_puts(b, "'\\''");
        else
            buf_append(b, s, 1);
    buf_puts(b, "'");
}

char *run_azure_command(const char *algorithm, int horizon, int backtest, int origins,
                        long long seed, const char *params_json)
{
    buf_t b;
    buf_init(&b, 0);
    buf_printf(&b,
               "roastery train --input ${{inputs.sales}} --output ${{outputs.model}}"
               " --algorithm %s --horizon %d --backtest-days %d --rolling-origins %d --seed %lld"
               " --params ",
               algorithm, horizon, backtest, origins, seed);
    shell_quote(&b, params_json);
    char *out = xstrdup(b.data);
    buf_free(&b);
    return out;
}

/* ---- submit ---------------------------------------------------------------------- */

static int submit_call(arm_client *arm, void *arg, arm_result *res)
{
    azure_run *r = arg;
    char *input = azure_publish_asset_id(r->project, r->dataset, r->number);
    char *output = azure_exec_datastore_uri(r->output_key);
    char *out_dir = xasprintf("%s/", output);
    char *command = run_azure_command(r->algorithm, r->horizon, r->backtest, r->origins, r->seed,
                                      r->params);
    azureml_binding in[] = {{.name = "sales", .type = "uri_file", .uri = input}};
    azureml_binding out[] = {{.name = "model", .type = "uri_folder", .uri = out_dir}};
    json_t *tags = json_pack("{s:s, s:s}", "roastery_run", r->id, "roastery_project", r->project);
    char *display = xasprintf("%s %s on %s v%s", r->project, r->algorithm, r->dataset, r->number);
    azureml_command_job job = {.job_name = r->job,
                               .experiment = r->project,
                               .compute = r->compute,
                               .environment = cfg->trainer_image,
                               .command = command,
                               .display_name = display,
                               .description = "training run submitted by roastery",
                               .inputs = in,
                               .ninputs = 1,
                               .outputs = out,
                               .noutputs = 1,
                               .tags = tags};
    int rc = azureml_command_job_put(arm, &job, res);
    json_decref(tags);
    free(display);
    free(command);
    free(out_dir);
    free(output);
    free(input);
    return rc;
}

/* ---- wait ------------------------------------------------------------------------ */

static int stop_asked(void *arg)
{
    return ops_stopping(arg);
}

static void send_cancel(ops_ctx *ctx, azure_run *r)
{
    arm_result res;
    arm_result_init(&res);
    res.should_stop = stop_asked;
    res.stop_arg = ctx;
    int rc = azureml_job_cancel(azure_exec_arm(), r->job, 0, &res);
    arm_result_free(&res);
    r->cancel_sent = rc == RST_OK;
    log_line(ops_conn(ctx), r, "cancel requested: %s Azure ML job %s",
             rc == RST_OK ? "asked" : "could not ask", r->job);
}

/* The wait before poll number n+1: the configured first wait, doubling up to
 * POLL_MAX_FACTOR times it. */
static long poll_wait_seconds(int polls)
{
    long w = cfg->azureml_poll_seconds;
    for (int i = 0; i < polls && w < (long)cfg->azureml_poll_seconds * POLL_MAX_FACTOR; i++)
        w *= 2;
    return w < (long)cfg->azureml_poll_seconds * POLL_MAX_FACTOR
               ? w
               : (long)cfg->azureml_poll_seconds * POLL_MAX_FACTOR;
}

/* One look at the job, when it is due. A worker never sits on a remote job:
 * until the job ends, each attempt polls at most once and hands the
 * operation back (OPS_WAIT) to come again when the next poll is due.
 * OPS_DONE when the job ended (r->last_status says how), OPS_WAIT, OPS_RETRY
 * (Azure ML did not answer POLL_MAX_FAILURES polls in a row), OPS_FAIL (the
 * job is gone), OPS_INTERRUPTED. */
static ops_result poll_job(ops_ctx *ctx, azure_run *r)
{
    PGconn *c = ops_conn(ctx);
    if (!r->cancel_sent && ops_cancel_requested(ctx)) {
        send_cancel(ctx, r);
        r->polled = 0; /* look again at once */
        record_job(c, r);
    }
    long long now = (long long)time(NULL);
    long due_in = (long)(r->polled + poll_wait_seconds(r->polls) - now);
    if (r->polled && due_in > 0) {
        ops_set_wait_ms(ctx, due_in * 1000);
        return OPS_WAIT;
    }
    arm_result res;
    arm_result_init(&res);
    res.should_stop = stop_asked;
    res.stop_arg = ctx;
    int rc = azureml_job_get(azure_exec_arm(), r->job, &res);
    char before[32];
    snprintf(before, sizeof before, "%s", r->last_status);
    if (rc == RST_OK)
        take_job(r, res.body);
    arm_result_free(&res);
    r->polled = now;
    if (rc == ARM_ESTOPPED)
        return OPS_INTERRUPTED;
    if (rc == RST_ENOTFOUND) {
        ops_set_error(ctx, "job_vanished", "the Azure ML job is gone from the workspace");
        return OPS_FAIL;
    }
    if (rc) {
        /* after POLL_MAX_FAILURES in a row the count starts over with a backed-off retry */
        int give_up = ++r->failures >= POLL_MAX_FAILURES;
        if (give_up)
            r->failures = 0;
        record_job(c, r);
        if (give_up) {
            ops_set_error(ctx, "azureml_unavailable", "Azure ML does not answer job polls");
            return OPS_RETRY;
        }
        ops_set_wait_ms(ctx, poll_wait_seconds(r->polls) * 1000);
        return OPS_WAIT;
    }
    r->failures = 0;
    r->polls++;
    if (strcmp(before, r->last_status))
        log_line(c, r, "Azure ML job %s: %s%s%s", r->job, before, before[0] ? " -> " : "",
                 r->last_status);
    record_job(c, r);
    if (azureml_job_status_terminal(r->last_status))
        return OPS_DONE;
    ops_set_wait_ms(ctx, poll_wait_seconds(r->polls) * 1000);
    return OPS_WAIT;
}

/* Records how the job ended as the step "wait". */
static ops_result step_ended(ops_ctx *ctx, json_t *request, json_t **response, void *arg)
{
    (void)request;
    azure_run *r = arg;
    *response = json_pack("{s:s, s:i, s:s?}", "status", r->last_status, "polls", r->polls,
                          "studio_url", r->studio[0] ? r->studio : NULL);
    if (!strcasecmp(r->last_status, "Completed"))
        return OPS_DONE;
    if (!strcasecmp(r->last_status, "Canceled"))
        return OPS_CANCELED;
    ops_set_error(ctx, "azureml_job_failed", "the Azure ML job ended Failed");
    return OPS_FAIL;
}

/* ---- fetch ----------------------------------------------------------------------- */

static const char *const outputs[] = {"model.json", "features.json", "metrics.json",
                                      "backtest.csv", "run.json", NULL};

static ops_result step_fetch(ops_ctx *ctx, json_t *request, json_t **response, void *arg)
{
    (void)request;
    azure_run *r = arg;
    char *runs = xasprintf("%s/runs", cfg->data_dir);
    char *dir = xasprintf("%s/%s-azure", runs, r->id);
    ops_result out = OPS_DONE;
    if ((mkdir(runs, 0700) && errno != EEXIST) || (mkdir(dir, 0700) && errno != EEXIST)) {
        ops_set_error(ctx, "io", "cannot create the run's download directory");
        out = OPS_RETRY;
    }
    json_t *got = json_array();
    for (int i = 0; out == OPS_DONE && outputs[i]; i++) {
        char *key = xasprintf("%s/%s", r->output_key, outputs[i]);
        char *path = xasprintf("%s/%s", dir, outputs[i]);
        char err[300];
        int rc = azure_exec_download(key, path, err, sizeof err);
        if (rc == RST_OK)
            json_array_append_new(got, json_string(outputs[i]));
        else if (rc != RST_ENOTFOUND || i == 0) { /* model.json is not optional */
            ops_set_error(ctx, rc == RST_ENOTFOUND ? "job_output_missing" : "datastore_unavailable",
                          err);
            out = rc == RST_ENOTFOUND || rc == RST_EINVAL ? OPS_FAIL : OPS_RETRY;
        }
        free(path);
        free(key);
    }
    json_t *stored = NULL;
    if (out == OPS_DONE)
        out = run_outputs_store(ctx, r->project, r->id, dir, &stored);
    *response = json_pack("{s:o, s:o?}", "downloaded", got, "stored", stored);
    remove_tree(dir);
    free(dir);
    free(runs);
    return out;
}

/* ---- the operation --------------------------------------------------------------- */

static void finish(PGconn *c, azure_run *r, ops_result res, ops_ctx *ctx)
{
    if (res == OPS_DONE) {
        PQclear(db_exec(c,
                        "UPDATE runs SET state = 'completed', finished_at = now(), exit_status = 0,"
                        " updated_at = now(), version = version + 1 WHERE id = $1::uuid",
                        1, (const char *[]){r->id}, NULL));
        log_line(c, r, "outputs of Azure ML job %s stored: run completed", r->job);
        ops_set_output(ctx, json_pack("{s:s, s:s, s:s}", "run_id", r->id, "state", "completed",
                                      "azure_job", r->job));
    } else if (res == OPS_CANCELED) {
        PQclear(db_exec(c,
                        "UPDATE runs SET state = 'canceled', finished_at = coalesce(finished_at,"
                        " now()), updated_at = now(), version = version + 1 WHERE id = $1::uuid",
                        1, (const char *[]){r->id}, NULL));
    } else if (res == OPS_FAIL) {
        json_t *err = json_pack("{s:s, s:s, s:s}", "code", "azureml_job_failed", "azure_job",
                                r->job, "azure_status", r->last_status);
        char *e = json_dumps(err, JSON_COMPACT);
        json_decref(err);
        PQclear(db_exec(c,
                        "UPDATE runs SET state = 'failed', finished_at = now(), error = $2::jsonb,"
                        " updated_at = now(), version = version + 1 WHERE id = $1::uuid",
                        2, (const char *[]){r->id, e}, NULL));
        free(e);
        log_line(c, r, "run failed (Azure ML job %s, status %s)", r->job,
                 r->last_status[0] ? r->last_status : "never seen");
    }
    if (res == OPS_DONE || res == OPS_CANCELED || res == OPS_FAIL)
        webhooks_emit_run_finished(c, r->id); /* run.finished to the project's webhooks */
}

ops_result run_azure_handle(ops_ctx *ctx, const char *run_id)
{
    PGconn *c = ops_conn(ctx);
    azure_run r;
    if (load(c, run_id, &r)) {
        ops_set_error(ctx, "no_run", "the run no longer exists");
        return OPS_FAIL;
    }
    ops_result res = OPS_DONE;
    if (!azure_exec_live()) {
        ops_set_error(ctx, "azure_unconfigured",
                      "the run's compute is Azure ML compute, but this server's executor is not "
                      "azure (ROASTERY_EXECUTOR)");
        res = OPS_FAIL;
    }
    if (res == OPS_DONE && !r.submitted) {
        PQclear(db_exec(c,
                        "UPDATE runs SET state = 'preparing', preparing_at = coalesce(preparing_at,"
                        " now()), updated_at = now(), version = version + 1 WHERE id = $1::uuid"
                        " AND state = 'queued'",
                        1, (const char *[]){run_id}, NULL));
        log_line(c, &r, "attempt %d on %s: Azure ML compute %s", ops_attempt(ctx), ops_id(ctx),
                 r.compute);
        res = azure_publish_version(ctx, r.project, r.dataset, r.number);
        json_t *submitted = NULL;
        if (res == OPS_DONE)
            res = azure_exec_step(ctx, "submit", "submit the command job (name from the run id)",
                                  submit_call, &r, &submitted);
        if (res == OPS_DONE) {
            take_job(&r, json_object_get(submitted, "body"));
            r.submitted = 1;
            log_line(c, &r, "%s Azure ML job %s on %s (%s)",
                     json_is_true(json_object_get(submitted, "existed")) ? "adopted" : "submitted",
                     r.job, r.compute, r.last_status[0] ? r.last_status : "no status yet");
            r.polled = (long long)time(NULL);
            record_job(c, &r);
        }
    }
    /* Canceled before the job was submitted: nothing runs in Azure. */
    if (res == OPS_DONE)
        res = poll_job(ctx, &r);
    if (res == OPS_DONE)
        res = ops_step(ctx, "wait", "azureml", "poll the job until it ends", NULL, step_ended, &r,
                       NULL);
    /* A cancel that came after the job ended Completed still cancels the run,
     * but there is nothing left to stop in Azure. */
    if (res == OPS_CANCELED && r.submitted && !r.cancel_sent &&
        !azureml_job_status_terminal(r.last_status))
        send_cancel(ctx, &r);
    if (res == OPS_DONE)
        res = ops_step(ctx, "fetch", "azureml",
                       "download the job's outputs into the artifact store", NULL, step_fetch, &r,
                       NULL);
    finish(c, &r, res, ctx);
    free(r.params);
    free(r.output_key);
    return res;
}
