/* The dev issuer: a local stand-in for Azure AD so the demo and development
 * need no tenant. It signs with its own RSA key; the verifier trusts it only
 * because ROASTERY_AUTH=dev points the JWKS URL at this key's jwks.json. */
#include "identity/devissuer.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>

#include "identity/auth.h"
#include "identity/jwks.h"
#include "core/log.h"
#include "lib/util.h"

enum { KEY_BITS = 2048, USER_MAX = 128 };

struct devissuer {
    EVP_PKEY *key; /* private; read-only after open, so threads may share it */
    char *dir;     /* absolute path of <data_dir>/dev-issuer */
    char *kid;
    char *jwks_json;
};

/* mkdir that accepts an existing directory. */
static int ensure_dir(const char *path, mode_t mode, char *err, size_t errlen)
{
    struct stat st;
    if (mkdir(path, mode) && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
        return RST_EIO;
    }
    if (stat(path, &st) || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s is not a directory", path);
        return RST_EIO;
    }
    return RST_OK;
}

/* fsync of a directory so a rename or link in it survives a crash. */
static void sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* Writes len bytes to a new unique temporary file in dir with mode; returns
 * its path (new: free) or NULL with err. */
static char *write_temp(const char *dir, const char *base, const void *data, size_t len,
                        mode_t mode, char *err, size_t errlen)
{
    char id[33];
    random_hex_id(id);
    char *tmp = xasprintf("%s/.%s.%s.tmp", dir, base, id);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
        free(tmp);
        return NULL;
    }
    const char *p = data;
    size_t left = len;
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        p += w;
        left -= (size_t)w;
    }
    if (left || fsync(fd)) {
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        free(tmp);
        return NULL;
    }
    close(fd);
    return tmp;
}

static EVP_PKEY *read_key(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (!fstat(fileno(f), &st) && (st.st_mode & 077))
        log_fields(LOG_WARN, "dev issuer key is readable by others",
                   json_pack("{s:s, s:s}", "path", path, "fix", "chmod 600"));
    EVP_PKEY *key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (!key || !EVP_PKEY_is_a(key, "RSA") || EVP_PKEY_get_bits(key) < KEY_BITS) {
        snprintf(err, errlen, "%s: expected an RSA private key of at least %d bits", path,
                 KEY_BITS);
        EVP_PKEY_free(key);
        return NULL;
    }
    return key;
}

/* Loads dir/key.pem, generating it first when it does not exist. */
static EVP_PKEY *load_or_create_key(const char *dir, char *err, size_t errlen)
{
    char *path = xasprintf("%s/key.pem", dir);
    char *tmp = NULL;
    EVP_PKEY *key = NULL, *fresh = NULL;
    BIO *bio = NULL;
    if (access(path, F_OK) == 0 || errno != ENOENT) {
        key = read_key(path, err, errlen);
        goto out;
    }
    fresh = EVP_RSA_gen(KEY_BITS);
    bio = BIO_new(BIO_s_mem());
    char *pem = NULL;
    long pemlen;
    if (!fresh || !bio || !PEM_write_bio_PrivateKey(bio, fresh, NULL, NULL, 0, NULL, NULL) ||
        (pemlen = BIO_get_mem_data(bio, &pem)) <= 0) {
        snprintf(err, errlen, "cannot generate an RSA-%d key", KEY_BITS);
        goto out;
    }
    tmp = write_temp(dir, "key.pem", pem, (size_t)pemlen, 0600, err, errlen);
    if (!tmp)
        goto out;
    /* link() never replaces: if another process won the race, use its key. */
    if (link(tmp, path) == 0) {
        sync_dir(dir);
        key = fresh;
        fresh = NULL;
        log_fields(LOG_INFO, "dev issuer key generated", json_pack("{s:s}", "path", path));
    } else if (errno == EEXIST) {
        key = read_key(path, err, errlen);
    } else {
        snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
    }
    unlink(tmp);
out:
    BIO_free(bio);
    EVP_PKEY_free(fresh);
    free(tmp);
    free(path);
    return key;
}

/* new: free(). base64url of an RSA parameter of key. */
static char *rsa_param_b64(const EVP_PKEY *key, const char *param)
{
    BIGNUM *bn = NULL;
    if (!EVP_PKEY_get_bn_param(key, param, &bn))
        return NULL;
    int n = BN_num_bytes(bn);
    unsigned char *bin = xmalloc((size_t)n);
    BN_bn2bin(bn, bin);
    char *s = jwks_b64url_encode(bin, (size_t)n);
    free(bin);
    BN_free(bn);
    return s;
}

/* Builds kid (RFC 7638 thumbprint) and the JWKS document of d->key. */
static int build_jwks(devissuer *d, char *err, size_t errlen)
{
    char *n = rsa_param_b64(d->key, OSSL_PKEY_PARAM_RSA_N);
    char *e = rsa_param_b64(d->key, OSSL_PKEY_PARAM_RSA_E);
    int rc = RST_EINVAL;
    if (!n || !e) {
        snprintf(err, errlen, "cannot read the public key");
        goto out;
    }
    /* RFC 7638: the required members in lexicographic order, no whitespace. */
    char *canon = xasprintf("{\"e\":\"%s\",\"kty\":\"RSA\",\"n\":\"%s\"}", e, n);
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)canon, strlen(canon), digest);
    free(canon);
    d->kid = jwks_b64url_encode(digest, sizeof digest);
    json_t *doc = json_pack("{s:[{s:s, s:s, s:s, s:s, s:s, s:s}]}", "keys", "kty", "RSA", "use",
                            "sig", "alg", "RS256", "kid", d->kid, "n", n, "e", e);
    d->jwks_json = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (!d->jwks_json) {
        snprintf(err, errlen, "cannot build the JWKS document");
        goto out;
    }
    rc = RST_OK;
out:
    free(n);
    free(e);
    return rc;
}

static int write_jwks(devissuer *d, char *err, size_t errlen)
{
    char *tmp =
        write_temp(d->dir, "jwks.json", d->jwks_json, strlen(d->jwks_json), 0644, err, errlen);
    if (!tmp)
        return RST_EIO;
    char *path = xasprintf("%s/jwks.json", d->dir);
    int rc = RST_OK;
    if (rename(tmp, path)) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        rc = RST_EIO;
    } else {
        sync_dir(d->dir);
    }
    free(path);
    free(tmp);
    return rc;
}

int devissuer_open(const char *data_dir, devissuer **out, char *err, size_t errlen)
{
    *out = NULL;
    err[0] = '\0';
    if (!data_dir || !*data_dir) {
        snprintf(err, errlen, "dev issuer: no data directory");
        return RST_EINVAL;
    }
    int rc = RST_EIO;
    char *sub = xasprintf("%s/dev-issuer", data_dir);
    devissuer *d = xcalloc(1, sizeof *d);
    char real[PATH_MAX];
    /* The data directory is shared: the embedded PostgreSQL, running as its
     * own user, must be able to pass through it. The key's directory is ours. */
    if (ensure_dir(data_dir, 0755, err, errlen) || ensure_dir(sub, 0700, err, errlen))
        goto out;
    if (!realpath(sub, real)) {
        snprintf(err, errlen, "cannot resolve %s: %s", sub, strerror(errno));
        goto out;
    }
    d->dir = xstrdup(real);
    d->key = load_or_create_key(d->dir, err, errlen);
    if (!d->key || (rc = build_jwks(d, err, errlen)) || (rc = write_jwks(d, err, errlen))) {
        rc = rc ? rc : RST_EIO;
        goto out;
    }
    *out = d;
    d = NULL;
    rc = RST_OK;
out:
    devissuer_close(d);
    free(sub);
    return rc;
}

void devissuer_close(devissuer *d)
{
    if (!d)
        return;
    EVP_PKEY_free(d->key);
    free(d->dir);
    free(d->kid);
    free(d->jwks_json);
    free(d);
}

char *devissuer_jwks_url(devissuer *d)
{
    static const char HEX[] = "0123456789ABCDEF";
    buf_t b;
    buf_init(&b, 0);
    buf_puts(&b, "file://");
    char *path = xasprintf("%s/jwks.json", d->dir);
    for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
        if (isalnum(*p) || strchr("/-._~", *p)) {
            buf_append(&b, p, 1);
        } else {
            char esc[3] = {'%', HEX[*p >> 4], HEX[*p & 15]};
            buf_append(&b, esc, 3);
        }
    }
    free(path);
    return b.data;
}

const char *devissuer_jwks_json(devissuer *d)
{
    return d->jwks_json;
}

const char *devissuer_kid(devissuer *d)
{
    return d->kid;
}

/* A v4-shaped UUID from SHA-256 of the user name: the same user always gets
 * the same oid, so their rows survive a new key. */
static void user_oid(const char *user, char out[37])
{
    unsigned char h[SHA256_DIGEST_LENGTH];
    char *salted = xasprintf("roastery-dev-oid:%s", user);
    SHA256((const unsigned char *)salted, strlen(salted), h);
    free(salted);
    h[6] = (unsigned char)((h[6] & 0x0F) | 0x40);
    h[8] = (unsigned char)((h[8] & 0x3F) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", h[0],
             h[1], h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9], h[10], h[11], h[12], h[13],
             h[14], h[15]);
}

/* new: free(). base64url of the compact JSON of obj; steals obj. */
static char *json_segment(json_t *obj)
{
    char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    if (!text)
        return NULL;
    char *s = jwks_b64url_encode((const unsigned char *)text, strlen(text));
    free(text);
    return s;
}

char *devissuer_mint(devissuer *d, const char *user, unsigned roles, int ttl_seconds)
{
    char *result = NULL, *head = NULL, *body = NULL, *input = NULL, *sig64 = NULL;
    unsigned char *sig = NULL;
    EVP_MD_CTX *md = NULL;
    if (!d || !user || !*user || strlen(user) > USER_MAX || ttl_seconds <= 0)
        return NULL;

    char oid[37];
    user_oid(user, oid);
    json_t *role_names = json_array();
    static const unsigned bits[] = {AUTH_ROLE_PLATFORM_ADMIN, AUTH_ROLE_DATA_SCIENTIST,
                                    AUTH_ROLE_STORE_MANAGER};
    for (size_t i = 0; i < sizeof bits / sizeof bits[0]; i++) {
        char name[32];
        if (!(roles & bits[i]))
            continue;
        auth_roles_format(bits[i], name, sizeof name);
        json_array_append_new(role_names, json_string(name));
    }
    long long now = now_ms_wall() / 1000;
    char *iss = xasprintf("https://login.microsoftonline.com/%s/v2.0", DEVISSUER_TENANT);
    char *upn = xasprintf("%s@globojava.example", user);
    head = json_segment(json_pack("{s:s, s:s, s:s}", "alg", "RS256", "kid", d->kid, "typ", "JWT"));
    body = json_segment(
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:I, s:I, s:I, s:s}", "iss", iss, "aud",
                  DEVISSUER_AUDIENCE, "tid", DEVISSUER_TENANT, "oid", oid, "sub", oid, "name", user,
                  "preferred_username", upn, "roles", role_names, "iat", (json_int_t)now, "nbf",
                  (json_int_t)now, "exp", (json_int_t)(now + ttl_seconds), "ver", "2.0"));
    free(iss);
    free(upn);
    if (!head || !body)
        goto out;
    input = xasprintf("%s.%s", head, body);
    size_t siglen = 0;
    md = EVP_MD_CTX_new();
    if (!md || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, d->key) != 1 ||
        EVP_DigestSign(md, NULL, &siglen, (const unsigned char *)input, strlen(input)) != 1)
        goto out;
    sig = xmalloc(siglen);
    if (EVP_DigestSign(md, sig, &siglen, (const unsigned char *)input, strlen(input)) != 1)
        goto out;
    sig64 = jwks_b64url_encode(sig, siglen);
    result = xasprintf("%s.%s", input, sig64);
out:
    if (!result)
        log_msg(LOG_ERROR, "dev issuer: cannot mint a token");
    EVP_MD_CTX_free(md);
    free(sig);
    free(sig64);
    free(input);
    free(head);
    free(body);
    return result;
}
