/* Carrying compute requests out: the operations compute.provision and
 * compute.delete, whatever the executor (local, azure, dry-run), and the
 * deletion of compute whose expiry has passed. */
#ifndef ROASTERY_COMPUTE_OPS_H
#define ROASTERY_COMPUTE_OPS_H

#include "core/config.h"

#include <libpq-fe.h>

/* Registers the operation kinds and the expiry sweep. cfg is borrowed and
 * must outlive the workers. */
void compute_ops_register(const config *cfg);

/* Enqueues the deletion of every compute whose expiry has passed (claimed
 * with SKIP LOCKED, so concurrent sweeps never delete twice). Returns how
 * many were enqueued, negative on a database error. */
int compute_expire_due(PGconn *conn);

/* Training slots the ready local compute of project grants (0 = none). */
int compute_local_slots(PGconn *conn, const char *project);

#endif
