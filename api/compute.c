/* Compute requests. Each request is priced from the VM price table and
 * decided by policy in the same transaction that writes it: within the
 * project's quota (nodes per VM family) and monthly budget it is approved
 * and its provisioning operation queued; beyond, it waits for a platform
 * admin who is not the requester. */
#include "api.h"
#include "http/app.h"
#include "compute/compute_plan.h"
#include "ops/ops.h"
#include "identity/access.h"
#include "identity/policy.h"
#include "exec/terraform.h"
#include "lib/util.h"
#include "http/validate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define COMPUTE_JSON                                                                               \
    "json_build_object('id', t.id, 'project', t.project_id, 'name', t.name, 'kind', t.kind,"      \
    " 'region', t.region, 'vm_size', t.vm_size, 'family', t.family, 'priority', t.priority,"      \
    " 'min_nodes', t.min_nodes, 'max_nodes', t.max_nodes, 'idle_minutes', t.idle_minutes,"        \
    " 'expires_at', t.expires_at, 'state', t.state, 'hourly_usd', t.hourly_usd::float8,"          \
    " 'monthly_estimate_usd', t.monthly_estimate_usd::float8,"                                     \
    " 'project_committed_usd', (SELECT coalesce(sum(o.monthly_estimate_usd), 0)::float8"          \
    " FROM compute_targets o WHERE o.project_id = t.project_id AND o.state IN " COMMITTED "),"    \
    " 'project_monthly_budget_usd', (SELECT p.monthly_budget_usd::float8 FROM projects p"         \
    " WHERE p.id = t.project_id), 'decision', t.decision, 'decided_by', t.decided_by,"            \
    " 'decided_at', t.decided_at, 'decision_reason', t.decision_reason, 'executor', t.executor,"  \
    " 'plan_summary', t.plan_summary, 'outputs', t.outputs, 'arm_id', t.arm_id, 'failure',"       \
    " t.failure, 'operation_id', t.operation_id, 'requested_by', t.requested_by,"                 \
    " 'change_requested_by', coalesce(t.change_requested_by, t.requested_by), 'created_at',"      \
    " t.created_at, 'updated_at', t.updated_at, 'deleted_at', t.deleted_at, 'version',"           \
    " t.version)"

/* States whose compute counts against quota and budget. */
#define COMMITTED "('approved', 'provisioning', 'ready', 'planned', 'failed', 'deleting')"

/* Azure ML's rules for compute names (3 to 16 characters, a letter first,
 * a letter or digit last), so the request fails here rather than in apply. */
static const char *check_name(const char *s)
{
    static const char *const rule = "must be 3 to 16 characters: a lower-case letter, then "
                                    "letters, digits or '-', ending in a letter or digit";
    size_t n = strlen(s);
    if (n < 3 || n > 16 || s[0] < 'a' || s[0] > 'z' || s[n - 1] == '-')
        return rule;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
            return rule;
    return NULL;
}

/* Compute instances also refuse names ending in -<digits> (and shorter than 4). */
static const char *check_instance_name(const char *s)
{
    size_t n = strlen(s), i = n;
    while (i > 0 && s[i - 1] >= '0' && s[i - 1] <= '9')
        i--;
    if (n < 4 || (i < n && i > 0 && s[i - 1] == '-'))
        return "must be at least 4 characters and not end in '-' and digits (Azure ML's rule "
               "for compute instances)";
    return NULL;
}

static const char *check_kind(const char *s)
{
    return strcmp(s, "cluster") && strcmp(s, "inference") && strcmp(s, "instance") &&
                   strcmp(s, "local")
               ? "must be cluster, inference, instance or local"
               : NULL;
}

static const char *check_priority(const char *s)
{
    return strcmp(s, "dedicated") && strcmp(s, "low_priority")
               ? "must be dedicated or low_priority"
               : NULL;
}

static const char *check_word(const char *s)
{
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_'))
            return "must be letters, digits or '_'";
    return NULL;
}

/* The local executor's ceiling on slots: configured, else the CPU count. */
static long local_cap(const config *cfg)
{
    if (cfg->local_slots > 0)
        return cfg->local_slots;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? n : 1;
}

typedef struct {
    const char *project, *kind, *region, *vm_size, *priority, *self; /* self: NULL on create */
    long long min_nodes, max_nodes;
} ask;

typedef struct {
    char family[72];
    double hourly, monthly;
    int approved;
    json_t *decision; /* new */
} verdict;

/* Prices and decides a request inside the caller's transaction (the
 * project row is locked first, so two requests cannot both fit the same
 * headroom). Answers the request and returns 1 on a problem. */
static int decide(http_req *req, PGconn *c, const ask *a, verdict *out)
{
    app_ctx *app = http_app(req);
    PGresult *r = db_exec(c, "SELECT 1 FROM projects WHERE id = $1 FOR UPDATE", 1,
                          (const char *[]){a->project}, NULL);
    if (!r) {
        http_problem_unavailable(req);
        return 1;
    }
    PQclear(r);
    char cap[24];
    snprintf(cap, sizeof cap, "%ld", local_cap(app->cfg));
    r = db_exec(c,
                "SELECT pr.family, (CASE WHEN $4 = 'low_priority' THEN pr.low_priority_hourly_usd"
                " ELSE pr.dedicated_hourly_usd END)::float8,"
                " coalesce(q.max_nodes, CASE WHEN pr.family = 'local' THEN $5::int ELSE 0 END),"
                " (SELECT coalesce(sum(t.max_nodes), 0) FROM compute_targets t"
                "  WHERE t.project_id = p.id AND t.family = pr.family AND t.state IN " COMMITTED
                "  AND t.id IS DISTINCT FROM $6::uuid),"
                " (SELECT coalesce(sum(t.monthly_estimate_usd), 0)::float8 FROM compute_targets t"
                "  WHERE t.project_id = p.id AND t.state IN " COMMITTED
                "  AND t.id IS DISTINCT FROM $6::uuid),"
                " p.monthly_budget_usd::float8, q.max_nodes IS NOT NULL"
                " FROM projects p JOIN vm_prices pr ON pr.region = $2 AND pr.vm_size = $3"
                " LEFT JOIN project_quotas q ON q.project_id = p.id AND q.family = pr.family"
                " WHERE p.id = $1",
                6,
                (const char *[]){a->project, a->region, a->vm_size, a->priority, cap, a->self},
                NULL);
    if (!r) {
        http_problem_unavailable(req);
        return 1;
    }
    if (PQntuples(r) != 1) {
        PQclear(r);
        char reason[200];
        snprintf(reason, sizeof reason,
                 "has no price in region %s: see GET /api/v1/prices, or ask an admin to add it",
                 a->region);
        http_problem_field(req, "vm_size", reason);
        return 1;
    }
    snprintf(out->family, sizeof out->family, "%s", PQgetvalue(r, 0, 0));
    out->hourly = strtod(PQgetvalue(r, 0, 1), NULL);
    long long quota = strtoll(PQgetvalue(r, 0, 2), NULL, 10);
    long long used = strtoll(PQgetvalue(r, 0, 3), NULL, 10);
    double committed = strtod(PQgetvalue(r, 0, 4), NULL);
    double budget = strtod(PQgetvalue(r, 0, 5), NULL);
    int quota_set = PQgetvalue(r, 0, 6)[0] == 't';
    PQclear(r);
    long long nodes = !strcmp(a->kind, "instance") ? 1 : a->max_nodes;
    out->monthly = (double)nodes * out->hourly * COMPUTE_PLAN_HOURS_PER_MONTH;
    /* Cents, so the stored estimate and the figures in the decision agree. */
    out->monthly = (double)(long long)(out->monthly * 100 + 0.5) / 100;
    int in_quota = used + nodes <= quota;
    /* Free compute (local slots) never needs budget, even when the
     * project is already over it. */
    int in_budget = out->monthly <= 0 || committed + out->monthly <= budget + 0.005;
    out->approved = in_quota && in_budget;
    json_t *reasons = json_array();
    char line[300];
    if (!in_quota) {
        snprintf(line, sizeof line,
                 "quota: %lld %s nodes in use or approved plus %lld asked exceed the project's "
                 "quota of %lld%s",
                 used, out->family, nodes, quota, quota_set ? "" : " (no quota set for the family)");
        json_array_append_new(reasons, json_string(line));
    }
    if (!in_budget) {
        snprintf(line, sizeof line,
                 "budget: %.2f USD a month committed plus %.2f asked exceed the monthly budget of "
                 "%.2f USD",
                 committed, out->monthly, budget);
        json_array_append_new(reasons, json_string(line));
    }
    out->decision = json_pack(
        "{s:b, s:s, s:{s:s, s:I, s:I, s:I, s:b}, s:{s:f, s:f, s:f, s:b}, s:o}", "automatic",
        out->approved, "verdict", out->approved ? "approved" : "pending_approval", "quota",
        "family", out->family, "limit", (json_int_t)quota, "in_use", (json_int_t)used, "asked",
        (json_int_t)nodes, "within", in_quota, "budget", "monthly_usd", budget, "committed_usd",
        committed, "estimate_usd", out->monthly, "within", in_budget, "reasons", reasons);
    return 0;
}

/* 503 unless the executor can carry out a kind that needs Azure. */
static int executor_refuses(http_req *req, const char *kind)
{
    app_ctx *app = http_app(req);
    if (strcmp(app->cfg->executor, "azure") || !compute_plan_module(kind))
        return 0;
    char *bin = terraform_find(app->cfg->terraform_bin);
    if (bin) {
        free(bin);
        return 0;
    }
    http_problem(req, 503, "executor-unavailable", "Executor unavailable", NULL,
                 "the azure executor needs the terraform CLI, and ROASTERY_TERRAFORM_BIN=%s is "
                 "not an executable file here: install terraform or point the variable at it",
                 app->cfg->terraform_bin);
    return 1;
}

/* Enqueues kind for compute id and links it; inside the caller's
 * transaction. The subject names the project, so its members see the
 * operation. */
static int enqueue(PGconn *c, const char *kind, const char *project, const char *id,
                   const char *who, char op[37])
{
    char subject[200];
    snprintf(subject, sizeof subject, "projects/%s/compute/%s", project, id);
    json_t *in = json_pack("{s:s}", "compute_id", id);
    int rc = ops_enqueue(c, kind, subject, in, who, 5, op);
    json_decref(in);
    if (rc)
        return rc;
    PGresult *r = db_exec(c, "UPDATE compute_targets SET operation_id = $2::uuid WHERE id = $1",
                          2, (const char *[]){id, op}, NULL);
    if (!r)
        return RST_EDB;
    PQclear(r);
    return RST_OK;
}

static void rollback(PGconn *c)
{
    PQclear(PQexec(c, "ROLLBACK"));
}

/* Commits and answers the compute row: 202 with the operation when one was
 * queued, else status. */
static void commit_and_reply(http_req *req, PGconn *c, const char *id, const char *op, int status)
{
    /* Read inside the transaction: the answer describes what was accepted, not how far
     * a fast worker has already taken it after the commit. */
    PGresult *r = db_exec(c, "SELECT " COMPUTE_JSON "::text, t.version FROM compute_targets t"
                             " WHERE t.id = $1",
                          1, (const char *[]){id}, NULL);
    PGresult *done = r ? db_exec(c, "COMMIT", 0, NULL, NULL) : NULL;
    if (!done) {
        PQclear(r);
        rollback(c);
        http_problem_unavailable(req);
        return;
    }
    PQclear(done);
    char loc[96];
    if (op && op[0])
        snprintf(loc, sizeof loc, "/api/v1/operations/%s", op);
    else
        snprintf(loc, sizeof loc, "/api/v1/compute/%s", id);
    if (op && op[0] && r && PQntuples(r) == 1) {
        api_etag(req, PQgetvalue(r, 0, 1));
        http_add_header(req, "Location", loc);
        http_reply_bytes(req, 202, "application/json", PQgetvalue(r, 0, 0),
                         (size_t)PQgetlength(r, 0, 0));
    } else {
        api_reply_versioned(req, r, status, loc);
    }
    PQclear(r);
}

static int begin(http_req *req, PGconn *c)
{
    PGresult *r = db_exec(c, "BEGIN", 0, NULL, NULL);
    if (!r) {
        http_problem_unavailable(req);
        return 1;
    }
    PQclear(r);
    return 0;
}

void api_compute_create(http_req *req)
{
    app_ctx *app = http_app(req);
    caller *who = access_caller(req);
    const char *project = http_param(req, "project");
    json_t *body = NULL;
    verdict vd = {0};
    PGconn *c = api_conn(req);
    if (!c)
        return;
    if (policy_answer(req, policy_check(c, who, ACT_COMPUTE_WRITE, project), "compute") ||
        http_read_json(req, &body))
        goto out;
    validator v;
    v_init(&v);
    static const char *const allowed[] = {"name",      "kind",         "vm_size",  "region",
                                          "min_nodes", "max_nodes",    "priority", "idle_minutes",
                                          "expires_at", NULL};
    v_only(&v, body, allowed);
    const char *name = v_string(&v, body, "name", 1, 16, check_name);
    const char *kind = v_string(&v, body, "kind", 1, 16, check_kind);
    int local = kind && !strcmp(kind, "local");
    const char *vm = v_string(&v, body, "vm_size", !local, 64, check_word);
    const char *region = v_string(&v, body, "region", 0, 40, check_word);
    const char *prio = v_string(&v, body, "priority", 0, 16, check_priority);
    const char *expires = v_string(&v, body, "expires_at", 0, 40, v_check_printable);
    long long min_nodes = 0, max_nodes = 1, idle = 30;
    v_integer(&v, body, "min_nodes", 0, 1000, &min_nodes);
    v_integer(&v, body, "max_nodes", 1, 1000, &max_nodes);
    v_integer(&v, body, "idle_minutes", 0, 10080, &idle);
    if (min_nodes > max_nodes)
        v_error(&v, "min_nodes", "must not be more than max_nodes");
    if (kind && !strcmp(kind, "inference") && min_nodes < 1 && json_object_get(body, "min_nodes"))
        v_error(&v, "min_nodes", "must be at least 1: an AKS node pool keeps one node");
    if (kind && !strcmp(kind, "instance") && name && check_instance_name(name))
        v_error(&v, "name", check_instance_name(name));
    if (kind && !strcmp(kind, "instance") && (min_nodes > 1 || max_nodes > 1))
        v_error(&v, "max_nodes", "must be 1: a compute instance is one VM");
    if (local && (vm && strcmp(vm, "local")))
        v_error(&v, "vm_size", "must be local (or absent) for the local kind");
    if (local && max_nodes > local_cap(app->cfg))
        v_error(&v, "max_nodes", "is more slots than this machine grants (ROASTERY_LOCAL_SLOTS)");
    if (v_finish(&v, req) || executor_refuses(req, kind))
        goto out;
    if (!strcmp(kind, "inference") && min_nodes < 1)
        min_nodes = 1;
    if (!strcmp(kind, "instance"))
        min_nodes = max_nodes = 1;
    if (local) {
        vm = "local";
        region = "local";
    }
    if (!region)
        region = app->cfg->azure_location;
    if (!prio)
        prio = "dedicated";
    if (begin(req, c))
        goto out;
    if (expires) {
        char state[6];
        PGresult *r = db_exec(c, "SELECT $1::timestamptz > now()", 1, (const char *[]){expires},
                              state);
        int future = r && PQgetvalue(r, 0, 0)[0] == 't';
        PQclear(r);
        if (!future) {
            rollback(c);
            http_problem_field(req, "expires_at",
                               r ? "must be in the future" : "must be an RFC 3339 timestamp");
            goto out;
        }
    }
    ask a = {.project = project,
             .kind = kind,
             .region = region,
             .vm_size = vm,
             .priority = prio,
             .min_nodes = min_nodes,
             .max_nodes = max_nodes};
    if (decide(req, c, &a, &vd)) {
        rollback(c);
        goto out;
    }
    char mn[24], mx[24], id_[24], hr[32], mo[32];
    snprintf(mn, sizeof mn, "%lld", min_nodes);
    snprintf(mx, sizeof mx, "%lld", max_nodes);
    snprintf(id_, sizeof id_, "%lld", idle);
    snprintf(hr, sizeof hr, "%.4f", vd.hourly);
    snprintf(mo, sizeof mo, "%.2f", vd.monthly);
    char *dec = json_dumps(vd.decision, JSON_COMPACT);
    char state[6];
    PGresult *r = db_exec(
        c,
        "INSERT INTO compute_targets(project_id, name, kind, region, vm_size, family, priority,"
        " min_nodes, max_nodes, idle_minutes, expires_at, state, hourly_usd,"
        " monthly_estimate_usd, decision, executor, requested_by)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8::int, $9::int, $10::int, $11::timestamptz, $12,"
        " $13::numeric, $14::numeric, $15::jsonb, $16, $17) RETURNING id",
        17,
        (const char *[]){project, name, kind, region, vm, vd.family, prio, mn, mx, id_, expires,
                         vd.approved ? "approved" : "pending_approval", hr, mo, dec,
                         app->cfg->executor, who->id.oid},
        state);
    free(dec);
    if (!r) {
        rollback(c);
        if (!strcmp(state, "23505"))
            http_problem(req, 409, "conflict", "Already exists", NULL,
                         "a compute named %s exists in this workspace (Azure ML names are unique"
                         " per workspace until deleted)",
                         name);
        else
            http_problem_unavailable(req);
        goto out;
    }
    char id[40], op[37] = "";
    snprintf(id, sizeof id, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    char subject[80];
    snprintf(subject, sizeof subject, "compute/%s", id);
    access_set_subject(req, subject);
    if (vd.approved && enqueue(c, "compute.provision", project, id, who->id.oid, op)) {
        rollback(c);
        http_problem_unavailable(req);
        goto out;
    }
    commit_and_reply(req, c, id, op, 201);
out:
    json_decref(vd.decision);
    json_decref(body);
    api_release(req, c);
}

/* Loads the compute's project for the access check; 404 when absent. */
static int compute_project(http_req *req, PGconn *c, const char *id, char *project, size_t len)
{
    if (strlen(id) != 36) {
        http_problem(req, 404, "not-found", "Not found", NULL, "no compute %s", id);
        return 1;
    }
    PGresult *r = db_exec(c, "SELECT project_id FROM compute_targets WHERE id::text = $1", 1,
                          (const char *[]){id}, NULL);
    if (!r) {
        http_problem_unavailable(req);
        return 1;
    }
    int found = PQntuples(r) == 1;
    if (found)
        snprintf(project, len, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    if (!found)
        http_problem(req, 404, "not-found", "Not found", NULL, "no compute %s", id);
    return !found;
}

void api_compute_show(http_req *req)
{
    const char *id = http_param(req, "id");
    char project[80];
    PGconn *c = api_conn(req);
    if (!c)
        return;
    if (!compute_project(req, c, id, project, sizeof project) &&
        !policy_answer(req, policy_check(c, access_caller(req), ACT_COMPUTE_READ, project),
                       "compute")) {
        PGresult *r = db_exec(c,
                              "SELECT " COMPUTE_JSON
                              "::text, t.version FROM compute_targets t WHERE t.id::text = $1",
                              1, (const char *[]){id}, NULL);
        api_reply_versioned(req, r, 200, NULL);
        PQclear(r);
    }
    api_release(req, c);
}

void api_compute_plan(http_req *req)
{
    const char *id = http_param(req, "id");
    char project[80];
    PGconn *c = api_conn(req);
    if (!c)
        return;
    if (!compute_project(req, c, id, project, sizeof project) &&
        !policy_answer(req, policy_check(c, access_caller(req), ACT_COMPUTE_READ, project),
                       "compute")) {
        PGresult *r = db_exec(c, "SELECT plan::text, kind FROM compute_targets WHERE id::text = $1",
                              1, (const char *[]){id}, NULL);
        if (!r)
            http_problem_unavailable(req);
        else if (PQgetisnull(r, 0, 0))
            http_problem(req, 404, "not-found", "Not found", NULL,
                         !strcmp(PQgetvalue(r, 0, 1), "local")
                             ? "local compute has no Terraform plan: it is realised as slots here"
                             : "the plan is rendered once the request is approved");
        else
            http_reply_bytes(req, 200, "application/json", PQgetvalue(r, 0, 0),
                             (size_t)PQgetlength(r, 0, 0));
        PQclear(r);
    }
    api_release(req, c);
}

static void list(http_req *req, const char *project)
{
    long limit;
    char state[24], cursor[48];
    int hs = http_query(req, "state", state, sizeof state);
    int hc = http_query(req, "cursor", cursor, sizeof cursor);
    if (api_limit(req, &limit))
        return;
    if (hs == -2 || hc == -2) {
        http_problem_field(req, hs == -2 ? "state" : "cursor", "is too long");
        return;
    }
    caller *who = access_caller(req);
    PGconn *c = api_conn(req);
    if (!c)
        return;
    if (project &&
        policy_answer(req, policy_check(c, who, ACT_COMPUTE_READ, project), "compute")) {
        api_release(req, c);
        return;
    }
    if (!project && !policy_is_admin(who) && !(who->id.roles & AUTH_ROLE_DATA_SCIENTIST)) {
        policy_answer(req, POLICY_FORBIDDEN, "list compute");
        api_release(req, c);
        return;
    }
    char lim[24];
    snprintf(lim, sizeof lim, "%ld", limit + 1);
    /* Admins see every project's compute (the approvals queue); others the
     * projects they are members of. Newest first; the cursor is
     * "<created_at>|<id>" of the last item. */
    PGresult *r = db_exec(
        c,
        "SELECT t.created_at::text || '|' || t.id, " COMPUTE_JSON "::text FROM compute_targets t"
        " WHERE ($1::text IS NULL OR t.project_id = $1)"
        " AND ($2::text IS NULL OR t.state = $2)"
        " AND ($3::boolean OR EXISTS (SELECT 1 FROM project_members m"
        "  WHERE m.project_id = t.project_id AND m.user_oid = $4))"
        " AND ($5::text IS NULL OR (t.created_at, t.id::text) <"
        "  (split_part($5, '|', 1)::timestamptz, split_part($5, '|', 2)))"
        " ORDER BY t.created_at DESC, t.id::text DESC LIMIT $6::int",
        6,
        (const char *[]){project, hs >= 0 ? state : NULL,
                         policy_is_admin(who) ? "true" : "false", who->id.oid,
                         hc >= 0 ? cursor : NULL, lim},
        NULL);
    api_release(req, c);
    if (!r) {
        http_problem_field(req, "cursor", "must be a next_cursor returned by this list");
        return;
    }
    api_reply_page(req, r, 0, 1, limit);
    PQclear(r);
}

void api_compute_list_project(http_req *req)
{
    list(req, http_param(req, "project"));
}

void api_compute_list(http_req *req)
{
    list(req, NULL);
}

/* Locks the compute row for a change and checks access and If-Match; requester gets who
 * asked for the change being decided (the last PATCH's caller, else the original requester).
 * Returns 0 with the transaction open, else answers (and rolls back). */
/* Whether the caller may act on compute id at all, decided before its body is read (a body
 * read for anyone would let a token without roles hold a thread with a slow one). */
static int may_change(http_req *req, PGconn *c, const char *id, policy_action act)
{
    char project[80];
    return compute_project(req, c, id, project, sizeof project) ||
           policy_answer(req, policy_check(c, access_caller(req), act, project), "compute");
}

static int lock_for_change(http_req *req, PGconn *c, const char *id, policy_action act,
                           char *state, size_t slen, char *requester, size_t rlen,
                           char *project, size_t plen)
{
    if (compute_project(req, c, id, project, plen) ||
        policy_answer(req, policy_check(c, access_caller(req), act, project), "compute") ||
        begin(req, c))
        return 1;
    PGresult *r = db_exec(c,
                          "SELECT state, coalesce(change_requested_by, requested_by), version"
                          " FROM compute_targets WHERE id::text = $1 FOR UPDATE",
                          1, (const char *[]){id}, NULL);
    if (!r || PQntuples(r) != 1) {
        PQclear(r);
        rollback(c);
        http_problem_unavailable(req);
        return 1;
    }
    snprintf(state, slen, "%s", PQgetvalue(r, 0, 0));
    snprintf(requester, rlen, "%s", PQgetvalue(r, 0, 1));
    int stale = api_if_match_fails(req, PQgetvalue(r, 0, 2));
    PQclear(r);
    if (stale) {
        rollback(c);
        return 1;
    }
    char subject[80];
    snprintf(subject, sizeof subject, "compute/%s", id);
    access_set_subject(req, subject);
    return 0;
}

static void wrong_state(http_req *req, PGconn *c, const char *state, const char *what)
{
    rollback(c);
    http_problem(req, 409, "conflict", "Wrong state", NULL, "the compute is %s: %s", state, what);
}

/* POST /api/v1/compute/{id}/approve and /reject: a platform admin who did
 * not ask for the change (the request, or the scale-up since) decides, with
 * a reason. */
static void decide_by_admin(http_req *req, int approve)
{
    caller *who = access_caller(req);
    const char *id = http_param(req, "id");
    json_t *body = NULL;
    char state[24], requester[80], project[80];
    PGconn *c = api_conn(req);
    if (!c)
        return;
    if (may_change(req, c, id, ACT_PROJECT_APPROVE) || http_read_json(req, &body))
        goto out;
    validator v;
    v_init(&v);
    static const char *const allowed[] = {"reason", NULL};
    v_only(&v, body, allowed);
    const char *reason = v_string(&v, body, "reason", !approve, 1000, v_check_printable);
    if (v_finish(&v, req) || lock_for_change(req, c, id, ACT_PROJECT_APPROVE, state, sizeof state,
                                             requester, sizeof requester, project, sizeof project))
        goto out;
    if (strcmp(state, "pending_approval")) {
        wrong_state(req, c, state, "only a request pending approval is decided");
        goto out;
    }
    if (policy_four_eyes(who, requester) != POLICY_ALLOW) {
        rollback(c);
        who->denied = 1;
        snprintf(who->deny_reason, sizeof who->deny_reason, "four eyes: own change");
        http_problem(req, 403, "four-eyes", "Four eyes", NULL,
                     "you asked for this change: another platform admin must decide it");
        goto out;
    }
    /* The decision's audit row names whose change it decided. */
    char why[200];
    snprintf(why, sizeof why, "%s the change asked for by %s", approve ? "approved" : "rejected",
             requester);
    app_ctx *app = http_app(req);
    access_audit(app->guard, c, who, approve ? "compute.approve" : "compute.reject",
                 who->subject, "succeeded", approve ? 202 : 200, why, http_request_id(req),
                 http_remote_addr(req));
    char op[37] = "";
    PGresult *r;
    if (approve) {
        r = db_exec(c,
                    "UPDATE compute_targets SET state = 'approved', decided_by = $2,"
                    " decided_at = now(), decision_reason = $3, updated_at = now(),"
                    " version = version + 1 WHERE id::text = $1",
                    3, (const char *[]){id, who->id.oid, reason}, NULL);
        PQclear(r);
        if (!r || enqueue(c, "compute.provision", project, id, who->id.oid, op)) {
            rollback(c);
            http_problem_unavailable(req);
            goto out;
        }
    } else {
        /* A rejected scale-up leaves the compute as it was carried out. */
        r = db_exec(c,
                    "UPDATE compute_targets SET decided_by = $2, decided_at = now(),"
                    " decision_reason = $3, updated_at = now(), version = version + 1,"
                    " state = CASE WHEN applied IS NULL THEN 'rejected' ELSE 'ready' END,"
                    " min_nodes = coalesce((applied->>'min_nodes')::int, min_nodes),"
                    " max_nodes = coalesce((applied->>'max_nodes')::int, max_nodes),"
                    " idle_minutes = coalesce((applied->>'idle_minutes')::int, idle_minutes),"
                    " monthly_estimate_usd = CASE WHEN applied IS NULL THEN monthly_estimate_usd"
                    "  ELSE round(hourly_usd * (applied->>'max_nodes')::int * 730, 2) END"
                    " WHERE id::text = $1",
                    3, (const char *[]){id, who->id.oid, reason}, NULL);
        if (!r) {
            rollback(c);
            http_problem_unavailable(req);
            goto out;
        }
        PQclear(r);
    }
    commit_and_reply(req, c, id, op, 200);
out:
    json_decref(body);
    api_release(req, c);
}

void api_compute_approve(http_req *req)
{
    decide_by_admin(req, 1);
}

void api_compute_reject(http_req *req)
{
    decide_by_admin(req, 0);
}

/* PATCH: scale (nodes, idle time) or move the expiry; decided again. */
void api_compute_update(http_req *req)
{
    app_ctx *app = http_app(req);
    caller *who = access_caller(req);
    const char *id = http_param(req, "id");
    json_t *body = NULL;
    verdict vd = {0};
    char state[24], requester[80], project[80];
    PGconn *c = api_conn(req);
    if (!c)
        return;
    if (may_change(req, c, id, ACT_COMPUTE_WRITE) || http_read_json(req, &body))
        goto out;
    validator v;
    v_init(&v);
    static const char *const allowed[] = {"min_nodes", "max_nodes", "idle_minutes", "expires_at",
                                          NULL};
    v_only(&v, body, allowed);
    long long mn = -1, mx = -1, idle = -1;
    v_integer(&v, body, "min_nodes", 0, 1000, &mn);
    v_integer(&v, body, "max_nodes", 1, 1000, &mx);
    v_integer(&v, body, "idle_minutes", 0, 10080, &idle);
    json_t *ej = json_object_get(body, "expires_at");
    const char *expires = json_is_null(ej) ? NULL : v_string(&v, body, "expires_at", 0, 40,
                                                              v_check_printable);
    if (json_object_size(body) == 0)
        v_error(&v, "body", "name at least one of min_nodes, max_nodes, idle_minutes, expires_at");
    if (v_finish(&v, req) ||
        lock_for_change(req, c, id, ACT_COMPUTE_WRITE, state, sizeof state, requester,
                        sizeof requester, project, sizeof project))
        goto out;
    if (strcmp(state, "ready") && strcmp(state, "planned") && strcmp(state, "failed")) {
        wrong_state(req, c, state, "only ready, planned or failed compute can be changed");
        goto out;
    }
    PGresult *r = db_exec(c,
                          "SELECT kind, region, vm_size, priority, min_nodes, max_nodes,"
                          " idle_minutes FROM compute_targets WHERE id::text = $1",
                          1, (const char *[]){id}, NULL);
    if (!r) {
        rollback(c);
        http_problem_unavailable(req);
        goto out;
    }
    char kind[16], region[48], vm[72], prio[16];
    snprintf(kind, sizeof kind, "%s", PQgetvalue(r, 0, 0));
    snprintf(region, sizeof region, "%s", PQgetvalue(r, 0, 1));
    snprintf(vm, sizeof vm, "%s", PQgetvalue(r, 0, 2));
    snprintf(prio, sizeof prio, "%s", PQgetvalue(r, 0, 3));
    if (mn < 0)
        mn = strtoll(PQgetvalue(r, 0, 4), NULL, 10);
    if (mx < 0)
        mx = strtoll(PQgetvalue(r, 0, 5), NULL, 10);
    if (idle < 0)
        idle = strtoll(PQgetvalue(r, 0, 6), NULL, 10);
    PQclear(r);
    const char *bad = mn > mx                                 ? "must not be more than max_nodes"
                      : !strcmp(kind, "instance") && mx > 1   ? "must be 1: an instance is one VM"
                      : !strcmp(kind, "inference") && mn < 1  ? "must be at least 1 for inference"
                      : !strcmp(kind, "local") && mx > local_cap(app->cfg)
                          ? "is more slots than this machine grants"
                          : NULL;
    if (bad) {
        rollback(c);
        http_problem_field(req, mn > mx || !strcmp(kind, "inference") ? "min_nodes" : "max_nodes",
                           bad);
        goto out;
    }
    ask a = {.project = project,
             .kind = kind,
             .region = region,
             .vm_size = vm,
             .priority = prio,
             .self = id,
             .min_nodes = mn,
             .max_nodes = mx};
    if (decide(req, c, &a, &vd)) {
        rollback(c);
        goto out;
    }
    char smn[24], smx[24], sid[24], mo[32];
    snprintf(smn, sizeof smn, "%lld", mn);
    snprintf(smx, sizeof smx, "%lld", mx);
    snprintf(sid, sizeof sid, "%lld", idle);
    snprintf(mo, sizeof mo, "%.2f", vd.monthly);
    char *dec = json_dumps(vd.decision, JSON_COMPACT);
    char sqlstate[6];
    r = db_exec(c,
                "UPDATE compute_targets SET min_nodes = $2::int, max_nodes = $3::int,"
                " idle_minutes = $4::int, monthly_estimate_usd = $5::numeric, decision = $6::jsonb,"
                " state = $7, decided_by = NULL, decided_at = NULL, decision_reason = NULL,"
                " expires_at = CASE WHEN $9::boolean THEN $8::timestamptz ELSE expires_at END,"
                " change_requested_by = $10, updated_at = now(), version = version + 1"
                " WHERE id::text = $1",
                10,
                (const char *[]){id, smn, smx, sid, mo, dec,
                                 vd.approved ? "approved" : "pending_approval", expires,
                                 json_object_get(body, "expires_at") ? "true" : "false",
                                 who->id.oid},
                sqlstate);
    free(dec);
    if (!r) {
        rollback(c);
        if (sqlstate[0] == '2' && sqlstate[1] == '2')
            http_problem_field(req, "expires_at", "must be an RFC 3339 timestamp");
        else
            http_problem_unavailable(req);
        goto out;
    }
    PQclear(r);
    char op[37] = "";
    if (vd.approved && enqueue(c, "compute.provision", project, id, who->id.oid, op)) {
        rollback(c);
        http_problem_unavailable(req);
        goto out;
    }
    commit_and_reply(req, c, id, op, 200);
out:
    json_decref(vd.decision);
    json_decref(body);
    api_release(req, c);
}

/* DELETE: compute never carried out is gone at once; anything else is
 * destroyed by an operation. */
void api_compute_delete(http_req *req)
{
    caller *who = access_caller(req);
    const char *id = http_param(req, "id");
    char state[24], requester[80], project[80];
    PGconn *c = api_conn(req);
    if (!c)
        return;
    if (lock_for_change(req, c, id, ACT_COMPUTE_WRITE, state, sizeof state, requester,
                        sizeof requester, project, sizeof project))
        goto out;
    char op[37] = "";
    PGresult *r;
    if (!strcmp(state, "pending_approval") || !strcmp(state, "rejected")) {
        r = db_exec(c,
                    "UPDATE compute_targets SET state = CASE WHEN applied IS NULL THEN 'deleted'"
                    " ELSE 'deleting' END, deleted_at = CASE WHEN applied IS NULL THEN now() END,"
                    " updated_at = now(), version = version + 1 WHERE id::text = $1"
                    " RETURNING state",
                    1, (const char *[]){id}, NULL);
        int queue = r && !strcmp(PQgetvalue(r, 0, 0), "deleting");
        PQclear(r);
        if (!r || (queue && enqueue(c, "compute.delete", project, id, who->id.oid, op))) {
            rollback(c);
            http_problem_unavailable(req);
            goto out;
        }
    } else if (!strcmp(state, "ready") || !strcmp(state, "planned") || !strcmp(state, "failed")) {
        r = db_exec(c,
                    "UPDATE compute_targets SET state = 'deleting', updated_at = now(),"
                    " version = version + 1 WHERE id::text = $1",
                    1, (const char *[]){id}, NULL);
        PQclear(r);
        if (!r || enqueue(c, "compute.delete", project, id, who->id.oid, op)) {
            rollback(c);
            http_problem_unavailable(req);
            goto out;
        }
    } else {
        wrong_state(req, c, state,
                    "wait until provisioning ends (or the deletion under way finishes)");
        goto out;
    }
    commit_and_reply(req, c, id, op, 200);
out:
    api_release(req, c);
}

/* POST /retry: a failed request runs its last operation again. */
void api_compute_retry(http_req *req)
{
    caller *who = access_caller(req);
    const char *id = http_param(req, "id");
    char state[24], requester[80], project[80];
    PGconn *c = api_conn(req);
    if (!c)
        return;
    if (lock_for_change(req, c, id, ACT_COMPUTE_WRITE, state, sizeof state, requester,
                        sizeof requester, project, sizeof project))
        goto out;
    if (strcmp(state, "failed")) {
        wrong_state(req, c, state, "only failed compute is retried");
        goto out;
    }
    PGresult *r = db_exec(c,
                          "UPDATE compute_targets SET state = CASE WHEN failure->>'step' ="
                          " 'destroy' THEN 'deleting' ELSE 'approved' END, updated_at = now(),"
                          " version = version + 1 WHERE id::text = $1 RETURNING state",
                          1, (const char *[]){id}, NULL);
    char op[37] = "";
    int destroy = r && !strcmp(PQgetvalue(r, 0, 0), "deleting");
    PQclear(r);
    if (!r ||
        enqueue(c, destroy ? "compute.delete" : "compute.provision", project, id, who->id.oid,
                op)) {
        rollback(c);
        http_problem_unavailable(req);
        goto out;
    }
    commit_and_reply(req, c, id, op, 200);
out:
    api_release(req, c);
}
