/* Environment configuration. Every variable has a default, a range and a
 * one-line description, so --help and the error messages come from one table. */
#include "core/config.h"
#include "lib/util.h"
#include "lib/clientaddr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef enum {
    V_STRING,
    V_INT,
    V_BOOL,
    V_LEVEL,
    V_LISTEN,
    V_CHOICE,
    V_SIZE,
    V_PORTS,
    V_NETS
} var_kind;

typedef struct {
    const char *name;
    var_kind kind;
    const char *def; /* NULL: unset by default; "$NAME": the value of NAME (e.g. what AKS
                        workload identity injects), unset when NAME is */
    long min, max;
    size_t offset;
    const char *help;
} var_spec;

/* The accepted values of each V_CHOICE variable, "a|b|c". */
static const struct {
    const char *name, *choices;
} choice_vars[] = {
    {"ROASTERY_AUTH", "azuread|dev"},
    {"ROASTERY_EXECUTOR", "local|azure|dry-run"},
};

static const char *choices_of(const char *name)
{
    for (size_t i = 0; i < sizeof choice_vars / sizeof choice_vars[0]; i++)
        if (!strcmp(choice_vars[i].name, name))
            return choice_vars[i].choices;
    return "";
}

#define OFF(f) offsetof(config, f)

static const var_spec vars[] = {
    {"ROASTERY_LISTEN", V_LISTEN, "127.0.0.1:8080", 0, 0, OFF(listen),
     "address and port to listen on (host:port, or several comma-separated)"},
    {"ROASTERY_DATA_DIR", V_STRING, "./var", 0, 0, OFF(data_dir),
     "directory for the embedded PostgreSQL and local artifacts"},
    {"ROASTERY_DATABASE_URL", V_STRING, NULL, 0, 0, OFF(database_url),
     "libpq connection string; unset = embedded PostgreSQL under the data dir"},
    {"ROASTERY_HTTP_THREADS", V_INT, "32", 2, 1024, OFF(http_threads),
     "HTTP worker threads (each keep-alive connection holds one)"},
    {"ROASTERY_WORKERS", V_INT, "4", 0, 64, OFF(workers),
     "in-process operation workers of serve (a training run holds one while it runs)"},
    {"ROASTERY_MAX_BODY_BYTES", V_INT, "1048576", 1024, 1073741824L, OFF(max_body_bytes),
     "largest JSON request body in bytes"},
    {"ROASTERY_HEADER_TIMEOUT_MS", V_INT, "10000", 500, 600000, OFF(header_timeout_ms),
     "longest a request's headers may take in total, and a keep-alive connection may idle"},
    {"ROASTERY_BODY_GRACE_MS", V_INT, "10000", 0, 3600000, OFF(body_grace_ms),
     "time a request body may take before its minimum rate applies"},
    {"ROASTERY_BODY_MIN_BYTES_PER_SECOND", V_INT, "1024", 0, 1073741824L, OFF(body_min_rate),
     "slowest average rate of a request body after the grace time (0 = no minimum)"},
    {"ROASTERY_CONN_PER_ADDRESS", V_INT, "8", 0, 65536, OFF(conn_per_address),
     "connections one client address may hold at once (0 = no cap; behind a proxy: see docs)"},
    {"ROASTERY_CONN_PER_IDENTITY", V_INT, "8", 0, 65536, OFF(conn_per_identity),
     "requests one identity may have in progress at once (0 = no cap)"},
    {"ROASTERY_PROBE_LISTEN", V_LISTEN, NULL, 0, 0, OFF(probe_listen),
     "host:port where serve answers /healthz, /readyz and /metrics on threads of its own"},
    {"ROASTERY_LOG_FOLLOW_SECONDS", V_INT, "600", 1, 86400, OFF(log_follow_seconds),
     "longest a followed run log (logs?follow=true) streams before it ends"},
    {"ROASTERY_LOG_LEVEL", V_LEVEL, "info", 0, 0, OFF(log_level), "debug, info, warn or error"},
    {"ROASTERY_DB_POOL_SIZE", V_INT, "16", 1, 512, OFF(db_pool_size),
     "database connections held by the pool"},
    {"ROASTERY_STATEMENT_TIMEOUT_MS", V_INT, "5000", 10, 3600000, OFF(statement_timeout_ms),
     "statement_timeout of request queries"},
    {"ROASTERY_MIGRATE_ON_START", V_BOOL, "1", 0, 0, OFF(migrate_on_start),
     "apply migrations when serve starts (0 or 1)"},
    {"ROASTERY_LEASE_SECONDS", V_INT, "30", 2, 3600, OFF(lease_seconds),
     "lease a worker holds on an operation"},
    {"ROASTERY_MAX_ATTEMPTS", V_INT, "5", 1, 100, OFF(max_attempts),
     "attempts before an operation ends failed"},
    {"ROASTERY_POLL_INTERVAL_MS", V_INT, "2000", 50, 600000, OFF(poll_interval_ms),
     "how often idle workers look for due operations without a NOTIFY"},
    {"ROASTERY_RETRY_BASE_MS", V_INT, "1000", 10, 3600000, OFF(retry_base_ms),
     "delay before the first retry of a failed operation step"},
    {"ROASTERY_RETRY_MAX_MS", V_INT, "300000", 10, 86400000, OFF(retry_max_ms),
     "longest delay between retries"},
    {"ROASTERY_AUTH", V_CHOICE, "azuread", 0, 0, OFF(auth),
     "azuread (Entra ID tokens) or dev (a local issuer for the demo, loopback only)"},
    {"ROASTERY_AAD_JWKS_URL", V_STRING,
     "https://login.microsoftonline.com/{tenant}/discovery/v2.0/keys", 0, 0, OFF(aad_jwks_url),
     "signing keys of the tenant (https, http://127.0.0.1 or file:// for tests)"},
    {"ROASTERY_AAD_TENANT_ID", V_STRING, NULL, 0, 0, OFF(aad_tenant_id),
     "accepted tenant ids (tid), comma-separated; required with ROASTERY_AUTH=azuread"},
    {"ROASTERY_AAD_AUDIENCE", V_STRING, NULL, 0, 0, OFF(aad_audience),
     "accepted audiences (aud), comma-separated, e.g. api://roastery,<client-id>"},
    {"ROASTERY_AAD_ACCEPT_V1", V_BOOL, "0", 0, 0, OFF(aad_accept_v1),
     "also accept v1 tokens (iss https://sts.windows.net/{tid}/)"},
    {"ROASTERY_AAD_CLOCK_SKEW_SECONDS", V_INT, "300", 0, 3600, OFF(aad_clock_skew_seconds),
     "tolerance on exp, nbf and iat"},
    {"ROASTERY_AAD_JWKS_MIN_REFETCH_SECONDS", V_INT, "60", 1, 86400,
     OFF(aad_jwks_min_refetch_seconds),
     "shortest time between two JWKS fetches (an unknown kid triggers one)"},
    {"ROASTERY_AAD_REQUIRED_SCOPE", V_STRING, "access_as_user", 0, 0, OFF(aad_required_scope),
     "scope a delegated token (scp) must carry"},
    {"ROASTERY_AAD_ROLE_MAP", V_STRING, NULL, 0, 0, OFF(aad_role_map),
     "app-role claim values to roles, e.g. Platform.Admin=PlatformAdmin,Data.Scientist=DataScientist"},
    {"ROASTERY_AUTH_DEV_ALLOW_REMOTE", V_BOOL, "0", 0, 0, OFF(auth_dev_allow_remote),
     "let dev auth listen on a non-loopback address (never in production)"},
    {"ROASTERY_TRUSTED_PROXIES", V_NETS, NULL, 0, 0, OFF(trusted_proxies),
     "proxies (addresses or CIDRs, comma-separated) whose X-Forwarded-For names the client"},
    {"ROASTERY_AUTH_FAILURE_RATE_PER_MINUTE", V_INT, "60", 0, 1000000,
     OFF(auth_failure_rate_per_minute),
     "failed authentications per minute one client address may sustain before 429 (0 = no limit)"},
    {"ROASTERY_AUTH_FAILURE_BURST", V_INT, "20", 1, 1000000, OFF(auth_failure_burst),
     "failed authentications one client address may make at once before the rate applies"},
    {"ROASTERY_AUDIT_AGGREGATE_SECONDS", V_INT, "60", 1, 3600, OFF(audit_aggregate_seconds),
     "window in which repeated refusals (same address, action, status, reason) share one row"},
    {"ROASTERY_RATE_LIMIT_PER_SECOND", V_INT, "50", 0, 1000000, OFF(rate_limit_per_second),
     "requests per second each identity may sustain (0 = unlimited)"},
    {"ROASTERY_ARTIFACTS", V_STRING, NULL, 0, 0, OFF(artifacts),
     "artifact store: file:///dir or azblob://<container> (default: file://$DATA_DIR/artifacts)"},
    {"ROASTERY_AZURE_STORAGE_CONNECTION_STRING", V_STRING, NULL, 0, 0,
     OFF(azure_storage_connection), "Azure Storage connection string for azblob://"},
    {"ROASTERY_MAX_UPLOAD_BYTES", V_SIZE, "10737418240", 1024, 0, OFF(max_upload_bytes),
     "largest dataset upload in bytes (streamed, not held in memory)"},
    {"ROASTERY_MAX_DECOMPRESSED_BYTES", V_SIZE, "21474836480", 1024, 0, OFF(max_decompressed_bytes),
     "largest CSV one dataset version may hold after gunzip, in bytes"},
    {"ROASTERY_MAX_COMPRESSION_RATIO", V_INT, "100", 2, 100000, OFF(max_compression_ratio),
     "most bytes a gzip upload may decompress to per compressed byte (past its first MiB)"},
    {"ROASTERY_MAX_ROWS_PER_VERSION", V_INT, "50000000", 1, 2000000000, OFF(max_rows_per_version),
     "most data rows one dataset version may hold"},
    {"ROASTERY_RATE_LIMIT_BURST", V_INT, "200", 1, 1000000, OFF(rate_limit_burst),
     "requests an identity may make at once before the rate applies"},
    {"ROASTERY_EXECUTOR", V_CHOICE, "local", 0, 0, OFF(executor),
     "who carries plans out: local (this machine), azure (Azure ML + Terraform) or dry-run"},
    {"ROASTERY_TERRAFORM_BIN", V_STRING, "terraform", 0, 0, OFF(terraform_bin),
     "terraform CLI for the azure executor (a path, or a name looked up in PATH)"},
    {"ROASTERY_TERRAFORM_MODULES", V_STRING, ROASTERY_SOURCE_DIR "/terraform/modules", 0, 0,
     OFF(terraform_modules), "directory of the Terraform modules the plans instantiate"},
    {"ROASTERY_TERRAFORM_ENV", V_STRING, NULL, 0, 0, OFF(terraform_env),
     "more variables terraform inherits (comma-separated, NAME_* a prefix), e.g. HTTPS_PROXY"},
    {"ROASTERY_TERRAFORM_TIMEOUT_SECONDS", V_INT, "3600", 5, 86400, OFF(terraform_timeout_seconds),
     "longest a terraform command may run before it is killed"},
    {"ROASTERY_TF_STATE_RESOURCE_GROUP", V_STRING, "roastery-tfstate", 0, 0,
     OFF(tf_state_resource_group), "resource group of the Terraform state storage account"},
    {"ROASTERY_TF_STATE_STORAGE_ACCOUNT", V_STRING, "roasterytfstate", 0, 0,
     OFF(tf_state_storage_account), "storage account holding Terraform state (azurerm backend)"},
    {"ROASTERY_TF_STATE_CONTAINER", V_STRING, "tfstate", 0, 0, OFF(tf_state_container),
     "blob container of the Terraform state"},
    {"ROASTERY_AZURE_SUBSCRIPTION_ID", V_STRING, "00000000-0000-0000-0000-000000000000", 0, 0,
     OFF(azure_subscription_id), "subscription of the Azure ML workspace"},
    {"ROASTERY_AZURE_RESOURCE_GROUP", V_STRING, "roastery", 0, 0, OFF(azure_resource_group),
     "resource group of the Azure ML workspace"},
    {"ROASTERY_AZUREML_WORKSPACE", V_STRING, "roastery", 0, 0, OFF(azureml_workspace),
     "Azure ML workspace name"},
    {"ROASTERY_AZURE_LOCATION", V_STRING, "eastus", 0, 0, OFF(azure_location),
     "default Azure region of compute requests (priced in the VM price table)"},
    {"ROASTERY_ARM_ENDPOINT", V_STRING, "https://management.azure.com", 0, 0, OFF(arm_endpoint),
     "Azure Resource Manager endpoint of the azure executor"},
    {"ROASTERY_AAD_AUTHORITY", V_STRING, "https://login.microsoftonline.com", 0, 0,
     OFF(aad_authority), "where the azure executor gets its client-credentials token"},
    {"ROASTERY_AZURE_TENANT_ID", V_STRING, "$AZURE_TENANT_ID", 0, 0, OFF(azure_tenant_id),
     "tenant of the identity Roastery calls Azure (ARM, Blob) as"},
    {"ROASTERY_AZURE_CLIENT_ID", V_STRING, "$AZURE_CLIENT_ID", 0, 0, OFF(azure_client_id),
     "client id of that identity (AKS workload identity: the pod's managed identity)"},
    {"ROASTERY_AZURE_CLIENT_SECRET", V_STRING, NULL, 0, 0, OFF(azure_client_secret),
     "client secret of that identity (never logged); unset = the federated token file"},
    {"ROASTERY_AZURE_FEDERATED_TOKEN_FILE", V_STRING, "$AZURE_FEDERATED_TOKEN_FILE", 0, 0,
     OFF(azure_federated_token_file),
     "token file of AKS workload identity, re-read at each token request (used without a secret)"},
    {"ROASTERY_WORKER_LISTEN", V_LISTEN, NULL, 0, 0, OFF(worker_listen),
     "host:port where roastery worker serves /healthz, /readyz and /metrics (unset = none)"},
    {"ROASTERY_ONLINE_INSTANCE_TYPE", V_STRING, "Standard_DS3_v2", 0, 0, OFF(online_instance_type),
     "VM size of Azure ML online deployments"},
    {"ROASTERY_TRAIN_MEMORY_MB", V_INT, "16384", 0, 1048576, OFF(train_memory_mb),
     "address-space limit of one local trainer process in MiB (0 = none)"},
    {"ROASTERY_LOCAL_SLOTS", V_INT, "0", 0, 1024, OFF(local_slots),
     "most local training slots the local executor grants in all (0 = the CPU count)"},
    {"ROASTERY_AZUREML_DATASTORE", V_STRING, "workspaceblobstore", 0, 0, OFF(azureml_datastore),
     "Azure ML datastore (AzureBlob) that receives dataset versions and job outputs"},
    {"ROASTERY_AZUREML_DATASTORE_CONNECTION", V_STRING, NULL, 0, 0,
     OFF(azureml_datastore_connection),
     "connection string of that datastore's storage account (never logged)"},
    {"ROASTERY_TRAINER_IMAGE", V_STRING, "roastery-trainer:" ROASTERY_VERSION, 0, 0,
     OFF(trainer_image), "container image Azure ML command jobs run the trainer from"},
    {"ROASTERY_AZUREML_POLL_SECONDS", V_INT, "15", 1, 3600, OFF(azureml_poll_seconds),
     "first wait between polls of an Azure ML job's status (doubles up to 8 times that)"},
    {"ROASTERY_PORTAL_DIR", V_STRING, NULL, 0, 0, OFF(portal_dir),
     "directory of the built browser portal (unset = the build tree's portal)"},
    {"ROASTERY_AAD_SPA_CLIENT_ID", V_STRING, NULL, 0, 0, OFF(aad_spa_client_id),
     "client id the portal signs in with (unset = the audience that is not an api:// URI)"},
    {"ROASTERY_AAD_SPA_SCOPES", V_STRING, NULL, 0, 0, OFF(aad_spa_scopes),
     "scopes the portal asks for, comma-separated (unset = <api:// audience>/<required scope>)"},
    {"ROASTERY_EVENTGRID_SECRET", V_STRING, NULL, 0, 0, OFF(eventgrid_secret),
     "shared secret Event Grid deliveries carry (?code= or aeg-sas-key header; never logged)"},
    {"ROASTERY_EVENTGRID_AAD_OIDS", V_STRING, NULL, 0, 0, OFF(eventgrid_aad_oids),
     "object ids (comma-separated) whose Azure AD tokens may deliver Event Grid events"},
    {"ROASTERY_WEBHOOK_TIMEOUT_SECONDS", V_INT, "10", 1, 60, OFF(webhook_timeout_seconds),
     "longest one outbound webhook delivery may take"},
    {"ROASTERY_WEBHOOK_RETRY_BASE_MS", V_INT, "30000", 10, 3600000, OFF(webhook_retry_base_ms),
     "wait before a failed webhook delivery is retried (doubles per attempt, at most 1 hour)"},
    {"ROASTERY_WEBHOOK_MAX_ATTEMPTS", V_INT, "8", 1, 30, OFF(webhook_max_attempts),
     "attempts of one webhook delivery before it ends failed"},
    {"ROASTERY_WEBHOOK_PORTS", V_PORTS, NULL, 0, 0, OFF(webhook_ports),
     "ports webhooks may target besides 443 (and 80 in dev mode), comma-separated"},
};

/* Whether val is one of the '|'-separated words of choices. */
static int choice_ok(const char *choices, const char *val)
{
    size_t n = strlen(val);
    for (const char *p = choices; p && *p;) {
        const char *end = strchr(p, '|');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && !strncmp(p, val, n))
            return 1;
        p = end ? end + 1 : NULL;
    }
    return 0;
}

/* One entry of a listening_ports list: [host:]port, host an IPv4 address, [IPv6] or a name,
 * port 1 to 65535 and nothing after it (CivetWeb's s and r suffixes are not for us). *host
 * and *hostlen get the host (without brackets; length 0 when there is none). */
static int listen_entry(const char *v, size_t n, const char **host, size_t *hostlen)
{
    const char *colon = NULL;
    for (size_t i = 0; i < n; i++)
        if (v[i] == ':')
            colon = v + i;
    *host = v;
    *hostlen = 0;
    if (n && v[0] == '[') { /* [IPv6]:port */
        const char *close = memchr(v, ']', n);
        if (!close || close + 1 != colon || close == v + 1)
            return 0;
        *host = v + 1;
        *hostlen = (size_t)(close - v - 1);
    } else if (colon) {
        *hostlen = (size_t)(colon - v);
        if (!*hostlen || memchr(v, ':', *hostlen))
            return 0;
    }
    char port[8];
    size_t plen = colon ? (size_t)(v + n - colon - 1) : n;
    long p;
    if (plen == 0 || plen >= sizeof port)
        return 0;
    memcpy(port, colon ? colon + 1 : v, plen);
    port[plen] = '\0';
    return parse_long(port, 1, 65535, &p) == 0;
}

/* Every comma-separated entry of v is [host:]port (CivetWeb listens on each of them). */
static int valid_listen(const char *v)
{
    for (const char *e = v;;) {
        size_t n = strcspn(e, ",");
        const char *host;
        size_t hostlen;
        if (!listen_entry(e, n, &host, &hostlen))
            return 0;
        if (!e[n])
            return 1;
        e += n + 1;
    }
}

int config_listen_is_loopback(const char *listen)
{
    if (!listen || !valid_listen(listen))
        return 0;
    for (const char *e = listen;;) {
        size_t n = strcspn(e, ",");
        const char *host;
        size_t hostlen;
        listen_entry(e, n, &host, &hostlen);
        char h[64];
        if (hostlen == 0 || hostlen >= sizeof h)
            return 0; /* a bare port listens on every interface */
        memcpy(h, host, hostlen);
        h[hostlen] = '\0';
        unsigned char a[16];
        /* Addresses by what they are, never by their spelling; of names only localhost. */
        int loop = !strcasecmp(h, "localhost") || (inet_pton(AF_INET, h, a) == 1 && a[0] == 127) ||
                   (e[0] == '[' && inet_pton(AF_INET6, h, a) == 1 &&
                    IN6_IS_ADDR_LOOPBACK((struct in6_addr *)a));
        if (!loop)
            return 0;
        if (!e[n])
            return 1;
        e += n + 1;
    }
}

/* A comma-separated list of TCP ports, each 1 to 65535. */
static int valid_ports(const char *v)
{
    for (const char *p = v;;) {
        size_t n = strcspn(p, ",");
        char one[8];
        long port;
        if (n == 0 || n >= sizeof one)
            return 0;
        memcpy(one, p, n);
        one[n] = '\0';
        if (parse_long(one, 1, 65535, &port))
            return 0;
        if (!p[n])
            return 1;
        p += n + 1;
    }
}

int config_load(config *cfg, char *err, size_t errlen)
{
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const var_spec *s = &vars[i];
        const char *v = getenv(s->name);
        const char *val = (v && *v) ? v : s->def;
        if (val && val == s->def && val[0] == '$') { /* "$NAME": another variable's value */
            const char *other = getenv(val + 1);
            val = other && *other ? other : NULL;
        }
        char *field = (char *)cfg + s->offset;
        long n;
        int b;
        switch (s->kind) {
        case V_STRING:
            *(char **)field = val ? xstrdup(val) : NULL;
            break;
        case V_LISTEN:
            if (!val) { /* optional listeners */
                *(char **)field = NULL;
                break;
            }
            if (!valid_listen(val)) {
                snprintf(err, errlen, "%s=%s: expected host:port with a port from 1 to 65535",
                         s->name, val);
                goto bad;
            }
            *(char **)field = xstrdup(val);
            break;
        case V_PORTS:
            if (val && !valid_ports(val)) {
                snprintf(err, errlen, "%s=%s: expected ports from 1 to 65535, comma-separated",
                         s->name, val);
                goto bad;
            }
            *(char **)field = val ? xstrdup(val) : NULL;
            break;
        case V_NETS:
            if (val && !clientaddr_list_valid(val)) {
                snprintf(err, errlen,
                         "%s=%s: expected addresses or CIDR prefixes (10.0.0.0/8), comma-separated",
                         s->name, val);
                goto bad;
            }
            *(char **)field = val ? xstrdup(val) : NULL;
            break;
        case V_INT:
            if (parse_long(val, s->min, s->max, &n)) {
                snprintf(err, errlen, "%s=%s: expected an integer from %ld to %ld", s->name, val,
                         s->min, s->max);
                goto bad;
            }
            if (s->offset == OFF(max_body_bytes))
                *(long *)field = n;
            else
                *(int *)field = (int)n;
            break;
        case V_BOOL:
            if (parse_bool(val, &b)) {
                snprintf(err, errlen, "%s=%s: expected 0 or 1", s->name, val);
                goto bad;
            }
            *(int *)field = b;
            break;
        case V_SIZE: {
            char *end = NULL;
            errno = 0;
            long long bytes = strtoll(val, &end, 10);
            if (errno || !*val || *end || bytes < s->min) {
                snprintf(err, errlen, "%s=%s: expected a number of bytes of at least %ld", s->name,
                         val, s->min);
                goto bad;
            }
            *(long long *)field = bytes;
            break;
        }
        case V_CHOICE:
            if (!choice_ok(choices_of(s->name), val)) {
                snprintf(err, errlen, "%s=%s: expected one of %s", s->name, val,
                         choices_of(s->name));
                goto bad;
            }
            *(char **)field = xstrdup(val);
            break;
        case V_LEVEL:
            if (log_level_parse(val, (log_level *)field)) {
                snprintf(err, errlen, "%s=%s: expected one of debug, info, warn, error", s->name,
                         val);
                goto bad;
            }
            break;
        }
    }
    return RST_OK;
bad:
    config_free(cfg);
    return RST_EINVAL;
}

int config_check_auth(const config *cfg, char *err, size_t errlen)
{
    if (!strcmp(cfg->auth, "dev") && !cfg->auth_dev_allow_remote &&
        !config_listen_is_loopback(cfg->listen)) {
        snprintf(err, errlen,
                 "ROASTERY_AUTH=dev on %s: expected loopback addresses only (127.0.0.0/8, [::1] "
                 "or localhost, every entry); the dev issuer mints any identity (set "
                 "ROASTERY_AUTH_DEV_ALLOW_REMOTE=1 to force)",
                 cfg->listen);
        return RST_EINVAL;
    }
    if (!strcmp(cfg->auth, "azuread") && (!cfg->aad_tenant_id || !cfg->aad_audience)) {
        snprintf(err, errlen,
                 "%s is unset: expected the tenant id(s) and audience(s) to accept with "
                 "ROASTERY_AUTH=azuread (or ROASTERY_AUTH=dev for the local demo issuer)",
                 cfg->aad_tenant_id ? "ROASTERY_AAD_AUDIENCE" : "ROASTERY_AAD_TENANT_ID");
        return RST_EINVAL;
    }
    return RST_OK;
}

void config_free(config *cfg)
{
    /* Every string setting is in the table, so none is forgotten here. */
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (vars[i].kind == V_STRING || vars[i].kind == V_LISTEN || vars[i].kind == V_CHOICE ||
            vars[i].kind == V_PORTS || vars[i].kind == V_NETS)
            free(*(char **)((char *)cfg + vars[i].offset));
    memset(cfg, 0, sizeof *cfg);
}

void config_print_help(void)
{
    printf("Environment:\n");
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        printf("  %-30s %s (default: %s)\n", vars[i].name, vars[i].help,
               vars[i].def ? vars[i].def : "unset");
}
