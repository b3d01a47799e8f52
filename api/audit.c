/* GET /api/v1/audit: the append-only audit log, newest first (admins only). */
#include "api.h"
#include "identity/access.h"
#include "identity/policy.h"
#include "lib/util.h"

#include <stdio.h>
#include <string.h>

void api_audit_list(http_req *req)
{
    if (policy_answer(req, policy_check(NULL, access_caller(req), ACT_AUDIT_READ, NULL),
                      "read the audit log"))
        return;
    long limit, before = 0;
    if (api_limit(req, &limit))
        return;
    char actor[80], action[200], subject[256], outcome[16], cursor[32];
    int has_actor = http_query(req, "actor", actor, sizeof actor);
    int has_action = http_query(req, "action", action, sizeof action);
    int has_subject = http_query(req, "subject", subject, sizeof subject);
    int has_outcome = http_query(req, "outcome", outcome, sizeof outcome);
    int has_cursor = http_query(req, "cursor", cursor, sizeof cursor);
    if (has_actor == -2 || has_action == -2 || has_subject == -2) {
        http_problem_field(req, has_actor == -2 ? "actor" : has_action == -2 ? "action" : "subject",
                           "is too long");
        return;
    }
    if (has_outcome == -2 || (has_outcome >= 0 && strcmp(outcome, "allowed") &&
                              strcmp(outcome, "denied") && strcmp(outcome, "failed") &&
                              strcmp(outcome, "succeeded"))) {
        http_problem_field(req, "outcome", "must be one of allowed, denied, failed, succeeded");
        return;
    }
    if (has_cursor == -2 ||
        (has_cursor >= 0 && parse_long(cursor, 1, 0x7fffffffffffffffL, &before))) {
        http_problem_field(req, "cursor", "is not a cursor this server issued");
        return;
    }
    char lim[24];
    snprintf(lim, sizeof lim, "%ld", limit + 1);
    PGconn *c = api_conn(req);
    if (!c)
        return;
    const char *p[] = {has_actor >= 0 ? actor : NULL,     has_action >= 0 ? action : NULL,
                       has_subject >= 0 ? subject : NULL, has_outcome >= 0 ? outcome : NULL,
                       has_cursor >= 0 ? cursor : NULL,   lim};
    PGresult *r = db_exec(c,
                          "SELECT a.id::text, json_build_object('id', a.id, 'at', a.at,"
                          " 'actor_oid', a.actor_oid, 'actor_name', a.actor_name, 'action',"
                          " a.action, 'subject', a.subject, 'outcome', a.outcome, 'status',"
                          " a.status, 'reason', a.reason, 'request_id', a.request_id,"
                          " 'client_request_id', a.client_request_id, 'client_addr',"
                          " a.client_addr, 'count', a.count)::text FROM audit_log a"
                          " WHERE ($1::text IS NULL OR a.actor_oid = $1)"
                          " AND ($2::text IS NULL OR a.action = $2)"
                          " AND ($3::text IS NULL OR a.subject = $3)"
                          " AND ($4::text IS NULL OR a.outcome = $4)"
                          " AND ($5::bigint IS NULL OR a.id < $5)"
                          " ORDER BY a.id DESC LIMIT $6::int",
                          6, p, NULL);
    api_release(req, c);
    if (!r) {
        http_problem_unavailable(req);
        return;
    }
    api_reply_page(req, r, 0, 1, limit);
    PQclear(r);
}
