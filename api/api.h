/* The route table of the whole API, one handler file per resource. */
#ifndef ROASTERY_API_H
#define ROASTERY_API_H

#include <stddef.h>

#include <libpq-fe.h>

#include "http/http.h"

/* borrowed: a static table; *count receives its length. */
const http_route *api_routes(size_t *count);

/* common.c: borrowed connection or a 503 answer (NULL). */
PGconn *api_conn(http_req *req);
void api_release(http_req *req, PGconn *c);
/* ETag "v<version>" header. */
void api_etag(http_req *req, const char *version);
/* Answers 412 and returns 1 when If-Match names another version. */
int api_if_match_fails(http_req *req, const char *version);
/* Replies a row of (json text, version): ETag from the version and, for 201,
 * Location. 503 when r is NULL or empty. r is borrowed. */
void api_reply_versioned(http_req *req, PGresult *r, int status, const char *location);
/* Replies the first column of r's first row (JSON text) with status; 503 when r is NULL or
 * empty. r is borrowed. */
void api_reply_row(http_req *req, PGresult *r, int status);
/* Reads ?limit= (1..200, default 50); answers 400 and returns 1 when bad. */
int api_limit(http_req *req, long *limit);
/* Replies {"items":[...], "next_cursor"} from a result fetched with limit+1
 * rows: json_col holds each item, cursor_col the cursor value. */
void api_reply_page(http_req *req, PGresult *r, int cursor_col, int json_col, long limit);

/* forecasts.c */
void api_store_forecasts(http_req *req);
void api_store_accuracy(http_req *req);
void api_project_accuracy(http_req *req);
void api_actuals_post(http_req *req);
void api_forecast_runs_list(http_req *req);
void api_forecast_runs_create(http_req *req);
void api_planned_promotions_list(http_req *req);
void api_planned_promotions_create(http_req *req);
void api_planned_promotions_delete(http_req *req);
void api_weather_outlook_get(http_req *req);
void api_weather_outlook_put(http_req *req);

/* health.c */
void api_healthz(http_req *req);
void api_readyz(http_req *req);
void api_metrics(http_req *req);
void api_openapi(http_req *req);

/* operations.c */
void api_operations_list(http_req *req);
void api_operations_show(http_req *req);
void api_operations_cancel(http_req *req);

/* projects.c */
void api_projects_create(http_req *req);
void api_projects_list(http_req *req);
void api_projects_show(http_req *req);
void api_projects_update(http_req *req);
void api_members_list(http_req *req);
void api_members_put(http_req *req);
void api_members_delete(http_req *req);

/* stores.c */
void api_stores_create(http_req *req);
void api_stores_list(http_req *req);
void api_stores_show(http_req *req);
void api_stores_update(http_req *req);
void api_store_serving_put(http_req *req);
void api_store_managers_list(http_req *req);
void api_store_managers_put(http_req *req);
void api_store_managers_delete(http_req *req);

/* datasets.c */
void api_datasets_create(http_req *req);
void api_datasets_list(http_req *req);
void api_datasets_show(http_req *req);
void api_datasets_update(http_req *req);
void api_versions_create(http_req *req);
void api_versions_list(http_req *req);
void api_versions_show(http_req *req);
void api_versions_profile(http_req *req);
void api_versions_canonical(http_req *req);
void api_versions_quarantine(http_req *req);

/* dataset_rows.c */
void api_versions_rows(http_req *req);
void api_versions_daily_totals(http_req *req);

/* compute.c */
void api_compute_create(http_req *req);
void api_compute_list_project(http_req *req);
void api_compute_list(http_req *req);
void api_compute_show(http_req *req);
void api_compute_plan(http_req *req);
void api_compute_update(http_req *req);
void api_compute_delete(http_req *req);
void api_compute_approve(http_req *req);
void api_compute_reject(http_req *req);
void api_compute_retry(http_req *req);

/* prices.c: VM prices and project quotas */
void api_prices_list(http_req *req);
void api_prices_put(http_req *req);
void api_quotas_list(http_req *req);
void api_quotas_put(http_req *req);

/* runs.c */
void api_runs_create(http_req *req);
void api_runs_list(http_req *req);
void api_runs_show(http_req *req);
void api_runs_cancel(http_req *req);
void api_runs_metrics(http_req *req);
void api_runs_logs(http_req *req);
void api_runs_artifacts(http_req *req);
void api_runs_artifact(http_req *req);

/* models.c: the registry, promotions and rollback */
void api_models_create(http_req *req);
void api_models_list(http_req *req);
void api_models_show(http_req *req);
void api_models_rollback(http_req *req);
void api_model_versions_create(http_req *req);
void api_model_versions_list(http_req *req);
void api_model_versions_show(http_req *req);
void api_model_versions_archive(http_req *req);
void api_model_versions_predict(http_req *req);
void api_promotions_create(http_req *req);
void api_promotions_list(http_req *req);
void api_promotions_queue(http_req *req);
void api_promotions_show(http_req *req);
void api_promotions_approve(http_req *req);
void api_promotions_reject(http_req *req);

/* me.c, users.c, audit.c */
void api_me(http_req *req);
void api_users_list(http_req *req);
void api_audit_list(http_req *req);

/* events.c: Azure Event Grid deliveries */
void api_events_azure(http_req *req);
void api_events_azure_options(http_req *req);

/* webhooks.c: outbound webhooks per project and their delivery log */
void api_webhooks_create(http_req *req);
void api_webhooks_list(http_req *req);
void api_webhooks_show(http_req *req);
void api_webhooks_update(http_req *req);
void api_webhooks_delete(http_req *req);
void api_webhooks_deliveries(http_req *req);
void api_webhooks_ping(http_req *req);

/* retraining.c: the retraining policy, its retrainings, drift reports */
void api_retraining_policy_show(http_req *req);
void api_retraining_policy_put(http_req *req);
void api_retraining_trigger(http_req *req);
void api_retrainings_list(http_req *req);
void api_retrainings_show(http_req *req);
void api_drift_reports_list(http_req *req);
void api_drift_reports_show(http_req *req);

/* dev_auth.c: the local issuer, only with ROASTERY_AUTH=dev */
void api_dev_jwks(http_req *req);
void api_dev_token(http_req *req);
void api_dev_sign_in(http_req *req);

#endif
