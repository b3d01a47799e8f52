/* Who is calling and what happens around every request: token check, first
 * sight of users, per-identity rate limit, Idempotency-Key replays and the
 * audit log. Installed as the HTTP layer's before/after hooks. */
#ifndef ROASTERY_ACCESS_H
#define ROASTERY_ACCESS_H

#include <libpq-fe.h>

#include "identity/auth.h"
#include "identity/caller.h"
#include "core/config.h"
#include "db/db.h"
#include "http/http.h"

typedef struct access_guard access_guard;

/* new: free with access_free. verifier is borrowed. */
access_guard *access_new(db_pool *pool, auth_verifier *verifier, const config *cfg);
void access_free(access_guard *a);

/* The http_options hooks; they find the access object through the app. */
int access_before(http_req *req, const http_route *route);
void access_after(http_req *req, const http_route *route);

/* The caller of req (borrowed), or NULL on public routes. */
caller *access_caller(http_req *req);

/* Records what a mutating request acted on (copied), e.g. "projects/demand". */
void access_set_subject(http_req *req, const char *subject);

/* For public routes that accept a token themselves (the Event Grid webhook): verifies the
 * request's Authorization header with the server's verifier. RST_OK and *out filled, or
 * RST_EINVAL with a client-safe reason. */
int access_verify_token(http_req *req, auth_identity *out, char *reason, size_t reasonlen);

/* Writes one audit row on conn (or a pooled connection when conn is NULL).
 * Failures are logged, never raised: the request outcome stands. */
void access_audit(access_guard *a, PGconn *conn, const caller *who, const char *action,
                  const char *subject, const char *outcome, int status, const char *reason,
                  const char *request_id, const char *client);

/* access_audit for what req did: its request id, the client's own X-Request-Id
 * (client_request_id) and its client address come from req. */
void access_audit_request(http_req *req, PGconn *conn, const caller *who, const char *action,
                          const char *subject, const char *outcome, int status, const char *reason);

/* For doors that authenticate requests themselves (bad token, bad Event Grid secret, a dev
 * route reached under a foreign Host): charges the refusal to the client address's failure
 * budget (ROASTERY_AUTH_FAILURE_RATE_PER_MINUTE, _BURST) and audits it, aggregated (the first
 * of each address, action, status and reason in ROASTERY_AUDIT_AGGREGATE_SECONDS is a row of
 * its own, the repeats one row with their count when the window closes). Returns 0 when the
 * address was within its budget: the caller answers status itself. Else the request has been
 * answered 429 with Retry-After (and audited as such) and the seconds to wait are returned. */
int access_refuse_unauthenticated(http_req *req, const char *action, const char *subject,
                                  int status, const char *reason);

#endif
