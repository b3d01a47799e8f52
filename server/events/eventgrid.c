/* Event Grid deliveries, checked field by field before anything acts on them, so a
 * malformed delivery is refused whole (400: Event Grid dead-letters it rather than retrying
 * a request that can never succeed). */
#include "events/eventgrid.h"
#include "lib/util.h"
#include "lib/jsonguard.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char BLOB_PREFIX[] = "/blobServices/default/containers/";

eventgrid_kind eventgrid_kind_of(const char *type)
{
    if (!type)
        return EVENTGRID_UNKNOWN;
    if (!strcmp(type, "Microsoft.EventGrid.SubscriptionValidationEvent"))
        return EVENTGRID_VALIDATION;
    if (!strcmp(type, "Microsoft.EventGrid.SubscriptionDeletedEvent"))
        return EVENTGRID_SUBSCRIPTION_DELETED;
    if (!strcmp(type, "Microsoft.Storage.BlobCreated"))
        return EVENTGRID_BLOB_CREATED;
    return EVENTGRID_UNKNOWN;
}

/* Reads n digits of s as a number into *out; 0 when they are not all digits. */
static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 1;
}

int eventgrid_time_ok(const char *s)
{
    int y, mo, d, h, mi, se;
    if (!s || strlen(s) < 20)
        return 0;
    if (!digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' ||
        !digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') || !digits(s + 11, 2, &h) ||
        s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' || !digits(s + 17, 2, &se))
        return 0;
    (void)y;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
        return 0;
    const char *p = s + 19;
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p))
            return 0;
        while (isdigit((unsigned char)*p))
            p++;
    }
    if ((*p == 'Z' || *p == 'z') && p[1] == '\0')
        return 1;
    int oh, om;
    return (*p == '+' || *p == '-') && digits(p + 1, 2, &oh) && p[3] == ':' &&
           digits(p + 4, 2, &om) && p[6] == '\0' && oh <= 23 && om <= 59;
}

int eventgrid_blob_subject(const char *subject, char *container, size_t cap, const char **name)
{
    size_t pl = sizeof BLOB_PREFIX - 1;
    if (!subject || strncmp(subject, BLOB_PREFIX, pl))
        return RST_EINVAL;
    const char *c = subject + pl;
    const char *slash = strchr(c, '/');
    if (!slash || slash == c || strncmp(slash, "/blobs/", 7) || !slash[7])
        return RST_EINVAL;
    size_t n = (size_t)(slash - c);
    if (n >= cap)
        return RST_EINVAL;
    memcpy(container, c, n);
    container[n] = '\0';
    *name = slash + 7;
    return RST_OK;
}

/* Azure's container names: 3 to 63 lower-case letters, digits and single dashes, starting and
 * ending with a letter or digit. */
static int container_ok(const char *c, size_t n)
{
    if (n < 3 || n > 63 || c[0] == '-' || c[n - 1] == '-')
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (!(islower((unsigned char)c[i]) || isdigit((unsigned char)c[i]) || c[i] == '-'))
            return 0;
        if (c[i] == '-' && i + 1 < n && c[i + 1] == '-')
            return 0;
    }
    return 1;
}

const char *eventgrid_path_check(const char *path)
{
    static const char shape[] =
        "must be /blobServices/default/containers/<container>/blobs/<folder>/";
    size_t pl = sizeof BLOB_PREFIX - 1;
    if (!path || strncmp(path, BLOB_PREFIX, pl))
        return shape;
    if (strlen(path) > 1024)
        return "must be at most 1024 characters";
    const char *c = path + pl;
    const char *slash = strchr(c, '/');
    if (!slash || strncmp(slash, "/blobs/", 7))
        return shape;
    if (!container_ok(c, (size_t)(slash - c)))
        return "names an invalid container (3 to 63 lower-case letters, digits and dashes)";
    const char *folder = slash + 7;
    size_t fl = strlen(folder);
    if (fl == 0)
        return "must name a folder of the container, not the whole container";
    if (folder[fl - 1] != '/')
        return "must end with '/' (a folder of the container)";
    for (const char *p = folder; *p; p++)
        if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e || *p == '\\')
            return "must be printable ASCII without spaces or '\\'";
    /* Every segment non-empty and neither "." nor "..". */
    for (const char *seg = folder; *seg;) {
        const char *end = strchr(seg, '/');
        size_t n = (size_t)(end - seg);
        if (n == 0 || (n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
            return "must not hold empty, '.' or '..' segments";
        seg = end + 1;
    }
    if (!strncmp(folder, "projects/", 9))
        return "must lie outside projects/, where Roastery keeps its own artifacts";
    return NULL;
}

int eventgrid_path_match(const char *path, const char *subject)
{
    if (!path || !subject)
        return 0;
    size_t n = strlen(path);
    return n > 0 && strlen(subject) > n && !strncmp(path, subject, n);
}

int eventgrid_secret_equal(const char *presented, const char *expected)
{
    if (!presented || !expected || !*presented || !*expected)
        return 0;
    unsigned char a[32], b[32];
    unsigned int la = 0, lb = 0;
    EVP_Digest(presented, strlen(presented), a, &la, EVP_sha256(), NULL);
    EVP_Digest(expected, strlen(expected), b, &lb, EVP_sha256(), NULL);
    return la == 32 && lb == 32 && CRYPTO_memcmp(a, b, 32) == 0;
}

/* ---- parsing ------------------------------------------------------------ */

typedef struct {
    json_t *errors;
    char prefix[32]; /* "[3]." or "" */
} checker;

static void err(checker *ck, const char *field, const char *reason)
{
    char f[160];
    snprintf(f, sizeof f, "%s%s", ck->prefix, field);
    json_array_append_new(ck->errors, json_pack("{s:s, s:s}", "field", f, "reason", reason));
}

static int printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
            return 0;
    return 1;
}

/* A string member: NULL (and an error when required) when absent or not a fitting string. */
static const char *str(checker *ck, json_t *obj, const char *key, const char *field, int required,
                       size_t maxlen, int nonempty)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        if (required)
            err(ck, field, "is required");
        return NULL;
    }
    if (!json_is_string(v)) {
        err(ck, field, "must be a string");
        return NULL;
    }
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (nonempty && n == 0) {
        err(ck, field, "must not be empty");
        return NULL;
    }
    if (n > maxlen || strlen(s) != n || !printable(s)) {
        char reason[96];
        snprintf(reason, sizeof reason, "must be at most %zu printable characters", maxlen);
        err(ck, field, reason);
        return NULL;
    }
    return s;
}

static void parse_data(checker *ck, json_t *ev, eventgrid_event *e)
{
    json_t *data = json_object_get(ev, "data");
    if (e->kind == EVENTGRID_UNKNOWN || e->kind == EVENTGRID_SUBSCRIPTION_DELETED)
        return;
    if (!json_is_object(data)) {
        err(ck, "data", data ? "must be an object" : "is required for this event type");
        return;
    }
    if (e->kind == EVENTGRID_VALIDATION) {
        e->validation_code = str(ck, data, "validationCode", "data.validationCode", 1, 256, 1);
        e->validation_url = str(ck, data, "validationUrl", "data.validationUrl", 0, 4096, 0);
        return;
    }
    /* BlobCreated */
    e->url = str(ck, data, "url", "data.url", 1, 4096, 1);
    if (e->url && strncmp(e->url, "https://", 8) && strncmp(e->url, "http://", 7)) {
        err(ck, "data.url", "must be an http(s) URL of the blob");
        e->url = NULL;
    }
    e->etag = str(ck, data, "eTag", "data.eTag", 0, 256, 0);
    e->content_type = str(ck, data, "contentType", "data.contentType", 0, 256, 0);
    json_t *cl = json_object_get(data, "contentLength");
    e->content_length = -1;
    if (cl && !json_is_null(cl)) {
        if (!json_is_integer(cl) || json_integer_value(cl) < 0)
            err(ck, "data.contentLength", "must be a non-negative integer");
        else
            e->content_length = (long long)json_integer_value(cl);
    }
    char container[64];
    const char *name;
    if (e->subject &&
        eventgrid_blob_subject(e->subject, container, sizeof container, &name) != RST_OK)
        err(ck, "subject",
            "must be /blobServices/default/containers/<container>/blobs/<name> for BlobCreated");
    else if (!e->subject)
        err(ck, "subject", "is required for BlobCreated");
}

static void parse_eventgrid(checker *ck, json_t *ev, eventgrid_event *e)
{
    e->schema = EVENTGRID_SCHEMA_EVENTGRID;
    e->id = str(ck, ev, "id", "id", 1, EVENTGRID_MAX_ID, 1);
    e->type = str(ck, ev, "eventType", "eventType", 1, 256, 1);
    e->topic = str(ck, ev, "topic", "topic", 0, 1024, 0);
    e->subject = str(ck, ev, "subject", "subject", 1, 2048, 0);
    e->event_time = str(ck, ev, "eventTime", "eventTime", 1, 64, 1);
    if (e->event_time && !eventgrid_time_ok(e->event_time)) {
        err(ck, "eventTime", "must be an RFC 3339 date-time");
        e->event_time = NULL;
    }
    str(ck, ev, "dataVersion", "dataVersion", 1, 64, 0);
    str(ck, ev, "metadataVersion", "metadataVersion", 0, 64, 0);
    if (json_object_get(ev, "specversion") == NULL && json_object_get(ev, "type") &&
        !json_object_get(ev, "eventType"))
        err(ck, "specversion", "is required for a CloudEvents event (\"1.0\")");
    e->kind = eventgrid_kind_of(e->type);
    parse_data(ck, ev, e);
}

static void parse_cloudevent(checker *ck, json_t *ev, eventgrid_event *e)
{
    e->schema = EVENTGRID_SCHEMA_CLOUDEVENTS;
    const char *sv = str(ck, ev, "specversion", "specversion", 1, 16, 1);
    if (sv && strcmp(sv, "1.0"))
        err(ck, "specversion", "must be \"1.0\"");
    e->id = str(ck, ev, "id", "id", 1, EVENTGRID_MAX_ID, 1);
    e->type = str(ck, ev, "type", "type", 1, 256, 1);
    e->topic = str(ck, ev, "source", "source", 1, 1024, 1);
    e->subject = str(ck, ev, "subject", "subject", 0, 2048, 0);
    e->event_time = str(ck, ev, "time", "time", 0, 64, 1);
    if (e->event_time && !eventgrid_time_ok(e->event_time)) {
        err(ck, "time", "must be an RFC 3339 date-time");
        e->event_time = NULL;
    }
    str(ck, ev, "datacontenttype", "datacontenttype", 0, 256, 0);
    e->kind = eventgrid_kind_of(e->type);
    if (e->kind != EVENTGRID_UNKNOWN && json_object_get(ev, "data_base64"))
        err(ck, "data_base64", "is not accepted for this event type: send data as JSON");
    parse_data(ck, ev, e);
}

int eventgrid_parse(const char *body, size_t len, eventgrid_batch *out, json_t **errors)
{
    memset(out, 0, sizeof *out);
    *errors = NULL;
    checker ck = {.errors = json_array()};
    json_error_t jerr;
    json_t *root = NULL;
    int jrc = jsonguard_loadb(body, len, JSON_REJECT_DUPLICATES, &root, &jerr);
    if (jrc == RST_ETOOBIG) { /* refused before parsing: jansson recurses per level */
        err(&ck, "body", "must be nested at most 32 levels deep");
        goto bad;
    }
    if (!root) {
        json_array_append_new(ck.errors,
                              json_pack("{s:s, s:s, s:i, s:i}", "field", "body", "reason",
                                        jerr.text, "line", jerr.line, "column", jerr.column));
        goto bad;
    }
    int single = json_is_object(root) && json_object_get(root, "specversion");
    if (!single && !json_is_array(root)) {
        err(&ck, "body", "must be a JSON array of events (or one CloudEvents event)");
        goto bad;
    }
    size_t n = single ? 1 : json_array_size(root);
    if (n == 0) {
        err(&ck, "body", "must hold at least one event");
        goto bad;
    }
    if (n > EVENTGRID_MAX_EVENTS) {
        err(&ck, "body", "must hold at most 5000 events");
        goto bad;
    }
    out->events = xcalloc(n, sizeof *out->events);
    out->count = n;
    for (size_t i = 0; i < n; i++) {
        json_t *ev = single ? root : json_array_get(root, i);
        if (single)
            ck.prefix[0] = '\0';
        else
            snprintf(ck.prefix, sizeof ck.prefix, "[%zu].", i);
        eventgrid_event *e = &out->events[i];
        e->content_length = -1;
        if (!json_is_object(ev)) {
            err(&ck, "", "must be an event object");
            continue;
        }
        if (json_object_get(ev, "specversion"))
            parse_cloudevent(&ck, ev, e);
        else
            parse_eventgrid(&ck, ev, e);
        if (!e->topic)
            e->topic = "";
        if (!e->subject)
            e->subject = "";
    }
    if (json_array_size(ck.errors))
        goto bad;
    json_decref(ck.errors);
    out->root = root;
    return RST_OK;
bad:
    free(out->events);
    memset(out, 0, sizeof *out);
    json_decref(root);
    /* A field error names the event's field; one with an empty name is about the event. */
    size_t i;
    json_t *e;
    json_array_foreach(ck.errors, i, e)
    {
        const char *f = json_string_value(json_object_get(e, "field"));
        size_t fl = f ? strlen(f) : 0;
        if (fl && f[fl - 1] == '.') {
            char trimmed[160];
            snprintf(trimmed, sizeof trimmed, "%.*s", (int)(fl - 1), f);
            json_object_set_new(e, "field", json_string(trimmed));
        }
    }
    *errors = ck.errors;
    return RST_EINVAL;
}

void eventgrid_batch_free(eventgrid_batch *b)
{
    if (!b)
        return;
    free(b->events);
    json_decref(b->root);
    memset(b, 0, sizeof *b);
}
