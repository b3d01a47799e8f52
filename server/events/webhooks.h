/* Outbound webhooks: per-project subscriptions to platform events, each event written as a
 * delivery row plus a webhook.deliver operation in the emitter's transaction, then POSTed,
 * signed with the webhook's secret, and retried with backoff until the receiver answers 2xx.
 *
 * The wire format (also in openapi.yaml, "Webhook"):
 *   body     {"id": <event uuid>, "type": <event>, "project": <id>, "created_at": <RFC 3339>,
 *             "data": {...}}; the same bytes on every attempt
 *   headers  X-Roastery-Event: <event>, X-Roastery-Delivery: <delivery uuid>,
 *            X-Roastery-Timestamp: <unix seconds of this attempt>,
 *            X-Roastery-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>
 * A receiver recomputes the HMAC over the timestamp header, a '.', and the raw body, compares
 * in constant time, and refuses timestamps more than a few minutes old (replays). */
#ifndef ROASTERY_WEBHOOKS_H
#define ROASTERY_WEBHOOKS_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stddef.h>
#include <sys/socket.h>

#include "core/config.h"

enum {
    WEBHOOKS_SECRET_MAX = 64, /* "whsec_" + 48 hex + NUL fits */
    WEBHOOKS_URL_MAX = 2048,
};

/* The events a webhook may subscribe to, NULL-terminated (borrowed, static). "ping" is not
 * among them: it goes to one webhook when asked. */
const char *const *webhooks_event_names(void);
int webhooks_event_known(const char *event);

/* Who may receive deliveries: dev mode also allows loopback targets and http:// to them;
 * ports is ROASTERY_WEBHOOK_PORTS (comma-separated extra ports, may be NULL); resolve: look the
 * host name up now (at registration) and refuse it when it resolves to a refused address. */
typedef struct {
    int dev;
    const char *ports;
    int resolve;
} webhooks_policy;

/* NULL when url may receive webhooks, else the reason (static, or why, which gets cap bytes).
 * https:// only (http:// only to loopback in dev mode), port 443 (80 in dev mode) or a listed
 * one, no credentials, and a host that is not, and with pol->resolve does not resolve to, an
 * address webhooks_address_refusal refuses. Numeric hosts are judged by their address in
 * every spelling the resolver accepts (0x0a090909, 10.1, [::ffff:10.0.0.1]). */
const char *webhooks_check_url(const char *url, const webhooks_policy *pol, char *why, size_t cap);

/* NULL when a delivery may connect to this address, else what the address is (static text,
 * e.g. "a private address (10.0.0.0/8)"). Only global unicast is allowed: no private,
 * carrier-grade NAT, loopback (unless allow_loopback), link-local, documentation,
 * benchmarking, multicast or reserved IPv4 block, nor the Azure platform endpoint; in IPv6
 * only 2000::/3 minus documentation, 2001::/23 (Teredo, ORCHID), 2002::/16 (6to4), which
 * leaves out ULA, site- and link-local, multicast and every form that embeds an IPv4 address
 * (mapped, compatible, NAT64). */
const char *webhooks_address_refusal(const struct sockaddr *sa, int allow_loopback);
int webhooks_address_allowed(const struct sockaddr *sa, int allow_loopback);

/* Whether a webhook may use this TCP port: 443, 80 in dev mode, or one listed in ports
 * (comma-separated, may be NULL). */
int webhooks_port_allowed(long port, int dev, const char *ports);

/* The generic error classes the delivery log records instead of what the client library
 * or the receiver said (which would make the log a scanner of whatever it reached). */
#define WEBHOOKS_ERR_ADDRESS "address not allowed"
#define WEBHOOKS_ERR_CONNECT "connection failed"
#define WEBHOOKS_ERR_TLS "TLS failed"
#define WEBHOOKS_ERR_TIMEOUT "timeout"

/* A new random secret, "whsec_" + 48 hex characters. */
void webhooks_new_secret(char out[WEBHOOKS_SECRET_MAX]);

/* out = lower-case hex HMAC-SHA256 keyed by secret over timestamp "." body[0..len). */
void webhooks_sign(const char *secret, const char *timestamp, const char *body, size_t len,
                   char out[65]);

/* Emits event (one of webhooks_event_names) of project to every active webhook subscribed to
 * it: one delivery row and one webhook.deliver operation each, all with the same body. Runs
 * inside the caller's open transaction on c when there is one (the deliveries then exist
 * exactly when the caller commits), else in its own. data is borrowed (NULL = {}).
 * RST_OK (also when nobody is subscribed) or RST_EDB. For the forecast and drift emitters:
 *   webhooks_emit(c, project, "forecast.ready", json_pack("{s:s, ...}", "forecast_run_id", ...));
 * then json_decref what you packed. */
int webhooks_emit(PGconn *c, const char *project, const char *event, json_t *data);

/* run.finished for a run that reached completed, failed or canceled (nothing otherwise). */
int webhooks_emit_run_finished(PGconn *c, const char *run_id);
/* promotion.pending_approval or model.promoted for a promotion. */
int webhooks_emit_promotion(PGconn *c, const char *event, const char *promotion_id);

/* A "ping" to one webhook of project, whatever its subscriptions. delivery_id gets the new
 * delivery's uuid. RST_OK, RST_ENOTFOUND or RST_EDB. Own transaction when none is open. */
int webhooks_ping(PGconn *c, const char *project, const char *webhook_id, char delivery_id[37]);

/* Registers the webhook.deliver operation. cfg is borrowed: it must outlive the workers. */
void webhooks_register(const config *cfg);

#endif
