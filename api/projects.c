/* Projects (a team's space with a budget and a compute quota) and their
 * members. Data scientists create projects and manage members as owners;
 * platform admins set budgets and quotas. */
#include "api.h"
#include "http/app.h"
#include "identity/access.h"
#include "identity/policy.h"
#include "lib/util.h"
#include "http/validate.h"
#include "forecasts/forecast_cache.h"

#include <stdio.h>
#include <string.h>

#define PROJECT_FIELDS                                                                             \
    "'id', p.id, 'display_name', p.display_name, 'description',"                                   \
    " p.description, 'monthly_budget_usd', p.monthly_budget_usd::float8,"                          \
    " 'compute_quota_cores', p.compute_quota_cores, 'promotion_margin',"                           \
    " p.promotion_margin::float8, 'champion_tolerance', p.champion_tolerance::float8,"             \
    " 'created_by', p.created_by, 'created_at', p.created_at, 'updated_at', p.updated_at,"         \
    " 'version', p.version"
#define PROJECT_JSON "json_build_object(" PROJECT_FIELDS ")"

#define MEMBER_JSON                                                                                \
    "json_build_object('user_oid', m.user_oid, 'name', u.name, 'role', m.role,"                   \
    " 'added_by', m.added_by, 'added_at', m.added_at)"

static const char *const MEMBER_ROLES[] = {"owner", "contributor", "reader", NULL};

static const char *check_member_role(const char *s)
{
    for (const char *const *r = MEMBER_ROLES; *r; r++)
        if (!strcmp(*r, s))
            return NULL;
    return "must be one of owner, contributor, reader";
}

static void reply_project(http_req *req, PGconn *c, const char *id, int status)
{
    PGresult *r = db_exec(c, "SELECT " PROJECT_JSON "::text, p.version FROM projects p"
                             " WHERE p.id = $1", 1, (const char *[]){id}, NULL);
    char loc[128];
    snprintf(loc, sizeof loc, "/api/v1/projects/%s", id);
    api_reply_versioned(req, r, status, loc);
    PQclear(r);
}

void api_projects_create(http_req *req)
{
    caller *who = access_caller(req);
    json_t *body = NULL;
    if (policy_answer(req, policy_check(NULL, who, ACT_PROJECT_CREATE, NULL), "create projects"))
        return;
    if (http_read_json(req, &body))
        return;
    validator v;
    v_init(&v);
    static const char *const allowed[] = {"id", "display_name", "description",
                                          "monthly_budget_usd", "compute_quota_cores", NULL};
    v_only(&v, body, allowed);
    const char *id = v_string(&v, body, "id", 1, 63, v_check_slug);
    const char *display = v_string(&v, body, "display_name", 1, 200, v_check_printable);
    const char *desc = v_string(&v, body, "description", 0, 2000, NULL);
    double budget = 0;
    long long quota = 0;
    int has_budget = v_number(&v, body, "monthly_budget_usd", 0, 1e9, &budget);
    int has_quota = v_integer(&v, body, "compute_quota_cores", 0, 100000, &quota);
    if ((has_budget || has_quota) && !policy_is_admin(who))
        v_error(&v, has_budget ? "monthly_budget_usd" : "compute_quota_cores",
                "only platform admins set budgets and quotas; ask one after creating the project");
    if (v_finish(&v, req)) {
        json_decref(body);
        return;
    }
    access_set_subject(req, id);
    char b[32], q[24];
    snprintf(b, sizeof b, "%.2f", budget);
    snprintf(q, sizeof q, "%lld", quota);
    PGconn *c = api_conn(req);
    if (!c) {
        json_decref(body);
        return;
    }
    char state[6];
    const char *p[] = {id, display, desc ? desc : "", b, q, who->id.oid};
    PGresult *r = db_exec(c,
                          "WITH pr AS (INSERT INTO projects(id, display_name, description,"
                          " monthly_budget_usd, compute_quota_cores, created_by)"
                          " VALUES ($1, $2, $3, $4::numeric, $5::int, $6) RETURNING id)"
                          " INSERT INTO project_members(project_id, user_oid, role, added_by)"
                          " SELECT id, $6, 'owner', $6 FROM pr",
                          6, p, state);
    if (!r && !strcmp(state, "23505")) {
        http_problem(req, 409, "conflict", "Already exists", NULL,
                     "a project with id '%s' already exists", id);
    } else if (!r) {
        http_problem_unavailable(req);
    } else {
        PQclear(r);
        reply_project(req, c, id, 201);
    }
    api_release(req, c);
    json_decref(body);
}

void api_projects_list(http_req *req)
{
    caller *who = access_caller(req);
    char cursor[80];
    long limit;
    if (api_limit(req, &limit))
        return;
    int has_cursor = http_query(req, "cursor", cursor, sizeof cursor);
    if (has_cursor == -2 || (has_cursor >= 0 && v_check_slug(cursor))) {
        http_problem_field(req, "cursor", "is not a cursor this server issued");
        return;
    }
    char lim[24];
    snprintf(lim, sizeof lim, "%ld", limit + 1);
    PGconn *c = api_conn(req);
    if (!c)
        return;
    const char *p[] = {policy_is_admin(who) ? "t" : "f", who->id.oid,
                       has_cursor >= 0 ? cursor : NULL, lim};
    PGresult *r = db_exec(
        c,
        "SELECT p.id, json_build_object(" PROJECT_FIELDS ", 'my_role', m.role)::text"
        " FROM projects p LEFT JOIN project_members m ON m.project_id = p.id AND m.user_oid = $2"
        " WHERE ($1::boolean OR m.role IS NOT NULL) AND ($3::text IS NULL OR p.id > $3)"
        " ORDER BY p.id LIMIT $4::int",
        4, p, NULL);
    api_release(req, c);
    if (!r) {
        http_problem_unavailable(req);
        return;
    }
    api_reply_page(req, r, 0, 1, limit);
    PQclear(r);
}

void api_projects_show(http_req *req)
{
    const char *id = http_param(req, "project");
    PGconn *c = api_conn(req);
    if (!c)
        return;
    if (!policy_answer(req, policy_check(c, access_caller(req), ACT_PROJECT_READ, id), "project"))
        reply_project(req, c, id, 200);
    api_release(req, c);
}

void api_projects_update(http_req *req)
{
    caller *who = access_caller(req);
    const char *id = http_param(req, "project");
    access_set_subject(req, id);
    json_t *body = NULL;
    PGconn *c = api_conn(req);
    if (!c)
        return;
    if (policy_answer(req, policy_check(c, who, ACT_PROJECT_MANAGE, id), "change this project") ||
        http_read_json(req, &body))
        goto out;
    validator v;
    v_init(&v);
    static const char *const allowed[] = {"display_name",        "description",
                                          "monthly_budget_usd",  "compute_quota_cores",
                                          "promotion_margin",    "champion_tolerance",
                                          NULL};
    v_only(&v, body, allowed);
    const char *display = v_string(&v, body, "display_name", 0, 200, v_check_printable);
    if (json_object_get(body, "display_name") && display && !*display)
        v_error(&v, "display_name", "must not be empty");
    const char *desc = v_string(&v, body, "description", 0, 2000, NULL);
    double budget = 0, margin = 0, tolerance = 0;
    long long quota = 0;
    int has_budget = v_number(&v, body, "monthly_budget_usd", 0, 1e9, &budget);
    int has_quota = v_integer(&v, body, "compute_quota_cores", 0, 100000, &quota);
    int has_margin = v_number(&v, body, "promotion_margin", 0, 1, &margin);
    int has_tolerance = v_number(&v, body, "champion_tolerance", 0, 1, &tolerance);
    if (v_finish(&v, req))
        goto out;
    if ((has_budget || has_quota || has_margin || has_tolerance) &&
        policy_answer(req, policy_check(c, who, ACT_PROJECT_SET_LIMITS, id),
                      "set budgets, quotas and promotion policy"))
        goto out;
    PGresult *r = db_exec(c, "SELECT version FROM projects WHERE id = $1",
                          1, (const char *[]){id}, NULL);
    if (!r || PQntuples(r) == 0) {
        PQclear(r);
        http_problem_unavailable(req);
        goto out;
    }
    int stale = api_if_match_fails(req, PQgetvalue(r, 0, 0));
    char version[24];
    snprintf(version, sizeof version, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    if (stale)
        goto out;
    char b[32] = "", q[24] = "", m[24] = "", t[24] = "";
    if (has_budget)
        snprintf(b, sizeof b, "%.2f", budget);
    if (has_quota)
        snprintf(q, sizeof q, "%lld", quota);
    if (has_margin)
        snprintf(m, sizeof m, "%.4f", margin);
    if (has_tolerance)
        snprintf(t, sizeof t, "%.4f", tolerance);
    const char *p[] = {id,      display, desc, has_budget ? b : NULL, has_quota ? q : NULL,
                       version, has_margin ? m : NULL, has_tolerance ? t : NULL};
    r = db_exec(c,
                "UPDATE projects SET display_name = coalesce($2, display_name),"
                " description = coalesce($3, description),"
                " monthly_budget_usd = coalesce($4::numeric, monthly_budget_usd),"
                " compute_quota_cores = coalesce($5::int, compute_quota_cores),"
                " promotion_margin = coalesce($7::numeric, promotion_margin),"
                " champion_tolerance = coalesce($8::numeric, champion_tolerance),"
                " version = version + 1, updated_at = now()"
                " WHERE id = $1 AND version = $6::int RETURNING 1",
                8, p, NULL);
    if (!r) {
        http_problem_unavailable(req);
    } else if (PQntuples(r) == 0) {
        http_problem(req, 412, "precondition-failed", "Precondition failed", NULL,
                     "the project changed while you updated it; read it again");
    } else {
        reply_project(req, c, id, 200);
    }
    PQclear(r);
out:
    api_release(req, c);
    json_decref(body);
}

void api_members_list(http_req *req)
{
    const char *id = http_param(req, "project");
    PGconn *c = api_conn(req);
    if (!c)
        return;
    if (!policy_answer(req, policy_check(c, access_caller(req), ACT_PROJECT_READ, id),
                       "project")) {
        PGresult *r = db_exec(c,
                              "SELECT json_build_object('items', coalesce(json_agg(" MEMBER_JSON
                              " ORDER BY m.added_at, m.user_oid), '[]'::json))::text"
                              " FROM project_members m JOIN users u ON u.oid = m.user_oid"
                              " WHERE m.project_id = $1",
                              1, (const char *[]){id}, NULL);
        if (!r)
            http_problem_unavailable(req);
        else
            http_reply_bytes(req, 200, "application/json", PQgetvalue(r, 0, 0),
                             (size_t)PQgetlength(r, 0, 0));
        PQclear(r);
    }
    api_release(req, c);
}

static int only_owner_left(PGconn *c, const char *project, const char *oid, int *last)
{
    PGresult *r = db_exec(c,
                          "SELECT count(*) FILTER (WHERE role = 'owner'),"
                          " bool_or(user_oid = $2 AND role = 'owner')"
                          " FROM project_members WHERE project_id = $1",
                          2, (const char *[]){project, oid}, NULL);
    if (!r)
        return RST_EDB;
    *last = !strcmp(PQgetvalue(r, 0, 0), "1") && PQgetvalue(r, 0, 1)[0] == 't';
    PQclear(r);
    return RST_OK;
}

void api_members_put(http_req *req)
{
    caller *who = access_caller(req);
    const char *id = http_param(req, "project");
    const char *oid = http_param(req, "oid");
    char subject[200];
    snprintf(subject, sizeof subject, "projects/%s/members/%s", id, oid);
    access_set_subject(req, subject);
    json_t *body = NULL;
    PGconn *c = api_conn(req);
    if (!c)
        return;
    if (policy_answer(req, policy_check(c, who, ACT_PROJECT_MANAGE, id), "manage members") ||
        http_read_json(req, &body))
        goto out;
    validator v;
    v_init(&v);
    static const char *const allowed[] = {"role", "name", NULL};
    v_only(&v, body, allowed);
    const char *role = v_string(&v, body, "role", 1, 20, check_member_role);
    const char *name = v_string(&v, body, "name", 0, 200, v_check_printable);
    if (strlen(oid) > 63 || v_check_printable(oid))
        v_error(&v, "oid", "must be an Azure AD object id");
    if (v_finish(&v, req))
        goto out;
    int last = 0;
    if (strcmp(role, "owner") && only_owner_left(c, id, oid, &last) == RST_OK && last) {
        http_problem(req, 409, "last-owner", "Last owner", NULL,
                     "a project keeps at least one owner; make someone else owner first");
        goto out;
    }
    /* People may be added before they first sign in; the token fills in their name. */
    const char *p[] = {id, oid, role, who->id.oid, who->id.tid, name ? name : oid};
    PGresult *r = db_exec(c,
                          "WITH u AS (INSERT INTO users(oid, tid, name) VALUES ($2, $5, $6)"
                          " ON CONFLICT (oid) DO NOTHING)"
                          " INSERT INTO project_members(project_id, user_oid, role, added_by)"
                          " VALUES ($1, $2, $3, $4) ON CONFLICT (project_id, user_oid)"
                          " DO UPDATE SET role = EXCLUDED.role RETURNING (xmax = 0)",
                          6, p, NULL);
    if (!r) {
        http_problem_unavailable(req);
        goto out;
    }
    int created = PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    forecast_cache_invalidate(); /* cached store-read decisions follow membership */
    r = db_exec(c,
                "SELECT " MEMBER_JSON "::text FROM project_members m JOIN users u"
                " ON u.oid = m.user_oid WHERE m.project_id = $1 AND m.user_oid = $2",
                2, p, NULL);
    if (!r || PQntuples(r) == 0)
        http_problem_unavailable(req);
    else
        http_reply_bytes(req, created ? 201 : 200, "application/json", PQgetvalue(r, 0, 0),
                         (size_t)PQgetlength(r, 0, 0));
    PQclear(r);
out:
    api_release(req, c);
    json_decref(body);
}

void api_members_delete(http_req *req)
{
    const char *id = http_param(req, "project");
    const char *oid = http_param(req, "oid");
    char subject[200];
    snprintf(subject, sizeof subject, "projects/%s/members/%s", id, oid);
    access_set_subject(req, subject);
    PGconn *c = api_conn(req);
    if (!c)
        return;
    if (policy_answer(req, policy_check(c, access_caller(req), ACT_PROJECT_MANAGE, id),
                      "manage members"))
        goto out;
    int last = 0;
    if (only_owner_left(c, id, oid, &last) == RST_OK && last) {
        http_problem(req, 409, "last-owner", "Last owner", NULL,
                     "a project keeps at least one owner; make someone else owner first");
        goto out;
    }
    PGresult *r = db_exec(c,
                          "DELETE FROM project_members WHERE project_id = $1 AND user_oid = $2"
                          " RETURNING 1",
                          2, (const char *[]){id, oid}, NULL);
    if (!r)
        http_problem_unavailable(req);
    else if (PQntuples(r) == 0)
        http_problem(req, 404, "not-found", "Not found", NULL, "%s is not a member", oid);
    else {
        forecast_cache_invalidate(); /* cached store-read decisions follow membership */
        http_reply_empty(req, 204);
    }
    PQclear(r);
out:
    api_release(req, c);
}
