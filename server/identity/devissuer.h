/* The "dev" local token issuer for the demo and development: an RSA key kept
 * under the data directory, its JWKS, and Azure-AD-shaped RS256 access tokens
 * that go through exactly the same verifier (auth.h) as real ones. */
#ifndef ROASTERY_DEVISSUER_H
#define ROASTERY_DEVISSUER_H

#include <stddef.h>

/* The tenant and audience of every token the dev issuer mints. */
#define DEVISSUER_TENANT "7e1e0000-0000-4000-8000-00000000d3a0"
#define DEVISSUER_AUDIENCE "api://roastery"

typedef struct devissuer devissuer;

/* Opens the issuer kept in <data_dir>/dev-issuer/: loads key.pem, or
 * generates an RSA-2048 key there on first use (mode 0600, written atomically;
 * when two processes race, both end up with the one that was linked first),
 * and (re)writes jwks.json next to it. Creates data_dir (0700; not its parents).
 * RST_OK and *out (new: caller frees with devissuer_close), or an RST_* error
 * with a one-line err. */
int devissuer_open(const char *data_dir, devissuer **out, char *err, size_t errlen);
/* NULL-safe. */
void devissuer_close(devissuer *d);

/* The file:// URL of jwks.json (absolute, percent-encoded).
 * new: caller frees with free(). */
char *devissuer_jwks_url(devissuer *d);

/* The JWKS document (one RS256 signing key) to serve over HTTP.
 * borrowed: valid until devissuer_close. */
const char *devissuer_jwks_json(devissuer *d);

/* The key id: the RFC 7638 thumbprint of the public key. borrowed: as above. */
const char *devissuer_kid(devissuer *d);

/* Mints an RS256 access token for user (1..128 bytes) with the AUTH_ROLE_*
 * bits in roles, valid for ttl_seconds (> 0) from now: iss
 * https://login.microsoftonline.com/<DEVISSUER_TENANT>/v2.0, aud
 * DEVISSUER_AUDIENCE, tid, oid (a UUID derived from user, stable across runs
 * and keys), name, preferred_username user@globojava.example, roles.
 * new: caller frees with free(); NULL on bad arguments. Thread-safe. */
char *devissuer_mint(devissuer *d, const char *user, unsigned roles, int ttl_seconds);

#endif
