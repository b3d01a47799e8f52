/* Limits on what one client may hold of the HTTP server. CivetWeb gives each connection a worker
 * thread from the moment a worker takes it until it closes, so a few slow clients can hold every
 * thread: this module bounds the time a request's headers may take in total, the rate a body must
 * keep, the connections one peer address and the requests one identity may hold at once.
 * CivetWeb 1.15 cannot close a connection from outside its thread, so a watchdog thread finds the
 * socket and shuts it down, which wakes the worker blocked in its read. */
#ifndef ROASTERY_CONN_LIMITS_H
#define ROASTERY_CONN_LIMITS_H

#include <stddef.h>
#include <stdint.h>

struct mg_connection;
struct mg_request_info;

typedef struct conn_limits_settings {
    int per_address;       /* connections one peer address may hold at once; 0 = no cap */
    int per_identity;      /* requests one identity may have in progress at once; 0 = no cap */
    int header_timeout_ms; /* a request's headers in total, and the idle time between requests */
    int body_grace_ms;     /* time a body may take before the minimum rate applies */
    int body_min_rate;     /* bytes per second a body must average after the grace; 0 = none */
} conn_limits_settings;

typedef struct conn_limits conn_limits;
typedef struct conn_slot conn_slot; /* one connection, from CivetWeb's init to its close */

/* Starts the watchdog thread. s is copied. new: free with conn_limits_free once CivetWeb has
 * stopped (every connection closed). */
conn_limits *conn_limits_new(const conn_limits_settings *s);
void conn_limits_free(conn_limits *cl);

/* CivetWeb's init_connection: registers conn (borrowed until conn_limits_closed) with the
 * header deadline running. new: the slot, freed by conn_limits_closed. */
conn_slot *conn_limits_open(conn_limits *cl, const struct mg_connection *conn);
/* CivetWeb's connection_close, called before the socket is closed; frees s. NULL-safe. */
void conn_limits_closed(conn_slot *s);

enum { CONN_OK = 0, CONN_OVER_ADDRESS = 1, CONN_OVER_IDENTITY = 2 };

/* The headers are in (ri borrowed): stops the header deadline. CONN_OVER_ADDRESS when the peer
 * address already held per_address connections when this one arrived (answer 429 and
 * conn_limits_shut). Every function below is NULL-safe (no limits: CONN_OK, nothing done). */
int conn_limits_request_begin(conn_slot *s, const struct mg_request_info *ri);
/* The reply is sent: releases the identity and starts the idle deadline of keep-alive; with
 * body_left (replied without reading the whole body) CivetWeb then discards the rest, given
 * a second before the socket is shut for reading, and the identity stays counted meanwhile. */
void conn_limits_request_end(conn_slot *s, int body_left);
/* Counts this request against identity key (copied, e.g. the token's oid) until request_end;
 * CONN_OVER_IDENTITY (nothing counted) when key already has per_identity requests in progress. */
int conn_limits_identity_enter(conn_slot *s, const char *key);

/* Body reading: begin when the first byte is asked for; before each read of want bytes, with
 * received bytes already in, expect arms the deadline by which those bytes are due at the
 * minimum rate. Past it the watchdog shuts the socket for reading (the read returns short; a
 * reply can still be written). too_slow says whether that happened; end disarms and returns it. */
void conn_limits_body_begin(conn_slot *s);
void conn_limits_body_expect(conn_slot *s, uint64_t received, size_t want);
int conn_limits_body_too_slow(conn_slot *s);
int conn_limits_body_end(conn_slot *s);

/* Shuts the connection down after the reply written so far (a refused connection must not be
 * kept alive: it would hold its thread again). */
void conn_limits_shut(conn_slot *s);

/* The settings in force for s (borrowed), or NULL without limits. */
const conn_limits_settings *conn_limits_settings_of(const conn_slot *s);

#endif
