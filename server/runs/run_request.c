/* Run creation, shared by the runs API and retraining (see run_request.h). */
#include "runs/run_request.h"
#include "db/db.h"
#include "ops/ops.h"
#include "trainer/train_params.h"
#include "lib/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The dataset version a run trains on: ready, with the days it covers. */
typedef struct {
    char id[40], sha[80];
    long number, days;
} version_pick;

static int bad(char *field, size_t fieldlen, const char *f, char *reason, size_t reasonlen,
               const char *why)
{
    snprintf(field, fieldlen, "%s", f);
    snprintf(reason, reasonlen, "%s", why);
    return RST_EINVAL;
}

static int pick_version(PGconn *c, const run_request *q, version_pick *out, char *field,
                        size_t fieldlen, char *reason, size_t reasonlen)
{
    char n[24];
    snprintf(n, sizeof n, "%lld", q->dataset_version);
    PGresult *r = db_exec(c,
                          "SELECT v.id, v.state, v.canonical_sha256, v.number,"
                          " (v.profile->'date_range'->>'days')::int"
                          " FROM dataset_versions v WHERE v.project_id = $1 AND v.dataset = $2"
                          " AND ($3::int = 0 AND v.state = 'ready' OR v.number = $3::int)"
                          " ORDER BY v.number DESC LIMIT 1",
                          3, (const char *[]){q->project, q->dataset, n}, NULL);
    if (!r)
        return RST_EDB;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return bad(field, fieldlen, q->dataset_version ? "dataset_version" : "dataset", reason,
                   reasonlen,
                   q->dataset_version ? "no such version of the dataset"
                                      : "has no ready version in this project");
    }
    if (strcmp(PQgetvalue(r, 0, 1), "ready")) {
        char why[120];
        snprintf(why, sizeof why, "is %s, not ready: runs train on ready versions only",
                 PQgetvalue(r, 0, 1));
        PQclear(r);
        return bad(field, fieldlen, "dataset_version", reason, reasonlen, why);
    }
    snprintf(out->id, sizeof out->id, "%s", PQgetvalue(r, 0, 0));
    snprintf(out->sha, sizeof out->sha, "%s", PQgetvalue(r, 0, 2));
    out->number = strtol(PQgetvalue(r, 0, 3), NULL, 10);
    out->days = PQgetisnull(r, 0, 4) ? 0 : strtol(PQgetvalue(r, 0, 4), NULL, 10);
    PQclear(r);
    return RST_OK;
}

/* The compute target a run uses: ready, and one that trains. */
static int pick_compute(PGconn *c, const run_request *q, char id[40], char *field, size_t fieldlen,
                        char *reason, size_t reasonlen)
{
    PGresult *r = db_exec(c,
                          "SELECT id, state, kind, executor FROM compute_targets"
                          " WHERE project_id = $1 AND name = $2 AND state <> 'deleted'",
                          2, (const char *[]){q->project, q->compute}, NULL);
    if (!r)
        return RST_EDB;
    const char *why = NULL;
    char text[160];
    if (PQntuples(r) == 0)
        why = "no such compute in this project (see GET /api/v1/projects/{project}/compute)";
    else if (strcmp(PQgetvalue(r, 0, 1), "ready")) {
        snprintf(text, sizeof text, "is %s, not ready", PQgetvalue(r, 0, 1));
        why = text;
    } else if (!strcmp(PQgetvalue(r, 0, 2), "inference"))
        why = "is an inference cluster: it serves models, it does not train them";
    if (!why)
        snprintf(id, 40, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    return why ? bad(field, fieldlen, "compute", reason, reasonlen, why) : RST_OK;
}

int run_request_create(PGconn *c, const run_request *q, char run_id[40], char op_id[37],
                       char *field, size_t fieldlen, char *reason, size_t reasonlen)
{
    run_id[0] = op_id[0] = '\0';
    version_pick vp;
    char compute_id[40];
    int rc = pick_version(c, q, &vp, field, fieldlen, reason, reasonlen);
    if (rc == RST_OK)
        rc = pick_compute(c, q, compute_id, field, fieldlen, reason, reasonlen);
    if (rc)
        return rc;
    long need =
        train_min_days((int)q->horizon_days, (int)q->backtest_days, (int)q->rolling_origins);
    if (vp.days < need) {
        char why[240];
        snprintf(why, sizeof why,
                 "version %ld covers %ld days; horizon %lld and backtest %lld days need at least"
                 " %ld (the longest lag, a validation window, the backtest): shorten them or use"
                 " more history",
                 vp.number, vp.days, q->horizon_days, q->backtest_days, need);
        return bad(field, fieldlen,
                   q->horizon_days > TRAIN_DEFAULT_HORIZON ? "horizon_days" : "backtest_days",
                   reason, reasonlen, why);
    }
    int own = PQtransactionStatus(c) == PQTRANS_IDLE;
    if (own)
        PQclear(db_exec(c, "BEGIN", 0, NULL, NULL));
    /* Run numbers count per project: the project row serialises them. */
    PQclear(db_exec(c, "SELECT 1 FROM projects WHERE id = $1 FOR UPDATE", 1,
                    (const char *[]){q->project}, NULL));
    json_t *empty = json_object();
    char *ptext = json_dumps(q->params ? q->params : empty, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(empty);
    char vnum[24], hs[24], bs[24], os[24], ss[24];
    snprintf(vnum, sizeof vnum, "%ld", vp.number);
    snprintf(hs, sizeof hs, "%lld", q->horizon_days);
    snprintf(bs, sizeof bs, "%lld", q->backtest_days);
    snprintf(os, sizeof os, "%lld", q->rolling_origins);
    snprintf(ss, sizeof ss, "%lld", q->seed);
    PGresult *r =
        db_exec(c,
                "INSERT INTO runs(project_id, number, experiment, dataset, dataset_version,"
                " dataset_version_id, dataset_sha256, compute_id, algorithm, params, horizon_days,"
                " backtest_days, rolling_origins, seed, created_by)"
                " SELECT $1, coalesce(max(number), 0) + 1, $2, $3, $4::int, $5::uuid, $6,"
                " $7::uuid, $8, $9::jsonb, $10::int, $11::int, $12::int, $13::bigint, $14"
                " FROM runs WHERE project_id = $1 RETURNING id, number",
                14,
                (const char *[]){q->project, q->experiment, q->dataset, vnum, vp.id, vp.sha,
                                 compute_id, q->algorithm, ptext, hs, bs, os, ss, q->created_by},
                NULL);
    free(ptext);
    if (r) {
        snprintf(run_id, 40, "%s", PQgetvalue(r, 0, 0));
        PQclear(r);
        char subject[200];
        snprintf(subject, sizeof subject, "projects/%s/runs/%s", q->project, run_id);
        json_t *in = json_pack("{s:s}", "run_id", run_id);
        int erc = ops_enqueue(c, "run.train", subject, in, q->created_by, 3, op_id);
        json_decref(in);
        r = erc ? NULL
                : db_exec(c, "UPDATE runs SET operation_id = $2::uuid WHERE id = $1::uuid", 2,
                          (const char *[]){run_id, op_id}, NULL);
    }
    if (r && own) {
        PQclear(r);
        r = db_exec(c, "COMMIT", 0, NULL, NULL);
    }
    if (!r) {
        if (own)
            PQclear(PQexec(c, "ROLLBACK"));
        run_id[0] = op_id[0] = '\0';
        return RST_EDB;
    }
    PQclear(r);
    return RST_OK;
}
