/* The dev issuer's front door (ROASTERY_AUTH=dev only): its JWKS, a token
 * endpoint and a sign-in page for the demo. Tokens minted here are checked
 * by exactly the same verifier as Azure AD's. */
#include "api.h"
#include "http/app.h"
#include "identity/auth.h"
#include "identity/devissuer.h"
#include "lib/util.h"
#include "http/validate.h"

#include <stdlib.h>
#include <string.h>

static devissuer *dev_or_404(http_req *req)
{
    app_ctx *app = http_app(req);
    if (!app->dev)
        http_problem(req, 404, "not-found", "Not found", NULL,
                     "the dev issuer runs only with ROASTERY_AUTH=dev");
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
    json_decref(body);
    if (!token) {
        http_problem(req, 500, "internal", "Internal error", NULL, "the dev issuer failed");
        return;
    }
    http_reply_json(req, 200,
                    json_pack("{s:s, s:s, s:I}", "access_token", token, "token_type", "Bearer",
                              "expires_in", (json_int_t)ttl));
    free(token);
}

static const char SIGN_IN_PAGE[] =
    "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
    "<title>Roastery dev sign-in</title>"
    "<style>body{font:16px system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem}"
    "label{display:block;margin:.8rem 0 .2rem}input,select{font:inherit;padding:.3rem;width:100%}"
    "button{margin-top:1rem;font:inherit;padding:.4rem 1rem}pre{white-space:pre-wrap;"
    "word-break:break-all;background:#f4f1ec;padding:.6rem}</style></head><body>"
    "<h1>Roastery &mdash; dev sign-in</h1>"
    "<p>This server runs the local dev issuer (<code>ROASTERY_AUTH=dev</code>). Pick who you"
    " are; the token goes through the same validation as an Azure AD token.</p>"
    "<form id=\"f\"><label for=\"user\">User</label>"
    "<input id=\"user\" name=\"user\" value=\"demo-scientist\" pattern=\"[a-z][a-z0-9-]{1,62}\""
    " required><label for=\"roles\">Roles</label>"
    "<select id=\"roles\" name=\"roles\" multiple size=\"3\">"
    "<option selected>DataScientist</option><option>PlatformAdmin</option>"
    "<option>StoreManager</option></select><button type=\"submit\">Sign in</button></form>"
    "<pre id=\"out\" aria-live=\"polite\"></pre><script>"
    "document.getElementById('f').addEventListener('submit',async e=>{e.preventDefault();"
    "const roles=[...document.getElementById('roles').selectedOptions].map(o=>o.value);"
    "const r=await fetch('/auth/dev/token',{method:'POST',headers:{'Content-Type':"
    "'application/json'},body:JSON.stringify({user:document.getElementById('user').value,roles})});"
    "const j=await r.json();const out=document.getElementById('out');"
    "if(!r.ok){out.textContent=j.detail;return;}"
    "sessionStorage.setItem('roastery_token',j.access_token);"
    "out.textContent='Signed in. Token (also kept in sessionStorage):\\n'+j.access_token;});"
    "</script></body></html>";

void api_dev_sign_in(http_req *req)
{
    if (!dev_or_404(req))
        return;
    http_reply_bytes(req, 200, "text/html; charset=utf-8", SIGN_IN_PAGE, sizeof SIGN_IN_PAGE - 1);
}
