/* Access policy. Roles come from the token; project membership and store
 * assignments from the platform's own tables, never from the request. */
#include "identity/policy.h"
#include "db/db.h"
#include "lib/util.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TRAIL_MAX 8

struct policy_trail {
    int n;
    policy_action act[TRAIL_MAX];
    char resource[TRAIL_MAX][128];
    int has_resource[TRAIL_MAX];
};

int policy_is_admin(const caller *who)
{
    return who && (who->id.roles & AUTH_ROLE_PLATFORM_ADMIN);
}

int policy_sees_project_work(const caller *who)
{
    return who && (who->id.roles & (AUTH_ROLE_PLATFORM_ADMIN | AUTH_ROLE_DATA_SCIENTIST));
}

int policy_project_role(PGconn *conn, const caller *who, const char *project, project_role *out)
{
    *out = PROJECT_NONE;
    const char *p[] = {project, who->id.oid};
    PGresult *r = db_exec(conn,
                          "SELECT m.role FROM projects pr LEFT JOIN project_members m"
                          " ON m.project_id = pr.id AND m.user_oid = $2 WHERE pr.id = $1",
                          2, p, NULL);
    if (!r)
        return RST_EDB;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return RST_ENOTFOUND;
    }
    const char *role = db_value(r, 0, 0);
    if (policy_is_admin(who))
        *out = PROJECT_OWNER;
    else if (role && !strcmp(role, "owner"))
        *out = PROJECT_OWNER;
    else if (role && !strcmp(role, "contributor"))
        *out = PROJECT_CONTRIBUTOR;
    else if (role && !strcmp(role, "reader"))
        *out = PROJECT_READER;
    PQclear(r);
    return RST_OK;
}

static policy_decision project_decision(PGconn *conn, const caller *who, const char *project,
                                        project_role need)
{
    project_role role;
    int rc = policy_project_role(conn, who, project, &role);
    if (rc == RST_ENOTFOUND)
        return POLICY_HIDDEN;
    if (rc)
        return POLICY_ERROR;
    if (role == PROJECT_NONE)
        return POLICY_HIDDEN; /* outsiders do not learn the project exists */
    return role >= need ? POLICY_ALLOW : POLICY_FORBIDDEN;
}

static policy_decision store_decision(PGconn *conn, const caller *who, const char *store)
{
    if (who->id.roles & (AUTH_ROLE_PLATFORM_ADMIN | AUTH_ROLE_DATA_SCIENTIST))
        return POLICY_ALLOW;
    if (!(who->id.roles & AUTH_ROLE_STORE_MANAGER) || !store)
        return POLICY_HIDDEN;
    const char *p[] = {store, who->id.oid};
    PGresult *r = db_exec(conn,
                          "SELECT 1 FROM store_assignments WHERE store_id = $1 AND user_oid = $2",
                          2, p, NULL);
    if (!r)
        return POLICY_ERROR;
    int ok = PQntuples(r) == 1;
    PQclear(r);
    return ok ? POLICY_ALLOW : POLICY_HIDDEN;
}

/* Whether who reaches store u.s: $2 admin, $3 as its store manager, $4 through membership of
 * its serving project with one of the roles $6, $5 the caller's oid. Which project serves a
 * store is the admin's choice (stores.serving_project), so no project takes a store over by
 * forecasting it. */
#define STORE_REACH                                                                                \
    "($2::boolean OR ($3::boolean AND EXISTS (SELECT 1 FROM store_assignments a"                   \
    " WHERE a.store_id = u.s AND a.user_oid = $5)) OR ($4::boolean AND EXISTS (SELECT 1 FROM"      \
    " stores st JOIN project_members m ON m.project_id = st.serving_project AND m.user_oid = $5"   \
    " WHERE st.id = u.s AND m.role = ANY ($6::text[]))))"

/* The first store of stores (a text[] literal, or one id when one is set) that who does not
 * reach for act, into refused; "" when all are reached. RST_OK or RST_EDB. */
static int stores_unreached(PGconn *conn, const caller *who, policy_action act, const char *stores,
                            int one, char *refused, size_t cap)
{
    int report = act == ACT_ACTUALS_REPORT;
    unsigned roles = who->id.roles;
    /* Reading follows any membership of the serving project; reporting needs a data
     * scientist who contributes to it. */
    int by_membership = report ? (roles & AUTH_ROLE_DATA_SCIENTIST) != 0 : 1;
    const char *p[] = {stores,
                       policy_is_admin(who) ? "t" : "f",
                       roles & AUTH_ROLE_STORE_MANAGER ? "t" : "f",
                       by_membership ? "t" : "f",
                       who->id.oid,
                       report ? "{contributor,owner}" : "{reader,contributor,owner}"};
    PGresult *r = db_exec(conn,
                          one ? "SELECT u.s FROM (SELECT $1::text AS s) u WHERE NOT " STORE_REACH
                              : "SELECT u.s FROM (SELECT s, min(i) AS i FROM unnest($1::text[])"
                                " WITH ORDINALITY AS t(s, i) GROUP BY s) u WHERE NOT " STORE_REACH
                                " ORDER BY u.i LIMIT 1",
                          6, p, NULL);
    if (!r)
        return RST_EDB;
    snprintf(refused, cap, "%s", PQntuples(r) ? PQgetvalue(r, 0, 0) : "");
    PQclear(r);
    return RST_OK;
}

static policy_decision store_reach_decision(PGconn *conn, const caller *who, policy_action act,
                                            const char *stores, int one, char *refused, size_t cap)
{
    int report = act == ACT_ACTUALS_REPORT;
    if (cap)
        refused[0] = '\0';
    if (report && !(who->id.roles & (AUTH_ROLE_PLATFORM_ADMIN | AUTH_ROLE_DATA_SCIENTIST |
                                     AUTH_ROLE_STORE_MANAGER)))
        return POLICY_FORBIDDEN;
    if (!stores)
        return report ? POLICY_ALLOW : POLICY_HIDDEN;
    if (policy_is_admin(who))
        return POLICY_ALLOW;
    char first[128];
    if (stores_unreached(conn, who, act, stores, one, first, sizeof first))
        return POLICY_ERROR;
    if (!first[0])
        return POLICY_ALLOW;
    if (cap)
        snprintf(refused, cap, "%s", first);
    /* Store ids are no secret to whoever may report actuals at all: a refusal there is 403.
     * A forecast read outside one's reach does not say whether the store exists. */
    return report ? POLICY_FORBIDDEN : POLICY_HIDDEN;
}

policy_decision policy_check_stores(PGconn *conn, const caller *who, policy_action act,
                                    const char *stores, char *refused, size_t cap)
{
    if (!who || (act != ACT_ACTUALS_REPORT && act != ACT_STORE_FORECAST_READ))
        return POLICY_FORBIDDEN;
    return store_reach_decision(conn, who, act, stores, 0, refused, cap);
}

policy_decision policy_four_eyes(const caller *who, const char *asked_by)
{
    return !who || !asked_by || !strcmp(who->id.oid, asked_by) ? POLICY_FORBIDDEN : POLICY_ALLOW;
}

policy_decision policy_event_grid_claim(PGconn *conn, const char *project, const char *dataset,
                                        const char *path, char *why, size_t cap)
{
    /* The folder after "/blobs/": eventgrid_path_check accepted the shape. */
    const char *blobs = strstr(path, "/blobs/");
    const char *folder = blobs ? blobs + 7 : "";
    size_t fl = strlen(EVENTGRID_PROJECT_FOLDER), pl = strlen(project);
    if (strncmp(folder, EVENTGRID_PROJECT_FOLDER, fl) || strncmp(folder + fl, project, pl) ||
        folder[fl + pl] != '/') {
        snprintf(why, cap,
                 "event_grid_path must lie under the project's folder " EVENTGRID_PROJECT_FOLDER
                 "%s/ of the container",
                 project);
        return POLICY_FORBIDDEN;
    }
    /* One blob, one owner: no path inside another dataset's, none holding another's. An
     * equal path is the unique index's 409. */
    PGresult *r = db_exec(conn,
                          "SELECT project_id = $1, name FROM datasets WHERE event_grid_path IS NOT"
                          " NULL AND NOT (project_id = $1 AND name = $2) AND event_grid_path <> $3"
                          " AND (starts_with($3, event_grid_path) OR starts_with(event_grid_path,"
                          " $3)) LIMIT 1",
                          3, (const char *[]){project, dataset, path}, NULL);
    if (!r)
        return POLICY_ERROR;
    policy_decision d = POLICY_ALLOW;
    if (PQntuples(r)) {
        if (PQgetvalue(r, 0, 0)[0] == 't')
            snprintf(why, cap,
                     "event_grid_path nests with dataset %s's path: one folder, one"
                     " dataset",
                     PQgetvalue(r, 0, 1));
        else
            snprintf(why, cap, "event_grid_path nests with another project's dataset path");
        d = POLICY_FORBIDDEN;
    }
    PQclear(r);
    return d;
}

static policy_decision decide(PGconn *conn, const caller *who, policy_action act,
                              const char *resource)
{
    int admin = policy_is_admin(who);
    switch (act) {
    case ACT_PROJECT_CREATE:
        return admin || (who->id.roles & AUTH_ROLE_DATA_SCIENTIST) ? POLICY_ALLOW
                                                                   : POLICY_FORBIDDEN;
    case ACT_PROJECT_READ:
        return project_decision(conn, who, resource, PROJECT_READER);
    case ACT_PROJECT_WRITE:
        return project_decision(conn, who, resource, PROJECT_CONTRIBUTOR);
    case ACT_PROJECT_MANAGE:
        return project_decision(conn, who, resource, PROJECT_OWNER);
    case ACT_PROJECT_SET_LIMITS:
    case ACT_PROJECT_APPROVE: {
        policy_decision d = project_decision(conn, who, resource, PROJECT_READER);
        if (d != POLICY_ALLOW)
            return d;
        return admin ? POLICY_ALLOW : POLICY_FORBIDDEN;
    }
    case ACT_DATASET_READ:
    case ACT_DATASET_WRITE:
    case ACT_COMPUTE_READ:
    case ACT_COMPUTE_WRITE:
    case ACT_PROJECT_WORK_READ:
    case ACT_WEBHOOK_MANAGE:
        /* Store managers never see datasets or compute, nor what tells of them (operations,
         * webhooks, deliveries, forecast runs), even as project members. */
        if (!policy_sees_project_work(who))
            return POLICY_HIDDEN;
        return project_decision(conn, who, resource,
                                act == ACT_WEBHOOK_MANAGE ? PROJECT_OWNER
                                : act == ACT_DATASET_WRITE || act == ACT_COMPUTE_WRITE
                                    ? PROJECT_CONTRIBUTOR
                                    : PROJECT_READER);
    case ACT_PRICE_READ:
        return admin || (who->id.roles & AUTH_ROLE_DATA_SCIENTIST) ? POLICY_ALLOW
                                                                   : POLICY_FORBIDDEN;
    case ACT_STORE_READ:
        return store_decision(conn, who, resource);
    case ACT_STORE_FORECAST_READ:
    case ACT_ACTUALS_REPORT:
        return store_reach_decision(conn, who, act, resource, 1, NULL, 0);
    case ACT_STORE_MANAGE:
    case ACT_PRICE_MANAGE:
    case ACT_AUDIT_READ:
    case ACT_USER_LIST:
        return admin ? POLICY_ALLOW : POLICY_FORBIDDEN;
    }
    return POLICY_FORBIDDEN;
}

/* ---- replays ------------------------------------------------------------------------- */

/* Stable names for the stored trail: enum values may move between releases. */
static const struct {
    policy_action act;
    const char *name;
} ACTION_NAMES[] = {
    {ACT_PROJECT_CREATE, "project.create"},
    {ACT_PROJECT_READ, "project.read"},
    {ACT_PROJECT_WRITE, "project.write"},
    {ACT_PROJECT_MANAGE, "project.manage"},
    {ACT_PROJECT_SET_LIMITS, "project.set_limits"},
    {ACT_PROJECT_APPROVE, "project.approve"},
    {ACT_DATASET_READ, "dataset.read"},
    {ACT_DATASET_WRITE, "dataset.write"},
    {ACT_COMPUTE_READ, "compute.read"},
    {ACT_COMPUTE_WRITE, "compute.write"},
    {ACT_PRICE_READ, "price.read"},
    {ACT_PRICE_MANAGE, "price.manage"},
    {ACT_STORE_READ, "store.read"},
    {ACT_STORE_MANAGE, "store.manage"},
    {ACT_AUDIT_READ, "audit.read"},
    {ACT_USER_LIST, "user.list"},
    {ACT_STORE_FORECAST_READ, "store.forecast_read"},
    {ACT_ACTUALS_REPORT, "actuals.report"},
    {ACT_PROJECT_WORK_READ, "project.work_read"},
    {ACT_WEBHOOK_MANAGE, "webhook.manage"},
};

static const char *action_name(policy_action act)
{
    for (size_t i = 0; i < sizeof ACTION_NAMES / sizeof ACTION_NAMES[0]; i++)
        if (ACTION_NAMES[i].act == act)
            return ACTION_NAMES[i].name;
    return NULL;
}

static int action_of(const char *name, policy_action *out)
{
    for (size_t i = 0; name && i < sizeof ACTION_NAMES / sizeof ACTION_NAMES[0]; i++)
        if (!strcmp(ACTION_NAMES[i].name, name)) {
            *out = ACTION_NAMES[i].act;
            return 1;
        }
    return 0;
}

static void trail_add(policy_trail *t, policy_action act, const char *resource)
{
    if (resource && strlen(resource) >= sizeof t->resource[0])
        return; /* no resource we check is this long; a replay checks the rest */
    for (int i = 0; i < t->n; i++)
        if (t->act[i] == act && t->has_resource[i] == (resource != NULL) &&
            (!resource || !strcmp(t->resource[i], resource)))
            return;
    if (t->n == TRAIL_MAX)
        return;
    t->act[t->n] = act;
    t->has_resource[t->n] = resource != NULL;
    snprintf(t->resource[t->n], sizeof t->resource[0], "%s", resource ? resource : "");
    t->n++;
}

policy_decision policy_check(PGconn *conn, const caller *who, policy_action act,
                             const char *resource)
{
    if (!who)
        return POLICY_FORBIDDEN;
    policy_decision d = decide(conn, who, act, resource);
    if (d == POLICY_ALLOW && who->trail)
        trail_add(who->trail, act, resource);
    return d;
}

policy_trail *policy_trail_new(void)
{
    return xcalloc(1, sizeof(policy_trail));
}

void policy_trail_free(policy_trail *t)
{
    free(t);
}

char *policy_trail_json(const policy_trail *t)
{
    json_t *a = json_array();
    for (int i = 0; t && i < t->n; i++)
        json_array_append_new(a, json_pack("[s, s?]", action_name(t->act[i]),
                                           t->has_resource[i] ? t->resource[i] : NULL));
    char *out = json_dumps(a, JSON_COMPACT);
    json_decref(a);
    return out ? out : xstrdup("[]");
}

policy_decision policy_recheck(PGconn *conn, const caller *who, const char *trail_json, char *what,
                               size_t cap)
{
    snprintf(what, cap, "replay");
    if (!trail_json)
        return POLICY_ALLOW;
    json_t *a = json_loads(trail_json, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_array(a)) {
        json_decref(a);
        return POLICY_FORBIDDEN; /* not written by policy_trail_json: do not replay */
    }
    policy_decision d = POLICY_ALLOW;
    size_t i;
    json_t *e;
    json_array_foreach(a, i, e)
    {
        policy_action act;
        const char *name = json_string_value(json_array_get(e, 0));
        const char *resource = json_string_value(json_array_get(e, 1));
        if (!action_of(name, &act)) {
            d = POLICY_FORBIDDEN;
            break;
        }
        d = decide(conn, who, act, resource);
        if (d != POLICY_ALLOW) {
            snprintf(what, cap, "replay of an answer given under %s%s%s", name, resource ? " " : "",
                     resource ? resource : "");
            break;
        }
    }
    json_decref(a);
    return d;
}

int policy_answer(http_req *req, policy_decision d, const char *what)
{
    if (d == POLICY_ALLOW)
        return 0;
    caller *c = http_identity(req); /* what access_before attached (identity/access.c) */
    if (d == POLICY_ERROR) {
        http_problem_unavailable(req);
        return 1;
    }
    if (c) {
        c->denied = 1;
        snprintf(c->deny_reason, sizeof c->deny_reason, "%s %s",
                 d == POLICY_HIDDEN ? "not visible:" : "forbidden:", what);
    }
    if (d == POLICY_HIDDEN)
        http_problem(req, 404, "not-found", "Not found", NULL, "no resource at this path");
    else
        http_problem(req, 403, "forbidden", "Forbidden", NULL,
                     "your roles do not allow this: %s", what);
    return 1;
}
