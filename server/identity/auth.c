/* Bearer-token verification for Azure AD (Entra ID) access tokens. The RS256
 * signature is checked with OpenSSL directly, so the algorithm comes from us,
 * never from the token. libjwt is not used: 1.10.2 trusts the token's alg,
 * skips verification for a NULL key, refuses typ at+jwt, and has no key
 * callback, so the header would be parsed twice to pick the key by kid. Header and payload are capped in size and
 * nesting before any JSON parser sees them: this runs before the signature
 * is known to be good. Verified tokens are remembered by SHA-256 until
 * their exp so repeated requests skip the RSA operation. */
#include "identity/auth.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "identity/jwks.h"
#include "core/log.h"
#include "lib/util.h"
#include "lib/jsonguard.h"

enum {
    CACHE_BUCKETS = 2 * AUTH_CACHE_ENTRIES,
    KID_MAX = 256,
    LIST_MAX = 64, /* tenants, audiences, role-map rules */
};

static const struct {
    const char *name;
    unsigned bit;
} ROLE_NAMES[] = {
    {"PlatformAdmin", AUTH_ROLE_PLATFORM_ADMIN},
    {"DataScientist", AUTH_ROLE_DATA_SCIENTIST},
    {"StoreManager", AUTH_ROLE_STORE_MANAGER},
};
#define NROLES (sizeof ROLE_NAMES / sizeof ROLE_NAMES[0])

typedef struct {
    char *claim; /* value in the token's roles claim */
    unsigned bit;
} role_rule;

typedef struct {
    unsigned char hash[SHA256_DIGEST_LENGTH];
    auth_identity id;
    int used;
    int next; /* next entry in the bucket chain, -1 at the end */
} cache_entry;

struct auth_verifier {
    jwks_cache *jwks;
    char **tenants;
    size_t ntenants;
    char **audiences;
    size_t naudiences;
    int accept_v1;
    long long skew;
    char *scope;
    role_rule *rules;
    size_t nrules;

    pthread_mutex_t mu; /* guards the cache below */
    cache_entry *cache;
    int *buckets;
    size_t ring; /* next slot to (over)write: the oldest entry */
};

/* ---- roles ------------------------------------------------------------- */

unsigned auth_role_parse(const char *name)
{
    if (!name)
        return 0;
    for (size_t i = 0; i < NROLES; i++)
        if (!strcmp(name, ROLE_NAMES[i].name))
            return ROLE_NAMES[i].bit;
    return 0;
}

void auth_roles_format(unsigned roles, char *buf, size_t len)
{
    if (!len)
        return;
    buf[0] = '\0';
    size_t used = 0;
    for (size_t i = 0; i < NROLES; i++) {
        if (!(roles & ROLE_NAMES[i].bit))
            continue;
        int n = snprintf(buf + used, len - used, "%s%s", used ? "," : "", ROLE_NAMES[i].name);
        if (n < 0 || (size_t)n >= len - used) {
            buf[used] = '\0'; /* never leave half a name */
            return;
        }
        used += (size_t)n;
    }
}

/* ---- settings ---------------------------------------------------------- */

static void free_list(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* Splits a comma-separated list, trimming blanks and dropping empty items.
 * *out is new (free_list). RST_EINVAL when there are more than LIST_MAX items. */
static int split_list(const char *s, char ***out, size_t *n)
{
    *out = xcalloc(LIST_MAX, sizeof **out);
    *n = 0;
    while (s && *s) {
        size_t len = strcspn(s, ",");
        const char *a = s, *b = s + len;
        while (a < b && isspace((unsigned char)*a))
            a++;
        while (b > a && isspace((unsigned char)b[-1]))
            b--;
        if (b > a) {
            if (*n == LIST_MAX)
                return RST_EINVAL;
            (*out)[(*n)++] = xstrndup(a, (size_t)(b - a));
        }
        s += len + (s[len] == ',');
    }
    return RST_OK;
}

static int parse_role_map(auth_verifier *v, const char *map, char *err, size_t errlen)
{
    v->rules = xcalloc(LIST_MAX, sizeof *v->rules);
    if (!map || !*map) {
        for (size_t i = 0; i < NROLES; i++) {
            v->rules[i].claim = xstrdup(ROLE_NAMES[i].name);
            v->rules[i].bit = ROLE_NAMES[i].bit;
        }
        v->nrules = NROLES;
        return RST_OK;
    }
    char **items = NULL;
    size_t n = 0;
    int rc = RST_EINVAL;
    if (split_list(map, &items, &n) || n == 0) {
        snprintf(err, errlen, "role map: expected 1 to %d comma-separated claim=Role pairs",
                 LIST_MAX);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        char *eq = strchr(items[i], '=');
        if (!eq || eq == items[i]) {
            snprintf(err, errlen, "role map: '%s' is not claim=Role", items[i]);
            goto out;
        }
        *eq = '\0';
        const char *role = eq + 1;
        while (isspace((unsigned char)*role))
            role++;
        for (char *e = eq; e > items[i] && isspace((unsigned char)e[-1]); e--)
            e[-1] = '\0';
        unsigned bit = auth_role_parse(role);
        if (!bit) {
            snprintf(err, errlen,
                     "role map: unknown role '%s' (expected PlatformAdmin, DataScientist or "
                     "StoreManager)",
                     role);
            goto out;
        }
        v->rules[v->nrules].claim = xstrdup(items[i]);
        v->rules[v->nrules].bit = bit;
        v->nrules++;
    }
    rc = RST_OK;
out:
    free_list(items, n);
    return rc;
}

/* Tenant ids go into URLs and fixed-size fields: GUID-like characters only. */
static int tenant_ok(const char *t)
{
    size_t n = strlen(t);
    if (n == 0 || n >= sizeof(((auth_identity *)0)->tid))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)t[i]) && t[i] != '-' && t[i] != '.')
            return 0;
    return 1;
}

/* new: free(). url with every "{tenant}" replaced by tenant. */
static char *expand_tenant(const char *url, const char *tenant)
{
    buf_t b;
    buf_init(&b, 0);
    const char *p = url;
    for (const char *hit; (hit = strstr(p, "{tenant}"));) {
        buf_append(&b, p, (size_t)(hit - p));
        buf_puts(&b, tenant);
        p = hit + strlen("{tenant}");
    }
    buf_puts(&b, p);
    return b.data ? b.data : xstrdup("");
}

auth_verifier *auth_verifier_new(const auth_settings *s, char *err, size_t errlen)
{
    auth_verifier *v = xcalloc(1, sizeof *v);
    char *url = NULL;
    err[0] = '\0';
    pthread_mutex_init(&v->mu, NULL);
    v->cache = xcalloc(AUTH_CACHE_ENTRIES, sizeof *v->cache);
    v->buckets = xmalloc(CACHE_BUCKETS * sizeof *v->buckets);
    for (size_t i = 0; i < CACHE_BUCKETS; i++)
        v->buckets[i] = -1;

    if (split_list(s->tenants, &v->tenants, &v->ntenants) || v->ntenants == 0) {
        snprintf(err, errlen, "auth: expected 1 to %d comma-separated tenant ids", LIST_MAX);
        goto fail;
    }
    for (size_t i = 0; i < v->ntenants; i++) {
        if (!tenant_ok(v->tenants[i])) {
            snprintf(err, errlen, "auth: tenant id '%.80s' is not a tenant GUID", v->tenants[i]);
            goto fail;
        }
    }
    if (split_list(s->audiences, &v->audiences, &v->naudiences) || v->naudiences == 0) {
        snprintf(err, errlen, "auth: expected 1 to %d comma-separated audiences", LIST_MAX);
        goto fail;
    }
    if (parse_role_map(v, s->role_map, err, errlen))
        goto fail;
    v->accept_v1 = s->accept_v1;
    v->skew = s->clock_skew_seconds < 0 ? AUTH_DEFAULT_SKEW : s->clock_skew_seconds;
    v->scope =
        xstrdup(s->required_scope && *s->required_scope ? s->required_scope : "access_as_user");
    if (strchr(v->scope, ' ')) {
        snprintf(err, errlen, "auth: required scope '%.80s' must be a single scope", v->scope);
        goto fail;
    }
    if (!s->jwks_url || !*s->jwks_url) {
        snprintf(err, errlen, "auth: no JWKS URL");
        goto fail;
    }
    url = expand_tenant(s->jwks_url, v->tenants[0]);
    v->jwks = jwks_cache_new(url);
    if (!v->jwks) {
        snprintf(err, errlen,
                 "auth: JWKS URL '%.200s' must be https://, http://127.0.0.1, http://localhost "
                 "or file:///",
                 url);
        goto fail;
    }
    free(url);
    return v;
fail:
    free(url);
    auth_verifier_free(v);
    return NULL;
}

void auth_verifier_free(auth_verifier *v)
{
    if (!v)
        return;
    jwks_cache_free(v->jwks);
    free_list(v->tenants, v->ntenants);
    free_list(v->audiences, v->naudiences);
    free(v->scope);
    for (size_t i = 0; i < v->nrules; i++)
        free(v->rules[i].claim);
    free(v->rules);
    free(v->cache);
    free(v->buckets);
    pthread_mutex_destroy(&v->mu);
    free(v);
}

void auth_verifier_set_jwks_refetch_ms(auth_verifier *v, int64_t ms)
{
    jwks_cache_set_refetch_interval_ms(v->jwks, ms);
}

/* ---- verified-token cache ---------------------------------------------- */

static size_t bucket_of(const unsigned char *h)
{
    return ((size_t)h[0] << 8 | h[1]) % CACHE_BUCKETS;
}

static void cache_unlink(auth_verifier *v, int slot)
{
    int *p = &v->buckets[bucket_of(v->cache[slot].hash)];
    while (*p != -1 && *p != slot)
        p = &v->cache[*p].next;
    if (*p == slot)
        *p = v->cache[slot].next;
    v->cache[slot].used = 0;
}

/* 1 and *out when hash is cached and still valid; -1 when it is cached but
 * expired; 0 when it is not cached. */
static int cache_lookup(auth_verifier *v, const unsigned char *hash, long long now,
                        auth_identity *out)
{
    int rc = 0;
    pthread_mutex_lock(&v->mu);
    for (int i = v->buckets[bucket_of(hash)]; i != -1; i = v->cache[i].next) {
        if (memcmp(v->cache[i].hash, hash, sizeof v->cache[i].hash))
            continue;
        if (now >= v->cache[i].id.exp + v->skew) {
            cache_unlink(v, i);
            rc = -1;
        } else {
            *out = v->cache[i].id;
            rc = 1;
        }
        break;
    }
    pthread_mutex_unlock(&v->mu);
    return rc;
}

/* Remembers a verified token, overwriting the oldest entry when full. */
static void cache_store(auth_verifier *v, const unsigned char *hash, const auth_identity *id)
{
    pthread_mutex_lock(&v->mu);
    size_t b = bucket_of(hash);
    for (int i = v->buckets[b]; i != -1; i = v->cache[i].next) {
        if (!memcmp(v->cache[i].hash, hash, sizeof v->cache[i].hash))
            goto out; /* another thread got there first */
    }
    int slot = (int)(v->ring++ % AUTH_CACHE_ENTRIES);
    if (v->cache[slot].used)
        cache_unlink(v, slot);
    memcpy(v->cache[slot].hash, hash, sizeof v->cache[slot].hash);
    v->cache[slot].id = *id;
    v->cache[slot].used = 1;
    v->cache[slot].next = v->buckets[b];
    v->buckets[b] = slot;
out:
    pthread_mutex_unlock(&v->mu);
}

/* ---- verification ------------------------------------------------------ */

static int refuse(char *reason, size_t len, const char *why)
{
    snprintf(reason, len, "%s", why);
    return RST_EINVAL;
}

/* Decodes one base64url segment holding a JSON object into *out (new:
 * json_decref). RST_ETOOBIG when it nests deeper than the API allows (refused
 * before parsing), RST_EINVAL when it is not a JSON object. */
static int segment_json(const char *seg, size_t len, json_t **out)
{
    unsigned char *bin = NULL;
    size_t binlen = 0;
    *out = NULL;
    if (jwks_b64url_decode(seg, len, &bin, &binlen))
        return RST_EINVAL;
    json_t *o = NULL;
    int rc = jsonguard_loadb((const char *)bin, binlen, JSON_REJECT_DUPLICATES, &o, NULL);
    free(bin);
    if (rc)
        return rc;
    if (!json_is_object(o)) {
        json_decref(o);
        return RST_EINVAL;
    }
    *out = o;
    return RST_OK;
}

/* An algorithm name safe to echo back: short and plain, else NULL. */
static const char *printable_alg(const char *alg)
{
    size_t n = strlen(alg);
    if (n == 0 || n > 16)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)alg[i]) && alg[i] != '-' && alg[i] != '+' && alg[i] != '_')
            return NULL;
    return alg;
}

/* Checks the header and the RS256 signature over "header.payload". */
static int check_signature(auth_verifier *v, const char *tok, size_t hlen, size_t signed_len,
                           const char *sig64, size_t siglen64, char *reason, size_t rlen)
{
    int rc = RST_EINVAL;
    EVP_PKEY *key = NULL;
    EVP_MD_CTX *md = NULL;
    unsigned char *sig = NULL;
    size_t siglen = 0;
    json_t *hdr = NULL;
    int jrc = segment_json(tok, hlen, &hdr);
    if (jrc) {
        refuse(reason, rlen,
               jrc == RST_ETOOBIG ? "token header is nested too deeply" : "token is malformed");
        goto out;
    }
    json_t *alg = json_object_get(hdr, "alg");
    if (!json_is_string(alg)) {
        refuse(reason, rlen, "token is malformed");
        goto out;
    }
    if (strcmp(json_string_value(alg), "RS256")) {
        const char *shown = printable_alg(json_string_value(alg));
        if (shown)
            snprintf(reason, rlen, "algorithm %s is not accepted", shown);
        else
            refuse(reason, rlen, "algorithm is not accepted");
        goto out;
    }
    if (json_object_get(hdr, "crit")) { /* RFC 7515 §4.1.11: we understand no extension */
        refuse(reason, rlen, "critical header parameters are not supported");
        goto out;
    }
    const char *kid = json_string_value(json_object_get(hdr, "kid"));
    if (!kid || !*kid || strlen(kid) > KID_MAX) {
        refuse(reason, rlen, "token has no key id");
        goto out;
    }
    int krc = jwks_key(v->jwks, kid, &key);
    if (krc == RST_EUNAVAIL) {
        refuse(reason, rlen, "signing keys are unavailable");
        goto out;
    }
    if (krc != RST_OK) {
        refuse(reason, rlen, "unknown signing key");
        goto out;
    }
    if (jwks_b64url_decode(sig64, siglen64, &sig, &siglen) ||
        siglen != (size_t)EVP_PKEY_get_size(key)) {
        refuse(reason, rlen, "signature does not verify");
        goto out;
    }
    md = EVP_MD_CTX_new();
    if (!md || EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
        EVP_DigestVerify(md, sig, siglen, (const unsigned char *)tok, signed_len) != 1) {
        refuse(reason, rlen, "signature does not verify");
        goto out;
    }
    rc = RST_OK;
out:
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(key);
    free(sig);
    json_decref(hdr);
    return rc;
}

/* Reads an optional NumericDate claim: 1 present, 0 absent, -1 not an integer
 * in 0..2^40 (the bound keeps the skew arithmetic from overflowing). */
static int time_claim(json_t *claims, const char *name, long long *out)
{
    json_t *j = json_object_get(claims, name);
    if (!j)
        return 0;
    if (!json_is_integer(j) || json_integer_value(j) < 0 || json_integer_value(j) > (1LL << 40))
        return -1;
    *out = json_integer_value(j);
    return 1;
}

static int in_list(char *const *list, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(list[i], s))
            return 1;
    return 0;
}

/* 1 when the space-separated scp holds scope. */
static int has_scope(const char *scp, const char *scope)
{
    size_t want = strlen(scope);
    for (const char *p = scp; *p;) {
        p += strspn(p, " ");
        size_t n = strcspn(p, " ");
        if (n == want && !strncmp(p, scope, n))
            return 1;
        p += n;
    }
    return 0;
}

/* Copies s into dst (size cap), cutting at a UTF-8 character boundary. */
static void copy_utf8(char *dst, size_t cap, const char *s)
{
    size_t n = strlen(s);
    if (n >= cap) {
        n = cap - 1;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(dst, s, n);
    dst[n] = '\0';
}

static int check_claims(auth_verifier *v, json_t *c, long long now, auth_identity *id, char *reason,
                        size_t rlen)
{
    long long exp = 0, nbf = 0, iat = 0;
    int has_exp = time_claim(c, "exp", &exp);
    int has_nbf = time_claim(c, "nbf", &nbf);
    int has_iat = time_claim(c, "iat", &iat);
    if (has_exp < 0 || has_nbf < 0 || has_iat < 0)
        return refuse(reason, rlen, "token is malformed");
    if (!has_exp)
        return refuse(reason, rlen, "token has no expiry");
    if (now >= exp + v->skew)
        return refuse(reason, rlen, "token expired");
    if (has_nbf && now + v->skew < nbf)
        return refuse(reason, rlen, "token not yet valid");
    if (has_iat && now + v->skew < iat)
        return refuse(reason, rlen, "issued in the future");

    const char *tid = json_string_value(json_object_get(c, "tid"));
    if (!tid)
        return refuse(reason, rlen, "token has no tenant");
    if (!in_list(v->tenants, v->ntenants, tid))
        return refuse(reason, rlen, "tenant not accepted");

    const char *iss = json_string_value(json_object_get(c, "iss"));
    char v2[160], v1[160];
    snprintf(v2, sizeof v2, "https://login.microsoftonline.com/%s/v2.0", tid);
    snprintf(v1, sizeof v1, "https://sts.windows.net/%s/", tid);
    if (!iss || (strcmp(iss, v2) && !(v->accept_v1 && !strcmp(iss, v1))))
        return refuse(reason, rlen, "issuer not accepted");

    json_t *aud = json_object_get(c, "aud");
    int aud_ok = 0;
    if (json_is_string(aud)) {
        aud_ok = in_list(v->audiences, v->naudiences, json_string_value(aud));
    } else if (json_is_array(aud)) {
        size_t i;
        json_t *a;
        json_array_foreach(aud, i, a)
        {
            if (json_is_string(a) && in_list(v->audiences, v->naudiences, json_string_value(a))) {
                aud_ok = 1;
                break;
            }
        }
    }
    if (!aud_ok)
        return refuse(reason, rlen, "audience not accepted");

    const char *oid = json_string_value(json_object_get(c, "oid"));
    size_t oidlen = oid ? strlen(oid) : 0;
    if (!oidlen)
        return refuse(reason, rlen, "token has no oid");
    if (oidlen >= sizeof id->oid)
        return refuse(reason, rlen, "token oid is too long");
    for (size_t i = 0; i < oidlen; i++)
        if (!isgraph((unsigned char)oid[i]))
            return refuse(reason, rlen, "token oid is malformed");

    json_t *scp = json_object_get(c, "scp");
    if (scp) {
        if (!json_is_string(scp))
            return refuse(reason, rlen, "token is malformed");
        if (!has_scope(json_string_value(scp), v->scope))
            return refuse(reason, rlen, "required scope missing");
        id->delegated = 1;
    }

    json_t *roles = json_object_get(c, "roles");
    if (roles && !json_is_array(roles))
        return refuse(reason, rlen, "token is malformed");
    size_t i;
    json_t *r;
    json_array_foreach(roles, i, r)
    {
        const char *name = json_string_value(r);
        for (size_t k = 0; name && k < v->nrules; k++)
            if (!strcmp(name, v->rules[k].claim))
                id->roles |= v->rules[k].bit;
    }

    const char *name = json_string_value(json_object_get(c, "name"));
    if (!name || !*name)
        name = json_string_value(json_object_get(c, "preferred_username"));
    if (!name || !*name)
        name = oid;
    copy_utf8(id->oid, sizeof id->oid, oid);
    copy_utf8(id->tid, sizeof id->tid, tid);
    copy_utf8(id->name, sizeof id->name, name);
    id->exp = exp;
    return RST_OK;
}

int auth_verify(auth_verifier *v, const char *authorization, auth_identity *out, char *reason,
                size_t reasonlen)
{
    memset(out, 0, sizeof *out);
    if (reasonlen)
        reason[0] = '\0';
    if (!authorization)
        return refuse(reason, reasonlen, "missing bearer token");
    const char *p = authorization;
    while (*p == ' ' || *p == '\t')
        p++;
    if (strncasecmp(p, "Bearer", 6) || (p[6] != ' ' && p[6] != '\t' && p[6] != '\0'))
        return refuse(reason, reasonlen, "authorization is not a bearer token");
    p += 6;
    while (*p == ' ' || *p == '\t')
        p++;
    size_t len = strnlen(p, AUTH_MAX_TOKEN + 1);
    while (len > 0 && len <= AUTH_MAX_TOKEN && (p[len - 1] == ' ' || p[len - 1] == '\t'))
        len--;
    if (len == 0)
        return refuse(reason, reasonlen, "missing bearer token");
    if (len > AUTH_MAX_TOKEN)
        return refuse(reason, reasonlen, "token is too long");

    /* Three base64url segments: header.payload.signature. */
    const char *dot1 = NULL, *dot2 = NULL;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch == '.') {
            if (dot2)
                return refuse(reason, reasonlen, "token is malformed");
            *(dot1 ? &dot2 : &dot1) = p + i;
        } else if (!isalnum(ch) && ch != '-' && ch != '_') {
            return refuse(reason, reasonlen, "token is malformed");
        }
    }
    if (!dot2 || dot1 == p || dot2 == dot1 + 1) /* an empty signature is judged by its alg */
        return refuse(reason, reasonlen, "token is malformed");
    size_t hlen = (size_t)(dot1 - p), plen = (size_t)(dot2 - dot1 - 1);
    if (hlen > AUTH_MAX_HEADER)
        return refuse(reason, reasonlen, "token header is too long");
    if (plen > AUTH_MAX_PAYLOAD)
        return refuse(reason, reasonlen, "token payload is too long");

    unsigned char hash[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)p, len, hash);
    long long now = now_ms_wall() / 1000;
    int hit = cache_lookup(v, hash, now, out);
    if (hit > 0)
        return RST_OK;
    if (hit < 0)
        return refuse(reason, reasonlen, "token expired");

    size_t signed_len = (size_t)(dot2 - p);
    if (check_signature(v, p, hlen, signed_len, dot2 + 1, len - signed_len - 1, reason,
                        reasonlen)) {
        memset(out, 0, sizeof *out);
        return RST_EINVAL;
    }
    json_t *claims = NULL;
    int jrc = segment_json(dot1 + 1, plen, &claims);
    if (jrc)
        return refuse(reason, reasonlen,
                      jrc == RST_ETOOBIG ? "token payload is nested too deeply"
                                         : "token is malformed");
    int rc = check_claims(v, claims, now, out, reason, reasonlen);
    json_decref(claims);
    if (rc) {
        memset(out, 0, sizeof *out);
        return RST_EINVAL;
    }
    cache_store(v, hash, out);
    return RST_OK;
}
