/* roastery: the one binary. serve (API + in-process workers), worker,
 * migrate, version. Configuration comes from the environment only. */
#include "azure/aad_credential.h"
#include "identity/access.h"
#include "forecasts/accuracy.h"
#include "forecasts/actuals_load.h"
#include "api.h"
#include "http/app.h"
#include "identity/auth.h"
#include "exec/azure_exec.h"
#include "compute/compute_ops.h"
#include "core/config.h"
#include "artifacts/artifacts.h"
#include "datasets/azure_publish.h"
#include "datasets/ingest_op.h"
#include "datasets/version_ready.h"
#include "db/db.h"
#include "demo/demo.h"
#include "identity/devissuer.h"
#include "core/embedded.h"
#include "forecasts/forecast_cache.h"
#include "forecasts/forecast_cli.h"
#include "forecasts/forecast_ops.h"
#include "http/http.h"
#include "http/conn_limits.h"
#include "core/log.h"
#include "core/metrics.h"
#include "db/migrate.h"
#include "models/model_cache.h"
#include "db/pgembed.h"
#include "models/promotion_ops.h"
#include "retraining/retrain.h"
#include "runs/run_train.h"
#include "demo/salesgen.h"
#include "trainer/trainer.h"
#include "lib/util.h"
#include "events/webhooks.h"
#include "ops/worker.h"

#include <civetweb.h>
#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    config cfg;
    pgembed *pg;
    char *conninfo;
    artifact_store *artifacts;
} runtime;

static const char *const usage_main =
    "usage: roastery <command> [--help]\n"
    "\n"
    "commands:\n"
    "  serve     run the HTTP API and in-process operation workers\n"
    "  demo      serve, and seed GloboJava's people, stores and sales through the API\n"
    "  worker    run operation workers only (no API; probes on ROASTERY_WORKER_LISTEN)\n"
    "  migrate   apply pending database migrations and exit\n"
    "  token     mint a token from the local dev issuer (ROASTERY_AUTH=dev)\n"
    "  generate-sales  write GloboJava-shaped sales CSV (see --help)\n"
    "  train     train and backtest a demand forecast from a sales CSV (see --help)\n"
    "  forecast  forecast every store x product with a trained model (see --help)\n"
    "  version   print the version and the libraries in use\n";

static const char *const usage_serve =
    "usage: roastery serve\n\n"
    "Serves the API on ROASTERY_LISTEN and runs ROASTERY_WORKERS operation workers.\n"
    "Without ROASTERY_DATABASE_URL a private PostgreSQL is started under\n"
    "ROASTERY_DATA_DIR/pg. SIGTERM or SIGINT drain requests and stop cleanly.\n\n";
static const char *const usage_demo =
    "usage: roastery demo\n\n"
    "Runs serve with the dev issuer (ROASTERY_AUTH=dev) and seeds, through the API,\n"
    "the project " DEMO_PROJECT " with GloboJava's sales history, its stores, a data\n"
    "scientist (" DEMO_SCIENTIST "), an admin (" DEMO_ADMIN ") and a store manager\n"
    "(" DEMO_MANAGER ") of two stores. Restarting finds what was seeded.\n\n";
static const char *const usage_worker =
    "usage: roastery worker\n\n"
    "Runs max(ROASTERY_WORKERS, 1) operation workers, without the API, until SIGTERM.\n"
    "With ROASTERY_WORKER_LISTEN=host:port it also serves GET /healthz, /readyz\n"
    "(workers alive, database reachable and migrated) and /metrics there.\n\n";
static const char *const usage_token =
    "usage: roastery token --user NAME --roles ROLE[,ROLE...] [--ttl SECONDS]\n\n"
    "Mints an access token from the dev issuer kept in ROASTERY_DATA_DIR/dev-issuer.\n"
    "Roles: PlatformAdmin, DataScientist, StoreManager. The token is checked by the\n"
    "same validation as an Azure AD token, by a server running with ROASTERY_AUTH=dev\n"
    "on the same data directory.\n\n";
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

/* What a dataset version sets off once dataset.ingest has recorded it ready, in this order:
 * forecasting takes its daily sales as actuals; retraining queues the drift check against the
 * production model's training data (also when the actuals must be retried); Azure ML gets it as
 * a data asset. */
static const version_ready_reaction version_ready_reactions[] = {
    {.react = actuals_load_on_version},
    {.react = retrain_on_version, .always = 1},
    {.react = azure_publish_on_version},
};

/* Opens the artifact store: ROASTERY_ARTIFACTS, else file://<data dir>/artifacts.
 * Registers the operations that need it. */
static int open_artifacts(runtime *rt)
{
    char err[512] = "";
    char *url = NULL;
    if (rt->cfg.artifacts) {
        url = xstrdup(rt->cfg.artifacts);
    } else {
        if (mkdir(rt->cfg.data_dir, 0755) && errno != EEXIST) {
            fprintf(stderr, "roastery: cannot create ROASTERY_DATA_DIR %s: %s\n", rt->cfg.data_dir,
                    strerror(errno));
            return RST_EIO;
        }
        char abs[PATH_MAX];
        if (!realpath(rt->cfg.data_dir, abs)) {
            fprintf(stderr, "roastery: ROASTERY_DATA_DIR %s: %s\n", rt->cfg.data_dir,
                    strerror(errno));
            return RST_EIO;
        }
        url = xasprintf("file://%s/artifacts", abs);
    }
    int rc = artifacts_open(url, rt->cfg.azure_storage_connection, &rt->artifacts, err, sizeof err);
    if (rc)
        fprintf(stderr, "roastery: ROASTERY_ARTIFACTS=%s: %s\n", url, err);
    else {
        azure_exec_init(&rt->cfg, rt->artifacts);
        ingest_op_register(rt->artifacts, &rt->cfg);
        version_ready_subscribe(version_ready_reactions, ARRAY_SIZE(version_ready_reactions));
        run_train_register(&rt->cfg, rt->artifacts);
        promotion_ops_register(&rt->cfg, rt->artifacts);
        forecast_ops_register(&rt->cfg, rt->artifacts);
        accuracy_register();
        retrain_register(rt->artifacts);
    }
    free(url);
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
    db_close(c);
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
    azure_exec_shutdown();
    aad_credential_default_set(NULL);
    forecast_cache_free();
    artifacts_close(rt->artifacts);
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

/* Builds the token verifier for the configured issuer. new: auth_verifier_free. */
static auth_verifier *open_verifier(runtime *rt, devissuer **dev)
{
    char err[512] = "";
    if (config_check_auth(&rt->cfg, err, sizeof err)) {
        fprintf(stderr, "roastery: %s\n", err);
        exit(2);
    }
    auth_settings as = {.jwks_url = rt->cfg.aad_jwks_url,
                        .tenants = rt->cfg.aad_tenant_id,
                        .audiences = rt->cfg.aad_audience,
                        .accept_v1 = rt->cfg.aad_accept_v1,
                        .clock_skew_seconds = rt->cfg.aad_clock_skew_seconds,
                        .required_scope = rt->cfg.aad_required_scope,
                        .role_map = rt->cfg.aad_role_map};
    char *dev_url = NULL;
    *dev = NULL;
    if (!strcmp(rt->cfg.auth, "dev")) {
        if (devissuer_open(rt->cfg.data_dir, dev, err, sizeof err)) {
            fprintf(stderr, "roastery: dev issuer: %s\n", err);
            return NULL;
        }
        dev_url = devissuer_jwks_url(*dev);
        as.jwks_url = dev_url;
        as.tenants = DEVISSUER_TENANT;
        as.audiences = DEVISSUER_AUDIENCE;
        as.role_map = NULL;
        as.accept_v1 = 0;
    }
    auth_verifier *v = auth_verifier_new(&as, err, sizeof err);
    free(dev_url);
    if (v)
        auth_verifier_set_jwks_refetch_ms(v, (int64_t)rt->cfg.aad_jwks_min_refetch_seconds * 1000);
    if (!v) {
        fprintf(stderr, "roastery: %s\n", err);
        devissuer_close(*dev);
        *dev = NULL;
    }
    return v;
}

/* What `roastery worker` answers on ROASTERY_WORKER_LISTEN and `roastery serve` on
 * ROASTERY_PROBE_LISTEN: the API's own probes and metrics, handed to ops/worker.c (which, for a
 * worker, answers /readyz 503 first while its workers are not alive). */
static const http_route worker_probes[] = {
    {"GET", "/healthz", api_healthz, HTTP_PUBLIC},
    {"GET", "/readyz", api_readyz, HTTP_PUBLIC},
    {"GET", "/metrics", api_metrics, HTTP_PUBLIC},
};

static int cmd_serve(runtime *rt, sigset_t *set, int demo)
{
    if (demo)
        demo_console_begin(&rt->cfg);
    devissuer *dev = NULL;
    auth_verifier *verifier = open_verifier(rt, &dev);
    if (!verifier)
        return 1;
    int rc = 1;
    db_pool *pool = NULL;
    access_guard *acc = NULL;
    http_server *srv = NULL;
    worker_http *probes = NULL;
    model_cache *models = NULL;
    if (demo)
        demo_console_step_begin(rt->cfg.database_url ? "PostgreSQL and migrations"
                                                     : "PostgreSQL cluster and migrations");
    if (open_artifacts(rt) || open_database(rt) || (rt->cfg.migrate_on_start && run_migrations(rt))) {
        if (demo)
            demo_console_step_end("FAILED: see the log");
        goto out;
    }
    if (demo)
        demo_console_step_end(rt->cfg.database_url ? "connected" : "running under %s/pg",
                              rt->cfg.data_dir);
    pool = db_pool_open(rt->conninfo, rt->cfg.db_pool_size, rt->cfg.statement_timeout_ms);
    acc = access_new(pool, verifier, &rt->cfg);
    char *scratch = xasprintf("%s/cache", rt->cfg.data_dir);
    mkdir(scratch, 0700);
    models = model_cache_new(rt->artifacts, scratch);
    free(scratch);
    app_ctx app = {.cfg = &rt->cfg,
                   .pool = pool,
                   .guard = acc,
                   .dev = dev,
                   .artifacts = rt->artifacts,
                   .models = models};
    size_t nroutes;
    const http_route *routes = api_routes(&nroutes);
    conn_limits_settings lim = {.per_address = rt->cfg.conn_per_address,
                                .per_identity = rt->cfg.conn_per_identity,
                                .header_timeout_ms = rt->cfg.header_timeout_ms,
                                .body_grace_ms = rt->cfg.body_grace_ms,
                                .body_min_rate = rt->cfg.body_min_rate};
    http_options ho = {.listen = rt->cfg.listen,
                       .threads = rt->cfg.http_threads,
                       .max_body_bytes = rt->cfg.max_body_bytes,
                       .app = &app,
                       .before = access_before,
                       .after = access_after,
                       .trusted_proxies = rt->cfg.trusted_proxies,
                       .limits = &lim};
    if (rt->cfg.probe_listen &&
        !(probes = worker_http_start_serve(rt->cfg.probe_listen, worker_probes,
                                              ARRAY_SIZE(worker_probes), rt->conninfo,
                                              &rt->cfg, pool))) {
        fprintf(stderr, "roastery: cannot listen on ROASTERY_PROBE_LISTEN=%s\n",
                rt->cfg.probe_listen);
        goto out;
    }
    srv = http_server_start(&ho, routes, nroutes);
    if (!srv) {
        fprintf(stderr, "roastery: cannot listen on %s\n", rt->cfg.listen);
        goto out;
    }
    worker_pool *wp = worker_pool_start(rt->conninfo, rt->cfg.workers, &rt->cfg);
    log_fields(LOG_INFO, "serving",
               json_pack("{s:s, s:s, s:i, s:i}", "listen", rt->cfg.listen, "version",
                         ROASTERY_VERSION, "http_threads", rt->cfg.http_threads, "workers",
                         rt->cfg.workers));
    demo_seeder *seeder = demo && dev ? demo_seeder_start(rt->cfg.listen, dev) : NULL;
    wait_for_signal(set);
    if (demo)
        printf("\nStopping: finishing requests and the workers' current steps...\n");
    demo_seeder_stop(seeder);
    http_server_stop(srv); /* drains in-flight requests */
    worker_pool_stop(wp);  /* workers stop between steps */
    rc = 0;
out:
    worker_http_stop(probes); /* answered until the API had drained */
    access_free(acc);
    model_cache_free(models);
    db_pool_close(pool);
    auth_verifier_free(verifier);
    devissuer_close(dev);
    return rc;
}

static int cmd_worker(runtime *rt, sigset_t *set)
{
    if (open_artifacts(rt) || open_database(rt))
        return 1;
    if (rt->cfg.migrate_on_start && run_migrations(rt))
        return 1;
    worker_http *wh = NULL;
    if (rt->cfg.worker_listen &&
        !(wh = worker_http_start(rt->cfg.worker_listen, worker_probes, ARRAY_SIZE(worker_probes),
                                 rt->conninfo, &rt->cfg))) {
        fprintf(stderr, "roastery: cannot listen on ROASTERY_WORKER_LISTEN=%s\n",
                rt->cfg.worker_listen);
        return 1;
    }
    worker_pool *wp = worker_pool_start(rt->conninfo, rt->cfg.workers > 0 ? rt->cfg.workers : 1,
                                        &rt->cfg);
    worker_http_attach(wh, wp);
    wait_for_signal(set);
    worker_http_attach(wh, NULL); /* /readyz answers 503 while the workers finish their step */
    worker_pool_stop(wp);
    worker_http_stop(wh);
    return 0;
}

static int cmd_token(int argc, char **argv)
{
    const char *user = NULL, *roles_s = NULL;
    long ttl = 3600;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--user"))
            user = argv[i + 1];
        else if (!strcmp(argv[i], "--roles"))
            roles_s = argv[i + 1];
        else if (!strcmp(argv[i], "--ttl") && parse_long(argv[i + 1], 60, 86400, &ttl) == RST_OK)
            continue;
        else {
            fprintf(stderr, "roastery token: unexpected '%s'\n%s", argv[i], usage_token);
            return 2;
        }
    }
    if (!user || !roles_s || argc % 2) {
        fputs(usage_token, stderr);
        return 2;
    }
    unsigned roles = 0;
    for (const char *r = roles_s; *r;) {
        size_t n = strcspn(r, ",");
        char *name = xstrndup(r, n);
        unsigned bit = auth_role_parse(name);
        if (!bit) {
            fprintf(stderr, "roastery token: unknown role '%s': expected PlatformAdmin, "
                            "DataScientist or StoreManager\n", name);
            free(name);
            return 2;
        }
        free(name);
        roles |= bit;
        r += n + (r[n] == ',');
    }
    const char *dir = getenv("ROASTERY_DATA_DIR");
    devissuer *d = NULL;
    char err[512] = "";
    if (devissuer_open(dir && *dir ? dir : "./var", &d, err, sizeof err)) {
        fprintf(stderr, "roastery token: %s\n", err);
        return 1;
    }
    char *tok = devissuer_mint(d, user, roles, (int)ttl);
    devissuer_close(d);
    if (!tok)
        return 1;
    printf("%s\n", tok);
    free(tok);
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
    if (!strcmp(cmd, "generate-sales"))
        return salesgen_main(argc - 1, argv + 1);
    if (!strcmp(cmd, "train"))
        return trainer_main(argc - 1, argv + 1);
    if (!strcmp(cmd, "forecast"))
        return forecast_cli_main(argc - 1, argv + 1);
    const char *usage = !strcmp(cmd, "serve")     ? usage_serve
                        : !strcmp(cmd, "demo")    ? usage_demo
                        : !strcmp(cmd, "worker")  ? usage_worker
                        : !strcmp(cmd, "migrate") ? usage_migrate
                        : !strcmp(cmd, "token")   ? usage_token
                        : !strcmp(cmd, "version") ? "usage: roastery version\n"
                                                  : NULL;
    if (!usage) {
        fprintf(stderr, "roastery: unknown command '%s'\n%s", cmd, usage_main);
        return 2;
    }
    if (wants_help(argc, argv)) {
        fputs(usage, stdout);
        if (strcmp(cmd, "version") && strcmp(cmd, "token"))
            config_print_help();
        return 0;
    }
    if (!strcmp(cmd, "token"))
        return cmd_token(argc, argv);
    if (argc > 2) {
        fprintf(stderr, "roastery %s: unexpected argument '%s'\n", cmd, argv[2]);
        return 2;
    }
    if (!strcmp(cmd, "version"))
        return cmd_version();

    /* The demo's people sign in with the dev issuer. */
    if (!strcmp(cmd, "demo")) {
        const char *auth = getenv("ROASTERY_AUTH");
        if (auth && strcmp(auth, "dev")) {
            fprintf(stderr, "roastery demo: needs ROASTERY_AUTH=dev (it is '%s')\n", auth);
            return 2;
        }
        setenv("ROASTERY_AUTH", "dev", 1);
    }
    runtime rt;
    memset(&rt, 0, sizeof rt);
    load_config(&rt);
    compute_ops_register(&rt.cfg);
    webhooks_register(&rt.cfg);
    json_object_seed(0);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    aad_credential_default_configure(&rt.cfg); /* the Blob client's Entra ID credential */
    sigset_t set;
    block_signals(&set);

    int rc;
    if (!strcmp(cmd, "serve") || !strcmp(cmd, "demo"))
        rc = cmd_serve(&rt, &set, !strcmp(cmd, "demo"));
    else if (!strcmp(cmd, "worker"))
        rc = cmd_worker(&rt, &set);
    else
        rc = open_database(&rt) ? 1 : (run_migrations(&rt) ? 1 : 0);
    shutdown_runtime(&rt);
    if (!strcmp(cmd, "demo"))
        printf("Stopped.\n");
    return rc;
}
