/* The authenticated caller of one request: what identity/access.c fills in and
 * identity/policy.c decides on. A header of its own so that policy need not include access
 * (access replays Idempotency-Keys through policy_recheck: the include goes that way only). */
#ifndef ROASTERY_CALLER_H
#define ROASTERY_CALLER_H

#include "identity/auth.h"

typedef struct policy_trail policy_trail;

typedef struct {
    auth_identity id;
    char idem_key[129]; /* Idempotency-Key being recorded, "" when none */
    int denied;         /* a policy decision refused the request */
    char deny_reason[160];
    char subject[256];  /* what the request acted on, for the audit log */
    policy_trail *trail; /* the checks policy_check allowed (owned; NULL: not recorded) */
} caller;

#endif
