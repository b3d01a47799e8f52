/* Datasets and their immutable versions. An upload streams straight into
 * the artifact store (memory stays flat whatever its size); the version row
 * and its ingestion operation are written in one transaction and answered
 * 202 with the operation's URL. */
#include "api.h"
#include "http/app.h"
#include "events/eventgrid.h"
#include "artifacts/artifacts.h"
#include "ops/ops.h"
#include "identity/access.h"
#include "identity/policy.h"
#include "lib/util.h"
#include "http/validate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DATASET_JSON                                                                               \
    "json_build_object('project', d.project_id, 'name', d.name, 'description', d.description,"    \
    " 'schema_kind', d.schema_kind, 'created_by', d.created_by, 'created_at', d.created_at,"       \
    " 'updated_at', d.updated_at, 'version', d.version, 'latest_version', (SELECT max(number)"     \
    " FROM dataset_versions v WHERE v.project_id = d.project_id AND v.dataset = d.name),"       \
    " 'event_grid_path', d.event_grid_path)"

/* The database keeps the artifact store's URIs (file:// paths of this server, azblob://);
 * answers show artifact keys and the API URLs that serve the files instead. */
#define VERSION_URL                                                                                \
    "('/api/v1/projects/' || v.project_id || '/datasets/' || v.dataset || '/versions/' ||"         \
    " v.number)"
#define VERSION_JSON                                                                               \
    "json_build_object('id', v.id, 'project', v.project_id, 'dataset', v.dataset,"                 \
    " 'number', v.number, 'state', v.state, 'on_error', v.on_error, 'source', CASE WHEN"           \
    " v.source->>'kind' IN ('upload', 'artifact') THEN v.source || jsonb_build_object('uri',"      \
    " coalesce(v.raw_key, regexp_replace(v.raw_uri, '^[a-z]+://.*?/projects/', 'projects/')))"     \
    " ELSE v.source END, 'raw_uri', coalesce(v.raw_key, regexp_replace(v.raw_uri,"                 \
    " '^[a-z]+://.*?/projects/', 'projects/')), 'raw_sha256', v.raw_sha256, 'raw_bytes',"          \
    " v.raw_bytes, 'content_encoding', v.content_encoding, 'canonical_uri', CASE WHEN"             \
    " v.canonical_uri IS NOT NULL THEN " VERSION_URL " || '/canonical.csv' END,"                   \
    " 'canonical_sha256', v.canonical_sha256, 'canonical_bytes', v.canonical_bytes,"               \
    " 'quarantine_uri', CASE WHEN v.quarantine_uri IS NOT NULL THEN " VERSION_URL                  \
    " || '/quarantine.csv' END, 'rows_read', v.rows_read,"                                         \
    " 'rows_accepted', v.rows_accepted, 'rows_rejected', v.rows_rejected, 'result', v.result"      \
    " #- '{canonical,uri}' #- '{quarantine,uri}',"                                                 \
    " 'operation_id', v.operation_id, 'created_by', v.created_by, 'created_at', v.created_at,"     \
    " 'finished_at', v.finished_at)"

/* Answers 404 unless the caller may act on the project's datasets. */
static int dataset_access(http_req *req, PGconn *c, policy_action act, const char *project)
{
    return policy_answer(req, policy_check(c, access_caller(req), act, project), "datasets");
}

/* 0 when path may be a dataset's event_grid_path here, else 1 with the reason in why. */
static int event_grid_path_problem(http_req *req, const char *path, char *why, size_t cap)
{
    app_ctx *app = http_app(req);
    const char *reason = eventgrid_path_check(path);
    if (reason) {
        snprintf(why, cap, "%s", reason);
        return 1;
    }
    char have[64], want[64];
    const char *name;
    eventgrid_blob_subject(path, want, sizeof want, &name);
    if (!artifacts_container(app->artifacts, have, sizeof have)) {
        snprintf(why, cap,
                 "needs an Azure Blob artifact store (ROASTERY_ARTIFACTS=azblob://...):"
                 " the server reads new blobs from it");
        return 1;
    }
    if (strcmp(have, want)) {
        snprintf(why, cap,
                 "must be in the artifact store's container %s: the server can read no"
                 " other",
                 have);
        return 1;
    }
    return 0;
}

/* 0 when project's dataset may claim the well-formed path (policy_event_grid_claim: under the
 * project's own folder, nested with no other dataset's path); else 1, answered (403 as a
 * denial, or 503). */
static int event_grid_path_claim(http_req *req, PGconn *c, const char *project,
                                 const char *dataset, const char *path)
{
    char why[200] = "";
    policy_decision d = policy_event_grid_claim(c, project, dataset, path, why, sizeof why);
    return policy_answer(req, d, why);
}

void api_datasets_create(http_req *req)
{
    caller *who = access_caller(req);
    const char *project = http_param(req, "project");
    json_t *body = NULL;
    PGconn *c = api_conn(req);
    if (!c)
        return;
    if (dataset_access(req, c, ACT_DATASET_WRITE, project) || http_read_json(req, &body))
        goto out;
    validator v;
    v_init(&v);
    static const char *const allowed[] = {"name", "description", "schema_kind",
                                          "event_grid_path", NULL};
    v_only(&v, body, allowed);
    const char *name = v_string(&v, body, "name", 1, 63, v_check_slug);
    const char *desc = v_string(&v, body, "description", 0, 2000, NULL);
    const char *kind = v_string(&v, body, "schema_kind", 0, 16, NULL);
    if (kind && strcmp(kind, "sales"))
        v_error(&v, "schema_kind", "must be sales (the only schema so far)");
    const char *eg_path = v_string(&v, body, "event_grid_path", 0, 1100, NULL);
    char why[200];
    if (eg_path && event_grid_path_problem(req, eg_path, why, sizeof why))
        v_error(&v, "event_grid_path", why);
    if (v_finish(&v, req))
        goto out;
    char subject[160];
    snprintf(subject, sizeof subject, "projects/%s/datasets/%s", project, name);
    access_set_subject(req, subject);
    if (eg_path && event_grid_path_claim(req, c, project, name, eg_path))
        goto out;
    char state[6];
    PGresult *r = db_exec(c,
                          "INSERT INTO datasets(project_id, name, description, created_by,"
                          " event_grid_path) VALUES ($1, $2, $3, $4, $5)",
                          5, (const char *[]){project, name, desc ? desc : "", who->id.oid,
                                              eg_path},
                          state);
    if (!r && !strcmp(state, "23505")) {
        http_problem(req, 409, "conflict", "Already exists", NULL,
                     "project %s already has a dataset named %s%s", project, name,
                     eg_path ? ", or another dataset has this event_grid_path" : "");
        goto out;
    }
    if (!r) {
        http_problem_unavailable(req);
        goto out;
    }
    PQclear(r);
    r = db_exec(c, "SELECT " DATASET_JSON "::text FROM datasets d WHERE d.project_id = $1"
                   " AND d.name = $2", 2, (const char *[]){project, name}, NULL);
    if (!r) {
        http_problem_unavailable(req);
        goto out;
    }
    char loc[200];
    snprintf(loc, sizeof loc, "/api/v1/projects/%s/datasets/%s", project, name);
    http_add_header(req, "Location", loc);
    http_reply_bytes(req, 201, "application/json", PQgetvalue(r, 0, 0),
                     (size_t)PQgetlength(r, 0, 0));
    PQclear(r);
out:
    api_release(req, c);
    json_decref(body);
}

void api_datasets_list(http_req *req)
{
    const char *project = http_param(req, "project");
    PGconn *c = api_conn(req);
    if (!c)
        return;
    if (!dataset_access(req, c, ACT_DATASET_READ, project)) {
        PGresult *r = db_exec(c,
                              "SELECT json_build_object('items', coalesce(json_agg(" DATASET_JSON
                              " ORDER BY d.name), '[]'::json))::text FROM datasets d"
                              " WHERE d.project_id = $1",
                              1, (const char *[]){project}, NULL);
        if (!r)
            http_problem_unavailable(req);
        else
            http_reply_bytes(req, 200, "application/json", PQgetvalue(r, 0, 0),
                             (size_t)PQgetlength(r, 0, 0));
        PQclear(r);
    }
    api_release(req, c);
}

/* Replies 200 with one row's single JSON column, or 404. */
static void reply_one(http_req *req, PGresult *r, const char *what)
{
    if (!r)
        http_problem_unavailable(req);
    else if (PQntuples(r) == 0 || PQgetisnull(r, 0, 0))
        http_problem(req, 404, "not-found", "Not found", NULL, "no such %s", what);
    else
        http_reply_bytes(req, 200, "application/json", PQgetvalue(r, 0, 0),
                         (size_t)PQgetlength(r, 0, 0));
    PQclear(r);
}

void api_datasets_show(http_req *req)
{
    const char *project = http_param(req, "project");
    const char *name = http_param(req, "dataset");
    PGconn *c = api_conn(req);
    if (!c)
        return;
    if (!dataset_access(req, c, ACT_DATASET_READ, project))
        reply_one(req,
                  db_exec(c, "SELECT " DATASET_JSON "::text FROM datasets d"
                             " WHERE d.project_id = $1 AND d.name = $2",
                          2, (const char *[]){project, name}, NULL),
                  "dataset");
    api_release(req, c);
}

void api_versions_list(http_req *req)
{
    const char *project = http_param(req, "project");
    const char *name = http_param(req, "dataset");
    PGconn *c = api_conn(req);
    if (!c)
        return;
    if (!dataset_access(req, c, ACT_DATASET_READ, project))
        reply_one(req,
                  db_exec(c,
                          "SELECT CASE WHEN EXISTS (SELECT 1 FROM datasets WHERE project_id = $1"
                          " AND name = $2) THEN json_build_object('items', coalesce((SELECT"
                          " json_agg(" VERSION_JSON " ORDER BY v.number DESC) FROM dataset_versions v"
                          " WHERE v.project_id = $1 AND v.dataset = $2), '[]'::json))::text END",
                          2, (const char *[]){project, name}, NULL),
                  "dataset");
    api_release(req, c);
}

static int version_number(http_req *req, long *n)
{
    if (parse_long(http_param(req, "number"), 1, 1000000000L, n)) {
        http_problem_field(req, "number", "must be a version number (1, 2, ...)");
        return 1;
    }
    return 0;
}

/* Answers one JSON column of a version chosen by project, dataset and
 * number ($1, $2, $3 of sql), after the access check. */
static void reply_version(http_req *req, const char *sql, const char *what)
{
    const char *project = http_param(req, "project");
    long n;
    if (version_number(req, &n))
        return;
    PGconn *c = api_conn(req);
    if (!c)
        return;
    if (!dataset_access(req, c, ACT_DATASET_READ, project))
        reply_one(req,
                  db_exec(c, sql, 3,
                          (const char *[]){project, http_param(req, "dataset"),
                                           http_param(req, "number")},
                          NULL),
                  what);
    api_release(req, c);
}

void api_versions_show(http_req *req)
{
    reply_version(req,
                  "SELECT " VERSION_JSON "::text FROM dataset_versions v"
                  " WHERE v.project_id = $1 AND v.dataset = $2 AND v.number = $3::int",
                  "version");
}

void api_versions_profile(http_req *req)
{
    reply_version(req,
                  "SELECT v.profile::text FROM dataset_versions v"
                  " WHERE v.project_id = $1 AND v.dataset = $2 AND v.number = $3::int"
                  " AND v.state = 'ready'",
                  "ready version");
}

/* ---- upload ----------------------------------------------------------- */

static int write_to_artifact(void *arg, const void *data, size_t len)
{
    return artifacts_writer_write(arg, data, len);
}

static int is_csv(const char *ctype)
{
    if (!ctype)
        return 0;
    while (*ctype == ' ')
        ctype++;
    size_t n = strcspn(ctype, "; ");
    return n == 8 && !strncasecmp(ctype, "text/csv", 8);
}

/* Writes the version row and its ingestion operation in one transaction;
 * answers 202, or 200 with the existing version when these bytes were
 * already uploaded. */
static void create_version(http_req *req, PGconn *c, const char *project, const char *name,
                           const char *on_error, json_t *source, const char *raw_uri,
                           const char *raw_key, const char *sha, uint64_t bytes,
                           const char *encoding, int uploaded)
{
    caller *who = access_caller(req);
    PGresult *r = db_exec(c,
                          "SELECT " VERSION_JSON "::text, v.number FROM dataset_versions v"
                          " WHERE v.project_id = $1 AND v.dataset = $2 AND v.raw_sha256 = $3"
                          " AND v.state IN ('pending', 'ingesting', 'ready') ORDER BY v.number"
                          " LIMIT 1",
                          3, (const char *[]){project, name, sha}, NULL);
    if (r && PQntuples(r) == 1) {
        char loc[200];
        snprintf(loc, sizeof loc, "/api/v1/projects/%s/datasets/%s/versions/%s", project, name,
                 PQgetvalue(r, 0, 1));
        http_add_header(req, "Location", loc);
        http_add_header(req, "Roastery-Duplicate-Of", PQgetvalue(r, 0, 1));
        http_reply_bytes(req, 200, "application/json", PQgetvalue(r, 0, 0),
                         (size_t)PQgetlength(r, 0, 0));
        PQclear(r);
        if (uploaded) { /* the bytes are already stored once */
            app_ctx *app = http_app(req);
            artifacts_delete(app->artifacts, raw_key);
        }
        return;
    }
    PQclear(r);
    char size[24];
    snprintf(size, sizeof size, "%llu", (unsigned long long)bytes);
    char *src = json_dumps(source, JSON_COMPACT);
    r = db_exec(c, "BEGIN", 0, NULL, NULL);
    PQclear(r);
    char state[6] = "";
    r = db_exec(c,
                "INSERT INTO dataset_versions(project_id, dataset, number, on_error, source,"
                " raw_uri, raw_key, raw_sha256, raw_bytes, content_encoding, created_by)"
                " SELECT $1, $2, coalesce(max(number), 0) + 1, $3, $4::jsonb, $5, $6, $7,"
                " $8::bigint, $9, $10 FROM dataset_versions WHERE project_id = $1 AND dataset = $2"
                " RETURNING id, number",
                10,
                (const char *[]){project, name, on_error, src, raw_uri, raw_key, sha, size,
                                 encoding, who->id.oid},
                state);
    free(src);
    char id[40] = "", number[16] = "", op[37] = "";
    if (r) {
        snprintf(id, sizeof id, "%s", PQgetvalue(r, 0, 0));
        snprintf(number, sizeof number, "%s", PQgetvalue(r, 0, 1));
        PQclear(r);
        char subject[200];
        snprintf(subject, sizeof subject, "projects/%s/datasets/%s/versions/%s", project, name,
                 number);
        access_set_subject(req, subject);
        json_t *input = json_pack("{s:s}", "version_id", id);
        int rc = ops_enqueue(c, "dataset.ingest", subject, input, who->id.oid, 5, op);
        json_decref(input);
        if (rc == RST_OK)
            r = db_exec(c, "UPDATE dataset_versions SET operation_id = $2::uuid WHERE id = $1",
                        2, (const char *[]){id, op}, NULL);
        else
            r = NULL;
    }
    if (!r || !(r = (PQclear(r), db_exec(c, "COMMIT", 0, NULL, NULL)))) {
        PQclear(PQexec(c, "ROLLBACK"));
        /* 23505: another upload took this number at the same moment. */
        if (!strcmp(state, "23505")) {
            http_add_header(req, "Retry-After", "1");
            http_problem(req, 409, "conflict", "Concurrent upload", NULL,
                         "another version was created at the same moment; retry");
        } else {
            http_problem_unavailable(req);
        }
        return;
    }
    PQclear(r);
    r = db_exec(c, "SELECT " VERSION_JSON "::text FROM dataset_versions v WHERE v.id = $1", 1,
                (const char *[]){id}, NULL);
    char loc[80];
    snprintf(loc, sizeof loc, "/api/v1/operations/%s", op);
    http_add_header(req, "Location", loc);
    if (r && PQntuples(r) == 1)
        http_reply_bytes(req, 202, "application/json", PQgetvalue(r, 0, 0),
                         (size_t)PQgetlength(r, 0, 0));
    else
        http_problem_unavailable(req);
    PQclear(r);
}

void api_versions_create(http_req *req)
{
    app_ctx *app = http_app(req);
    const char *project = http_param(req, "project");
    const char *name = http_param(req, "dataset");
    artifact_writer *w = NULL;
    json_t *body = NULL, *source = NULL;
    PGconn *c = api_conn(req);
    if (!c)
        return;
    if (dataset_access(req, c, ACT_DATASET_WRITE, project))
        goto out;
    PGresult *r = db_exec(c, "SELECT 1 FROM datasets WHERE project_id = $1 AND name = $2", 2,
                          (const char *[]){project, name}, NULL);
    int exists = r && PQntuples(r) == 1;
    PQclear(r);
    if (!exists) {
        http_problem(req, 404, "not-found", "Not found", NULL, "no dataset %s in %s", name,
                     project);
        goto out;
    }
    char on_error[16] = "reject";
    int q = http_query(req, "on_error", on_error, sizeof on_error);
    /* an absent parameter may leave the buffer emptied: the default stands */
    if (q < 0)
        snprintf(on_error, sizeof on_error, "reject");
    if (q == -2 || (q >= 0 && strcmp(on_error, "reject") && strcmp(on_error, "quarantine"))) {
        http_problem_field(req, "on_error", "must be reject or quarantine");
        goto out;
    }
    const char *ctype = http_header(req, "Content-Type");
    if (is_csv(ctype)) {
        const char *enc = http_header(req, "Content-Encoding");
        int gz = enc && !strcasecmp(enc, "gzip");
        if (enc && !gz && strcasecmp(enc, "identity")) {
            http_problem(req, 415, "unsupported-media-type", "Unsupported content encoding",
                         NULL, "Content-Encoding must be gzip or identity");
            goto out;
        }
        char rnd[33];
        random_hex_id(rnd);
        char *key = xasprintf("projects/%s/datasets/%s/uploads/%s.csv%s", project, name, rnd,
                              gz ? ".gz" : "");
        if (artifacts_writer_open(app->artifacts, key, &w)) {
            free(key);
            http_problem(req, 503, "unavailable", "Artifact store unavailable", NULL,
                         "the artifact store cannot take the upload; retry later");
            goto out;
        }
        uint64_t total = 0;
        if (http_body_stream(req, (uint64_t)app->cfg->max_upload_bytes, write_to_artifact, w,
                             &total)) {
            artifacts_writer_abort(w);
            w = NULL;
            free(key);
            if (!http_status(req))
                http_problem(req, 503, "unavailable", "Artifact store unavailable", NULL,
                             "the upload could not be stored; retry later");
            goto out;
        }
        if (total == 0) {
            artifacts_writer_abort(w);
            w = NULL;
            free(key);
            http_problem_field(req, "body", "the upload is empty");
            goto out;
        }
        char sha[65];
        uint64_t size = 0;
        int rc = artifacts_writer_commit(w, sha, &size);
        w = NULL;
        if (rc) {
            free(key);
            http_problem(req, 503, "unavailable", "Artifact store unavailable", NULL,
                         "the upload could not be stored; retry later");
            goto out;
        }
        char *uri = artifacts_uri(app->artifacts, key);
        source = json_pack("{s:s, s:s, s:s?}", "kind", "upload", "uri", uri, "content_encoding",
                           gz ? "gzip" : NULL);
        create_version(req, c, project, name, on_error, source, uri, key, sha, size,
                       gz ? "gzip" : NULL, 1);
        free(uri);
        free(key);
    } else if (!http_read_json(req, &body)) {
        validator v;
        v_init(&v);
        static const char *const allowed[] = {"source", NULL};
        v_only(&v, body, allowed);
        json_t *s = json_object_get(body, "source");
        const char *key = json_is_object(s) ? v_string(&v, s, "key", 1, 1024, v_check_printable)
                                            : NULL;
        if (!json_is_object(s))
            v_error(&v, "source", "must be {\"key\": \"<artifact key>\"} or a text/csv upload");
        if (v_finish(&v, req))
            goto out;
        /* Only keys of this project: a version cannot read another team's files. */
        char prefix[160];
        snprintf(prefix, sizeof prefix, "projects/%s/", project);
        uint64_t size = 0;
        if (strncmp(key, prefix, strlen(prefix)) || strstr(key, "..")) {
            http_problem_field(req, "source.key", "must be an artifact of this project");
            goto out;
        }
        if (artifacts_stat(app->artifacts, key, &size)) {
            http_problem_field(req, "source.key", "no such artifact");
            goto out;
        }
        /* Hash the blob as it is now: the version pins these exact bytes. */
        char sha[65];
        if (artifacts_sha256(app->artifacts, key, sha)) {
            http_problem_unavailable(req);
            goto out;
        }
        size_t kl = strlen(key);
        int gz = kl > 3 && !strcmp(key + kl - 3, ".gz");
        char *uri = artifacts_uri(app->artifacts, key);
        source = json_pack("{s:s, s:s}", "kind", "artifact", "uri", uri);
        create_version(req, c, project, name, on_error, source, uri, key, sha, size,
                       gz ? "gzip" : NULL, 0);
        free(uri);
    }
out:
    artifacts_writer_abort(w);
    json_decref(body);
    json_decref(source);
    api_release(req, c);
}

/* 200 with the dataset (ETag from its version). */
static void dataset_reply(http_req *req, PGconn *c, const char *project, const char *name)
{
    PGresult *r = db_exec(c, "SELECT " DATASET_JSON "::text, d.version FROM datasets d"
                             " WHERE d.project_id = $1 AND d.name = $2",
                          2, (const char *[]){project, name}, NULL);
    if (r && PQntuples(r) == 1)
        api_etag(req, PQgetvalue(r, 0, 1));
    reply_one(req, r, "dataset");
}

/* ---- PATCH /api/v1/projects/{project}/datasets/{dataset} ----------------------------- */

void api_datasets_update(http_req *req)
{
    const char *project = http_param(req, "project");
    const char *name = http_param(req, "dataset");
    json_t *body = NULL;
    PGconn *c = api_conn(req);
    if (!c)
        return;
    char subject[160];
    snprintf(subject, sizeof subject, "projects/%s/datasets/%s", project, name);
    access_set_subject(req, subject);
    if (policy_answer(req, policy_check(c, access_caller(req), ACT_DATASET_WRITE, project),
                      "datasets") ||
        http_read_json(req, &body))
        goto out;
    validator v;
    v_init(&v);
    static const char *const allowed[] = {"description", "event_grid_path", NULL};
    v_only(&v, body, allowed);
    const char *desc = v_string(&v, body, "description", 0, 2000, NULL);
    json_t *pj = json_object_get(body, "event_grid_path");
    int set_path = pj != NULL;
    const char *path = NULL;
    if (pj && !json_is_null(pj)) {
        path = v_string(&v, body, "event_grid_path", 1, 1100, NULL);
        char why[200];
        if (path && event_grid_path_problem(req, path, why, sizeof why))
            v_error(&v, "event_grid_path", why);
    }
    if (v_finish(&v, req))
        goto out;
    PGresult *r = db_exec(c, "SELECT version FROM datasets WHERE project_id = $1 AND name = $2", 2,
                          (const char *[]){project, name}, NULL);
    if (!r) {
        http_problem_unavailable(req);
        goto out;
    }
    if (PQntuples(r) == 0) {
        PQclear(r);
        http_problem(req, 404, "not-found", "Not found", NULL, "no dataset %s in %s", name,
                     project);
        goto out;
    }
    char version[24];
    snprintf(version, sizeof version, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    if (api_if_match_fails(req, version) ||
        (path && event_grid_path_claim(req, c, project, name, path)))
        goto out;
    char state[6] = "";
    r = db_exec(c,
                "UPDATE datasets SET description = coalesce($3, description),"
                " event_grid_path = CASE WHEN $4::boolean THEN $5 ELSE event_grid_path END,"
                " version = version + 1, updated_at = now()"
                " WHERE project_id = $1 AND name = $2 AND version = $6::int RETURNING 1",
                6, (const char *[]){project, name, desc, set_path ? "t" : "f", path, version},
                state);
    if (!r && !strcmp(state, "23505")) {
        http_problem(req, 409, "conflict", "Path taken", NULL,
                     "another dataset already has this event_grid_path");
    } else if (!r) {
        http_problem_unavailable(req);
    } else if (PQntuples(r) == 0) {
        http_problem(req, 412, "precondition-failed", "Precondition failed", NULL,
                     "the dataset changed while you updated it; read it again");
    } else {
        dataset_reply(req, c, project, name);
    }
    PQclear(r);
out:
    api_release(req, c);
    json_decref(body);
}

/* ---- downloads -------------------------------------------------------- */

static int next_chunk(void *arg, char *buf, size_t cap, size_t *got)
{
    return artifacts_reader_read(arg, buf, cap, got);
}

static void close_reader(void *arg)
{
    artifacts_reader_close(arg);
}

/* Streams the version's canonical or quarantine file. */
static void download(http_req *req, const char *which)
{
    app_ctx *app = http_app(req);
    const char *project = http_param(req, "project");
    long n;
    if (version_number(req, &n))
        return;
    PGconn *c = api_conn(req);
    if (!c)
        return;
    if (dataset_access(req, c, ACT_DATASET_READ, project)) {
        api_release(req, c);
        return;
    }
    PGresult *r = db_exec(c,
                          "SELECT state, quarantine_uri IS NOT NULL FROM dataset_versions"
                          " WHERE project_id = $1 AND dataset = $2 AND number = $3::int",
                          3, (const char *[]){project, http_param(req, "dataset"),
                                              http_param(req, "number")},
                          NULL);
    api_release(req, c);
    if (!r) {
        http_problem_unavailable(req);
        return;
    }
    int ok = PQntuples(r) == 1 && (!strcmp(which, "canonical")
                                       ? !strcmp(PQgetvalue(r, 0, 0), "ready")
                                       : PQgetvalue(r, 0, 1)[0] == 't');
    PQclear(r);
    if (!ok) {
        http_problem(req, 404, "not-found", "Not found", NULL,
                     "this version has no %s file (yet)", which);
        return;
    }
    char key[400];
    snprintf(key, sizeof key, "projects/%s/datasets/%s/versions/%ld/%s.csv", project,
             http_param(req, "dataset"), n, which);
    uint64_t size = 0;
    artifact_reader *rd = NULL;
    if (artifacts_stat(app->artifacts, key, &size) ||
        artifacts_reader_open(app->artifacts, key, 0, 0, &rd)) {
        http_problem(req, 503, "unavailable", "Artifact store unavailable", NULL,
                     "the file cannot be read from the artifact store; retry later");
        return;
    }
    char disp[200];
    snprintf(disp, sizeof disp, "attachment; filename=\"%s-v%ld-%s.csv\"",
             http_param(req, "dataset"), n, which);
    http_add_header(req, "Content-Disposition", disp);
    http_reply_stream(req, 200, "text/csv; charset=utf-8", size, next_chunk, close_reader, rd);
}

void api_versions_canonical(http_req *req)
{
    download(req, "canonical");
}

void api_versions_quarantine(http_req *req)
{
    download(req, "quarantine");
}
