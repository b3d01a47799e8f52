/* The browser portal's files and its /config.json. The app is built by npm
 * and esbuild (static/) into the build tree; this module only reads what
 * the build wrote, so a server without a built portal still serves the API. */
#include "http/portal.h"
#include "http/app.h"
#include "core/log.h"
#include "lib/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef ROASTERY_PORTAL_BUILD_DIR
#define ROASTERY_PORTAL_BUILD_DIR "portal"
#endif

/* Larger than any file the build writes (the biggest bundle is ~1 MB). */
#define PORTAL_MAX_FILE (32L << 20)

static const app_ctx *app_of(http_req *req)
{
    return http_app(req);
}

const char *portal_dir(const config *cfg)
{
    return cfg && cfg->portal_dir ? cfg->portal_dir : ROASTERY_PORTAL_BUILD_DIR;
}

const char *portal_content_type(const char *name)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".json", "application/json"},
        {".map", "application/json"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
        {".woff2", "font/woff2"},
        {".txt", "text/plain; charset=utf-8"},
    };
    const char *dot = strrchr(name, '.');
    if (dot)
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
            if (!strcasecmp(dot, types[i].ext))
                return types[i].type;
    return "application/octet-stream";
}

int portal_asset_name_ok(const char *name)
{
    size_t n = 0;
    if (!name || name[0] == '.' || !name[0])
        return 0;
    for (; name[n]; n++) {
        char c = name[n];
        if (n >= 128 || !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                          (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_'))
            return 0;
    }
    return 1;
}

/* Reads dir/rel whole. RST_OK with *data (new: caller frees) and *len;
 * RST_ENOTFOUND when there is no regular file, RST_EIO otherwise. */
static int read_file(const char *dir, const char *rel, char **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    char *path = xasprintf("%s/%s", dir, rel);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int rc = RST_OK;
    struct stat st;
    if (fd < 0) {
        rc = errno == ENOENT || errno == ENOTDIR ? RST_ENOTFOUND : RST_EIO;
        goto out;
    }
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        rc = RST_ENOTFOUND;
        goto out;
    }
    if (st.st_size > PORTAL_MAX_FILE) {
        rc = RST_EIO;
        goto out;
    }
    *data = xmalloc((size_t)st.st_size + 1);
    while (*len < (size_t)st.st_size) {
        ssize_t n = read(fd, *data + *len, (size_t)st.st_size - *len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        *len += (size_t)n;
    }
    if (*len != (size_t)st.st_size) {
        free(*data);
        *data = NULL;
        *len = 0;
        rc = RST_EIO;
    }
out:
    if (rc == RST_EIO)
        log_fields(LOG_WARN, "cannot read a portal file",
                   json_pack("{s:s, s:s}", "path", path, "error", strerror(errno)));
    if (fd >= 0)
        close(fd);
    free(path);
    return rc;
}

/* scheme://host of an authority URL ("https://login.microsoftonline.com/x"
 * gives "https://login.microsoftonline.com"). new: caller frees. */
static char *origin_of(const char *url)
{
    const char *host = strstr(url, "://");
    if (!host)
        return xstrdup("");
    const char *end = strchr(host + 3, '/');
    return end ? xstrndup(url, (size_t)(end - url)) : xstrdup(url);
}

static int is_azuread(const config *cfg)
{
    return cfg->auth && !strcmp(cfg->auth, "azuread");
}

void portal_page(http_req *req)
{
    const config *cfg = app_of(req)->cfg;
    /* Client routes are all GET; everything under /api/ and the probes has
     * its own routes, so reaching here means the app's own path. */
    char *html = NULL;
    size_t len = 0;
    int rc = read_file(portal_dir(cfg), "index.html", &html, &len);
    if (rc) {
        http_problem(req, rc == RST_ENOTFOUND ? 404 : 503,
                     rc == RST_ENOTFOUND ? "portal-not-built" : "unavailable",
                     rc == RST_ENOTFOUND ? "Portal not built" : "Service unavailable", NULL,
                     rc == RST_ENOTFOUND
                         ? "the portal's files are not there; build them (make) or set "
                           "ROASTERY_PORTAL_DIR"
                         : "the portal's files cannot be read");
        return;
    }
    /* MSAL talks to the authority (token endpoint by fetch, silent renewal in
     * a hidden iframe); nothing else leaves this origin. */
    char *auth_origin =
        is_azuread(cfg) && cfg->aad_authority ? origin_of(cfg->aad_authority) : xstrdup("");
    char *csp =
        xasprintf("default-src 'self'; script-src 'self'; style-src 'self'; "
                  "img-src 'self' data:; font-src 'self'; connect-src 'self'%s%s; "
                  "frame-src 'self'%s%s; frame-ancestors 'self'; base-uri 'self'; "
                  "form-action 'self'; object-src 'none'",
                  *auth_origin ? " " : "", auth_origin, *auth_origin ? " " : "", auth_origin);
    http_add_header(req, "Cache-Control", "no-cache");
    http_add_header(req, "Content-Security-Policy", csp);
    http_add_header(req, "Referrer-Policy", "no-referrer");
    http_reply_bytes(req, 200, "text/html; charset=utf-8", html, len);
    free(csp);
    free(auth_origin);
    free(html);
}

void portal_asset(http_req *req)
{
    const char *name = http_param(req, "file");
    if (!portal_asset_name_ok(name)) {
        http_problem(req, 404, "not-found", "Not found", NULL, "no resource at this path");
        return;
    }
    char *rel = xasprintf("assets/%s", name);
    char *data = NULL;
    size_t len = 0;
    int rc = read_file(portal_dir(app_of(req)->cfg), rel, &data, &len);
    free(rel);
    if (rc) {
        http_problem(
            req, rc == RST_ENOTFOUND ? 404 : 503, rc == RST_ENOTFOUND ? "not-found" : "unavailable",
            rc == RST_ENOTFOUND ? "Not found" : "Service unavailable", NULL, "%s",
            rc == RST_ENOTFOUND ? "no resource at this path" : "the portal's files cannot be read");
        return;
    }
    /* Names carry a hash of the content: a new build is a new URL. */
    http_add_header(req, "Cache-Control", "public, max-age=31536000, immutable");
    http_reply_bytes(req, 200, portal_content_type(name), data, len);
    free(data);
}

/* Appends the entries of a comma- or space-separated list to arr. */
static void append_list(json_t *arr, const char *list)
{
    const char *p = list;
    while (p && *p) {
        size_t skip = strspn(p, ", ");
        p += skip;
        size_t n = strcspn(p, ", ");
        if (n)
            json_array_append_new(arr, json_stringn(p, n));
        p += n;
    }
}

/* The first entry of a comma-separated list that does (want_uri) or does
 * not start with "api://". new: caller frees; NULL when none. */
static char *pick_audience(const char *list, int want_uri)
{
    const char *p = list;
    while (p && *p) {
        p += strspn(p, ", ");
        size_t n = strcspn(p, ", ");
        if (n && (!strncmp(p, "api://", 6)) == !!want_uri)
            return xstrndup(p, n);
        p += n;
    }
    return NULL;
}

void portal_config(http_req *req)
{
    const config *cfg = app_of(req)->cfg;
    json_t *out = json_pack("{s:s, s:s}", "auth", cfg->auth, "version", ROASTERY_VERSION);
    if (!is_azuread(cfg)) {
        json_object_set_new(out, "dev",
                            json_pack("{s:s, s:s}", "sign_in_url", "/auth/dev/sign-in", "token_url",
                                      "/auth/dev/token"));
        json_object_set_new(out, "azuread", json_null());
        http_add_header(req, "Cache-Control", "no-cache");
        http_reply_json(req, 200, out);
        return;
    }
    /* The API's own app registration is also the portal's public client
     * (terraform/platform/aad.tf): its client id is the audience that is not
     * an api:// URI, and its scope is <identifier uri>/<required scope>. */
    const char *tenants = cfg->aad_tenant_id ? cfg->aad_tenant_id : "";
    char *tenant = xstrndup(tenants, strcspn(tenants, ", "));
    char *client_id = cfg->aad_spa_client_id ? xstrdup(cfg->aad_spa_client_id)
                                             : pick_audience(cfg->aad_audience, 0);
    char *uri = pick_audience(cfg->aad_audience, 1);
    json_t *scopes = json_array();
    if (cfg->aad_spa_scopes)
        append_list(scopes, cfg->aad_spa_scopes);
    else if (uri || client_id)
        json_array_append_new(
            scopes,
            json_sprintf("%s%s/%s", uri ? "" : "api://", uri ? uri : client_id,
                         cfg->aad_required_scope ? cfg->aad_required_scope : "access_as_user"));
    const char *authority_base = cfg->aad_authority ? cfg->aad_authority : "";
    size_t blen = strlen(authority_base);
    while (blen && authority_base[blen - 1] == '/')
        blen--;
    json_t *aad = json_pack("{s:o, s:s, s:o, s:o}", "client_id",
                            client_id ? json_string(client_id) : json_null(), "tenant_id", tenant,
                            "authority", json_sprintf("%.*s/%s", (int)blen, authority_base, tenant),
                            "scopes", scopes);
    json_object_set_new(out, "dev", json_null());
    json_object_set_new(out, "azuread", aad);
    free(tenant);
    free(client_id);
    free(uri);
    http_add_header(req, "Cache-Control", "no-cache");
    http_reply_json(req, 200, out);
}
