/* Retraining: policies fired by schedule, drift, accuracy or hand; the
 * drift.check, retrain.start and retrain.finish operations (see retrain.h).
 * Every step that writes is idempotent: the retraining row, locked, says what
 * was already done, and unique constraints catch the rest. */
#include "retraining/retrain.h"
#include "lib/cron.h"
#include "db/db.h"
#include "retraining/drift.h"
#include "core/log.h"
#include "ops/ops.h"
#include "runs/run_request.h"
#include "datasets/sales.h"
#include "lib/util.h"
#include "events/webhooks.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static artifact_store *store;

/* ---- small pieces --------------------------------------------------------------------- */

static void rollback(PGconn *c)
{
    PQclear(PQexec(c, "ROLLBACK"));
}

/* Runs sql and reports success, clearing the result. */
static int exec_ok(PGconn *c, const char *sql, int n, const char *const *p)
{
    PGresult *r = db_exec(c, sql, n, p, NULL);
    PQclear(r);
    return r != NULL;
}

/* An audit row for what the platform did by itself (or on a person's behalf,
 * when actor is their oid). */
static int audit(PGconn *c, const char *actor, const char *actor_name, const char *action,
                 const char *subject, const char *outcome, const char *reason)
{
    return exec_ok(c,
                   "INSERT INTO audit_log(actor_oid, actor_name, action, subject, outcome, reason)"
                   " VALUES ($1, $2, $3, $4, $5, $6)",
                   6, (const char *[]){actor, actor_name, action, subject, outcome, reason})
               ? RST_OK
               : RST_EDB;
}

int retrain_schedule_next(const char *cron, const char *tz, int64_t after, int64_t *next,
                          const char **field, char *err, size_t errlen)
{
    *next = 0;
    cron_tz *zone = NULL;
    int rc = cron_tz_load(tz, &zone, err, errlen);
    if (rc) {
        *field = "timezone";
        return RST_EINVAL;
    }
    cron_expr e;
    if (cron && (rc = cron_parse(cron, &e, err, errlen)) != RST_OK)
        *field = "cron";
    else if (cron && (rc = cron_next(&e, zone, after, next)) != RST_OK) {
        *field = "cron";
        snprintf(err, errlen, "never fires within the next ten years");
        rc = RST_EINVAL;
    }
    cron_tz_free(zone);
    return rc ? RST_EINVAL : RST_OK;
}

/* ---- firing ---------------------------------------------------------------------------- */

int retrain_fire(PGconn *c, const char *project, const char *reason, const char *actor,
                 json_t *detail, char retraining_id[37], char *err, size_t errlen)
{
    retraining_id[0] = '\0';
    if (strcmp(reason, "schedule") && strcmp(reason, "drift") && strcmp(reason, "accuracy") &&
        strcmp(reason, "manual")) {
        snprintf(err, errlen, "unknown retraining reason %s", reason);
        return RST_EINVAL;
    }
    PGTransactionStatusType ts = PQtransactionStatus(c);
    if (ts != PQTRANS_IDLE && ts != PQTRANS_INTRANS)
        return RST_EDB;
    int own = ts == PQTRANS_IDLE;
    if (own && !exec_ok(c, "BEGIN", 0, NULL))
        return RST_EDB;
    char system_actor[48], subject[160];
    snprintf(system_actor, sizeof system_actor, "system:%s", reason);
    snprintf(subject, sizeof subject, "projects/%s/retraining-policy", project);
    const char *who = actor ? actor : system_actor;
    int automatic = strcmp(reason, "manual") != 0;
    int rc = RST_EDB;
    PGresult *r = db_exec(c,
                          "SELECT p.enabled, p.model, p.auto_promote_to_production, (SELECT"
                          " a.version FROM model_aliases a WHERE a.project_id = p.project_id AND"
                          " a.model = p.model AND a.alias = 'production') FROM"
                          " retraining_policies p WHERE p.project_id = $1 FOR UPDATE",
                          1, (const char *[]){project}, NULL);
    if (!r)
        goto out;
    if (PQntuples(r) == 0) {
        snprintf(err, errlen, "project %s has no retraining policy (PUT one first)", project);
        rc = RST_ENOTFOUND;
        goto out;
    }
    char model[80], base[16], auto_promote[2];
    snprintf(model, sizeof model, "%s", PQgetvalue(r, 0, 1));
    snprintf(base, sizeof base, "%s", PQgetvalue(r, 0, 3));
    snprintf(auto_promote, sizeof auto_promote, "%s", PQgetvalue(r, 0, 2));
    int enabled = PQgetvalue(r, 0, 0)[0] == 't', has_base = !PQgetisnull(r, 0, 3);
    PQclear(r);
    r = NULL;
    if (automatic && !enabled) {
        snprintf(err, errlen, "the retraining policy is disabled");
        rc = RST_ENOTFOUND;
        goto out;
    }
    if (!has_base) {
        snprintf(err, errlen,
                 "model %s has no production version: retraining starts from the production"
                 " model's data and parameters",
                 model);
        rc = RST_EINVAL;
        goto out;
    }
    r = db_exec(c,
                "SELECT id::text FROM retrainings WHERE project_id = $1 AND state IN ('queued',"
                " 'training')",
                1, (const char *[]){project}, NULL);
    if (!r)
        goto out;
    if (PQntuples(r) > 0) {
        snprintf(retraining_id, 37, "%s", PQgetvalue(r, 0, 0));
        snprintf(err, errlen, "retraining %s is already in flight: this trigger joins it",
                 retraining_id);
        char why[200];
        snprintf(why, sizeof why, "%s trigger coalesced into retraining %s", reason, retraining_id);
        rc = automatic && audit(c, who, actor ? NULL : "retraining-policy", "retraining.trigger",
                                subject, "failed", why)
                 ? RST_EDB
                 : RST_ECONFLICT;
        goto out;
    }
    PQclear(r);
    char *dtext = detail ? json_dumps(detail, JSON_COMPACT) : NULL;
    r = db_exec(c,
                "INSERT INTO retrainings(project_id, reason, detail, model, base_version,"
                " auto_promote, triggered_by) VALUES ($1, $2, $3::jsonb, $4, $5::int, $6::bool,"
                " $7) RETURNING id::text",
                7, (const char *[]){project, reason, dtext, model, base, auto_promote, who}, NULL);
    free(dtext);
    if (!r)
        goto out;
    snprintf(retraining_id, 37, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    r = NULL;
    char opsubject[200], op[37];
    snprintf(opsubject, sizeof opsubject, "projects/%s/retrainings/%s", project, retraining_id);
    json_t *in = json_pack("{s:s}", "retraining_id", retraining_id);
    int erc = ops_enqueue(c, "retrain.start", opsubject, in, who, 5, op);
    json_decref(in);
    char why[240];
    snprintf(why, sizeof why, "%s: retraining %s of model %s (production version %s)", reason,
             retraining_id, model, base);
    if (erc ||
        !exec_ok(c, "UPDATE retrainings SET operation_id = $2::uuid WHERE id = $1::uuid", 2,
                 (const char *[]){retraining_id, op}) ||
        !exec_ok(c,
                 "UPDATE retraining_policies SET last_fired_at = now(), last_reason = $2"
                 " WHERE project_id = $1",
                 2, (const char *[]){project, reason}) ||
        audit(c, who, actor ? NULL : "retraining-policy", "retraining.trigger", subject,
              "succeeded", why))
        goto out;
    rc = RST_OK;
    log_fields(LOG_INFO, "retraining triggered",
               json_pack("{s:s, s:s, s:s, s:s}", "project", project, "reason", reason,
                         "retraining_id", retraining_id, "operation_id", op));
out:
    PQclear(r);
    if (rc == RST_EDB)
        retraining_id[0] = '\0';
    if (own) {
        if (rc == RST_EDB || !exec_ok(c, "COMMIT", 0, NULL)) {
            rollback(c);
            rc = RST_EDB;
        }
    }
    return rc;
}

int retrain_trigger(PGconn *c, const char *project, const char *reason)
{
    char id[37], err[300];
    return retrain_fire(c, project, reason, NULL, NULL, id, err, sizeof err);
}

int retrain_accuracy_threshold(PGconn *c, const char *project, double *threshold)
{
    PGresult *r = db_exec(c,
                          "SELECT accuracy_wape_threshold FROM retraining_policies WHERE"
                          " project_id = $1 AND enabled AND accuracy_wape_threshold IS NOT NULL",
                          1, (const char *[]){project}, NULL);
    if (!r)
        return RST_EDB;
    int rc = PQntuples(r) == 1 ? RST_OK : RST_ENOTFOUND;
    if (rc == RST_OK)
        *threshold = strtod(PQgetvalue(r, 0, 0), NULL);
    PQclear(r);
    return rc;
}

/* ---- the schedule ---------------------------------------------------------------------- */

int retrain_schedule_due(PGconn *c)
{
    if (!exec_ok(c, "BEGIN", 0, NULL))
        return -1;
    PGresult *r = db_exec(c,
                          "SELECT project_id, cron, timezone, extract(epoch FROM now())::bigint"
                          " FROM retraining_policies WHERE enabled AND next_fire_at <= now()"
                          " ORDER BY next_fire_at LIMIT 20 FOR UPDATE SKIP LOCKED",
                          0, NULL, NULL);
    int fired = 0;
    for (int i = 0; r && i < PQntuples(r); i++) {
        const char *project = PQgetvalue(r, i, 0);
        int64_t now = strtoll(PQgetvalue(r, i, 3), NULL, 10), next = 0;
        const char *field = NULL;
        char err[300] = "", nexts[32];
        /* A zone that disappeared from the system stops the schedule, loudly. */
        if (retrain_schedule_next(db_value(r, i, 1), PQgetvalue(r, i, 2), now, &next, &field, err,
                                  sizeof err))
            log_fields(
                LOG_ERROR, "retraining schedule stopped",
                json_pack("{s:s, s:s, s:s}", "project", project, "field", field, "reason", err));
        snprintf(nexts, sizeof nexts, "%lld", (long long)next);
        if (!exec_ok(c,
                     "UPDATE retraining_policies SET next_fire_at = CASE WHEN $2::bigint > 0"
                     " THEN to_timestamp($2::bigint) END WHERE project_id = $1",
                     2, (const char *[]){project, nexts})) {
            fired = -1;
            break;
        }
        char id[37];
        int rc = retrain_fire(c, project, "schedule", NULL, NULL, id, err, sizeof err);
        if (rc == RST_EDB) {
            fired = -1;
            break;
        }
        if (rc == RST_OK)
            fired++;
        else
            log_fields(LOG_INFO, "scheduled retraining not started",
                       json_pack("{s:s, s:s}", "project", project, "reason", err));
    }
    if (!r)
        fired = -1;
    PQclear(r);
    if (fired < 0 || !exec_ok(c, "COMMIT", 0, NULL)) {
        rollback(c);
        return -1;
    }
    return fired;
}

static void schedule_tick(PGconn *c)
{
    retrain_schedule_due(c);
}

/* ---- drift.check ------------------------------------------------------------------------ */

int retrain_drift_enqueue(PGconn *c, const char *version_id)
{
    PGresult *r = db_exec(
        c,
        "SELECT v.project_id, 'projects/' || v.project_id || '/datasets/' || v.dataset ||"
        " '/versions/' || v.number FROM dataset_versions v WHERE v.id = $1::uuid AND"
        " v.state = 'ready' AND EXISTS (SELECT 1 FROM model_aliases a JOIN model_versions mv ON"
        " mv.project_id = a.project_id AND mv.model = a.model AND mv.version = a.version JOIN"
        " runs r ON r.id = mv.run_id WHERE a.project_id = v.project_id AND a.alias ="
        " 'production' AND r.dataset = v.dataset AND mv.dataset_version_id <> v.id)",
        1, (const char *[]){version_id}, NULL);
    if (!r)
        return RST_EDB;
    int rc = RST_OK;
    if (PQntuples(r) == 1) {
        PGresult *seen = db_exec(c,
                                 "SELECT 1 FROM operations WHERE subject = $1 AND kind ="
                                 " 'drift.check'",
                                 1, (const char *[]){PQgetvalue(r, 0, 1)}, NULL);
        if (!seen)
            rc = RST_EDB;
        else if (PQntuples(seen) == 0) {
            char op[37];
            json_t *in = json_pack("{s:s}", "version_id", version_id);
            rc = ops_enqueue(c, "drift.check", PQgetvalue(r, 0, 1), in, "system:drift", 3, op);
            json_decref(in);
        }
        PQclear(seen);
    }
    PQclear(r);
    return rc;
}

ops_result retrain_on_version(ops_ctx *ctx, const version_ready *v)
{
    /* A new ready version is compared with the production model's training data. */
    if (retrain_drift_enqueue(ops_conn(ctx), v->id) != RST_OK) {
        ops_set_error(ctx, "database", "cannot queue the drift check");
        return OPS_RETRY;
    }
    return OPS_DONE;
}

typedef struct {
    char project[80], dataset[80], version_id[40];
    int number;
    int32_t first, last;
    /* this model */
    char model[80], ref_id[40];
    int model_version, ref_number;
    int32_t ref_first, ref_last;
    double threshold;
    int retrain_on_drift;
} drift_job;

static int parse_day(const char *s, int32_t *out)
{
    return s ? sales_parse_date(s, strlen(s), out) : RST_EINVAL;
}

static ops_result step_drift(ops_ctx *ctx, json_t *request, json_t **response, void *arg)
{
    (void)request;
    drift_job *j = arg;
    PGconn *c = ops_conn(ctx);
    char rkey[400], ckey[400], err[300] = "";
    snprintf(rkey, sizeof rkey, "projects/%s/datasets/%s/versions/%d/canonical.csv", j->project,
             j->dataset, j->ref_number);
    snprintf(ckey, sizeof ckey, "projects/%s/datasets/%s/versions/%d/canonical.csv", j->project,
             j->dataset, j->number);
    drift_options o = {.ref_first = j->ref_first,
                       .ref_last = j->ref_last,
                       .cur_first = j->first,
                       .cur_last = j->last,
                       .psi_threshold = j->threshold};
    json_t *report = NULL;
    double max_psi = 0;
    int rc = drift_compare(store, rkey, ckey, &o, &report, &max_psi, err, sizeof err);
    if (rc) {
        ops_set_error(ctx, rc == RST_EIO ? "artifacts_unavailable" : "drift_failed", err);
        return rc == RST_EIO ? OPS_RETRY : OPS_FAIL;
    }
    int drifted = json_is_true(json_object_get(report, "drifted"));
    char *text = json_dumps(report, JSON_COMPACT);
    char num[16], refnum[16], mv[16], psi[32], thr[32];
    snprintf(num, sizeof num, "%d", j->number);
    snprintf(refnum, sizeof refnum, "%d", j->ref_number);
    snprintf(mv, sizeof mv, "%d", j->model_version);
    snprintf(psi, sizeof psi, "%.6f", json_real_value(json_object_get(report, "max_psi")));
    snprintf(thr, sizeof thr, "%.6f", j->threshold);
    ops_result out = OPS_RETRY;
    char rid[37] = "", id[40] = "";
    PGresult *r = NULL;
    if (!exec_ok(c, "BEGIN", 0, NULL))
        goto done;
    r = db_exec(c,
                "INSERT INTO drift_reports(project_id, dataset, dataset_version,"
                " dataset_version_id, reference_version, reference_version_id, model,"
                " model_version, report, max_psi, threshold, drifted, operation_id) VALUES ($1, $2,"
                " $3::int, $4::uuid, $5::int, $6::uuid, $7, $8::int, $9::jsonb, $10::float8,"
                " $11::float8, $12::bool, $13::uuid) ON CONFLICT (dataset_version_id, model,"
                " model_version) DO NOTHING RETURNING id::text",
                13,
                (const char *[]){j->project, j->dataset, num, j->version_id, refnum, j->ref_id,
                                 j->model, mv, text, psi, thr, drifted ? "true" : "false",
                                 ops_id(ctx)},
                NULL);
    if (!r)
        goto done;
    if (PQntuples(r) == 0) { /* written by an earlier attempt: nothing more to do */
        PQclear(r);
        r = db_exec(c,
                    "SELECT id::text, coalesce(retraining_id::text, '') FROM drift_reports"
                    " WHERE dataset_version_id = $1::uuid AND model = $2 AND model_version ="
                    " $3::int",
                    3, (const char *[]){j->version_id, j->model, mv}, NULL);
        if (!r || PQntuples(r) != 1)
            goto done;
        snprintf(id, sizeof id, "%s", PQgetvalue(r, 0, 0));
        snprintf(rid, sizeof rid, "%s", PQgetvalue(r, 0, 1));
    } else {
        snprintf(id, sizeof id, "%s", PQgetvalue(r, 0, 0));
        if (drifted) {
            json_t *data = json_pack(
                "{s:s, s:s, s:i, s:i, s:s, s:i, s:f, s:O, s:f, s:O}", "drift_report_id", id,
                "dataset", j->dataset, "dataset_version", j->number, "reference_version",
                j->ref_number, "model", j->model, "model_version", j->model_version, "max_psi",
                json_real_value(json_object_get(report, "max_psi")), "max_psi_feature",
                json_object_get(report, "max_psi_feature"), "threshold", j->threshold,
                "level_shift", json_object_get(report, "level_shift"));
            int erc = webhooks_emit(c, j->project, "drift.detected", data);
            json_decref(data);
            if (erc == RST_EDB)
                goto done;
            if (j->retrain_on_drift) {
                json_t *detail =
                    json_pack("{s:s, s:f, s:O}", "drift_report_id", id, "max_psi",
                              json_real_value(json_object_get(report, "max_psi")),
                              "max_psi_feature", json_object_get(report, "max_psi_feature"));
                char why[300];
                int frc = retrain_fire(c, j->project, "drift", NULL, detail, rid, why, sizeof why);
                json_decref(detail);
                if (frc == RST_EDB)
                    goto done;
                if (frc == RST_OK &&
                    !exec_ok(c,
                             "UPDATE drift_reports SET retraining_id = $2::uuid WHERE id ="
                             " $1::uuid",
                             2, (const char *[]){id, rid}))
                    goto done;
                if (frc != RST_OK && frc != RST_ECONFLICT)
                    rid[0] = '\0';
            }
        }
    }
    PQclear(r);
    r = NULL;
    if (!exec_ok(c, "COMMIT", 0, NULL))
        goto done;
    *response = json_pack("{s:s, s:s, s:i, s:f, s:b, s:s?}", "drift_report_id", id, "model",
                          j->model, "model_version", j->model_version, "max_psi",
                          json_real_value(json_object_get(report, "max_psi")), "drifted", drifted,
                          "retraining_id", rid[0] ? rid : NULL);
    out = OPS_DONE;
done:
    if (out != OPS_DONE) {
        PQclear(r);
        rollback(c);
        ops_set_error(ctx, "database", "cannot record the drift report");
    }
    free(text);
    json_decref(report);
    return out;
}

static ops_result drift_check(ops_ctx *ctx)
{
    PGconn *c = ops_conn(ctx);
    const char *vid = json_string_value(json_object_get(ops_input(ctx), "version_id"));
    PGresult *r = vid ? db_exec(c,
                                "SELECT project_id, dataset, number, profile->'date_range'->>'min',"
                                " profile->'date_range'->>'max' FROM dataset_versions WHERE id ="
                                " $1::uuid AND state = 'ready'",
                                1, (const char *[]){vid}, NULL)
                      : NULL;
    if (!r || PQntuples(r) != 1) {
        PQclear(r);
        ops_set_error(ctx, "no_version", "the dataset version is not ready or no longer exists");
        return r || !vid ? OPS_FAIL : OPS_RETRY;
    }
    drift_job base;
    memset(&base, 0, sizeof base);
    snprintf(base.project, sizeof base.project, "%s", PQgetvalue(r, 0, 0));
    snprintf(base.dataset, sizeof base.dataset, "%s", PQgetvalue(r, 0, 1));
    snprintf(base.version_id, sizeof base.version_id, "%s", vid);
    base.number = (int)strtol(PQgetvalue(r, 0, 2), NULL, 10);
    int dates_ok =
        !parse_day(db_value(r, 0, 3), &base.first) && !parse_day(db_value(r, 0, 4), &base.last);
    PQclear(r);
    if (!dates_ok) {
        ops_set_error(ctx, "no_rows", "the version has no dated rows to compare");
        return OPS_FAIL;
    }
    /* Every production model trained on this dataset, with the version it trained on. */
    char default_threshold[32];
    snprintf(default_threshold, sizeof default_threshold, "%g", DRIFT_DEFAULT_PSI_THRESHOLD);
    r = db_exec(c,
                "SELECT a.model, a.version, rv.id::text, rv.number, rv.profile->'date_range'->>"
                "'min', rv.profile->'date_range'->>'max', coalesce(p.drift_psi_threshold, $4),"
                " coalesce(p.enabled AND p.drift_psi_threshold IS NOT NULL AND p.model = a.model,"
                " false) FROM model_aliases a JOIN model_versions mv ON mv.project_id ="
                " a.project_id AND mv.model = a.model AND mv.version = a.version JOIN runs r ON"
                " r.id = mv.run_id JOIN dataset_versions rv ON rv.id = mv.dataset_version_id LEFT"
                " JOIN retraining_policies p ON p.project_id = a.project_id WHERE a.project_id ="
                " $1 AND a.alias = 'production' AND r.dataset = $2 AND rv.id <> $3::uuid ORDER BY"
                " a.model",
                4, (const char *[]){base.project, base.dataset, vid, default_threshold}, NULL);
    if (!r) {
        ops_set_error(ctx, "database", "cannot read the production models");
        return OPS_RETRY;
    }
    json_t *reports = json_array();
    ops_result res = OPS_DONE;
    for (int i = 0; i < PQntuples(r) && res == OPS_DONE; i++) {
        drift_job j = base;
        snprintf(j.model, sizeof j.model, "%s", PQgetvalue(r, i, 0));
        j.model_version = (int)strtol(PQgetvalue(r, i, 1), NULL, 10);
        snprintf(j.ref_id, sizeof j.ref_id, "%s", PQgetvalue(r, i, 2));
        j.ref_number = (int)strtol(PQgetvalue(r, i, 3), NULL, 10);
        if (parse_day(db_value(r, i, 4), &j.ref_first) || parse_day(db_value(r, i, 5), &j.ref_last))
            continue;
        j.threshold = strtod(PQgetvalue(r, i, 6), NULL);
        j.retrain_on_drift = PQgetvalue(r, i, 7)[0] == 't';
        char step[120], what[200];
        snprintf(step, sizeof step, "report-%s", j.model);
        snprintf(what, sizeof what, "compare version %d with v%d, the training data of %s v%d",
                 j.number, j.ref_number, j.model, j.model_version);
        json_t *resp = NULL;
        json_t *req = json_pack("{s:s, s:i, s:i, s:f}", "model", j.model, "reference_version",
                                j.ref_number, "version", j.number, "threshold", j.threshold);
        res = ops_step(ctx, step, "local", what, req, step_drift, &j, &resp);
        json_decref(req);
        if (res == OPS_DONE && resp)
            json_array_append(reports, resp);
    }
    PQclear(r);
    if (res == OPS_DONE)
        ops_set_output(ctx, json_pack("{s:s, s:o}", "version_id", vid, "reports", reports));
    else
        json_decref(reports);
    return res;
}

/* ---- retrain.start ----------------------------------------------------------------------- */

static void retraining_failed(PGconn *c, const char *id, const char *project, json_t *error,
                              const char *why)
{
    char *e = json_dumps(error, JSON_COMPACT);
    char subject[200];
    snprintf(subject, sizeof subject, "projects/%s/retrainings/%s", project, id);
    PQclear(db_exec(c,
                    "UPDATE retrainings SET state = 'failed', error = $2::jsonb, updated_at = now()"
                    " WHERE id = $1::uuid",
                    2, (const char *[]){id, e}, NULL));
    audit(c, "system", "retraining-policy", "retraining.fail", subject, "failed", why);
    free(e);
}

static ops_result step_run(ops_ctx *ctx, json_t *request, json_t **response, void *arg)
{
    (void)request;
    const char *id = arg;
    PGconn *c = ops_conn(ctx);
    if (!exec_ok(c, "BEGIN", 0, NULL))
        return OPS_RETRY;
    PGresult *r = db_exec(
        c,
        "SELECT t.project_id, t.model, t.state, t.run_id::text, p.compute, r.dataset,"
        " r.algorithm, r.params::text, r.horizon_days, r.backtest_days, r.rolling_origins,"
        " r.seed, t.triggered_by FROM retrainings t JOIN retraining_policies p ON p.project_id ="
        " t.project_id JOIN model_versions mv ON mv.project_id = t.project_id AND mv.model ="
        " t.model AND mv.version = t.base_version JOIN runs r ON r.id = mv.run_id"
        " WHERE t.id = $1::uuid FOR UPDATE OF t",
        1, (const char *[]){id}, NULL);
    if (!r) {
        rollback(c);
        return OPS_RETRY;
    }
    if (PQntuples(r) != 1 || !strcmp(PQgetvalue(r, 0, 2), "failed")) {
        PQclear(r);
        rollback(c);
        ops_set_error(ctx, "no_retraining", "the retraining, its policy or its base model is gone");
        return OPS_FAIL;
    }
    if (!PQgetisnull(r, 0, 3)) { /* an earlier attempt created the run */
        *response = json_pack("{s:s}", "run_id", PQgetvalue(r, 0, 3));
        PQclear(r);
        return exec_ok(c, "COMMIT", 0, NULL) ? OPS_DONE : OPS_RETRY;
    }
    char project[80];
    snprintf(project, sizeof project, "%s", PQgetvalue(r, 0, 0));
    json_t *params = json_loads(PQgetvalue(r, 0, 7), 0, NULL);
    run_request q = {.project = project,
                     .experiment = "retraining",
                     .dataset = PQgetvalue(r, 0, 5),
                     .dataset_version = 0,
                     .compute = PQgetvalue(r, 0, 4),
                     .algorithm = PQgetvalue(r, 0, 6),
                     .params = params,
                     .horizon_days = strtoll(PQgetvalue(r, 0, 8), NULL, 10),
                     .backtest_days = strtoll(PQgetvalue(r, 0, 9), NULL, 10),
                     .rolling_origins = strtoll(PQgetvalue(r, 0, 10), NULL, 10),
                     .seed = strtoll(PQgetvalue(r, 0, 11), NULL, 10),
                     .created_by = PQgetvalue(r, 0, 12)};
    char run_id[40], run_op[37], field[80] = "", reason[240] = "", finish_op[37] = "";
    int rc = run_request_create(c, &q, run_id, run_op, field, sizeof field, reason, sizeof reason);
    char subject[200];
    snprintf(subject, sizeof subject, "projects/%s/retrainings/%s", project, id);
    const char *triggered_by = PQgetvalue(r, 0, 12);
    if (rc == RST_OK) {
        json_t *in = json_pack("{s:s}", "retraining_id", id);
        rc = ops_enqueue(c, "retrain.finish", subject, in, triggered_by, 5, finish_op);
        json_decref(in);
        if (rc == RST_OK &&
            !exec_ok(c,
                     "UPDATE retrainings SET run_id = $2::uuid, state = 'training', updated_at ="
                     " now() WHERE id = $1::uuid",
                     2, (const char *[]){id, run_id}))
            rc = RST_EDB;
        if (rc == RST_OK && !exec_ok(c, "COMMIT", 0, NULL))
            rc = RST_EDB;
    }
    json_decref(params);
    PQclear(r);
    if (rc == RST_EINVAL) {
        /* The data or the compute no longer allow the production model's settings. */
        rollback(c);
        char why[360];
        snprintf(why, sizeof why, "the run was refused: %s %s", field, reason);
        json_t *err =
            json_pack("{s:s, s:s, s:s}", "code", "run_refused", "field", field, "reason", reason);
        retraining_failed(c, id, project, err, why);
        json_decref(err);
        ops_set_error(ctx, "run_refused", why);
        return OPS_FAIL;
    }
    if (rc) {
        rollback(c);
        ops_set_error(ctx, "database", "cannot start the run");
        return OPS_RETRY;
    }
    *response = json_pack("{s:s, s:s, s:s}", "run_id", run_id, "run_operation_id", run_op,
                          "finish_operation_id", finish_op);
    return OPS_DONE;
}

static ops_result retrain_start(ops_ctx *ctx)
{
    const char *id = json_string_value(json_object_get(ops_input(ctx), "retraining_id"));
    if (!id) {
        ops_set_error(ctx, "bad_input", "no retraining_id");
        return OPS_FAIL;
    }
    json_t *res = NULL;
    ops_result r = ops_step(ctx, "run", "local",
                            "start a run with the production model's algorithm and parameters on"
                            " the latest ready data",
                            NULL, step_run, (void *)id, &res);
    if (r == OPS_DONE)
        ops_set_output(ctx, json_pack("{s:s, s:O?}", "retraining_id", id, "run_id",
                                      json_object_get(res, "run_id")));
    return r;
}

/* ---- retrain.finish ----------------------------------------------------------------------- */

typedef struct {
    char id[40], project[80], model[80], run_id[40], triggered_by[100], reason[16];
    int base_version, model_version, run_number;
    int auto_promote;
    char promotion_id[40];
} retraining;

static int load_retraining(PGconn *c, const char *id, retraining *t, char *run_state, size_t rslen,
                           double *age)
{
    PGresult *r = db_exec(c,
                          "SELECT t.project_id, t.model, t.run_id::text, t.triggered_by, t.reason,"
                          " t.base_version, coalesce(t.model_version, 0), t.auto_promote,"
                          " coalesce(t.promotion_id::text, ''), r.state, r.number,"
                          " extract(epoch FROM now() - r.queued_at) FROM retrainings t JOIN runs r"
                          " ON r.id = t.run_id WHERE t.id = $1::uuid",
                          1, (const char *[]){id}, NULL);
    if (!r || PQntuples(r) != 1) {
        PQclear(r);
        return r ? RST_ENOTFOUND : RST_EDB;
    }
    memset(t, 0, sizeof *t);
    snprintf(t->id, sizeof t->id, "%s", id);
    snprintf(t->project, sizeof t->project, "%s", PQgetvalue(r, 0, 0));
    snprintf(t->model, sizeof t->model, "%s", PQgetvalue(r, 0, 1));
    snprintf(t->run_id, sizeof t->run_id, "%s", PQgetvalue(r, 0, 2));
    snprintf(t->triggered_by, sizeof t->triggered_by, "%s", PQgetvalue(r, 0, 3));
    snprintf(t->reason, sizeof t->reason, "%s", PQgetvalue(r, 0, 4));
    t->base_version = (int)strtol(PQgetvalue(r, 0, 5), NULL, 10);
    t->model_version = (int)strtol(PQgetvalue(r, 0, 6), NULL, 10);
    t->auto_promote = PQgetvalue(r, 0, 7)[0] == 't';
    snprintf(t->promotion_id, sizeof t->promotion_id, "%s", PQgetvalue(r, 0, 8));
    snprintf(run_state, rslen, "%s", PQgetvalue(r, 0, 9));
    t->run_number = (int)strtol(PQgetvalue(r, 0, 10), NULL, 10);
    *age = strtod(PQgetvalue(r, 0, 11), NULL);
    PQclear(r);
    return RST_OK;
}

/* The completed run becomes the model's next version (once: a run is
 * registered once per model). Same row as POST .../models/{name}/versions. */
static ops_result step_register(ops_ctx *ctx, json_t *request, json_t **response, void *arg)
{
    (void)request;
    retraining *t = arg;
    PGconn *c = ops_conn(ctx);
    char desc[200];
    snprintf(desc, sizeof desc, "retrained (%s) from version %d", t->reason, t->base_version);
    PGresult *r = NULL;
    int ok = exec_ok(c, "BEGIN", 0, NULL) &&
             exec_ok(c, "SELECT 1 FROM models WHERE project_id = $1 AND name = $2 FOR UPDATE", 2,
                     (const char *[]){t->project, t->model}) &&
             exec_ok(c,
                     "WITH n AS (SELECT coalesce(max(version), 0) + 1 AS version FROM"
                     " model_versions WHERE project_id = $1 AND model = $2)"
                     " INSERT INTO model_versions(project_id, model, version, run_id,"
                     " dataset_version_id, algorithm, metrics, lineage, artifacts, description,"
                     " created_by) SELECT $1, $2, n.version, r.id, r.dataset_version_id,"
                     " r.algorithm, r.metrics, r.lineage, r.artifacts, $4, $5 FROM runs r, n"
                     " WHERE r.id = $3::uuid ON CONFLICT (project_id, model, run_id) DO NOTHING",
                     5, (const char *[]){t->project, t->model, t->run_id, desc, t->triggered_by});
    if (ok)
        r = db_exec(c,
                    "UPDATE retrainings t SET model_version = v.version, updated_at = now() FROM"
                    " model_versions v WHERE t.id = $1::uuid AND v.project_id = t.project_id AND"
                    " v.model = t.model AND v.run_id = t.run_id RETURNING v.version",
                    1, (const char *[]){t->id}, NULL);
    if (!r || PQntuples(r) != 1 || !exec_ok(c, "COMMIT", 0, NULL)) {
        PQclear(r);
        rollback(c);
        ops_set_error(ctx, "database", "cannot register the model version");
        return OPS_RETRY;
    }
    t->model_version = (int)strtol(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    *response = json_pack("{s:s, s:i}", "model", t->model, "version", t->model_version);
    return OPS_DONE;
}

/* Proposes the version for production, exactly as POST .../promotions does:
 * promotion.evaluate runs the gates, then it waits for a platform admin. */
static ops_result step_propose(ops_ctx *ctx, json_t *request, json_t **response, void *arg)
{
    (void)request;
    retraining *t = arg;
    PGconn *c = ops_conn(ctx);
    if (!exec_ok(c, "BEGIN", 0, NULL))
        return OPS_RETRY;
    PGresult *r = db_exec(c,
                          "SELECT coalesce(promotion_id::text, '') FROM retrainings WHERE id ="
                          " $1::uuid FOR UPDATE",
                          1, (const char *[]){t->id}, NULL);
    if (r && PQntuples(r) == 1 && PQgetvalue(r, 0, 0)[0]) {
        snprintf(t->promotion_id, sizeof t->promotion_id, "%s", PQgetvalue(r, 0, 0));
        PQclear(r);
        *response = json_pack("{s:s}", "promotion_id", t->promotion_id);
        return exec_ok(c, "COMMIT", 0, NULL) ? OPS_DONE : OPS_RETRY;
    }
    int ok = r && PQntuples(r) == 1;
    PQclear(r);
    r = NULL;
    char ver[16], why[240], op[37] = "", subject[240];
    snprintf(ver, sizeof ver, "%d", t->model_version);
    snprintf(why, sizeof why, "retraining (%s) of production version %d: run #%d", t->reason,
             t->base_version, t->run_number);
    if (ok)
        r = db_exec(c,
                    "INSERT INTO promotions(project_id, model, version, target, state, champion,"
                    " proposed_by, reason) VALUES ($1, $2, $3::int, 'production', 'evaluating',"
                    " (SELECT a.version FROM model_aliases a WHERE a.project_id = $1 AND a.model ="
                    " $2 AND a.alias = 'production'), $4, $5) RETURNING id::text",
                    5, (const char *[]){t->project, t->model, ver, t->triggered_by, why}, NULL);
    if (r) {
        snprintf(t->promotion_id, sizeof t->promotion_id, "%s", PQgetvalue(r, 0, 0));
        snprintf(subject, sizeof subject, "projects/%s/models/%s/promotions/%s", t->project,
                 t->model, t->promotion_id);
        json_t *in = json_pack("{s:s}", "promotion_id", t->promotion_id);
        ok = ops_enqueue(c, "promotion.evaluate", subject, in, t->triggered_by, 3, op) == RST_OK;
        json_decref(in);
        char note[300];
        snprintf(note, sizeof note, "version %d proposed for production; %s", t->model_version,
                 t->auto_promote ? "the project's policy approves it once its gates pass"
                                 : "it waits for a platform admin's approval");
        ok = ok &&
             exec_ok(c, "UPDATE promotions SET operation_id = $2::uuid WHERE id = $1::uuid", 2,
                     (const char *[]){t->promotion_id, op}) &&
             exec_ok(c,
                     "UPDATE retrainings SET promotion_id = $2::uuid, state = $3, updated_at ="
                     " now() WHERE id = $1::uuid",
                     3,
                     (const char *[]){t->id, t->promotion_id,
                                      t->auto_promote ? "proposed" : "completed"}) &&
             audit(c, t->triggered_by, "retraining-policy", "retraining.propose", subject,
                   "succeeded", note) == RST_OK;
    }
    PQclear(r);
    if (!r || !ok || !exec_ok(c, "COMMIT", 0, NULL)) {
        rollback(c);
        t->promotion_id[0] = '\0';
        ops_set_error(ctx, "database", "cannot propose the promotion");
        return OPS_RETRY;
    }
    *response = json_pack("{s:s, s:s}", "promotion_id", t->promotion_id, "operation_id", op);
    return OPS_DONE;
}

/* auto_promote_to_production: the policy approves a promotion whose gates
 * passed, if the policy still says so now; the approval names the admin who
 * granted it. */
static ops_result step_auto_approve(ops_ctx *ctx, json_t *request, json_t **response, void *arg)
{
    (void)request;
    retraining *t = arg;
    PGconn *c = ops_conn(ctx);
    char subject[240];
    snprintf(subject, sizeof subject, "projects/%s/models/%s/promotions/%s", t->project, t->model,
             t->promotion_id);
    if (!exec_ok(c, "BEGIN", 0, NULL))
        return OPS_RETRY;
    PGresult *r =
        db_exec(c,
                "SELECT auto_promote_to_production AND model = $2,"
                " coalesce(auto_promote_granted_by, ''), coalesce(to_char("
                "auto_promote_granted_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
                " '') FROM retraining_policies WHERE project_id = $1 FOR SHARE",
                2, (const char *[]){t->project, t->model}, NULL);
    int allowed = r && PQntuples(r) == 1 && PQgetvalue(r, 0, 0)[0] == 't';
    char granted_by[100] = "", granted_at[40] = "", decided_by[140], why[400];
    if (r && PQntuples(r) == 1) {
        snprintf(granted_by, sizeof granted_by, "%s", PQgetvalue(r, 0, 1));
        snprintf(granted_at, sizeof granted_at, "%s", PQgetvalue(r, 0, 2));
    }
    int ok = r != NULL;
    PQclear(r);
    r = NULL;
    char op[37] = "";
    const char *outcome = "skipped";
    if (ok && !allowed) {
        ok = audit(c, "system", "retraining-policy", "promotion.auto_approve", subject, "denied",
                   "auto-promotion was switched off after the trigger: the promotion waits for a"
                   " platform admin") == RST_OK;
    } else if (ok) {
        snprintf(decided_by, sizeof decided_by, "retraining-policy:%s", granted_by);
        snprintf(why, sizeof why,
                 "approved by the project's retraining policy: auto_promote_to_production"
                 " granted by %s at %s",
                 granted_by, granted_at);
        r = db_exec(c,
                    "UPDATE promotions SET state = 'approved', decided_by = $2, decided_at ="
                    " now(), updated_at = now() WHERE id = $1::uuid AND state ="
                    " 'pending_approval' RETURNING 1",
                    2, (const char *[]){t->promotion_id, decided_by}, NULL);
        ok = r != NULL;
        if (ok && PQntuples(r) == 1) {
            json_t *in = json_pack("{s:s}", "promotion_id", t->promotion_id);
            ok = ops_enqueue(c, "promotion.deploy", subject, in, decided_by, 5, op) == RST_OK &&
                 exec_ok(c, "UPDATE promotions SET operation_id = $2::uuid WHERE id = $1::uuid", 2,
                         (const char *[]){t->promotion_id, op}) &&
                 audit(c, "system", "retraining-policy", "promotion.auto_approve", subject,
                       "succeeded", why) == RST_OK;
            json_decref(in);
            outcome = "approved";
        }
        PQclear(r);
    }
    ok = ok && exec_ok(c,
                       "UPDATE retrainings SET state = 'completed', updated_at = now() WHERE id ="
                       " $1::uuid",
                       1, (const char *[]){t->id});
    if (!ok || !exec_ok(c, "COMMIT", 0, NULL)) {
        rollback(c);
        ops_set_error(ctx, "database", "cannot approve the promotion");
        return OPS_RETRY;
    }
    *response =
        json_pack("{s:s, s:s?}", "outcome", outcome, "deploy_operation_id", op[0] ? op : NULL);
    return OPS_DONE;
}

static ops_result retrain_finish(ops_ctx *ctx)
{
    PGconn *c = ops_conn(ctx);
    const char *id = json_string_value(json_object_get(ops_input(ctx), "retraining_id"));
    retraining t;
    char run_state[16];
    double age = 0;
    int rc = id ? load_retraining(c, id, &t, run_state, sizeof run_state, &age) : RST_ENOTFOUND;
    if (rc) {
        ops_set_error(ctx, "no_retraining", "the retraining or its run no longer exists");
        return rc == RST_EDB ? OPS_RETRY : OPS_FAIL;
    }
    /* Polling rather than a hook in the run executors: the same code serves
     * local and Azure ML runs, and a run that ends while no worker listens
     * is still seen. The interval grows with the run's age (a tenth of it,
     * 1-60 s), so a long run costs a few queries an hour. */
    if (!strcmp(run_state, "queued") || !strcmp(run_state, "preparing") ||
        !strcmp(run_state, "running")) {
        ops_set_wait_ms(ctx, (long)fmin(60000, fmax(1000, age * 100)));
        return OPS_WAIT;
    }
    if (strcmp(run_state, "completed")) {
        char why[200];
        snprintf(why, sizeof why, "run #%d %s: nothing to propose", t.run_number, run_state);
        json_t *err = json_pack("{s:s, s:s, s:s}", "code", "run_not_completed", "run_id", t.run_id,
                                "run_state", run_state);
        retraining_failed(c, t.id, t.project, err, why);
        json_decref(err);
        ops_set_error(ctx, "run_not_completed", why);
        return OPS_FAIL;
    }
    ops_result r = ops_step(ctx, "register", "local", "register the run as a model version", NULL,
                            step_register, &t, NULL);
    if (r == OPS_DONE)
        r = ops_step(ctx, "propose", "local", "propose the version for production", NULL,
                     step_propose, &t, NULL);
    if (r != OPS_DONE)
        return r;
    /* Steps already done returned stored responses: re-read what they did. */
    rc = load_retraining(c, id, &t, run_state, sizeof run_state, &age);
    if (rc) {
        ops_set_error(ctx, "database", "cannot read the retraining");
        return OPS_RETRY;
    }
    if (t.auto_promote) {
        PGresult *p = db_exec(c, "SELECT state FROM promotions WHERE id = $1::uuid", 1,
                              (const char *[]){t.promotion_id}, NULL);
        if (!p || PQntuples(p) != 1) {
            PQclear(p);
            ops_set_error(ctx, "database", "cannot read the promotion");
            return OPS_RETRY;
        }
        char state[24];
        snprintf(state, sizeof state, "%s", PQgetvalue(p, 0, 0));
        PQclear(p);
        if (!strcmp(state, "evaluating")) {
            ops_set_wait_ms(ctx, 1000);
            return OPS_WAIT;
        }
        if (!strcmp(state, "pending_approval"))
            r = ops_step(ctx, "auto-approve", "local",
                         "approve the promotion as the project's policy says", NULL,
                         step_auto_approve, &t, NULL);
        else
            PQclear(db_exec(c,
                            "UPDATE retrainings SET state = 'completed', updated_at = now()"
                            " WHERE id = $1::uuid AND state = 'proposed'",
                            1, (const char *[]){t.id}, NULL));
        if (r != OPS_DONE)
            return r;
    }
    ops_set_output(ctx,
                   json_pack("{s:s, s:s, s:i, s:s}", "retraining_id", t.id, "run_id", t.run_id,
                             "model_version", t.model_version, "promotion_id", t.promotion_id));
    return OPS_DONE;
}

void retrain_register(artifact_store *s)
{
    store = s;
    ops_register("drift.check", drift_check);
    ops_register("retrain.start", retrain_start);
    ops_register("retrain.finish", retrain_finish);
    ops_register_periodic(schedule_tick);
}
