/* The browser portal: the single-page app the build writes into
 * ROASTERY_PORTAL_DIR (index.html and assets/ with content-hashed names),
 * served at / with its client routes, and /config.json, which tells it how
 * to sign in. Neither ever carries a secret. */
#ifndef ROASTERY_PORTAL_H
#define ROASTERY_PORTAL_H

#include <stddef.h>

#include "core/config.h"
#include "http/http.h"

/* GET / and every client route of the app: index.html, revalidated on
 * every load (no-cache), with a Content-Security-Policy. 404 problem when
 * the portal was not built. */
void portal_page(http_req *req);

/* GET /assets/{file}: a built file, cached for a year (its name changes
 * with its content); 404 problem for anything else. */
void portal_asset(http_req *req);

/* GET /config.json: the auth mode and, with azuread, the public client id,
 * tenant, authority and scopes the app asks MSAL for. */
void portal_config(http_req *req);

/* The directory served: ROASTERY_PORTAL_DIR, else the build tree's portal.
 * borrowed: valid as long as cfg. Exposed for tests and --help. */
const char *portal_dir(const config *cfg);

/* Content type for a file name by its extension ("application/octet-stream"
 * when unknown). borrowed: a static string. */
const char *portal_content_type(const char *name);

/* Whether name is a file name the portal may serve from assets/: letters,
 * digits, '.', '-' and '_', not starting with '.', at most 128 bytes. */
int portal_asset_name_ok(const char *name);

#endif
