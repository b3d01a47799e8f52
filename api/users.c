/* GET /api/v1/users: the people Roastery has seen (admins only). */
#include "api.h"
#include "identity/access.h"
#include "identity/policy.h"
#include "lib/util.h"

#include <stdio.h>

void api_users_list(http_req *req)
{
    if (policy_answer(req, policy_check(NULL, access_caller(req), ACT_USER_LIST, NULL),
                      "list users"))
        return;
    long limit;
    char cursor[80], name[200];
    if (api_limit(req, &limit))
        return;
    int has_cursor = http_query(req, "cursor", cursor, sizeof cursor);
    int has_name = http_query(req, "name", name, sizeof name);
    if (has_cursor == -2 || has_name == -2) {
        http_problem_field(req, has_cursor == -2 ? "cursor" : "name", "is too long");
        return;
    }
    char lim[24];
    snprintf(lim, sizeof lim, "%ld", limit + 1);
    PGconn *c = api_conn(req);
    if (!c)
        return;
    const char *p[] = {has_cursor >= 0 ? cursor : NULL, has_name >= 0 ? name : NULL, lim};
    PGresult *r = db_exec(c,
                          "SELECT u.oid, json_build_object('oid', u.oid, 'tid', u.tid, 'name',"
                          " u.name, 'roles', to_json(u.roles), 'first_seen', u.first_seen,"
                          " 'last_seen', u.last_seen)::text FROM users u"
                          " WHERE ($1::text IS NULL OR u.oid > $1)"
                          " AND ($2::text IS NULL OR u.name ILIKE '%' || $2 || '%')"
                          " ORDER BY u.oid LIMIT $3::int",
                          3, p, NULL);
    api_release(req, c);
    if (!r) {
        http_problem_unavailable(req);
        return;
    }
    api_reply_page(req, r, 0, 1, limit);
    PQclear(r);
}
