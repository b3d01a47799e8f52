/* artifacts against a real Blob service: starts Azurite on a free loopback
 * port, runs the same cases as tests/unit/artifacts/test_artifacts.c on an azblob://
 * store, then what only Azure has: block boundaries, List paging, ETags,
 * authorization failures and retries (against a scripted fake server).
 * Skipped (77) when Azurite or node is missing, unless ROASTERY_REQUIRE_AZURITE=1
 * (then that is a failure, so a CI without Azurite cannot pass quietly). */
#define ARTIFACTS_CASES_ONLY
#include "../unit/artifacts/test_artifacts.c"

#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>

#include <curl/curl.h>

#include "azure/aad_credential.h"

/* Azurite's published development account (not a secret). */
#define DEV_ACCOUNT "devstoreaccount1"
#define DEV_KEY                                                                                    \
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
#define CONTAINER "roastery-test"

static char az_tmp[] = "/tmp/roastery-azurite.XXXXXX";
static pid_t az_pid = -1;
static int az_port;
static char *az_bin; /* new: freed in main */

/* ------------------------------------------------------------ Azurite */

static int executable(const char *p)
{
    return p && *p && access(p, X_OK) == 0;
}

/* ROASTERY_AZURITE_BIN, ROASTERY_SOURCE_DIR/tools/..., or tools/ two levels above this binary
 * (build/<preset>/test_azblob). */
static int find_azurite(void)
{
    const char *env = getenv("ROASTERY_AZURITE_BIN");
    if (env && *env) {
        az_bin = xstrdup(env);
        return executable(az_bin);
    }
    const char *rel = "tools/node_modules/.bin/azurite-blob";
    const char *src = getenv("ROASTERY_SOURCE_DIR");
    if (src && *src) {
        az_bin = xasprintf("%s/%s", src, rel);
        if (executable(az_bin))
            return 1;
        free(az_bin);
        az_bin = NULL;
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return 0;
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (!slash)
        return 0;
    *slash = '\0';
    az_bin = xasprintf("%s/../../%s", self, rel);
    return executable(az_bin);
}

static int on_path(const char *prog)
{
    const char *path = getenv("PATH");
    if (!path)
        return 0;
    char *copy = xstrdup(path);
    int found = 0;
    for (char *dir = copy, *next = NULL; dir && !found; dir = next) {
        char *colon = strchr(dir, ':');
        next = colon ? colon + 1 : NULL;
        if (colon)
            *colon = '\0';
        char *p = xasprintf("%s/%s", *dir ? dir : ".", prog);
        found = executable(p);
        free(p);
    }
    free(copy);
    return found;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int port = -1;
    if (fd >= 0 && !bind(fd, (struct sockaddr *)&a, sizeof a) &&
        !getsockname(fd, (struct sockaddr *)&a, &len))
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static int port_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int rm_tree_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    (void)type;
    (void)ftw;
    return remove(path);
}

static void show_log(void)
{
    char *p = xasprintf("%s/azurite.log", az_tmp);
    FILE *f = fopen(p, "r");
    char line[512];
    while (f && fgets(line, sizeof line, f))
        fprintf(stderr, "azurite: %s", line);
    if (f)
        fclose(f);
    free(p);
}

static int start_azurite(void)
{
    if (!mkdtemp(az_tmp))
        return -1;
    az_port = free_port();
    if (az_port <= 0)
        return -1;
    char port[16];
    snprintf(port, sizeof port, "%d", az_port);
    char *data = xasprintf("%s/data", az_tmp);
    char *logf = xasprintf("%s/azurite.log", az_tmp);
    mkdir(data, 0700);
    az_pid = fork();
    if (az_pid == 0) {
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGTERM); /* never outlive a crashed test */
        int fd = open(logf, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execl(az_bin, az_bin, "--blobHost", "127.0.0.1", "--blobPort", port, "--location", data,
              "--silent", "--skipApiVersionCheck", "--loose", "--disableTelemetry", (char *)NULL);
        _exit(127);
    }
    free(data);
    free(logf);
    if (az_pid < 0)
        return -1;
    for (int i = 0; i < 600; i++) { /* 60 s */
        int status;
        if (waitpid(az_pid, &status, WNOHANG) == az_pid) {
            az_pid = -1;
            fprintf(stderr, "azurite exited during start-up\n");
            show_log();
            return -1;
        }
        if (port_open(az_port))
            return 0;
        sleep_ms(100);
    }
    fprintf(stderr, "azurite did not listen on port %d\n", az_port);
    show_log();
    return -1;
}

static void stop_azurite(void)
{
    if (az_pid > 0) {
        kill(-az_pid, SIGTERM);
        int status;
        int i;
        for (i = 0; i < 100 && waitpid(az_pid, &status, WNOHANG) != az_pid; i++)
            sleep_ms(50);
        if (i == 100) {
            kill(-az_pid, SIGKILL);
            waitpid(az_pid, &status, 0);
        }
        az_pid = -1;
    }
    nftw(az_tmp, rm_tree_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static char *conn_string(const char *key, int port)
{
    return xasprintf("DefaultEndpointsProtocol=http;AccountName=" DEV_ACCOUNT ";AccountKey=%s;"
                     "BlobEndpoint=http://127.0.0.1:%d/" DEV_ACCOUNT ";",
                     key, port);
}

static int setup(void **state)
{
    (void)state;
    if (start_azurite())
        return -1;
    char *conn = conn_string(DEV_KEY, az_port);
    char err[256] = "";
    int rc = artifacts_open("azblob://" CONTAINER, conn, &store, err, sizeof err);
    if (rc)
        fprintf(stderr, "artifacts_open: %s\n", err);
    free(conn);
    if (rc)
        return -1;
    /* Small pages: every listing in the shared cases follows NextMarker. */
    artifacts_set_list_page_size(store, 2);
    count_leftovers = NULL;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    artifacts_close(store);
    store = NULL;
    stop_azurite();
    return 0;
}

/* ------------------------------------------------------------ Azure-only cases */

static double seconds_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

static void test_open_existing_container(void **state)
{
    (void)state;
    char *conn = conn_string(DEV_KEY, az_port);
    artifact_store *s = NULL;
    char err[256] = "";
    assert_int_equal(artifacts_open("azblob://" CONTAINER, conn, &s, err, sizeof err), RST_OK);
    char *uri = artifacts_uri(s, "a/b.csv");
    assert_string_equal(uri, "azblob://" CONTAINER "/a/b.csv");
    free(uri);
    artifacts_close(s);
    free(conn);
}

/* Exactly one block is one Put Blob; one byte more is two blocks; reads cross the seam. */
static void test_block_boundaries(void **state)
{
    (void)state;
    const uint64_t sizes[] = {4 * MIB, 4 * MIB + 1, 8 * MIB, 10 * MIB + 3};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        char sha[65], want[65];
        uint64_t size = 0, n = sizes[i];
        assert_int_equal(write_pattern("blocks/obj", n, 65536, sha, &size), RST_OK);
        pattern_sha(n, want);
        assert_string_equal(sha, want);
        assert_int_equal(size, n);
        expect_pattern_range("blocks/obj", n - 2, 0, 1, 2);
        if (n > 4 * MIB)
            expect_pattern_range("blocks/obj", 4 * MIB - 1, 2, 4096, 2);
    }
    /* 10 MiB read back in one go through a caller buffer larger than a fetch. */
    expect_pattern_range("blocks/obj", 0, 0, 6 * MIB, 10 * MIB + 3);
    assert_int_equal(artifacts_delete(store, "blocks/obj"), RST_OK);
}

static void test_list_pages(void **state)
{
    (void)state;
    char key[32];
    for (int i = 0; i < 7; i++) {
        snprintf(key, sizeof key, "pages/k%d", 6 - i);
        put_bytes(key, "p", 1);
    }
    listing l = {0};
    assert_int_equal(artifacts_list(store, "pages/", collect, &l), RST_OK); /* 4 pages of 2 */
    assert_int_equal(l.n, 7);
    for (int i = 0; i < 7; i++) {
        snprintf(key, sizeof key, "pages/k%d", i);
        assert_string_equal(l.keys[i], key);
    }
    memset(&l, 0, sizeof l);
    l.stop_after = 3; /* stops inside the second page */
    assert_int_equal(artifacts_list(store, "pages/", collect, &l), 42);
    assert_int_equal(l.n, 3);
    for (int i = 0; i < 7; i++) {
        snprintf(key, sizeof key, "pages/k%d", i);
        assert_int_equal(artifacts_delete(store, key), RST_OK);
    }
}

/* A blob replaced between two ranged fetches is not stitched from two versions. */
static void test_replaced_while_reading(void **state)
{
    (void)state;
    char sha[65];
    uint64_t size = 0;
    assert_int_equal(write_pattern("etag/obj", 5 * MIB, 65536, sha, &size), RST_OK);
    artifact_reader *r = NULL;
    assert_int_equal(artifacts_reader_open(store, "etag/obj", 0, 0, &r), RST_OK);
    unsigned char *buf = xmalloc(4 * MIB);
    size_t got = 0;
    assert_int_equal(artifacts_reader_read(r, buf, 4 * MIB, &got), RST_OK);
    assert_int_equal(got, 4 * MIB);
    put_bytes("etag/obj", "replaced", 8);
    assert_int_equal(artifacts_reader_read(r, buf, 4 * MIB, &got), RST_ECONFLICT);
    artifacts_reader_close(r);
    free(buf);
    assert_int_equal(artifacts_delete(store, "etag/obj"), RST_OK);
}

/* A wrong key is a clean 403 at open, answered at once: 403 is not retried. */
static void test_wrong_key_fails_fast(void **state)
{
    (void)state;
    char *conn = conn_string("d3JvbmcgYWNjb3VudCBrZXkgd3Jvbmcgd3Jvbmc=", az_port);
    artifact_store *s = (artifact_store *)1;
    char err[256] = "";
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(artifacts_open("azblob://" CONTAINER, conn, &s, err, sizeof err), RST_EIO);
    assert_true(seconds_since(&t0) < 1.0);
    assert_null(s);
    assert_non_null(strstr(err, "authorization failed"));
    assert_non_null(strstr(err, "403"));
    assert_null(strstr(err, "d3Jvbm"));
    free(conn);
}

static void test_unreachable_endpoint_gives_up(void **state)
{
    (void)state;
    int port = free_port(); /* nothing listens there */
    char *conn = conn_string(DEV_KEY, port);
    artifact_store *s = (artifact_store *)1;
    char err[256] = "";
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(artifacts_open("azblob://" CONTAINER, conn, &s, err, sizeof err),
                     RST_EUNAVAIL);
    double took = seconds_since(&t0);
    /* Four waits of 100-200, 200-400, 400-800 and 800-1600 ms between five attempts. */
    assert_true(took >= 1.4 && took < 10.0);
    assert_null(s);
    assert_non_null(strstr(err, "cannot reach"));
    free(conn);
}

/* A scripted HTTP server: answers request i with script[i] (the last one repeats), and keeps
 * the first FAKE_KEPT requests (head and body) for the test to read. */
#define FAKE_KEPT 8
typedef struct {
    int fd;
    const char *const *script;
    size_t nscript;
    atomic_int requests;
    atomic_int stop;
    pthread_t thread;
    char kept[FAKE_KEPT][8192];
} fake_server;

static void *fake_serve(void *p)
{
    fake_server *f = p;
    while (!f->stop) {
        struct pollfd pfd = {.fd = f->fd, .events = POLLIN};
        if (poll(&pfd, 1, 100) <= 0)
            continue;
        int c = accept(f->fd, NULL, NULL);
        if (c < 0)
            continue;
        char req[8192];
        size_t len = 0;
        char *end = NULL;
        while (len < sizeof req - 1 && !end) {
            ssize_t k = recv(c, req + len, sizeof req - 1 - len, 0);
            if (k <= 0)
                break;
            len += (size_t)k;
            req[len] = '\0';
            end = strstr(req, "\r\n\r\n");
        }
        if (end) { /* the body too, as far as Content-Length says and the buffer holds */
            const char *cl = strcasestr(req, "\r\nContent-Length:");
            size_t want =
                (size_t)(end + 4 - req) + (cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0);
            while (len < want && len < sizeof req - 1) {
                ssize_t k = recv(c, req + len, sizeof req - 1 - len, 0);
                if (k <= 0)
                    break;
                len += (size_t)k;
                req[len] = '\0';
            }
        }
        if (end) {
            int seen = atomic_load(&f->requests);
            if (seen < FAKE_KEPT)
                snprintf(f->kept[seen], sizeof f->kept[seen], "%s", req);
            size_t i = (size_t)atomic_fetch_add(&f->requests, 1);
            if (i >= f->nscript)
                i = f->nscript - 1;
            const char *reply = f->script[i];
            send(c, reply, strlen(reply), MSG_NOSIGNAL);
        }
        close(c);
    }
    return NULL;
}

static int fake_start(fake_server *f, const char *const *script, size_t n)
{
    memset(f, 0, sizeof *f);
    atomic_init(&f->requests, 0);
    atomic_init(&f->stop, 0);
    f->script = script;
    f->nscript = n;
    f->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(f->fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(f->fd, 16), 0);
    assert_int_equal(getsockname(f->fd, (struct sockaddr *)&a, &len), 0);
    assert_int_equal(pthread_create(&f->thread, NULL, fake_serve, f), 0);
    return ntohs(a.sin_port);
}

static void fake_stop(fake_server *f)
{
    f->stop = 1;
    pthread_join(f->thread, NULL);
    close(f->fd);
}

#define REPLY(status, extra)                                                                       \
    "HTTP/1.1 " status "\r\nx-ms-request-id: fake-req\r\n" extra                                   \
    "Content-Length: 0\r\nConnection: close\r\n\r\n"

static void test_throttling_honours_retry_after(void **state)
{
    (void)state;
    static const char *const script[] = {
        REPLY("503 Server Busy", "x-ms-error-code: ServerBusy\r\nRetry-After: 1\r\n"),
        REPLY("429 Too Many Requests", "Retry-After: 1\r\n"),
        REPLY("201 Created", ""),
    };
    fake_server f;
    int port = fake_start(&f, script, 3);
    char *conn = conn_string(DEV_KEY, port);
    artifact_store *s = NULL;
    char err[256] = "";
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(artifacts_open("azblob://" CONTAINER, conn, &s, err, sizeof err), RST_OK);
    double took = seconds_since(&t0);
    fake_stop(&f);
    assert_int_equal(f.requests, 3);
    assert_true(took >= 1.9); /* two Retry-After: 1, longer than the backoff */
    artifacts_close(s);
    free(conn);
}

static void test_server_errors_retried_five_times(void **state)
{
    (void)state;
    static const char *const script[] = {
        REPLY("500 Internal Server Error", "x-ms-error-code: InternalError\r\n"),
    };
    fake_server f;
    int port = fake_start(&f, script, 1);
    char *conn = conn_string(DEV_KEY, port);
    artifact_store *s = (artifact_store *)1;
    char err[256] = "";
    assert_int_equal(artifacts_open("azblob://" CONTAINER, conn, &s, err, sizeof err),
                     RST_EUNAVAIL);
    fake_stop(&f);
    assert_null(s);
    assert_int_equal(f.requests, 5);
    assert_non_null(strstr(err, "500"));
    free(conn);
}

static void test_client_errors_not_retried(void **state)
{
    (void)state;
    static const char *const script[] = {
        REPLY("400 Bad Request", "x-ms-error-code: InvalidHeaderValue\r\n"),
    };
    fake_server f;
    int port = fake_start(&f, script, 1);
    char *conn = conn_string(DEV_KEY, port);
    artifact_store *s = (artifact_store *)1;
    char err[256] = "";
    assert_int_equal(artifacts_open("azblob://" CONTAINER, conn, &s, err, sizeof err), RST_EIO);
    fake_stop(&f);
    assert_int_equal(f.requests, 1);
    assert_non_null(strstr(err, "InvalidHeaderValue"));
    free(conn);
}

/* ------------------------------------------------------------ Entra ID bearer tokens
 *
 * Azurite 3.35 takes bearer tokens only over HTTPS with --oauth basic, and the server's libcurl
 * trusts only the system CA bundle, so a self-signed Azurite cannot be reached without a CA
 * knob the server does not have. The bearer path is checked against the scripted server instead:
 * it plays the token endpoint (request 0) and then Blob Storage. */

static char *write_token_file(const char *dir, const char *contents)
{
    char *path = xasprintf("%s/azure-identity-token", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(contents, f);
    fclose(f);
    return path;
}

static void put_bytes_in(artifact_store *s, const char *key, const void *data, size_t n)
{
    artifact_writer *w = NULL;
    assert_int_equal(artifacts_writer_open(s, key, &w), RST_OK);
    assert_int_equal(artifacts_writer_write(w, data, n), RST_OK);
    char sha[65];
    uint64_t size = 0;
    assert_int_equal(artifacts_writer_commit(w, sha, &size), RST_OK);
}

/* Installs a federated process credential whose authority is the fake server. */
static void use_federated_credential(int port, const char *token_file)
{
    char *authority = xasprintf("http://127.0.0.1:%d", port);
    aad_credential_options o = {.authority = authority,
                                .tenant_id = "tenant-1",
                                .client_id = "client-1",
                                .federated_token_file = token_file};
    aad_credential *cred = NULL;
    char err[256] = "";
    assert_int_equal(aad_credential_new(&o, &cred, err, sizeof err), RST_OK);
    aad_credential_default_set(cred);
    free(authority);
}

#define TOKEN_REPLY(tok)                                                                           \
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "                        \
    "88\r\nConnection: "                                                                           \
    "close\r\n\r\n{\"token_type\":\"Bearer\",\"expires_in\":3599,\"access_token\":"                \
    "\"" tok "\"}"

/* BlobEndpoint without AccountKey: a storage-scoped token by the federated grant, then Blob
 * requests with Authorization: Bearer and an x-ms-version that accepts it (>= 2017-11-09); the
 * token is cached; a 401 gets one fresh token (the file re-read) and the request repeated. */
static void test_bearer_token_from_federated_credential(void **state)
{
    (void)state;
    static const char *const script[] = {
        TOKEN_REPLY("tok-aaaaaaaaaaaaaaaaaaaaaaaaa"),
        REPLY("201 Created", ""),
        REPLY("201 Created", ""),
        REPLY("401 Unauthorized", "x-ms-error-code: InvalidAuthenticationInfo\r\n"),
        TOKEN_REPLY("tok-bbbbbbbbbbbbbbbbbbbbbbbbb"),
        REPLY("201 Created", ""),
    };
    fake_server f;
    int port = fake_start(&f, script, sizeof script / sizeof script[0]);
    char *file = write_token_file(az_tmp, "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ3b3JrZXIifQ.c2ln\n");
    use_federated_credential(port, file);
    char *conn = xasprintf("BlobEndpoint=http://127.0.0.1:%d/" DEV_ACCOUNT ";", port);
    artifact_store *s = NULL;
    char err[256] = "";
    int rc = artifacts_open("azblob://" CONTAINER, conn, &s, err, sizeof err);
    if (rc)
        fprintf(stderr, "artifacts_open: %s\n", err);
    assert_int_equal(rc, RST_OK);
    put_bytes_in(s, "a/one", "1", 1); /* cached token */
    free(write_token_file(az_tmp, "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyb3RhdGVkIn0.c2ln"));
    put_bytes_in(s, "a/two", "2", 1); /* 401, fresh token, again */
    fake_stop(&f);
    assert_int_equal(f.requests, 6);

    const char *tok = f.kept[0];
    assert_non_null(strstr(tok, "POST /tenant-1/oauth2/v2.0/token "));
    assert_non_null(strstr(tok, "grant_type=client_credentials"));
    assert_non_null(strstr(tok, "client_id=client-1"));
    assert_non_null(strstr(tok, "client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-"
                                "assertion-type%3Ajwt-bearer"));
    assert_non_null(
        strstr(tok, "client_assertion=eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ3b3JrZXIifQ.c2ln&"));
    assert_non_null(strstr(tok, "scope=https%3A%2F%2Fstorage.azure.com%2F.default"));
    assert_null(strstr(tok, "client_secret"));
    for (int i = 1; i <= 3; i++) {
        assert_non_null(
            strstr(f.kept[i], "Authorization: Bearer tok-aaaaaaaaaaaaaaaaaaaaaaaaa\r\n"));
        assert_non_null(strstr(f.kept[i], "x-ms-version: 2021-08-06\r\n"));
        assert_null(strstr(f.kept[i], "SharedKey"));
    }
    assert_non_null(strstr(f.kept[1], "PUT /" DEV_ACCOUNT "/" CONTAINER "?restype=container "));
    assert_non_null(
        strstr(f.kept[4], "client_assertion=eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyb3RhdGVkIn0.c2ln&"));
    assert_non_null(strstr(f.kept[5], "Authorization: Bearer tok-bbbbbbbbbbbbbbbbbbbbbbbbb\r\n"));
    artifacts_close(s);
    aad_credential_default_set(NULL);
    free(conn);
    free(file);
}

/* The identity platform refuses: open fails at once with its reason, Blob never called; and a
 * keyless account needs https (tokens never cross plain HTTP to another host) and a credential. */
static void test_bearer_refused_and_misconfigured(void **state)
{
    (void)state;
    static const char *const script[] = {
        "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: 71\r\n"
        "Connection: "
        "close\r\n\r\n{\"error\":\"invalid_client\",\"error_description\":\"AADSTS700213: "
        "no match\"}",
    };
    fake_server f;
    int port = fake_start(&f, script, 1);
    char *file = write_token_file(az_tmp, "a.b.c");
    use_federated_credential(port, file);
    char *conn = xasprintf("BlobEndpoint=http://127.0.0.1:%d/" DEV_ACCOUNT, port);
    artifact_store *s = (artifact_store *)1;
    char err[256] = "";
    assert_int_equal(artifacts_open("azblob://" CONTAINER, conn, &s, err, sizeof err), RST_EINVAL);
    fake_stop(&f);
    assert_null(s);
    assert_int_equal(f.requests, 1); /* the token request only, not retried */
    assert_non_null(strstr(err, "AADSTS700213"));
    assert_null(strstr(err, "a.b.c"));
    free(conn);

    conn = xstrdup("BlobEndpoint=http://acct.blob.core.windows.net;");
    assert_int_equal(artifacts_open("azblob://" CONTAINER, conn, &s, err, sizeof err), RST_EINVAL);
    assert_non_null(strstr(err, "https"));
    free(conn);
    aad_credential_default_set(NULL);
    conn = xstrdup("BlobEndpoint=https://acct.blob.core.windows.net;");
    assert_int_equal(artifacts_open("azblob://" CONTAINER, conn, &s, err, sizeof err), RST_EINVAL);
    assert_non_null(strstr(err, "ROASTERY_AZURE_FEDERATED_TOKEN_FILE"));
    free(conn);
    free(file);
}

static int not_runnable(const char *why)
{
    const char *req = getenv("ROASTERY_REQUIRE_AZURITE");
    int required = req && !strcmp(req, "1");
    fprintf(stderr, "test_azblob: %s: %s\n", required ? "failed" : "skipped", why);
    free(az_bin);
    return required ? 1 : 77;
}

int main(void)
{
    if (!find_azurite())
        return not_runnable(
            "azurite-blob not found (set ROASTERY_AZURITE_BIN or run scripts/install-deps)");
    if (!on_path("node"))
        return not_runnable("node is not on PATH");
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        ARTIFACTS_SHARED_TESTS,
        cmocka_unit_test(test_open_existing_container),
        cmocka_unit_test(test_block_boundaries),
        cmocka_unit_test(test_list_pages),
        cmocka_unit_test(test_replaced_while_reading),
        cmocka_unit_test(test_wrong_key_fails_fast),
        cmocka_unit_test(test_unreachable_endpoint_gives_up),
        cmocka_unit_test(test_throttling_honours_retry_after),
        cmocka_unit_test(test_server_errors_retried_five_times),
        cmocka_unit_test(test_client_errors_not_retried),
        cmocka_unit_test(test_bearer_token_from_federated_credential),
        cmocka_unit_test(test_bearer_refused_and_misconfigured),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    curl_global_cleanup();
    free(az_bin);
    return rc;
}
