/* Azure Resource Manager over libcurl for one Azure Machine Learning workspace:
 * an OAuth2 client-credentials token (client secret or workload identity's federated token)
 * cached per client, retries with backoff on
 * throttling, 5xx and transport errors, long-running operations polled to their
 * end, and a record of every exchange (never a token or a secret) that the
 * caller stores as the action's request and response. */
#ifndef ROASTERY_ARM_H
#define ROASTERY_ARM_H

#include <jansson.h>
#include <stddef.h>

#include "lib/util.h"

/* The api-version every request carries unless arm_options.api_version says otherwise.
 * 2025-12-01 is the newest stable Microsoft.MachineLearningServices version published in
 * Azure/azure-rest-api-specs (stable/ holds 2024-04-01, 2024-10-01, 2025-04-01, 2025-06-01,
 * 2025-09-01 and 2025-12-01; nothing newer). Its mfe.json (commit 5485d5f8) defines every
 * operation and body used here: jobs PUT synchronous (200/201), jobs cancel a POST answered
 * 202 + Location, online endpoint and deployment PUTs answered 201 + Azure-AsyncOperation,
 * deletes 202 + Location, and traffic settable only by a PUT of the endpoint (its PATCH body has
 * no traffic). It also publishes the examples 2024-04-01 lacks (Job/cancel.json,
 * Workspace/DataVersionBase/createOrUpdate.json), and the 2024-04-01 example requests we rely on
 * validate against it (tests/azure/stub_test.py). Request bodies are checked in the tests
 * against a trim of that file: tests/azure/schema-2025-12-01.json. */
#define ARM_API_VERSION "2025-12-01"
#define ARM_DEFAULT_ENDPOINT "https://management.azure.com"
#define ARM_DEFAULT_AUTHORITY "https://login.microsoftonline.com"

/* Failures beyond util.h's RST_* codes. */
enum {
    ARM_ESTOPPED = -20, /* should_stop asked to stop (nothing is undone in Azure) */
    ARM_EFAILED = -21,  /* a long-running operation ended Failed or Canceled */
};

/* Strings are copied by arm_client_new. Zero means "default" for every number except
 * max_retries, where a negative value means no retries. */
typedef struct {
    const char *arm_endpoint;  /* NULL = ARM_DEFAULT_ENDPOINT; http:// only for loopback */
    const char *aad_authority; /* NULL = ARM_DEFAULT_AUTHORITY; http:// only for loopback */
    const char *tenant_id, *client_id; /* not needed with render_only */
    const char *client_secret;         /* used when set, else: */
    const char *federated_token_file;  /* workload identity's token, re-read at each fetch */
    const char *subscription_id, *resource_group, *workspace;
    const char *location;    /* the workspace's region; online endpoints and deployments need it */
    const char *api_version; /* NULL = ARM_API_VERSION */
    int timeout_seconds;     /* per HTTP exchange (connect included); default 60 */
    int max_retries;         /* on 408/429/5xx and transport errors; default 4 */
    int retry_base_ms;       /* backoff base, doubled per retry, with jitter; default 500 */
    int max_retry_after_seconds; /* cap on any wait a Retry-After asks for; default 120 */
    int poll_interval_ms;        /* async polls when no Retry-After is given; default 5000 */
    int max_wait_seconds;        /* cap on waiting for one long-running operation; default 3600 */
    int render_only; /* 1: nothing is sent; calls record what they would send (dry-run, local) */
} arm_options;

/* Thread-safe: one per process, shared by every worker thread. */
typedef struct arm_client arm_client;

/* Checks and copies o (no I/O). RST_OK, or RST_EINVAL with a reason in err (never the secret).
 * new: caller frees *out with arm_client_free. */
int arm_client_new(const arm_options *o, arm_client **out, char *err, size_t errlen);
/* NULL-safe; wipes the secret and the cached token. */
void arm_client_free(arm_client *c);

/* The record of one call, or of the several requests one typed operation makes. Zero it (or
 * arm_result_init) before the first call; calls accumulate requests, trace and retries into it,
 * and status, body, error, async_status describe the last request. */
typedef struct {
    /* in: set by the caller, kept by arm_result_free */
    int (*should_stop)(void *arg); /* asked between attempts, while backing off or polling and
                                      during transfers (at least once a second); non-zero stops
                                      the call with ARM_ESTOPPED */
    void *stop_arg;
    int max_wait_seconds; /* this call's cap on async waiting; 0 = the client's */

    /* out */
    long status;      /* final HTTP status (after retries, async completion and the final GET);
                         0 when nothing was answered or nothing was sent (render) */
    json_t *body;     /* new: parsed response body or NULL */
    json_t *error;    /* new: ARM's error object {code, message, ...} when the call failed with
                         an answer, else one of ours {code, message, source: "client"} for
                         transport errors, timeouts, stops; NULL on success */
    json_t *requests; /* new: [{method, url, body}] the requests as asked for, in order; the same
                         in live and render mode */
    json_t *trace;    /* new: [{kind, method, url, status, retry_after, ms, attempt, request_id,
                         error}] every HTTP exchange (token, request, retry, poll, final GET) */
    int retries;      /* exchanges repeated after 408/429/5xx or a transport error */
    int rendered;     /* 1: render mode, nothing was sent */
    int existed;      /* set by typed calls that adopted an existing resource */
    char async_status[16]; /* "", or Succeeded, Failed, Canceled, TimedOut, Stopped */
} arm_result;

void arm_result_init(arm_result *r);
/* Frees the out fields and zeroes them; keeps the in fields. NULL-safe. */
void arm_result_free(arm_result *r);
/* The record to store in the operation log: {requests, trace, status, body, error, retries,
 * rendered, async_status, existed}. new: json_decref. */
json_t *arm_result_json(const arm_result *r);

/* One ARM request. path_and_query is relative to the workspace ("jobs/x",
 * "onlineEndpoints/e?x=1"), an absolute ARM path ("/subscriptions/..."), or a full URL on the
 * ARM endpoint (what an async header names); api-version is appended unless present. body
 * (borrowed, may be NULL) is sent as JSON.
 *
 * Retries: 408, 429, 500, 502, 503, 504 (and other 5xx but 501/505) and transport errors are
 * retried up to max_retries times, waiting Retry-After (seconds or an HTTP date, capped) when
 * the answer has one, else retry_base_ms << n with jitter. A 401 drops the cached token once
 * and repeats at once (not counted as a retry). Other 4xx fail at once, ARM's error kept.
 *
 * wait_async: when the answer is 200/201/202 with Azure-AsyncOperation, the status URL is
 * polled until its status is Succeeded, Failed or Canceled; else when it is 202 with Location,
 * that URL is polled until it answers something other than 202. Polls wait Retry-After when
 * given, else poll_interval_ms, and stop at max_wait_seconds (RST_EUNAVAIL, "TimedOut"). After
 * success a PUT or PATCH GETs the resource for the final body (final-state-via original-uri);
 * a POST or DELETE keeps the last Location answer. Poll URLs must be on the ARM endpoint.
 * Without wait_async the first answer is returned as is.
 *
 * Returns RST_OK (2xx and the operation Succeeded), RST_ENOTFOUND (404), RST_ECONFLICT
 * (409/412), RST_EINVAL (other 4xx, bad arguments, credentials refused), RST_EUNAVAIL
 * (retries exhausted, timeouts), RST_ETOOBIG (answer over 16 MiB), ARM_EFAILED, ARM_ESTOPPED.
 * In render mode nothing is sent: the request is recorded and RST_OK returned. */
int arm_request(arm_client *c, const char *method, const char *path_and_query, json_t *body,
                int wait_async, arm_result *out);

/* "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.MachineLearningServices/
 * workspaces/{ws}". new: free(). */
char *arm_workspace_id(const arm_client *c);
/* borrowed: valid until arm_client_free; location may be NULL. */
const char *arm_location(const arm_client *c);
const char *arm_api_version(const arm_client *c);
int arm_render_only(const arm_client *c);

#endif
