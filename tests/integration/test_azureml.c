/* arm.c and azureml.c against tests/azure-stub, the contract stub of ARM and of the token
 * endpoint (published example answers, schema-checked request bodies, fault injection): token
 * caching and refresh, every typed operation, async polling, throttling, failures, timeouts,
 * stops, idempotent job submission and render mode. The stub is found through
 * ROASTERY_AZURE_STUB, else ROASTERY_SOURCE_DIR/tests/azure-stub (compile definition). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "azure/arm.h"
#include "azure/azureml.h"
#include "core/log.h"
#include "core/metrics.h"
#include "lib/util.h"

#define TENANT "00000000-0000-0000-0000-00000000aaaa"
#define CLIENT_ID "11111111-2222-3333-4444-555555555555"
#define SECRET "stub-client-secret"
#define SUB "00000000-1111-2222-3333-444444444444"
#define RG "test-rg"
#define WS "my-aml-workspace"
#define WS_ID                                                                                      \
    "/subscriptions/" SUB "/resourceGroups/" RG                                                    \
    "/providers/Microsoft.MachineLearningServices/workspaces/" WS

static char tmpdir[] = "/tmp/roastery-azure-stub.XXXXXX";
static pid_t stub_pid = -1;
static char base[64];  /* http://127.0.0.1:PORT */
static arm_client *cl; /* a fresh client per test: its own token cache */

/* ---------------------------------------------------------------- stub process */

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    (void)type;
    (void)ftw;
    return remove(path);
}

static char *stub_path(void)
{
    const char *env = getenv("ROASTERY_AZURE_STUB");
    if (env && *env)
        return xstrdup(env);
#ifdef ROASTERY_SOURCE_DIR
    return xstrdup(ROASTERY_SOURCE_DIR "/tests/azure-stub");
#else
    return xstrdup("tests/azure-stub");
#endif
}

static int start_stub(void)
{
    if (!mkdtemp(tmpdir))
        return -1;
    char *stub = stub_path();
    char *port_file = xasprintf("%s/port", tmpdir);
    if (access(stub, X_OK)) {
        fprintf(stderr, "azure stub not executable: %s\n", stub);
        free(stub);
        free(port_file);
        return -1;
    }
    stub_pid = fork();
    if (stub_pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM); /* never outlive a crashed test */
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0)
            dup2(fd, 1);
        execl(stub, stub, "--port", "0", "--port-file", port_file, (char *)NULL);
        _exit(127);
    }
    free(stub);
    int port = 0;
    for (int i = 0; i < 200 && stub_pid > 0; i++) { /* 10 s */
        FILE *f = fopen(port_file, "r");
        if (f) {
            if (fscanf(f, "%d", &port) != 1)
                port = 0;
            fclose(f);
        }
        if (port > 0)
            break;
        int st;
        if (waitpid(stub_pid, &st, WNOHANG) == stub_pid) {
            stub_pid = -1;
            break;
        }
        sleep_ms(50);
    }
    free(port_file);
    if (port <= 0) {
        fprintf(stderr, "azure stub did not start\n");
        return -1;
    }
    snprintf(base, sizeof base, "http://127.0.0.1:%d", port);
    return 0;
}

static void stop_stub(void)
{
    if (stub_pid > 0) {
        kill(stub_pid, SIGTERM);
        int st, i;
        for (i = 0; i < 100 && waitpid(stub_pid, &st, WNOHANG) != stub_pid; i++)
            sleep_ms(50);
        if (i == 100) {
            kill(stub_pid, SIGKILL);
            waitpid(stub_pid, &st, 0);
        }
        stub_pid = -1;
    }
    nftw(tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static size_t collect(char *data, size_t size, size_t n, void *arg)
{
    buf_append(arg, data, size * n);
    return size * n;
}

/* A call to the stub's control API. new: the parsed answer (NULL when empty). */
static json_t *control(const char *method, const char *path, const char *body)
{
    CURL *h = curl_easy_init();
    assert_non_null(h);
    char *url = xasprintf("%s%s", base, path);
    buf_t b;
    buf_init(&b, 0);
    struct curl_slist *hl = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (body)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    assert_int_equal(curl_easy_perform(h), CURLE_OK);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    assert_true(status >= 200 && status < 300);
    json_t *j = b.len ? json_loadb(b.data, b.len, 0, NULL) : NULL;
    buf_free(&b);
    curl_slist_free_all(hl);
    curl_easy_cleanup(h);
    free(url);
    return j;
}

static void control0(const char *method, const char *path, const char *body)
{
    json_decref(control(method, path, body));
}

/* The stub's request log. new. */
static json_t *stub_log(void)
{
    json_t *j = control("GET", "/_stub/requests", NULL);
    json_t *r = json_incref(json_object_get(j, "requests"));
    json_decref(j);
    return r;
}

/* Logged requests with this method (NULL: any) whose path contains needle. */
static size_t count_logged(const char *method, const char *needle)
{
    json_t *log = stub_log();
    size_t i, n = 0;
    json_t *e;
    json_array_foreach(log, i, e)
    {
        const char *m = json_string_value(json_object_get(e, "method"));
        const char *p = json_string_value(json_object_get(e, "path"));
        if ((!method || !strcmp(m, method)) && strstr(p, needle))
            n++;
    }
    json_decref(log);
    return n;
}

static json_t *stub_state(void)
{
    return control("GET", "/_stub/state", NULL);
}

static arm_options base_options(void)
{
    arm_options o = {.arm_endpoint = base,
                     .aad_authority = base,
                     .tenant_id = TENANT,
                     .client_id = CLIENT_ID,
                     .client_secret = SECRET,
                     .subscription_id = SUB,
                     .resource_group = RG,
                     .workspace = WS,
                     .location = "westeurope",
                     .timeout_seconds = 5,
                     .max_retries = 3,
                     .retry_base_ms = 20,
                     .poll_interval_ms = 20,
                     .max_wait_seconds = 20};
    return o;
}

static arm_client *new_client(const arm_options *o)
{
    arm_client *c = NULL;
    char err[256] = "";
    int rc = arm_client_new(o, &c, err, sizeof err);
    if (rc)
        fprintf(stderr, "arm_client_new: %s\n", err);
    assert_int_equal(rc, RST_OK);
    return c;
}

static int group_setup(void **state)
{
    (void)state;
    return start_stub();
}

static int group_teardown(void **state)
{
    (void)state;
    stop_stub();
    return 0;
}

static int setup(void **state)
{
    (void)state;
    control0("POST", "/_stub/reset", NULL);
    control0("POST", "/_stub/config", "{\"async_polls\": 2}");
    arm_options o = base_options();
    cl = new_client(&o);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    arm_client_free(cl);
    cl = NULL;
    return 0;
}

static double secs_since(int64_t t0)
{
    return (double)(now_ms_monotonic() - t0) / 1000.0;
}

/* The kinds and statuses of r's trace as "kind:status,...". new: free(). */
static char *trace_summary(const arm_result *r)
{
    buf_t b;
    buf_init(&b, 0);
    buf_puts(&b, "");
    size_t i;
    json_t *e;
    json_array_foreach(r->trace, i, e)
    {
        buf_printf(&b, "%s%s:%lld", i ? "," : "", json_string_value(json_object_get(e, "kind")),
                   (long long)json_integer_value(json_object_get(e, "status")));
    }
    return b.data;
}

static void assert_trace(const arm_result *r, const char *want)
{
    char *got = trace_summary(r);
    assert_string_equal(got, want);
    free(got);
}

static const char *body_str(const arm_result *r, const char *path)
{
    json_t *j = r->body;
    char *copy = xstrdup(path);
    for (char *part = copy, *next; part && j; part = next) {
        next = strchr(part, '.');
        if (next)
            *next++ = '\0';
        j = json_object_get(j, part);
    }
    free(copy);
    return json_string_value(j);
}

/* ---------------------------------------------------------------- tokens */

typedef struct {
    int ok;
} worker_arg;

static void *datastore_worker(void *p)
{
    worker_arg *w = p;
    for (int i = 0; i < 5; i++) {
        arm_result r = {0};
        if (azureml_datastore_get(cl, "workspaceblobstore", &r) == RST_OK)
            w->ok++;
        arm_result_free(&r);
    }
    return NULL;
}

/* Twenty calls from four threads share one token; nothing secret reaches the trace. */
static void test_token_fetched_once_and_cached(void **state)
{
    (void)state;
    pthread_t t[4];
    worker_arg w[4] = {{0}};
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, datastore_worker, &w[i]), 0);
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].ok, 5);
    }
    assert_int_equal(count_logged("POST", "/oauth2/v2.0/token"), 1);
    assert_int_equal(count_logged("GET", "/datastores/workspaceblobstore"), 20);

    arm_result r = {0};
    assert_int_equal(azureml_datastore_get(cl, "workspaceblobstore", &r), RST_OK);
    json_t *rec = arm_result_json(&r);
    char *text = json_dumps(rec, 0);
    assert_null(strstr(text, SECRET));
    assert_null(strstr(text, "stub.")); /* the stub's tokens start so */
    assert_null(strstr(text, "Bearer"));
    free(text);
    json_decref(rec);
    arm_result_free(&r);

    /* The token request as the identity platform expects it; ARM calls carry the bearer
     * token and the api-version. */
    json_t *log = stub_log();
    json_t *tok = json_array_get(log, 0);
    json_t *form = json_object_get(tok, "body");
    assert_string_equal(json_string_value(json_object_get(form, "grant_type")),
                        "client_credentials");
    assert_string_equal(json_string_value(json_object_get(form, "client_id")), CLIENT_ID);
    char *scope = xasprintf("%s/.default", base);
    assert_string_equal(json_string_value(json_object_get(form, "scope")), scope);
    free(scope);
    json_t *arm = json_array_get(log, 1);
    assert_string_equal(json_string_value(json_object_get(arm, "authorization")), "bearer");
    assert_string_equal(json_string_value(json_object_get(arm, "api_version")), ARM_API_VERSION);
    json_decref(log);
}

/* A 401 from ARM drops the cached token once and repeats with a fresh one. */
static void test_token_refreshed_after_401(void **state)
{
    (void)state;
    arm_result r = {0};
    assert_int_equal(azureml_datastore_get(cl, "workspaceblobstore", &r), RST_OK);
    arm_result_free(&r);
    control0("POST", "/_stub/tokens/revoke", NULL);
    assert_int_equal(azureml_datastore_get(cl, "workspaceblobstore", &r), RST_OK);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.retries, 0);
    assert_trace(&r, "request:401,token:200,request:200");
    arm_result_free(&r);
    assert_int_equal(count_logged("POST", "/oauth2/"), 2);
}

/* A token is not used past expires_in minus the safety margin. */
static void test_token_refreshed_when_expiring(void **state)
{
    (void)state;
    control0("POST", "/_stub/config", "{\"token_expires_in\": 1}");
    arm_result r = {0};
    assert_int_equal(azureml_datastore_get(cl, "workspaceblobstore", &r), RST_OK);
    sleep_ms(600);
    assert_int_equal(azureml_datastore_get(cl, "workspaceblobstore", &r), RST_OK);
    assert_trace(&r, "token:200,request:200,token:200,request:200");
    arm_result_free(&r);
    assert_int_equal(count_logged("POST", "/oauth2/"), 2);
}

/* ---------------------------------------------------------------- workload identity */

/* base64url without padding. new: free(). */
static char *b64url(const char *in)
{
    size_t n = strlen(in);
    char *out = xmalloc(4 * ((n + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)in, (int)n);
    for (char *p = out; *p; p++) {
        if (*p == '+')
            *p = '-';
        else if (*p == '/')
            *p = '_';
        else if (*p == '=')
            *p = '\0';
    }
    return out;
}

/* Writes a federated assertion shaped like AKS's projected service-account token (the stub
 * checks iss, sub, aud and exp; nobody checks the signature here) to tmpdir/token, with a
 * trailing newline as the kubelet writes it. new: the path, free(). */
static char *write_assertion(const char *jti, const char *sub)
{
    char *payload =
        xasprintf("{\"iss\":\"https://oidc.stub.invalid/roastery/\",\"sub\":\"%s\","
                  "\"aud\":[\"api://AzureADTokenExchange\"],\"exp\":%lld,\"jti\":\"%s\"}",
                  sub, (long long)time(NULL) + 3600, jti);
    char *h = b64url("{\"alg\":\"RS256\",\"kid\":\"k1\"}"), *p = b64url(payload);
    char *path = xasprintf("%s/token", tmpdir);
    char *tmp = xasprintf("%s/token.tmp", tmpdir);
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    fprintf(f, "%s.%s.c2lnbmF0dXJl\n", h, p);
    fclose(f);
    assert_int_equal(rename(tmp, path), 0); /* the kubelet swaps a symlink: atomic too */
    free(tmp);
    free(h);
    free(p);
    free(payload);
    return path;
}

#define WORKER_SA "system:serviceaccount:roastery:roastery-worker"

/* The form of the i-th logged token request. new: json_decref. */
static json_t *token_form(size_t i)
{
    json_t *log = stub_log(), *e, *form = NULL;
    size_t k, seen = 0;
    json_array_foreach(log, k, e)
    {
        if (!strstr(json_string_value(json_object_get(e, "path")), "/oauth2/v2.0/token"))
            continue;
        if (seen++ == i)
            form = json_incref(json_object_get(e, "body"));
    }
    json_decref(log);
    assert_non_null(form);
    return form;
}

/* No secret, a token file: the client-credentials grant with the file as client_assertion, the
 * file re-read at the next fetch (the kubelet rotates it), never the assertion in a record. */
static void test_federated_token_file(void **state)
{
    (void)state;
    char *path = write_assertion("jti-1", WORKER_SA);
    arm_options o = base_options();
    o.client_secret = NULL;
    o.federated_token_file = path;
    arm_client *c = new_client(&o);
    arm_result r = {0};
    assert_int_equal(azureml_datastore_get(c, "workspaceblobstore", &r), RST_OK);
    char *text = json_dumps(r.trace, 0);
    assert_null(strstr(text, "eyJ")); /* no JWT in the record */
    free(text);
    arm_result_free(&r);
    json_t *form = token_form(0);
    assert_string_equal(json_string_value(json_object_get(form, "grant_type")),
                        "client_credentials");
    assert_string_equal(json_string_value(json_object_get(form, "client_assertion_type")),
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
    assert_string_equal(json_string_value(json_object_get(form, "client_assertion_jti")), "jti-1");
    assert_string_equal(json_string_value(json_object_get(form, "client_id")), CLIENT_ID);
    assert_null(json_object_get(form, "client_secret"));
    json_decref(form);

    /* Rotated by the kubelet; ARM then refuses the cached token: the new file is sent. */
    free(write_assertion("jti-2", WORKER_SA));
    control0("POST", "/_stub/tokens/revoke", NULL);
    assert_int_equal(azureml_datastore_get(c, "workspaceblobstore", &r), RST_OK);
    assert_trace(&r, "request:401,token:200,request:200");
    arm_result_free(&r);
    form = token_form(1);
    assert_string_equal(json_string_value(json_object_get(form, "client_assertion_jti")), "jti-2");
    json_decref(form);
    arm_client_free(c);
    free(path);
}

/* A missing token file (not projected yet) is retryable and sends nothing; an assertion for
 * another service account is the identity platform's refusal, not retried. */
static void test_federated_token_problems(void **state)
{
    (void)state;
    arm_options o = base_options();
    o.client_secret = NULL;
    char *missing = xasprintf("%s/no-such-token", tmpdir);
    o.federated_token_file = missing;
    arm_client *c = new_client(&o);
    arm_result r = {0};
    assert_int_equal(azureml_datastore_get(c, "workspaceblobstore", &r), RST_EUNAVAIL);
    assert_string_equal(json_string_value(json_object_get(r.error, "code")),
                        "FederatedTokenUnavailable");
    arm_result_free(&r);
    arm_client_free(c);
    free(missing);
    assert_int_equal(count_logged(NULL, "/"), 0);

    char *path = write_assertion("jti-3", "system:serviceaccount:roastery:roastery-api");
    o.federated_token_file = path;
    c = new_client(&o);
    assert_int_equal(azureml_datastore_get(c, "workspaceblobstore", &r), RST_EINVAL);
    assert_string_equal(json_string_value(json_object_get(r.error, "code")), "invalid_client");
    assert_non_null(strstr(json_string_value(json_object_get(r.error, "message")), "AADSTS700213"));
    assert_int_equal(r.retries, 0);
    arm_result_free(&r);
    arm_client_free(c);

    /* Both configured: the secret is used (the token file is only the fallback). */
    o.client_secret = SECRET;
    c = new_client(&o);
    assert_int_equal(azureml_datastore_get(c, "workspaceblobstore", &r), RST_OK);
    arm_result_free(&r);
    arm_client_free(c);
    json_t *form = token_form(1);
    assert_non_null(json_object_get(form, "client_secret"));
    assert_null(json_object_get(form, "client_assertion"));
    json_decref(form);
    free(path);
}

/* A wrong secret: the identity platform's AADSTS error, nothing sent to ARM. */
static void test_token_refused(void **state)
{
    (void)state;
    arm_options o = base_options();
    o.client_secret = "not-the-secret";
    arm_client *c = new_client(&o);
    arm_result r = {0};
    assert_int_equal(azureml_datastore_get(c, "workspaceblobstore", &r), RST_EINVAL);
    assert_int_equal(r.status, 401);
    assert_string_equal(json_string_value(json_object_get(r.error, "code")), "invalid_client");
    assert_non_null(
        strstr(json_string_value(json_object_get(r.error, "message")), "AADSTS7000215"));
    assert_int_equal(r.retries, 0);
    assert_int_equal(count_logged(NULL, "/subscriptions/"), 0);
    char *text = json_dumps(r.trace, 0);
    assert_null(strstr(text, "not-the-secret"));
    free(text);
    arm_result_free(&r);
    arm_client_free(c);
}

/* ---------------------------------------------------------------- typed operations */

static void test_datastore_location(void **state)
{
    (void)state;
    arm_result r = {0};
    assert_int_equal(azureml_datastore_get(cl, "workspaceblobstore", &r), RST_OK);
    const char *account, *container, *suffix;
    assert_int_equal(azureml_datastore_blob(&r, &account, &container, &suffix), RST_OK);
    assert_string_equal(account, "roasterystubstorage");
    assert_non_null(strstr(container, "azureml-blobstore-"));
    assert_string_equal(suffix, "core.windows.net");
    arm_result_free(&r);
    assert_int_equal(azureml_datastore_get(cl, "nosuchstore", &r), RST_ENOTFOUND);
    assert_int_equal(r.status, 404);
    assert_int_equal(azureml_datastore_blob(&r, &account, &container, NULL), RST_EINVAL);
    arm_result_free(&r);
}

static void test_data_version_put(void **state)
{
    (void)state;
    arm_result r = {0};
    const char *uri = "azureml://datastores/workspaceblobstore/paths/roastery/sales.csv";
    assert_int_equal(azureml_data_version_put(cl, "sales", "3", uri, "weekly sales", &r), RST_OK);
    assert_int_equal(r.status, 201);
    assert_string_equal(body_str(&r, "id"), WS_ID "/data/sales/versions/3");
    assert_string_equal(body_str(&r, "properties.dataUri"), uri);
    assert_string_equal(body_str(&r, "properties.dataType"), "uri_file");
    assert_int_equal(json_array_size(r.requests), 2); /* container, then version */
    assert_non_null(strstr(json_string_value(json_object_get(json_array_get(r.requests, 0), "url")),
                           "/data/sales?api-version=" ARM_API_VERSION));
    assert_trace(&r, "token:200,request:201,request:201");
    arm_result_free(&r);
    /* Again: both are create-or-update. */
    assert_int_equal(azureml_data_version_put(cl, "sales", "3", uri, "weekly sales", &r), RST_OK);
    assert_int_equal(r.status, 200);
    arm_result_free(&r);
    assert_int_equal(azureml_data_version_put(cl, "sales", "4", "s3://elsewhere", NULL, &r),
                     RST_EINVAL);
    assert_null(r.requests);
    arm_result_free(&r);
}

static void test_model_version_put(void **state)
{
    (void)state;
    arm_result r = {0};
    json_t *tags = json_pack("{s:s}", "run", "r-42");
    json_t *props = json_pack("{s:s, s:s}", "rmse", "12.5", "framework", "xgboost");
    const char *path = "azureml://jobs/roastery-run-42/outputs/model/paths/model.json";
    assert_int_equal(
        azureml_model_version_put(cl, "demand", "7", path, "xgboost demand model", tags, props, &r),
        RST_OK);
    assert_int_equal(r.status, 201);
    assert_string_equal(body_str(&r, "properties.modelUri"), path);
    assert_string_equal(body_str(&r, "properties.modelType"), "custom_model");
    assert_string_equal(body_str(&r, "properties.jobName"), "roastery-run-42");
    assert_string_equal(body_str(&r, "properties.tags.run"), "r-42");
    assert_string_equal(body_str(&r, "properties.properties.rmse"), "12.5");
    arm_result_free(&r);
    json_decref(tags);
    json_decref(props);
}

static const azureml_binding job_inputs[] = {
    {.name = "sales", .type = "uri_file", .uri = "azureml:sales:3"}};
static const azureml_binding job_outputs[] = {{.name = "model", .type = "uri_folder"},
                                              {.name = "metrics"}};

static azureml_command_job sample_job(const char *name, const char *env)
{
    azureml_command_job j = {.job_name = name,
                             .experiment = "roastery-demand",
                             .compute = "cpu-cluster",
                             .environment = env,
                             .command = "python train.py --data ${{inputs.sales}} "
                                        "--out ${{outputs.model}}",
                             .display_name = "demand forecast",
                             .inputs = job_inputs,
                             .ninputs = 1,
                             .outputs = job_outputs,
                             .noutputs = 2,
                             .instance_count = 1,
                             .timeout_seconds = 3600};
    return j;
}

/* An image is registered as an environment version first; the job then progresses over GETs. */
static void test_command_job_with_image_and_progress(void **state)
{
    (void)state;
    arm_result r = {0};
    json_t *tags = json_pack("{s:s}", "roastery_run", "42");
    azureml_command_job j = sample_job("roastery-run-42", "mcr.microsoft.com/azureml/"
                                                          "openmpi4.1.0-ubuntu20.04:latest");
    j.tags = tags;
    assert_int_equal(azureml_command_job_put(cl, &j, &r), RST_OK);
    assert_int_equal(r.status, 201);
    assert_int_equal(r.existed, 0);
    assert_int_equal(json_array_size(r.requests), 2);
    const char *env_url = json_string_value(json_object_get(json_array_get(r.requests, 0), "url"));
    assert_non_null(strstr(env_url, "/environments/roastery-image/versions/"));
    const char *env_id = body_str(&r, "properties.environmentId");
    assert_non_null(strstr(env_id, WS_ID "/environments/roastery-image/versions/"));
    assert_string_equal(body_str(&r, "properties.computeId"), WS_ID "/computes/cpu-cluster");
    assert_string_equal(body_str(&r, "properties.status"), "NotStarted");
    assert_string_equal(body_str(&r, "properties.inputs.sales.jobInputType"), "uri_file");
    assert_string_equal(body_str(&r, "properties.outputs.metrics.jobOutputType"), "uri_folder");
    assert_non_null(body_str(&r, "properties.outputs.model.uri")); /* the service's default */
    assert_string_equal(body_str(&r, "properties.limits.timeout"), "PT3600S");
    arm_result_free(&r);
    json_decref(tags);

    const char *want[] = {"Queued", "Running", "Completed", "Completed"};
    const char *ours[] = {"queued", "running", "completed", "completed"};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(azureml_job_get(cl, "roastery-run-42", &r), RST_OK);
        const char *st = body_str(&r, "properties.status");
        assert_string_equal(st, want[i]);
        assert_string_equal(azureml_job_status_map(st), ours[i]);
        assert_int_equal(azureml_job_status_terminal(st), i >= 2);
        arm_result_free(&r);
    }
    assert_int_equal(azureml_job_get(cl, "no-such-job", &r), RST_ENOTFOUND);
    arm_result_free(&r);
}

/* A crash between submitting and recording the submission: the same PUT again is one job. */
static void test_job_resubmitted_after_crash(void **state)
{
    (void)state;
    arm_result r = {0};
    azureml_command_job j = sample_job("roastery-run-7", "azureml:roastery-env:1");
    assert_int_equal(azureml_command_job_put(cl, &j, &r), RST_OK);
    assert_int_equal(r.status, 201);
    arm_result_free(&r);
    /* Same body: ARM updates in place (200). */
    assert_int_equal(azureml_command_job_put(cl, &j, &r), RST_OK);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.existed, 1);
    arm_result_free(&r);
    /* A body that differs in what ARM keeps immutable (here the command): ARM refuses with
     * "already exists", the client adopts the job that is there. */
    j.command = "python train.py --retry";
    assert_int_equal(azureml_command_job_put(cl, &j, &r), RST_OK);
    assert_int_equal(r.existed, 1);
    assert_int_equal(r.status, 200);
    assert_null(r.error);
    assert_string_equal(body_str(&r, "properties.command"),
                        "python train.py --data ${{inputs.sales}} --out ${{outputs.model}}");
    assert_trace(&r, "request:400,request:200");
    arm_result_free(&r);
    json_t *st = stub_state();
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(st, "counters"), "job_creates")), 1);
    json_decref(st);
}

/* Cancel is a POST answered 202 + Location, polled until the cancel is done. */
static void test_job_cancel(void **state)
{
    (void)state;
    arm_result r = {0};
    azureml_command_job j = sample_job("roastery-run-9", "azureml:roastery-env:1");
    assert_int_equal(azureml_command_job_put(cl, &j, &r), RST_OK);
    arm_result_free(&r);
    assert_int_equal(azureml_job_cancel(cl, "roastery-run-9", 1, &r), RST_OK);
    assert_string_equal(r.async_status, "Succeeded");
    assert_int_equal(r.status, 200);
    assert_trace(&r, "request:202,poll:202,poll:202,poll:200");
    arm_result_free(&r);
    assert_int_equal(azureml_job_get(cl, "roastery-run-9", &r), RST_OK);
    assert_string_equal(body_str(&r, "properties.status"), "Canceled");
    assert_string_equal(azureml_job_status_map(body_str(&r, "properties.status")), "canceled");
    arm_result_free(&r);
    /* Without waiting: the 202 is the answer. */
    azureml_command_job j2 = sample_job("roastery-run-10", "azureml:roastery-env:1");
    assert_int_equal(azureml_command_job_put(cl, &j2, &r), RST_OK);
    arm_result_free(&r);
    assert_int_equal(azureml_job_cancel(cl, "roastery-run-10", 0, &r), RST_OK);
    assert_int_equal(r.status, 202);
    assert_string_equal(r.async_status, "");
    arm_result_free(&r);
}

/* Endpoint and deployment (201 + Azure-AsyncOperation), traffic (PUT), delete (202 + Location). */
static void test_online_endpoint_lifecycle(void **state)
{
    (void)state;
    arm_result r = {0};
    assert_int_equal(azureml_online_endpoint_put(cl, "demand-ep", "Key", &r), RST_OK);
    assert_string_equal(r.async_status, "Succeeded");
    assert_int_equal(r.status, 200);
    assert_string_equal(body_str(&r, "properties.provisioningState"), "Succeeded");
    assert_string_equal(body_str(&r, "location"), "westeurope");
    assert_trace(&r, "token:200,request:201,poll:200,poll:200,poll:200,final:200");
    arm_result_free(&r);

    assert_int_equal(azureml_model_version_put(cl, "demand", "1",
                                               "azureml://jobs/run-1/outputs/"
                                               "model",
                                               NULL, NULL, NULL, &r),
                     RST_OK);
    char *model_id = xstrdup(body_str(&r, "id"));
    arm_result_free(&r);
    json_t *env = json_pack("{s:s}", "ROASTERY_MODEL", "demand");
    azureml_deployment d = {.model = model_id,
                            .instance_type = "Standard_DS3_v2",
                            .instance_count = 2,
                            .environment = WS_ID "/environments/roastery-serve/versions/1",
                            .code_id = WS_ID "/codes/score/versions/1",
                            .scoring_script = "score.py",
                            .environment_variables = env};
    assert_int_equal(azureml_online_deployment_put(cl, "demand-ep", "blue", &d, &r), RST_OK);
    assert_string_equal(body_str(&r, "properties.provisioningState"), "Succeeded");
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(r.body, "sku"), "capacity")), 2);
    arm_result_free(&r);
    json_decref(env);

    json_t *traffic = json_pack("{s:i}", "blue", 100);
    assert_int_equal(azureml_online_endpoint_set_traffic(cl, "demand-ep", "Key", traffic, &r),
                     RST_OK);
    arm_result_free(&r);
    assert_int_equal(azureml_online_endpoint_get(cl, "demand-ep", &r), RST_OK);
    assert_int_equal(
        json_integer_value(json_object_get(
            json_object_get(json_object_get(r.body, "properties"), "traffic"), "blue")),
        100);
    arm_result_free(&r);
    /* ARM refuses to delete a deployment that takes traffic: its code and message are kept. */
    assert_int_equal(azureml_online_deployment_delete(cl, "demand-ep", "blue", &r), RST_EINVAL);
    assert_int_equal(r.status, 400);
    assert_string_equal(json_string_value(json_object_get(r.error, "code")), "UserError");
    assert_non_null(strstr(json_string_value(json_object_get(r.error, "message")), "traffic"));
    arm_result_free(&r);
    json_object_set_new(traffic, "blue", json_integer(0));
    assert_int_equal(azureml_online_endpoint_set_traffic(cl, "demand-ep", "Key", traffic, &r),
                     RST_OK);
    arm_result_free(&r);
    assert_int_equal(azureml_online_deployment_delete(cl, "demand-ep", "blue", &r), RST_OK);
    assert_int_equal(r.status, 204);
    assert_string_equal(r.async_status, "Succeeded");
    assert_trace(&r, "request:202,poll:202,poll:202,poll:204");
    arm_result_free(&r);
    assert_int_equal(azureml_online_deployment_get(cl, "demand-ep", "blue", &r), RST_ENOTFOUND);
    arm_result_free(&r);
    /* Traffic that does not add up never leaves the client. */
    json_object_set_new(traffic, "blue", json_integer(60));
    assert_int_equal(azureml_online_endpoint_set_traffic(cl, "demand-ep", "Key", traffic, &r),
                     RST_EINVAL);
    assert_null(r.requests);
    arm_result_free(&r);
    json_decref(traffic);
    free(model_id);
}

/* ---------------------------------------------------------------- async edges */

/* Retry-After on 202 answers paces the Location polls. */
static void test_async_retry_after_honoured(void **state)
{
    (void)state;
    arm_result r = {0};
    azureml_command_job j = sample_job("roastery-run-11", "azureml:roastery-env:1");
    assert_int_equal(azureml_command_job_put(cl, &j, &r), RST_OK);
    arm_result_free(&r);
    control0("POST", "/_stub/config", "{\"async_polls\": 1, \"poll_retry_after\": 1}");
    int64_t t0 = now_ms_monotonic();
    assert_int_equal(azureml_job_cancel(cl, "roastery-run-11", 1, &r), RST_OK);
    double took = secs_since(t0);
    assert_true(took >= 1.9 && took < 6);
    assert_trace(&r, "request:202,poll:202,poll:200");
    json_t *first = json_array_get(r.trace, 0);
    assert_int_equal(json_integer_value(json_object_get(first, "retry_after")), 1);
    arm_result_free(&r);
}

/* An Azure-AsyncOperation that ends Failed: the operation's own error. */
static void test_async_operation_failed(void **state)
{
    (void)state;
    control0("POST", "/_stub/faults",
             "{\"match\": \"/onlineEndpoints/\", \"method\": \"PUT\", \"async_fail\": true,"
             " \"code\": \"QuotaExceeded\", \"message\": \"not enough quota for the endpoint\"}");
    arm_result r = {0};
    assert_int_equal(azureml_online_endpoint_put(cl, "failing-ep", "AMLToken", &r), ARM_EFAILED);
    assert_string_equal(r.async_status, "Failed");
    assert_string_equal(json_string_value(json_object_get(r.error, "code")), "QuotaExceeded");
    assert_string_equal(json_string_value(json_object_get(r.error, "message")),
                        "not enough quota for the endpoint");
    arm_result_free(&r);
}

/* The wait for an operation is capped. */
static void test_async_wait_capped(void **state)
{
    (void)state;
    control0("POST", "/_stub/config", "{\"async_polls\": 100000}");
    arm_result r = {.max_wait_seconds = 1};
    int64_t t0 = now_ms_monotonic();
    assert_int_equal(azureml_online_endpoint_put(cl, "slow-ep", "Key", &r), RST_EUNAVAIL);
    assert_true(secs_since(t0) < 3);
    assert_string_equal(r.async_status, "TimedOut");
    assert_string_equal(json_string_value(json_object_get(r.error, "code")), "AsyncTimeout");
    arm_result_free(&r);
}

/* A poll URL on another host is refused: the token never leaves ARM. */
static void test_untrusted_poll_url(void **state)
{
    (void)state;
    control0("POST", "/_stub/faults",
             "{\"match\": \"/onlineEndpoints/\", \"method\": \"PUT\", \"status\": 201,"
             " \"body\": {}, \"headers\": {\"Azure-AsyncOperation\": "
             "\"https://attacker.example/op?api-version=1\"}}");
    arm_result r = {0};
    assert_int_equal(azureml_online_endpoint_put(cl, "ep", "Key", &r), RST_EINVAL);
    assert_string_equal(json_string_value(json_object_get(r.error, "code")), "UntrustedPollUrl");
    assert_trace(&r, "token:200,request:201");
    arm_result_free(&r);
}

/* ---------------------------------------------------------------- failures */

/* 429 with Retry-After twice, then success: two retries, paced, visible in the trace. */
static void test_throttled_then_success(void **state)
{
    (void)state;
    control0("POST", "/_stub/faults",
             "{\"match\": \"/jobs/\", \"method\": \"PUT\", \"status\": 429, \"retry_after\": 1,"
             " \"times\": 2}");
    arm_result r = {0};
    azureml_command_job j = sample_job("roastery-run-12", "azureml:roastery-env:1");
    int64_t t0 = now_ms_monotonic();
    assert_int_equal(azureml_command_job_put(cl, &j, &r), RST_OK);
    double took = secs_since(t0);
    assert_true(took >= 1.9 && took < 6);
    assert_int_equal(r.status, 201);
    assert_int_equal(r.retries, 2);
    assert_trace(&r, "token:200,request:429,request:429,request:201");
    json_t *e = json_array_get(r.trace, 1);
    assert_int_equal(json_integer_value(json_object_get(e, "retry_after")), 1);
    assert_int_equal(json_integer_value(json_object_get(e, "attempt")), 0);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(r.trace, 3), "attempt")), 2);
    arm_result_free(&r);
    assert_int_equal(count_logged("PUT", "/jobs/roastery-run-12"), 3);
}

/* Retry-After as an HTTP date. */
static void test_retry_after_http_date(void **state)
{
    (void)state;
    char date[64], body[256];
    time_t when = time(NULL) + 2;
    struct tm tm;
    gmtime_r(&when, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    snprintf(body, sizeof body,
             "{\"match\": \"/datastores/\", \"status\": 503, \"retry_after\": \"%s\"}", date);
    control0("POST", "/_stub/faults", body);
    arm_result r = {0};
    int64_t t0 = now_ms_monotonic();
    assert_int_equal(azureml_datastore_get(cl, "workspaceblobstore", &r), RST_OK);
    double took = secs_since(t0);
    assert_true(took >= 0.9 && took < 4);
    assert_int_equal(r.retries, 1);
    json_t *e = json_array_get(r.trace, 1);
    assert_true(json_integer_value(json_object_get(e, "retry_after")) >= 1);
    arm_result_free(&r);
}

/* A 4xx fails at once and keeps ARM's code and message. */
static void test_client_error_kept(void **state)
{
    (void)state;
    control0("POST", "/_stub/faults",
             "{\"match\": \"/deployments/\", \"method\": \"PUT\", \"status\": 400,"
             " \"code\": \"InvalidVmSize\", \"message\": \"The VM size Standard_Z9 is not "
             "supported in westeurope.\"}");
    arm_result r = {0};
    assert_int_equal(azureml_online_endpoint_put(cl, "ep4", "Key", &r), RST_OK);
    arm_result_free(&r);
    azureml_deployment d = {
        .model = "azureml:demand:1", .instance_type = "Standard_Z9", .instance_count = 1};
    assert_int_equal(azureml_online_deployment_put(cl, "ep4", "green", &d, &r), RST_EINVAL);
    assert_int_equal(r.status, 400);
    assert_int_equal(r.retries, 0);
    assert_string_equal(json_string_value(json_object_get(r.error, "code")), "InvalidVmSize");
    assert_string_equal(json_string_value(json_object_get(r.error, "message")),
                        "The VM size Standard_Z9 is not supported in westeurope.");
    assert_trace(&r, "request:400");
    arm_result_free(&r);

    /* The stub's schema check answers like ARM: a Command job without its command. */
    json_t *body = json_pack("{s:{s:s, s:s}}", "properties", "jobType", "Command", "environmentId",
                             "azureml:roastery-env:1");
    assert_int_equal(arm_request(cl, "PUT", "jobs/broken", body, 1, &r), RST_EINVAL);
    assert_int_equal(r.status, 400);
    assert_string_equal(json_string_value(json_object_get(r.error, "code")), "UserError");
    assert_non_null(
        strstr(json_string_value(json_object_get(r.error, "message")), "properties.command"));
    json_decref(body);
    arm_result_free(&r);
}

/* A 5xx on every attempt: the retries run out, the last answer is kept. */
static void test_server_error_exhausts_retries(void **state)
{
    (void)state;
    control0("POST", "/_stub/faults",
             "{\"match\": \"/datastores/\", \"status\": 503, \"times\": 0}");
    arm_result r = {0};
    assert_int_equal(azureml_datastore_get(cl, "workspaceblobstore", &r), RST_EUNAVAIL);
    assert_int_equal(r.status, 503);
    assert_int_equal(r.retries, 3);
    assert_string_equal(json_string_value(json_object_get(r.error, "code")), "ServiceUnavailable");
    assert_trace(&r, "token:200,request:503,request:503,request:503,request:503");
    arm_result_free(&r);
}

/* A stalled answer is cut by the per-request timeout (and retried). */
static void test_stall_cut_by_timeout(void **state)
{
    (void)state;
    arm_options o = base_options();
    o.timeout_seconds = 1;
    o.max_retries = 1;
    arm_client *c = new_client(&o);
    control0("POST", "/_stub/faults",
             "{\"match\": \"/datastores/\", \"stall_seconds\": 30, \"times\": 0}");
    arm_result r = {0};
    int64_t t0 = now_ms_monotonic();
    assert_int_equal(azureml_datastore_get(c, "workspaceblobstore", &r), RST_EUNAVAIL);
    assert_true(secs_since(t0) < 5);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.retries, 1);
    assert_string_equal(json_string_value(json_object_get(r.error, "code")), "Timeout");
    assert_trace(&r, "token:200,request:0,request:0");
    assert_non_null(json_object_get(json_array_get(r.trace, 1), "error"));
    arm_result_free(&r);
    arm_client_free(c);
}

static int stop_after(void *arg)
{
    return now_ms_monotonic() >= *(int64_t *)arg;
}

/* should_stop ends a stalled transfer, and a wait for a long-running operation. */
static void test_stall_cut_by_should_stop(void **state)
{
    (void)state;
    arm_options o = base_options();
    o.timeout_seconds = 60;
    arm_client *c = new_client(&o);
    control0("POST", "/_stub/faults",
             "{\"match\": \"/datastores/\", \"stall_seconds\": 30, \"times\": 0}");
    int64_t deadline = now_ms_monotonic() + 300;
    arm_result r = {.should_stop = stop_after, .stop_arg = &deadline};
    int64_t t0 = now_ms_monotonic();
    assert_int_equal(azureml_datastore_get(c, "workspaceblobstore", &r), ARM_ESTOPPED);
    assert_true(secs_since(t0) < 3);
    assert_string_equal(json_string_value(json_object_get(r.error, "code")), "Stopped");
    arm_result_free(&r);
    assert_non_null(r.should_stop); /* in fields survive */

    control0("POST", "/_stub/config", "{\"async_polls\": 100000}");
    deadline = now_ms_monotonic() + 300;
    t0 = now_ms_monotonic();
    assert_int_equal(azureml_online_endpoint_put(c, "stopped-ep", "Key", &r), ARM_ESTOPPED);
    assert_true(secs_since(t0) < 3);
    assert_string_equal(r.async_status, "Stopped");
    arm_result_free(&r);
    arm_client_free(c);
}

/* ---------------------------------------------------------------- render mode */

typedef int (*op_fn)(arm_client *c, arm_result *r);

static int op_data(arm_client *c, arm_result *r)
{
    return azureml_data_version_put(c, "sales", "9", "https://acct.blob.core.windows.net/c/s.csv",
                                    NULL, r);
}

static int op_model(arm_client *c, arm_result *r)
{
    json_t *tags = json_pack("{s:s}", "k", "v");
    int rc = azureml_model_version_put(c, "demand", "9", "azureml://jobs/run-9/outputs/model", "m",
                                       tags, NULL, r);
    json_decref(tags);
    return rc;
}

static int op_job(arm_client *c, arm_result *r)
{
    azureml_command_job j = sample_job("roastery-run-99", "docker.io/library/python:3.11-slim");
    return azureml_command_job_put(c, &j, r);
}

static int op_cancel(arm_client *c, arm_result *r)
{
    return azureml_job_cancel(c, "roastery-run-99", 1, r);
}

static int op_endpoint(arm_client *c, arm_result *r)
{
    return azureml_online_endpoint_put(c, "render-ep", "AADToken", r);
}

static int op_deployment(arm_client *c, arm_result *r)
{
    azureml_deployment d = {.model = WS_ID "/models/demand/versions/9",
                            .instance_type = "Standard_DS2_v2",
                            .instance_count = 1};
    return azureml_online_deployment_put(c, "render-ep", "green", &d, r);
}

static int op_traffic(arm_client *c, arm_result *r)
{
    json_t *t = json_pack("{s:i}", "green", 100);
    int rc = azureml_online_endpoint_set_traffic(c, "render-ep", "AADToken", t, r);
    json_decref(t);
    return rc;
}

static int op_datastore(arm_client *c, arm_result *r)
{
    return azureml_datastore_get(c, "workspaceblobstore", r);
}

/* The same calls on a render-only client record the very requests a live client sends, and
 * send nothing (it has no credentials at all). */
static void test_render_mode_matches_live(void **state)
{
    (void)state;
    arm_options o = base_options();
    o.render_only = 1;
    o.tenant_id = o.client_id = o.client_secret = NULL;
    arm_client *render = new_client(&o);
    const op_fn ops[] = {op_data,     op_model,      op_job,     op_cancel,
                         op_endpoint, op_deployment, op_traffic, op_datastore};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        arm_result live = {0}, dry = {0};
        assert_int_equal(ops[i](cl, &live), RST_OK);
        json_t *log = stub_log();
        size_t logged = json_array_size(log);
        json_decref(log);
        assert_int_equal(ops[i](render, &dry), RST_OK);
        log = stub_log();
        assert_int_equal(json_array_size(log), logged); /* nothing sent */
        json_decref(log);
        assert_int_equal(dry.rendered, 1);
        assert_int_equal(dry.status, 0);
        assert_int_equal(json_array_size(dry.trace), 0);
        assert_true(json_array_size(dry.requests) >= 1);
        if (!json_equal(live.requests, dry.requests)) {
            char *a = json_dumps(live.requests, JSON_INDENT(1));
            char *b = json_dumps(dry.requests, JSON_INDENT(1));
            fprintf(stderr, "live:\n%s\nrender:\n%s\n", a, b);
            free(a);
            free(b);
            fail_msg("render differs from live for operation %zu", i);
        }
        arm_result_free(&live);
        arm_result_free(&dry);
    }
    arm_client_free(render);
}

/* ---------------------------------------------------------------- pure parts */

static void test_job_status_table(void **state)
{
    (void)state;
    static const char *const pairs[][2] = {
        {"NotStarted", "queued"},     {"Queued", "queued"},          {"Paused", "queued"},
        {"Starting", "preparing"},    {"Provisioning", "preparing"}, {"Preparing", "preparing"},
        {"Running", "running"},       {"Finalizing", "running"},     {"CancelRequested", "running"},
        {"NotResponding", "running"}, {"Completed", "completed"},    {"Failed", "failed"},
        {"Canceled", "canceled"},     {"completed", "completed"},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++)
        assert_string_equal(azureml_job_status_map(pairs[i][0]), pairs[i][1]);
    assert_null(azureml_job_status_map("Unknown"));
    assert_null(azureml_job_status_map("SomethingNew"));
    assert_null(azureml_job_status_map(NULL));
    assert_true(azureml_job_status_terminal("Canceled"));
    assert_false(azureml_job_status_terminal("CancelRequested"));
}

static void test_arguments_checked_before_sending(void **state)
{
    (void)state;
    arm_result r = {0};
    assert_int_equal(azureml_job_get(cl, "../../secrets", &r), RST_EINVAL);
    assert_int_equal(azureml_data_version_put(cl, "sales", "1/2", "azureml://x", NULL, &r),
                     RST_EINVAL);
    assert_int_equal(azureml_online_endpoint_put(cl, "ep", "Password", &r), RST_EINVAL);
    azureml_binding bad[] = {{.name = "1bad", .uri = "azureml:x:1"}};
    azureml_command_job j = sample_job("ok-name", "azureml:env:1");
    j.inputs = bad;
    assert_int_equal(azureml_command_job_put(cl, &j, &r), RST_EINVAL);
    assert_string_equal(json_string_value(json_object_get(r.error, "code")), "InvalidArgument");
    assert_int_equal(arm_request(cl, "GET", "https://attacker.example/x", NULL, 0, &r), RST_EINVAL);
    assert_int_equal(arm_request(cl, "TRACE", "jobs/x", NULL, 0, &r), RST_EINVAL);
    assert_null(r.requests);
    arm_result_free(&r);
    assert_int_equal(count_logged(NULL, "/"), 0);

    arm_client *c = NULL;
    char err[256];
    arm_options o = base_options();
    o.arm_endpoint = "http://management.example.com";
    assert_int_equal(arm_client_new(&o, &c, err, sizeof err), RST_EINVAL);
    assert_non_null(strstr(err, "https"));
    o = base_options();
    o.client_secret = NULL;
    assert_int_equal(arm_client_new(&o, &c, err, sizeof err), RST_EINVAL);
    o = base_options();
    o.api_version = "latest";
    assert_int_equal(arm_client_new(&o, &c, err, sizeof err), RST_EINVAL);
    assert_null(c);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    json_object_seed(0);
    log_set_level(LOG_ERROR); /* retries and refusals are expected here */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_token_fetched_once_and_cached, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_refreshed_after_401, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_refreshed_when_expiring, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_federated_token_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_federated_token_problems, setup, teardown),
        cmocka_unit_test_setup_teardown(test_datastore_location, setup, teardown),
        cmocka_unit_test_setup_teardown(test_data_version_put, setup, teardown),
        cmocka_unit_test_setup_teardown(test_model_version_put, setup, teardown),
        cmocka_unit_test_setup_teardown(test_command_job_with_image_and_progress, setup, teardown),
        cmocka_unit_test_setup_teardown(test_job_resubmitted_after_crash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_job_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_online_endpoint_lifecycle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_async_retry_after_honoured, setup, teardown),
        cmocka_unit_test_setup_teardown(test_async_operation_failed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_async_wait_capped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_untrusted_poll_url, setup, teardown),
        cmocka_unit_test_setup_teardown(test_throttled_then_success, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_after_http_date, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_error_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_error_exhausts_retries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stall_cut_by_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stall_cut_by_should_stop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_render_mode_matches_live, setup, teardown),
        cmocka_unit_test_setup_teardown(test_job_status_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_arguments_checked_before_sending, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, group_setup, group_teardown);
    metrics_reset();
    curl_global_cleanup();
    return rc;
}
