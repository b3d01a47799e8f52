/* Retraining policies (one per project: schedule, thresholds, what to retrain
 * where, whether its promotions skip the admin's approval), manual triggers,
 * the retrainings they started, and drift reports. */
#include "api.h"
#include "http/app.h"
#include "identity/access.h"
#include "identity/policy.h"
#include "retraining/retrain.h"
#include "lib/util.h"
#include "http/validate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RETRAINING_JSON                                                                            \
    "json_build_object('id', t.id, 'project', t.project_id, 'reason', t.reason, 'detail',"         \
    " t.detail, 'state', t.state, 'model', t.model, 'base_version', t.base_version, 'run_id',"     \
    " t.run_id, 'model_version', t.model_version, 'promotion_id', t.promotion_id,"                 \
    " 'auto_promote', t.auto_promote, 'error', t.error, 'triggered_by', t.triggered_by,"           \
    " 'operation_id', t.operation_id, 'created_at', t.created_at, 'updated_at', t.updated_at)"

#define POLICY_JSON                                                                                \
    "json_build_object('project', p.project_id, 'enabled', p.enabled, 'cron', p.cron,"             \
    " 'timezone', p.timezone, 'accuracy_wape_threshold', p.accuracy_wape_threshold,"               \
    " 'drift_psi_threshold', p.drift_psi_threshold, 'model', p.model, 'compute', p.compute,"       \
    " 'auto_promote_to_production', p.auto_promote_to_production, 'auto_promote_granted_by',"      \
    " p.auto_promote_granted_by, 'auto_promote_granted_at', p.auto_promote_granted_at,"            \
    " 'next_fire_at', p.next_fire_at, 'last_fired_at', p.last_fired_at, 'last_reason',"            \
    " p.last_reason, 'last_retraining', (SELECT " RETRAINING_JSON " FROM retrainings t WHERE"      \
    " t.project_id = p.project_id ORDER BY t.seq DESC LIMIT 1), 'created_by', p.created_by,"       \
    " 'updated_by', p.updated_by, 'created_at', p.created_at, 'updated_at', p.updated_at,"         \
    " 'version', p.version)"

#define DRIFT_JSON                                                                                 \
    "json_build_object('id', d.id, 'project', d.project_id, 'dataset', d.dataset,"                 \
    " 'dataset_version', d.dataset_version, 'reference_version', d.reference_version, 'model',"    \
    " d.model, 'model_version', d.model_version, 'max_psi', d.max_psi, 'max_psi_feature',"         \
    " d.report->>'max_psi_feature', 'threshold', d.threshold, 'drifted', d.drifted,"               \
    " 'shifted_series', (d.report->'level_shift'->>'shifted')::int, 'retraining_id',"              \
    " d.retraining_id, 'operation_id', d.operation_id, 'created_at', d.created_at)"

static void rollback(PGconn *c)
{
    PQclear(PQexec(c, "ROLLBACK"));
}

static int access_policy(http_req *req, PGconn *c, policy_action act, const char *project)
{
    return policy_answer(req, policy_check(c, access_caller(req), act, project), "retraining");
}

static void reply_policy(http_req *req, PGconn *c, const char *project, int status)
{
    PGresult *r = db_exec(c,
                          "SELECT " POLICY_JSON "::text, p.version FROM retraining_policies p"
                          " WHERE p.project_id = $1",
                          1, (const char *[]){project}, NULL);
    if (r && PQntuples(r) == 0)
        http_problem(req, 404, "not-found", "Not found", NULL,
                     "project %s has no retraining policy: PUT one", project);
    else {
        char loc[200];
        snprintf(loc, sizeof loc, "/api/v1/projects/%s/retraining-policy", project);
        api_reply_versioned(req, r, status, loc);
    }
    PQclear(r);
}

void api_retraining_policy_show(http_req *req)
{
    const char *project = http_param(req, "project");
    PGconn *c = api_conn(req);
    if (!c)
        return;
    if (!access_policy(req, c, ACT_COMPUTE_READ, project))
        reply_policy(req, c, project, 200);
    api_release(req, c);
}

/* A threshold that may be null: 1 and *out when a number, 0 and *is_null when
 * null or absent (absent keeps *is_null as given). */
static void nullable_number(validator *v, json_t *body, const char *field, double max, double *out,
                            int *is_null)
{
    json_t *j = json_object_get(body, field);
    if (!j)
        return;
    if (json_is_null(j)) {
        *is_null = 1;
        return;
    }
    *is_null = 0;
    if (!json_is_number(j) || json_number_value(j) <= 0 || json_number_value(j) > max) {
        char why[80];
        snprintf(why, sizeof why, "must be null or a number above 0 and at most %g", max);
        v_error(v, field, why);
        return;
    }
    *out = json_number_value(j);
}

static int boolean(validator *v, json_t *body, const char *field, int required, int *out)
{
    json_t *j = json_object_get(body, field);
    if (!j) {
        if (required)
            v_error(v, field, "is required");
        return 0;
    }
    if (!json_is_boolean(j)) {
        v_error(v, field, "must be true or false");
        return 0;
    }
    *out = json_is_true(j);
    return 1;
}

/* PUT: the whole policy. Read-only members sent back from a GET are ignored.
 * size: each member checked where it is read, then one transaction (lock, If-Match, the
 * auto-promotion grant rule, upsert, audit); route-declared access (review 2026-12 §6.3) and a
 * request-scoped connection will shorten it. */
void api_retraining_policy_put(http_req *req)
{
    caller *who = access_caller(req);
    const char *project = http_param(req, "project");
    json_t *body = NULL;
    char subject[160];
    snprintf(subject, sizeof subject, "projects/%s/retraining-policy", project);
    access_set_subject(req, subject);
    PGconn *c = api_conn(req);
    if (!c)
        return;
    if (access_policy(req, c, ACT_COMPUTE_WRITE, project) || http_read_json(req, &body))
        goto out;
    validator v;
    v_init(&v);
    static const char *const allowed[] = {
        "enabled", "cron", "timezone", "accuracy_wape_threshold", "drift_psi_threshold", "model",
        "compute", "auto_promote_to_production",
        /* read-only */
        "project", "next_fire_at", "last_fired_at", "last_reason", "last_retraining",
        "auto_promote_granted_by", "auto_promote_granted_at", "created_by", "updated_by",
        "created_at", "updated_at", "version", NULL};
    v_only(&v, body, allowed);
    int enabled = 0, auto_promote = 0;
    boolean(&v, body, "enabled", 1, &enabled);
    boolean(&v, body, "auto_promote_to_production", 0, &auto_promote);
    const char *cron = v_string(&v, body, "cron", 0, 200, NULL);
    const char *tz = v_string(&v, body, "timezone", 0, 63, v_check_printable);
    const char *model = v_string(&v, body, "model", 1, 63, v_check_slug);
    const char *compute = v_string(&v, body, "compute", 1, 16, v_check_printable);
    double acc = 0, drift = 0.2;
    int acc_null = 1, drift_null = 0;
    nullable_number(&v, body, "accuracy_wape_threshold", 10, &acc, &acc_null);
    nullable_number(&v, body, "drift_psi_threshold", 100, &drift, &drift_null);
    if (v_finish(&v, req))
        goto out;
    if (!tz)
        tz = "UTC";
    int64_t next = 0;
    const char *field = NULL;
    char err[300] = "";
    if (retrain_schedule_next(cron, tz, (int64_t)time(NULL), &next, &field, err, sizeof err)) {
        http_problem_field(req, field, err);
        goto out;
    }
    PGresult *r = db_exec(c,
                          "SELECT (SELECT count(*) FROM models WHERE project_id = $1 AND name ="
                          " $2), (SELECT count(*) FROM compute_targets WHERE project_id = $1 AND"
                          " name = $3 AND state <> 'deleted')",
                          3, (const char *[]){project, model, compute}, NULL);
    if (!r) {
        http_problem_unavailable(req);
        goto out;
    }
    int has_model = strcmp(PQgetvalue(r, 0, 0), "0"),
        has_compute = strcmp(PQgetvalue(r, 0, 1), "0");
    PQclear(r);
    if (!has_model || !has_compute) {
        http_problem_field(req, has_model ? "compute" : "model",
                           has_model ? "no such compute in this project"
                                     : "no such model in this project");
        goto out;
    }
    r = db_exec(c, "BEGIN", 0, NULL, NULL);
    PQclear(r);
    r = db_exec(c,
                "SELECT version, auto_promote_to_production, model, auto_promote_granted_by"
                " FROM retraining_policies WHERE project_id = $1 FOR UPDATE",
                1, (const char *[]){project}, NULL);
    if (!r) {
        rollback(c);
        http_problem_unavailable(req);
        goto out;
    }
    int exists = PQntuples(r) == 1;
    int kept_grant = exists && PQgetvalue(r, 0, 1)[0] == 't' && !strcmp(PQgetvalue(r, 0, 2), model);
    char version[24] = "0", granted_by[100] = "";
    if (exists) {
        snprintf(version, sizeof version, "%s", PQgetvalue(r, 0, 0));
        snprintf(granted_by, sizeof granted_by, "%s", db_value(r, 0, 3) ? PQgetvalue(r, 0, 3) : "");
    }
    PQclear(r);
    if (exists && api_if_match_fails(req, version)) {
        rollback(c);
        goto out;
    }
    /* Switching auto-promotion on hands a platform admin's approval to the
     * policy: only an admin may do it, and their name stays with it. A later
     * edit by a data scientist keeps it only for the same model. */
    int admin = policy_check(c, who, ACT_PROJECT_APPROVE, project) == POLICY_ALLOW;
    if (auto_promote && !admin && !kept_grant) {
        rollback(c);
        who->denied = 1;
        snprintf(who->deny_reason, sizeof who->deny_reason,
                 "forbidden: auto_promote_to_production needs a platform admin");
        http_problem(req, 403, "forbidden", "Forbidden",
                     json_pack("[{s:s, s:s}]", "field", "auto_promote_to_production", "reason",
                               "skips a platform admin's approval of production promotions:"
                               " only a platform admin may switch it on"),
                     "only a platform admin may switch auto_promote_to_production on");
        goto out;
    }
    const char *grant = !auto_promote ? NULL : admin && !kept_grant ? who->id.oid : granted_by;
    char nexts[32], accs[32], drifts[32];
    snprintf(nexts, sizeof nexts, "%lld", (long long)(enabled && cron ? next : 0));
    snprintf(accs, sizeof accs, "%.6g", acc);
    snprintf(drifts, sizeof drifts, "%.6g", drift);
    const char *p[] = {project,
                       enabled ? "true" : "false",
                       cron,
                       tz,
                       acc_null ? NULL : accs,
                       drift_null ? NULL : drifts,
                       model,
                       compute,
                       auto_promote ? "true" : "false",
                       grant,
                       nexts,
                       who->id.oid};
    r = db_exec(c,
                "INSERT INTO retraining_policies AS p(project_id, enabled, cron, timezone,"
                " accuracy_wape_threshold, drift_psi_threshold, model, compute,"
                " auto_promote_to_production, auto_promote_granted_by, auto_promote_granted_at,"
                " next_fire_at, created_by, updated_by) VALUES ($1, $2::bool, $3, $4,"
                " $5::float8, $6::float8, $7, $8, $9::bool, $10, CASE WHEN $10::text IS NOT NULL"
                " THEN now() END, CASE WHEN $11::bigint > 0 THEN to_timestamp($11::bigint) END,"
                " $12, $12) ON CONFLICT (project_id) DO UPDATE SET enabled = EXCLUDED.enabled,"
                " cron = EXCLUDED.cron, timezone = EXCLUDED.timezone, accuracy_wape_threshold ="
                " EXCLUDED.accuracy_wape_threshold, drift_psi_threshold ="
                " EXCLUDED.drift_psi_threshold, model = EXCLUDED.model, compute ="
                " EXCLUDED.compute, auto_promote_to_production ="
                " EXCLUDED.auto_promote_to_production, auto_promote_granted_by ="
                " EXCLUDED.auto_promote_granted_by, auto_promote_granted_at = CASE WHEN"
                " EXCLUDED.auto_promote_granted_by IS NOT DISTINCT FROM"
                " p.auto_promote_granted_by THEN p.auto_promote_granted_at ELSE"
                " EXCLUDED.auto_promote_granted_at END, next_fire_at = EXCLUDED.next_fire_at,"
                " updated_by = EXCLUDED.updated_by, updated_at = now(), version = p.version + 1"
                " RETURNING p.version",
                12, p, NULL);
    if (r) {
        /* The change itself, beyond the request line the access layer records. */
        char summary[600];
        snprintf(summary, sizeof summary,
                 "enabled=%s cron=%s timezone=%s accuracy_wape_threshold=%s"
                 " drift_psi_threshold=%s model=%s compute=%s auto_promote_to_production=%s%s%s",
                 enabled ? "true" : "false", cron ? cron : "null", tz, acc_null ? "null" : accs,
                 drift_null ? "null" : drifts, model, compute, auto_promote ? "true" : "false",
                 grant ? " granted_by=" : "", grant ? grant : "");
        access_audit_request(req, c, who, "retraining.policy.update", subject, "succeeded",
                             exists ? 200 : 201, summary);
        PQclear(r);
        r = db_exec(c, "COMMIT", 0, NULL, NULL);
    }
    if (!r) {
        rollback(c);
        http_problem_unavailable(req);
        goto out;
    }
    PQclear(r);
    reply_policy(req, c, project, exists ? 200 : 201);
out:
    json_decref(body);
    api_release(req, c);
}

/* POST .../retraining-policy/trigger: retrain now. */
void api_retraining_trigger(http_req *req)
{
    caller *who = access_caller(req);
    const char *project = http_param(req, "project");
    char subject[160];
    snprintf(subject, sizeof subject, "projects/%s/retraining-policy", project);
    access_set_subject(req, subject);
    PGconn *c = api_conn(req);
    if (!c)
        return;
    if (access_policy(req, c, ACT_COMPUTE_WRITE, project))
        goto out;
    char id[37], err[300] = "";
    int rc = retrain_fire(c, project, "manual", who->id.oid, NULL, id, err, sizeof err);
    if (rc == RST_ENOTFOUND)
        http_problem(req, 404, "not-found", "Not found", NULL, "%s", err);
    else if (rc == RST_EINVAL)
        http_problem(req, 409, "conflict", "No production model", NULL, "%s", err);
    else if (rc == RST_ECONFLICT)
        http_problem(req, 409, "conflict", "Already retraining", NULL, "%s", err);
    else if (rc)
        http_problem_unavailable(req);
    if (rc)
        goto out;
    PGresult *r = db_exec(c,
                          "SELECT " RETRAINING_JSON "::text, t.operation_id::text FROM"
                          " retrainings t WHERE t.id = $1::uuid",
                          1, (const char *[]){id}, NULL);
    if (r && PQntuples(r) == 1) {
        char loc[80];
        snprintf(loc, sizeof loc, "/api/v1/operations/%s", PQgetvalue(r, 0, 1));
        http_add_header(req, "Location", loc);
        http_reply_bytes(req, 202, "application/json", PQgetvalue(r, 0, 0),
                         (size_t)PQgetlength(r, 0, 0));
    } else {
        http_problem_unavailable(req);
    }
    PQclear(r);
out:
    api_release(req, c);
}

/* Reads ?cursor= (a positive integer) into cur ("" when absent). */
static int cursor_param(http_req *req, char *cur, size_t len)
{
    long n;
    int h = http_query(req, "cursor", cur, len);
    if (h == -1) {
        cur[0] = '\0';
        return 0;
    }
    if (h == -2 || parse_long(cur, 1, 9000000000000000000L, &n)) {
        http_problem_field(req, "cursor", "is not valid here");
        return 1;
    }
    return 0;
}

void api_retrainings_list(http_req *req)
{
    const char *project = http_param(req, "project");
    long limit;
    char cur[24], lim[24];
    if (api_limit(req, &limit) || cursor_param(req, cur, sizeof cur))
        return;
    snprintf(lim, sizeof lim, "%ld", limit + 1);
    PGconn *c = api_conn(req);
    if (!c)
        return;
    if (!access_policy(req, c, ACT_COMPUTE_READ, project)) {
        PGresult *r = db_exec(c,
                              "SELECT t.seq::text, " RETRAINING_JSON "::text FROM retrainings t"
                              " WHERE t.project_id = $1 AND ($2::bigint IS NULL OR t.seq <"
                              " $2::bigint) ORDER BY t.seq DESC LIMIT $3::int",
                              3, (const char *[]){project, cur[0] ? cur : NULL, lim}, NULL);
        if (r)
            api_reply_page(req, r, 0, 1, limit);
        else
            http_problem_unavailable(req);
        PQclear(r);
    }
    api_release(req, c);
}

void api_retrainings_show(http_req *req)
{
    const char *project = http_param(req, "project");
    PGconn *c = api_conn(req);
    if (!c)
        return;
    if (!access_policy(req, c, ACT_COMPUTE_READ, project)) {
        PGresult *r = db_exec(c,
                              "SELECT " RETRAINING_JSON "::text FROM retrainings t WHERE"
                              " t.project_id = $1 AND t.id::text = $2",
                              2, (const char *[]){project, http_param(req, "id")}, NULL);
        if (!r)
            http_problem_unavailable(req);
        else if (PQntuples(r) == 0)
            http_problem(req, 404, "not-found", "Not found", NULL, "no retraining %s here",
                         http_param(req, "id"));
        else
            http_reply_bytes(req, 200, "application/json", PQgetvalue(r, 0, 0),
                             (size_t)PQgetlength(r, 0, 0));
        PQclear(r);
    }
    api_release(req, c);
}

/* GET .../drift-reports?drifted=&dataset=: newest first, summaries only. */
void api_drift_reports_list(http_req *req)
{
    const char *project = http_param(req, "project");
    long limit;
    char cur[24], lim[24], drifted[8], dataset[64];
    int hd = http_query(req, "drifted", drifted, sizeof drifted);
    int hs = http_query(req, "dataset", dataset, sizeof dataset);
    if (api_limit(req, &limit) || cursor_param(req, cur, sizeof cur))
        return;
    if (hd == -2 || (hd >= 0 && strcmp(drifted, "true") && strcmp(drifted, "false"))) {
        http_problem_field(req, "drifted", "must be true or false");
        return;
    }
    if (hs == -2) {
        http_problem_field(req, "dataset", "is too long");
        return;
    }
    snprintf(lim, sizeof lim, "%ld", limit + 1);
    PGconn *c = api_conn(req);
    if (!c)
        return;
    if (!access_policy(req, c, ACT_COMPUTE_READ, project)) {
        PGresult *r =
            db_exec(c,
                    "SELECT d.seq::text, " DRIFT_JSON "::text FROM drift_reports d"
                    " WHERE d.project_id = $1 AND ($2::bigint IS NULL OR d.seq <"
                    " $2::bigint) AND ($3::bool IS NULL OR d.drifted = $3::bool) AND"
                    " ($4::text IS NULL OR d.dataset = $4) ORDER BY d.seq DESC"
                    " LIMIT $5::int",
                    5,
                    (const char *[]){project, cur[0] ? cur : NULL, hd >= 0 ? drifted : NULL,
                                     hs >= 0 ? dataset : NULL, lim},
                    NULL);
        if (r)
            api_reply_page(req, r, 0, 1, limit);
        else
            http_problem_unavailable(req);
        PQclear(r);
    }
    api_release(req, c);
}

/* GET .../drift-reports/{id}: the summary and the whole report. */
void api_drift_reports_show(http_req *req)
{
    const char *project = http_param(req, "project");
    PGconn *c = api_conn(req);
    if (!c)
        return;
    if (!access_policy(req, c, ACT_COMPUTE_READ, project)) {
        PGresult *r = db_exec(c,
                              "SELECT (" DRIFT_JSON "::jsonb || jsonb_build_object('report',"
                              " d.report))::text FROM drift_reports d WHERE d.project_id = $1 AND"
                              " d.id::text = $2",
                              2, (const char *[]){project, http_param(req, "id")}, NULL);
        if (!r)
            http_problem_unavailable(req);
        else if (PQntuples(r) == 0)
            http_problem(req, 404, "not-found", "Not found", NULL, "no drift report %s here",
                         http_param(req, "id"));
        else
            http_reply_bytes(req, 200, "application/json", PQgetvalue(r, 0, 0),
                             (size_t)PQgetlength(r, 0, 0));
        PQclear(r);
    }
    api_release(req, c);
}
