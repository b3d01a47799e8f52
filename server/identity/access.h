/* Who is calling and what happens around every request: token check, first
 * sight of users, per-identity rate limit, Idempotency-Key replays and the
 * audit log. Installed as the HTTP layer's before/after hooks. */
#ifndef ROASTERY_ACCESS_H
#define ROASTERY_ACCESS_H

#include <libpq-fe.h>

#include "identity/auth.h"
#include "core/config.h"
#include "db/db.h"
#include "http/http.h"

typedef struct access_guard access_guard;

/* The authenticated caller of one request. */
typedef struct {
    auth_identity id;
    char idem_key[129]; /* Idempotency-Key being recorded, "" when none */
    int denied;         /* a policy decision refused the request */
    char deny_reason[160];
    char subject[256];  /* what the request acted on, for the audit log */
} caller;

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

#endif
