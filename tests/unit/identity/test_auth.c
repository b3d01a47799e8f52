/* auth, jwks, devissuer: Azure-AD-shaped tokens minted by PyJWT (not by our
 * code, see mint_tokens.py) against JWKS files this test controls, plus the
 * attacks libjwt 1.10.2 falls for. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "identity/auth.h"
#include "identity/devissuer.h"
#include "identity/jwks.h"
#include "core/log.h"
#include "core/metrics.h"
#include "lib/util.h"

#define TENANT "3f2c1a9e-5b7d-4e21-9c0a-1d2e3f4a5b6c"
#define OTHER_TENANT "99999999-5b7d-4e21-9c0a-1d2e3f4a5b6c"
#define AUDIENCE "api://roastery"
#define CLIENT_ID "6a1f5a2e-0c1b-4d3e-9f00-123456789abc"
#define OID "0b7c9a52-3f1e-4d6a-8b2c-5e4f3a2b1c0d"
#define PYTHON "/usr/bin/python3" /* Debian's, with python3-jwt; `python3` may be a pyenv shim */

static char g_dir[PATH_MAX]; /* the temporary directory holding keys and tokens */
static char g_script[PATH_MAX];

/* ---- helpers ----------------------------------------------------------- */

static char *path_in(const char *name)
{
    return xasprintf("%s/%s", g_dir, name);
}

/* new: free(). The whole file, or NULL. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    buf_t b;
    buf_init(&b, 0);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        buf_append(&b, chunk, n);
    fclose(f);
    return b.data ? b.data : xstrdup("");
}

/* new: free(). The token of case name (DIR/<name>.jwt). */
static char *token(const char *name)
{
    char *file = xasprintf("%s/%s.jwt", g_dir, name);
    char *t = slurp(file);
    if (!t)
        fail_msg("no token file %s", file);
    free(file);
    return t;
}

static void copy_file(const char *from_name, const char *to_name)
{
    char *from = path_in(from_name), *to = path_in(to_name), *tmp = xasprintf("%s.tmp", to);
    char *data = slurp(from);
    assert_non_null(data);
    FILE *f = fopen(tmp, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, strlen(data), f), strlen(data));
    assert_int_equal(fclose(f), 0);
    assert_int_equal(rename(tmp, to), 0); /* atomic, like a real key rollover */
    free(data);
    free(from);
    free(to);
    free(tmp);
}

static int run_script(const char *args)
{
    char *cmd = xasprintf(PYTHON " '%s' %s", g_script, args);
    int rc = system(cmd);
    free(cmd);
    return rc;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) && errno == EINTR)
        ;
}

static auth_settings base_settings(const char *jwks_name)
{
    static char url[PATH_MAX + 128]; /* room for "file://", the directory and the file name */
    snprintf(url, sizeof url, "file://%.*s/%.64s", (int)(PATH_MAX - 1), g_dir, jwks_name);
    auth_settings s = {.jwks_url = url,
                       .tenants = TENANT,
                       .audiences = AUDIENCE,
                       .clock_skew_seconds = 300,
                       .required_scope = "access_as_user"};
    return s;
}

static auth_verifier *verifier_for(const auth_settings *s)
{
    char err[256] = "";
    auth_verifier *v = auth_verifier_new(s, err, sizeof err);
    if (!v)
        fail_msg("auth_verifier_new: %s", err);
    return v;
}

/* Verifies "Bearer <token of case>"; returns the status, fills id and reason. */
static int verify_case(auth_verifier *v, const char *name, auth_identity *id, char *reason,
                       size_t len)
{
    char *t = token(name);
    char *header = xasprintf("Bearer %s", t);
    int rc = auth_verify(v, header, id, reason, len);
    free(header);
    free(t);
    return rc;
}

static void expect_ok(auth_verifier *v, const char *name, auth_identity *id)
{
    char reason[160] = "";
    int rc = verify_case(v, name, id, reason, sizeof reason);
    if (rc != RST_OK)
        fail_msg("%s: refused: %s", name, reason);
}

static void expect_refused(auth_verifier *v, const char *name, const char *want)
{
    char reason[160] = "";
    auth_identity id;
    int rc = verify_case(v, name, &id, reason, sizeof reason);
    if (rc != RST_EINVAL)
        fail_msg("%s: expected refusal '%s', got %d", name, want, rc);
    if (strcmp(reason, want))
        fail_msg("%s: expected '%s', got '%s'", name, want, reason);
    assert_string_equal(id.oid, ""); /* nothing leaks out of a refusal */
}

/* ---- fixture ----------------------------------------------------------- */

static int group_setup(void **state)
{
    (void)state;
    log_set_level(LOG_ERROR); /* keep the cmocka output readable */
    const char *src = __FILE__;
    const char *slash = strrchr(src, '/');
    snprintf(g_script, sizeof g_script, "%.*s/mint_tokens.py", slash ? (int)(slash - src) : 1,
             slash ? src : ".");
    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/roastery-auth-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(g_dir)) {
        fprintf(stderr, "test_auth: mkdtemp: %s\n", strerror(errno));
        return -1;
    }
    char *args = xasprintf("all '%s'", g_dir);
    int rc = run_script(args);
    free(args);
    if (rc != 0) {
        fprintf(stderr,
                "test_auth: %s failed (needs Debian's python3-jwt and "
                "python3-cryptography: apt-get install python3-jwt python3-cryptography)\n",
                g_script);
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    if (g_dir[0] && strncmp(g_dir + strlen(g_dir) - 20, "roastery-auth-", 14) == 0) {
        char *cmd = xasprintf("rm -rf '%s'", g_dir);
        if (system(cmd) != 0)
            fprintf(stderr, "test_auth: could not remove %s\n", g_dir);
        free(cmd);
    }
    metrics_reset();
    return 0;
}

/* ---- roles and settings ------------------------------------------------ */

static void test_role_names(void **state)
{
    (void)state;
    assert_int_equal(auth_role_parse("PlatformAdmin"), AUTH_ROLE_PLATFORM_ADMIN);
    assert_int_equal(auth_role_parse("DataScientist"), AUTH_ROLE_DATA_SCIENTIST);
    assert_int_equal(auth_role_parse("StoreManager"), AUTH_ROLE_STORE_MANAGER);
    assert_int_equal(auth_role_parse("platformadmin"), 0);
    assert_int_equal(auth_role_parse(""), 0);
    assert_int_equal(auth_role_parse(NULL), 0);
    char buf[64];
    auth_roles_format(AUTH_ROLE_PLATFORM_ADMIN | AUTH_ROLE_STORE_MANAGER, buf, sizeof buf);
    assert_string_equal(buf, "PlatformAdmin,StoreManager");
    auth_roles_format(7, buf, sizeof buf);
    assert_string_equal(buf, "PlatformAdmin,DataScientist,StoreManager");
    auth_roles_format(0, buf, sizeof buf);
    assert_string_equal(buf, "");
    auth_roles_format(7, buf, 20); /* no half names */
    assert_string_equal(buf, "PlatformAdmin");
}

static void expect_bad_settings(const auth_settings *s, const char *err_part)
{
    char err[256] = "";
    auth_verifier *v = auth_verifier_new(s, err, sizeof err);
    assert_null(v);
    if (!strstr(err, err_part))
        fail_msg("expected '%s' in '%s'", err_part, err);
    assert_null(strchr(err, '\n'));
}

static void test_bad_settings(void **state)
{
    (void)state;
    auth_settings s = base_settings("jwks.json");
    s.role_map = "Platform.Admin=PlatformAdmin,Data.Scientist=Scientist";
    expect_bad_settings(&s, "unknown role 'Scientist'");
    s.role_map = "Platform.Admin";
    expect_bad_settings(&s, "is not claim=Role");
    s = base_settings("jwks.json");
    s.tenants = " , ";
    expect_bad_settings(&s, "tenant");
    s = base_settings("jwks.json");
    s.tenants = "abc/../x";
    expect_bad_settings(&s, "not a tenant GUID");
    s = base_settings("jwks.json");
    s.audiences = NULL;
    expect_bad_settings(&s, "audiences");
    s = base_settings("jwks.json");
    s.required_scope = "a b";
    expect_bad_settings(&s, "single scope");
    static const char *const bad_urls[] = {"http://example.com/keys",
                                           "http://localhost.evil.example/keys",
                                           "ftp://x/keys",
                                           "file://relative/keys.json",
                                           "https:///nohost",
                                           "https://a b/",
                                           "",
                                           NULL};
    for (size_t i = 0; bad_urls[i]; i++) {
        s = base_settings("jwks.json");
        s.jwks_url = bad_urls[i];
        expect_bad_settings(&s, "JWKS URL");
    }
    s.jwks_url = NULL;
    expect_bad_settings(&s, "JWKS URL");
    /* The accepted forms. */
    static const char *const good_urls[] = {
        "https://login.microsoftonline.com/{tenant}/discovery/v2.0/keys",
        "http://127.0.0.1:8080/keys",
        "http://localhost/keys",
        "http://[::1]:9/k",
        "file:///tmp/keys.json",
        NULL};
    for (size_t i = 0; good_urls[i]; i++) {
        s = base_settings("jwks.json");
        s.jwks_url = good_urls[i];
        auth_verifier_free(verifier_for(&s));
    }
    auth_verifier_free(NULL);
}

/* ---- valid tokens ------------------------------------------------------ */

static void test_valid_tokens_per_role(void **state)
{
    (void)state;
    auth_settings s = base_settings("jwks.json");
    auth_verifier *v = verifier_for(&s);
    auth_identity id;
    static const struct {
        const char *name;
        unsigned roles;
    } cases[] = {
        {"platform_admin", AUTH_ROLE_PLATFORM_ADMIN},
        {"data_scientist", AUTH_ROLE_DATA_SCIENTIST},
        {"store_manager", AUTH_ROLE_STORE_MANAGER},
        {"multi_roles", AUTH_ROLE_PLATFORM_ADMIN | AUTH_ROLE_STORE_MANAGER},
        {"no_roles", 0},
        {"mapped_roles", 0}, /* Platform.Admin etc. mean nothing without a role map */
        {"typ_at_jwt", AUTH_ROLE_DATA_SCIENTIST}, /* RFC 9068 typ, which libjwt refuses */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        expect_ok(v, cases[i].name, &id);
        assert_int_equal(id.roles, cases[i].roles);
        assert_string_equal(id.oid, OID);
        assert_string_equal(id.tid, TENANT);
        assert_string_equal(id.name, "Test Person");
        assert_int_equal(id.delegated, 0);
        long long now = now_ms_wall() / 1000;
        assert_true(id.exp > now + 3000 && id.exp <= now + 3600);
        /* Twice: the second answer comes from the verified-token cache. */
        auth_identity again;
        expect_ok(v, cases[i].name, &again);
        assert_memory_equal(&id, &again, sizeof id);
    }
    expect_ok(v, "name_fallback", &id);
    assert_string_equal(id.name, "pu@globojava.example");
    expect_ok(v, "oid_as_name", &id);
    assert_string_equal(id.name, OID);
    /* Scheme is case-insensitive; surrounding blanks are tolerated. */
    char *t = token("store_manager");
    char *h = xasprintf("  bearer   %s  ", t);
    char reason[160];
    assert_int_equal(auth_verify(v, h, &id, reason, sizeof reason), RST_OK);
    assert_int_equal(id.roles, AUTH_ROLE_STORE_MANAGER);
    free(h);
    free(t);
    auth_verifier_free(v);
}

static void test_role_map(void **state)
{
    (void)state;
    auth_settings s = base_settings("jwks.json");
    s.role_map = " Platform.Admin = PlatformAdmin , Data.Scientist=DataScientist,"
                 "Store.Manager=StoreManager";
    auth_verifier *v = verifier_for(&s);
    auth_identity id;
    expect_ok(v, "mapped_roles", &id);
    assert_int_equal(id.roles, AUTH_ROLE_PLATFORM_ADMIN | AUTH_ROLE_DATA_SCIENTIST);
    /* The plain names are not mapped any more. */
    expect_ok(v, "platform_admin", &id);
    assert_int_equal(id.roles, 0);
    auth_verifier_free(v);
}

static void test_delegated_scope(void **state)
{
    (void)state;
    auth_settings s = base_settings("jwks.json");
    s.required_scope = NULL; /* defaults to access_as_user */
    auth_verifier *v = verifier_for(&s);
    auth_identity id;
    expect_ok(v, "delegated_ok", &id);
    assert_int_equal(id.delegated, 1);
    assert_int_equal(id.roles, 0);
    expect_refused(v, "delegated_noscope", "required scope missing");
    expect_refused(v, "delegated_prefix", "required scope missing");
    auth_verifier_free(v);

    s.required_scope = "User.Read";
    v = verifier_for(&s);
    expect_ok(v, "delegated_noscope", &id);
    assert_int_equal(id.delegated, 1);
    expect_refused(v, "delegated_ok", "required scope missing");
    auth_verifier_free(v);
}

/* ---- time -------------------------------------------------------------- */

static void test_time_claims(void **state)
{
    (void)state;
    auth_settings s = base_settings("jwks.json");
    auth_verifier *v = verifier_for(&s);
    auth_identity id;
    expect_refused(v, "expired", "token expired");
    expect_refused(v, "not_yet_valid", "token not yet valid");
    expect_refused(v, "iat_future", "issued in the future");
    expect_ok(v, "expired_in_skew", &id); /* 60 s past exp, skew 300 */
    expect_refused(v, "no_exp", "token has no expiry");
    expect_refused(v, "exp_string", "token is malformed");
    auth_verifier_free(v);

    s.clock_skew_seconds = 0;
    v = verifier_for(&s);
    expect_refused(v, "expired_in_skew", "token expired");
    auth_verifier_free(v);

    s.clock_skew_seconds = -1; /* the default, 300 s */
    v = verifier_for(&s);
    expect_ok(v, "expired_in_skew", &id);
    auth_verifier_free(v);
}

/* ---- issuer, audience, tenant ------------------------------------------ */

static void test_issuer_audience_tenant(void **state)
{
    (void)state;
    auth_settings s = base_settings("jwks.json");
    auth_verifier *v = verifier_for(&s);
    auth_identity id;
    expect_refused(v, "wrong_iss", "issuer not accepted");
    expect_refused(v, "wrong_aud", "audience not accepted");
    expect_refused(v, "aud_array", "audience not accepted");
    expect_refused(v, "wrong_tid", "tenant not accepted");
    expect_refused(v, "v1", "issuer not accepted");
    expect_refused(v, "no_oid", "token has no oid");
    auth_verifier_free(v);

    s.audiences = "api://elsewhere, " CLIENT_ID;
    s.tenants = OTHER_TENANT "," TENANT;
    s.accept_v1 = 1;
    v = verifier_for(&s);
    expect_ok(v, "aud_array", &id);
    expect_refused(v, "platform_admin", "audience not accepted");
    auth_verifier_free(v);

    s.audiences = AUDIENCE;
    v = verifier_for(&s);
    expect_ok(v, "v1", &id);
    assert_string_equal(id.tid, TENANT);
    expect_ok(v, "wrong_tid", &id); /* now an accepted tenant, with its own issuer */
    assert_string_equal(id.tid, OTHER_TENANT);
    expect_refused(v, "wrong_iss", "issuer not accepted"); /* iss names another tenant */
    auth_verifier_free(v);
}

/* ---- attacks and malformed input --------------------------------------- */

static void test_algorithms_refused(void **state)
{
    (void)state;
    auth_settings s = base_settings("jwks.json");
    auth_verifier *v = verifier_for(&s);
    expect_refused(v, "alg_none", "algorithm none is not accepted");
    expect_refused(v, "hs256_pubkey", "algorithm HS256 is not accepted");
    expect_refused(v, "rs384", "algorithm RS384 is not accepted");
    expect_refused(v, "ps256", "algorithm PS256 is not accepted");
    expect_refused(v, "es256", "algorithm ES256 is not accepted");
    expect_refused(v, "no_kid", "token has no key id");
    expect_refused(v, "crit", "critical header parameters are not supported");
    auth_verifier_free(v);
}

static void test_tampered_and_malformed(void **state)
{
    (void)state;
    auth_settings s = base_settings("jwks.json");
    auth_verifier *v = verifier_for(&s);
    auth_identity id;
    expect_ok(v, "data_scientist", &id); /* cached now: tampering must still be caught */
    expect_refused(v, "tampered", "signature does not verify");
    expect_refused(v, "truncated", "signature does not verify");
    expect_refused(v, "two_parts", "token is malformed");
    expect_refused(v, "not_json", "token is malformed");
    expect_refused(v, "huge_header", "token is too long");

    static const struct {
        const char *header, *reason;
    } raw[] = {
        {"Bearer a.b", "token is malformed"},
        {"Bearer a.b.c.d", "token is malformed"},
        {"Bearer .b.c", "token is malformed"},
        {"Bearer a..c", "token is malformed"},
        {"Bearer a=.b.c", "token is malformed"},
        {"Bearer e30.e30.", "token is malformed"}, /* {} header: no alg */
        {"Bearer !!!.e30.e30", "token is malformed"},
        {"Bearer", "missing bearer token"},
        {"Bearer    ", "missing bearer token"},
        {"", "authorization is not a bearer token"},
        {"Basic dXNlcjpwYXNz", "authorization is not a bearer token"},
        {"Bearerxyz.a.b", "authorization is not a bearer token"},
    };
    for (size_t i = 0; i < sizeof raw / sizeof raw[0]; i++) {
        char reason[160] = "";
        assert_int_equal(auth_verify(v, raw[i].header, &id, reason, sizeof reason), RST_EINVAL);
        if (strcmp(reason, raw[i].reason))
            fail_msg("'%s': expected '%s', got '%s'", raw[i].header, raw[i].reason, reason);
    }
    /* No Bearer prefix at all: the bare token. */
    char *t = token("platform_admin");
    char reason[160] = "";
    assert_int_equal(auth_verify(v, t, &id, reason, sizeof reason), RST_EINVAL);
    assert_string_equal(reason, "authorization is not a bearer token");
    free(t);
    assert_int_equal(auth_verify(v, NULL, &id, reason, sizeof reason), RST_EINVAL);
    assert_string_equal(reason, "missing bearer token");
    /* A tiny reason buffer is still terminated. */
    char tiny[8];
    assert_int_equal(auth_verify(v, NULL, &id, tiny, sizeof tiny), RST_EINVAL);
    assert_string_equal(tiny, "missing");
    /* A 16 KiB + 1 token of junk is refused on length before anything else. */
    char *big = xmalloc(AUTH_MAX_TOKEN + 16);
    memcpy(big, "Bearer ", 7);
    memset(big + 7, 'A', AUTH_MAX_TOKEN + 1);
    big[7 + AUTH_MAX_TOKEN + 1] = '\0';
    assert_int_equal(auth_verify(v, big, &id, reason, sizeof reason), RST_EINVAL);
    assert_string_equal(reason, "token is too long");
    free(big);
    auth_verifier_free(v);
}

/* Size and nesting are refused before any JSON parser runs (review 2026-12,
 * finding 1: a 1,000-deep header crashed the server before the signature was
 * looked at). Every token here is genuinely signed with key-a. */
static void test_size_and_nesting_refused_before_parsing(void **state)
{
    (void)state;
    auth_settings s = base_settings("jwks.json");
    auth_verifier *v = verifier_for(&s);
    auth_identity id;
    expect_refused(v, "deep_header", "token header is too long");
    expect_refused(v, "header_depth_33", "token header is nested too deeply");
    expect_refused(v, "deep_payload", "token payload is nested too deeply");
    expect_refused(v, "payload_depth_33", "token payload is nested too deeply");
    expect_refused(v, "long_header", "token header is too long");
    expect_refused(v, "long_payload", "token payload is too long");
    expect_ok(v, "payload_depth_32", &id); /* the limit itself is fine */
    assert_string_equal(id.oid, OID);
    /* unsigned, by hand: the header is judged before any key is looked up */
    buf_t b;
    buf_init(&b, 0);
    buf_puts(&b, "Bearer ");
    char hdr[128];
    size_t n = 0;
    n += (size_t)snprintf(hdr, sizeof hdr, "{\"alg\":\"RS256\",\"kid\":\"key-a\",\"x\":");
    for (int i = 0; i < 33; i++)
        hdr[n++] = '[';
    hdr[n] = '\0';
    static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for (size_t i = 0; i < n; i += 3) { /* base64url by hand, unpadded */
        unsigned x = (unsigned)(unsigned char)hdr[i] << 16;
        if (i + 1 < n)
            x |= (unsigned)(unsigned char)hdr[i + 1] << 8;
        if (i + 2 < n)
            x |= (unsigned char)hdr[i + 2];
        char q[4] = {B64[x >> 18 & 63], B64[x >> 12 & 63], B64[x >> 6 & 63], B64[x & 63]};
        buf_append(&b, q, i + 2 < n ? 4 : i + 1 < n ? 3 : 2);
    }
    buf_puts(&b, ".e30.AAAA");
    char reason[160] = "";
    assert_int_equal(auth_verify(v, b.data, &id, reason, sizeof reason), RST_EINVAL);
    assert_string_equal(reason, "token header is nested too deeply");
    buf_free(&b);
    auth_verifier_free(v);
}

/* A token the verifier refused must not show up in the reason or in any log
 * line, whatever the case. */
static void test_reason_never_contains_token(void **state)
{
    (void)state;
    static const char *const cases[] = {"platform_admin",
                                        "expired",
                                        "not_yet_valid",
                                        "iat_future",
                                        "wrong_iss",
                                        "wrong_aud",
                                        "wrong_tid",
                                        "v1",
                                        "key_b",
                                        "alg_none",
                                        "hs256_pubkey",
                                        "rs384",
                                        "es256",
                                        "no_kid",
                                        "tampered",
                                        "truncated",
                                        "two_parts",
                                        "huge_header",
                                        "no_oid",
                                        "exp_string",
                                        "crit",
                                        "not_json",
                                        "delegated_noscope",
                                        "key_small",
                                        NULL};
    char *logpath = path_in("captured.log");
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(saved >= 0 && fd >= 0);
    dup2(fd, STDERR_FILENO);
    close(fd);
    log_set_level(LOG_DEBUG);

    auth_settings s = base_settings("jwks.json");
    s.clock_skew_seconds = 0;
    auth_verifier *v = verifier_for(&s);
    auth_verifier_set_jwks_refetch_ms(v, 0);
    for (size_t i = 0; cases[i]; i++) {
        char *t = token(cases[i]);
        char *h = xasprintf("Bearer %s", t);
        char reason[512] = "";
        auth_identity id;
        auth_verify(v, h, &id, reason, sizeof reason);
        auth_verify(v, t, &id, reason, sizeof reason); /* without the scheme, too */
        /* No segment of the token, nor any 12-character slice of it. */
        for (size_t off = 0; off + 12 <= strlen(t); off += 6) {
            char slice[13];
            memcpy(slice, t + off, 12);
            slice[12] = '\0';
            if (strstr(reason, slice))
                fail_msg("%s: reason '%s' holds part of the token", cases[i], reason);
        }
        free(h);
        free(t);
    }
    auth_verifier_free(v);

    log_set_level(LOG_ERROR);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    char *logged = slurp(logpath);
    assert_non_null(logged);
    assert_non_null(strstr(logged, "jwks")); /* the capture did see our lines */
    for (size_t i = 0; cases[i]; i++) {
        char *t = token(cases[i]);
        char *dot = strchr(t, '.');
        /* The payload segment is unique per token; look for its first 24 characters. */
        if (dot && strlen(dot + 1) > 24) {
            char probe[25];
            memcpy(probe, dot + 1, 24);
            probe[24] = '\0';
            if (strstr(logged, probe))
                fail_msg("%s: the log holds part of the token", cases[i]);
        }
        free(t);
    }
    free(logged);
    free(logpath);
}

/* ---- keys: rollover, outage, bad keys ---------------------------------- */

static void test_key_rollover(void **state)
{
    (void)state;
    copy_file("jwks.json", "live-rollover.json");
    auth_settings s = base_settings("live-rollover.json");
    auth_verifier *v = verifier_for(&s);
    auth_verifier_set_jwks_refetch_ms(v, 1500); /* room for a loaded machine */
    auth_identity id;
    expect_ok(v, "platform_admin", &id); /* first fetch */
    expect_refused(v, "key_b", "unknown signing key");
    copy_file("jwks-rotated.json", "live-rollover.json");
    /* Within the interval the new key is not fetched: bad kids cannot hammer the IdP. */
    expect_refused(v, "key_b", "unknown signing key");
    sleep_ms(1600);
    expect_ok(v, "key_b", &id);
    assert_int_equal(id.roles, AUTH_ROLE_STORE_MANAGER);
    expect_ok(v, "data_scientist", &id); /* key-a is still published */
    auth_verifier_free(v);
}

static void test_unusable_keys_skipped(void **state)
{
    (void)state;
    auth_settings s = base_settings("jwks-rotated.json");
    auth_verifier *v = verifier_for(&s);
    auth_verifier_set_jwks_refetch_ms(v, 0);
    auth_identity id;
    expect_ok(v, "key_b", &id);
    expect_refused(v, "key_small", "unknown signing key"); /* 1024-bit modulus */
    expect_refused(v, "key_enc", "unknown signing key");   /* use: enc */
    auth_verifier_free(v);
}

static void test_jwks_endpoint_down(void **state)
{
    (void)state;
    copy_file("jwks.json", "live-down.json");
    auth_settings s = base_settings("live-down.json");
    auth_verifier *v = verifier_for(&s);
    auth_verifier_set_jwks_refetch_ms(v, 0);
    auth_identity id;
    expect_ok(v, "data_scientist", &id);
    char *live = path_in("live-down.json");
    assert_int_equal(unlink(live), 0);
    free(live);
    expect_refused(v, "key_b", "unknown signing key"); /* refetch fails: counted, logged */
    expect_ok(v, "store_manager", &id);                /* not cached: the cached key works */
    assert_int_equal(id.roles, AUTH_ROLE_STORE_MANAGER);
    buf_t m;
    buf_init(&m, 0);
    metrics_render(&m);
    assert_non_null(strstr(m.data, "roastery_jwks_fetch_failures_total"));
    buf_free(&m);
    auth_verifier_free(v);

    /* Nothing listens on 127.0.0.1:1: no key at all is a distinct reason. */
    s.jwks_url = "http://127.0.0.1:1/keys";
    v = verifier_for(&s);
    expect_refused(v, "platform_admin", "signing keys are unavailable");
    auth_verifier_free(v);
}

/* ---- a JWKS endpoint over HTTP ----------------------------------------- */

/* A tiny loopback HTTP server: /keys serves jwks.json, /huge 2 MiB of JSON
 * without a length, anything else 404. */
typedef struct {
    int fd;
    int port;
    volatile int stop;
    char *jwks;
} http_stub;

static void stub_send(int fd, const char *data, size_t len)
{
    while (len) {
        ssize_t w = send(fd, data, len, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        data += w;
        len -= (size_t)w;
    }
}

static void *stub_serve(void *p)
{
    http_stub *st = p;
    while (!st->stop) {
        struct pollfd pfd = {.fd = st->fd, .events = POLLIN};
        if (poll(&pfd, 1, 50) <= 0)
            continue;
        int c = accept(st->fd, NULL, NULL);
        if (c < 0)
            continue;
        char req[2048];
        size_t got = 0;
        while (got < sizeof req - 1) { /* the whole request head, however it arrives */
            ssize_t n = recv(c, req + got, sizeof req - 1 - got, 0);
            if (n <= 0)
                break;
            got += (size_t)n;
            req[got] = '\0';
            if (strstr(req, "\r\n\r\n"))
                break;
        }
        req[got] = '\0';
        if (!strncmp(req, "GET /keys ", 10)) {
            char *head = xasprintf("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                   "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                                   strlen(st->jwks));
            stub_send(c, head, strlen(head));
            stub_send(c, st->jwks, strlen(st->jwks));
            free(head);
        } else if (!strncmp(req, "GET /huge ", 10)) {
            static const char head[] = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{\"keys\":[";
            stub_send(c, head, sizeof head - 1);
            char *junk = xmalloc(64 * 1024);
            memset(junk, ' ', 64 * 1024);
            for (int i = 0; i < 32; i++)
                stub_send(c, junk, 64 * 1024);
            free(junk);
        } else {
            static const char nf[] = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n"
                                     "Connection: close\r\n\r\n";
            stub_send(c, nf, sizeof nf - 1);
        }
        close(c);
    }
    return NULL;
}

static void test_jwks_over_http(void **state)
{
    (void)state;
    char *jwks_path = path_in("jwks.json");
    http_stub st = {.jwks = slurp(jwks_path)};
    free(jwks_path);
    st.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(st.fd >= 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof addr;
    assert_int_equal(bind(st.fd, (struct sockaddr *)&addr, sizeof addr), 0);
    assert_int_equal(listen(st.fd, 16), 0);
    assert_int_equal(getsockname(st.fd, (struct sockaddr *)&addr, &alen), 0);
    st.port = ntohs(addr.sin_port);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, stub_serve, &st), 0);

    char url[128];
    auth_settings s = base_settings("unused");
    s.jwks_url = url;
    auth_identity id;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/keys", st.port);
    auth_verifier *v = verifier_for(&s);
    expect_ok(v, "platform_admin", &id);
    auth_verifier_free(v);
    snprintf(url, sizeof url, "http://localhost:%d/missing", st.port); /* 404 */
    v = verifier_for(&s);
    expect_refused(v, "platform_admin", "signing keys are unavailable");
    auth_verifier_free(v);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/huge", st.port); /* over the 1 MiB cap */
    v = verifier_for(&s);
    expect_refused(v, "platform_admin", "signing keys are unavailable");
    auth_verifier_free(v);

    st.stop = 1;
    pthread_join(th, NULL);
    close(st.fd);
    free(st.jwks);
}

static void test_tenant_in_jwks_url(void **state)
{
    (void)state;
    char url[PATH_MAX + 32];
    snprintf(url, sizeof url, "file://%s/{tenant}.json", g_dir);
    auth_settings s = base_settings("unused");
    s.jwks_url = url;
    s.tenants = TENANT ", " OTHER_TENANT; /* the first one names the key document */
    auth_verifier *v = verifier_for(&s);
    auth_identity id;
    expect_ok(v, "platform_admin", &id);
    auth_verifier_free(v);
}

/* ---- verified-token cache ---------------------------------------------- */

static void test_cache_expires(void **state)
{
    (void)state;
    char *args = xasprintf("short '%s' 4", g_dir);
    assert_int_equal(run_script(args), 0);
    free(args);
    copy_file("jwks.json", "live-cache.json");
    auth_settings s = base_settings("live-cache.json");
    s.clock_skew_seconds = 0;
    auth_verifier *v = verifier_for(&s);
    auth_verifier_set_jwks_refetch_ms(v, 0);
    auth_identity id;
    expect_ok(v, "short", &id);
    long long exp = id.exp;
    /* Retire key-a: a token not yet seen fails, the cached one still passes,
     * which shows that the cache answers without the signature check. */
    copy_file("jwks-b-only.json", "live-cache.json");
    expect_ok(v, "key_b", &id);
    expect_refused(v, "store_manager", "unknown signing key");
    expect_ok(v, "short", &id);
    while (now_ms_wall() / 1000 < exp)
        sleep_ms(200);
    expect_refused(v, "short", "token expired"); /* from the cache entry */
    /* The expired entry is dropped: the token now goes the long way (its key is gone). */
    expect_refused(v, "short", "unknown signing key");
    auth_verifier_free(v);
}

/* ---- threads ----------------------------------------------------------- */

typedef struct {
    auth_verifier *v;
    char *ok[3];
    char *bad[2];
    int failures;
} thread_arg;

static void *hammer(void *p)
{
    thread_arg *a = p;
    for (int i = 0; i < 60; i++) {
        auth_identity id;
        char reason[160];
        char *h = xasprintf("Bearer %s", a->ok[i % 3]);
        if (auth_verify(a->v, h, &id, reason, sizeof reason) != RST_OK)
            a->failures++;
        free(h);
        h = xasprintf("Bearer %s", a->bad[i % 2]);
        if (auth_verify(a->v, h, &id, reason, sizeof reason) != RST_EINVAL)
            a->failures++;
        free(h);
    }
    return NULL;
}

static void test_concurrent_verification(void **state)
{
    (void)state;
    enum { THREADS = 8 };
    auth_settings s = base_settings("jwks.json");
    auth_verifier *v = verifier_for(&s);
    auth_verifier_set_jwks_refetch_ms(v, 0); /* every unknown kid refetches: races the cache */
    pthread_t th[THREADS];
    thread_arg args[THREADS];
    for (int i = 0; i < THREADS; i++) {
        args[i] = (thread_arg){
            .v = v,
            .ok = {token("platform_admin"), token("data_scientist"), token("store_manager")},
            .bad = {token("key_b"), token("tampered")}};
        assert_int_equal(pthread_create(&th[i], NULL, hammer, &args[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].failures, 0);
        for (int k = 0; k < 3; k++)
            free(args[i].ok[k]);
        for (int k = 0; k < 2; k++)
            free(args[i].bad[k]);
    }
    auth_verifier_free(v);
}

/* ---- base64url --------------------------------------------------------- */

static void test_b64url(void **state)
{
    (void)state;
    unsigned char *out = NULL;
    size_t n = 0;
    assert_int_equal(jwks_b64url_decode("AQAB", 4, &out, &n), RST_OK);
    assert_int_equal(n, 3);
    assert_memory_equal(out, "\x01\x00\x01", 3);
    free(out);
    assert_int_equal(jwks_b64url_decode("AQ", 2, &out, &n), RST_OK); /* unpadded, one byte */
    assert_int_equal(n, 1);
    assert_int_equal(out[0], 1);
    free(out);
    assert_int_equal(jwks_b64url_decode("", 0, &out, &n), RST_OK);
    assert_int_equal(n, 0);
    free(out);
    assert_int_equal(jwks_b64url_decode("AQ==", 4, &out, &n), RST_EINVAL);
    assert_null(out);
    assert_int_equal(jwks_b64url_decode("A+/B", 4, &out, &n), RST_EINVAL);
    assert_int_equal(jwks_b64url_decode("A", 1, &out, &n), RST_EINVAL);
    assert_int_equal(jwks_b64url_decode("AR", 2, &out, &n), RST_EINVAL); /* non-canonical */
    assert_int_equal(jwks_b64url_decode(" AQAB", 5, &out, &n), RST_EINVAL);
    const unsigned char all[] = {0xfb, 0xff, 0xbf, 0x00, 0x10};
    for (size_t len = 0; len <= sizeof all; len++) {
        char *enc = jwks_b64url_encode(all, len);
        assert_null(strpbrk(enc, "+/="));
        assert_int_equal(jwks_b64url_decode(enc, strlen(enc), &out, &n), RST_OK);
        assert_int_equal(n, len);
        assert_memory_equal(out, all, len);
        free(out);
        free(enc);
    }
    char *enc = jwks_b64url_encode((const unsigned char *)"\xfb\xff", 2);
    assert_string_equal(enc, "-_8");
    free(enc);
}

/* ---- the dev issuer ---------------------------------------------------- */

static void test_devissuer(void **state)
{
    (void)state;
    char *data = path_in("data/nested");
    char err[256] = "";
    devissuer *d = NULL;
    /* A missing parent is an error, with a message. */
    assert_int_not_equal(devissuer_open(data, &d, err, sizeof err), RST_OK);
    assert_null(d);
    assert_non_null(strstr(err, "cannot create"));
    free(data);
    data = path_in("data");
    assert_int_equal(devissuer_open(data, &d, err, sizeof err), RST_OK);
    assert_non_null(d);

    char *keyfile = xasprintf("%s/dev-issuer/key.pem", data);
    struct stat st;
    assert_int_equal(stat(keyfile, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    const char *jwks = devissuer_jwks_json(d);
    assert_non_null(strstr(jwks, "\"alg\":\"RS256\""));
    assert_non_null(strstr(jwks, "\"use\":\"sig\""));
    assert_non_null(strstr(jwks, devissuer_kid(d)));
    assert_int_equal(strlen(devissuer_kid(d)), 43); /* base64url of a SHA-256 */
    char *kid = xstrdup(devissuer_kid(d));

    char *url = devissuer_jwks_url(d);
    assert_int_equal(strncmp(url, "file:///", 8), 0);
    auth_settings s = {.jwks_url = url,
                       .tenants = DEVISSUER_TENANT,
                       .audiences = DEVISSUER_AUDIENCE,
                       .clock_skew_seconds = -1};
    auth_verifier *v = verifier_for(&s);

    char *tok = devissuer_mint(d, "ada", AUTH_ROLE_DATA_SCIENTIST | AUTH_ROLE_STORE_MANAGER, 600);
    assert_non_null(tok);
    char *h = xasprintf("Bearer %s", tok);
    auth_identity id;
    char reason[160] = "";
    if (auth_verify(v, h, &id, reason, sizeof reason) != RST_OK)
        fail_msg("dev token refused: %s", reason);
    assert_int_equal(id.roles, AUTH_ROLE_DATA_SCIENTIST | AUTH_ROLE_STORE_MANAGER);
    assert_string_equal(id.name, "ada");
    assert_string_equal(id.tid, DEVISSUER_TENANT);
    assert_int_equal(strlen(id.oid), 36);
    assert_int_equal(id.oid[14], '4'); /* v4-shaped */
    assert_non_null(strchr("89ab", id.oid[19]));
    assert_int_equal(id.delegated, 0);
    char oid[64];
    snprintf(oid, sizeof oid, "%s", id.oid);

    /* PyJWT accepts it too. */
    char *tokfile = path_in("dev.jwt");
    FILE *f = fopen(tokfile, "w");
    assert_non_null(f);
    fputs(tok, f);
    fclose(f);
    char *args = xasprintf("verify '%s/dev-issuer/jwks.json' '%s' %s >/dev/null", data, tokfile,
                           DEVISSUER_AUDIENCE);
    assert_int_equal(run_script(args), 0);
    free(args);
    free(tokfile);

    /* Same user, same oid; another user, another oid; no roles is fine. */
    char *tok2 = devissuer_mint(d, "ada", 0, 60);
    char *h2 = xasprintf("Bearer %s", tok2);
    assert_int_equal(auth_verify(v, h2, &id, reason, sizeof reason), RST_OK);
    assert_string_equal(id.oid, oid);
    assert_int_equal(id.roles, 0);
    free(tok2);
    free(h2);
    tok2 = devissuer_mint(d, "bob", AUTH_ROLE_PLATFORM_ADMIN, 60);
    h2 = xasprintf("Bearer %s", tok2);
    assert_int_equal(auth_verify(v, h2, &id, reason, sizeof reason), RST_OK);
    assert_string_not_equal(id.oid, oid);
    assert_int_equal(id.roles, AUTH_ROLE_PLATFORM_ADMIN);
    free(tok2);
    free(h2);

    assert_null(devissuer_mint(d, "", 0, 60));
    assert_null(devissuer_mint(d, NULL, 0, 60));
    assert_null(devissuer_mint(d, "ada", 0, 0));
    char longname[200];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_null(devissuer_mint(d, longname, 0, 60));
    devissuer_close(d);
    auth_verifier_free(v);

    /* Reopened: the same key, so earlier tokens still verify. */
    assert_int_equal(devissuer_open(data, &d, err, sizeof err), RST_OK);
    assert_string_equal(devissuer_kid(d), kid);
    char *url2 = devissuer_jwks_url(d);
    assert_string_equal(url, url2);
    v = verifier_for(&s);
    assert_int_equal(auth_verify(v, h, &id, reason, sizeof reason), RST_OK);
    assert_string_equal(id.oid, oid);
    auth_verifier_free(v);
    devissuer_close(d);
    devissuer_close(NULL);

    /* A corrupt key file is an error, never a silent new key. */
    f = fopen(keyfile, "w");
    assert_non_null(f);
    fputs("not a key\n", f);
    fclose(f);
    assert_int_not_equal(devissuer_open(data, &d, err, sizeof err), RST_OK);
    assert_null(d);
    assert_non_null(strstr(err, "RSA private key"));

    free(url2);
    free(url);
    free(h);
    free(tok);
    free(kid);
    free(keyfile);
    free(data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_role_names),
        cmocka_unit_test(test_bad_settings),
        cmocka_unit_test(test_b64url),
        cmocka_unit_test(test_valid_tokens_per_role),
        cmocka_unit_test(test_role_map),
        cmocka_unit_test(test_delegated_scope),
        cmocka_unit_test(test_time_claims),
        cmocka_unit_test(test_issuer_audience_tenant),
        cmocka_unit_test(test_algorithms_refused),
        cmocka_unit_test(test_tampered_and_malformed),
        cmocka_unit_test(test_size_and_nesting_refused_before_parsing),
        cmocka_unit_test(test_reason_never_contains_token),
        cmocka_unit_test(test_key_rollover),
        cmocka_unit_test(test_unusable_keys_skipped),
        cmocka_unit_test(test_jwks_endpoint_down),
        cmocka_unit_test(test_jwks_over_http),
        cmocka_unit_test(test_tenant_in_jwks_url),
        cmocka_unit_test(test_cache_expires),
        cmocka_unit_test(test_concurrent_verification),
        cmocka_unit_test(test_devissuer),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
