/* The operations engine's guarantees, proved against a real PostgreSQL:
 * exclusive claims, resumption after a worker is killed, backoff, poison
 * operations, idempotent steps, cancellation and shutdown. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/log.h"
#include "ops/ops.h"
#include "testdb.h"

static char *conninfo;

static PGconn *connect_or_die(void)
{
    PGconn *c = db_connect(conninfo, 60000);
    assert_non_null(c);
    return c;
}

static void run_sql(PGconn *c, const char *sql)
{
    PGresult *r = db_exec(c, sql, 0, NULL, NULL);
    assert_non_null(r);
    PQclear(r);
}

/* Returns a new string: the value of one column of one operation. */
static char *op_field(PGconn *c, const char *id, const char *expr)
{
    char *sql = xasprintf("SELECT (%s)::text FROM operations WHERE id = $1", expr);
    const char *p[] = {id};
    PGresult *r = db_exec(c, sql, 1, p, NULL);
    free(sql);
    assert_non_null(r);
    assert_int_equal(PQntuples(r), 1);
    char *v = xstrdup(PQgetisnull(r, 0, 0) ? "(null)" : PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

static void assert_field(PGconn *c, const char *id, const char *expr, const char *want)
{
    char *v = op_field(c, id, expr);
    assert_string_equal(v, want);
    free(v);
}

static void enqueue(PGconn *c, const char *kind, int max_attempts, char id[37])
{
    assert_int_equal(ops_enqueue(c, kind, "tests/ops", NULL, "test", max_attempts, id), RST_OK);
}

static ops_settings settings(const char *owner)
{
    ops_settings s = {.owner = owner, .lease_seconds = 30, .retry_base_ms = 100,
                      .retry_max_ms = 1000, .stopping = NULL};
    return s;
}

/* ---- handlers used by the tests ---------------------------------------- */

static ops_result echo_step(ops_ctx *ctx, json_t *request, json_t **response, void *arg)
{
    (void)ctx;
    int *calls = arg;
    if (calls)
        (*calls)++;
    *response = json_pack("{s:O}", "echo", request);
    return OPS_DONE;
}

static ops_result two_steps(ops_ctx *ctx)
{
    json_t *req = json_pack("{s:s, s:s}", "method", "PUT", "url", "https://example/jobs/1");
    json_t *resp = NULL;
    ops_result r = ops_step(ctx, "submit", "azureml", "create job", req, echo_step, NULL, &resp);
    json_decref(req);
    if (r != OPS_DONE)
        return r;
    req = json_pack("{s:s}", "command", "terraform plan");
    r = ops_step(ctx, "plan", "terraform", "plan compute", req, echo_step, NULL, NULL);
    json_decref(req);
    if (r == OPS_DONE)
        ops_set_output(ctx, json_pack("{s:s}", "result", "ok"));
    return r;
}

static ops_result always_transient(ops_ctx *ctx)
{
    ops_set_error(ctx, "azureml_throttled", "429 from the ARM endpoint");
    return OPS_RETRY;
}

static pthread_mutex_t slow_mu = PTHREAD_MUTEX_INITIALIZER;
static int slow_running, slow_overlap, slow_runs;

static ops_result slow_exclusive(ops_ctx *ctx)
{
    (void)ctx;
    pthread_mutex_lock(&slow_mu);
    if (slow_running)
        slow_overlap = 1;
    slow_running++;
    slow_runs++;
    pthread_mutex_unlock(&slow_mu);
    usleep(20000);
    pthread_mutex_lock(&slow_mu);
    slow_running--;
    pthread_mutex_unlock(&slow_mu);
    return OPS_DONE;
}

static ops_result sleep_forever(ops_ctx *ctx)
{
    (void)ctx;
    for (;;)
        pause();
    return OPS_DONE;
}

/* Fails its second step once, to show the first is not redone. */
static int first_step_calls, second_step_calls;
static ops_result flaky_second(ops_ctx *ctx, json_t *request, json_t **response, void *arg)
{
    (void)request;
    (void)arg;
    (void)response;
    if (second_step_calls++ == 0) {
        ops_set_error(ctx, "network", "connection reset");
        return OPS_RETRY;
    }
    return OPS_DONE;
}

static ops_result idempotent_steps(ops_ctx *ctx)
{
    json_t *req = json_object();
    ops_result r = ops_step(ctx, "one", "local", "first", req, echo_step, &first_step_calls, NULL);
    if (r == OPS_DONE)
        r = ops_step(ctx, "two", "local", "second", req, flaky_second, NULL, NULL);
    json_decref(req);
    return r;
}

static _Atomic int stop_flag;
static ops_result waits_for_cancel(ops_ctx *ctx)
{
    json_t *req = json_object();
    ops_result r = OPS_DONE;
    for (int i = 0; i < 200 && r == OPS_DONE; i++) {
        char step[16];
        snprintf(step, sizeof step, "s%d", i);
        r = ops_step(ctx, step, "local", "tick", req, echo_step, NULL, NULL);
        usleep(10000);
    }
    json_decref(req);
    return r;
}

/* ---- tests ------------------------------------------------------------- */

static void test_steps_recorded_in_order(void **state)
{
    (void)state;
    ops_register("test.two_steps", two_steps);
    PGconn *c = connect_or_die();
    char id[37];
    enqueue(c, "test.two_steps", 3, id);
    ops_settings s = settings("t:w0");
    assert_int_equal(ops_run_one(c, &s), 1);
    assert_field(c, id, "state", "succeeded");
    assert_field(c, id, "output->>'result'", "ok");
    assert_field(c, id, "lease_owner", "(null)");
    assert_field(c, id,
                 "(SELECT string_agg(target || ':' || step || ':' || state, ',' ORDER BY position)"
                 " FROM operation_actions WHERE operation_id = id)",
                 "azureml:submit:succeeded,terraform:plan:succeeded");
    assert_field(c, id,
                 "(SELECT response->'echo'->>'url' FROM operation_actions"
                 " WHERE operation_id = id AND step = 'submit')",
                 "https://example/jobs/1");
    assert_int_equal(ops_run_one(c, &s), 0); /* nothing else due */
    db_close(c);
}

typedef struct {
    int runs;
    char owner[32];
} claimer;

static void *claim_loop(void *arg)
{
    claimer *cl = arg;
    PGconn *c = connect_or_die();
    ops_settings s = settings(cl->owner);
    int rc;
    while ((rc = ops_run_one(c, &s)) == 1)
        cl->runs++;
    db_close(c);
    return NULL;
}

static void test_two_workers_never_run_one_operation_at_once(void **state)
{
    (void)state;
    ops_register("test.slow", slow_exclusive);
    PGconn *c = connect_or_die();
    run_sql(c, "DELETE FROM operations");
    char id[37];
    for (int i = 0; i < 40; i++)
        enqueue(c, "test.slow", 3, id);
    claimer a = {.owner = "t:a"}, b = {.owner = "t:b"};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, claim_loop, &a);
    pthread_create(&tb, NULL, claim_loop, &b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    assert_int_equal(a.runs + b.runs, 40);
    assert_int_equal(slow_runs, 40); /* each ran exactly once */
    assert_true(a.runs > 0 && b.runs > 0);
    PGresult *r = db_exec(c, "SELECT count(*) FROM operations WHERE state = 'succeeded'"
                             " AND attempts = 1", 0, NULL, NULL);
    assert_string_equal(PQgetvalue(r, 0, 0), "40");
    PQclear(r);
    (void)slow_overlap; /* handlers may overlap across operations; claims may not */
    db_close(c);
}

static void test_killed_worker_operation_is_resumed(void **state)
{
    (void)state;
    PGconn *c = connect_or_die();
    run_sql(c, "DELETE FROM operations");
    char id[37];
    ops_register("test.killable", sleep_forever);
    enqueue(c, "test.killable", 3, id);
    pid_t child = fork();
    if (child == 0) {
        PGconn *cc = db_connect(conninfo, 60000);
        ops_settings s = settings("t:doomed");
        s.lease_seconds = 4;
        ops_run_one(cc, &s);
        _exit(0);
    }
    /* Wait until the child holds the lease, then kill it mid-operation. */
    for (int i = 0; i < 500; i++) {
        char *st = op_field(c, id, "state");
        int running = !strcmp(st, "running");
        free(st);
        if (running)
            break;
        usleep(10000);
    }
    assert_field(c, id, "lease_owner", "t:doomed");
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);

    ops_register("test.killable", two_steps); /* the next worker finishes it */
    ops_settings s = settings("t:rescuer");
    assert_int_equal(ops_run_one(c, &s), 0); /* lease not expired yet: not stolen */
    sleep(5);
    assert_int_equal(ops_run_one(c, &s), 1);
    assert_field(c, id, "state", "succeeded");
    assert_field(c, id, "attempts", "2");
    db_close(c);
}

static void test_retries_back_off_then_fail_keeping_error(void **state)
{
    (void)state;
    ops_register("test.transient", always_transient);
    PGconn *c = connect_or_die();
    run_sql(c, "DELETE FROM operations");
    char id[37];
    enqueue(c, "test.transient", 3, id);
    ops_settings s = settings("t:w");
    s.retry_base_ms = 400;
    s.retry_max_ms = 100000;
    for (int attempt = 1; attempt <= 2; attempt++) {
        run_sql(c, "UPDATE operations SET next_attempt_at = now()");
        assert_int_equal(ops_run_one(c, &s), 1);
        assert_field(c, id, "state", "queued");
        char *d = op_field(c, id, "extract(epoch FROM next_attempt_at - updated_at) * 1000");
        double delay = strtod(d, NULL);
        free(d);
        /* base * 2^(attempt-1), jittered into [half, full] */
        double full = 400.0 * (attempt == 1 ? 1 : 2);
        assert_true(delay >= full / 2 - 5 && delay <= full + 5);
        assert_int_equal(ops_run_one(c, &s), 0); /* not due yet */
    }
    run_sql(c, "UPDATE operations SET next_attempt_at = now()");
    assert_int_equal(ops_run_one(c, &s), 1);
    assert_field(c, id, "state", "failed");
    assert_field(c, id, "attempts", "3");
    assert_field(c, id, "error->>'code'", "azureml_throttled");
    db_close(c);
}

static void test_poison_operation_ends_failed(void **state)
{
    (void)state;
    PGconn *c = connect_or_die();
    run_sql(c, "DELETE FROM operations");
    char id[37];
    ops_register("test.poison", sleep_forever);
    enqueue(c, "test.poison", 2, id);
    /* Two workers die holding it; the third claim gives up instead of running it. */
    for (int round = 0; round < 2; round++) {
        pid_t child = fork();
        if (child == 0) {
            PGconn *cc = db_connect(conninfo, 60000);
            ops_settings s = settings("t:victim");
            s.lease_seconds = 2;
            ops_run_one(cc, &s);
            _exit(0);
        }
        for (int i = 0; i < 500; i++) {
            char *st = op_field(c, id, "attempts");
            long n = 0;
            parse_long(st, 0, 100, &n);
            free(st);
            if (n == round + 1)
                break;
            usleep(10000);
        }
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        run_sql(c, "UPDATE operations SET lease_expires_at = now() - interval '1 second'");
    }
    ops_settings s = settings("t:w");
    assert_int_equal(ops_run_one(c, &s), 1);
    assert_field(c, id, "state", "failed");
    assert_field(c, id, "error->>'abandoned'", "true");
    db_close(c);
}

static void test_steps_are_not_redone_on_retry(void **state)
{
    (void)state;
    ops_register("test.idempotent", idempotent_steps);
    PGconn *c = connect_or_die();
    run_sql(c, "DELETE FROM operations");
    char id[37];
    enqueue(c, "test.idempotent", 3, id);
    ops_settings s = settings("t:w");
    assert_int_equal(ops_run_one(c, &s), 1);
    assert_field(c, id, "state", "queued");
    run_sql(c, "UPDATE operations SET next_attempt_at = now()");
    assert_int_equal(ops_run_one(c, &s), 1);
    assert_field(c, id, "state", "succeeded");
    assert_int_equal(first_step_calls, 1);
    assert_int_equal(second_step_calls, 2);
    assert_field(c, id,
                 "(SELECT string_agg(step || ':' || attempts, ',' ORDER BY position)"
                 " FROM operation_actions WHERE operation_id = id)",
                 "one:1,two:2");
    db_close(c);
}

static void *cancel_later(void *arg)
{
    char *id = arg;
    usleep(100000);
    PGconn *c = connect_or_die();
    assert_int_equal(ops_request_cancel(c, id), RST_OK);
    db_close(c);
    return NULL;
}

static void test_cancel_between_steps(void **state)
{
    (void)state;
    ops_register("test.cancelable", waits_for_cancel);
    PGconn *c = connect_or_die();
    run_sql(c, "DELETE FROM operations");
    char id[37];
    enqueue(c, "test.cancelable", 3, id);
    pthread_t t;
    pthread_create(&t, NULL, cancel_later, id);
    ops_settings s = settings("t:w");
    assert_int_equal(ops_run_one(c, &s), 1);
    pthread_join(t, NULL);
    assert_field(c, id, "state", "canceled");
    char *n = op_field(c, id, "(SELECT count(*) FROM operation_actions WHERE operation_id = id)");
    long steps = 0;
    parse_long(n, 0, 1000, &steps);
    free(n);
    assert_true(steps > 0 && steps < 200);
    assert_int_equal(ops_request_cancel(c, id), RST_ECONFLICT);
    db_close(c);
}

static void test_shutdown_requeues_without_counting_the_attempt(void **state)
{
    (void)state;
    ops_register("test.cancelable", waits_for_cancel);
    PGconn *c = connect_or_die();
    run_sql(c, "DELETE FROM operations");
    char id[37];
    enqueue(c, "test.cancelable", 3, id);
    stop_flag = 1;
    ops_settings s = settings("t:w");
    s.stopping = &stop_flag;
    assert_int_equal(ops_run_one(c, &s), 1);
    stop_flag = 0;
    assert_field(c, id, "state", "queued");
    assert_field(c, id, "attempts", "0");
    db_close(c);
}

static void test_lost_lease_cannot_overwrite(void **state)
{
    (void)state;
    ops_register("test.two_steps", two_steps);
    PGconn *c = connect_or_die();
    run_sql(c, "DELETE FROM operations");
    char id[37];
    enqueue(c, "test.two_steps", 3, id);
    /* Someone else holds a live lease: a claim must skip it. */
    run_sql(c, "UPDATE operations SET state = 'running', lease_owner = 'other',"
               " lease_expires_at = now() + interval '1 minute'");
    ops_settings s = settings("t:w");
    assert_int_equal(ops_run_one(c, &s), 0);
    assert_field(c, id, "lease_owner", "other");
    db_close(c);
}

int main(void)
{
    log_set_level(LOG_WARN);
    conninfo = testdb_create("test_ops");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_steps_recorded_in_order),
        cmocka_unit_test(test_two_workers_never_run_one_operation_at_once),
        cmocka_unit_test(test_killed_worker_operation_is_resumed),
        cmocka_unit_test(test_retries_back_off_then_fail_keeping_error),
        cmocka_unit_test(test_poison_operation_ends_failed),
        cmocka_unit_test(test_steps_are_not_redone_on_retry),
        cmocka_unit_test(test_cancel_between_steps),
        cmocka_unit_test(test_shutdown_requeues_without_counting_the_attempt),
        cmocka_unit_test(test_lost_lease_cannot_overwrite),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    free(conninfo);
    return failed;
}
