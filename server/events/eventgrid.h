/* Azure Event Grid deliveries, parsed and validated without side effects: the Event Grid
 * schema and the CloudEvents 1.0 schema, the subscription-validation handshake, the
 * Microsoft.Storage.BlobCreated data, blob subjects and dataset container paths. */
#ifndef ROASTERY_EVENTGRID_H
#define ROASTERY_EVENTGRID_H

#include <jansson.h>
#include <stddef.h>

enum {
    EVENTGRID_MAX_EVENTS = 5000, /* Event Grid's own batch limit */
    EVENTGRID_MAX_ID = 256,
};

typedef enum { EVENTGRID_SCHEMA_EVENTGRID, EVENTGRID_SCHEMA_CLOUDEVENTS } eventgrid_schema;

typedef enum {
    EVENTGRID_UNKNOWN = 0,
    EVENTGRID_VALIDATION,           /* Microsoft.EventGrid.SubscriptionValidationEvent */
    EVENTGRID_SUBSCRIPTION_DELETED, /* Microsoft.EventGrid.SubscriptionDeletedEvent */
    EVENTGRID_BLOB_CREATED,         /* Microsoft.Storage.BlobCreated */
} eventgrid_kind;

/* One event; every string is borrowed from the batch's parsed JSON. */
typedef struct {
    eventgrid_schema schema;
    eventgrid_kind kind;
    const char *id;
    const char *type;
    const char *topic;      /* Event Grid "topic", CloudEvents "source"; "" when absent */
    const char *subject;    /* "" when absent */
    const char *event_time; /* RFC 3339, or NULL when absent (CloudEvents "time" is optional) */
    /* validation */
    const char *validation_code;
    const char *validation_url;
    /* BlobCreated */
    const char *url;
    const char *etag;         /* NULL when absent */
    const char *content_type; /* NULL when absent */
    long long content_length; /* -1 when absent */
} eventgrid_event;

typedef struct {
    json_t *root; /* owns every string of events */
    eventgrid_event *events;
    size_t count;
} eventgrid_batch;

/* Parses a delivery body: a JSON array of events (either schema, told apart per event by
 * CloudEvents' "specversion") or one CloudEvents object. Returns RST_OK and fills *out (free
 * with eventgrid_batch_free), or RST_EINVAL with *errors (new: a JSON array of {field, reason},
 * fields like "[0].eventType" or "[2].data.url"; caller json_decrefs). Unknown event types are
 * not an error here: they come back with kind EVENTGRID_UNKNOWN. */
int eventgrid_parse(const char *body, size_t len, eventgrid_batch *out, json_t **errors);
void eventgrid_batch_free(eventgrid_batch *b);

/* The kind of an event type name. */
eventgrid_kind eventgrid_kind_of(const char *type);

/* Whether s is an RFC 3339 date-time (e.g. 2024-05-01T06:00:12.1234567Z). */
int eventgrid_time_ok(const char *s);

/* Splits a blob subject "/blobServices/default/containers/<c>/blobs/<name>": copies the
 * container into container (cap bytes) and points *name into subject. RST_OK or RST_EINVAL. */
int eventgrid_blob_subject(const char *subject, char *container, size_t cap, const char **name);

/* Checks a dataset's event_grid_path: NULL when fine, else the reason (static). A path is a
 * folder of a container, "/blobServices/default/containers/<container>/blobs/<folder>/",
 * outside Roastery's own projects/ keys (its writes there must not register versions). */
const char *eventgrid_path_check(const char *path);

/* 1 when a blob subject lies under a dataset's event_grid_path, else 0. */
int eventgrid_path_match(const char *path, const char *subject);

/* Compares a presented shared secret with the configured one in time that depends on
 * neither's content or length (both are hashed first). 1 when equal; 0 when not or when
 * either is NULL or empty. */
int eventgrid_secret_equal(const char *presented, const char *expected);

#endif
