/* Outbound webhooks of a project: subscriptions (owners and admins manage them, members
 * read them; store managers never, as for datasets), their delivery log, and a ping. Deliveries
 * themselves are server/events/webhooks.c. */
#include "api.h"
#include "http/app.h"
#include "identity/access.h"
#include "identity/policy.h"
#include "lib/util.h"
#include "http/validate.h"
#include "events/webhooks.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WEBHOOK_JSON                                                                               \
    "json_build_object('id', w.id, 'project', w.project_id, 'url', w.url, 'events',"               \
    " to_json(w.events), 'active', w.active, 'description', w.description, 'disabled_reason',"     \
    " w.disabled_reason, 'created_by', w.created_by, 'created_at', w.created_at, 'updated_at',"    \
    " w.updated_at, 'version', w.version, 'last_delivery', (SELECT json_build_object('id', d.id,"  \
    " 'event', d.event, 'state', d.state, 'last_status', d.last_status, 'at',"                     \
    " coalesce(d.last_attempt_at, d.created_at)) FROM webhook_deliveries d"                        \
    " WHERE d.webhook_id = w.id ORDER BY d.seq DESC LIMIT 1))"

#define DELIVERY_JSON                                                                              \
    "json_build_object('id', d.id, 'webhook_id', d.webhook_id, 'event_id', d.event_id, 'event',"   \
    " d.event, 'state', d.state, 'attempts', d.attempts, 'last_status', d.last_status,"            \
    " 'last_error', d.last_error, 'history', d.history, 'operation_id', d.operation_id,"           \
    " 'created_at', d.created_at, 'last_attempt_at', d.last_attempt_at, 'next_attempt_at',"        \
    " d.next_attempt_at, 'delivered_at', d.delivered_at, 'payload', d.body::json)"

static int is_uuid(const char *s)
{
    if (!s || strlen(s) != 36)
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

/* The {id} parameter, or NULL after answering 400. */
static const char *webhook_id(http_req *req)
{
    const char *id = http_param(req, "id");
    if (!is_uuid(id)) {
        http_problem_field(req, "id", "must be a UUID");
        return NULL;
    }
    return id;
}

static int dev_mode(http_req *req)
{
    app_ctx *app = http_app(req);
    return app->cfg->auth && !strcmp(app->cfg->auth, "dev");
}

/* Why url may not receive webhooks (NULL when it may): checked here against the address
 * the name resolves to now, and again at every connect. */
static const char *check_url(http_req *req, const char *url, char *why, size_t cap)
{
    app_ctx *app = http_app(req);
    webhooks_policy pol = {.dev = dev_mode(req), .ports = app->cfg->webhook_ports, .resolve = 1};
    return webhooks_check_url(url, &pol, why, cap);
}

/* Validates events (a non-empty array of distinct known names) into a PostgreSQL array
 * literal. new: free(); NULL when invalid (errors added). */
static char *events_literal(validator *v, json_t *events)
{
    if (!json_is_array(events) || json_array_size(events) == 0) {
        v_error(v, "events", "must be a non-empty array of event names");
        return NULL;
    }
    buf_t b;
    buf_init(&b, 0);
    buf_puts(&b, "{");
    size_t i;
    json_t *e;
    int ok = 1;
    json_array_foreach(events, i, e)
    {
        const char *name = json_string_value(e);
        char field[32];
        snprintf(field, sizeof field, "events[%zu]", i);
        if (!webhooks_event_known(name)) {
            char reason[300];
            snprintf(reason, sizeof reason,
                     "unknown event %.60s: must be one of run.finished,"
                     " promotion.pending_approval, model.promoted, forecast.ready,"
                     " drift.detected",
                     name ? name : "(not a string)");
            v_error(v, field, reason);
            ok = 0;
            continue;
        }
        for (size_t k = 0; k < i; k++) {
            const char *earlier = json_string_value(json_array_get(events, k));
            if (earlier && !strcmp(earlier, name)) {
                v_error(v, field, "is listed twice");
                ok = 0;
            }
        }
        buf_printf(&b, "%s%s", i ? "," : "", name);
    }
    buf_puts(&b, "}");
    if (!ok) {
        buf_free(&b);
        return NULL;
    }
    return b.data;
}

static void reply_webhook(http_req *req, PGconn *c, const char *id, int status, const char *secret)
{
    PGresult *r = db_exec(c,
                          "SELECT " WEBHOOK_JSON "::text, w.version, w.project_id"
                          " FROM webhooks w WHERE w.id = $1::uuid",
                          1, (const char *[]){id}, NULL);
    if (!r || PQntuples(r) == 0) {
        PQclear(r);
        http_problem_unavailable(req);
        return;
    }
    api_etag(req, PQgetvalue(r, 0, 1));
    if (status == 201) {
        char loc[200];
        snprintf(loc, sizeof loc, "/api/v1/projects/%s/webhooks/%s", PQgetvalue(r, 0, 2), id);
        http_add_header(req, "Location", loc);
    }
    json_t *doc = json_loads(PQgetvalue(r, 0, 0), 0, NULL);
    PQclear(r);
    if (!doc) {
        http_problem_unavailable(req);
        return;
    }
    if (secret) /* shown once: it is never answered again */
        json_object_set_new(doc, "secret", json_string(secret));
    http_reply_json(req, status, doc);
}

void api_webhooks_create(http_req *req)
{
    caller *who = access_caller(req);
    const char *project = http_param(req, "project");
    json_t *body = NULL;
    char *events = NULL;
    PGconn *c = api_conn(req);
    if (!c)
        return;
    if (policy_answer(req, policy_check(c, who, ACT_WEBHOOK_MANAGE, project), "manage webhooks") ||
        http_read_json(req, &body))
        goto out;
    validator v;
    v_init(&v);
    static const char *const allowed[] = {"url", "events", "active", "description", NULL};
    v_only(&v, body, allowed);
    const char *url = v_string(&v, body, "url", 1, WEBHOOKS_URL_MAX, NULL);
    char whybuf[200];
    const char *why = url ? check_url(req, url, whybuf, sizeof whybuf) : NULL;
    if (why)
        v_error(&v, "url", why);
    events = events_literal(&v, json_object_get(body, "events"));
    const char *desc = v_string(&v, body, "description", 0, 2000, NULL);
    json_t *active = json_object_get(body, "active");
    if (active && !json_is_boolean(active))
        v_error(&v, "active", "must be true or false");
    if (v_finish(&v, req))
        goto out;
    char secret[WEBHOOKS_SECRET_MAX];
    webhooks_new_secret(secret);
    PGresult *r =
        db_exec(c,
                "INSERT INTO webhooks(project_id, url, events, active, description,"
                " secret, created_by) VALUES ($1, $2, $3::text[], $4::boolean, $5, $6,"
                " $7) RETURNING id",
                7,
                (const char *[]){project, url, events, active && json_is_false(active) ? "f" : "t",
                                 desc ? desc : "", secret, who->id.oid},
                NULL);
    if (!r) {
        http_problem_unavailable(req);
        goto out;
    }
    char id[40], subject[160];
    snprintf(id, sizeof id, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    snprintf(subject, sizeof subject, "projects/%s/webhooks/%s", project, id);
    access_set_subject(req, subject);
    reply_webhook(req, c, id, 201, secret);
out:
    free(events);
    json_decref(body);
    api_release(req, c);
}

/* Cursors: "w" or "d" followed by the last seq seen. */
static int read_cursor(http_req *req, char kind, char *seq, size_t cap)
{
    char cur[40];
    int n = http_query(req, "cursor", cur, sizeof cur);
    seq[0] = '\0';
    long v;
    if (n == -1)
        return 0;
    if (n < 2 || cur[0] != kind || parse_long(cur + 1, 1, 0x7fffffffffffffffL, &v)) {
        http_problem_field(req, "cursor", "must be a next_cursor from a previous page");
        return 1;
    }
    snprintf(seq, cap, "%ld", v);
    return 0;
}

void api_webhooks_list(http_req *req)
{
    const char *project = http_param(req, "project");
    long limit;
    char seq[24], lim[24];
    if (api_limit(req, &limit) || read_cursor(req, 'w', seq, sizeof seq))
        return;
    snprintf(lim, sizeof lim, "%ld", limit + 1);
    PGconn *c = api_conn(req);
    if (!c)
        return;
    if (!policy_answer(req, policy_check(c, access_caller(req), ACT_PROJECT_WORK_READ, project),
                       "read webhooks")) {
        PGresult *r = db_exec(c,
                              "SELECT 'w' || w.seq, " WEBHOOK_JSON "::text FROM webhooks w"
                              " WHERE w.project_id = $1 AND ($2::bigint IS NULL OR w.seq < $2)"
                              " ORDER BY w.seq DESC LIMIT $3::int",
                              3, (const char *[]){project, seq[0] ? seq : NULL, lim}, NULL);
        if (!r)
            http_problem_unavailable(req);
        else
            api_reply_page(req, r, 0, 1, limit);
        PQclear(r);
    }
    api_release(req, c);
}

/* Answers 404 (and returns 1) unless webhook id belongs to project. */
static int webhook_in_project(http_req *req, PGconn *c, const char *project, const char *id,
                              char *version, size_t cap, int *active)
{
    PGresult *r = db_exec(c,
                          "SELECT version, active FROM webhooks WHERE project_id = $1"
                          " AND id = $2::uuid",
                          2, (const char *[]){project, id}, NULL);
    if (!r) {
        http_problem_unavailable(req);
        return 1;
    }
    int found = PQntuples(r) == 1;
    if (found) {
        if (version)
            snprintf(version, cap, "%s", PQgetvalue(r, 0, 0));
        if (active)
            *active = PQgetvalue(r, 0, 1)[0] == 't';
    }
    PQclear(r);
    if (!found)
        http_problem(req, 404, "not-found", "Not found", NULL, "no webhook %s in %s", id, project);
    return !found;
}

void api_webhooks_show(http_req *req)
{
    const char *project = http_param(req, "project");
    const char *id = webhook_id(req);
    if (!id)
        return;
    PGconn *c = api_conn(req);
    if (!c)
        return;
    if (!policy_answer(req, policy_check(c, access_caller(req), ACT_PROJECT_WORK_READ, project),
                       "read webhooks") &&
        !webhook_in_project(req, c, project, id, NULL, 0, NULL))
        reply_webhook(req, c, id, 200, NULL);
    api_release(req, c);
}

void api_webhooks_update(http_req *req)
{
    const char *project = http_param(req, "project");
    const char *id = webhook_id(req);
    if (!id)
        return;
    json_t *body = NULL;
    char *events = NULL;
    PGconn *c = api_conn(req);
    if (!c)
        return;
    char subject[160], version[24];
    snprintf(subject, sizeof subject, "projects/%s/webhooks/%s", project, id);
    access_set_subject(req, subject);
    if (policy_answer(req, policy_check(c, access_caller(req), ACT_WEBHOOK_MANAGE, project),
                      "manage webhooks") ||
        http_read_json(req, &body))
        goto out;
    validator v;
    v_init(&v);
    static const char *const allowed[] = {"url", "events", "active", "description", NULL};
    v_only(&v, body, allowed);
    const char *url = v_string(&v, body, "url", 0, WEBHOOKS_URL_MAX, NULL);
    char whybuf[200];
    const char *why = url ? check_url(req, url, whybuf, sizeof whybuf) : NULL;
    if (why)
        v_error(&v, "url", why);
    if (json_object_get(body, "events"))
        events = events_literal(&v, json_object_get(body, "events"));
    const char *desc = v_string(&v, body, "description", 0, 2000, NULL);
    json_t *active = json_object_get(body, "active");
    if (active && !json_is_boolean(active))
        v_error(&v, "active", "must be true or false");
    if (v_finish(&v, req))
        goto out;
    if (webhook_in_project(req, c, project, id, version, sizeof version, NULL) ||
        api_if_match_fails(req, version))
        goto out;
    const char *act = !active ? NULL : json_is_true(active) ? "t" : "f";
    PGresult *r = db_exec(c,
                          "UPDATE webhooks SET url = coalesce($2, url),"
                          " events = coalesce($3::text[], events),"
                          " active = coalesce($4::boolean, active),"
                          " description = coalesce($5, description),"
                          " disabled_reason = CASE WHEN $4::boolean THEN NULL"
                          "   WHEN $4::boolean = false THEN 'disabled through the API'"
                          "   ELSE disabled_reason END,"
                          " version = version + 1, updated_at = now()"
                          " WHERE id = $1::uuid AND version = $6::int RETURNING 1",
                          6, (const char *[]){id, url, events, act, desc, version}, NULL);
    if (!r)
        http_problem_unavailable(req);
    else if (PQntuples(r) == 0)
        http_problem(req, 412, "precondition-failed", "Precondition failed", NULL,
                     "the webhook changed while you updated it; read it again");
    else
        reply_webhook(req, c, id, 200, NULL);
    PQclear(r);
out:
    free(events);
    json_decref(body);
    api_release(req, c);
}

void api_webhooks_delete(http_req *req)
{
    const char *project = http_param(req, "project");
    const char *id = webhook_id(req);
    if (!id)
        return;
    PGconn *c = api_conn(req);
    if (!c)
        return;
    char subject[160], version[24];
    snprintf(subject, sizeof subject, "projects/%s/webhooks/%s", project, id);
    access_set_subject(req, subject);
    if (!policy_answer(req, policy_check(c, access_caller(req), ACT_WEBHOOK_MANAGE, project),
                       "manage webhooks") &&
        !webhook_in_project(req, c, project, id, version, sizeof version, NULL) &&
        !api_if_match_fails(req, version)) {
        /* Its deliveries go with it; their operations then find nothing to send. */
        PGresult *r =
            db_exec(c, "DELETE FROM webhooks WHERE id = $1::uuid", 1, (const char *[]){id}, NULL);
        if (!r)
            http_problem_unavailable(req);
        else
            http_reply_empty(req, 204);
        PQclear(r);
    }
    api_release(req, c);
}

static const char *const STATES[] = {"pending", "retrying", "delivered", "failed", "skipped", NULL};

void api_webhooks_deliveries(http_req *req)
{
    const char *project = http_param(req, "project");
    const char *id = webhook_id(req);
    if (!id)
        return;
    long limit;
    char seq[24], lim[24], state[16];
    if (api_limit(req, &limit) || read_cursor(req, 'd', seq, sizeof seq))
        return;
    int has_state = http_query(req, "state", state, sizeof state);
    int ok = has_state == -1;
    for (int i = 0; !ok && has_state >= 0 && STATES[i]; i++)
        ok = !strcmp(state, STATES[i]);
    if (!ok) {
        http_problem_field(req, "state",
                           "must be one of pending, retrying, delivered, failed, skipped");
        return;
    }
    snprintf(lim, sizeof lim, "%ld", limit + 1);
    PGconn *c = api_conn(req);
    if (!c)
        return;
    if (!policy_answer(req, policy_check(c, access_caller(req), ACT_PROJECT_WORK_READ, project),
                       "read webhooks") &&
        !webhook_in_project(req, c, project, id, NULL, 0, NULL)) {
        PGresult *r = db_exec(
            c,
            "SELECT 'd' || d.seq, " DELIVERY_JSON "::text FROM"
            " webhook_deliveries d WHERE d.webhook_id = $1::uuid"
            " AND ($2::bigint IS NULL OR d.seq < $2) AND ($4::text IS NULL"
            " OR d.state = $4) ORDER BY d.seq DESC LIMIT $3::int",
            4, (const char *[]){id, seq[0] ? seq : NULL, lim, has_state >= 0 ? state : NULL}, NULL);
        if (!r)
            http_problem_unavailable(req);
        else
            api_reply_page(req, r, 0, 1, limit);
        PQclear(r);
    }
    api_release(req, c);
}

void api_webhooks_ping(http_req *req)
{
    const char *project = http_param(req, "project");
    const char *id = webhook_id(req);
    if (!id)
        return;
    PGconn *c = api_conn(req);
    if (!c)
        return;
    char subject[160];
    snprintf(subject, sizeof subject, "projects/%s/webhooks/%s", project, id);
    access_set_subject(req, subject);
    int active = 0;
    if (policy_answer(req, policy_check(c, access_caller(req), ACT_WEBHOOK_MANAGE, project),
                      "manage webhooks") ||
        webhook_in_project(req, c, project, id, NULL, 0, &active))
        goto out;
    if (!active) {
        http_problem(req, 409, "webhook-disabled", "Webhook disabled", NULL,
                     "the webhook is disabled; PATCH it with \"active\": true first");
        goto out;
    }
    char delivery[37];
    int rc = webhooks_ping(c, project, id, delivery);
    if (rc) {
        http_problem_unavailable(req);
        goto out;
    }
    PGresult *r = db_exec(c,
                          "SELECT " DELIVERY_JSON "::text, d.operation_id FROM webhook_deliveries d"
                          " WHERE d.id = $1::uuid",
                          1, (const char *[]){delivery}, NULL);
    if (!r || PQntuples(r) == 0) {
        PQclear(r);
        http_problem_unavailable(req);
        goto out;
    }
    char loc[80];
    snprintf(loc, sizeof loc, "/api/v1/operations/%s", PQgetvalue(r, 0, 1));
    http_add_header(req, "Location", loc);
    http_reply_bytes(req, 202, "application/json", PQgetvalue(r, 0, 0),
                     (size_t)PQgetlength(r, 0, 0));
    PQclear(r);
out:
    api_release(req, c);
}
