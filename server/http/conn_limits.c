/* Connection limits and the watchdog that enforces them. Every connection a CivetWeb worker holds
 * has a slot here; the watchdog thread wakes at the next deadline, and when one passes it shuts
 * that connection's socket down, so the worker's blocked read returns at once. */
#include "http/conn_limits.h"
#include "http/problem.h"
#include "core/log.h"
#include "core/metrics.h"
#include "lib/util.h"

#include <arpa/inet.h>
#include <civetweb.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define TICK_MS 100   /* longest sleep of the watchdog: deadlines are kept to about this */
#define DRAIN_MS 1000 /* CivetWeb reads and discards a body left unread, for at most this */

/* Where a connection is; the deadline (if any) belongs to the phase. */
typedef enum {
    PH_HEADERS, /* waiting for a request's headers (also idle keep-alive): the header deadline */
    PH_REQUEST, /* headers in, handler running: no deadline */
    PH_BODY,    /* the handler reads the body: due at the minimum rate */
    PH_DRAIN,   /* replied without reading the body, which CivetWeb discards: DRAIN_MS */
} phase;

struct conn_slot {
    conn_limits *cl;
    const struct mg_connection *conn;
    conn_slot *prev, *next;
    int resolved; /* addr and ports known */
    char addr[48];
    int port, local_port;
    int over; /* its address held per_address connections when it arrived */
    phase ph;
    int64_t deadline; /* monotonic ms, 0 = none */
    int fired;        /* the socket has been shut down */
    char identity[72];
    int64_t opened, body_start;
};

struct conn_limits {
    conn_limits_settings set;
    pthread_mutex_t mu;
    pthread_cond_t wake;
    pthread_t watchdog;
    int stopping;
    conn_slot *slots;
};

/* ---- finding the socket ------------------------------------------------------- */

/* Address and port of sa as text and a number; 0 when it is not IPv4 or IPv6. */
static int endpoint(const struct sockaddr_storage *sa, char *addr, size_t len, int *port)
{
    if (sa->ss_family == AF_INET) {
        struct sockaddr_in in;
        memcpy(&in, sa, sizeof in);
        *port = ntohs(in.sin_port);
        return inet_ntop(AF_INET, &in.sin_addr, addr, (socklen_t)len) != NULL;
    }
    if (sa->ss_family == AF_INET6) {
        struct sockaddr_in6 in6;
        memcpy(&in6, sa, sizeof in6);
        *port = ntohs(in6.sin6_port);
        return inet_ntop(AF_INET6, &in6.sin6_addr, addr, (socklen_t)len) != NULL;
    }
    return 0;
}

static int socket_is(const conn_slot *s, int fd)
{
    struct sockaddr_storage peer, local;
    socklen_t pl = sizeof peer, ll = sizeof local;
    if (getsockname(fd, (struct sockaddr *)&local, &ll) ||
        getpeername(fd, (struct sockaddr *)&peer, &pl))
        return 0;
    char addr[INET6_ADDRSTRLEN], ignored[INET6_ADDRSTRLEN];
    int pport = 0, lport = 0;
    return endpoint(&peer, addr, sizeof addr, &pport) &&
           endpoint(&local, ignored, sizeof ignored, &lport) && pport == s->port &&
           lport == s->local_port && !strcmp(addr, s->addr);
}

/* The descriptor of s's socket, which CivetWeb does not expose: the one whose peer and local port
 * are s's (the server side of a connection; the client side of a loopback connection to ourselves
 * has them the other way round). Called with the lock held: s's worker cannot close the socket
 * meanwhile (its close callback takes the lock first), so what is found is s's. -1 if not found. */
static int find_socket(const conn_slot *s)
{
    int found = -1;
    DIR *d = opendir("/proc/self/fd");
    if (!d) { /* no /proc: try the usual range */
        for (int fd = 0; fd < 4096 && found < 0; fd++)
            if (socket_is(s, fd))
                found = fd;
        return found;
    }
    struct dirent *e;
    while (found < 0 && (e = readdir(d))) {
        char *end = NULL;
        long fd = strtol(e->d_name, &end, 10);
        if (end == e->d_name || *end || fd == dirfd(d))
            continue;
        if (socket_is(s, (int)fd))
            found = (int)fd;
    }
    closedir(d);
    return found;
}

/* ---- under the lock ----------------------------------------------------------- */

/* Takes s's peer from ri and decides whether its address is over the cap. */
static void resolve(conn_limits *cl, conn_slot *s, const struct mg_request_info *ri)
{
    snprintf(s->addr, sizeof s->addr, "%s", ri->remote_addr);
    s->port = ri->remote_port;
    s->local_port = ri->server_port;
    s->resolved = 1;
    if (cl->set.per_address <= 0)
        return;
    int held = 0;
    for (conn_slot *o = cl->slots; o; o = o->next)
        held += o != s && o->resolved && !o->over && !strcmp(o->addr, s->addr);
    s->over = held >= cl->set.per_address;
}

/* Answers a connection over its address's cap without reading its request (it may never
 * come), then closes it: waiting for the headers would hold the thread the cap protects. */
static void refuse(conn_limits *cl, conn_slot *s)
{
    s->fired = 1;
    metrics_count("roastery_connections_refused_total",
                  "Connections refused: their address held ROASTERY_CONN_PER_ADDRESS already.");
    int fd = find_socket(s);
    if (fd < 0)
        return;
    char id[33], body[512], reply[1024];
    random_hex_id(id);
    int bn = snprintf(body, sizeof body,
                      "{\"type\":\"" HTTP_PROBLEM_BASE "too-many-connections\","
                      "\"title\":\"Too many connections\",\"status\":429,"
                      "\"detail\":\"this address holds %d connections already; the limit is %d\","
                      "\"request_id\":\"%s\"}",
                      cl->set.per_address, cl->set.per_address, id);
    int rn = snprintf(reply, sizeof reply,
                      "HTTP/1.1 429 Too Many Requests\r\n"
                      "Content-Type: application/problem+json\r\nContent-Length: %d\r\n"
                      "Retry-After: 1\r\nX-Request-Id: %s\r\nX-Content-Type-Options: nosniff\r\n"
                      "Cache-Control: no-store\r\nConnection: close\r\n\r\n%s",
                      bn, id, body);
    if (rn > 0 && (size_t)rn < sizeof reply) {
        ssize_t w = send(fd, reply, (size_t)rn, MSG_DONTWAIT | MSG_NOSIGNAL);
        (void)w; /* best effort: the connection closes either way */
    }
    shutdown(fd, SHUT_RDWR);
}

static void fire(conn_slot *s)
{
    static const char *const names[] = {"headers", "request", "body", "drain"};
    s->fired = 1;
    if (s->ph == PH_BODY)
        metrics_count("roastery_body_too_slow_total",
                      "Request bodies cut off below ROASTERY_BODY_MIN_BYTES_PER_SECOND.");
    else if (s->ph == PH_HEADERS)
        metrics_count("roastery_header_timeouts_total",
                      "Connections closed: no complete request within ROASTERY_HEADER_TIMEOUT_MS.");
    int fd = find_socket(s);
    /* A body's reader still answers (408); headers have nobody to answer to. */
    if (fd >= 0)
        shutdown(fd, s->ph == PH_HEADERS ? SHUT_RDWR : SHUT_RD);
    if (log_enabled(LOG_DEBUG))
        log_fields(LOG_DEBUG, "connection deadline passed",
                   json_pack("{s:s, s:s}", "remote", s->addr, "phase", names[s->ph]));
}

static void *watchdog_main(void *arg)
{
    conn_limits *cl = arg;
    pthread_mutex_lock(&cl->mu);
    while (!cl->stopping) {
        int64_t now = now_ms_monotonic(), next = now + TICK_MS;
        for (conn_slot *s = cl->slots; s; s = s->next) {
            if (!s->resolved) {
                /* CivetWeb marks the connection a request right after init_connection returns;
                 * until then mg_get_request_info is NULL (look again in a millisecond). The peer
                 * fields it then shows were written before init_connection, which published
                 * them to us through our lock. */
                const struct mg_request_info *ri = mg_get_request_info(s->conn);
                if (!ri) {
                    if (now - s->opened < 1000)
                        next = now + 1;
                    continue;
                }
                resolve(cl, s, ri);
            }
            if (s->fired)
                continue;
            if (s->over && s->ph == PH_HEADERS)
                refuse(cl, s);
            else if (s->deadline && s->deadline <= now)
                fire(s);
            else if (s->deadline && s->deadline < next)
                next = s->deadline;
        }
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t wait_ms = next - now_ms_monotonic();
        if (wait_ms < 1)
            wait_ms = 1;
        ts.tv_sec += wait_ms / 1000;
        ts.tv_nsec += (wait_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&cl->wake, &cl->mu, &ts);
    }
    pthread_mutex_unlock(&cl->mu);
    return NULL;
}

/* ---- the API ------------------------------------------------------------------ */

conn_limits *conn_limits_new(const conn_limits_settings *s)
{
    conn_limits *cl = xcalloc(1, sizeof *cl);
    cl->set = *s;
    pthread_mutex_init(&cl->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&cl->wake, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&cl->watchdog, NULL, watchdog_main, cl))
        abort();
    return cl;
}

void conn_limits_free(conn_limits *cl)
{
    if (!cl)
        return;
    pthread_mutex_lock(&cl->mu);
    cl->stopping = 1;
    pthread_cond_signal(&cl->wake);
    pthread_mutex_unlock(&cl->mu);
    pthread_join(cl->watchdog, NULL);
    while (cl->slots) { /* none once CivetWeb has stopped; freed anyway */
        conn_slot *s = cl->slots;
        cl->slots = s->next;
        free(s);
    }
    pthread_cond_destroy(&cl->wake);
    pthread_mutex_destroy(&cl->mu);
    free(cl);
}

conn_slot *conn_limits_open(conn_limits *cl, const struct mg_connection *conn)
{
    if (!cl)
        return NULL;
    conn_slot *s = xcalloc(1, sizeof *s);
    s->cl = cl;
    s->conn = conn;
    s->ph = PH_HEADERS;
    s->opened = now_ms_monotonic();
    s->deadline = s->opened + cl->set.header_timeout_ms;
    pthread_mutex_lock(&cl->mu);
    s->next = cl->slots;
    if (cl->slots)
        cl->slots->prev = s;
    cl->slots = s;
    pthread_cond_signal(&cl->wake); /* its address is looked at now, not at the next tick */
    pthread_mutex_unlock(&cl->mu);
    return s;
}

void conn_limits_closed(conn_slot *s)
{
    if (!s)
        return;
    conn_limits *cl = s->cl;
    pthread_mutex_lock(&cl->mu);
    if (s->prev)
        s->prev->next = s->next;
    else
        cl->slots = s->next;
    if (s->next)
        s->next->prev = s->prev;
    pthread_mutex_unlock(&cl->mu);
    free(s);
}

int conn_limits_request_begin(conn_slot *s, const struct mg_request_info *ri)
{
    if (!s)
        return CONN_OK;
    pthread_mutex_lock(&s->cl->mu);
    if (!s->resolved)
        resolve(s->cl, s, ri);
    s->ph = PH_REQUEST;
    s->deadline = 0;
    s->identity[0] = '\0'; /* kept through a drain; each request is counted anew */
    int over = s->over;
    pthread_mutex_unlock(&s->cl->mu);
    return over ? CONN_OVER_ADDRESS : CONN_OK;
}

void conn_limits_request_end(conn_slot *s, int body_left)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->cl->mu);
    if (body_left) {
        /* CivetWeb now reads the rest of the body to discard it, which a trickle would make
         * last for ever: a client that sends its body at once loses nothing, the rest are cut.
         * The identity stays counted meanwhile: its thread is still held. */
        s->ph = PH_DRAIN;
        s->deadline = now_ms_monotonic() + DRAIN_MS;
    } else {
        s->ph = PH_HEADERS;
        s->identity[0] = '\0';
        s->deadline = now_ms_monotonic() + s->cl->set.header_timeout_ms;
    }
    pthread_mutex_unlock(&s->cl->mu);
}

int conn_limits_identity_enter(conn_slot *s, const char *key)
{
    if (!s || s->cl->set.per_identity <= 0 || !key || !*key)
        return CONN_OK;
    conn_limits *cl = s->cl;
    pthread_mutex_lock(&cl->mu);
    int held = 0;
    for (conn_slot *o = cl->slots; o; o = o->next)
        held += o != s && !strcmp(o->identity, key);
    int over = held >= cl->set.per_identity;
    if (!over)
        snprintf(s->identity, sizeof s->identity, "%s", key);
    pthread_mutex_unlock(&cl->mu);
    return over ? CONN_OVER_IDENTITY : CONN_OK;
}

void conn_limits_body_begin(conn_slot *s)
{
    if (s)
        s->body_start = now_ms_monotonic(); /* read by this worker only */
}

void conn_limits_body_expect(conn_slot *s, uint64_t received, size_t want)
{
    if (!s || s->cl->set.body_min_rate <= 0)
        return;
    /* The first received + want bytes are due by then at the minimum average rate; a client
     * that keeps the rate is never cut, one that trickles is cut within a tick of falling
     * behind (not after each byte, as CivetWeb's own timeout, which restarts per byte). */
    uint64_t due_ms = (received + want) * 1000 / (uint64_t)s->cl->set.body_min_rate;
    int64_t deadline = s->body_start + s->cl->set.body_grace_ms + (int64_t)due_ms;
    pthread_mutex_lock(&s->cl->mu);
    s->ph = PH_BODY;
    s->deadline = deadline;
    pthread_mutex_unlock(&s->cl->mu);
}

int conn_limits_body_too_slow(conn_slot *s)
{
    if (!s)
        return 0;
    pthread_mutex_lock(&s->cl->mu);
    int slow = s->fired && s->ph == PH_BODY;
    pthread_mutex_unlock(&s->cl->mu);
    return slow;
}

int conn_limits_body_end(conn_slot *s)
{
    if (!s)
        return 0;
    pthread_mutex_lock(&s->cl->mu);
    s->deadline = 0;
    int slow = s->fired && s->ph == PH_BODY;
    s->ph = PH_REQUEST;
    pthread_mutex_unlock(&s->cl->mu);
    return slow;
}

void conn_limits_shut(conn_slot *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->cl->mu);
    if (!s->fired) {
        s->fired = 1;
        int fd = find_socket(s);
        if (fd >= 0)
            shutdown(fd, SHUT_RDWR); /* what was written still goes out before the FIN */
    }
    pthread_mutex_unlock(&s->cl->mu);
}

const conn_limits_settings *conn_limits_settings_of(const conn_slot *s)
{
    return s ? &s->cl->set : NULL;
}
