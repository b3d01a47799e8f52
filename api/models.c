/* The model registry: models, immutable versions registered from completed
 * runs, the aliases staging and production, promotions (gated by an
 * operation, approved by a second admin for production) and rollback. */
#include "api.h"
#include "http/app.h"
#include "models/model_cache.h"
#include "ops/ops.h"
#include "identity/access.h"
#include "identity/policy.h"
#include "lib/util.h"
#include "http/validate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MODEL_JSON                                                                                 \
    "json_build_object('project', m.project_id, 'name', m.name, 'description', m.description,"    \
    " 'created_by', m.created_by, 'created_at', m.created_at, 'latest_version', (SELECT"           \
    " max(v.version) FROM model_versions v WHERE v.project_id = m.project_id AND v.model ="        \
    " m.name), 'aliases', (SELECT coalesce(json_object_agg(a.alias, a.version), '{}') FROM"        \
    " model_aliases a WHERE a.project_id = m.project_id AND a.model = m.name))"

/* A version's copy of its run's artifacts and lineage, shown as runs.c shows them: the API
 * URL of each artifact, never the store's path, and the input as a file name. */
#define VERSION_ARTIFACTS                                                                          \
    "(SELECT coalesce(jsonb_agg(a || jsonb_build_object('uri', '/api/v1/runs/' || v.run_id ||"     \
    " '/artifacts/' || (a->>'name')) ORDER BY o), '[]'::jsonb) FROM"                               \
    " jsonb_array_elements(coalesce(v.artifacts, '[]'::jsonb)) WITH ORDINALITY AS x(a, o))"
#define VERSION_LINEAGE                                                                            \
    "CASE WHEN jsonb_typeof(v.lineage->'input') = 'string' THEN jsonb_set(v.lineage, '{input}',"   \
    " to_jsonb(regexp_replace(v.lineage->>'input', '^.*/', ''))) ELSE v.lineage END"

#define VERSION_JSON                                                                               \
    "json_build_object('id', v.id, 'project', v.project_id, 'model', v.model, 'version',"          \
    " v.version, 'run_id', v.run_id, 'dataset_version_id', v.dataset_version_id, 'algorithm',"     \
    " v.algorithm, 'metrics', v.metrics, 'lineage', " VERSION_LINEAGE                              \
    ", 'artifacts', " VERSION_ARTIFACTS ","                                                        \
    " 'description', v.description, 'archived', v.archived_at IS NOT NULL, 'archived_at',"         \
    " v.archived_at, 'aliases', (SELECT coalesce(json_agg(a.alias ORDER BY a.alias), '[]') FROM"   \
    " model_aliases a WHERE a.project_id = v.project_id AND a.model = v.model AND a.version ="     \
    " v.version), 'created_by', v.created_by, 'created_at', v.created_at)"

#define PROMOTION_JSON                                                                             \
    "json_build_object('id', p.id, 'project', p.project_id, 'model', p.model, 'version',"          \
    " p.version, 'target', p.target, 'state', p.state, 'gates', p.gates, 'champion',"             \
    " p.champion, 'proposed_by', p.proposed_by, 'decided_by', p.decided_by, 'decided_at',"        \
    " p.decided_at, 'reason', p.reason, 'deployment', p.deployment, 'error', p.error,"            \
    " 'operation_id', p.operation_id, 'created_at', p.created_at, 'updated_at', p.updated_at)"

static void rollback_tx(PGconn *c)
{
    PQclear(PQexec(c, "ROLLBACK"));
}

/* Replies the first column of r's first row as JSON (404 naming what when
 * there is none). Clears r. */
static void reply_row(http_req *req, PGresult *r, int status, const char *what)
{
    if (!r)
        http_problem_unavailable(req);
    else if (PQntuples(r) == 0)
        http_problem(req, 404, "not-found", "Not found", NULL, "no %s here", what);
    else
        http_reply_bytes(req, status, "application/json", PQgetvalue(r, 0, 0),
                         (size_t)PQgetlength(r, 0, 0));
    PQclear(r);
}

static int access_models(http_req *req, PGconn *c, policy_action act, const char *project)
{
    return policy_answer(req, policy_check(c, access_caller(req), act, project), "models");
}

void api_models_create(http_req *req)
{
    caller *who = access_caller(req);
    const char *project = http_param(req, "project");
    json_t *body = NULL;
    PGconn *c = api_conn(req);
    if (!c)
        return;
    if (access_models(req, c, ACT_COMPUTE_WRITE, project) || http_read_json(req, &body))
        goto out;
    validator v;
    v_init(&v);
    static const char *const allowed[] = {"name", "description", NULL};
    v_only(&v, body, allowed);
    const char *name = v_string(&v, body, "name", 1, 63, v_check_slug);
    const char *desc = v_string(&v, body, "description", 0, 2000, NULL);
    if (v_finish(&v, req))
        goto out;
    char subject[160], state[6];
    snprintf(subject, sizeof subject, "projects/%s/models/%s", project, name);
    access_set_subject(req, subject);
    PGresult *r = db_exec(c,
                          "INSERT INTO models AS m(project_id, name, description, created_by)"
                          " VALUES ($1, $2, $3, $4) RETURNING " MODEL_JSON "::text",
                          4, (const char *[]){project, name, desc ? desc : "", who->id.oid},
                          state);
    if (!r && !strcmp(state, "23505"))
        http_problem(req, 409, "conflict", "Already exists", NULL, "model %s exists", name);
    else
        reply_row(req, r, 201, "model");
out:
    json_decref(body);
    api_release(req, c);
}

void api_models_list(http_req *req)
{
    const char *project = http_param(req, "project");
    PGconn *c = api_conn(req);
    if (!c)
        return;
    if (!access_models(req, c, ACT_COMPUTE_READ, project))
        reply_row(req,
                  db_exec(c,
                          "SELECT json_build_object('items', coalesce(json_agg(" MODEL_JSON
                          " ORDER BY m.name), '[]'))::text FROM models m WHERE m.project_id = $1",
                          1, (const char *[]){project}, NULL),
                  200, "models");
    api_release(req, c);
}

void api_models_show(http_req *req)
{
    const char *project = http_param(req, "project");
    PGconn *c = api_conn(req);
    if (!c)
        return;
    if (!access_models(req, c, ACT_COMPUTE_READ, project))
        reply_row(req,
                  db_exec(c,
                          "SELECT " MODEL_JSON "::text FROM models m WHERE m.project_id = $1"
                          " AND m.name = $2",
                          2, (const char *[]){project, http_param(req, "name")}, NULL),
                  200, "model");
    api_release(req, c);
}

/* POST .../models/{name}/versions {run_id}: a completed run of the project
 * becomes the next version, with its metrics, artifacts and lineage. */
void api_model_versions_create(http_req *req)
{
    caller *who = access_caller(req);
    const char *project = http_param(req, "project"), *model = http_param(req, "name");
    json_t *body = NULL;
    PGconn *c = api_conn(req);
    if (!c)
        return;
    if (access_models(req, c, ACT_COMPUTE_WRITE, project) || http_read_json(req, &body))
        goto out;
    validator v;
    v_init(&v);
    static const char *const allowed[] = {"run_id", "description", NULL};
    v_only(&v, body, allowed);
    const char *run = v_string(&v, body, "run_id", 1, 36, v_check_printable);
    const char *desc = v_string(&v, body, "description", 0, 2000, NULL);
    if (v_finish(&v, req))
        goto out;
    PGresult *r = db_exec(c, "SELECT state FROM runs WHERE id::text = $1 AND project_id = $2", 2,
                          (const char *[]){run, project}, NULL);
    const char *bad = !r                   ? NULL
                      : PQntuples(r) == 0 ? "no such run in this project"
                      : strcmp(PQgetvalue(r, 0, 0), "completed")
                          ? "the run is not completed: only completed runs become models"
                          : NULL;
    PQclear(r);
    if (!r) {
        http_problem_unavailable(req);
        goto out;
    }
    if (bad) {
        http_problem_field(req, "run_id", bad);
        goto out;
    }
    r = db_exec(c, "SELECT 1 FROM models WHERE project_id = $1 AND name = $2 FOR UPDATE", 2,
                (const char *[]){project, model}, NULL);
    int exists = r && PQntuples(r) == 1;
    PQclear(r);
    if (!exists) {
        http_problem(req, 404, "not-found", "Not found", NULL,
                     "no model %s: create it with POST /api/v1/projects/%s/models", model,
                     project);
        goto out;
    }
    char state[6];
    r = db_exec(c,
                "WITH n AS (SELECT coalesce(max(version), 0) + 1 AS version FROM model_versions"
                " WHERE project_id = $1 AND model = $2)"
                " INSERT INTO model_versions AS v(project_id, model, version, run_id,"
                " dataset_version_id, algorithm, metrics, lineage, artifacts, description,"
                " created_by) SELECT $1, $2, n.version, r.id, r.dataset_version_id, r.algorithm,"
                " r.metrics, r.lineage, r.artifacts, $4, $5 FROM runs r, n"
                " WHERE r.id::text = $3 RETURNING " VERSION_JSON "::text, v.version",
                5, (const char *[]){project, model, run, desc ? desc : "", who->id.oid}, state);
    if (!r && !strcmp(state, "23505")) {
        http_problem(req, 409, "conflict", "Already registered", NULL,
                     "run %s is already a version of model %s", run, model);
        goto out;
    }
    if (r && PQntuples(r) == 1) {
        char subject[200];
        snprintf(subject, sizeof subject, "projects/%s/models/%s/versions/%s", project, model,
                 PQgetvalue(r, 0, 1));
        access_set_subject(req, subject);
    }
    reply_row(req, r, 201, "run");
out:
    json_decref(body);
    api_release(req, c);
}

void api_model_versions_list(http_req *req)
{
    const char *project = http_param(req, "project");
    PGconn *c = api_conn(req);
    if (!c)
        return;
    if (!access_models(req, c, ACT_COMPUTE_READ, project))
        reply_row(req,
                  db_exec(c,
                          "SELECT json_build_object('items', coalesce(json_agg(" VERSION_JSON
                          " ORDER BY v.version DESC), '[]'))::text FROM model_versions v"
                          " WHERE v.project_id = $1 AND v.model = $2",
                          2, (const char *[]){project, http_param(req, "name")}, NULL),
                  200, "model");
    api_release(req, c);
}

static int version_param(http_req *req, char *out, size_t len)
{
    long n;
    if (parse_long(http_param(req, "version"), 1, 1000000000L, &n)) {
        http_problem_field(req, "version", "must be a version number (1, 2, ...)");
        return 1;
    }
    snprintf(out, len, "%ld", n);
    return 0;
}

void api_model_versions_show(http_req *req)
{
    const char *project = http_param(req, "project");
    char ver[16];
    if (version_param(req, ver, sizeof ver))
        return;
    PGconn *c = api_conn(req);
    if (!c)
        return;
    if (!access_models(req, c, ACT_COMPUTE_READ, project))
        reply_row(req,
                  db_exec(c,
                          "SELECT " VERSION_JSON "::text FROM model_versions v WHERE"
                          " v.project_id = $1 AND v.model = $2 AND v.version = $3::int",
                          3, (const char *[]){project, http_param(req, "name"), ver}, NULL),
                  200, "model version");
    api_release(req, c);
}

/* POST .../versions/{v}/archive: stays readable, cannot be promoted. */
void api_model_versions_archive(http_req *req)
{
    const char *project = http_param(req, "project"), *model = http_param(req, "name");
    char ver[16];
    if (version_param(req, ver, sizeof ver))
        return;
    PGconn *c = api_conn(req);
    if (!c)
        return;
    if (access_models(req, c, ACT_COMPUTE_WRITE, project))
        goto out;
    char subject[200];
    snprintf(subject, sizeof subject, "projects/%s/models/%s/versions/%s", project, model, ver);
    access_set_subject(req, subject);
    PGresult *r = db_exec(c,
                          "SELECT alias FROM model_aliases WHERE project_id = $1 AND model = $2"
                          " AND version = $3::int",
                          3, (const char *[]){project, model, ver}, NULL);
    if (r && PQntuples(r) > 0) {
        http_problem(req, 409, "conflict", "In use", NULL,
                     "version %s is %s: move the alias first", ver, PQgetvalue(r, 0, 0));
        PQclear(r);
        goto out;
    }
    PQclear(r);
    reply_row(req,
              db_exec(c,
                      "UPDATE model_versions v SET archived_at = coalesce(archived_at, now())"
                      " WHERE v.project_id = $1 AND v.model = $2 AND v.version = $3::int"
                      " RETURNING " VERSION_JSON "::text",
                      3, (const char *[]){project, model, ver}, NULL),
              200, "model version");
out:
    api_release(req, c);
}

/* ---- promotions ------------------------------------------------------------- */

/* POST .../versions/{v}/promotions {target}: the gates are evaluated by an
 * operation (scoring may take time); staging then moves at once, production
 * waits for a platform admin who is not the proposer. */
void api_promotions_create(http_req *req)
{
    caller *who = access_caller(req);
    const char *project = http_param(req, "project"), *model = http_param(req, "name");
    json_t *body = NULL;
    char ver[16];
    if (version_param(req, ver, sizeof ver))
        return;
    PGconn *c = api_conn(req);
    if (!c)
        return;
    if (access_models(req, c, ACT_COMPUTE_WRITE, project) || http_read_json(req, &body))
        goto out;
    validator v;
    v_init(&v);
    static const char *const allowed[] = {"target", "reason", NULL};
    v_only(&v, body, allowed);
    const char *target = v_string(&v, body, "target", 1, 16, NULL);
    const char *reason = v_string(&v, body, "reason", 0, 1000, v_check_printable);
    if (target && strcmp(target, "staging") && strcmp(target, "production"))
        v_error(&v, "target", "must be staging or production");
    if (v_finish(&v, req))
        goto out;
    PGresult *r = db_exec(c,
                          "SELECT archived_at IS NOT NULL FROM model_versions WHERE project_id = $1"
                          " AND model = $2 AND version = $3::int",
                          3, (const char *[]){project, model, ver}, NULL);
    int found = r && PQntuples(r) == 1, archived = found && PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    if (!r) {
        http_problem_unavailable(req);
        goto out;
    }
    if (!found || archived) {
        http_problem(req, found ? 409 : 404, found ? "conflict" : "not-found",
                     found ? "Archived" : "Not found", NULL,
                     found ? "version %s is archived" : "no version %s of this model", ver);
        goto out;
    }
    r = db_exec(c, "BEGIN", 0, NULL, NULL);
    PQclear(r);
    r = db_exec(c,
                "INSERT INTO promotions AS p(project_id, model, version, target, state, champion,"
                " proposed_by, reason) VALUES ($1, $2, $3::int, $4, 'evaluating', (SELECT"
                " a.version FROM model_aliases a WHERE a.project_id = $1 AND a.model = $2 AND"
                " a.alias = 'production'), $5, $6) RETURNING p.id",
                6, (const char *[]){project, model, ver, target, who->id.oid, reason}, NULL);
    char id[40] = "", op[37] = "", subject[240];
    if (r) {
        snprintf(id, sizeof id, "%s", PQgetvalue(r, 0, 0));
        PQclear(r);
        snprintf(subject, sizeof subject, "projects/%s/models/%s/promotions/%s", project, model,
                 id);
        access_set_subject(req, subject);
        json_t *in = json_pack("{s:s}", "promotion_id", id);
        int rc = ops_enqueue(c, "promotion.evaluate", subject, in, who->id.oid, 3, op);
        json_decref(in);
        r = rc ? NULL
               : db_exec(c, "UPDATE promotions SET operation_id = $2::uuid WHERE id = $1::uuid",
                         2, (const char *[]){id, op}, NULL);
    }
    if (r) {
        PQclear(r);
        r = db_exec(c, "COMMIT", 0, NULL, NULL);
    }
    if (!r) {
        rollback_tx(c);
        http_problem_unavailable(req);
        goto out;
    }
    PQclear(r);
    char loc[80];
    snprintf(loc, sizeof loc, "/api/v1/operations/%s", op);
    http_add_header(req, "Location", loc);
    reply_row(req,
              db_exec(c, "SELECT " PROMOTION_JSON "::text FROM promotions p WHERE p.id = $1::uuid",
                      1, (const char *[]){id}, NULL),
              202, "promotion");
out:
    json_decref(body);
    api_release(req, c);
}

void api_promotions_list(http_req *req)
{
    const char *project = http_param(req, "project");
    PGconn *c = api_conn(req);
    if (!c)
        return;
    if (!access_models(req, c, ACT_COMPUTE_READ, project))
        reply_row(req,
                  db_exec(c,
                          "SELECT json_build_object('items', coalesce(json_agg(" PROMOTION_JSON
                          " ORDER BY p.created_at DESC), '[]'))::text FROM promotions p"
                          " WHERE p.project_id = $1 AND p.model = $2",
                          2, (const char *[]){project, http_param(req, "name")}, NULL),
                  200, "model");
    api_release(req, c);
}

/* GET /api/v1/promotions?state=pending_approval: the admins' queue. */
void api_promotions_queue(http_req *req)
{
    caller *who = access_caller(req);
    char state[24];
    int hs = http_query(req, "state", state, sizeof state);
    if (hs == -2) {
        http_problem_field(req, "state", "is too long");
        return;
    }
    if (!policy_is_admin(who)) {
        policy_answer(req, POLICY_FORBIDDEN, "the promotions queue (platform admins)");
        return;
    }
    PGconn *c = api_conn(req);
    if (!c)
        return;
    reply_row(req,
              db_exec(c,
                      "SELECT json_build_object('items', coalesce(json_agg(" PROMOTION_JSON
                      " ORDER BY p.created_at), '[]'))::text FROM (SELECT * FROM promotions"
                      " WHERE $1::text IS NULL OR state = $1 ORDER BY created_at DESC LIMIT 200) p",
                      1, (const char *[]){hs >= 0 ? state : NULL}, NULL),
              200, "promotions");
    api_release(req, c);
}

static int promotion_access(http_req *req, PGconn *c, policy_action act, char *project,
                            size_t plen)
{
    PGresult *r = db_exec(c, "SELECT project_id FROM promotions WHERE id::text = $1", 1,
                          (const char *[]){http_param(req, "id")}, NULL);
    int found = r && PQntuples(r) == 1;
    if (found)
        snprintf(project, plen, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    if (!r) {
        http_problem_unavailable(req);
        return 1;
    }
    if (!found) {
        http_problem(req, 404, "not-found", "Not found", NULL, "no promotion %s",
                     http_param(req, "id"));
        return 1;
    }
    return access_models(req, c, act, project);
}

void api_promotions_show(http_req *req)
{
    char project[80];
    PGconn *c = api_conn(req);
    if (!c)
        return;
    if (!promotion_access(req, c, ACT_COMPUTE_READ, project, sizeof project))
        reply_row(req,
                  db_exec(c, "SELECT " PROMOTION_JSON "::text FROM promotions p WHERE p.id::text = $1",
                          1, (const char *[]){http_param(req, "id")}, NULL),
                  200, "promotion");
    api_release(req, c);
}

/* POST /api/v1/promotions/{id}/approve|reject: a platform admin other than
 * the proposer decides a production promotion whose gates passed. */
static void decide(http_req *req, int approve)
{
    caller *who = access_caller(req);
    const char *id = http_param(req, "id");
    json_t *body = NULL;
    char project[80];
    PGconn *c = api_conn(req);
    if (!c)
        return;
    /* Who may decide first: a body is read only for someone who may send it. */
    if (promotion_access(req, c, ACT_PROJECT_APPROVE, project, sizeof project) ||
        http_read_json(req, &body))
        goto out;
    validator v;
    v_init(&v);
    static const char *const allowed[] = {"reason", NULL};
    v_only(&v, body, allowed);
    const char *reason = v_string(&v, body, "reason", !approve, 1000, v_check_printable);
    if (v_finish(&v, req))
        goto out;
    PGresult *r = db_exec(c, "BEGIN", 0, NULL, NULL);
    PQclear(r);
    r = db_exec(c,
                "SELECT state, proposed_by, model FROM promotions WHERE id::text = $1 FOR UPDATE",
                1, (const char *[]){id}, NULL);
    if (!r || PQntuples(r) != 1) {
        PQclear(r);
        rollback_tx(c);
        http_problem_unavailable(req);
        goto out;
    }
    char subject[240];
    snprintf(subject, sizeof subject, "projects/%s/models/%s/promotions/%s", project,
             PQgetvalue(r, 0, 2), id);
    access_set_subject(req, subject);
    if (strcmp(PQgetvalue(r, 0, 0), "pending_approval")) {
        http_problem(req, 409, "conflict", "Wrong state", NULL,
                     "the promotion is %s: only one pending approval is decided",
                     PQgetvalue(r, 0, 0));
        PQclear(r);
        rollback_tx(c);
        goto out;
    }
    if (!strcmp(PQgetvalue(r, 0, 1), who->id.oid)) {
        PQclear(r);
        rollback_tx(c);
        who->denied = 1;
        snprintf(who->deny_reason, sizeof who->deny_reason, "four eyes: own promotion");
        http_problem(req, 403, "four-eyes", "Four eyes", NULL,
                     "you proposed this promotion: another platform admin must decide it");
        goto out;
    }
    PQclear(r);
    char op[37] = "";
    r = db_exec(c,
                "UPDATE promotions SET state = $2, decided_by = $3, decided_at = now(),"
                " reason = coalesce($4, reason), updated_at = now() WHERE id::text = $1",
                4, (const char *[]){id, approve ? "approved" : "rejected", who->id.oid, reason},
                NULL);
    if (r && approve) {
        PQclear(r);
        json_t *in = json_pack("{s:s}", "promotion_id", id);
        int rc = ops_enqueue(c, "promotion.deploy", subject, in, who->id.oid, 5, op);
        json_decref(in);
        r = rc ? NULL
               : db_exec(c, "UPDATE promotions SET operation_id = $2::uuid WHERE id::text = $1",
                         2, (const char *[]){id, op}, NULL);
    }
    if (r) {
        PQclear(r);
        r = db_exec(c, "COMMIT", 0, NULL, NULL);
    }
    if (!r) {
        rollback_tx(c);
        http_problem_unavailable(req);
        goto out;
    }
    PQclear(r);
    if (op[0]) {
        char loc[80];
        snprintf(loc, sizeof loc, "/api/v1/operations/%s", op);
        http_add_header(req, "Location", loc);
    }
    reply_row(req,
              db_exec(c, "SELECT " PROMOTION_JSON "::text FROM promotions p WHERE p.id::text = $1",
                      1, (const char *[]){id}, NULL),
              approve ? 202 : 200, "promotion");
out:
    json_decref(body);
    api_release(req, c);
}

void api_promotions_approve(http_req *req)
{
    decide(req, 1);
}

void api_promotions_reject(http_req *req)
{
    decide(req, 0);
}

/* POST .../models/{name}/rollback {reason}: production goes back to the
 * version it pointed at before the current one. */
void api_models_rollback(http_req *req)
{
    caller *who = access_caller(req);
    const char *project = http_param(req, "project"), *model = http_param(req, "name");
    json_t *body = NULL;
    PGconn *c = api_conn(req);
    if (!c)
        return;
    if (access_models(req, c, ACT_PROJECT_APPROVE, project) || http_read_json(req, &body))
        goto out;
    validator v;
    v_init(&v);
    static const char *const allowed[] = {"reason", NULL};
    v_only(&v, body, allowed);
    const char *reason = v_string(&v, body, "reason", 1, 1000, v_check_printable);
    if (v_finish(&v, req))
        goto out;
    char subject[200];
    snprintf(subject, sizeof subject, "projects/%s/models/%s", project, model);
    access_set_subject(req, subject);
    PGresult *r = db_exec(c, "BEGIN", 0, NULL, NULL);
    PQclear(r);
    r = db_exec(c,
                "SELECT a.version, (SELECT h.previous FROM model_alias_history h WHERE"
                " h.project_id = a.project_id AND h.model = a.model AND h.alias = a.alias AND"
                " h.version = a.version ORDER BY h.id DESC LIMIT 1) FROM model_aliases a"
                " WHERE a.project_id = $1 AND a.model = $2 AND a.alias = 'production' FOR UPDATE",
                2, (const char *[]){project, model}, NULL);
    if (!r || PQntuples(r) != 1 || PQgetisnull(r, 0, 1)) {
        int none = r != NULL;
        PQclear(r);
        rollback_tx(c);
        if (none)
            http_problem(req, 409, "conflict", "Nothing to roll back to", NULL,
                         "model %s has no earlier production version", model);
        else
            http_problem_unavailable(req);
        goto out;
    }
    char current[16], previous[16];
    snprintf(current, sizeof current, "%s", PQgetvalue(r, 0, 0));
    snprintf(previous, sizeof previous, "%s", PQgetvalue(r, 0, 1));
    PQclear(r);
    char *why = xasprintf("rollback: %s", reason);
    r = db_exec(c,
                "UPDATE model_aliases SET version = $3::int, set_by = $4, set_at = now()"
                " WHERE project_id = $1 AND model = $2 AND alias = 'production'",
                4, (const char *[]){project, model, previous, who->id.oid}, NULL);
    if (r) {
        PQclear(r);
        r = db_exec(c,
                    "INSERT INTO model_alias_history(project_id, model, alias, version, previous,"
                    " reason, set_by) VALUES ($1, $2, 'production', $3::int,"
                    " (SELECT h.previous FROM model_alias_history h WHERE h.project_id = $1 AND"
                    " h.model = $2 AND h.alias = 'production' AND h.version = $3::int ORDER BY"
                    " h.id DESC LIMIT 1), $5, $4)",
                    5, (const char *[]){project, model, previous, who->id.oid, why}, NULL);
    }
    free(why);
    if (r) {
        PQclear(r);
        r = db_exec(c, "COMMIT", 0, NULL, NULL);
    }
    if (!r) {
        rollback_tx(c);
        http_problem_unavailable(req);
        goto out;
    }
    PQclear(r);
    reply_row(req,
              db_exec(c,
                      "SELECT " MODEL_JSON "::text FROM models m WHERE m.project_id = $1"
                      " AND m.name = $2",
                      2, (const char *[]){project, model}, NULL),
              200, "model");
out:
    json_decref(body);
    api_release(req, c);
}

/* POST .../versions/{v}/predict {rows: [...]}: scores feature rows with the
 * version, in process, the booster kept in the serving cache. */
void api_model_versions_predict(http_req *req)
{
    app_ctx *app = http_app(req);
    const char *project = http_param(req, "project"), *model = http_param(req, "name");
    json_t *body = NULL;
    char ver[16];
    if (version_param(req, ver, sizeof ver))
        return;
    PGconn *c = api_conn(req);
    if (!c)
        return;
    if (access_models(req, c, ACT_COMPUTE_READ, project) || http_read_json(req, &body)) {
        api_release(req, c);
        json_decref(body);
        return;
    }
    PGresult *r = db_exec(c,
                          "SELECT id::text, artifacts::text, algorithm FROM model_versions"
                          " WHERE project_id = $1 AND model = $2 AND version = $3::int",
                          3, (const char *[]){project, model, ver}, NULL);
    api_release(req, c);
    if (!r || PQntuples(r) != 1) {
        if (r)
            http_problem(req, 404, "not-found", "Not found", NULL, "no version %s of model %s",
                         ver, model);
        else
            http_problem_unavailable(req);
        PQclear(r);
        json_decref(body);
        return;
    }
    if (strcmp(PQgetvalue(r, 0, 2), "xgboost")) {
        http_problem(req, 409, "conflict", "Not scorable", NULL,
                     "version %s is a %s baseline: it forecasts from history, not from feature "
                     "rows",
                     ver, PQgetvalue(r, 0, 2));
        PQclear(r);
        json_decref(body);
        return;
    }
    json_t *artifacts = json_loads(PQgetvalue(r, 0, 1), 0, NULL), *out = NULL;
    char id[40], field[120] = "", reason[240] = "";
    snprintf(id, sizeof id, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    int rc = model_cache_predict(app->models, id, artifacts, json_object_get(body, "rows"), &out,
                                 field, sizeof field, reason, sizeof reason);
    if (rc == RST_OK) {
        json_object_set_new(out, "model", json_string(model));
        json_object_set_new(out, "version", json_integer(strtol(ver, NULL, 10)));
        http_reply_json(req, 200, out);
    } else if (rc == RST_EINVAL) {
        http_problem_field(req, field, reason);
    } else {
        http_problem(req, 503, "model-unavailable", "Model unavailable", NULL, "%s", reason);
    }
    json_decref(artifacts);
    json_decref(body);
}
