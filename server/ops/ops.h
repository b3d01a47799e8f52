/* The operations engine: durable units of slow work, written in the same
 * transaction as the request that asks for them, claimed by workers under a
 * lease, retried with backoff, and recorded step by step as actions. */
#ifndef ROASTERY_OPS_H
#define ROASTERY_OPS_H

#include <jansson.h>
#include <libpq-fe.h>

typedef enum {
    OPS_DONE = 0,  /* succeeded: output kept */
    OPS_RETRY,     /* transient failure: try again after a backoff */
    OPS_FAIL,      /* permanent failure: error kept */
    OPS_CANCELED,  /* stopped between steps because cancellation was asked */
    OPS_INTERRUPTED, /* the worker is stopping: requeue now, attempt not counted */
    OPS_WAIT         /* a resource is busy or a remote job is still going: requeue after
                        OPS_WAIT_MS (or ops_set_wait_ms), attempt not counted */
} ops_result;

#define OPS_WAIT_MS 1000
#define OPS_WAIT_MS_TEXT "1000"

typedef struct ops_ctx ops_ctx;
typedef ops_result (*ops_handler)(ops_ctx *ctx);

/* A step's body: performs the action, sets *response (new, stolen by the
 * engine; may stay NULL) and returns OPS_DONE, OPS_RETRY or OPS_FAIL. */
typedef ops_result (*ops_step_fn)(ops_ctx *ctx, json_t *request, json_t **response, void *arg);

typedef struct {
    const char *owner;   /* lease owner, unique per worker */
    int lease_seconds;
    int retry_base_ms;
    int retry_max_ms;
    const _Atomic int *stopping; /* set when the process is shutting down; may be NULL */
} ops_settings;

/* Registers the handler of an operation kind (kind is borrowed: static).
 * Call before workers start. Re-registering a kind replaces it. */
void ops_register(const char *kind, ops_handler handler);
void ops_unregister_all(void);

/* Housekeeping that must run somewhere, e.g. deleting expired compute: each
 * registered function runs on every heartbeat of every worker pool, so it
 * must be idempotent and safe to run concurrently (claim rows with SKIP
 * LOCKED). Register before workers start. */
typedef void (*ops_periodic_fn)(PGconn *conn);
void ops_register_periodic(ops_periodic_fn fn);
void ops_run_periodic(PGconn *conn);

/* Writes a queued operation on conn, inside the caller's transaction.
 * input is borrowed (NULL = {}). id_out receives the uuid (37 bytes). */
int ops_enqueue(PGconn *conn, const char *kind, const char *subject, json_t *input,
                const char *created_by, int max_attempts, char id_out[37]);

/* Claims one due operation (queued and due, or running with an expired
 * lease) and runs it to its next state. Returns 1 when one ran, 0 when none
 * was due, negative on a database error. */
int ops_run_one(PGconn *conn, const ops_settings *s);

/* Renews the leases of every operation whose owner starts with prefix.
 * Returns the number renewed, negative on error. */
int ops_heartbeat(PGconn *conn, const char *owner_prefix, int lease_seconds);

/* Asks an operation to stop: queued ones that never started a step end
 * canceled at once; running ones, and queued ones that started (waiting on a
 * remote job they must cancel), see it at their next step or attempt.
 * RST_OK, RST_ENOTFOUND, or RST_ECONFLICT when it already ended. */
int ops_request_cancel(PGconn *conn, const char *id);

/* For handlers. Borrowed pointers, valid during the handler. */
const char *ops_id(ops_ctx *ctx);
const char *ops_subject(ops_ctx *ctx);
json_t *ops_input(ops_ctx *ctx);
int ops_attempt(ops_ctx *ctx);
PGconn *ops_conn(ops_ctx *ctx);
/* For long steps that watch a child process: whether the worker is
 * shutting down (return OPS_INTERRUPTED), and whether cancellation was asked
 * (one query; on a second connection, opened once, while the operation's own
 * connection streams a COPY, so asking never breaks the COPY). */
int ops_stopping(ops_ctx *ctx);
int ops_cancel_requested(ops_ctx *ctx);

/* Runs one idempotent step: when an action named step already succeeded in
 * an earlier attempt its stored response is returned without running fn.
 * Otherwise the action is recorded (running), fn runs, and its result is
 * recorded. Cancellation and shutdown are checked before fn runs.
 * request is borrowed; *response (may be NULL) is borrowed from the ctx. */
ops_result ops_step(ops_ctx *ctx, const char *step, const char *target, const char *name,
                    json_t *request, ops_step_fn fn, void *arg, json_t **response);

/* Records an action as planned without running it (dry-run executor). */
int ops_plan(ops_ctx *ctx, const char *step, const char *target, const char *name,
             json_t *request);

/* How long an OPS_WAIT of this attempt waits before the next (ms). */
void ops_set_wait_ms(ops_ctx *ctx, long ms);

/* Sets the operation's output (stolen) or error (code and message copied). */
void ops_set_output(ops_ctx *ctx, json_t *output);
void ops_set_error(ops_ctx *ctx, const char *code, const char *message);

/* Backoff before retry number attempt (1-based): base * 2^(attempt-1),
 * capped, with jitter in [half, full]. Exposed for tests. */
long ops_backoff_ms(int attempt, int base_ms, int max_ms, unsigned random_bits);

#endif
