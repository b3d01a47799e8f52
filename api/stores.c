/* Stores, the store managers assigned to them and the project that serves each. Admins
 * manage all three; a store manager sees only the stores assigned to them. */
#include "api.h"
#include "http/app.h"
#include "identity/access.h"
#include "identity/policy.h"
#include "lib/util.h"
#include "http/validate.h"
#include "forecasts/forecast_cache.h"

#include <stdio.h>
#include <string.h>

#define STORE_JSON                                                                                 \
    "json_build_object('id', s.id, 'name', s.name, 'country', s.country, 'city', s.city,"          \
    " 'timezone', s.timezone, 'serving_project', s.serving_project, 'serving_set_by',"             \
    " s.serving_set_by, 'serving_set_at', s.serving_set_at, 'created_at', s.created_at,"           \
    " 'updated_at', s.updated_at, 'version', s.version)"

static const char *check_country(const char *s)
{
    return !strcmp(s, "USA") || !strcmp(s, "Canada") || !strcmp(s, "Mexico")
               ? NULL
               : "must be one of USA, Canada, Mexico";
}

/* An IANA zone name such as America/Toronto: letters, '/', '_', '-', '+'. */
static const char *check_timezone(const char *s)
{
    if (!strchr(s, '/') && strcmp(s, "UTC"))
        return "must be an IANA time zone such as America/New_York";
    for (const char *p = s; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              strchr("/_-+", *p)))
            return "must be an IANA time zone such as America/New_York";
    return NULL;
}

static void reply_store(http_req *req, PGconn *c, const char *id, int status)
{
    PGresult *r = db_exec(c, "SELECT " STORE_JSON "::text, s.version FROM stores s"
                             " WHERE s.id = $1", 1, (const char *[]){id}, NULL);
    char loc[128];
    snprintf(loc, sizeof loc, "/api/v1/stores/%s", id);
    api_reply_versioned(req, r, status, loc);
    PQclear(r);
}

void api_stores_create(http_req *req)
{
    json_t *body = NULL;
    PGconn *c = NULL;
    if (policy_answer(req, policy_check(NULL, access_caller(req), ACT_STORE_MANAGE, NULL),
                      "manage stores") ||
        http_read_json(req, &body))
        return;
    validator v;
    v_init(&v);
    static const char *const allowed[] = {"id", "name", "country", "city", "timezone", NULL};
    v_only(&v, body, allowed);
    const char *id = v_string(&v, body, "id", 1, 64, v_check_store_id);
    const char *name = v_string(&v, body, "name", 1, 200, v_check_printable);
    const char *country = v_string(&v, body, "country", 1, 10, check_country);
    const char *city = v_string(&v, body, "city", 1, 100, v_check_printable);
    const char *tz = v_string(&v, body, "timezone", 1, 64, check_timezone);
    if (v_finish(&v, req) || !(c = api_conn(req)))
        goto out;
    char subject[100];
    snprintf(subject, sizeof subject, "stores/%s", id);
    access_set_subject(req, subject);
    char state[6];
    PGresult *r = db_exec(c,
                          "INSERT INTO stores(id, name, country, city, timezone)"
                          " VALUES ($1, $2, $3, $4, $5)",
                          5, (const char *[]){id, name, country, city, tz}, state);
    if (!r && !strcmp(state, "23505"))
        http_problem(req, 409, "conflict", "Already exists", NULL,
                     "a store with id '%s' already exists", id);
    else if (!r)
        http_problem_unavailable(req);
    else
        reply_store(req, c, id, 201);
    PQclear(r);
out:
    if (c)
        api_release(req, c);
    json_decref(body);
}

void api_stores_list(http_req *req)
{
    caller *who = access_caller(req);
    char cursor[80], country[16];
    long limit;
    if (api_limit(req, &limit))
        return;
    int has_cursor = http_query(req, "cursor", cursor, sizeof cursor);
    if (has_cursor == -2 || (has_cursor >= 0 && v_check_store_id(cursor))) {
        http_problem_field(req, "cursor", "is not a cursor this server issued");
        return;
    }
    int has_country = http_query(req, "country", country, sizeof country);
    if (has_country == -2 || (has_country >= 0 && check_country(country))) {
        http_problem_field(req, "country", "must be one of USA, Canada, Mexico");
        return;
    }
    /* Admins and data scientists see every store; store managers their own. */
    int all = (who->id.roles & (AUTH_ROLE_PLATFORM_ADMIN | AUTH_ROLE_DATA_SCIENTIST)) != 0;
    char lim[24];
    snprintf(lim, sizeof lim, "%ld", limit + 1);
    PGconn *c = api_conn(req);
    if (!c)
        return;
    const char *p[] = {all ? "t" : "f", who->id.oid, has_cursor >= 0 ? cursor : NULL,
                       has_country >= 0 ? country : NULL, lim};
    PGresult *r = db_exec(c,
                          "SELECT s.id, " STORE_JSON "::text FROM stores s"
                          " WHERE ($1::boolean OR EXISTS (SELECT 1 FROM store_assignments a"
                          "  WHERE a.store_id = s.id AND a.user_oid = $2))"
                          " AND ($3::text IS NULL OR s.id > $3)"
                          " AND ($4::text IS NULL OR s.country = $4)"
                          " ORDER BY s.id LIMIT $5::int",
                          5, p, NULL);
    api_release(req, c);
    if (!r) {
        http_problem_unavailable(req);
        return;
    }
    api_reply_page(req, r, 0, 1, limit);
    PQclear(r);
}

void api_stores_show(http_req *req)
{
    const char *id = http_param(req, "store");
    PGconn *c = api_conn(req);
    if (!c)
        return;
    if (!policy_answer(req, policy_check(c, access_caller(req), ACT_STORE_READ, id), "store")) {
        PGresult *r = db_exec(c, "SELECT 1 FROM stores WHERE id = $1", 1, (const char *[]){id},
                              NULL);
        if (!r)
            http_problem_unavailable(req);
        else if (PQntuples(r) == 0)
            http_problem(req, 404, "not-found", "Not found", NULL, "no resource at this path");
        else
            reply_store(req, c, id, 200);
        PQclear(r);
    }
    api_release(req, c);
}

void api_stores_update(http_req *req)
{
    const char *id = http_param(req, "store");
    char subject[100];
    snprintf(subject, sizeof subject, "stores/%.80s", id);
    access_set_subject(req, subject);
    json_t *body = NULL;
    PGconn *c = NULL;
    if (policy_answer(req, policy_check(NULL, access_caller(req), ACT_STORE_MANAGE, NULL),
                      "manage stores") ||
        http_read_json(req, &body))
        return;
    validator v;
    v_init(&v);
    static const char *const allowed[] = {"name", "country", "city", "timezone", NULL};
    v_only(&v, body, allowed);
    const char *name = v_string(&v, body, "name", 0, 200, v_check_printable);
    const char *country = v_string(&v, body, "country", 0, 10, check_country);
    const char *city = v_string(&v, body, "city", 0, 100, v_check_printable);
    const char *tz = v_string(&v, body, "timezone", 0, 64, check_timezone);
    if (v_finish(&v, req) || !(c = api_conn(req)))
        goto out;
    PGresult *r = db_exec(c, "SELECT version FROM stores WHERE id = $1", 1, (const char *[]){id},
                          NULL);
    if (!r || PQntuples(r) == 0) {
        if (r)
            http_problem(req, 404, "not-found", "Not found", NULL, "no resource at this path");
        else
            http_problem_unavailable(req);
        PQclear(r);
        goto out;
    }
    char version[24];
    snprintf(version, sizeof version, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    if (api_if_match_fails(req, version))
        goto out;
    r = db_exec(c,
                "UPDATE stores SET name = coalesce($2, name), country = coalesce($3, country),"
                " city = coalesce($4, city), timezone = coalesce($5, timezone),"
                " version = version + 1, updated_at = now() WHERE id = $1 AND version = $6::int"
                " RETURNING 1",
                6, (const char *[]){id, name, country, city, tz, version}, NULL);
    if (!r)
        http_problem_unavailable(req);
    else if (PQntuples(r) == 0)
        http_problem(req, 412, "precondition-failed", "Precondition failed", NULL,
                     "the store changed while you updated it; read it again");
    else
        reply_store(req, c, id, 200);
    PQclear(r);
out:
    if (c)
        api_release(req, c);
    json_decref(body);
}

/* PUT /stores/{store}/serving-project {"project": id | null}: which project's forecasts the
 * store's managers are served and whose contributors report its actuals. An admin's
 * decision, so a project never takes a store over by forecasting it. */
void api_store_serving_put(http_req *req)
{
    caller *who = access_caller(req);
    const char *id = http_param(req, "store");
    char subject[120];
    snprintf(subject, sizeof subject, "stores/%.80s/serving-project", id);
    access_set_subject(req, subject);
    json_t *body = NULL;
    PGconn *c = NULL;
    if (policy_answer(req, policy_check(NULL, who, ACT_STORE_MANAGE, NULL),
                      "choose a store's serving project") ||
        http_read_json(req, &body))
        return;
    validator v;
    v_init(&v);
    static const char *const allowed[] = {"project", NULL};
    v_only(&v, body, allowed);
    json_t *pj = json_object_get(body, "project");
    const char *project = NULL;
    if (!pj)
        v_error(&v, "project", "is required: a project id, or null for none");
    else if (!json_is_null(pj))
        project = v_string(&v, body, "project", 1, 63, v_check_slug);
    if (v_finish(&v, req) || !(c = api_conn(req)))
        goto out;
    PGresult *r = db_exec(c,
                          "SELECT version, serving_project IS NOT DISTINCT FROM $2 FROM stores"
                          " WHERE id = $1",
                          2, (const char *[]){id, project}, NULL);
    if (!r || PQntuples(r) == 0) {
        if (r)
            http_problem(req, 404, "not-found", "Not found", NULL, "no resource at this path");
        else
            http_problem_unavailable(req);
        PQclear(r);
        goto out;
    }
    char version[24];
    snprintf(version, sizeof version, "%s", PQgetvalue(r, 0, 0));
    int same = PQgetvalue(r, 0, 1)[0] == 't';
    PQclear(r);
    if (api_if_match_fails(req, version))
        goto out;
    if (same) { /* already so: nothing changes, not even the version */
        reply_store(req, c, id, 200);
        goto out;
    }
    char state[6] = "";
    r = db_exec(c,
                "UPDATE stores SET serving_project = $2, serving_set_by = $3, serving_set_at ="
                " now(), version = version + 1, updated_at = now() WHERE id = $1 AND version ="
                " $4::int RETURNING 1",
                4, (const char *[]){id, project, who->id.oid, version}, state);
    if (!r && !strcmp(state, "23503"))
        http_problem_field(req, "project", "no such project");
    else if (!r)
        http_problem_unavailable(req);
    else if (PQntuples(r) == 0)
        http_problem(req, 412, "precondition-failed", "Precondition failed", NULL,
                     "the store changed while you updated it; read it again");
    else {
        forecast_cache_invalidate(); /* answers and access decisions follow the new project */
        reply_store(req, c, id, 200);
    }
    PQclear(r);
out:
    if (c)
        api_release(req, c);
    json_decref(body);
}

void api_store_managers_list(http_req *req)
{
    const char *id = http_param(req, "store");
    if (policy_answer(req, policy_check(NULL, access_caller(req), ACT_STORE_MANAGE, NULL),
                      "manage store assignments"))
        return;
    PGconn *c = api_conn(req);
    if (!c)
        return;
    PGresult *r = db_exec(c,
                          "SELECT s.id IS NOT NULL, json_build_object('items', coalesce(("
                          " SELECT json_agg(json_build_object('user_oid', a.user_oid, 'name',"
                          "  u.name, 'assigned_by', a.assigned_by, 'assigned_at', a.assigned_at)"
                          "  ORDER BY a.assigned_at) FROM store_assignments a JOIN users u"
                          "  ON u.oid = a.user_oid WHERE a.store_id = $1), '[]'::json))::text"
                          " FROM (SELECT $1::text AS want) w LEFT JOIN stores s ON s.id = w.want",
                          1, (const char *[]){id}, NULL);
    api_release(req, c);
    if (!r)
        http_problem_unavailable(req);
    else if (PQgetvalue(r, 0, 0)[0] != 't')
        http_problem(req, 404, "not-found", "Not found", NULL, "no resource at this path");
    else
        http_reply_bytes(req, 200, "application/json", PQgetvalue(r, 0, 1),
                         (size_t)PQgetlength(r, 0, 1));
    PQclear(r);
}

void api_store_managers_put(http_req *req)
{
    caller *who = access_caller(req);
    const char *id = http_param(req, "store");
    const char *oid = http_param(req, "oid");
    char subject[200];
    snprintf(subject, sizeof subject, "stores/%.80s/managers/%.80s", id, oid);
    access_set_subject(req, subject);
    json_t *body = NULL;
    PGconn *c = NULL;
    if (policy_answer(req, policy_check(NULL, who, ACT_STORE_MANAGE, NULL),
                      "manage store assignments"))
        return;
    const char *name = NULL;
    /* The body is optional: {"name": "..."} names someone who has not signed in yet. */
    if (http_header(req, "Content-Type")) {
        if (http_read_json(req, &body))
            return;
        validator v;
        v_init(&v);
        static const char *const allowed[] = {"name", NULL};
        v_only(&v, body, allowed);
        name = v_string(&v, body, "name", 0, 200, v_check_printable);
        if (v_finish(&v, req))
            goto out;
    }
    if (strlen(oid) > 63 || v_check_printable(oid)) {
        http_problem_field(req, "oid", "must be an Azure AD object id");
        goto out;
    }
    if (!(c = api_conn(req)))
        goto out;
    char state[6];
    PGresult *r = db_exec(c,
                          "WITH u AS (INSERT INTO users(oid, tid, name) VALUES ($2, $4, $5)"
                          " ON CONFLICT (oid) DO NOTHING)"
                          " INSERT INTO store_assignments(store_id, user_oid, assigned_by)"
                          " VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING 1",
                          5, (const char *[]){id, oid, who->id.oid, who->id.tid, name ? name : oid},
                          state);
    if (!r && !strcmp(state, "23503"))
        http_problem(req, 404, "not-found", "Not found", NULL, "no store %s", id);
    else if (!r)
        http_problem_unavailable(req);
    else
        http_reply_json(req, PQntuples(r) ? 201 : 200,
                        json_pack("{s:s, s:s}", "store_id", id, "user_oid", oid));
    PQclear(r);
out:
    if (c)
        api_release(req, c);
    json_decref(body);
}

void api_store_managers_delete(http_req *req)
{
    const char *id = http_param(req, "store");
    const char *oid = http_param(req, "oid");
    char subject[200];
    snprintf(subject, sizeof subject, "stores/%.80s/managers/%.80s", id, oid);
    access_set_subject(req, subject);
    if (policy_answer(req, policy_check(NULL, access_caller(req), ACT_STORE_MANAGE, NULL),
                      "manage store assignments"))
        return;
    PGconn *c = api_conn(req);
    if (!c)
        return;
    PGresult *r = db_exec(c,
                          "DELETE FROM store_assignments WHERE store_id = $1 AND user_oid = $2"
                          " RETURNING 1",
                          2, (const char *[]){id, oid}, NULL);
    api_release(req, c);
    if (!r)
        http_problem_unavailable(req);
    else if (PQntuples(r) == 0)
        http_problem(req, 404, "not-found", "Not found", NULL, "%s manages no store %s", oid, id);
    else
        http_reply_empty(req, 204);
    PQclear(r);
}
