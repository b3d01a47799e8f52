/* Worker pool. A notification only says "look now"; workers always re-query,
 * so a lost NOTIFY costs at most one poll interval. */
#include "ops/worker.h"
#include "http/app.h"
#include "db/db.h"
#include "http/http.h"
#include "http/conn_limits.h"
#include "core/log.h"
#include "ops/ops.h"
#include "lib/util.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    worker_pool *wp;
    int index;
    char owner[160];
    pthread_t thread;
    _Atomic int running; /* 1 from start until the thread returns */
    _Atomic int busy;    /* inside ops_run_one */
} worker;

struct worker_pool {
    char *conninfo;
    config cfg; /* copy of the scalar settings; strings not used */
    int n;
    worker *workers;
    pthread_t heartbeat;
    char owner_prefix[128];
    _Atomic int stopping;
    _Atomic int64_t heartbeat_ms; /* monotonic time of the heartbeat thread's last round */
    int wake[2];                  /* self-pipe: readable once stop is asked */
};

static void nap(worker_pool *wp, PGconn *conn, int ms)
{
    struct pollfd fds[2];
    int nfds = 1;
    fds[0].fd = wp->wake[0];
    fds[0].events = POLLIN;
    if (conn && PQsocket(conn) >= 0) {
        fds[1].fd = PQsocket(conn);
        fds[1].events = POLLIN;
        nfds = 2;
    }
    if (poll(fds, (nfds_t)nfds, ms) > 0 && conn) {
        PQconsumeInput(conn);
        PGnotify *n;
        while ((n = PQnotifies(conn)))
            PQfreemem(n);
    }
}

static PGconn *listen_conn(worker_pool *wp)
{
    /* Operations may run long: no statement timeout on worker connections
     * beyond a generous bound, handlers set their own. */
    PGconn *c = db_connect(wp->conninfo, 600000);
    if (!c)
        return NULL;
    PGresult *r = db_exec(c, "LISTEN roastery_operations", 0, NULL, NULL);
    if (!r) {
        db_close(c);
        return NULL;
    }
    PQclear(r);
    return c;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    worker_pool *wp = w->wp;
    ops_settings s = {.owner = w->owner,
                      .lease_seconds = wp->cfg.lease_seconds,
                      .retry_base_ms = wp->cfg.retry_base_ms,
                      .retry_max_ms = wp->cfg.retry_max_ms,
                      .stopping = &wp->stopping};
    PGconn *conn = NULL;
    int backoff_ms = 200;
    while (!wp->stopping) {
        if (!conn || PQstatus(conn) != CONNECTION_OK) {
            db_close(conn);
            conn = listen_conn(wp);
            if (!conn) {
                nap(wp, NULL, backoff_ms);
                backoff_ms = backoff_ms < 5000 ? backoff_ms * 2 : 5000;
                continue;
            }
            backoff_ms = 200;
        }
        w->busy = 1;
        int ran = ops_run_one(conn, &s);
        w->busy = 0;
        if (ran == 1)
            continue; /* more may be due: look again at once */
        nap(wp, conn, wp->cfg.poll_interval_ms);
    }
    db_close(conn);
    w->running = 0;
    return NULL;
}

static void *heartbeat_main(void *arg)
{
    worker_pool *wp = arg;
    PGconn *conn = NULL;
    int period_ms = wp->cfg.lease_seconds * 1000 / 3;
    while (!wp->stopping) {
        if (!conn || PQstatus(conn) != CONNECTION_OK) {
            db_close(conn);
            conn = db_connect(wp->conninfo, 5000);
        }
        if (conn) {
            ops_heartbeat(conn, wp->owner_prefix, wp->cfg.lease_seconds);
            ops_run_periodic(conn);
        }
        wp->heartbeat_ms = now_ms_monotonic();
        nap(wp, NULL, period_ms);
    }
    db_close(conn);
    return NULL;
}

worker_pool *worker_pool_start(const char *conninfo, int n, const config *cfg)
{
    if (n <= 0)
        return NULL;
    worker_pool *wp = xcalloc(1, sizeof *wp);
    wp->conninfo = xstrdup(conninfo);
    wp->cfg = *cfg;
    wp->cfg.listen = wp->cfg.data_dir = wp->cfg.database_url = NULL;
    wp->n = n;
    if (pipe(wp->wake))
        abort();
    char host[64] = "host";
    gethostname(host, sizeof host - 1);
    char rnd[33];
    random_hex_id(rnd);
    /* host:pid:random makes owners unique across replicas and restarts. */
    snprintf(wp->owner_prefix, sizeof wp->owner_prefix, "%.60s:%d:%.8s:", host, (int)getpid(), rnd);
    wp->workers = xcalloc((size_t)n, sizeof *wp->workers);
    for (int i = 0; i < n; i++) {
        worker *w = &wp->workers[i];
        w->wp = wp;
        w->index = i;
        snprintf(w->owner, sizeof w->owner, "%sw%d", wp->owner_prefix, i);
        w->running = 1;
        pthread_create(&w->thread, NULL, worker_main, w);
    }
    wp->heartbeat_ms = now_ms_monotonic();
    pthread_create(&wp->heartbeat, NULL, heartbeat_main, wp);
    log_fields(LOG_INFO, "workers started",
               json_pack("{s:i, s:s}", "workers", n, "owner", wp->owner_prefix));
    return wp;
}

void worker_pool_stop(worker_pool *wp)
{
    if (!wp)
        return;
    wp->stopping = 1;
    ssize_t w = write(wp->wake[1], "x", 1);
    (void)w;
    for (int i = 0; i < wp->n; i++)
        pthread_join(wp->workers[i].thread, NULL);
    pthread_join(wp->heartbeat, NULL);
    close(wp->wake[0]);
    close(wp->wake[1]);
    free(wp->workers);
    free(wp->conninfo);
    free(wp);
    log_msg(LOG_INFO, "workers stopped");
}

int worker_pool_alive(worker_pool *wp, int *threads, int *busy)
{
    int n = 0, b = 0, alive = wp && !wp->stopping;
    for (int i = 0; wp && i < wp->n; i++) {
        n++;
        b += wp->workers[i].busy;
        alive = alive && wp->workers[i].running;
    }
    if (wp && now_ms_monotonic() - wp->heartbeat_ms > wp->cfg.lease_seconds * 1000L + 10000)
        alive = 0;
    if (threads)
        *threads = n;
    if (busy)
        *busy = b;
    return alive;
}

/* ---------------------------------------------------------------- probe listener */

struct worker_http {
    app_ctx app;          /* first: the handed handlers read http_app() as an app_ctx */
    pthread_mutex_t lock; /* guards wp */
    worker_pool *wp;
    int serve; /* serve's probes: /readyz does not wait for workers */
    db_pool *pool;
    http_server *srv;
};

/* Readiness of a worker: its threads first, then the handed /readyz (main.c: api/health.c's
 * database and migrations). Non-zero when it answered 503. */
static int worker_before(http_req *req, const http_route *route)
{
    if (strcmp(route->path, "/readyz"))
        return 0;
    worker_http *wh = http_app(req);
    if (wh->serve) /* ready to serve requests (the handed /readyz); workers are no condition */
        return 0;
    int threads = 0, busy = 0;
    pthread_mutex_lock(&wh->lock);
    int alive = worker_pool_alive(wh->wp, &threads, &busy);
    pthread_mutex_unlock(&wh->lock);
    if (!alive) {
        http_add_header(req, "Retry-After", "5");
        http_problem(req, 503, "workers-not-running", "Workers not running", NULL, "%s",
                     threads ? "a worker thread or the lease heartbeat has stopped"
                             : "the workers are starting or stopping");
        return 1;
    }
    return 0;
}

static worker_http *probes_start(const char *listen, const http_route *routes, size_t nroutes,
                                 const char *conninfo, const config *cfg, db_pool *api_pool)
{
    worker_http *wh = xcalloc(1, sizeof *wh);
    pthread_mutex_init(&wh->lock, NULL);
    wh->serve = api_pool != NULL;
    /* Probes and one scraper: two connections, opened lazily, so a flood that takes the API's
     * pool does not fail the probes. */
    wh->pool = db_pool_open(conninfo, 2, cfg->statement_timeout_ms);
    wh->app.cfg = cfg;
    wh->app.pool = wh->pool;
    wh->app.stats_pool = api_pool;
    /* The kubelet and the scraper only: no per-address cap (they share the node's address),
     * but no slow client holds these threads either. */
    conn_limits_settings lim = {.header_timeout_ms = cfg->header_timeout_ms,
                                .body_grace_ms = cfg->body_grace_ms,
                                .body_min_rate = cfg->body_min_rate};
    http_options ho = {.listen = listen,
                       .threads = 4, /* a keep-alive scraper holds one */
                       .max_body_bytes = 1024,
                       .app = &wh->app,
                       .limits = &lim,
                       .before = worker_before};
    wh->srv = http_server_start(&ho, routes, nroutes);
    if (!wh->srv) {
        worker_http_stop(wh);
        return NULL;
    }
    log_fields(LOG_INFO, api_pool ? "probes listening" : "worker probes listening",
               json_pack("{s:s}", "listen", listen));
    return wh;
}

worker_http *worker_http_start(const char *listen, const http_route *routes, size_t nroutes,
                               const char *conninfo, const config *cfg)
{
    return probes_start(listen, routes, nroutes, conninfo, cfg, NULL);
}

worker_http *worker_http_start_serve(const char *listen, const http_route *routes, size_t nroutes,
                                     const char *conninfo, const config *cfg, db_pool *api_pool)
{
    return probes_start(listen, routes, nroutes, conninfo, cfg, api_pool);
}

void worker_http_attach(worker_http *wh, worker_pool *wp)
{
    if (!wh)
        return;
    pthread_mutex_lock(&wh->lock);
    wh->wp = wp;
    pthread_mutex_unlock(&wh->lock);
}

void worker_http_stop(worker_http *wh)
{
    if (!wh)
        return;
    http_server_stop(wh->srv);
    db_pool_close(wh->pool);
    pthread_mutex_destroy(&wh->lock);
    free(wh);
}
