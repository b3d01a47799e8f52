/* Operations engine. Claims use FOR UPDATE SKIP LOCKED so workers never
 * block each other; every state change after the claim is fenced on the
 * lease owner, so a worker that lost its lease cannot overwrite the work of
 * the one that took over. */
#include "ops/ops.h"
#include "db/db.h"
#include "core/log.h"
#include "lib/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define MAX_KINDS 64

static struct {
    const char *kind;
    ops_handler handler;
} registry[MAX_KINDS];
static int nkinds;

struct ops_ctx {
    PGconn *conn;
    PGconn *side; /* opened on demand for questions asked while conn streams a COPY */
    const ops_settings *s;
    char id[37];
    char *kind;
    char *subject;
    json_t *input;
    int attempt;
    int max_attempts;
    json_t *output;
    json_t *error;
    json_t *responses; /* keeps step responses alive for the handler */
    long wait_ms;      /* OPS_WAIT requeues after this long; 0 = OPS_WAIT_MS */
};

void ops_register(const char *kind, ops_handler handler)
{
    for (int i = 0; i < nkinds; i++) {
        if (!strcmp(registry[i].kind, kind)) {
            registry[i].handler = handler;
            return;
        }
    }
    if (nkinds == MAX_KINDS)
        abort(); /* programmer error: raise MAX_KINDS */
    registry[nkinds].kind = kind;
    registry[nkinds].handler = handler;
    nkinds++;
}

#define MAX_PERIODIC 8
static ops_periodic_fn periodic[MAX_PERIODIC];
static int nperiodic;

void ops_register_periodic(ops_periodic_fn fn)
{
    for (int i = 0; i < nperiodic; i++)
        if (periodic[i] == fn)
            return;
    if (nperiodic == MAX_PERIODIC)
        abort(); /* programmer error: raise MAX_PERIODIC */
    periodic[nperiodic++] = fn;
}

void ops_run_periodic(PGconn *conn)
{
    for (int i = 0; i < nperiodic; i++)
        periodic[i](conn);
}

void ops_unregister_all(void)
{
    nkinds = 0;
    nperiodic = 0;
}

static ops_handler lookup(const char *kind)
{
    for (int i = 0; i < nkinds; i++)
        if (!strcmp(registry[i].kind, kind))
            return registry[i].handler;
    return NULL;
}

int ops_enqueue(PGconn *conn, const char *kind, const char *subject, json_t *input,
                const char *created_by, int max_attempts, char id_out[37])
{
    char *in = input ? json_dumps(input, JSON_COMPACT) : xstrdup("{}");
    char max[16];
    snprintf(max, sizeof max, "%d", max_attempts);
    const char *p[] = {kind, subject ? subject : "", in, created_by, max};
    PGresult *r = db_exec(conn,
                          "INSERT INTO operations(kind, subject, input, created_by, max_attempts)"
                          " VALUES ($1, $2, $3::jsonb, $4, $5::int) RETURNING id",
                          5, p, NULL);
    free(in);
    if (!r)
        return RST_EDB;
    snprintf(id_out, 37, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    return RST_OK;
}

long ops_backoff_ms(int attempt, int base_ms, int max_ms, unsigned random_bits)
{
    long d = base_ms;
    for (int i = 1; i < attempt && d < max_ms; i++)
        d *= 2;
    if (d > max_ms)
        d = max_ms;
    /* Jitter spreads retries of operations that failed together. */
    long half = d / 2;
    return half + (half ? (long)(random_bits % (unsigned long)(half + 1)) : 0);
}

static char *dump_or_null(json_t *v)
{
    return v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
}

/* Applies the final SQL of one run, fenced on our lease. */
static int finish(ops_ctx *ctx, const char *sql, int nparams, const char *extra)
{
    char *out = dump_or_null(ctx->output);
    char *err = dump_or_null(ctx->error);
    const char *p[] = {ctx->id, ctx->s->owner, out, err, extra};
    PGresult *r = db_exec(ctx->conn, sql, nparams, p, NULL);
    free(out);
    free(err);
    if (!r)
        return RST_EDB;
    long n = 0;
    parse_long(PQcmdTuples(r), 0, 1, &n);
    PQclear(r);
    if (n == 0)
        log_fields(LOG_WARN, "lease lost before the operation finished; result dropped",
                   json_pack("{s:s, s:s}", "operation", ctx->id, "kind", ctx->kind));
    return RST_OK;
}

/* Finishing statements take, in order, ($1 id, $2 owner, $3 output, $4 error,
 * $5 retry delay), as many as they use. */
#define FENCE " WHERE id = $1 AND lease_owner = $2 AND state = 'running'"
#define CLEAR_LEASE "lease_owner = NULL, lease_expires_at = NULL, updated_at = now()"

static const char SQL_SUCCEEDED[] =
    "UPDATE operations SET state = 'succeeded', output = $3::jsonb, error = NULL,"
    " finished_at = now(), " CLEAR_LEASE FENCE;
static const char SQL_FAILED[] =
    "UPDATE operations SET state = 'failed', output = $3::jsonb, error = $4::jsonb,"
    " finished_at = now(), " CLEAR_LEASE FENCE;
static const char SQL_CANCELED[] =
    "UPDATE operations SET state = 'canceled', output = $3::jsonb, error = $4::jsonb,"
    " finished_at = now(), " CLEAR_LEASE FENCE;
static const char SQL_RETRY[] =
    "UPDATE operations SET state = 'queued', output = $3::jsonb, error = $4::jsonb,"
    " next_attempt_at = now() + make_interval(secs => $5::double precision / 1000), " CLEAR_LEASE
    FENCE;
/* Waiting for a resource (e.g. a training slot) is not a failure either. */
static const char SQL_WAIT[] =
    "UPDATE operations SET state = 'queued', attempts = greatest(attempts - 1, 0),"
    " output = $3::jsonb, error = $4::jsonb,"
    " next_attempt_at = now() + make_interval(secs => $5::double precision / 1000), "
    CLEAR_LEASE FENCE;
/* Shutdown is not the operation's fault: the attempt is given back. */
static const char SQL_INTERRUPTED[] =
    "UPDATE operations SET state = 'queued', attempts = greatest(attempts - 1, 0),"
    " next_attempt_at = now(), " CLEAR_LEASE FENCE;

void ops_set_output(ops_ctx *ctx, json_t *output)
{
    json_decref(ctx->output);
    ctx->output = output;
}

void ops_set_wait_ms(ops_ctx *ctx, long ms)
{
    ctx->wait_ms = ms;
}

void ops_set_error(ops_ctx *ctx, const char *code, const char *message)
{
    json_decref(ctx->error);
    ctx->error = json_pack("{s:s, s:s, s:i}", "code", code, "message", message, "attempt",
                           ctx->attempt);
}

const char *ops_id(ops_ctx *ctx)
{
    return ctx->id;
}

const char *ops_subject(ops_ctx *ctx)
{
    return ctx->subject;
}

json_t *ops_input(ops_ctx *ctx)
{
    return ctx->input;
}

int ops_attempt(ops_ctx *ctx)
{
    return ctx->attempt;
}

PGconn *ops_conn(ops_ctx *ctx)
{
    return ctx->conn;
}

int ops_stopping(ops_ctx *ctx)
{
    return ctx->s->stopping && *ctx->s->stopping;
}

int ops_cancel_requested(ops_ctx *ctx)
{
    /* A query on a connection in the middle of COPY ends the COPY and aborts
     * its transaction: ask on a second connection instead. */
    PGconn *c = ctx->conn;
    PGTransactionStatusType ts = PQtransactionStatus(c);
    if (ts != PQTRANS_IDLE && ts != PQTRANS_INTRANS) {
        if (ctx->side && PQstatus(ctx->side) != CONNECTION_OK) {
            db_close(ctx->side);
            ctx->side = NULL;
        }
        if (!ctx->side)
            ctx->side = db_connect_like(c, 5000);
        if (!ctx->side)
            return 0; /* asked again on the next check */
        c = ctx->side;
    }
    PGresult *r = db_exec(c, "SELECT cancel_requested FROM operations WHERE id = $1", 1,
                          (const char *[]){ctx->id}, NULL);
    int yes = r && PQntuples(r) == 1 && PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    return yes;
}

static unsigned random_u32(void)
{
    unsigned v = 0;
    if (getrandom(&v, sizeof v, 0) != (ssize_t)sizeof v)
        v = (unsigned)now_ms_monotonic();
    return v;
}

static int finish_result(ops_ctx *ctx, ops_result res)
{
    char extra[32];
    switch (res) {
    case OPS_DONE:
        if (!ctx->output)
            ctx->output = json_object();
        return finish(ctx, SQL_SUCCEEDED, 3, NULL);
    case OPS_CANCELED:
        return finish(ctx, SQL_CANCELED, 4, NULL);
    case OPS_WAIT:
        json_decref(ctx->output);
        json_decref(ctx->error);
        ctx->output = ctx->error = NULL;
        snprintf(extra, sizeof extra, "%ld", ctx->wait_ms > 0 ? ctx->wait_ms : OPS_WAIT_MS);
        return finish(ctx, SQL_WAIT, 5, extra);
    case OPS_INTERRUPTED:
        json_decref(ctx->output);
        json_decref(ctx->error);
        ctx->output = ctx->error = NULL;
        return finish(ctx, SQL_INTERRUPTED, 2, NULL);
    case OPS_RETRY:
        if (!ctx->error)
            ops_set_error(ctx, "transient", "the step failed and will be retried");
        if (ctx->attempt < ctx->max_attempts) {
            snprintf(extra, sizeof extra, "%ld",
                     ops_backoff_ms(ctx->attempt, ctx->s->retry_base_ms, ctx->s->retry_max_ms,
                                    random_u32()));
            return finish(ctx, SQL_RETRY, 5, extra);
        }
        return finish(ctx, SQL_FAILED, 4, NULL);
    case OPS_FAIL:
    default:
        if (!ctx->error)
            ops_set_error(ctx, "failed", "the operation failed");
        return finish(ctx, SQL_FAILED, 4, NULL);
    }
}

static const char SQL_CLAIM[] =
    "UPDATE operations SET state = 'running', lease_owner = $1,"
    " lease_expires_at = now() + make_interval(secs => $2::int), attempts = attempts + 1,"
    " started_at = coalesce(started_at, now()), updated_at = now()"
    " WHERE id = (SELECT id FROM operations"
    "   WHERE (state = 'queued' AND next_attempt_at <= now())"
    "      OR (state = 'running' AND lease_expires_at < now())"
    "   ORDER BY next_attempt_at, seq FOR UPDATE SKIP LOCKED LIMIT 1)"
    " RETURNING id, kind, subject, input::text, attempts, max_attempts, cancel_requested,"
    " error::text";

/* Whether an earlier attempt recorded a step: a canceled operation that did
 * must still run, so its handler can undo or stop what it started (e.g. a
 * remote job). Errs towards running it. */
static int started(ops_ctx *ctx)
{
    PGresult *r = db_exec(ctx->conn, "SELECT 1 FROM operation_actions WHERE operation_id = $1"
                                     " LIMIT 1",
                          1, (const char *[]){ctx->id}, NULL);
    int yes = !r || PQntuples(r) > 0;
    PQclear(r);
    return yes;
}

int ops_run_one(PGconn *conn, const ops_settings *s)
{
    char lease[16];
    snprintf(lease, sizeof lease, "%d", s->lease_seconds);
    const char *p[] = {s->owner, lease};
    PGresult *r = db_exec(conn, SQL_CLAIM, 2, p, NULL);
    if (!r)
        return RST_EDB;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return 0;
    }
    ops_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.conn = conn;
    ctx.s = s;
    snprintf(ctx.id, sizeof ctx.id, "%s", PQgetvalue(r, 0, 0));
    ctx.kind = xstrdup(PQgetvalue(r, 0, 1));
    ctx.subject = xstrdup(PQgetvalue(r, 0, 2));
    ctx.input = json_loads(PQgetvalue(r, 0, 3), 0, NULL);
    long v = 0;
    parse_long(PQgetvalue(r, 0, 4), 0, 1000000, &v);
    ctx.attempt = (int)v;
    parse_long(PQgetvalue(r, 0, 5), 1, 1000000, &v);
    ctx.max_attempts = (int)v;
    int cancel = PQgetvalue(r, 0, 6)[0] == 't';
    json_t *prev_error = db_value(r, 0, 7) ? json_loads(db_value(r, 0, 7), 0, NULL) : NULL;
    PQclear(r);
    ctx.responses = json_array();
    if (!ctx.input)
        ctx.input = json_object();

    log_fields(LOG_INFO, "operation claimed",
               json_pack("{s:s, s:s, s:i}", "operation", ctx.id, "kind", ctx.kind, "attempt",
                         ctx.attempt));
    ops_result res;
    ops_handler h = lookup(ctx.kind);
    if (ctx.attempt > ctx.max_attempts) {
        /* The previous holders died mid-run (a poison operation): stop here,
         * keeping the last error we know of. */
        ctx.error = prev_error ? prev_error : json_pack("{s:s, s:s, s:i}", "code",
                                                        "attempts_exhausted", "message",
                                                        "workers stopped while running it",
                                                        "attempt", ctx.attempt - 1);
        prev_error = NULL;
        json_object_set_new(ctx.error, "abandoned", json_true());
        res = OPS_FAIL;
    } else if (cancel && !started(&ctx)) {
        res = OPS_CANCELED;
    } else if (!h) {
        ops_set_error(&ctx, "unknown_kind", "no executor handles this kind of operation");
        res = OPS_FAIL;
    } else {
        int64_t t0 = now_ms_monotonic();
        res = h(&ctx);
        log_fields(LOG_INFO, "operation ran",
                   json_pack("{s:s, s:s, s:i, s:I}", "operation", ctx.id, "kind", ctx.kind,
                             "result", (int)res, "duration_ms",
                             (json_int_t)(now_ms_monotonic() - t0)));
    }
    json_decref(prev_error);
    if (ctx.side) {
        db_close(ctx.side);
        ctx.side = NULL;
    }
    int rc = finish_result(&ctx, res);
    free(ctx.kind);
    free(ctx.subject);
    json_decref(ctx.input);
    json_decref(ctx.output);
    json_decref(ctx.error);
    json_decref(ctx.responses);
    return rc ? rc : 1;
}

int ops_heartbeat(PGconn *conn, const char *owner_prefix, int lease_seconds)
{
    char lease[16];
    snprintf(lease, sizeof lease, "%d", lease_seconds);
    const char *p[] = {owner_prefix, lease};
    PGresult *r = db_exec(conn,
                          "UPDATE operations SET lease_expires_at = now() + make_interval(secs =>"
                          " $2::int) WHERE state = 'running' AND starts_with(lease_owner, $1)",
                          2, p, NULL);
    if (!r)
        return RST_EDB;
    long n = 0;
    parse_long(PQcmdTuples(r), 0, 1000000, &n);
    PQclear(r);
    return (int)n;
}

int ops_request_cancel(PGconn *conn, const char *id)
{
    const char *p[] = {id};
    PGresult *r = db_exec(conn,
                          "WITH o AS (SELECT id, state = 'queued' AND NOT EXISTS (SELECT 1 FROM"
                          " operation_actions a WHERE a.operation_id = operations.id) AS unstarted"
                          " FROM operations WHERE id = $1::uuid)"
                          " UPDATE operations SET cancel_requested = true, updated_at = now(),"
                          " state = CASE WHEN o.unstarted THEN 'canceled' ELSE state END,"
                          " finished_at = CASE WHEN o.unstarted THEN now() ELSE finished_at END"
                          " FROM o WHERE operations.id = o.id AND state IN ('queued', 'running')"
                          " RETURNING operations.id",
                          1, p, NULL);
    if (!r)
        return RST_EDB;
    int n = PQntuples(r);
    PQclear(r);
    if (n)
        return RST_OK;
    r = db_exec(conn, "SELECT 1 FROM operations WHERE id = $1::uuid", 1, p, NULL);
    if (!r)
        return RST_EDB;
    n = PQntuples(r);
    PQclear(r);
    return n ? RST_ECONFLICT : RST_ENOTFOUND;
}

/* ---- steps ------------------------------------------------------------ */

static int cancel_requested(ops_ctx *ctx)
{
    const char *p[] = {ctx->id};
    PGresult *r = db_exec(ctx->conn, "SELECT cancel_requested FROM operations WHERE id = $1", 1,
                          p, NULL);
    int c = r && PQntuples(r) && PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    return c;
}

static int record_action(ops_ctx *ctx, const char *step, const char *target, const char *name,
                         json_t *request, const char *state)
{
    char *req = dump_or_null(request);
    const char *p[] = {ctx->id, step, target, name, req, state};
    PGresult *r = db_exec(
        ctx->conn,
        "INSERT INTO operation_actions(operation_id, position, step, target, name, request, state,"
        " attempts, started_at)"
        " SELECT $1, coalesce(max(position), 0) + 1, $2, $3, $4, $5::jsonb, $6,"
        "  CASE WHEN $6 = 'running' THEN 1 ELSE 0 END,"
        "  CASE WHEN $6 = 'running' THEN now() END"
        " FROM operation_actions WHERE operation_id = $1"
        " ON CONFLICT (operation_id, step) DO UPDATE SET request = EXCLUDED.request,"
        "  state = EXCLUDED.state, attempts = operation_actions.attempts + EXCLUDED.attempts,"
        "  started_at = EXCLUDED.started_at, finished_at = NULL, response = NULL, error = NULL",
        6, p, NULL);
    free(req);
    if (!r)
        return RST_EDB;
    PQclear(r);
    return RST_OK;
}

int ops_plan(ops_ctx *ctx, const char *step, const char *target, const char *name,
             json_t *request)
{
    return record_action(ctx, step, target, name, request, "planned");
}

ops_result ops_step(ops_ctx *ctx, const char *step, const char *target, const char *name,
                    json_t *request, ops_step_fn fn, void *arg, json_t **response)
{
    if (response)
        *response = NULL;
    if (ctx->s->stopping && *ctx->s->stopping)
        return OPS_INTERRUPTED;
    if (cancel_requested(ctx))
        return OPS_CANCELED;

    const char *p[] = {ctx->id, step};
    PGresult *r = db_exec(ctx->conn,
                          "SELECT state, response::text FROM operation_actions"
                          " WHERE operation_id = $1 AND step = $2",
                          2, p, NULL);
    if (!r)
        return OPS_RETRY;
    if (PQntuples(r) && !strcmp(PQgetvalue(r, 0, 0), "succeeded")) {
        /* Done in an earlier attempt: steps are idempotent by name. */
        json_t *resp = db_value(r, 0, 1) ? json_loads(db_value(r, 0, 1), 0, NULL) : NULL;
        PQclear(r);
        if (resp) {
            json_array_append_new(ctx->responses, resp);
            if (response)
                *response = resp;
        }
        return OPS_DONE;
    }
    PQclear(r);
    if (record_action(ctx, step, target, name, request, "running"))
        return OPS_RETRY;

    json_t *resp = NULL;
    json_decref(ctx->error);
    ctx->error = NULL;
    ops_result res = fn(ctx, request, &resp, arg);
    const char *state = res == OPS_DONE ? "succeeded" : "failed";
    if (res == OPS_DONE) {
        json_decref(ctx->error);
        ctx->error = NULL;
    } else if (!ctx->error) {
        ops_set_error(ctx, res == OPS_RETRY ? "transient" : "failed", "the step failed");
    }
    char *rs = dump_or_null(resp);
    char *es = res == OPS_DONE ? NULL : dump_or_null(ctx->error);
    const char *q[] = {ctx->id, step, state, rs, es};
    r = db_exec(ctx->conn,
                "UPDATE operation_actions SET state = $3, response = $4::jsonb, error = $5::jsonb,"
                " finished_at = now() WHERE operation_id = $1 AND step = $2",
                5, q, NULL);
    free(rs);
    free(es);
    PQclear(r);
    if (resp) {
        json_array_append_new(ctx->responses, resp);
        if (response)
            *response = resp;
    }
    return res;
}
