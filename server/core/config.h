/* Process configuration from ROASTERY_* environment variables (12-factor),
 * validated once at start-up. */
#ifndef ROASTERY_CONFIG_H
#define ROASTERY_CONFIG_H

#include <stddef.h>

#include "core/log.h"

typedef struct {
    char *listen;       /* host:port for CivetWeb */
    char *data_dir;     /* embedded PostgreSQL and local artifacts live here */
    char *database_url; /* libpq conninfo; NULL = embedded PostgreSQL */
    int http_threads;
    int workers;          /* in-process workers of serve */
    long max_body_bytes;  /* JSON request bodies */
    int header_timeout_ms;  /* headers in total; keep-alive idle */
    int body_grace_ms;      /* before the minimum body rate applies */
    int body_min_rate;      /* bytes per second; 0 = none */
    int conn_per_address;   /* connections per client address; 0 = no cap */
    int conn_per_identity;  /* requests in progress per identity; 0 = no cap */
    char *probe_listen;     /* serve's probe listener; NULL = none */
    int log_follow_seconds; /* bound of a followed run log */
    log_level log_level;
    int db_pool_size;
    int statement_timeout_ms;
    int migrate_on_start;
    int lease_seconds;     /* operation lease; renewed every third of it */
    int max_attempts;      /* per operation before it ends failed */
    int poll_interval_ms;  /* workers poll even without NOTIFY */
    int retry_base_ms;     /* first retry delay; doubles per attempt, with jitter */
    int retry_max_ms;      /* cap on the retry delay */

    /* identity */
    char *auth;              /* "azuread" or "dev" */
    char *aad_jwks_url;      /* may hold {tenant} */
    char *aad_tenant_id;     /* comma-separated */
    char *aad_audience;      /* comma-separated */
    int aad_accept_v1;
    int aad_clock_skew_seconds;
    int aad_jwks_min_refetch_seconds;
    char *aad_required_scope;
    char *aad_role_map;
    int auth_dev_allow_remote;
    int rate_limit_per_second; /* per identity; 0 = no limit */
    int rate_limit_burst;
    char *trusted_proxies;            /* whose X-Forwarded-For is believed; NULL = nobody's */
    int auth_failure_rate_per_minute; /* per client address; 0 = no limit */
    int auth_failure_burst;
    int audit_aggregate_seconds; /* repeated refusals share one row per window */

    /* artifacts and uploads */
    char *artifacts;                /* file:///dir or azblob://container; NULL = data dir */
    char *azure_storage_connection; /* for azblob:// */
    long long max_upload_bytes;
    long long max_decompressed_bytes; /* CSV bytes of a version after gunzip */
    int max_compression_ratio;        /* decompressed : compressed of a gzip upload */
    int max_rows_per_version;

    /* executors: who carries action plans out */
    char *executor;          /* "local", "azure" or "dry-run" */
    char *terraform_bin;
    char *terraform_modules; /* directory holding terraform/modules/<name> */
    char *terraform_env;     /* more variables terraform inherits; NULL = none */
    int terraform_timeout_seconds;
    char *tf_state_resource_group;
    char *tf_state_storage_account;
    char *tf_state_container;
    char *azure_subscription_id;
    char *azure_resource_group;
    char *azureml_workspace;
    char *azure_location;
    int local_slots; /* 0 = CPU count */
    int train_memory_mb; /* RLIMIT_AS of a local trainer; 0 = none */
    char *arm_endpoint;
    char *aad_authority;
    char *azure_tenant_id, *azure_client_id, *azure_client_secret;
    char *azure_federated_token_file; /* workload identity; used when there is no secret */
    char *worker_listen;              /* roastery worker's probe listener; NULL = none */
    char *online_instance_type;
    char *azureml_datastore;
    char *azureml_datastore_connection; /* secret */
    char *trainer_image;
    int azureml_poll_seconds;

    /* the browser portal (server/http/portal.c); no secrets: config.json shows these */
    char *portal_dir;        /* built files; NULL = the build tree's portal */
    char *aad_spa_client_id; /* the portal's public client; NULL = the audience's client id */
    char *aad_spa_scopes;    /* scopes it asks for; NULL = <api:// audience>/<required scope> */

    /* events in (Azure Event Grid) and out (webhooks) */
    char *eventgrid_secret;     /* secret; NULL = shared-secret deliveries refused */
    char *eventgrid_aad_oids;   /* principals (oid) whose AAD tokens may deliver events */
    int webhook_timeout_seconds;
    int webhook_retry_base_ms;  /* first wait before a delivery is retried; doubles */
    int webhook_max_attempts;
    char *webhook_ports; /* extra ports webhooks may target; NULL = 443 (80 in dev) */
} config;

/* Reads the environment into cfg. On a bad value writes one line to err
 * (naming the variable, the value and what was expected) and returns
 * RST_EINVAL. Strings in cfg are new: free with config_free. */
int config_load(config *cfg, char *err, size_t errlen);
void config_free(config *cfg);

/* What serving needs beyond config_load: with ROASTERY_AUTH=azuread, the
 * tenants and audiences to accept; with ROASTERY_AUTH=dev, loopback listen addresses only
 * (unless ROASTERY_AUTH_DEV_ALLOW_REMOTE). RST_EINVAL and one line in err if not. */
int config_check_auth(const config *cfg, char *err, size_t errlen);

/* Whether every entry of a comma-separated listen list is a loopback address (127.0.0.0/8,
 * [::1] or localhost, with a port). A bare port or any other host is not. */
int config_listen_is_loopback(const char *listen);

/* Writes the variables and their defaults (for --help). */
void config_print_help(void);

#endif
