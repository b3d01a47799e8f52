/* Starting a training run: the checks that need the database (the dataset
 * version is ready and long enough, the compute target is ready and trains),
 * then the run row and its run.train operation in one transaction. Shared by
 * POST /api/v1/projects/{p}/runs and the retraining operation, so a run the
 * platform starts by itself is held to exactly the rules of one a person asks for. */
#ifndef ROASTERY_RUN_REQUEST_H
#define ROASTERY_RUN_REQUEST_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stddef.h>

/* What a run asks for; every pointer is borrowed. The fields that need no
 * database (slugs, ranges, params) are checked by the caller beforehand. */
typedef struct {
    const char *project;
    const char *experiment; /* slug */
    const char *dataset;
    long long dataset_version; /* 0 = the latest ready version */
    const char *compute;       /* compute target name */
    const char *algorithm;
    json_t *params; /* object; NULL = {} */
    long long horizon_days, backtest_days, rolling_origins, seed;
    const char *created_by; /* oid, or system:<what> */
} run_request;

/* Creates the run and enqueues run.train. Inside the caller's transaction on
 * c when one is open (the caller commits or rolls back), else in its own.
 * RST_OK with run_id and op_id; RST_EINVAL with the offending field and the
 * reason (for a 400); RST_EDB when the database failed (503). */
int run_request_create(PGconn *c, const run_request *r, char run_id[40], char op_id[37],
                       char *field, size_t fieldlen, char *reason, size_t reasonlen);

#endif
