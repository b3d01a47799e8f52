/* Environment configuration. Every variable has a default, a range and a
 * one-line description, so --help and the error messages come from one table. */
#include "config.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { V_STRING, V_INT, V_BOOL, V_LEVEL, V_LISTEN } var_kind;

typedef struct {
    const char *name;
    var_kind kind;
    const char *def; /* NULL: unset by default */
    long min, max;
    size_t offset;
    const char *help;
} var_spec;

#define OFF(f) offsetof(config, f)

static const var_spec vars[] = {
    {"ROASTERY_LISTEN", V_LISTEN, "127.0.0.1:8080", 0, 0, OFF(listen),
     "address and port to listen on (host:port)"},
    {"ROASTERY_DATA_DIR", V_STRING, "./var", 0, 0, OFF(data_dir),
     "directory for the embedded PostgreSQL and local artifacts"},
    {"ROASTERY_DATABASE_URL", V_STRING, NULL, 0, 0, OFF(database_url),
     "libpq connection string; unset = embedded PostgreSQL under the data dir"},
    {"ROASTERY_HTTP_THREADS", V_INT, "32", 2, 1024, OFF(http_threads),
     "HTTP worker threads (each keep-alive connection holds one)"},
    {"ROASTERY_WORKERS", V_INT, "2", 0, 64, OFF(workers), "in-process operation workers of serve"},
    {"ROASTERY_MAX_BODY_BYTES", V_INT, "1048576", 1024, 1073741824L, OFF(max_body_bytes),
     "largest JSON request body in bytes"},
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
};

static int valid_listen(const char *v)
{
    const char *colon = strrchr(v, ':');
    const char *port = colon ? colon + 1 : v;
    long p;
    if (parse_long(port, 1, 65535, &p))
        return 0;
    if (colon && colon == v)
        return 0;
    return 1;
}

int config_load(config *cfg, char *err, size_t errlen)
{
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const var_spec *s = &vars[i];
        const char *v = getenv(s->name);
        const char *val = (v && *v) ? v : s->def;
        char *field = (char *)cfg + s->offset;
        long n;
        int b;
        switch (s->kind) {
        case V_STRING:
            *(char **)field = val ? xstrdup(val) : NULL;
            break;
        case V_LISTEN:
            if (!valid_listen(val)) {
                snprintf(err, errlen, "%s=%s: expected host:port with a port from 1 to 65535",
                         s->name, val);
                goto bad;
            }
            *(char **)field = xstrdup(val);
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

void config_free(config *cfg)
{
    free(cfg->listen);
    free(cfg->data_dir);
    free(cfg->database_url);
    cfg->listen = cfg->data_dir = cfg->database_url = NULL;
}

void config_print_help(void)
{
    printf("Environment:\n");
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        printf("  %-30s %s (default: %s)\n", vars[i].name, vars[i].help,
               vars[i].def ? vars[i].def : "unset");
}
