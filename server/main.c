/* roastery: the one binary. serve (API + in-process workers), worker,
 * migrate, version. Configuration comes from the environment only. */
#include "api.h"
#include "app.h"
#include "config.h"
#include "db.h"
#include "embedded.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "migrate.h"
#include "pgembed.h"
#include "util.h"
#include "worker.h"

#include <civetweb.h>
#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    config cfg;
    pgembed *pg;
    char *conninfo;
} runtime;

static const char *const usage_main =
    "usage: roastery <command> [--help]\n"
    "\n"
    "commands:\n"
    "  serve     run the HTTP API and in-process operation workers\n"
    "  worker    run operation workers only (no HTTP)\n"
    "  migrate   apply pending database migrations and exit\n"
    "  version   print the version and the libraries in use\n";

static const char *const usage_serve =
    "usage: roastery serve\n\n"
    "Serves the API on ROASTERY_LISTEN and runs ROASTERY_WORKERS operation workers.\n"
    "Without ROASTERY_DATABASE_URL a private PostgreSQL is started under\n"
    "ROASTERY_DATA_DIR/pg. SIGTERM or SIGINT drain requests and stop cleanly.\n\n";
static const char *const usage_worker =
    "usage: roastery worker\n\n"
    "Runs max(ROASTERY_WORKERS, 1) operation workers without HTTP, until SIGTERM.\n\n";
static const char *const usage_migrate =
    "usage: roastery migrate\n\n"
    "Applies the migrations built into this binary, in order, under an advisory lock.\n\n";

static int wants_help(int argc, char **argv)
{
    for (int i = 2; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return 1;
    return 0;
}

/* Loads the configuration; exits 2 with one line on a bad value. */
static void load_config(runtime *rt)
{
    char err[512];
    if (config_load(&rt->cfg, err, sizeof err)) {
        fprintf(stderr, "roastery: %s\n", err);
        exit(2);
    }
    log_set_level(rt->cfg.log_level);
}

/* Finds the database: the configured URL or the embedded cluster. */
static int open_database(runtime *rt)
{
    if (rt->cfg.database_url) {
        rt->conninfo = xstrdup(rt->cfg.database_url);
        return RST_OK;
    }
    char err[512] = "";
    int rc = pgembed_start(rt->cfg.data_dir, &rt->pg, &rt->conninfo, err, sizeof err);
    if (rc)
        fprintf(stderr, "roastery: embedded PostgreSQL: %s\n", err);
    return rc;
}

/* Applies migrations, waiting up to 30 s for the database to come up. */
static int run_migrations(runtime *rt)
{
    PGconn *c = NULL;
    for (int i = 0; i < 30 && !(c = db_connect(rt->conninfo, 600000)); i++)
        sleep(1);
    if (!c) {
        fprintf(stderr, "roastery: cannot reach the database to migrate it\n");
        return RST_EUNAVAIL;
    }
    char err[512] = "";
    int applied = 0;
    int rc = migrate_apply(c, embedded_migrations, embedded_migrations_count, &applied, err,
                           sizeof err);
    PQfinish(c);
    if (rc) {
        fprintf(stderr, "roastery: %s\n", err[0] ? err : "migrations failed");
        return rc;
    }
    log_fields(LOG_INFO, "migrations current",
               json_pack("{s:i, s:I}", "applied", applied, "total",
                         (json_int_t)embedded_migrations_count));
    return RST_OK;
}

static void shutdown_runtime(runtime *rt)
{
    pgembed_stop(rt->pg);
    free(rt->conninfo);
    config_free(&rt->cfg);
    metrics_reset();
    curl_global_cleanup();
}

/* Blocks termination signals in every thread; main waits for them. */
static void block_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    pthread_sigmask(SIG_BLOCK, set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static int wait_for_signal(const sigset_t *set)
{
    int sig = 0;
    sigwait(set, &sig);
    log_fields(LOG_INFO, "stopping", json_pack("{s:s}", "signal", strsignal(sig)));
    return sig;
}

static int cmd_serve(runtime *rt, sigset_t *set)
{
    if (open_database(rt))
        return 1;
    if (rt->cfg.migrate_on_start && run_migrations(rt))
        return 1;
    db_pool *pool = db_pool_open(rt->conninfo, rt->cfg.db_pool_size, rt->cfg.statement_timeout_ms);
    app_ctx app = {.cfg = &rt->cfg, .pool = pool};
    size_t nroutes;
    const http_route *routes = api_routes(&nroutes);
    http_options ho = {.listen = rt->cfg.listen,
                       .threads = rt->cfg.http_threads,
                       .max_body_bytes = rt->cfg.max_body_bytes,
                       .app = &app};
    http_server *srv = http_server_start(&ho, routes, nroutes);
    if (!srv) {
        fprintf(stderr, "roastery: cannot listen on %s\n", rt->cfg.listen);
        db_pool_close(pool);
        return 1;
    }
    worker_pool *wp = worker_pool_start(rt->conninfo, rt->cfg.workers, &rt->cfg);
    log_fields(LOG_INFO, "serving",
               json_pack("{s:s, s:s, s:i, s:i}", "listen", rt->cfg.listen, "version",
                         ROASTERY_VERSION, "http_threads", rt->cfg.http_threads, "workers",
                         rt->cfg.workers));
    wait_for_signal(set);
    http_server_stop(srv); /* drains in-flight requests */
    worker_pool_stop(wp);  /* workers stop between steps */
    db_pool_close(pool);
    return 0;
}

static int cmd_worker(runtime *rt, sigset_t *set)
{
    if (open_database(rt))
        return 1;
    if (rt->cfg.migrate_on_start && run_migrations(rt))
        return 1;
    worker_pool *wp = worker_pool_start(rt->conninfo, rt->cfg.workers > 0 ? rt->cfg.workers : 1,
                                        &rt->cfg);
    wait_for_signal(set);
    worker_pool_stop(wp);
    return 0;
}

static int cmd_version(void)
{
    curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);
    printf("roastery %s\ncivetweb %s\njansson %s\nlibpq %d\nlibcurl %s\n", ROASTERY_VERSION,
           mg_version(), jansson_version_str(), PQlibVersion(), cv->version);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        fputs(usage_main, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *cmd = argv[1];
    const char *usage = !strcmp(cmd, "serve")     ? usage_serve
                        : !strcmp(cmd, "worker")  ? usage_worker
                        : !strcmp(cmd, "migrate") ? usage_migrate
                        : !strcmp(cmd, "version") ? "usage: roastery version\n"
                                                  : NULL;
    if (!usage) {
        fprintf(stderr, "roastery: unknown command '%s'\n%s", cmd, usage_main);
        return 2;
    }
    if (wants_help(argc, argv)) {
        fputs(usage, stdout);
        if (strcmp(cmd, "version"))
            config_print_help();
        return 0;
    }
    if (argc > 2) {
        fprintf(stderr, "roastery %s: unexpected argument '%s'\n", cmd, argv[2]);
        return 2;
    }
    if (!strcmp(cmd, "version"))
        return cmd_version();

    runtime rt;
    memset(&rt, 0, sizeof rt);
    load_config(&rt);
    json_object_seed(0);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    sigset_t set;
    block_signals(&set);

    int rc;
    if (!strcmp(cmd, "serve"))
        rc = cmd_serve(&rt, &set);
    else if (!strcmp(cmd, "worker"))
        rc = cmd_worker(&rt, &set);
    else
        rc = open_database(&rt) ? 1 : (run_migrations(&rt) ? 1 : 0);
    shutdown_runtime(&rt);
    return rc;
}
