/* The service's own Microsoft identity platform (Entra ID) credential for its calls to Azure
 * (ARM, Blob Storage): the OAuth2 client-credentials grant with a client secret or with a
 * federated assertion (the projected service-account token of AKS workload identity, re-read at
 * every token request because the kubelet rotates it), and the token cache ARM and Blob share. */
#ifndef ROASTERY_AAD_CREDENTIAL_H
#define ROASTERY_AAD_CREDENTIAL_H

#include <stddef.h>

#include "core/config.h"
#include "lib/util.h"

#define AAD_DEFAULT_AUTHORITY "https://login.microsoftonline.com"
/* Blob Storage's resource is https://storage.azure.com/ in every cloud. */
#define AAD_STORAGE_SCOPE "https://storage.azure.com/.default"
#define AAD_ASSERTION_TYPE "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
/* A token is not used during the last five minutes of its life (half of it if shorter). */
#define AAD_TOKEN_EARLY_MS (5 * 60 * 1000L)

typedef struct aad_credential aad_credential;

/* Strings are copied by aad_credential_new. */
typedef struct {
    const char *authority; /* NULL or "" = AAD_DEFAULT_AUTHORITY; http:// only on loopback */
    const char *tenant_id, *client_id;
    const char *client_secret;        /* used when set (never logged) */
    const char *federated_token_file; /* used when there is no secret */
} aad_credential_options;

/* Checks and copies o (no I/O: the token file is read at each request). RST_OK, or RST_EINVAL
 * with a reason in err (never the secret). new: caller frees *out with aad_credential_free. */
int aad_credential_new(const aad_credential_options *o, aad_credential **out, char *err,
                       size_t errlen);
/* new: an independent copy; free with aad_credential_free. NULL-safe (NULL for NULL). */
aad_credential *aad_credential_copy(const aad_credential *c);
/* NULL-safe; wipes the secret. */
void aad_credential_free(aad_credential *c);

/* borrowed: valid until aad_credential_free. "client_secret" or "federated". */
const char *aad_credential_kind(const aad_credential *c);
/* borrowed: "<authority>/<tenant>/oauth2/v2.0/token". */
const char *aad_credential_token_url(const aad_credential *c);
/* borrowed: the authority without trailing '/', for logs. */
const char *aad_credential_authority(const aad_credential *c);

/* The x-www-form-urlencoded body of a client-credentials request for scope: client_secret, or
 * client_assertion_type=AAD_ASSERTION_TYPE and client_assertion=<the token file, read now>.
 * RST_OK, or RST_EIO with a reason in err (file missing, empty or over 64 KiB; never its
 * contents). new: *form, free with aad_credential_secret_free. */
int aad_credential_form(const aad_credential *c, const char *scope, char **form, char *err,
                        size_t errlen);

/* One token request for scope on a connection of its own (for clients without a transport of
 * their own: the Blob client), with up to 3 attempts on 408, 429, 5xx and transport errors.
 * RST_OK with *token (new: aad_credential_secret_free) and *expires_in in seconds; RST_EINVAL when
 * the identity platform refused (err has its error and AADSTS description), RST_EUNAVAIL when it
 * could not be reached, RST_EIO for an unreadable token file or an answer without a token. */
int aad_credential_request(const aad_credential *c, const char *scope, long timeout_ms,
                           char **token, long *expires_in, char *err, size_t errlen);

/* Reads a token endpoint's 200 answer ({access_token, expires_in} with expires_in a number or,
 * from the v1 endpoint, a string). RST_OK with *token (new: aad_credential_secret_free), else
 * RST_EIO. */
int aad_credential_parse_token(const char *body, size_t len, char **token, long *expires_in);

/* Wipes and frees a string that held a secret or a token. NULL-safe. */
void aad_credential_secret_free(char *s);

/* A cached token for one scope, shared by threads. */
typedef struct aad_credential_cache aad_credential_cache;

/* Gets a new token: RST_OK with *token (the cache steals it) and *expires_in (seconds). */
typedef int (*aad_credential_fetch_fn)(void *arg, char **token, long *expires_in);

/* new: free with aad_credential_cache_free. */
aad_credential_cache *aad_credential_cache_new(void);
/* NULL-safe; wipes the token. */
void aad_credential_cache_free(aad_credential_cache *c);
/* A copy of a valid token, calling fetch (under the cache's lock, so concurrent callers wait for
 * one fetch) when there is none or it is within AAD_TOKEN_EARLY_MS of its end. stale (may be
 * NULL): a token the service refused; dropped first if the cache still holds it. Returns fetch's
 * status on failure. new: *out, free with aad_credential_secret_free. */
int aad_credential_cache_get(aad_credential_cache *c, const char *stale,
                             aad_credential_fetch_fn fetch, void *arg, char **out);

/* The process's credential, built from the configuration at start (ROASTERY_AZURE_TENANT_ID,
 * ROASTERY_AZURE_CLIENT_ID, ROASTERY_AZURE_CLIENT_SECRET or ROASTERY_AZURE_FEDERATED_TOKEN_FILE,
 * ROASTERY_AAD_AUTHORITY): what the Blob client uses for a storage account without a key. None
 * when the tenant, the client id or both secret and token file are unset; a bad value is logged.
 * Call before threads start. */
void aad_credential_default_configure(const config *cfg);
/* Replaces the process credential (steals c, may be NULL: none). Call before threads start and
 * at exit. */
void aad_credential_default_set(aad_credential *c);
/* new: a copy of the process credential, or NULL when there is none. */
aad_credential *aad_credential_default_copy(void);

#endif
