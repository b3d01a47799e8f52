/* run.train: prepare (slot + input), train (the child process), store. */
#define _XOPEN_SOURCE 700
#include "runs/run_local.h"
#include "runs/run_outputs.h"
#include "db/db.h"
#include "core/log.h"
#include "ops/ops.h"
#include "events/webhooks.h"
#include "lib/util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define RUN_LOCAL_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RUN_LOCAL_SANITIZED 1
#endif
#endif
#ifndef RUN_LOCAL_SANITIZED
#define RUN_LOCAL_SANITIZED 0
#endif

static const config *cfg;
static artifact_store *store;

typedef struct {
    char id[40];
    char project[80];
    char algorithm[32];
    char canonical_key[400];
    char compute[40];
    int slots;
    int horizon, backtest, origins;
    long long seed;
    char *params; /* JSON text */
    int log_chunks;
} run_info;

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int load_run(PGconn *c, const char *id, run_info *r)
{
    PGresult *res = db_exec(
        c,
        "SELECT r.project_id, r.algorithm, 'projects/' || v.project_id || '/datasets/' ||"
        " v.dataset || '/versions/' || v.number || '/canonical.csv', r.compute_id::text,"
        " t.max_nodes, r.horizon_days, r.backtest_days, r.rolling_origins, r.seed, r.params::text,"
        " r.log_chunks FROM runs r JOIN dataset_versions v ON v.id = r.dataset_version_id"
        " JOIN compute_targets t ON t.id = r.compute_id WHERE r.id = $1::uuid",
        1, (const char *[]){id}, NULL);
    if (!res)
        return RST_EDB;
    if (PQntuples(res) != 1) {
        PQclear(res);
        return RST_ENOTFOUND;
    }
    memset(r, 0, sizeof *r);
    snprintf(r->id, sizeof r->id, "%s", id);
    snprintf(r->project, sizeof r->project, "%s", PQgetvalue(res, 0, 0));
    snprintf(r->algorithm, sizeof r->algorithm, "%s", PQgetvalue(res, 0, 1));
    snprintf(r->canonical_key, sizeof r->canonical_key, "%s", PQgetvalue(res, 0, 2));
    snprintf(r->compute, sizeof r->compute, "%s", PQgetvalue(res, 0, 3));
    long v;
    r->slots = parse_long(PQgetvalue(res, 0, 4), 0, 100000, &v) ? 1 : (int)v;
    r->horizon = parse_long(PQgetvalue(res, 0, 5), 1, 1000, &v) ? 14 : (int)v;
    r->backtest = parse_long(PQgetvalue(res, 0, 6), 1, 1000, &v) ? 28 : (int)v;
    r->origins = parse_long(PQgetvalue(res, 0, 7), 1, 100, &v) ? 1 : (int)v;
    r->seed = strtoll(PQgetvalue(res, 0, 8), NULL, 10);
    r->params = xstrdup(PQgetvalue(res, 0, 9));
    r->log_chunks = parse_long(PQgetvalue(res, 0, 10), 0, 100000000, &v) ? 0 : (int)v;
    PQclear(res);
    return RST_OK;
}

static void set_run(PGconn *c, const char *id, const char *sql_set)
{
    char *sql = xasprintf("UPDATE runs SET %s, updated_at = now(), version = version + 1"
                          " WHERE id = $1::uuid",
                          sql_set);
    PQclear(db_exec(c, sql, 1, (const char *[]){id}, NULL));
    free(sql);
}

static char *workdir_of(const char *id)
{
    return xasprintf("%s/runs/%s", cfg->data_dir, id);
}

static int mkdirs(const char *dir)
{
    char *parent = xasprintf("%s/runs", cfg->data_dir);
    int rc = (mkdir(parent, 0700) && errno != EEXIST) || (mkdir(dir, 0700) && errno != EEXIST);
    free(parent);
    return rc ? RST_EIO : RST_OK;
}

/* ---- slots --------------------------------------------------------------------- */

/* Takes one of the compute's slots for the run (the compute row is locked so
 * two workers cannot both take the last one). 1 taken, 0 none free, 2 the
 * run was canceled meanwhile, < 0 error. */
static int take_slot(PGconn *c, const run_info *r)
{
    PGresult *res = db_exec(c, "BEGIN", 0, NULL, NULL);
    if (!res)
        return -1;
    PQclear(res);
    /* Lock first, count after: under READ COMMITTED a statement that waited
     * for the lock would still count with the snapshot it started with. */
    res = db_exec(c, "SELECT 1 FROM compute_targets WHERE id = $1::uuid FOR UPDATE", 1,
                  (const char *[]){r->compute}, NULL);
    PQclear(res);
    res = !res ? NULL
               : db_exec(c,
                         "SELECT (SELECT count(*) FROM runs WHERE compute_id = t.id AND state IN"
                         " ('preparing', 'running') AND id <> $2::uuid), t.state"
                         " FROM compute_targets t WHERE t.id = $1::uuid",
                         2, (const char *[]){r->compute, r->id}, NULL);
    int out = -1;
    if (res && PQntuples(res) == 1) {
        long busy = strtol(PQgetvalue(res, 0, 0), NULL, 10);
        int ready = !strcmp(PQgetvalue(res, 0, 1), "ready");
        out = ready && busy < r->slots ? 1 : 0;
    }
    PQclear(res);
    if (out == 1) {
        /* A run canceled while it waited stays canceled. */
        res = db_exec(c,
                      "UPDATE runs SET state = 'preparing', preparing_at = coalesce(preparing_at,"
                      " now()), updated_at = now(), version = version + 1 WHERE id = $1::uuid"
                      " AND state <> 'canceled'",
                      1, (const char *[]){r->id}, NULL);
        out = !res ? -1 : PQcmdTuples(res)[0] == '0' ? 2 : 1;
        PQclear(res);
    }
    res = db_exec(c, out < 0 ? "ROLLBACK" : "COMMIT", 0, NULL, NULL);
    PQclear(res);
    return out;
}

/* ---- logs ------------------------------------------------------------------------- */

typedef struct {
    PGconn *c;
    run_info *r;
    buf_t pending;  /* lines not yet in a chunk */
    long long last_flush;
    char *last[RUN_LOCAL_LAST_LINES]; /* ring of the last lines, for errors */
    int nlast;
    json_t *result; /* the trainer's result event */
    int metrics_failed;
} log_sink;

/* Writes the pending lines as the next chunk and counts it on the run. */
static void flush_logs(log_sink *s)
{
    s->last_flush = now_ms();
    if (!s->pending.len)
        return;
    char *key = run_outputs_log_key(s->r->project, s->r->id, s->r->log_chunks);
    artifact_writer *w = NULL;
    char sha[65];
    uint64_t size;
    if (artifacts_writer_open(store, key, &w) == RST_OK &&
        artifacts_writer_write(w, s->pending.data, s->pending.len) == RST_OK &&
        artifacts_writer_commit(w, sha, &size) == RST_OK) {
        s->r->log_chunks++;
        char n[16];
        snprintf(n, sizeof n, "%d", s->r->log_chunks);
        PQclear(db_exec(s->c, "UPDATE runs SET log_chunks = $2::int WHERE id = $1::uuid", 2,
                        (const char *[]){s->r->id, n}, NULL));
    } else {
        artifacts_writer_abort(w);
        log_fields(LOG_WARN, "run log chunk not stored", json_pack("{s:s}", "key", key));
    }
    free(key);
    s->pending.len = 0;
}

static void remember(log_sink *s, const char *line, size_t len)
{
    if (s->nlast == RUN_LOCAL_LAST_LINES) {
        free(s->last[0]);
        memmove(s->last, s->last + 1, sizeof s->last[0] * (RUN_LOCAL_LAST_LINES - 1));
        s->nlast--;
    }
    s->last[s->nlast++] = xasprintf("%.*s", (int)(len > 500 ? 500 : len), line);
}

static void add_line(log_sink *s, const char *stream, const char *text, size_t len)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    char ts[32];
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    buf_printf(&s->pending, "%s %s %.*s\n", ts, stream, (int)len, text);
    remember(s, text, len);
    if (s->pending.len >= 65536 || now_ms() - s->last_flush >= RUN_LOCAL_LOG_FLUSH_MS)
        flush_logs(s);
}

/* One stdout line of the trainer: JSON events become logs and metrics;
 * anything else is kept as a log line as it is. */
static void on_stdout_line(log_sink *s, const char *line, size_t len)
{
    json_t *ev = json_loadb(line, len, 0, NULL);
    const char *kind = json_string_value(json_object_get(ev, "event"));
    if (!kind) {
        add_line(s, "out", line, len);
        json_decref(ev);
        return;
    }
    if (!strcmp(kind, "metric")) {
        const char *name = json_string_value(json_object_get(ev, "name"));
        json_t *val = json_object_get(ev, "value");
        if (name && json_is_number(val)) {
            char step[24], value[40];
            snprintf(step, sizeof step, "%lld",
                     (long long)json_integer_value(json_object_get(ev, "step")));
            snprintf(value, sizeof value, "%.17g", json_number_value(val));
            PGresult *r = db_exec(s->c,
                                  "INSERT INTO run_metrics(run_id, name, step, value)"
                                  " VALUES ($1::uuid, $2, $3::int, $4::float8)"
                                  " ON CONFLICT (run_id, name, step) DO UPDATE SET value ="
                                  " EXCLUDED.value, at = now()",
                                  4, (const char *[]){s->r->id, name, step, value}, NULL);
            s->metrics_failed |= !r;
            PQclear(r);
        }
    } else if (!strcmp(kind, "result")) {
        json_decref(s->result);
        s->result = json_incref(json_object_get(ev, "metrics"));
    }
    if (!strcmp(kind, "log")) {
        const char *msg = json_string_value(json_object_get(ev, "msg"));
        const char *lvl = json_string_value(json_object_get(ev, "level"));
        char *text = xasprintf("%s %s", lvl ? lvl : "info", msg ? msg : "");
        add_line(s, "log", text, strlen(text));
        free(text);
    } else if (strcmp(kind, "metric")) {
        add_line(s, kind, line, len); /* phase and result events, verbatim */
    }
    json_decref(ev);
}

/* Splits buffered bytes into lines; keeps the unfinished tail. */
static void drain_lines(log_sink *s, buf_t *b, int is_stdout, int final)
{
    size_t start = 0;
    for (size_t i = 0; i < b->len; i++) {
        if (b->data[i] != '\n')
            continue;
        if (is_stdout)
            on_stdout_line(s, b->data + start, i - start);
        else
            add_line(s, "err", b->data + start, i - start);
        start = i + 1;
    }
    /* A line longer than 64 KiB is cut rather than held forever. */
    if (final || b->len - start > 65536) {
        if (b->len > start) {
            if (is_stdout)
                on_stdout_line(s, b->data + start, b->len - start);
            else
                add_line(s, "err", b->data + start, b->len - start);
        }
        start = b->len;
    }
    if (start && start < b->len)
        memmove(b->data, b->data + start, b->len - start);
    b->len -= start;
}

/* ---- the child --------------------------------------------------------------------- */

typedef struct {
    run_info *r;
    log_sink sink;
    int exit_status;
    int canceled;
    int interrupted;
    char *workdir;
} train_job;

static int spawn_trainer(train_job *j, int out_fd[2], int err_fd[2], pid_t *pid)
{
    char exe[4096];
    if (self_exe(exe, sizeof exe))
        return RST_EIO;
    /* Relative to the child's working directory (j->workdir): the trainer writes its input
     * into the lineage that users read, which must not show where the server keeps files. */
    char *input = xstrdup("input.csv");
    char *output = xstrdup("out");
    char horizon[16], backtest[16], origins[16], seed[32];
    snprintf(horizon, sizeof horizon, "%d", j->r->horizon);
    snprintf(backtest, sizeof backtest, "%d", j->r->backtest);
    snprintf(origins, sizeof origins, "%d", j->r->origins);
    snprintf(seed, sizeof seed, "%lld", j->r->seed);
    char *const argv[] = {exe,       "train",        "--input",   input,    "--output",
                          output,    "--algorithm",  j->r->algorithm,       "--horizon",
                          horizon,   "--backtest-days", backtest, "--rolling-origins",
                          origins,   "--seed",       seed,        "--params", j->r->params,
                          NULL};
    int rc = spawn_in_group(argv, out_fd[1], err_fd[1], j->workdir, pid);
    free(input);
    free(output);
    if (rc)
        return RST_EIO;
    /* Limits on the child alone: it must never take the server down with it.
     * (Not under AddressSanitizer, whose shadow memory is terabytes of
     * address space: the sanitizer builds are for tests.) */
    if (cfg->train_memory_mb > 0 && !RUN_LOCAL_SANITIZED) {
        struct rlimit lim = {(rlim_t)cfg->train_memory_mb << 20, (rlim_t)cfg->train_memory_mb << 20};
        prlimit(*pid, RLIMIT_AS, &lim, NULL);
    }
    setpriority(PRIO_PROCESS, (id_t)*pid, 10);
    return RST_OK;
}

/* Runs the trainer to its end, feeding its output to the sink; watches for
 * cancellation and shutdown once a second. */
static int watch_trainer(ops_ctx *ctx, train_job *j)
{
    int out_fd[2], err_fd[2];
    if (pipe2(out_fd, O_CLOEXEC))
        return RST_EIO;
    if (pipe2(err_fd, O_CLOEXEC)) {
        close(out_fd[0]);
        close(out_fd[1]);
        return RST_EIO;
    }
    pid_t pid = 0;
    int rc = spawn_trainer(j, out_fd, err_fd, &pid);
    close(out_fd[1]);
    close(err_fd[1]);
    if (rc) {
        close(out_fd[0]);
        close(err_fd[0]);
        return rc;
    }
    buf_t bout, berr;
    buf_init(&bout, 0);
    buf_init(&berr, 0);
    struct pollfd fds[2] = {{.fd = out_fd[0], .events = POLLIN}, {.fd = err_fd[0], .events = POLLIN}};
    int open_fds = 2;
    long long last_check = now_ms(), term_at = 0;
    char chunk[16384];
    while (open_fds) {
        int pr = poll(fds, 2, 250);
        for (int i = 0; pr > 0 && i < 2; i++) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t got = read(fds[i].fd, chunk, sizeof chunk);
            if (got > 0) {
                buf_append(i ? &berr : &bout, chunk, (size_t)got);
                drain_lines(&j->sink, i ? &berr : &bout, !i, 0);
            } else if (got == 0 || errno != EINTR) {
                close(fds[i].fd);
                fds[i].fd = -1;
                open_fds--;
            }
        }
        long long now = now_ms();
        if (now - j->sink.last_flush >= RUN_LOCAL_LOG_FLUSH_MS)
            flush_logs(&j->sink);
        if (now - last_check >= 1000 && !term_at) {
            last_check = now;
            j->interrupted = ops_stopping(ctx);
            j->canceled = !j->interrupted && ops_cancel_requested(ctx);
            if (j->canceled || j->interrupted) {
                const char *why = j->canceled ? "cancel requested: SIGTERM to the trainer"
                                              : "worker stopping: SIGTERM to the trainer";
                add_line(&j->sink, "roastery", why, strlen(why));
                kill(-pid, SIGTERM);
                term_at = now;
            }
        }
        if (term_at && now - term_at >= RUN_LOCAL_KILL_GRACE_SECONDS * 1000LL) {
            kill(-pid, SIGKILL);
            term_at = now + 3600 * 1000LL; /* once */
        }
    }
    drain_lines(&j->sink, &bout, 1, 1);
    drain_lines(&j->sink, &berr, 0, 1);
    buf_free(&bout);
    buf_free(&berr);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    kill(-pid, SIGKILL); /* nothing of the run outlives it */
    j->exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    char line[96];
    snprintf(line, sizeof line, "trainer exited with status %d", j->exit_status);
    add_line(&j->sink, "roastery", line, strlen(line));
    flush_logs(&j->sink);
    return RST_OK;
}

static json_t *last_lines(log_sink *s)
{
    json_t *a = json_array();
    for (int i = 0; i < s->nlast; i++)
        json_array_append_new(a, json_string(s->last[i]));
    return a;
}

/* ---- steps ------------------------------------------------------------------------ */

static ops_result step_train(ops_ctx *ctx, json_t *request, json_t **response, void *arg)
{
    (void)request;
    train_job *j = arg;
    char *input = xasprintf("%s/input.csv", j->workdir);
    int have = access(input, R_OK) == 0;
    if (!have && (mkdirs(j->workdir) || artifacts_fetch(store, j->r->canonical_key, input))) {
        free(input);
        ops_set_error(ctx, "input_unavailable", "cannot copy the dataset version for training");
        return OPS_RETRY;
    }
    free(input);
    set_run(ops_conn(ctx), j->r->id,
            "state = 'running', running_at = coalesce(running_at, now())");
    if (watch_trainer(ctx, j)) {
        ops_set_error(ctx, "spawn_failed", "cannot start the trainer process");
        return OPS_RETRY;
    }
    if (j->interrupted)
        return OPS_INTERRUPTED;
    if (j->canceled)
        return OPS_CANCELED;
    if (j->exit_status != 0) {
        char msg[200];
        snprintf(msg, sizeof msg, "the trainer exited with status %d%s", j->exit_status,
                 j->exit_status == 3   ? ": the data cannot support this run"
                 : j->exit_status == 2 ? ": it refused its arguments"
                 : j->exit_status > 128 ? ": it was killed by a signal"
                                        : "");
        ops_set_error(ctx, "trainer_failed", msg);
        *response = json_pack("{s:i, s:o}", "exit_status", j->exit_status, "last_lines",
                              last_lines(&j->sink));
        return OPS_FAIL;
    }
    *response = json_pack("{s:i, s:O?}", "exit_status", 0, "metrics", j->sink.result);
    return OPS_DONE;
}

static ops_result step_store(ops_ctx *ctx, json_t *request, json_t **response, void *arg)
{
    (void)request;
    train_job *j = arg;
    char *outdir = xasprintf("%s/out", j->workdir);
    ops_result r = run_outputs_store(ctx, j->r->project, j->r->id, outdir, response);
    free(outdir);
    return r;
}

ops_result run_local_handle(ops_ctx *ctx, const char *id)
{
    PGconn *c = ops_conn(ctx);
    run_info r;
    if (load_run(c, id, &r)) {
        ops_set_error(ctx, "no_run", "the run no longer exists");
        return OPS_FAIL;
    }
    int slot = take_slot(c, &r);
    if (slot != 1) {
        free(r.params);
        /* queued until a slot frees */
        return slot < 0 ? OPS_RETRY : slot == 2 ? OPS_CANCELED : OPS_WAIT;
    }
    train_job j = {.r = &r, .workdir = workdir_of(id)};
    j.sink.c = c;
    j.sink.r = &r;
    j.sink.last_flush = now_ms();
    buf_init(&j.sink.pending, 0);
    char note[120];
    snprintf(note, sizeof note, "attempt %d on %s: %s", ops_attempt(ctx), ops_id(ctx),
             r.algorithm);
    add_line(&j.sink, "roastery", note, strlen(note));
    json_t *req = json_pack("{s:s, s:s, s:i, s:i, s:i, s:I, s:s}", "algorithm", r.algorithm,
                            "input", r.canonical_key, "horizon_days", r.horizon, "backtest_days",
                            r.backtest, "rolling_origins", r.origins, "seed",
                            (json_int_t)r.seed, "params", r.params);
    ops_result res = ops_step(ctx, "train", "local", "roastery train (child process)", req,
                              step_train, &j, NULL);
    json_decref(req);
    if (res == OPS_DONE)
        res = ops_step(ctx, "store", "local", "store the run's artifacts", NULL, step_store, &j,
                       NULL);
    flush_logs(&j.sink);
    if (res == OPS_DONE) {
        set_run(c, id, "state = 'completed', finished_at = now(), exit_status = 0");
        ops_set_output(ctx, json_pack("{s:s, s:s}", "run_id", id, "state", "completed"));
    } else if (res == OPS_CANCELED) {
        set_run(c, id, "state = 'canceled', finished_at = now()");
    } else if (res == OPS_FAIL) {
        json_t *err = json_pack("{s:s, s:i, s:o}", "code", "trainer_failed", "exit_status",
                                j.exit_status, "last_lines", last_lines(&j.sink));
        char *e = json_dumps(err, JSON_COMPACT);
        char st[16];
        snprintf(st, sizeof st, "%d", j.exit_status);
        PQclear(db_exec(c,
                        "UPDATE runs SET state = 'failed', finished_at = now(), error = $2::jsonb,"
                        " exit_status = $3::int, updated_at = now(), version = version + 1"
                        " WHERE id = $1::uuid",
                        3, (const char *[]){id, e, st}, NULL));
        free(e);
        json_decref(err);
    } else if (res == OPS_INTERRUPTED || res == OPS_RETRY) {
        /* back in the queue: the slot is given back until it runs again */
        set_run(c, id, "state = 'queued'");
    }
    if (res == OPS_DONE || res == OPS_CANCELED || res == OPS_FAIL)
        webhooks_emit_run_finished(c, id); /* run.finished to the project's webhooks */
    if (res != OPS_INTERRUPTED && res != OPS_RETRY)
        remove_tree(j.workdir);
    for (int i = 0; i < j.sink.nlast; i++)
        free(j.sink.last[i]);
    json_decref(j.sink.result);
    buf_free(&j.sink.pending);
    free(j.workdir);
    free(r.params);
    return res;
}

void run_local_init(const config *c, artifact_store *s)
{
    cfg = c;
    store = s;
}
