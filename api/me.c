/* GET /api/v1/me: who the caller is, their roles, projects and stores. */
#include "api.h"
#include "identity/access.h"
#include "identity/policy.h"

#include <stdio.h>

void api_me(http_req *req)
{
    caller *who = access_caller(req);
    char roles[128], arr[140];
    auth_roles_format(who->id.roles, roles, sizeof roles);
    snprintf(arr, sizeof arr, "{%s}", roles);
    PGconn *c = api_conn(req);
    if (!c)
        return;
    const char *p[] = {who->id.oid, who->id.tid, who->id.name, arr};
    PGresult *r = db_exec(
        c,
        "SELECT json_build_object('oid', $1::text, 'tid', $2::text, 'name', $3::text,"
        " 'roles', to_json($4::text[]),"
        " 'projects', coalesce((SELECT json_agg(json_build_object('id', p.id, 'display_name',"
        "   p.display_name, 'role', m.role) ORDER BY p.id) FROM project_members m"
        "   JOIN projects p ON p.id = m.project_id WHERE m.user_oid = $1), '[]'::json),"
        " 'stores', coalesce((SELECT json_agg(json_build_object('id', s.id, 'name', s.name,"
        "   'country', s.country, 'city', s.city, 'timezone', s.timezone) ORDER BY s.id)"
        "   FROM store_assignments a JOIN stores s ON s.id = a.store_id"
        "   WHERE a.user_oid = $1), '[]'::json))::text",
        4, p, NULL);
    api_release(req, c);
    if (!r) {
        http_problem_unavailable(req);
        return;
    }
    http_reply_bytes(req, 200, "application/json", PQgetvalue(r, 0, 0),
                     (size_t)PQgetlength(r, 0, 0));
    PQclear(r);
}
