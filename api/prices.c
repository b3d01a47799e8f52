/* The VM price table that compute estimates come from, and the per-family
 * node quotas of projects: read by data scientists, set by admins. */
#include "api.h"
#include "http/app.h"
#include "identity/access.h"
#include "identity/policy.h"
#include "lib/util.h"
#include "http/validate.h"

#include <stdio.h>
#include <string.h>

#define PRICE_JSON                                                                                 \
    "json_build_object('region', p.region, 'vm_size', p.vm_size, 'family', p.family, 'vcpus',"    \
    " p.vcpus, 'memory_gib', p.memory_gib::float8, 'dedicated_hourly_usd',"                        \
    " p.dedicated_hourly_usd::float8, 'low_priority_hourly_usd',"                                  \
    " p.low_priority_hourly_usd::float8, 'updated_by', p.updated_by, 'updated_at', p.updated_at,"  \
    " 'version', p.version)"

static const char *check_word(const char *s)
{
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_'))
            return "must be letters, digits or '_'";
    return NULL;
}

void api_prices_list(http_req *req)
{
    char region[48];
    int hr = http_query(req, "region", region, sizeof region);
    if (hr == -2) {
        http_problem_field(req, "region", "is too long");
        return;
    }
    if (policy_answer(req, policy_check(NULL, access_caller(req), ACT_PRICE_READ, NULL),
                      "read prices"))
        return;
    PGconn *c = api_conn(req);
    if (!c)
        return;
    PGresult *r = db_exec(c,
                          "SELECT json_build_object('items', coalesce(json_agg(" PRICE_JSON
                          " ORDER BY p.region, p.family, p.vcpus, p.vm_size), '[]'))::text"
                          " FROM vm_prices p WHERE $1::text IS NULL OR p.region = $1",
                          1, (const char *[]){hr >= 0 ? region : NULL}, NULL);
    api_release(req, c);
    if (!r) {
        http_problem_unavailable(req);
        return;
    }
    http_reply_bytes(req, 200, "application/json", PQgetvalue(r, 0, 0),
                     (size_t)PQgetlength(r, 0, 0));
    PQclear(r);
}

/* PUT /api/v1/prices/{region}/{vm_size}: creates or replaces one price. */
void api_prices_put(http_req *req)
{
    caller *who = access_caller(req);
    const char *region = http_param(req, "region"), *vm = http_param(req, "vm_size");
    json_t *body = NULL;
    if (policy_answer(req, policy_check(NULL, who, ACT_PRICE_MANAGE, NULL), "set prices") ||
        http_read_json(req, &body))
        return;
    validator v;
    v_init(&v);
    static const char *const allowed[] = {"family", "vcpus", "memory_gib", "dedicated_hourly_usd",
                                          "low_priority_hourly_usd", NULL};
    v_only(&v, body, allowed);
    const char *family = v_string(&v, body, "family", 1, 64, check_word);
    long long vcpus = 0;
    double mem = 0, ded = 0, low = 0;
    v_integer(&v, body, "vcpus", 1, 1024, &vcpus);
    v_number(&v, body, "memory_gib", 0.01, 100000, &mem);
    v_number(&v, body, "dedicated_hourly_usd", 0, 100000, &ded);
    v_number(&v, body, "low_priority_hourly_usd", 0, 100000, &low);
    static const char *const needed[] = {"vcpus", "memory_gib", "dedicated_hourly_usd",
                                         "low_priority_hourly_usd", NULL};
    for (int i = 0; needed[i]; i++)
        if (!json_object_get(body, needed[i]))
            v_error(&v, needed[i], "is required");
    if (strlen(region) > 40 || check_word(region))
        v_error(&v, "region", "must be an Azure region name such as eastus");
    if (strlen(vm) > 64 || check_word(vm))
        v_error(&v, "vm_size", "must be a VM size such as Standard_DS3_v2");
    if (v_finish(&v, req)) {
        json_decref(body);
        return;
    }
    char subject[160];
    snprintf(subject, sizeof subject, "prices/%s/%s", region, vm);
    access_set_subject(req, subject);
    PGconn *c = api_conn(req);
    if (!c) {
        json_decref(body);
        return;
    }
    PGresult *r = db_exec(c, "SELECT version FROM vm_prices WHERE region = $1 AND vm_size = $2", 2,
                          (const char *[]){region, vm}, NULL);
    int exists = r && PQntuples(r) == 1;
    if (!r || (exists && api_if_match_fails(req, PQgetvalue(r, 0, 0)))) {
        if (!r)
            http_problem_unavailable(req);
        PQclear(r);
        api_release(req, c);
        json_decref(body);
        return;
    }
    PQclear(r);
    char sv[16], sm[32], sd[32], sl[32];
    snprintf(sv, sizeof sv, "%lld", vcpus);
    snprintf(sm, sizeof sm, "%.2f", mem);
    snprintf(sd, sizeof sd, "%.4f", ded);
    snprintf(sl, sizeof sl, "%.4f", low);
    r = db_exec(c,
                "INSERT INTO vm_prices AS p(region, vm_size, family, vcpus, memory_gib,"
                " dedicated_hourly_usd, low_priority_hourly_usd, updated_by)"
                " VALUES ($1, $2, $3, $4::int, $5::numeric, $6::numeric, $7::numeric, $8)"
                " ON CONFLICT (region, vm_size) DO UPDATE SET family = EXCLUDED.family,"
                " vcpus = EXCLUDED.vcpus, memory_gib = EXCLUDED.memory_gib,"
                " dedicated_hourly_usd = EXCLUDED.dedicated_hourly_usd,"
                " low_priority_hourly_usd = EXCLUDED.low_priority_hourly_usd,"
                " updated_by = EXCLUDED.updated_by, updated_at = now(), version = p.version + 1"
                " RETURNING " PRICE_JSON "::text, p.version",
                8, (const char *[]){region, vm, family, sv, sm, sd, sl, who->id.oid}, NULL);
    api_release(req, c);
    char loc[160];
    snprintf(loc, sizeof loc, "/api/v1/prices/%s/%s", region, vm);
    api_reply_versioned(req, r, exists ? 200 : 201, loc);
    PQclear(r);
    json_decref(body);
}

#define QUOTA_JSON                                                                                 \
    "json_build_object('project', q.project_id, 'family', q.family, 'max_nodes', q.max_nodes,"    \
    " 'in_use', (SELECT coalesce(sum(t.max_nodes), 0) FROM compute_targets t"                      \
    " WHERE t.project_id = q.project_id AND t.family = q.family AND t.state IN ('approved',"       \
    " 'provisioning', 'ready', 'planned', 'failed', 'deleting')), 'updated_by', q.updated_by,"    \
    " 'updated_at', q.updated_at, 'version', q.version)"

void api_quotas_list(http_req *req)
{
    const char *project = http_param(req, "project");
    PGconn *c = api_conn(req);
    if (!c)
        return;
    if (!policy_answer(req, policy_check(c, access_caller(req), ACT_COMPUTE_READ, project),
                       "quotas")) {
        PGresult *r = db_exec(c,
                              "SELECT json_build_object('items', coalesce(json_agg(" QUOTA_JSON
                              " ORDER BY q.family), '[]'))::text FROM project_quotas q"
                              " WHERE q.project_id = $1",
                              1, (const char *[]){project}, NULL);
        if (r)
            http_reply_bytes(req, 200, "application/json", PQgetvalue(r, 0, 0),
                             (size_t)PQgetlength(r, 0, 0));
        else
            http_problem_unavailable(req);
        PQclear(r);
    }
    api_release(req, c);
}

/* PUT /api/v1/projects/{project}/quotas/{family}: admins only. */
void api_quotas_put(http_req *req)
{
    caller *who = access_caller(req);
    const char *project = http_param(req, "project"), *family = http_param(req, "family");
    json_t *body = NULL;
    PGconn *c = api_conn(req);
    if (!c)
        return;
    if (policy_answer(req, policy_check(c, who, ACT_PROJECT_SET_LIMITS, project), "set quotas") ||
        http_read_json(req, &body))
        goto out;
    validator v;
    v_init(&v);
    static const char *const allowed[] = {"max_nodes", NULL};
    v_only(&v, body, allowed);
    long long n = -1;
    if (!v_integer(&v, body, "max_nodes", 0, 100000, &n) && !json_object_get(body, "max_nodes"))
        v_error(&v, "max_nodes", "is required");
    if (strlen(family) > 64 || strlen(family) < 2 || check_word(family))
        v_error(&v, "family", "must be a VM family such as standardDSv2Family");
    if (v_finish(&v, req))
        goto out;
    char subject[200];
    snprintf(subject, sizeof subject, "projects/%s/quotas/%s", project, family);
    access_set_subject(req, subject);
    char sn[24];
    snprintf(sn, sizeof sn, "%lld", n);
    PGresult *r = db_exec(c,
                          "INSERT INTO project_quotas AS q(project_id, family, max_nodes,"
                          " updated_by) VALUES ($1, $2, $3::int, $4)"
                          " ON CONFLICT (project_id, family) DO UPDATE SET max_nodes ="
                          " EXCLUDED.max_nodes, updated_by = EXCLUDED.updated_by,"
                          " updated_at = now(), version = q.version + 1"
                          " RETURNING " QUOTA_JSON "::text, q.version",
                          4, (const char *[]){project, family, sn, who->id.oid}, NULL);
    api_reply_versioned(req, r, 200, NULL);
    PQclear(r);
out:
    json_decref(body);
    api_release(req, c);
}
