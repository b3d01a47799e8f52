/* Liveness, readiness, metrics and the contract itself. */
#include "api.h"
#include "http/app.h"
#include "core/embedded.h"
#include "core/metrics.h"
#include "db/migrate.h"
#include "lib/util.h"

#include <string.h>

void api_healthz(http_req *req)
{
    static const char body[] = "{\"status\":\"ok\"}";
    http_reply_bytes(req, 200, "application/json", body, sizeof body - 1);
}

void api_readyz(http_req *req)
{
    app_ctx *app = http_app(req);
    PGconn *c = NULL;
    if (db_acquire(app->pool, 1000, &c)) {
        http_problem_unavailable(req);
        return;
    }
    int current = migrate_current(c, embedded_migrations, embedded_migrations_count);
    db_release(app->pool, c);
    if (current < 0) {
        http_problem_unavailable(req);
    } else if (current == 0) {
        http_add_header(req, "Retry-After", "5");
        http_problem(req, 503, "migrations-pending", "Migrations pending", NULL,
                     "the database schema is not at this version's migrations; run roastery "
                     "migrate");
    } else {
        http_reply_json(req, 200,
                        json_pack("{s:s, s:s, s:I}", "status", "ready", "database", "ok",
                                  "migrations", (json_int_t)embedded_migrations_count));
    }
}

/* Forecast gauges per project: the latest week of accuracy_weekly (kept
 * current by accuracy.refresh) and the age of the current forecast run. */
static void metrics_forecasts(buf_t *out, PGconn *c)
{
    PGresult *r = db_exec(c,
                          "SELECT DISTINCT ON (project_id) project_id, coalesce(wape::text, 'NaN'),"
                          " coalesce(bias::text, 'NaN'), coverage80, coverage95, n FROM"
                          " accuracy_weekly ORDER BY project_id, week DESC",
                          0, NULL, NULL);
    static const char *const names[] = {
        "roastery_forecast_wape",       "WAPE of the latest week of served forecasts with actuals.",
        "roastery_forecast_bias",       "Relative bias of that week (positive: over-forecast).",
        "roastery_forecast_coverage80", "Share of that week's actuals inside the 80% interval.",
        "roastery_forecast_coverage95", "Share of that week's actuals inside the 95% interval.",
        "roastery_forecast_accuracy_n", "Store x product x days behind those figures."};
    for (int k = 0; r && k < 5; k++) {
        buf_printf(out, "# HELP %s %s\n# TYPE %s gauge\n", names[2 * k], names[2 * k + 1],
                   names[2 * k]);
        for (int i = 0; i < PQntuples(r); i++)
            buf_printf(out, "%s{project=\"%s\"} %s\n", names[2 * k], PQgetvalue(r, i, 0),
                       PQgetvalue(r, i, k + 1));
    }
    PQclear(r);
    r = db_exec(c,
                "SELECT project_id, extract(epoch FROM now() - ready_at)::bigint FROM"
                " forecast_runs WHERE current",
                0, NULL, NULL);
    if (r) {
        buf_puts(out, "# HELP roastery_forecast_age_seconds Age of the current forecast run.\n"
                      "# TYPE roastery_forecast_age_seconds gauge\n");
        for (int i = 0; i < PQntuples(r); i++)
            buf_printf(out, "roastery_forecast_age_seconds{project=\"%s\"} %s\n",
                       PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
    }
    PQclear(r);
}

void api_metrics(http_req *req)
{
    app_ctx *app = http_app(req);
    buf_t out;
    buf_init(&out, 0);
    metrics_render(&out);
    int size, in_use, waiting;
    db_pool_stats(app->stats_pool ? app->stats_pool : app->pool, &size, &in_use, &waiting);
    buf_printf(&out,
               "# HELP roastery_db_pool_connections Pool size.\n"
               "# TYPE roastery_db_pool_connections gauge\nroastery_db_pool_connections %d\n"
               "# HELP roastery_db_pool_in_use Connections lent out.\n"
               "# TYPE roastery_db_pool_in_use gauge\nroastery_db_pool_in_use %d\n"
               "# HELP roastery_db_pool_waiting Requests waiting for a connection.\n"
               "# TYPE roastery_db_pool_waiting gauge\nroastery_db_pool_waiting %d\n",
               size, in_use, waiting);
    PGconn *c = NULL;
    int up = 0;
    if (db_acquire(app->pool, 500, &c) == RST_OK) {
        PGresult *r = db_exec(c,
                              "SELECT s.state, count(o.id) FROM unnest(ARRAY['queued','running',"
                              "'succeeded','failed','canceled']) AS s(state)"
                              " LEFT JOIN operations o ON o.state = s.state GROUP BY s.state"
                              " ORDER BY s.state",
                              0, NULL, NULL);
        if (r) {
            up = 1;
            buf_puts(&out, "# HELP roastery_operations Operations by state.\n"
                           "# TYPE roastery_operations gauge\n");
            for (int i = 0; i < PQntuples(r); i++)
                buf_printf(&out, "roastery_operations{state=\"%s\"} %s\n", PQgetvalue(r, i, 0),
                           PQgetvalue(r, i, 1));
            PQclear(r);
        }
        metrics_forecasts(&out, c);
        db_release(app->pool, c);
    }
    buf_printf(&out,
               "# HELP roastery_database_up Whether the last metrics query reached the "
               "database.\n# TYPE roastery_database_up gauge\nroastery_database_up %d\n",
               up);
    http_reply_bytes(req, 200, "text/plain; version=0.0.4; charset=utf-8", out.data, out.len);
    buf_free(&out);
}

void api_openapi(http_req *req)
{
    http_reply_bytes(req, 200, "application/yaml", embedded_openapi, embedded_openapi_len);
}
