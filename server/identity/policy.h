/* Every access decision in one place. Handlers ask; the answers are allow,
 * forbidden (403: the caller may know it exists) or hidden (404: the caller
 * may not even learn that it exists). */
#ifndef ROASTERY_POLICY_H
#define ROASTERY_POLICY_H

#include <libpq-fe.h>

#include "identity/access.h"

typedef enum {
    POLICY_ALLOW = 0,
    POLICY_FORBIDDEN, /* 403 */
    POLICY_HIDDEN,    /* 404 */
    POLICY_ERROR,     /* the database could not answer: 503 */
} policy_decision;

typedef enum {
    PROJECT_NONE = 0,
    PROJECT_READER,
    PROJECT_CONTRIBUTOR,
    PROJECT_OWNER,
} project_role;

typedef enum {
    ACT_PROJECT_CREATE,     /* data scientists and admins */
    ACT_PROJECT_READ,       /* members and admins */
    ACT_PROJECT_WRITE,      /* contributors, owners, admins: datasets, runs, compute */
    ACT_PROJECT_MANAGE,     /* owners and admins: description, members */
    ACT_PROJECT_SET_LIMITS, /* admins: budget and quota */
    ACT_PROJECT_APPROVE,    /* admins: over-quota compute, production promotions */
    ACT_DATASET_READ,       /* project members who are data scientists or admins */
    ACT_DATASET_WRITE,      /* contributors and owners who are data scientists, admins */
    ACT_COMPUTE_READ,       /* as ACT_DATASET_READ: project work of data scientists */
    ACT_COMPUTE_WRITE,      /* as ACT_DATASET_WRITE */
    ACT_PRICE_READ,         /* data scientists and admins */
    ACT_PRICE_MANAGE,       /* admins */
    ACT_STORE_READ,         /* admins, data scientists; store managers: assigned stores */
    ACT_STORE_MANAGE,       /* admins: stores and assignments */
    ACT_AUDIT_READ,         /* admins */
    ACT_USER_LIST,          /* admins */
} policy_action;

int policy_is_admin(const caller *who);

/* Decides whether who may do act on resource (a project id or store id;
 * NULL where the action has no resource). Queries conn when membership or
 * assignment matters. */
policy_decision policy_check(PGconn *conn, const caller *who, policy_action act,
                             const char *resource);

/* The caller's role in a project (admins count as owners). */
int policy_project_role(PGconn *conn, const caller *who, const char *project, project_role *out);

/* Answers the request for a refusal (403/404/503) and marks it for the
 * audit log. Returns 1 when it answered (decision not ALLOW), 0 otherwise. */
int policy_answer(http_req *req, policy_decision d, const char *what);

#endif
