/* Access policy. Roles come from the token; project membership and store
 * assignments from the platform's own tables, never from the request. */
#include "identity/policy.h"
#include "db/db.h"
#include "lib/util.h"

#include <stdio.h>
#include <string.h>

int policy_is_admin(const caller *who)
{
    return who && (who->id.roles & AUTH_ROLE_PLATFORM_ADMIN);
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

policy_decision policy_check(PGconn *conn, const caller *who, policy_action act,
                             const char *resource)
{
    if (!who)
        return POLICY_FORBIDDEN;
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
        /* Store managers never see datasets or compute, even as project members. */
        if (!admin && !(who->id.roles & AUTH_ROLE_DATA_SCIENTIST))
            return POLICY_HIDDEN;
        return project_decision(conn, who, resource,
                                act == ACT_DATASET_READ || act == ACT_COMPUTE_READ
                                    ? PROJECT_READER
                                    : PROJECT_CONTRIBUTOR);
    case ACT_PRICE_READ:
        return admin || (who->id.roles & AUTH_ROLE_DATA_SCIENTIST) ? POLICY_ALLOW
                                                                   : POLICY_FORBIDDEN;
    case ACT_STORE_READ:
        return store_decision(conn, who, resource);
    case ACT_STORE_MANAGE:
    case ACT_PRICE_MANAGE:
    case ACT_AUDIT_READ:
    case ACT_USER_LIST:
        return admin ? POLICY_ALLOW : POLICY_FORBIDDEN;
    }
    return POLICY_FORBIDDEN;
}

int policy_answer(http_req *req, policy_decision d, const char *what)
{
    if (d == POLICY_ALLOW)
        return 0;
    caller *c = access_caller(req);
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
