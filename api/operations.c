/* GET /api/v1/operations[/{id}] and POST .../cancel. The JSON is built by
 * PostgreSQL in one statement, so a read is one round trip and no re-encoding. */
#include "api.h"
#include "http/app.h"
#include "ops/ops.h"
#include "identity/access.h"
#include "identity/policy.h"
#include "lib/util.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#define OPERATION_FIELDS                                                                           \
    "'id', o.id, 'kind', o.kind, 'subject', o.subject, 'state', o.state,"                          \
    " 'attempts', o.attempts, 'max_attempts', o.max_attempts,"                                     \
    " 'cancel_requested', o.cancel_requested, 'created_by', o.created_by,"                         \
    " 'created_at', o.created_at, 'updated_at', o.updated_at, 'started_at', o.started_at,"         \
    " 'finished_at', o.finished_at, 'next_attempt_at', o.next_attempt_at,"                         \
    " 'lease_owner', o.lease_owner, 'lease_expires_at', o.lease_expires_at,"                       \
    " 'input', o.input, 'output', o.output, 'error', o.error"

/* Who sees an operation: admins, its creator, and members of the project
 * named by its subject (projects/<id>/...) whose roles see project work
 * (policy_sees_project_work: not store managers, who never see datasets).
 * Takes admin and work as "t"/"f", oid. */
#define VISIBLE(admin, work, oid)                                                                  \
    "(" admin "::boolean OR o.created_by = " oid " OR (" work "::boolean AND EXISTS (SELECT 1"    \
    " FROM project_members m WHERE m.user_oid = " oid " AND split_part(o.subject, '/', 1) ="      \
    " 'projects' AND split_part(o.subject, '/', 2) = m.project_id)))"

/* The operation and whether the caller may see it ($2 admin, $4 sees project work, $3 oid),
 * so a refusal is told from an unknown id and audited. */
static const char SQL_SHOW[] =
    "SELECT json_build_object(" OPERATION_FIELDS ", 'actions', coalesce(("
    " SELECT json_agg(json_build_object('position', a.position, 'step', a.step,"
    "  'target', a.target, 'name', a.name, 'state', a.state, 'attempts', a.attempts,"
    "  'request', a.request, 'response', a.response, 'error', a.error,"
    "  'started_at', a.started_at, 'finished_at', a.finished_at,"
    "  'duration_ms', round(extract(epoch FROM a.finished_at - a.started_at) * 1000))"
    "  ORDER BY a.position)"
    " FROM operation_actions a WHERE a.operation_id = o.id), '[]'::json))::text, "
    VISIBLE("$2", "$4", "$3") " FROM operations o WHERE o.id = $1::uuid";

static const char SQL_LIST[] =
    "SELECT o.seq, json_build_object(" OPERATION_FIELDS ")::text FROM operations o"
    " WHERE ($1::text IS NULL OR o.state = $1) AND ($2::text IS NULL OR o.kind = $2)"
    " AND ($3::text IS NULL OR o.subject = $3) AND ($4::bigint IS NULL OR o.seq < $4)"
    " AND " VISIBLE("$6", "$8", "$7") " ORDER BY o.seq DESC LIMIT $5::int";

static int is_uuid(const char *s)
{
    if (strlen(s) != 36)
        return 0;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return 0;
        } else if (!isxdigit((unsigned char)s[i])) {
            return 0;
        }
    }
    return 1;
}

/* Looks the id parameter up; answers 400 itself when it is not a UUID. */
static const char *operation_id(http_req *req)
{
    const char *id = http_param(req, "id");
    if (!id || !is_uuid(id)) {
        http_problem_field(req, "id", "must be a UUID");
        return NULL;
    }
    return id;
}

void api_operations_show(http_req *req)
{
    app_ctx *app = http_app(req);
    const char *id = operation_id(req);
    if (!id)
        return;
    PGconn *c = NULL;
    if (db_acquire(app->pool, 2000, &c)) {
        http_problem_unavailable(req);
        return;
    }
    caller *who = access_caller(req);
    const char *p[] = {id, policy_is_admin(who) ? "t" : "f", who->id.oid,
                       policy_sees_project_work(who) ? "t" : "f"};
    PGresult *r = db_exec(c, SQL_SHOW, 4, p, NULL);
    db_release(app->pool, c);
    if (!r) {
        http_problem_unavailable(req);
        return;
    }
    if (PQntuples(r) == 0)
        http_problem(req, 404, "not-found", "Not found", NULL, "no operation %s", id);
    else if (PQgetvalue(r, 0, 1)[0] != 't')
        policy_answer(req, POLICY_HIDDEN, "operation");
    else
        http_reply_bytes(req, 200, "application/json", PQgetvalue(r, 0, 0),
                         (size_t)PQgetlength(r, 0, 0));
    PQclear(r);
}

/* Cursors are opaque to clients: "o" followed by the last seq seen. */
static int parse_cursor(const char *s, long *seq)
{
    return s[0] == 'o' ? parse_long(s + 1, 1, 0x7fffffffffffffffL, seq) : RST_EINVAL;
}

static const char *const STATES[] = {"queued", "running", "succeeded", "failed", "canceled"};

void api_operations_list(http_req *req)
{
    app_ctx *app = http_app(req);
    char state[32], kind[80], subject[256], limit_s[16], cursor_s[32], seq_s[24] = "";
    int has_state = http_query(req, "state", state, sizeof state);
    int has_kind = http_query(req, "kind", kind, sizeof kind);
    int has_subject = http_query(req, "subject", subject, sizeof subject);
    int has_limit = http_query(req, "limit", limit_s, sizeof limit_s);
    int has_cursor = http_query(req, "cursor", cursor_s, sizeof cursor_s);
    long limit = 50, seq = 0;
    if (has_state >= 0) {
        int ok = 0;
        for (size_t i = 0; i < sizeof STATES / sizeof STATES[0]; i++)
            ok |= !strcmp(state, STATES[i]);
        if (!ok) {
            http_problem_field(req, "state",
                               "must be one of queued, running, succeeded, failed, canceled");
            return;
        }
    } else if (has_state == -2) {
        http_problem_field(req, "state", "is too long");
        return;
    }
    if (has_kind == -2 || has_subject == -2) {
        http_problem_field(req, has_kind == -2 ? "kind" : "subject", "is too long");
        return;
    }
    if (has_limit != -1 && (has_limit == -2 || parse_long(limit_s, 1, 200, &limit))) {
        http_problem_field(req, "limit", "must be an integer from 1 to 200");
        return;
    }
    if (has_cursor != -1) {
        if (has_cursor == -2 || parse_cursor(cursor_s, &seq)) {
            http_problem_field(req, "cursor", "is not a cursor this server issued");
            return;
        }
        snprintf(seq_s, sizeof seq_s, "%ld", seq);
    }
    char lim[24];
    snprintf(lim, sizeof lim, "%ld", limit + 1); /* one more tells whether a next page exists */
    caller *who = access_caller(req);
    const char *p[] = {has_state >= 0 ? state : NULL,
                       has_kind >= 0 ? kind : NULL,
                       has_subject >= 0 ? subject : NULL,
                       has_cursor >= 0 ? seq_s : NULL,
                       lim,
                       policy_is_admin(who) ? "t" : "f",
                       who->id.oid,
                       policy_sees_project_work(who) ? "t" : "f"};
    PGconn *c = NULL;
    if (db_acquire(app->pool, 2000, &c)) {
        http_problem_unavailable(req);
        return;
    }
    PGresult *r = db_exec(c, SQL_LIST, 8, p, NULL);
    db_release(app->pool, c);
    if (!r) {
        http_problem_unavailable(req);
        return;
    }
    int n = PQntuples(r);
    int shown = n > limit ? (int)limit : n;
    buf_t out;
    buf_init(&out, 0);
    buf_puts(&out, "{\"items\":[");
    for (int i = 0; i < shown; i++) {
        if (i)
            buf_puts(&out, ",");
        buf_append(&out, PQgetvalue(r, i, 1), (size_t)PQgetlength(r, i, 1));
    }
    buf_puts(&out, "],\"next_cursor\":");
    if (n > limit)
        buf_printf(&out, "\"o%s\"}", PQgetvalue(r, shown - 1, 0));
    else
        buf_puts(&out, "null}");
    PQclear(r);
    http_reply_bytes(req, 200, "application/json", out.data, out.len);
    buf_free(&out);
}

/* May who cancel the visible operation id? Its creator, admins, and
 * contributors of its project may. */
static policy_decision may_cancel(PGconn *c, caller *who, const char *id)
{
    const char *p[] = {id, policy_is_admin(who) ? "t" : "f", who->id.oid,
                       policy_sees_project_work(who) ? "t" : "f"};
    PGresult *r = db_exec(c,
                          "SELECT o.created_by = $3 OR $2::boolean, split_part(o.subject, '/', 1),"
                          " split_part(o.subject, '/', 2) FROM operations o"
                          " WHERE o.id = $1::uuid AND " VISIBLE("$2", "$4", "$3"),
                          4, p, NULL);
    if (!r)
        return POLICY_ERROR;
    policy_decision d = POLICY_HIDDEN;
    if (PQntuples(r) == 1) {
        if (PQgetvalue(r, 0, 0)[0] == 't')
            d = POLICY_ALLOW;
        else if (!strcmp(PQgetvalue(r, 0, 1), "projects"))
            d = policy_check(c, who, ACT_PROJECT_WRITE, PQgetvalue(r, 0, 2));
        else
            d = POLICY_FORBIDDEN;
    }
    PQclear(r);
    return d;
}

void api_operations_cancel(http_req *req)
{
    app_ctx *app = http_app(req);
    caller *who = access_caller(req);
    const char *id = operation_id(req);
    if (!id)
        return;
    char subject[64];
    snprintf(subject, sizeof subject, "operations/%s", id);
    access_set_subject(req, subject);
    PGconn *c = NULL;
    if (db_acquire(app->pool, 2000, &c)) {
        http_problem_unavailable(req);
        return;
    }
    if (policy_answer(req, may_cancel(c, who, id), "cancel this operation")) {
        db_release(app->pool, c);
        return;
    }
    int rc = ops_request_cancel(c, id);
    PGresult *r = NULL;
    if (rc == RST_OK) {
        const char *p[] = {id, "t", who->id.oid, "t"};
        r = db_exec(c, SQL_SHOW, 4, p, NULL);
    }
    db_release(app->pool, c);
    if (rc == RST_ENOTFOUND) {
        http_problem(req, 404, "not-found", "Not found", NULL, "no operation %s", id);
    } else if (rc == RST_ECONFLICT) {
        http_problem(req, 409, "operation-finished", "Operation already finished", NULL,
                     "operation %s has already ended and cannot be canceled", id);
    } else if (!r || PQntuples(r) == 0) {
        http_problem_unavailable(req);
    } else {
        char loc[96];
        snprintf(loc, sizeof loc, "/api/v1/operations/%s", id);
        http_add_header(req, "Location", loc);
        http_reply_bytes(req, 202, "application/json", PQgetvalue(r, 0, 0),
                         (size_t)PQgetlength(r, 0, 0));
    }
    PQclear(r);
}
