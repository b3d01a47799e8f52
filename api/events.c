/* POST /api/v1/events/azure: the Azure Event Grid webhook (Event Grid and CloudEvents 1.0
 * schemas). A dataset's event_grid_path, the container folder whose new blobs become its
 * versions, is set with the dataset (api/datasets.c).
 *
 * Answers, chosen for Event Grid's retry rules (it never retries 400, 401, 403 and 413, and
 * dead-letters them when a dead-letter destination is set; everything else is retried with
 * backoff for up to 24 hours):
 *   200  handled, including duplicates (the same event id again) and events nothing matches
 *   400  a malformed event or an event type this endpoint does not handle: retrying cannot
 *        help, so dead-lettering is right; the subscription should filter to the types below
 *   401  a missing or wrong secret or token (dead-lettered: fix the subscription)
 *   422  a BlobCreated for a dataset's path that the server cannot read (outside the artifact
 *        store's container, or gone): retried, since a configuration fix makes it succeed
 *   503  the database is unavailable: retried */
#include "api.h"
#include "http/app.h"
#include "identity/access.h"
#include "artifacts/artifacts.h"
#include "events/eventgrid.h"
#include "core/log.h"
#include "ops/ops.h"
#include "identity/policy.h"
#include "lib/util.h"
#include "http/validate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- authentication -------------------------------------------------------------- */

static int in_csv_list(const char *list, const char *item)
{
    size_t n = strlen(item);
    for (const char *p = list; p && *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t len = strcspn(p, ", ");
        if (len == n && len && !strncmp(p, item, n))
            return 1;
        p += len;
    }
    return 0;
}

/* Checks the shared secret or the bearer token; answers 401/403 itself and returns 1 when
 * the caller may not deliver events. The secret is compared in constant time and never logged. */
static int authenticate(http_req *req)
{
    app_ctx *app = http_app(req);
    const config *cfg = app->cfg;
    char reason[200] = "";
    int status = 401;
    if (http_header(req, "Authorization")) {
        auth_identity id;
        char why[160];
        if (access_verify_token(req, &id, why, sizeof why)) {
            snprintf(reason, sizeof reason, "%s", why);
        } else if ((id.roles & AUTH_ROLE_PLATFORM_ADMIN) ||
                   in_csv_list(cfg->eventgrid_aad_oids, id.oid)) {
            return 0;
        } else {
            status = 403;
            snprintf(reason, sizeof reason,
                     "this identity may not deliver events (ROASTERY_EVENTGRID_AAD_OIDS)");
        }
    } else {
        char code[512] = "";
        const char *presented = NULL;
        int q = http_query(req, "code", code, sizeof code);
        if (q >= 0)
            presented = code;
        else if (q == -2)
            presented = ""; /* too long to be ours */
        else if (http_header(req, "aeg-sas-key"))
            presented = http_header(req, "aeg-sas-key");
        else if (http_header(req, "x-roastery-key"))
            presented = http_header(req, "x-roastery-key");
        if (!cfg->eventgrid_secret || !*cfg->eventgrid_secret)
            snprintf(reason, sizeof reason,
                     "shared-secret deliveries are not configured"
                     " (ROASTERY_EVENTGRID_SECRET); use an Azure AD token");
        else if (!presented)
            snprintf(reason, sizeof reason,
                     "missing secret: pass ?code=, an aeg-sas-key or"
                     " x-roastery-key header, or an Azure AD bearer token");
        else if (!eventgrid_secret_equal(presented, cfg->eventgrid_secret))
            snprintf(reason, sizeof reason, "the secret does not match");
        else
            return 0;
    }
    /* Charged to the address and audited aggregated: a flood is answered from memory. */
    if (access_refuse_unauthenticated(req, "eventgrid.deliver", "events/azure", status, reason))
        return 1;
    if (status == 401)
        http_add_header(req, "WWW-Authenticate", "Bearer realm=\"roastery\"");
    http_problem(req, status, status == 401 ? "invalid-credentials" : "forbidden",
                 status == 401 ? "Unauthorized" : "Forbidden", NULL, "%s", reason);
    log_fields(LOG_WARN, "event grid delivery refused", json_pack("{s:s}", "reason", reason));
    return 1;
}

/* ---- handling -------------------------------------------------------------------- */

static const char *schema_name(const eventgrid_event *e)
{
    return e->schema == EVENTGRID_SCHEMA_CLOUDEVENTS ? "cloudevents" : "eventgrid";
}

/* Records a handled event; on conflict (already recorded) counts the redelivery. */
static int record_event(PGconn *c, const eventgrid_event *e, const char *result,
                        const char *project, const char *dataset, const char *version,
                        const char *detail)
{
    PGresult *r =
        db_exec(c,
                "INSERT INTO eventgrid_events(id, event_type, topic, subject, event_time,"
                " schema, result, project_id, dataset, version, detail) VALUES ($1, $2,"
                " $3, $4, $5::timestamptz, $6, $7, $8, $9, $10::int, $11)"
                " ON CONFLICT (id) DO UPDATE SET deliveries = eventgrid_events.deliveries"
                " + 1, last_delivery_at = now()",
                11,
                (const char *[]){e->id, e->type, e->topic, e->subject, e->event_time,
                                 schema_name(e), result, project, dataset, version, detail},
                NULL);
    if (!r)
        return RST_EDB;
    PQclear(r);
    return RST_OK;
}

/* The outcome of one event for the reply. */
static json_t *outcome(const eventgrid_event *e, const char *result, int duplicate,
                       const char *project, const char *dataset, const char *version,
                       const char *detail)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:b}", "id", e->id, "type", e->type, "result", result,
                          "duplicate", duplicate);
    if (project)
        json_object_set_new(o, "project", json_string(project));
    if (dataset)
        json_object_set_new(o, "dataset", json_string(dataset));
    if (version)
        json_object_set_new(o, "version", json_integer(strtol(version, NULL, 10)));
    if (detail)
        json_object_set_new(o, "detail", json_string(detail));
    return o;
}

/* An earlier delivery of this event id: its outcome, counted as redelivered. NULL if new. */
static json_t *seen_before(PGconn *c, const eventgrid_event *e, int *db_error)
{
    *db_error = 0;
    PGresult *r = db_exec(c,
                          "UPDATE eventgrid_events SET deliveries = deliveries + 1,"
                          " last_delivery_at = now() WHERE id = $1"
                          " RETURNING result, project_id, dataset, version::text, detail",
                          1, (const char *[]){e->id}, NULL);
    if (!r) {
        *db_error = 1;
        return NULL;
    }
    json_t *o = NULL;
    if (PQntuples(r) == 1)
        o = outcome(e, PQgetvalue(r, 0, 0), 1, db_value(r, 0, 1), db_value(r, 0, 2),
                    db_value(r, 0, 3), db_value(r, 0, 4));
    PQclear(r);
    return o;
}

typedef struct {
    http_req *req;
    PGconn *c;
    const char *on_error;
    size_t index;
    int status; /* a problem answered: stop */
} handler_ctx;

static void problem_at(handler_ctx *h, int status, const char *slug, const char *title,
                       const char *field, const char *reason)
{
    char f[64];
    snprintf(f, sizeof f, "[%zu].%s", h->index, field);
    http_problem(h->req, status, slug, title,
                 json_pack("[{s:s, s:s}]", "field", f, "reason", reason), "%s: %s", f, reason);
    h->status = status;
}

/* A new version from the blob of a BlobCreated event, the event recorded in the same
 * transaction. */
static json_t *register_version(handler_ctx *h, const eventgrid_event *e, const char *project,
                                const char *dataset, const char *key)
{
    app_ctx *app = http_app(h->req);
    PGconn *c = h->c;
    uint64_t size = 0;
    int rc = artifacts_stat(app->artifacts, key, &size);
    if (rc == RST_ENOTFOUND) {
        problem_at(h, 422, "blob-unreadable", "Blob not readable", "data.url",
                   "the blob does not exist (any more) in the artifact store");
        return NULL;
    }
    char sha[65];
    if (rc || artifacts_sha256(app->artifacts, key, sha)) {
        http_problem(h->req, 503, "unavailable", "Artifact store unavailable", NULL,
                     "the blob cannot be read from the artifact store; retry later");
        h->status = 503;
        return NULL;
    }
    char *raw_uri = artifacts_uri(app->artifacts, key);
    json_t *src =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "kind", "event_grid", "uri", e->url, "event_id",
                  e->id, "event_type", e->type, "topic", e->topic, "subject", e->subject);
    if (e->etag)
        json_object_set_new(src, "etag", json_string(e->etag));
    if (e->event_time)
        json_object_set_new(src, "event_time", json_string(e->event_time));
    char *source = json_dumps(src, JSON_COMPACT);
    json_decref(src);
    size_t kl = strlen(key);
    const char *enc = kl > 3 && !strcmp(key + kl - 3, ".gz") ? "gzip" : NULL;
    char bytes[24];
    snprintf(bytes, sizeof bytes, "%llu", (unsigned long long)size);
    json_t *out = NULL;
    char number[16] = "", id[40] = "", op[37] = "", state[6] = "";
    const char *result = "version_created";

    PGresult *r = db_exec(c, "BEGIN", 0, NULL, NULL);
    if (!r)
        goto unavailable;
    PQclear(r);
    /* The same bytes are the same version, whoever brought them. */
    r = db_exec(c,
                "SELECT number::text FROM dataset_versions WHERE project_id = $1 AND dataset = $2"
                " AND raw_sha256 = $3 AND state IN ('pending', 'ingesting', 'ready')"
                " ORDER BY number LIMIT 1",
                3, (const char *[]){project, dataset, sha}, NULL);
    if (!r)
        goto rollback;
    if (PQntuples(r) == 1) {
        snprintf(number, sizeof number, "%s", PQgetvalue(r, 0, 0));
        result = "same_content";
    }
    PQclear(r);
    if (!number[0]) {
        r = db_exec(
            c,
            "INSERT INTO dataset_versions(project_id, dataset, number, on_error, source,"
            " raw_uri, raw_key, raw_sha256, raw_bytes, content_encoding, created_by)"
            " SELECT $1, $2, coalesce(max(number), 0) + 1, $3, $4::jsonb, $5, $6, $7,"
            " $8::bigint, $9, 'event-grid' FROM dataset_versions WHERE project_id = $1"
            " AND dataset = $2"
            " ON CONFLICT (project_id, dataset, (source->>'event_id'))"
            " WHERE source->>'kind' = 'event_grid' DO NOTHING RETURNING id, number",
            9,
            (const char *[]){project, dataset, h->on_error, source, raw_uri, key, sha, bytes, enc},
            state);
        if (!r)
            goto rollback;
        if (PQntuples(r) == 0) { /* a concurrent delivery of the same event won */
            PQclear(r);
            PQclear(db_exec(c, "ROLLBACK", 0, NULL, NULL));
            int dberr = 0;
            out = seen_before(c, e, &dberr);
            if (!out)
                out = outcome(e, "version_created", 1, project, dataset, NULL, NULL);
            goto done;
        }
        snprintf(id, sizeof id, "%s", PQgetvalue(r, 0, 0));
        snprintf(number, sizeof number, "%s", PQgetvalue(r, 0, 1));
        PQclear(r);
        char subject[200];
        snprintf(subject, sizeof subject, "projects/%s/datasets/%s/versions/%s", project, dataset,
                 number);
        json_t *input = json_pack("{s:s}", "version_id", id);
        rc = ops_enqueue(c, "dataset.ingest", subject, input, "event-grid", 5, op);
        json_decref(input);
        if (rc)
            goto rollback;
        r = db_exec(c, "UPDATE dataset_versions SET operation_id = $2::uuid WHERE id = $1", 2,
                    (const char *[]){id, op}, NULL);
        if (!r)
            goto rollback;
        PQclear(r);
    }
    if (record_event(c, e, result, project, dataset, number, NULL))
        goto rollback;
    r = db_exec(c, "COMMIT", 0, NULL, NULL);
    if (!r)
        goto rollback;
    PQclear(r);
    out = outcome(e, result, 0, project, dataset, number, NULL);
    if (op[0]) {
        json_object_set_new(out, "operation_id", json_string(op));
        /* A public route has no caller for the access hooks to audit: record it here. */
        char subject[200];
        snprintf(subject, sizeof subject, "projects/%s/datasets/%s/versions/%s", project, dataset,
                 number);
        access_audit_request(h->req, NULL, NULL, "eventgrid.blob_created", subject, "succeeded",
                             200, e->id);
    }
    log_fields(LOG_INFO, "event grid blob registered",
               json_pack("{s:s, s:s, s:s, s:s, s:s}", "event", e->id, "project", project, "dataset",
                         dataset, "version", number, "result", result));
    goto done;
rollback:
    PQclear(db_exec(c, "ROLLBACK", 0, NULL, NULL));
    if (!strcmp(state, "23505")) { /* another version took the number at the same moment */
        http_add_header(h->req, "Retry-After", "1");
        http_problem(h->req, 409, "conflict", "Concurrent version", NULL,
                     "another version of %s was created at the same moment; retry", dataset);
        h->status = 409;
        goto done;
    }
unavailable:
    http_problem_unavailable(h->req);
    h->status = 503;
done:
    free(source);
    free(raw_uri);
    return out;
}

static json_t *handle_blob(handler_ctx *h, const eventgrid_event *e)
{
    app_ctx *app = http_app(h->req);
    PGconn *c = h->c;
    if (e->content_length == 0) {
        /* Data Lake's CreateFile announces an empty file before FlushWithClose fills it. */
        if (record_event(c, e, "empty_blob", NULL, NULL, NULL, "the blob is empty"))
            goto unavailable;
        return outcome(e, "empty_blob", 0, NULL, NULL, NULL, "the blob is empty");
    }
    /* Only a path under its own project's folder claims a blob, whatever an older server let
     * a dataset set (policy_event_grid_claim holds new paths to the same rule). */
    PGresult *r =
        db_exec(c,
                "SELECT project_id, name FROM datasets WHERE event_grid_path IS NOT NULL"
                " AND starts_with($1, event_grid_path) AND length($1) >"
                " length(event_grid_path) AND substr(event_grid_path, strpos(event_grid_path,"
                " '/blobs/') + 7) LIKE $2 || project_id || '/%' ORDER BY"
                " length(event_grid_path) DESC"
                " LIMIT 1",
                2, (const char *[]){e->subject, EVENTGRID_PROJECT_FOLDER}, NULL);
    if (!r)
        goto unavailable;
    if (PQntuples(r) == 0) {
        PQclear(r);
        static const char detail[] = "no dataset's event_grid_path holds this blob";
        if (record_event(c, e, "no_dataset", NULL, NULL, NULL, detail))
            goto unavailable;
        return outcome(e, "no_dataset", 0, NULL, NULL, NULL, detail);
    }
    char project[80], dataset[80];
    snprintf(project, sizeof project, "%s", PQgetvalue(r, 0, 0));
    snprintf(dataset, sizeof dataset, "%s", PQgetvalue(r, 0, 1));
    PQclear(r);
    char container[64], have[64];
    const char *key;
    eventgrid_blob_subject(e->subject, container, sizeof container, &key);
    if (!artifacts_container(app->artifacts, have, sizeof have) || strcmp(have, container)) {
        char why[200];
        snprintf(why, sizeof why,
                 "the blob is in container %s, outside the artifact store the server reads",
                 container);
        problem_at(h, 422, "blob-outside-artifact-store", "Blob outside the artifact store",
                   "subject", why);
        return NULL;
    }
    if (artifacts_key_check(key) || !strncmp(key, "projects/", 9)) {
        problem_at(h, 422, "blob-unreadable", "Blob not readable", "subject",
                   "the blob name is not one the server reads (printable ASCII, no '.' or '..'"
                   " segments, outside projects/)");
        return NULL;
    }
    return register_version(h, e, project, dataset, key);
unavailable:
    http_problem_unavailable(h->req);
    h->status = 503;
    return NULL;
}

static int content_type_ok(const char *ct)
{
    if (!ct)
        return 1; /* Event Grid always sends one; curl users may not */
    while (*ct == ' ')
        ct++;
    size_t n = strcspn(ct, "; ");
    static const char *const ok[] = {"application/json", "application/cloudevents+json",
                                     "application/cloudevents-batch+json"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (n == strlen(ok[i]) && !strncasecmp(ct, ok[i], n))
            return 1;
    return 0;
}

void api_events_azure(http_req *req)
{
    json_t *errors = NULL, *results = NULL;
    eventgrid_batch batch = {0};
    PGconn *c = NULL;
    if (authenticate(req))
        return;
    const char *aeg = http_header(req, "aeg-event-type");
    if (aeg && strcmp(aeg, "Notification") && strcmp(aeg, "SubscriptionValidation") &&
        strcmp(aeg, "SubscriptionDeletion")) {
        http_problem_field(req, "aeg-event-type",
                           "must be Notification, SubscriptionValidation or SubscriptionDeletion");
        return;
    }
    if (!content_type_ok(http_header(req, "Content-Type"))) {
        http_problem(req, 415, "unsupported-media-type", "Unsupported media type", NULL,
                     "the body must be application/json or application/cloudevents(-batch)+json");
        return;
    }
    char on_error[16] = "reject";
    int q = http_query(req, "on_error", on_error, sizeof on_error);
    if (q == -1) /* CivetWeb empties the buffer when the name is absent */
        snprintf(on_error, sizeof on_error, "reject");
    if (q == -2 || (q >= 0 && strcmp(on_error, "reject") && strcmp(on_error, "quarantine"))) {
        http_problem_field(req, "on_error", "must be reject or quarantine");
        return;
    }
    const char *body;
    size_t len;
    if (http_body(req, &body, &len))
        return;
    if (eventgrid_parse(body, len, &batch, &errors)) {
        http_problem(req, 400, "invalid-event", "Invalid event", errors,
                     "%zu problem(s) with the events, the first: %s: %s", json_array_size(errors),
                     json_string_value(json_object_get(json_array_get(errors, 0), "field")),
                     json_string_value(json_object_get(json_array_get(errors, 0), "reason")));
        return;
    }
    /* Types we do not handle: refused whole, before anything is done. */
    errors = json_array();
    for (size_t i = 0; i < batch.count; i++) {
        const eventgrid_event *e = &batch.events[i];
        if (e->kind != EVENTGRID_UNKNOWN)
            continue;
        char f[48], reason[400];
        snprintf(f, sizeof f, "[%zu].%s", i,
                 e->schema == EVENTGRID_SCHEMA_CLOUDEVENTS ? "type" : "eventType");
        snprintf(reason, sizeof reason,
                 "unknown event type %.200s: this endpoint handles Microsoft.Storage.BlobCreated"
                 " and the subscription validation and deletion events",
                 e->type);
        json_array_append_new(errors, json_pack("{s:s, s:s}", "field", f, "reason", reason));
    }
    if (json_array_size(errors)) {
        const char *first = json_string_value(json_object_get(json_array_get(errors, 0), "reason"));
        http_problem(req, 400, "unknown-event-type", "Unknown event type", errors, "%s", first);
        errors = NULL;
        goto out;
    }
    json_decref(errors);
    errors = NULL;
    /* The handshake: Event Grid sends the validation event alone. */
    for (size_t i = 0; i < batch.count; i++) {
        const eventgrid_event *e = &batch.events[i];
        if (e->kind != EVENTGRID_VALIDATION)
            continue;
        log_fields(LOG_INFO, "event grid subscription validated",
                   json_pack("{s:s, s:s}", "event", e->id, "topic", e->topic));
        http_reply_json(req, 200, json_pack("{s:s}", "validationResponse", e->validation_code));
        goto out;
    }
    c = api_conn(req);
    if (!c)
        goto out;
    results = json_array();
    handler_ctx h = {.req = req, .c = c, .on_error = on_error};
    for (size_t i = 0; i < batch.count && !h.status; i++) {
        const eventgrid_event *e = &batch.events[i];
        h.index = i;
        int dberr = 0;
        json_t *o = seen_before(c, e, &dberr);
        if (dberr) {
            http_problem_unavailable(req);
            h.status = 503;
            break;
        }
        if (!o && e->kind == EVENTGRID_SUBSCRIPTION_DELETED) {
            if (record_event(c, e, "ignored", NULL, NULL, NULL, "subscription deleted")) {
                http_problem_unavailable(req);
                h.status = 503;
                break;
            }
            o = outcome(e, "ignored", 0, NULL, NULL, NULL, "subscription deleted");
        }
        if (!o)
            o = handle_blob(&h, e);
        if (o)
            json_array_append_new(results, o);
    }
    if (!h.status)
        http_reply_json(req, 200, json_pack("{s:o}", "results", results));
    else
        json_decref(results);
    results = NULL;
out:
    if (c)
        api_release(req, c);
    json_decref(errors);
    json_decref(results);
    eventgrid_batch_free(&batch);
}

/* CloudEvents 1.0 abuse protection: Event Grid asks with OPTIONS and WebHook-Request-Origin
 * before it delivers CloudEvents; we grant the origin it names, at any rate. */
void api_events_azure_options(http_req *req)
{
    const char *origin = http_header(req, "WebHook-Request-Origin");
    http_add_header(req, "Allow", "POST, OPTIONS");
    if (!origin) {
        http_reply_empty(req, 204);
        return;
    }
    if (authenticate(req))
        return;
    for (const char *p = origin; *p; p++) {
        if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e || strlen(origin) > 253) {
            http_problem_field(req, "WebHook-Request-Origin", "must be a host name");
            return;
        }
    }
    http_add_header(req, "WebHook-Allowed-Origin", origin);
    http_add_header(req, "WebHook-Allowed-Rate", "*");
    http_reply_empty(req, 200);
}
