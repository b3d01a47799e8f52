/* Outbound webhooks. Emission only writes rows (in the emitter's transaction), so an event
 * exists exactly when what it reports was committed; the POST happens later in a worker.
 * Deliveries keep their own retry schedule (ROASTERY_WEBHOOK_RETRY_BASE_MS, doubling, with
 * jitter, capped at an hour, ROASTERY_WEBHOOK_MAX_ATTEMPTS attempts): receivers are down for
 * minutes, not the seconds the engine's retries of internal steps are tuned for. */
#include "events/webhooks.h"
#include "db/db.h"
#include "core/log.h"
#include "ops/ops.h"
#include "lib/util.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define RETRY_CAP_MS 3600000 /* the longest wait between two attempts */

static const config *cfg;

static const char *const EVENTS[] = {"run.finished",   "promotion.pending_approval",
                                     "model.promoted", "forecast.ready",
                                     "drift.detected", NULL};

const char *const *webhooks_event_names(void)
{
    return EVENTS;
}

int webhooks_event_known(const char *event)
{
    for (int i = 0; event && EVENTS[i]; i++)
        if (!strcmp(EVENTS[i], event))
            return 1;
    return 0;
}

/* ---- pure pieces ---------------------------------------------------------- */

/* One special-purpose block: deliveries never go there (IANA's special-purpose registries,
 * RFC 6890 and successors, plus the cloud platform's own endpoints). */
typedef struct {
    unsigned char prefix[16];
    int bits;
    const char *what;
} net_block;

static const net_block V4_BLOCKS[] = {
    {{0, 0, 0, 0}, 8, "a 'this network' address (0.0.0.0/8)"},
    {{10, 0, 0, 0}, 8, "a private address (10.0.0.0/8)"},
    {{100, 64, 0, 0}, 10, "a carrier-grade NAT address (100.64.0.0/10)"},
    {{127, 0, 0, 0}, 8, "a loopback address (127.0.0.0/8)"},
    {{168, 63, 129, 16}, 32, "the Azure platform endpoint (168.63.129.16)"},
    {{169, 254, 0, 0}, 16, "a link-local address (169.254.0.0/16, cloud metadata)"},
    {{172, 16, 0, 0}, 12, "a private address (172.16.0.0/12)"},
    {{192, 0, 0, 0}, 24, "an IETF protocol address (192.0.0.0/24)"},
    {{192, 0, 2, 0}, 24, "a documentation address (192.0.2.0/24)"},
    {{192, 88, 99, 0}, 24, "a 6to4 relay address (192.88.99.0/24)"},
    {{192, 168, 0, 0}, 16, "a private address (192.168.0.0/16)"},
    {{198, 18, 0, 0}, 15, "a benchmarking address (198.18.0.0/15)"},
    {{198, 51, 100, 0}, 24, "a documentation address (198.51.100.0/24)"},
    {{203, 0, 113, 0}, 24, "a documentation address (203.0.113.0/24)"},
    {{224, 0, 0, 0}, 4, "a multicast address (224.0.0.0/4)"},
    {{240, 0, 0, 0}, 4, "a reserved or broadcast address (240.0.0.0/4)"},
};

/* Inside 2000::/3, the only IPv6 range that is global unicast, the blocks that are not
 * (or that embed an IPv4 address a gateway would reach for us). */
static const net_block V6_BLOCKS[] = {
    {{0x20, 0x01, 0x0d, 0xb8}, 32, "a documentation address (2001:db8::/32)"},
    {{0x20, 0x01}, 23, "an IETF protocol address (2001::/23, Teredo, ORCHID)"},
    {{0x20, 0x02}, 16, "a 6to4 address (2002::/16, embeds an IPv4 address)"},
    {{0x3f, 0xff}, 20, "a documentation address (3fff::/20)"},
};

/* What lies outside 2000::/3, for the message only: all of it is refused. */
static const net_block V6_OUTSIDE[] = {
    {{0}, 128, "the unspecified address (::)"},
    {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff}, 96, "an IPv4-mapped address (::ffff:0:0/96)"},
    {{0x00, 0x64, 0xff, 0x9b}, 96, "a NAT64 address (64:ff9b::/96, embeds an IPv4 address)"},
    {{0x00, 0x64, 0xff, 0x9b, 0x00, 0x01}, 48, "a NAT64 address (64:ff9b:1::/48)"},
    {{0}, 96, "an IPv4-compatible address (::/96)"},
    {{0xfc}, 7, "a unique local address (fc00::/7)"},
    {{0xfe, 0x80}, 10, "a link-local address (fe80::/10)"},
    {{0xfe, 0xc0}, 10, "a site-local address (fec0::/10)"},
    {{0xff}, 8, "a multicast address (ff00::/8)"},
};

static int in_block(const unsigned char *addr, const net_block *b)
{
    int full = b->bits / 8, rest = b->bits % 8;
    if (memcmp(addr, b->prefix, (size_t)full))
        return 0;
    if (!rest)
        return 1;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (addr[full] & mask) == (b->prefix[full] & mask);
}

static const char *find_block(const unsigned char *addr, const net_block *blocks, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (in_block(addr, &blocks[i]))
            return blocks[i].what;
    return NULL;
}

const char *webhooks_address_refusal(const struct sockaddr *sa, int allow_loopback)
{
    if (!sa)
        return "no address";
    if (sa->sa_family == AF_INET) {
        const unsigned char *b =
            (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr.s_addr;
        if (b[0] == 127 && allow_loopback)
            return NULL;
        return find_block(b, V4_BLOCKS, sizeof V4_BLOCKS / sizeof V4_BLOCKS[0]);
    }
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        const unsigned char *b = a6->s6_addr;
        if (IN6_IS_ADDR_LOOPBACK(a6))
            return allow_loopback ? NULL : "a loopback address (::1)";
        if ((b[0] & 0xe0) != 0x20) { /* not 2000::/3 */
            const char *what = find_block(b, V6_OUTSIDE, sizeof V6_OUTSIDE / sizeof V6_OUTSIDE[0]);
            return what ? what : "a reserved address (outside 2000::/3)";
        }
        return find_block(b, V6_BLOCKS, sizeof V6_BLOCKS / sizeof V6_BLOCKS[0]);
    }
    return "not an IP address";
}

int webhooks_address_allowed(const struct sockaddr *sa, int allow_loopback)
{
    return webhooks_address_refusal(sa, allow_loopback) == NULL;
}

int webhooks_port_allowed(long port, int dev, const char *ports)
{
    if (port == 443 || (dev && port == 80))
        return 1;
    for (const char *p = ports; p && *p;) {
        size_t n = strcspn(p, ",");
        char one[8];
        long v;
        if (n < sizeof one) {
            memcpy(one, p, n);
            one[n] = '\0';
            if (!parse_long(one, 1, 65535, &v) && v == port)
                return 1;
        }
        p += n + (p[n] == ',');
    }
    return 0;
}

/* The host of a URL without IPv6 brackets and without the root's trailing dot ("10.9.9.9."
 * resolves as 10.9.9.9), in out (cap bytes). */
static void bare_host(const char *host, char *out, size_t cap)
{
    size_t n = strlen(host);
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']')
        snprintf(out, cap, "%.*s", (int)(n - 2), host + 1);
    else
        snprintf(out, cap, "%.*s", (int)(n > 1 && host[n - 1] == '.' ? n - 1 : n), host);
}

static int is_localhost_name(const char *h)
{
    size_t n = strlen(h);
    if (n && h[n - 1] == '.') /* "localhost." is the same name */
        n--;
    return (n == 9 && !strncasecmp(h, "localhost", 9)) ||
           (n > 10 && !strncasecmp(h + n - 10, ".localhost", 10));
}

/* Why none of the addresses in list may be used, NULL when all may; *loopback set when one
 * is a loopback address. */
static const char *refusal_of(const struct addrinfo *list, int dev, int *loopback)
{
    for (const struct addrinfo *ai = list; ai; ai = ai->ai_next) {
        const char *what = webhooks_address_refusal(ai->ai_addr, dev);
        if (what)
            return what;
        if (webhooks_address_refusal(ai->ai_addr, 0)) /* allowed only as loopback */
            *loopback = 1;
    }
    return NULL;
}

typedef struct {
    const char *host, *port;
    struct addrinfo *list;
    int rc;
} lookup;

static void *lookup_run(void *arg)
{
    lookup *l = arg;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    l->rc = getaddrinfo(l->host, l->port, &hints, &l->list);
    return NULL;
}

/* Whether host is numeric (in any form the resolver takes) or, when resolve, a name that
 * resolves now; *list then holds its addresses (freeaddrinfo). A name is looked up on a
 * thread of its own: the resolver's stack needs are not bounded by what an HTTP worker
 * thread has. */
static int numeric_or_resolved(const char *host, const char *port, int resolve,
                               struct addrinfo **list)
{
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST};
    *list = NULL;
    if (getaddrinfo(host, port, &hints, list) == 0)
        return 1;
    *list = NULL;
    if (!resolve)
        return 0;
    lookup l = {.host = host, .port = port, .list = NULL, .rc = -1};
    pthread_attr_t attr;
    pthread_t t;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 1 << 20);
    int started = pthread_create(&t, &attr, lookup_run, &l) == 0;
    pthread_attr_destroy(&attr);
    if (!started)
        return 0; /* unchecked now: the connect-time filter still decides */
    pthread_join(t, NULL);
    if (l.rc != 0) {
        if (l.list)
            freeaddrinfo(l.list);
        return 0;
    }
    *list = l.list;
    return 1;
}

const char *webhooks_check_url(const char *url, const webhooks_policy *pol, char *why, size_t cap)
{
    static const char https_only[] = "must be an https:// URL";
    static const char https_or_local[] =
        "must be an https:// URL (http:// only to 127.0.0.1 or localhost in dev mode)";
    int dev = pol && pol->dev;
    if (!url || !*url)
        return "must not be empty";
    size_t n = strlen(url);
    if (n > WEBHOOKS_URL_MAX)
        return "must be at most 2048 characters";
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)url[i] <= 0x20 || (unsigned char)url[i] >= 0x7f)
            return "must be printable ASCII without spaces";
    int https = !strncasecmp(url, "https://", 8), http = !strncasecmp(url, "http://", 7);
    if (!https && !http)
        return dev ? https_or_local : https_only;
    CURLU *u = curl_url();
    char *host = NULL, *user = NULL, *password = NULL, *port = NULL;
    struct addrinfo *list = NULL;
    const char *reason = NULL;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host || !*host ||
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK || !port) {
        reason = "is not a valid URL";
        goto out;
    }
    if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK ||
        curl_url_get(u, CURLUPART_PASSWORD, &password, 0) == CURLUE_OK) {
        reason = "must not carry credentials (the signature authenticates Roastery)";
        goto out;
    }
    if (http && !dev) {
        reason = https_only;
        goto out;
    }
    long p = 0;
    if (parse_long(port, 1, 65535, &p) || !webhooks_port_allowed(p, dev, pol ? pol->ports : NULL)) {
        snprintf(why, cap, "must use port 443%s%s%s (ROASTERY_WEBHOOK_PORTS)", dev ? " or 80" : "",
                 pol && pol->ports ? ", or one of " : "", pol && pol->ports ? pol->ports : "");
        reason = why;
        goto out;
    }
    char bare[256];
    bare_host(host, bare, sizeof bare);
    int loopback = 0;
    /* Numeric hosts in every form the resolver takes (0x0a090909, 10.1, 012.0.0.1,
     * [::ffff:a.b.c.d]) are classified by the address they denote, never by how they are spelt. */
    if (is_localhost_name(bare)) {
        loopback = 1;
        if (!dev) {
            snprintf(why, cap, "must point at a public address, not a loopback name (%s)", bare);
            reason = why;
            goto out;
        }
    } else if (numeric_or_resolved(bare, port, pol && pol->resolve, &list)) {
        const char *what = refusal_of(list, dev, &loopback);
        if (what) {
            snprintf(why, cap, "must point at a public address, not %s", what);
            reason = why;
            goto out;
        }
    }
    /* A name that does not resolve now may later: the check at connect time decides. */
    if (http && (!dev || !loopback))
        reason = dev ? https_or_local : https_only;
out:
    if (list)
        freeaddrinfo(list);
    curl_free(host);
    curl_free(port);
    curl_free(user);
    curl_free(password);
    curl_url_cleanup(u);
    return reason;
}

void webhooks_new_secret(char out[WEBHOOKS_SECRET_MAX])
{
    unsigned char raw[24];
    if (RAND_bytes(raw, sizeof raw) != 1) {
        size_t got = 0;
        while (got < sizeof raw) {
            ssize_t n = getrandom(raw + got, sizeof raw - got, 0);
            if (n > 0)
                got += (size_t)n;
        }
    }
    int off = snprintf(out, WEBHOOKS_SECRET_MAX, "whsec_");
    for (size_t i = 0; i < sizeof raw; i++)
        off += snprintf(out + off, (size_t)(WEBHOOKS_SECRET_MAX - off), "%02x", raw[i]);
}

void webhooks_sign(const char *secret, const char *timestamp, const char *body, size_t len,
                   char out[65])
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    size_t maclen = 0;
    EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(m);
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0),
                           OSSL_PARAM_construct_end()};
    EVP_MAC_init(ctx, (const unsigned char *)secret, strlen(secret), params);
    EVP_MAC_update(ctx, (const unsigned char *)timestamp, strlen(timestamp));
    EVP_MAC_update(ctx, (const unsigned char *)".", 1);
    EVP_MAC_update(ctx, (const unsigned char *)body, len);
    EVP_MAC_final(ctx, mac, &maclen, sizeof mac);
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(m);
    for (size_t i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", i < maclen ? mac[i] : 0);
}

/* ---- emission --------------------------------------------------------------- */

/* Writes one delivery of body to webhook and its operation. In the caller's transaction. */
static int enqueue_delivery(PGconn *c, const char *project, const char *webhook,
                            const char *event_id, const char *event, const char *body,
                            char delivery_id[37])
{
    PGresult *r = db_exec(c,
                          "INSERT INTO webhook_deliveries(webhook_id, project_id, event_id, event,"
                          " body) VALUES ($1::uuid, $2, $3::uuid, $4, $5) RETURNING id",
                          5, (const char *[]){webhook, project, event_id, event, body}, NULL);
    if (!r)
        return RST_EDB;
    char id[37];
    snprintf(id, sizeof id, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    char subject[160], op[37];
    snprintf(subject, sizeof subject, "projects/%s/webhooks/%s", project, webhook);
    json_t *input = json_pack("{s:s, s:s}", "delivery_id", id, "event", event);
    int rc = ops_enqueue(c, "webhook.deliver", subject, input, "roastery", 3, op);
    json_decref(input);
    if (rc)
        return rc;
    r = db_exec(c, "UPDATE webhook_deliveries SET operation_id = $2::uuid WHERE id = $1::uuid", 2,
                (const char *[]){id, op}, NULL);
    if (!r)
        return RST_EDB;
    PQclear(r);
    if (delivery_id)
        snprintf(delivery_id, 37, "%s", id);
    return RST_OK;
}

/* Emits to the webhooks in r (column 0: id), in the caller's or an own transaction. */
static int emit_rows(PGconn *c, PGresult *hooks, const char *project, const char *event,
                     json_t *data, char delivery_id[37])
{
    PGTransactionStatusType ts = PQtransactionStatus(c);
    if (ts == PQTRANS_INERROR || ts == PQTRANS_ACTIVE || ts == PQTRANS_UNKNOWN)
        return RST_EDB;
    int own = ts == PQTRANS_IDLE;
    char *body = NULL;
    int rc = RST_EDB;
    if (own) {
        PGresult *b = db_exec(c, "BEGIN", 0, NULL, NULL);
        if (!b)
            return RST_EDB;
        PQclear(b);
    }
    PGresult *r = db_exec(c,
                          "SELECT gen_random_uuid()::text, to_char(now() AT TIME ZONE 'UTC',"
                          " 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
                          0, NULL, NULL);
    if (!r)
        goto out;
    char event_id[37];
    snprintf(event_id, sizeof event_id, "%s", PQgetvalue(r, 0, 0));
    json_t *doc = json_pack("{s:s, s:s, s:s, s:s, s:o}", "id", event_id, "type", event, "project",
                            project, "created_at", PQgetvalue(r, 0, 1), "data",
                            data ? json_incref(data) : json_object());
    PQclear(r);
    body = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (!body)
        goto out;
    rc = RST_OK;
    for (int i = 0; rc == RST_OK && i < PQntuples(hooks); i++)
        rc = enqueue_delivery(c, project, PQgetvalue(hooks, i, 0), event_id, event, body,
                              delivery_id);
out:
    if (own) {
        PGresult *e = db_exec(c, rc == RST_OK ? "COMMIT" : "ROLLBACK", 0, NULL, NULL);
        if (!e)
            rc = RST_EDB;
        PQclear(e);
    }
    free(body);
    if (rc)
        log_fields(LOG_ERROR, "webhook event not emitted",
                   json_pack("{s:s, s:s}", "project", project, "event", event));
    return rc;
}

int webhooks_emit(PGconn *c, const char *project, const char *event, json_t *data)
{
    if (!webhooks_event_known(event)) {
        log_msg(LOG_ERROR, "webhooks_emit: unknown event %s", event);
        return RST_EINVAL;
    }
    PGresult *r = db_exec(c,
                          "SELECT id FROM webhooks WHERE project_id = $1 AND active"
                          " AND $2 = ANY(events) ORDER BY seq",
                          2, (const char *[]){project, event}, NULL);
    if (!r)
        return RST_EDB;
    int rc = PQntuples(r) ? emit_rows(c, r, project, event, data, NULL) : RST_OK;
    PQclear(r);
    return rc;
}

int webhooks_ping(PGconn *c, const char *project, const char *webhook_id, char delivery_id[37])
{
    PGresult *r = db_exec(c, "SELECT id FROM webhooks WHERE project_id = $1 AND id = $2::uuid", 2,
                          (const char *[]){project, webhook_id}, NULL);
    if (!r)
        return RST_EDB;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return RST_ENOTFOUND;
    }
    json_t *data = json_pack("{s:s, s:s}", "webhook_id", webhook_id, "message",
                             "a test delivery, asked for through the API");
    int rc = emit_rows(c, r, project, "ping", data, delivery_id);
    json_decref(data);
    PQclear(r);
    return rc;
}

/* Emits event with the JSON object that sql ($1 = id) builds in column 0 (project in 1). */
static int emit_from_sql(PGconn *c, const char *event, const char *sql, const char *id)
{
    PGresult *r = db_exec(c, sql, 1, (const char *[]){id}, NULL);
    if (!r)
        return RST_EDB;
    int rc = RST_OK;
    if (PQntuples(r) == 1) {
        json_t *data = json_loads(PQgetvalue(r, 0, 0), 0, NULL);
        rc = data ? webhooks_emit(c, PQgetvalue(r, 0, 1), event, data) : RST_EDB;
        json_decref(data);
    }
    PQclear(r);
    return rc;
}

int webhooks_emit_run_finished(PGconn *c, const char *run_id)
{
    return emit_from_sql(
        c, "run.finished",
        "SELECT json_build_object('run_id', r.id, 'number', r.number, 'experiment', r.experiment,"
        " 'state', r.state, 'algorithm', r.algorithm, 'dataset', r.dataset, 'dataset_version',"
        " r.dataset_version, 'compute_id', r.compute_id, 'queued_at', r.queued_at, 'finished_at',"
        " r.finished_at, 'metrics', r.metrics->'overall', 'error', r.error, 'href',"
        " '/api/v1/runs/' || r.id)::text, r.project_id FROM runs r WHERE r.id = $1::uuid"
        " AND r.state IN ('completed', 'failed', 'canceled')",
        run_id);
}

int webhooks_emit_promotion(PGconn *c, const char *event, const char *promotion_id)
{
    return emit_from_sql(
        c, event,
        "SELECT json_build_object('promotion_id', p.id, 'model', p.model, 'version', p.version,"
        " 'target', p.target, 'state', p.state, 'champion', p.champion, 'gates', p.gates,"
        " 'proposed_by', p.proposed_by, 'decided_by', p.decided_by, 'href',"
        " '/api/v1/promotions/' || p.id)::text, p.project_id FROM promotions p"
        " WHERE p.id = $1::uuid",
        promotion_id);
}

/* ---- delivery ------------------------------------------------------------------ */

/* The receiver's body is read and dropped: nothing of it is kept or shown. */
static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    (void)data;
    (void)arg;
    return size * n;
}

typedef struct {
    int dev;
    int refused; /* addresses the filter refused */
} socket_filter;

static curl_socket_t open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
    (void)purpose;
    socket_filter *f = arg;
    if (!webhooks_address_allowed(&a->addr, f->dev)) {
        f->refused++;
        return CURL_SOCKET_BAD;
    }
    return socket(a->family, a->socktype, a->protocol);
}

/* The class of a failed transfer (WEBHOOKS_ERR_*). */
static const char *error_class(CURLcode rc, const socket_filter *f)
{
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
        return WEBHOOKS_ERR_TIMEOUT;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_USE_SSL_FAILED:
        return WEBHOOKS_ERR_TLS;
    default:
        /* Refused by the filter, unresolved, refused, reset, unreachable: one answer, so
         * that nobody learns which internal hosts and ports exist. */
        return f->refused && rc == CURLE_COULDNT_CONNECT ? WEBHOOKS_ERR_ADDRESS
                                                         : WEBHOOKS_ERR_CONNECT;
    }
}

/* POSTs body to url signed with secret. *status: the HTTP status, 0 when none came back;
 * err (cap bytes): the generic class of what went wrong (WEBHOOKS_ERR_*, "HTTP 5xx"), ""
 * on 2xx. The receiver's body and the client library's message are never kept. */
static void post(const char *url, const char *secret, const char *event, const char *delivery,
                 const char *body, int *status, char *err, size_t cap)
{
    *status = 0;
    err[0] = '\0';
    int dev = cfg && cfg->auth && !strcmp(cfg->auth, "dev");
    char ts[24], sig[65], h_ts[64], h_sig[96], h_event[96], h_delivery[96], ua[64];
    snprintf(ts, sizeof ts, "%lld", (long long)time(NULL));
    webhooks_sign(secret, ts, body, strlen(body), sig);
    snprintf(h_ts, sizeof h_ts, "X-Roastery-Timestamp: %s", ts);
    snprintf(h_sig, sizeof h_sig, "X-Roastery-Signature: sha256=%s", sig);
    snprintf(h_event, sizeof h_event, "X-Roastery-Event: %s", event);
    snprintf(h_delivery, sizeof h_delivery, "X-Roastery-Delivery: %s", delivery);
    snprintf(ua, sizeof ua, "User-Agent: Roastery-Webhooks/%s", ROASTERY_VERSION);
    struct curl_slist *hl = NULL;
    const char *const hs[] = {
        "Content-Type: application/json", "Expect:", ua, h_event, h_delivery, h_ts, h_sig};
    for (size_t i = 0; i < sizeof hs / sizeof hs[0]; i++)
        hl = curl_slist_append(hl, hs[i]);
    char errbuf[CURL_ERROR_SIZE] = "";
    socket_filter filter = {.dev = dev, .refused = 0};
    long timeout_ms = (cfg ? cfg->webhook_timeout_seconds : 10) * 1000L;
    CURL *h = curl_easy_init();
    if (!h) {
        snprintf(err, cap, "%s", WEBHOOKS_ERR_CONNECT);
        curl_slist_free_all(hl);
        return;
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, dev ? "http,https" : "https");
    /* No proxy from https_proxy/all_proxy: the socket filter would only see the proxy. */
    curl_easy_setopt(h, CURLOPT_PROXY, "");
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms < 5000 ? timeout_ms : 5000L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, NULL);
    curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, &filter);
    CURLcode rc = curl_easy_perform(h);
    if (rc != CURLE_OK) {
        snprintf(err, cap, "%s", error_class(rc, &filter));
        /* The detail stays in the server's log, for the operator. */
        log_fields(LOG_INFO, "webhook delivery failed",
                   json_pack("{s:s, s:s, s:s}", "delivery", delivery, "class", err, "detail",
                             errbuf[0] ? errbuf : curl_easy_strerror(rc)));
    } else {
        long code = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
        *status = (int)code;
        if (code < 200 || code > 299)
            snprintf(err, cap, "HTTP %ldxx", code / 100 % 10);
    }
    curl_easy_cleanup(h);
    curl_slist_free_all(hl);
}

static unsigned random_bits(void)
{
    unsigned v = 0;
    if (getrandom(&v, sizeof v, 0) != (ssize_t)sizeof v)
        v = (unsigned)now_ms_monotonic();
    return v;
}

/* Records one attempt. state: delivered, retrying or failed; wait_ms for retrying. */
static int record(PGconn *c, const char *id, int attempt, int status, const char *err,
                  long duration_ms, const char *state, long wait_ms)
{
    char a[16], st[16], d[24], w[24];
    snprintf(a, sizeof a, "%d", attempt);
    snprintf(st, sizeof st, "%d", status);
    snprintf(d, sizeof d, "%ld", duration_ms);
    snprintf(w, sizeof w, "%ld", wait_ms);
    PGresult *r = db_exec(
        c,
        "UPDATE webhook_deliveries SET attempts = $2::int, last_status = $3::int,"
        " last_error = $4, last_attempt_at = now(), state = $6,"
        " history = history || jsonb_build_array(jsonb_build_object('attempt', $2::int, 'at',"
        " now(), 'status', $3::int, 'error', $4::text, 'duration_ms', $5::bigint)),"
        " delivered_at = CASE WHEN $6 = 'delivered' THEN now() END,"
        " next_attempt_at = CASE WHEN $6 = 'retrying' THEN now() + make_interval(secs =>"
        " $7::double precision / 1000) END WHERE id = $1::uuid",
        7, (const char *[]){id, a, status ? st : NULL, err[0] ? err : NULL, d, state, w}, NULL);
    if (!r)
        return RST_EDB;
    PQclear(r);
    return RST_OK;
}

static ops_result deliver(ops_ctx *ctx)
{
    PGconn *c = ops_conn(ctx);
    const char *id = json_string_value(json_object_get(ops_input(ctx), "delivery_id"));
    if (!id) {
        ops_set_error(ctx, "bad_input", "no delivery_id");
        return OPS_FAIL;
    }
    PGresult *r = db_exec(c,
                          "SELECT d.state, d.attempts, d.event, d.body, w.url, w.secret, w.active,"
                          " w.id FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id"
                          " WHERE d.id = $1::uuid",
                          1, (const char *[]){id}, NULL);
    if (!r)
        return OPS_RETRY;
    if (PQntuples(r) == 0) {
        PQclear(r);
        ops_set_output(ctx, json_pack("{s:s}", "skipped", "the webhook was deleted"));
        return OPS_DONE;
    }
    const char *state = PQgetvalue(r, 0, 0);
    if (!strcmp(state, "delivered") || !strcmp(state, "failed") || !strcmp(state, "skipped")) {
        ops_set_output(ctx, json_pack("{s:s, s:s}", "delivery_id", id, "state", state));
        PQclear(r);
        return OPS_DONE;
    }
    if (PQgetvalue(r, 0, 6)[0] != 't') {
        PQclear(r);
        PQclear(db_exec(c,
                        "UPDATE webhook_deliveries SET state = 'skipped', last_error ="
                        " 'the webhook is disabled', next_attempt_at = NULL WHERE id = $1::uuid",
                        1, (const char *[]){id}, NULL));
        ops_set_output(ctx, json_pack("{s:s, s:s}", "delivery_id", id, "state", "skipped"));
        return OPS_DONE;
    }
    long done = 0;
    parse_long(PQgetvalue(r, 0, 1), 0, 1000000, &done);
    int attempt = (int)done + 1;
    char *event = xstrdup(PQgetvalue(r, 0, 2));
    char *body = xstrdup(PQgetvalue(r, 0, 3));
    char *url = xstrdup(PQgetvalue(r, 0, 4));
    char *secret = xstrdup(PQgetvalue(r, 0, 5));
    char *webhook = xstrdup(PQgetvalue(r, 0, 7));
    PQclear(r);

    int status = 0;
    char err[300], why[200];
    int64_t t0 = now_ms_monotonic();
    /* Webhooks registered before a rule tightened are held to it too (the connect-time
     * filter still decides on the resolved address). */
    webhooks_policy pol = {.dev = cfg && cfg->auth && !strcmp(cfg->auth, "dev"),
                           .ports = cfg ? cfg->webhook_ports : NULL};
    int url_ok = webhooks_check_url(url, &pol, why, sizeof why) == NULL;
    if (url_ok)
        post(url, secret, event, id, body, &status, err, sizeof err);
    else
        snprintf(err, sizeof err, "%s", WEBHOOKS_ERR_ADDRESS);
    long took = (long)(now_ms_monotonic() - t0);
    int max_attempts = cfg ? cfg->webhook_max_attempts : 8;
    ops_result res;
    if (!url_ok) {
        record(c, id, attempt, 0, err, took, "failed", 0);
        ops_set_error(ctx, "address_not_allowed", "the webhook's URL is no longer allowed");
        res = OPS_FAIL;
    } else if (status >= 200 && status <= 299) {
        res = record(c, id, attempt, status, "", took, "delivered", 0) ? OPS_RETRY : OPS_DONE;
        ops_set_output(ctx, json_pack("{s:s, s:s, s:i, s:i}", "delivery_id", id, "state",
                                      "delivered", "status", status, "attempts", attempt));
    } else if (status == 410) {
        /* Gone: the receiver asks us to stop; no later event is sent there either. */
        PQclear(db_exec(c, "BEGIN", 0, NULL, NULL));
        int rc = record(c, id, attempt, status, err, took, "failed", 0);
        PGresult *u = rc ? NULL
                         : db_exec(c,
                                   "UPDATE webhooks SET active = false, disabled_reason = 'the"
                                   " receiver answered 410 Gone at ' || now(), updated_at = now(),"
                                   " version = version + 1 WHERE id = $1::uuid",
                                   1, (const char *[]){webhook}, NULL);
        PQclear(u);
        PGresult *e = db_exec(c, u ? "COMMIT" : "ROLLBACK", 0, NULL, NULL);
        PQclear(e);
        if (!u || !e) {
            res = OPS_RETRY;
        } else {
            log_fields(LOG_WARN, "webhook disabled: the receiver answered 410",
                       json_pack("{s:s}", "webhook", webhook));
            ops_set_error(ctx, "gone", "the receiver answered 410 Gone: the webhook is disabled");
            res = OPS_FAIL;
        }
    } else if (attempt >= max_attempts) {
        record(c, id, attempt, status, err, took, "failed", 0);
        char msg[400];
        snprintf(msg, sizeof msg, "not delivered after %d attempts: %s", attempt, err);
        ops_set_error(ctx, "undelivered", msg);
        res = OPS_FAIL;
    } else {
        long wait = ops_backoff_ms(attempt, cfg ? cfg->webhook_retry_base_ms : 30000, RETRY_CAP_MS,
                                   random_bits());
        record(c, id, attempt, status, err, took, "retrying", wait);
        /* Not the engine's OPS_RETRY: the delivery keeps its own count and schedule. */
        ops_set_wait_ms(ctx, wait);
        res = OPS_WAIT;
    }
    free(event);
    free(body);
    free(url);
    free(secret);
    free(webhook);
    return res;
}

/* Keeps the delivery log and the Event Grid record bounded: 30 days, long after Event Grid's
 * 24 hours of redeliveries and any retry here. At most once a minute per process. */
static void prune(PGconn *conn)
{
    static _Atomic int64_t last;
    int64_t now = now_ms_monotonic(), seen = last;
    if (seen && now - seen < 60000)
        return;
    last = now;
    PQclear(db_exec(conn,
                    "DELETE FROM webhook_deliveries WHERE id IN (SELECT id FROM"
                    " webhook_deliveries WHERE created_at < now() - interval '30 days'"
                    " AND state IN ('delivered', 'failed', 'skipped') LIMIT 1000)",
                    0, NULL, NULL));
    PQclear(db_exec(conn,
                    "DELETE FROM eventgrid_events WHERE id IN (SELECT id FROM eventgrid_events"
                    " WHERE received_at < now() - interval '30 days' LIMIT 1000)",
                    0, NULL, NULL));
}

void webhooks_register(const config *c)
{
    cfg = c;
    ops_register("webhook.deliver", deliver);
    ops_register_periodic(prune);
}
