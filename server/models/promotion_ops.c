/* promotion.evaluate and promotion.deploy. */
#define _XOPEN_SOURCE 700
#include "models/promotion_ops.h"
#include "azure/arm.h"
#include "exec/azure_exec.h"
#include "azure/azureml.h"
#include "forecasts/forecast_ops.h"
#include "db/db.h"
#include "core/log.h"
#include "ops/ops.h"
#include "events/webhooks.h"
#include "exec/terraform.h"
#include "lib/util.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const config *cfg;
static artifact_store *store;

typedef struct {
    char id[40], project[80], model[80], target[16], proposed_by[80], run_id[40];
    int version, champion; /* champion 0: none */
    double margin, tolerance;
} promo;

static int load_promo(PGconn *c, const char *id, promo *p)
{
    PGresult *r = db_exec(c,
                          "SELECT p.project_id, p.model, p.version, p.target, coalesce(p.champion,"
                          " 0), pr.promotion_margin::float8, pr.champion_tolerance::float8,"
                          " p.proposed_by, v.run_id FROM promotions p JOIN projects pr ON pr.id ="
                          " p.project_id JOIN model_versions v ON v.project_id = p.project_id AND"
                          " v.model = p.model AND v.version = p.version WHERE p.id = $1::uuid",
                          1, (const char *[]){id}, NULL);
    if (!r || PQntuples(r) != 1) {
        PQclear(r);
        return r ? RST_ENOTFOUND : RST_EDB;
    }
    memset(p, 0, sizeof *p);
    snprintf(p->id, sizeof p->id, "%s", id);
    snprintf(p->project, sizeof p->project, "%s", PQgetvalue(r, 0, 0));
    snprintf(p->model, sizeof p->model, "%s", PQgetvalue(r, 0, 1));
    p->version = (int)strtol(PQgetvalue(r, 0, 2), NULL, 10);
    snprintf(p->target, sizeof p->target, "%s", PQgetvalue(r, 0, 3));
    p->champion = (int)strtol(PQgetvalue(r, 0, 4), NULL, 10);
    p->margin = strtod(PQgetvalue(r, 0, 5), NULL);
    p->tolerance = strtod(PQgetvalue(r, 0, 6), NULL);
    snprintf(p->proposed_by, sizeof p->proposed_by, "%s", PQgetvalue(r, 0, 7));
    snprintf(p->run_id, sizeof p->run_id, "%s", PQgetvalue(r, 0, 8));
    PQclear(r);
    return RST_OK;
}

/* The metrics of a version (new: json_decref), NULL when unknown. */
static json_t *version_metrics(PGconn *c, const promo *p, int version)
{
    char v[16];
    snprintf(v, sizeof v, "%d", version);
    PGresult *r = db_exec(c,
                          "SELECT metrics::text FROM model_versions WHERE project_id = $1 AND"
                          " model = $2 AND version = $3::int",
                          3, (const char *[]){p->project, p->model, v}, NULL);
    json_t *m = r && PQntuples(r) == 1 ? json_loads(PQgetvalue(r, 0, 0), 0, NULL) : NULL;
    PQclear(r);
    return m;
}

static json_t *gate(const char *name, double figure, double threshold, int pass,
                    const char *detail)
{
    return json_pack("{s:s, s:f, s:f, s:s, s:s}", "gate", name, "figure",
                     isfinite(figure) ? figure : -1.0, "threshold", threshold, "verdict",
                     pass ? "pass" : "fail", "detail", detail);
}

/* Downloads model.json and features.json of a version into dir. */
static int fetch_model(PGconn *c, const promo *p, int version, const char *dir)
{
    char v[16];
    snprintf(v, sizeof v, "%d", version);
    PGresult *r = db_exec(c,
                          "SELECT a->>'name', a->>'key' FROM model_versions,"
                          " jsonb_array_elements(artifacts) a WHERE project_id = $1 AND model = $2"
                          " AND version = $3::int AND a->>'name' IN ('model.json', 'features.json')",
                          3, (const char *[]){p->project, p->model, v}, NULL);
    int rc = r && PQntuples(r) == 2 ? RST_OK : RST_ENOTFOUND;
    if (rc == RST_OK && mkdir(dir, 0700) && errno != EEXIST)
        rc = RST_EIO;
    for (int i = 0; rc == RST_OK && r && i < PQntuples(r); i++) {
        char *path = xasprintf("%s/%s", dir, PQgetvalue(r, i, 0));
        rc = artifacts_fetch(store, PQgetvalue(r, i, 1), path);
        free(path);
    }
    PQclear(r);
    return rc;
}

/* Scores the model in dir on input's latest backtest window with the
 * trainer; *wape gets the overall WAPE. */
static int score(const char *workdir, const char *dir, const char *input, int horizon,
                 int backtest, double *wape, char *err, size_t errlen)
{
    char exe[4096];
    if (self_exe(exe, sizeof exe))
        return RST_EIO;
    char h[16], b[16];
    snprintf(h, sizeof h, "%d", horizon);
    snprintf(b, sizeof b, "%d", backtest);
    char *out = xasprintf("%s/score", dir);
    terraform_options o = {
        .bin = exe, .workdir = workdir, .timeout_seconds = 3600, .env_names = child_env_names()};
    terraform_result res;
    const char *args[] = {"train",       "--score",  dir, "--input", input, "--horizon", h,
                          "--backtest-days", b, "--output", out, NULL};
    int rc = terraform_run(&o, args, &res);
    if (rc == RST_OK && res.exit_status == 0) {
        char *mpath = xasprintf("%s/metrics.json", out);
        json_t *m = json_load_file(mpath, 0, NULL);
        free(mpath);
        json_t *w = json_object_get(json_object_get(m, "overall"), "wape");
        rc = json_is_number(w) ? RST_OK : RST_EINVAL;
        *wape = json_number_value(w);
        json_decref(m);
        if (rc)
            snprintf(err, errlen, "the trainer's scoring wrote no overall WAPE");
    } else {
        char *s = terraform_error_summary(res.log, res.log_len);
        snprintf(err, errlen, "scoring failed (exit %d): %s", res.exit_status, s);
        free(s);
        rc = RST_EIO;
    }
    terraform_result_free(&res);
    free(out);
    return rc;
}

/* Champion/challenger: both versions scored on the latest ready version of
 * the candidate's dataset, the same window for both. */
static json_t *champion_gate(PGconn *c, const promo *p)
{
    char cv[16];
    snprintf(cv, sizeof cv, "%d", p->version);
    PGresult *r = db_exec(
        c,
        "SELECT 'projects/' || d.project_id || '/datasets/' || d.dataset || '/versions/' ||"
        " d.number || '/canonical.csv', d.dataset || ' v' || d.number, r.horizon_days,"
        " r.backtest_days FROM model_versions v JOIN runs r ON r.id = v.run_id JOIN"
        " dataset_versions d ON d.project_id = r.project_id AND d.dataset = r.dataset"
        " WHERE v.project_id = $1 AND v.model = $2 AND v.version = $3::int AND d.state = 'ready'"
        " ORDER BY d.number DESC LIMIT 1",
        3, (const char *[]){p->project, p->model, cv}, NULL);
    if (!r || PQntuples(r) != 1) {
        PQclear(r);
        return gate("champion_challenger", NAN, p->tolerance, 0,
                    "no ready dataset version to score both models on");
    }
    char key[400], label[160];
    snprintf(key, sizeof key, "%s", PQgetvalue(r, 0, 0));
    snprintf(label, sizeof label, "%s", PQgetvalue(r, 0, 1));
    int horizon = (int)strtol(PQgetvalue(r, 0, 2), NULL, 10);
    int backtest = (int)strtol(PQgetvalue(r, 0, 3), NULL, 10);
    PQclear(r);
    char *dir = xasprintf("%s/promotions/%s", cfg->data_dir, p->id);
    char *parent = xasprintf("%s/promotions", cfg->data_dir);
    mkdir(parent, 0700);
    mkdir(dir, 0700);
    free(parent);
    char *input = xasprintf("%s/input.csv", dir), *cand = xasprintf("%s/candidate", dir),
         *champ = xasprintf("%s/champion", dir);
    char err[400] = "";
    double wc = NAN, wp = NAN;
    int rc = artifacts_fetch(store, key, input);
    if (rc == RST_OK)
        rc = fetch_model(c, p, p->version, cand);
    if (rc == RST_OK)
        rc = fetch_model(c, p, p->champion, champ);
    if (rc != RST_OK && !err[0])
        snprintf(err, sizeof err, "cannot fetch the models or the data from the artifact store");
    if (rc == RST_OK)
        rc = score(dir, cand, input, horizon, backtest, &wc, err, sizeof err);
    if (rc == RST_OK)
        rc = score(dir, champ, input, horizon, backtest, &wp, err, sizeof err);
    json_t *g;
    if (rc == RST_OK) {
        char detail[400];
        int pass = wc <= wp * (1 + p->tolerance);
        snprintf(detail, sizeof detail,
                 "on the last %d days of %s: candidate v%d WAPE %.4f, production v%d WAPE %.4f;"
                 " the candidate may be at most %.1f%% worse",
                 backtest, label, p->version, wc, p->champion, wp, p->tolerance * 100);
        g = gate("champion_challenger", wp > 0 ? wc / wp - 1 : NAN, p->tolerance, pass, detail);
        json_object_set_new(g, "candidate_wape", json_real(wc));
        json_object_set_new(g, "champion_wape", json_real(wp));
    } else {
        g = gate("champion_challenger", NAN, p->tolerance, 0, err);
    }
    remove_tree(dir);
    free(dir);
    free(input);
    free(cand);
    free(champ);
    return g;
}

static ops_result step_gates(ops_ctx *ctx, json_t *request, json_t **response, void *arg)
{
    (void)request;
    promo *p = arg;
    PGconn *c = ops_conn(ctx);
    json_t *m = version_metrics(c, p, p->version), *gates = json_array();
    json_t *wape = json_object_get(json_object_get(m, "overall"), "wape");
    int present = json_is_number(wape);
    json_array_append_new(gates, gate("metrics_present", present ? 1 : 0, 1, present,
                                      present ? "the version has backtest metrics"
                                              : "the version has no backtest metrics"));
    json_t *snm = json_object_get(json_object_get(m, "baselines"), "seasonal_naive");
    json_t *snw = json_object_get(snm, "wape");
    if (!snw)
        snw = json_object_get(json_object_get(snm, "overall"), "wape");
    double sn = json_number_value(snw);
    double improvement = present && sn > 0 ? 1 - json_number_value(wape) / sn : NAN;
    char detail[240];
    snprintf(detail, sizeof detail,
             "backtest WAPE %.4f against seasonal-naive %.4f: %.1f%% better; the project asks"
             " %.1f%%",
             json_number_value(wape), sn, improvement * 100, p->margin * 100);
    json_array_append_new(gates, gate("beats_seasonal_naive", improvement, p->margin,
                                      isfinite(improvement) && improvement >= p->margin, detail));
    if (p->champion && p->champion != p->version)
        json_array_append_new(gates, champion_gate(c, p));
    json_decref(m);
    *response = json_pack("{s:o}", "gates", gates);
    return OPS_DONE;
}

/* Moves alias to the promotion's version, with history. In the caller's tx. */
static int move_alias(PGconn *c, const promo *p, const char *who)
{
    char v[16], reason[80];
    snprintf(v, sizeof v, "%d", p->version);
    snprintf(reason, sizeof reason, "promotion %s", p->id);
    PGresult *r = db_exec(c,
                          "INSERT INTO model_alias_history(project_id, model, alias, version,"
                          " previous, reason, set_by) VALUES ($1, $2, $3, $4::int, (SELECT"
                          " version FROM model_aliases WHERE project_id = $1 AND model = $2 AND"
                          " alias = $3), $5, $6)",
                          6, (const char *[]){p->project, p->model, p->target, v, reason, who},
                          NULL);
    if (!r)
        return RST_EDB;
    PQclear(r);
    r = db_exec(c,
                "INSERT INTO model_aliases(project_id, model, alias, version, set_by)"
                " VALUES ($1, $2, $3, $4::int, $5) ON CONFLICT (project_id, model, alias) DO"
                " UPDATE SET version = EXCLUDED.version, set_by = EXCLUDED.set_by, set_at = now()",
                5, (const char *[]){p->project, p->model, p->target, v, who}, NULL);
    if (!r)
        return RST_EDB;
    PQclear(r);
    return RST_OK;
}

/* local: the version is what the server's serving cache loads for the
 * alias (lazily, from its artifacts); the alias moves in one transaction. */
static ops_result step_deploy_local(ops_ctx *ctx, json_t *request, json_t **response, void *arg)
{
    (void)request;
    promo *p = arg;
    PGconn *c = ops_conn(ctx);
    PGresult *r = db_exec(c, "BEGIN", 0, NULL, NULL);
    PQclear(r);
    int rc = move_alias(c, p, p->proposed_by);
    json_t *dep = json_pack("{s:s, s:s, s:i}", "executor", "local", "alias", p->target, "version",
                            p->version);
    char *d = json_dumps(dep, JSON_COMPACT);
    r = rc ? NULL
           : db_exec(c,
                     "UPDATE promotions SET state = 'completed', deployment = $2::jsonb,"
                     " updated_at = now() WHERE id = $1::uuid",
                     2, (const char *[]){p->id, d}, NULL);
    free(d);
    /* A new production model forecasts at once, in the same transaction as
     * the alias move. */
    if (r && !strcmp(p->target, "production") &&
        forecast_ops_enqueue(c, p->project, p->model, "promotion", p->proposed_by, NULL, NULL) ==
            RST_EDB) {
        PQclear(r);
        r = NULL;
    }
    /* model.promoted to the project's webhooks, committed with the alias move. */
    if (r && webhooks_emit_promotion(c, "model.promoted", p->id)) {
        PQclear(r);
        r = NULL;
    }
    if (r) {
        PQclear(r);
        r = db_exec(c, "COMMIT", 0, NULL, NULL);
    }
    if (!r) {
        PQclear(PQexec(c, "ROLLBACK"));
        json_decref(dep);
        ops_set_error(ctx, "database", "cannot move the alias");
        return OPS_RETRY;
    }
    PQclear(r);
    *response = dep;
    return OPS_DONE;
}

static ops_result evaluate(ops_ctx *ctx)
{
    PGconn *c = ops_conn(ctx);
    const char *id = json_string_value(json_object_get(ops_input(ctx), "promotion_id"));
    promo p;
    if (!id || load_promo(c, id, &p)) {
        ops_set_error(ctx, "no_promotion", "the promotion no longer exists");
        return OPS_FAIL;
    }
    json_t *res = NULL;
    ops_result r = ops_step(ctx, "gates", "local", "evaluate the promotion gates", NULL,
                            step_gates, &p, &res);
    if (r != OPS_DONE)
        return r;
    json_t *gates = json_object_get(res, "gates"), *g;
    size_t i;
    int pass = 1;
    json_array_foreach(gates, i, g) pass &= !strcmp(json_string_value(json_object_get(g,
                                                                                      "verdict")),
                                                    "pass");
    char *text = json_dumps(gates, JSON_COMPACT);
    const char *state = !pass ? "gates_failed"
                        : !strcmp(p.target, "production") ? "pending_approval"
                                                           : "approved";
    PQclear(db_exec(c,
                    "UPDATE promotions SET gates = $2::jsonb, state = $3, updated_at = now()"
                    " WHERE id = $1::uuid",
                    3, (const char *[]){id, text, state}, NULL));
    if (!strcmp(state, "pending_approval")) /* to the project's webhooks */
        webhooks_emit_promotion(c, "promotion.pending_approval", id);
    free(text);
    /* Staging needs no approval: it moves now. */
    if (!strcmp(state, "approved"))
        r = ops_step(ctx, "deploy", "local", "move the staging alias", NULL, step_deploy_local,
                     &p, NULL);
    ops_set_output(ctx, json_pack("{s:s, s:s}", "promotion_id", id, "state",
                                  r == OPS_DONE && !strcmp(state, "approved") ? "completed"
                                                                              : state));
    return r;
}

/* ---- Azure ML online endpoint, blue/green ---------------------------------------- */

typedef struct {
    promo *p;
    char endpoint[40];
    char deployment[40], old[40];
    int step; /* which call */
} azure_job;

enum {
    AZ_MODEL,
    AZ_ENDPOINT,
    AZ_DEPLOYMENT,
    AZ_TRAFFIC_10,
    AZ_HEALTH,
    AZ_TRAFFIC_100,
    AZ_DELETE_OLD,
    AZ_ROLLBACK
};

/* The run's model files, where Azure ML reads them: our artifact keys under
 * the datastore's roastery/ prefix. */
static char *model_key(const promo *p, const char *file)
{
    return xasprintf("projects/%s/runs/%s/artifacts/%s", p->project, p->run_id, file);
}

/* Sets the endpoint's traffic: new gets percent, the old deployment the rest. */
static int set_traffic(arm_client *arm, azure_job *j, int percent, arm_result *res)
{
    json_t *t = json_object();
    json_object_set_new(t, j->deployment, json_integer(percent));
    if (j->old[0])
        json_object_set_new(t, j->old, json_integer(100 - percent));
    int rc = azureml_online_endpoint_set_traffic(arm, j->endpoint, "Key", t, res);
    json_decref(t);
    return rc;
}

/* One Azure ML call of the deployment; the same request whether it is sent
 * (azure) or only rendered (local, dry-run). */
static int azure_call(arm_client *arm, void *arg, arm_result *res)
{
    azure_job *j = arg;
    promo *p = j->p;
    char ver[16], model_id[240];
    snprintf(ver, sizeof ver, "%d", p->version);
    snprintf(model_id, sizeof model_id, "azureml:%s-%s:%d", p->project, p->model, p->version);
    switch (j->step) {
    case AZ_MODEL: {
        char name[180];
        snprintf(name, sizeof name, "%s-%s", p->project, p->model);
        char *key = model_key(p, "");
        char *uri = azure_exec_datastore_uri(key);
        json_t *tags = json_pack("{s:s, s:s}", "roastery_project", p->project, "roastery_run",
                                 p->run_id);
        int rc = azureml_model_version_put(arm, name, ver, uri, "registered by roastery", tags,
                                           NULL, res);
        json_decref(tags);
        free(uri);
        free(key);
        return rc;
    }
    case AZ_ENDPOINT:
        return azureml_online_endpoint_put(arm, j->endpoint, "Key", res);
    case AZ_DEPLOYMENT: {
        azureml_deployment d = {.model = model_id,
                                .instance_type = cfg->online_instance_type,
                                .instance_count = 1,
                                .description = "demand forecast, deployed by roastery"};
        return azureml_online_deployment_put(arm, j->endpoint, j->deployment, &d, res);
    }
    case AZ_TRAFFIC_10:
        return set_traffic(arm, j, 10, res);
    case AZ_HEALTH:
        return azureml_online_deployment_get(arm, j->endpoint, j->deployment, res);
    case AZ_TRAFFIC_100:
        return set_traffic(arm, j, 100, res);
    case AZ_ROLLBACK:
        return set_traffic(arm, j, 0, res);
    default:
        return azureml_online_deployment_delete(arm, j->endpoint, j->old, res);
    }
}

/* Before the model version: its files in the workspace datastore. */
static ops_result step_upload_model(ops_ctx *ctx, json_t *request, json_t **response, void *arg)
{
    (void)request;
    promo *p = arg;
    arm_result res;
    arm_result_init(&res);
    json_t *files = json_array();
    ops_result out = OPS_DONE;
    static const char *const names[] = {"model.json", "features.json", "metrics.json", NULL};
    for (int i = 0; names[i] && out == OPS_DONE; i++) {
        char *key = model_key(p, names[i]);
        char err[300];
        int copied = 0;
        int rc = azure_exec_upload(&res, key, &copied, err, sizeof err);
        if (rc) {
            ops_set_error(ctx, rc == RST_EUNAVAIL ? "datastore_unavailable" : "datastore_refused",
                          err);
            out = rc == RST_EUNAVAIL ? OPS_RETRY : OPS_FAIL;
        } else {
            char *uri = azure_exec_datastore_uri(key);
            json_array_append_new(files, json_pack("{s:s, s:b}", "uri", uri, "copied", copied));
            free(uri);
        }
        free(key);
    }
    *response = json_pack("{s:o, s:o}", "files", files, "datastore", arm_result_json(&res));
    arm_result_free(&res);
    return out;
}

/* Between 10% and 100%: the new deployment must report Succeeded. When it
 * does not, its traffic goes back to the old deployment and the promotion
 * fails; the old deployment was never touched. */
static ops_result step_health(ops_ctx *ctx, json_t *request, json_t **response, void *arg)
{
    (void)request;
    azure_job *j = arg;
    arm_result res;
    arm_result_init(&res);
    j->step = AZ_HEALTH;
    int rc = azure_call(azure_exec_arm(), j, &res);
    const char *state = json_string_value(
        json_object_get(json_object_get(res.body, "properties"), "provisioningState"));
    *response = arm_result_json(&res);
    arm_result_free(&res);
    if (rc == RST_OK && state && !strcmp(state, "Succeeded"))
        return OPS_DONE;
    if (rc && rc != RST_ENOTFOUND && rc != RST_EINVAL)
        return OPS_RETRY;
    char msg[200];
    snprintf(msg, sizeof msg, "deployment %s reports %s, not Succeeded: traffic returned to %s",
             j->deployment, state ? state : "nothing", j->old[0] ? j->old : "nobody");
    if (j->old[0]) {
        arm_result back;
        arm_result_init(&back);
        j->step = AZ_ROLLBACK;
        azure_call(azure_exec_arm(), j, &back);
        json_object_set_new(*response, "rollback", arm_result_json(&back));
        arm_result_free(&back);
    }
    ops_set_error(ctx, "deployment_unhealthy", msg);
    return OPS_FAIL;
}

/* Production on Azure ML: the model's files and version, the endpoint, a new
 * deployment, 10% of traffic, a health check, then 100%, then the old
 * deployment deleted. Rendered and recorded with local and dry-run. */
static ops_result deploy_azure(ops_ctx *ctx, promo *p)
{
    azure_job j = {.p = p};
    snprintf(j.endpoint, sizeof j.endpoint, "%.24s-%.7s", p->project, p->model);
    for (char *c = j.endpoint; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9')))
            *c = '-';
    snprintf(j.deployment, sizeof j.deployment, "v%d", p->version);
    if (p->champion && p->champion != p->version)
        snprintf(j.old, sizeof j.old, "v%d", p->champion);
    static const char *const names[] = {"model", "endpoint", "deployment", "traffic-10",
                                        "health", "traffic-100", "delete-old"};
    static const char *const what[] = {
        "register the model version in Azure ML", "create or update the online endpoint",
        "create the new deployment", "send 10% of traffic to the new deployment",
        "check that the new deployment reports Succeeded",
        "send all traffic to the new deployment", "delete the previous deployment"};
    ops_result r = OPS_DONE;
    if (azure_exec_live())
        r = ops_step(ctx, "upload-model", "azureml",
                     "copy the model files to the workspace datastore", NULL, step_upload_model,
                     p, NULL);
    for (j.step = AZ_MODEL; r == OPS_DONE && j.step <= AZ_DELETE_OLD; j.step++) {
        if ((j.step == AZ_TRAFFIC_10 || j.step == AZ_DELETE_OLD) && !j.old[0])
            continue; /* the first deployment takes all traffic at once */
        if (j.step == AZ_HEALTH && azure_exec_live()) {
            int step = j.step;
            r = ops_step(ctx, names[step], "azureml", what[step], NULL, step_health, &j, NULL);
            j.step = step;
            continue;
        }
        r = azure_exec_step(ctx, names[j.step], what[j.step], azure_call, &j, NULL);
    }
    return r;
}

static ops_result deploy(ops_ctx *ctx)
{
    PGconn *c = ops_conn(ctx);
    const char *id = json_string_value(json_object_get(ops_input(ctx), "promotion_id"));
    promo p;
    if (!id || load_promo(c, id, &p)) {
        ops_set_error(ctx, "no_promotion", "the promotion no longer exists");
        return OPS_FAIL;
    }
    PQclear(db_exec(c, "UPDATE promotions SET state = 'deploying' WHERE id = $1::uuid", 1,
                    (const char *[]){id}, NULL));
    ops_result r = deploy_azure(ctx, &p);
    if (r == OPS_DONE)
        r = ops_step(ctx, "deploy", "local",
                            "serve the version from this server's model cache", NULL,
                            step_deploy_local, &p, NULL);
    if (r == OPS_FAIL)
        PQclear(db_exec(c, "UPDATE promotions SET state = 'failed' WHERE id = $1::uuid", 1,
                        (const char *[]){id}, NULL));
    ops_set_output(ctx, json_pack("{s:s}", "promotion_id", id));
    return r;
}

void promotion_ops_register(const config *c, artifact_store *s)
{
    cfg = c;
    store = s;
    ops_register("promotion.evaluate", evaluate);
    ops_register("promotion.deploy", deploy);
}
