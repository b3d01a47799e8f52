/* Azure AD (Entra ID) access-token verification: RS256 signatures against the
 * tenant's published keys, then every claim we rely on (time, issuer, tenant,
 * audience, identity, roles, delegated scope). */
#ifndef ROASTERY_AUTH_H
#define ROASTERY_AUTH_H

#include <stddef.h>
#include <stdint.h>

enum { AUTH_ROLE_PLATFORM_ADMIN = 1, AUTH_ROLE_DATA_SCIENTIST = 2, AUTH_ROLE_STORE_MANAGER = 4 };

enum {
    AUTH_MAX_TOKEN = 16 * 1024,   /* bytes of the JWT; longer is refused before any parsing */
    AUTH_MAX_HEADER = 1024,       /* base64url bytes of its header (Azure AD's are ~100) */
    AUTH_MAX_PAYLOAD = 14 * 1024, /* and of its payload: room for 200 group ids */
    AUTH_CACHE_ENTRIES = 4096,    /* verified tokens remembered (by SHA-256) until their exp */
    AUTH_DEFAULT_SKEW = 300,      /* seconds */
};

typedef struct {
    char oid[64]; /* identity */
    char tid[64];
    char name[256]; /* name, else preferred_username, else oid */
    unsigned roles; /* AUTH_ROLE_* bits */
    int delegated;  /* token had scp */
    long long exp;  /* unix seconds */
} auth_identity;

typedef struct {
    const char *jwks_url;       /* may contain {tenant}: replaced by the first tenant id */
    const char *tenants;        /* comma-separated tid values accepted */
    const char *audiences;      /* comma-separated aud values accepted */
    int accept_v1;              /* also accept iss https://sts.windows.net/{tid}/ */
    int clock_skew_seconds;     /* tolerance on exp, nbf, iat; 0 = none, < 0 = AUTH_DEFAULT_SKEW */
    const char *required_scope; /* for delegated tokens (scp, space-separated); NULL/empty =
                                   access_as_user */
    const char *role_map;       /* e.g. "Platform.Admin=PlatformAdmin,Data.Scientist=DataScientist";
                                   NULL/empty = identity map of the three names */
} auth_settings;

typedef struct auth_verifier auth_verifier;

/* The settings are copied. No key is fetched until the first token arrives.
 * new: free with auth_verifier_free; NULL + one-line err on bad settings
 * (e.g. unknown role name in role_map, no tenant, unacceptable JWKS URL). */
auth_verifier *auth_verifier_new(const auth_settings *s, char *err, size_t errlen);
void auth_verifier_free(auth_verifier *v);

/* The shortest time between two JWKS fetches (default 60 s); tests set it short. */
void auth_verifier_set_jwks_refetch_ms(auth_verifier *v, int64_t ms);

/* Verifies an Authorization header value ("Bearer <jwt>"; NULL = missing).
 * RST_OK and *out filled, or RST_EINVAL with a short, specific, lower-case
 * reason for the client (e.g. "missing bearer token", "token is malformed",
 * "algorithm HS256 is not accepted", "token header is too long", "token payload
 * is nested too deeply", "unknown signing key", "signature does not verify", "token expired",
 * "token not yet valid", "issued in the future", "issuer not accepted", "audience not accepted",
 * "tenant not accepted", "required scope missing"). The reason and the log never hold the token.
 * Thread-safe; a verified token is served from a cache until exp + skew. */
int auth_verify(auth_verifier *v, const char *authorization, auth_identity *out, char *reason,
                size_t reasonlen);

/* Parses a role name (PlatformAdmin, DataScientist, StoreManager) into its bit; 0 if unknown. */
unsigned auth_role_parse(const char *name);

/* Comma-separated role names of bits into buf (always NUL-terminated; "" for none). */
void auth_roles_format(unsigned roles, char *buf, size_t len);

#endif
