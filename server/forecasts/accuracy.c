/* accuracy.refresh: weekly WAPE, bias and interval coverage of what was served. */
#include "forecasts/accuracy.h"
#include "db/db.h"
#include "core/log.h"
#include "ops/ops.h"
#include "retraining/retrain.h"
#include "lib/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int accuracy_enqueue(PGconn *c, const char *project, const char *by)
{
    PGresult *r = db_exec(c,
                          "SELECT DISTINCT f.project_id FROM forecast_runs f WHERE f.current AND"
                          " ($1::text IS NULL OR f.project_id = $1) AND NOT EXISTS (SELECT 1 FROM"
                          " operations o WHERE o.kind = 'accuracy.refresh' AND o.state = 'queued'"
                          " AND o.subject = f.project_id)",
                          1, (const char *[]){project}, NULL);
    if (!r)
        return RST_EDB;
    int rc = RST_OK;
    for (int i = 0; i < PQntuples(r) && rc == RST_OK; i++) {
        json_t *in = json_pack("{s:s}", "project", PQgetvalue(r, i, 0));
        char id[37];
        rc = ops_enqueue(c, "accuracy.refresh", PQgetvalue(r, i, 0), in, by, 3, id) ? RST_EDB
                                                                                     : RST_OK;
        json_decref(in);
    }
    PQclear(r);
    return rc;
}

static ops_result step_compute(ops_ctx *ctx, json_t *request, json_t **response, void *arg)
{
    (void)request;
    const char *project = arg;
    PGconn *c = ops_conn(ctx);
    /* For each store, product and day with an actual: the forecast of the
     * latest ready run covering the day (what was being served then). */
    PGresult *r = db_exec(
        c,
        "WITH served AS (SELECT DISTINCT ON (fc.store_id, fc.product, fc.day) fc.day,"
        " fc.forecast, fc.lo80, fc.hi80, fc.lo95, fc.hi95, a.quantity AS q FROM forecasts fc"
        " JOIN forecast_runs r ON r.id = fc.run_id AND r.project_id = $1 AND r.state = 'ready'"
        " JOIN actuals a ON a.store_id = fc.store_id AND a.product = fc.product AND a.day ="
        " fc.day ORDER BY fc.store_id, fc.product, fc.day, r.ready_at DESC), w AS (INSERT INTO"
        " accuracy_weekly AS x (project_id, week, wape, bias, coverage80, coverage95, n,"
        " computed_at) SELECT $1, date_trunc('week', day)::date, sum(abs(q - forecast)) /"
        " nullif(sum(q), 0), sum(forecast - q) / nullif(sum(q), 0), avg((q BETWEEN lo80 AND"
        " hi80)::int), avg((q BETWEEN lo95 AND hi95)::int), count(*), now() FROM served GROUP BY"
        " 2 ON CONFLICT (project_id, week) DO UPDATE SET wape = EXCLUDED.wape, bias ="
        " EXCLUDED.bias, coverage80 = EXCLUDED.coverage80, coverage95 = EXCLUDED.coverage95, n ="
        " EXCLUDED.n, computed_at = now() RETURNING week, wape, n) SELECT count(*), (SELECT wape"
        " FROM w ORDER BY week DESC LIMIT 1), (SELECT week::text FROM w ORDER BY week DESC LIMIT"
        " 1), (SELECT n FROM w ORDER BY week DESC LIMIT 1) FROM w",
        1, (const char *[]){project}, NULL);
    if (!r || PQntuples(r) != 1) {
        PQclear(r);
        ops_set_error(ctx, "database", "cannot compute the weekly accuracy");
        return OPS_RETRY;
    }
    long weeks = strtol(PQgetvalue(r, 0, 0), NULL, 10);
    int have = !PQgetisnull(r, 0, 1);
    double wape = have ? strtod(PQgetvalue(r, 0, 1), NULL) : 0;
    json_t *out = json_pack("{s:I}", "weeks", (json_int_t)weeks);
    if (have) {
        json_object_set_new(out, "latest_week", json_string(PQgetvalue(r, 0, 2)));
        json_object_set_new(out, "latest_wape", json_real(wape));
        json_object_set_new(out, "latest_n", json_integer(strtoll(PQgetvalue(r, 0, 3), NULL, 10)));
    }
    PQclear(r);
    /* Degraded accuracy asks the project's retraining policy for a new run. */
    double threshold;
    if (have && retrain_accuracy_threshold(c, project, &threshold) == RST_OK) {
        json_object_set_new(out, "threshold", json_real(threshold));
        if (wape > threshold) {
            int rc = retrain_trigger(c, project, "accuracy");
            json_object_set_new(out, "retraining",
                                json_string(rc == RST_OK          ? "queued"
                                            : rc == RST_ECONFLICT ? "already running"
                                                                  : "not possible"));
        }
    }
    *response = out;
    return OPS_DONE;
}

static ops_result refresh(ops_ctx *ctx)
{
    const char *project = json_string_value(json_object_get(ops_input(ctx), "project"));
    if (!project) {
        ops_set_error(ctx, "bad_input", "no project");
        return OPS_FAIL;
    }
    json_t *res = NULL;
    ops_result r = ops_step(ctx, "compute", "local",
                            "weekly accuracy of the served forecasts against the actuals", NULL,
                            step_compute, (void *)project, &res);
    if (r == OPS_DONE)
        ops_set_output(ctx, json_incref(res));
    return r;
}

void accuracy_register(void)
{
    ops_register("accuracy.refresh", refresh);
}
