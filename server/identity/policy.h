/* Every access decision in one place. Handlers ask; the answers are allow,
 * forbidden (403: the caller may know it exists) or hidden (404: the caller
 * may not even learn that it exists). */
#ifndef ROASTERY_POLICY_H
#define ROASTERY_POLICY_H

#include <libpq-fe.h>

#include "http/http.h"
#include "identity/caller.h"

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
    ACT_PROJECT_CREATE,      /* data scientists and admins */
    ACT_PROJECT_READ,        /* members and admins */
    ACT_PROJECT_WRITE,       /* contributors, owners, admins: datasets, runs, compute */
    ACT_PROJECT_MANAGE,      /* owners and admins: description, members */
    ACT_PROJECT_SET_LIMITS,  /* admins: budget and quota */
    ACT_PROJECT_APPROVE,     /* admins: over-quota compute, production promotions */
    ACT_DATASET_READ,        /* project members who are data scientists or admins */
    ACT_DATASET_WRITE,       /* contributors and owners who are data scientists, admins */
    ACT_COMPUTE_READ,        /* as ACT_DATASET_READ: project work of data scientists */
    ACT_COMPUTE_WRITE,       /* as ACT_DATASET_WRITE */
    ACT_PRICE_READ,          /* data scientists and admins */
    ACT_PRICE_MANAGE,        /* admins */
    ACT_STORE_READ,          /* admins, data scientists; store managers: assigned stores */
    ACT_STORE_MANAGE,        /* admins: stores and assignments */
    ACT_AUDIT_READ,          /* admins */
    ACT_USER_LIST,           /* admins */
    ACT_STORE_FORECAST_READ, /* a store's forecasts and accuracy: admins, its store managers,
                                members of its serving project */
    ACT_ACTUALS_REPORT,      /* actuals of a store: admins, its store managers, contributors of
                                its serving project who are data scientists; with no store:
                                whether the roles may report actuals at all */
    ACT_PROJECT_WORK_READ,   /* a project's internals (operations, webhooks and deliveries,
                                forecast runs): as ACT_DATASET_READ */
    ACT_WEBHOOK_MANAGE,      /* owners who are data scientists, admins */
} policy_action;

int policy_is_admin(const caller *who);

/* Whether who's roles let them see a project's internals (datasets, compute, operations,
 * webhooks) at all, membership aside: admins and data scientists; store managers never. */
int policy_sees_project_work(const caller *who);

/* Decides whether who may do act on resource (a project id or store id;
 * NULL where the action has no resource). Queries conn when membership or
 * assignment matters. */
policy_decision policy_check(PGconn *conn, const caller *who, policy_action act,
                             const char *resource);

/* The caller's role in a project (admins count as owners). */
int policy_project_role(PGconn *conn, const caller *who, const char *project, project_role *out);

/* policy_check for every store of stores, a Postgres text[] literal (e.g. "{\"A-1\",B}"),
 * for ACT_ACTUALS_REPORT or ACT_STORE_FORECAST_READ: ALLOW when each is allowed, else the
 * decision for the first refused one, copied into refused (cap bytes). One query. */
policy_decision policy_check_stores(PGconn *conn, const caller *who, policy_action act,
                                    const char *stores, char *refused, size_t cap);

/* Four eyes: FORBIDDEN when who is asked_by (the person who asked for the change being
 * decided), else ALLOW. */
policy_decision policy_four_eyes(const caller *who, const char *asked_by);

/* Whether project's dataset may claim path (already checked for shape by
 * eventgrid_path_check) as its event_grid_path: it must lie under the project's own folder
 * EVENTGRID_PROJECT_FOLDER<project>/ and neither hold nor lie inside another dataset's path.
 * FORBIDDEN with the reason in why (cap bytes), ALLOW, or ERROR. */
policy_decision policy_event_grid_claim(PGconn *conn, const char *project, const char *dataset,
                                        const char *path, char *why, size_t cap);

/* The folder of the artifact container under which a project's Event Grid paths lie. */
#define EVENTGRID_PROJECT_FOLDER "incoming/"

/* ---- replays --------------------------------------------------------------------------
 * Each request's caller keeps the checks policy_check allowed (its trail), so an answer
 * stored for an Idempotency-Key is replayed only to a caller who passes them again. */

/* new: free with policy_trail_free. */
policy_trail *policy_trail_new(void);
void policy_trail_free(policy_trail *t);
/* The trail as JSON text [[action, resource], ...]. new: caller frees. */
char *policy_trail_json(const policy_trail *t);
/* Checks who again against a trail stored by policy_trail_json (NULL: nothing recorded).
 * ALLOW, or the first refusal with what it was about in what (cap bytes). */
policy_decision policy_recheck(PGconn *conn, const caller *who, const char *trail_json, char *what,
                               size_t cap);

/* Answers the request for a refusal (403/404/503) and marks it for the
 * audit log. Returns 1 when it answered (decision not ALLOW), 0 otherwise. */
int policy_answer(http_req *req, policy_decision d, const char *what);

#endif
