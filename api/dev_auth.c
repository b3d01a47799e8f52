/* The dev issuer's front door (ROASTERY_AUTH=dev only): its JWKS, a token
 * endpoint and a sign-in page for the demo. Tokens minted here are checked
 * by exactly the same verifier as Azure AD's. Only requests addressed to a loopback
 * name are answered (DNS rebinding), and every mint is audited. */
#include "identity/access.h"
#include "api.h"
#include "http/app.h"
#include "identity/auth.h"
#include "identity/devissuer.h"
#include "lib/util.h"
#include "http/validate.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Whether host (a Host header) names this machine's loopback: 127.0.0.0/8, [::1] or
 * localhost, with or without a port. A page that rebinds its own name to 127.0.0.1 still
 * sends that name, so this is what stops it minting tokens from the browser. */
static int loopback_host(const char *host)
{
    if (!host)
        return 0;
    char h[64];
    const char *end;
    if (host[0] == '[') {
        end = strchr(host, ']');
        if (!end || (size_t)(end - host - 1) >= sizeof h)
            return 0;
        memcpy(h, host + 1, (size_t)(end - host - 1));
        h[end - host - 1] = '\0';
        end++;
    } else {
        size_t n = strcspn(host, ":");
        if (n >= sizeof h)
            return 0;
        memcpy(h, host, n);
        h[n] = '\0';
        end = host + n;
    }
    if (*end == ':') { /* a port: digits only */
        if (!end[1] || strspn(end + 1, "0123456789") != strlen(end + 1) || strlen(end + 1) > 5)
            return 0;
    } else if (*end) {
        return 0;
    }
    unsigned char a[16];
    if (host[0] == '[')
        return inet_pton(AF_INET6, h, a) == 1 && IN6_IS_ADDR_LOOPBACK((struct in6_addr *)a);
    return !strcasecmp(h, "localhost") || (inet_pton(AF_INET, h, a) == 1 && a[0] == 127);
}

static devissuer *dev_or_404(http_req *req)
{
    app_ctx *app = http_app(req);
    if (!app->dev) {
        http_problem(req, 404, "not-found", "Not found", NULL,
                     "the dev issuer runs only with ROASTERY_AUTH=dev");
        return NULL;
    }
    if (!app->cfg->auth_dev_allow_remote && !loopback_host(http_header(req, "Host"))) {
        if (!access_refuse_unauthenticated(req, "dev.token", http_path(req), 403,
                                           "Host is not a loopback name"))
            http_problem(req, 403, "forbidden", "Forbidden", NULL,
                         "the dev issuer answers only requests addressed to 127.0.0.1, [::1] or"
                         " localhost (Host header)");
        return NULL;
    }
    return app->dev;
}

void api_dev_jwks(http_req *req)
{
    devissuer *d = dev_or_404(req);
    if (!d)
        return;
    const char *jwks = devissuer_jwks_json(d);
    http_reply_bytes(req, 200, "application/json", jwks, strlen(jwks));
}

void api_dev_token(http_req *req)
{
    devissuer *d = dev_or_404(req);
    json_t *body = NULL;
    if (!d || http_read_json(req, &body))
        return;
    validator v;
    v_init(&v);
    static const char *const allowed[] = {"user", "roles", "ttl_seconds", NULL};
    v_only(&v, body, allowed);
    const char *user = v_string(&v, body, "user", 1, 64, v_check_slug);
    long long ttl = 3600;
    v_integer(&v, body, "ttl_seconds", 60, 86400, &ttl);
    unsigned roles = 0;
    json_t *arr = json_object_get(body, "roles");
    if (!json_is_array(arr)) {
        v_error(&v, "roles", "must be an array of PlatformAdmin, DataScientist, StoreManager");
    } else {
        size_t i;
        json_t *r;
        json_array_foreach(arr, i, r)
        {
            unsigned bit = json_is_string(r) ? auth_role_parse(json_string_value(r)) : 0;
            if (!bit) {
                v_error(&v, "roles", "must hold only PlatformAdmin, DataScientist, StoreManager");
                break;
            }
            roles |= bit;
        }
    }
    if (v_finish(&v, req)) {
        json_decref(body);
        return;
    }
    char *token = devissuer_mint(d, user, roles, (int)ttl);
    if (!token) {
        json_decref(body);
        http_problem(req, 500, "internal", "Internal error", NULL, "the dev issuer failed");
        return;
    }
    /* Every mint is on the record: who was minted, with what, and from where. */
    char names[128], reason[256];
    auth_roles_format(roles, names, sizeof names);
    snprintf(reason, sizeof reason, "minted for user %s with roles [%s], ttl %lld s", user, names,
             ttl);
    json_decref(body);
    access_audit_request(req, NULL, NULL, "dev.token", "auth/dev/token", "succeeded", 200, reason);
    http_reply_json(req, 200,
                    json_pack("{s:s, s:s, s:I}", "access_token", token, "token_type", "Bearer",
                              "expires_in", (json_int_t)ttl));
    free(token);
}

static const char SIGN_IN_STYLE[] =
    "body{font:16px system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem}"
    "label{display:block;margin:.8rem 0 .2rem}input,select{font:inherit;padding:.3rem;width:100%}"
    "button{margin-top:1rem;font:inherit;padding:.4rem 1rem}pre{white-space:pre-wrap;"
    "word-break:break-all;background:#f4f1ec;padding:.6rem}";

static const char SIGN_IN_SCRIPT[] =
    "document.getElementById('f').addEventListener('submit',async e=>{e.preventDefault();"
    "const roles=[...document.getElementById('roles').selectedOptions].map(o=>o.value);"
    "const r=await fetch('/auth/dev/token',{method:'POST',headers:{'Content-Type':"
    "'application/json'},body:JSON.stringify({user:document.getElementById('user').value,roles})});"
    "const j=await r.json();const out=document.getElementById('out');"
    "if(!r.ok){out.textContent=j.detail;return;}"
    "sessionStorage.setItem('roastery_token',j.access_token);"
    "out.textContent='Signed in. Token (also kept in sessionStorage):\\n'+j.access_token;});";

static const char SIGN_IN_BODY[] =
    "<h1>Roastery &mdash; dev sign-in</h1>"
    "<p>This server runs the local dev issuer (<code>ROASTERY_AUTH=dev</code>). Pick who you"
    " are; the token goes through the same validation as an Azure AD token.</p>"
    "<form id=\"f\"><label for=\"user\">User</label>"
    "<input id=\"user\" name=\"user\" value=\"demo-scientist\" pattern=\"[a-z][a-z0-9-]{1,62}\""
    " required><label for=\"roles\">Roles</label>"
    "<select id=\"roles\" name=\"roles\" multiple size=\"3\">"
    "<option selected>DataScientist</option><option>PlatformAdmin</option>"
    "<option>StoreManager</option></select><button type=\"submit\">Sign in</button></form>"
    "<pre id=\"out\" aria-live=\"polite\"></pre>";

static char *sign_in_page, *sign_in_csp;
static pthread_once_t sign_in_once = PTHREAD_ONCE_INIT;

/* 'sha256-<base64>' of text, for a CSP source list. new: free(). */
static char *csp_hash(const char *text)
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_Digest(text, strlen(text), md, &mdlen, EVP_sha256(), NULL);
    unsigned char b64[48];
    EVP_EncodeBlock(b64, md, (int)mdlen);
    return xasprintf("'sha256-%s'", (const char *)b64);
}

/* The page and its policy, once: the inline style and script are allowed by their hashes
 * only, so nothing injected into the page could run, and no site may frame it. */
static void build_sign_in(void)
{
    char *script = csp_hash(SIGN_IN_SCRIPT), *style = csp_hash(SIGN_IN_STYLE);
    sign_in_csp = xasprintf("default-src 'none'; script-src %s; style-src %s; connect-src 'self';"
                            " form-action 'none'; base-uri 'none'; frame-ancestors 'none'",
                            script, style);
    sign_in_page = xasprintf("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
                             "<title>Roastery dev sign-in</title><style>%s</style></head><body>%s"
                             "<script>%s</script></body></html>",
                             SIGN_IN_STYLE, SIGN_IN_BODY, SIGN_IN_SCRIPT);
    free(script);
    free(style);
}

void api_dev_sign_in(http_req *req)
{
    if (!dev_or_404(req))
        return;
    pthread_once(&sign_in_once, build_sign_in);
    http_add_header(req, "Content-Security-Policy", sign_in_csp);
    http_add_header(req, "X-Frame-Options", "DENY");
    http_add_header(req, "Referrer-Policy", "no-referrer");
    http_reply_bytes(req, 200, "text/html; charset=utf-8", sign_in_page, strlen(sign_in_page));
}
