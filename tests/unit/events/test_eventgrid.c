/* eventgrid and the pure parts of webhooks: Event Grid and CloudEvents parsing and
 * validation, blob subjects, dataset paths, secret comparison and webhook signatures (the
 * outbound filter is in test_webhooks.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "events/eventgrid.h"
#include "lib/util.h"
#include "events/webhooks.h"

/* Microsoft's published shapes, trimmed. */
static const char VALIDATION[] =
    "[{\"id\": \"2d1781af-3a4c-4d7c-bd0c-e34b19da4e66\","
    " \"topic\": \"/subscriptions/xxxxxxxx/resourceGroups/rg/providers/Microsoft.Storage/"
    "storageAccounts/globojava\", \"subject\": \"\","
    " \"data\": {\"validationCode\": \"512d38b6-c7b8-40c8-89fe-f46f9e9622b6\","
    " \"validationUrl\": \"https://rp-eastus2.eventgrid.azure.net:553/eventsubscriptions/x/"
    "validate?id=1&t=2\"},"
    " \"eventType\": \"Microsoft.EventGrid.SubscriptionValidationEvent\","
    " \"eventTime\": \"2018-01-25T22:12:19.4556811Z\", \"metadataVersion\": \"1\","
    " \"dataVersion\": \"1\"}]";

static const char BLOB_CREATED[] =
    "[{\"topic\": \"/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/"
    "storageAccounts/globojava\","
    " \"subject\": \"/blobServices/default/containers/roastery/blobs/incoming/globojava/"
    "2024-05.csv\","
    " \"eventType\": \"Microsoft.Storage.BlobCreated\", \"eventTime\": \"2024-05-01T06:00:12Z\","
    " \"id\": \"831e1650-001e-001b-66ab-eeb76e069631\","
    " \"data\": {\"api\": \"PutBlockList\", \"clientRequestId\": \"6d79dbfb\","
    " \"requestId\": \"831e1650-001e-001b-66ab-eeb76e000000\", \"eTag\": \"0x8D4BCC2E4835CD0\","
    " \"contentType\": \"text/csv\", \"contentLength\": 524288, \"blobType\": \"BlockBlob\","
    " \"url\": \"https://globojava.blob.core.windows.net/roastery/incoming/globojava/2024-05.csv\","
    " \"sequencer\": \"00000000000004420000000000028963\","
    " \"storageDiagnostics\": {\"batchId\": \"b68529f3\"}},"
    " \"dataVersion\": \"\", \"metadataVersion\": \"1\"}]";

static const char CLOUD_EVENT[] =
    "{\"specversion\": \"1.0\", \"type\": \"Microsoft.Storage.BlobCreated\","
    " \"source\": \"/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/"
    "storageAccounts/globojava\","
    " \"id\": \"9aeb0fdf-c01e-0131-0922-9eb54906e209\", \"time\": \"2019-11-18T15:13:39.4589254Z\","
    " \"subject\": \"/blobServices/default/containers/roastery/blobs/incoming/a.csv\","
    " \"dataschema\": \"#\", \"data\": {\"api\": \"PutBlockList\", \"eTag\": \"0x8D76C39E4407333\","
    " \"contentLength\": 30, \"url\": \"https://globojava.blob.core.windows.net/roastery/incoming/"
    "a.csv\"}}";

static void test_validation_event(void **state)
{
    (void)state;
    eventgrid_batch b;
    json_t *errors = NULL;
    assert_int_equal(eventgrid_parse(VALIDATION, strlen(VALIDATION), &b, &errors), RST_OK);
    assert_null(errors);
    assert_int_equal(b.count, 1);
    assert_int_equal(b.events[0].kind, EVENTGRID_VALIDATION);
    assert_int_equal(b.events[0].schema, EVENTGRID_SCHEMA_EVENTGRID);
    assert_string_equal(b.events[0].validation_code, "512d38b6-c7b8-40c8-89fe-f46f9e9622b6");
    assert_string_equal(b.events[0].subject, "");
    eventgrid_batch_free(&b);
}

static void test_blob_created_event_grid_schema(void **state)
{
    (void)state;
    eventgrid_batch b;
    json_t *errors = NULL;
    assert_int_equal(eventgrid_parse(BLOB_CREATED, strlen(BLOB_CREATED), &b, &errors), RST_OK);
    const eventgrid_event *e = &b.events[0];
    assert_int_equal(e->kind, EVENTGRID_BLOB_CREATED);
    assert_string_equal(e->id, "831e1650-001e-001b-66ab-eeb76e069631");
    assert_string_equal(e->etag, "0x8D4BCC2E4835CD0");
    assert_int_equal(e->content_length, 524288);
    assert_string_equal(e->event_time, "2024-05-01T06:00:12Z");
    assert_non_null(strstr(e->url, "/roastery/incoming/globojava/2024-05.csv"));
    assert_non_null(strstr(e->topic, "storageAccounts/globojava"));
    eventgrid_batch_free(&b);
}

static void test_cloud_event_single_and_batch(void **state)
{
    (void)state;
    eventgrid_batch b;
    json_t *errors = NULL;
    assert_int_equal(eventgrid_parse(CLOUD_EVENT, strlen(CLOUD_EVENT), &b, &errors), RST_OK);
    assert_int_equal(b.events[0].schema, EVENTGRID_SCHEMA_CLOUDEVENTS);
    assert_int_equal(b.events[0].kind, EVENTGRID_BLOB_CREATED);
    assert_string_equal(b.events[0].topic + strlen(b.events[0].topic) - 9, "globojava");
    eventgrid_batch_free(&b);
    char batch[4096];
    snprintf(batch, sizeof batch, "[%s, %s]", CLOUD_EVENT, CLOUD_EVENT);
    assert_int_equal(eventgrid_parse(batch, strlen(batch), &b, &errors), RST_OK);
    assert_int_equal(b.count, 2);
    eventgrid_batch_free(&b);
}

/* The reasons for body, checked to name field (the first error). */
static void expect_error(const char *body, const char *field, const char *reason_part)
{
    eventgrid_batch b;
    json_t *errors = NULL;
    assert_int_equal(eventgrid_parse(body, strlen(body), &b, &errors), RST_EINVAL);
    assert_non_null(errors);
    int found = 0;
    size_t i;
    json_t *e;
    json_array_foreach(errors, i, e)
    {
        const char *f = json_string_value(json_object_get(e, "field"));
        const char *r = json_string_value(json_object_get(e, "reason"));
        if (!strcmp(f, field) && (!reason_part || strstr(r, reason_part)))
            found = 1;
    }
    if (!found) {
        char *dump = json_dumps(errors, 0);
        print_error("no error on %s (%s) in %s\n", field, reason_part ? reason_part : "", dump);
        free(dump);
    }
    assert_true(found);
    assert_null(b.events);
    json_decref(errors);
}

static void test_malformed_deliveries_name_the_field(void **state)
{
    (void)state;
    expect_error("[{", "body", NULL);
    expect_error("{\"id\": \"x\"}", "body", "array");
    expect_error("[]", "body", "at least one");
    expect_error("[1]", "[0]", "event object");
    expect_error("[{\"id\": \"a\", \"id\": \"b\"}]", "body", "duplicate");
    expect_error("[{\"eventType\": \"Microsoft.Storage.BlobCreated\", \"subject\": \"/x\","
                 " \"eventTime\": \"2024-05-01T06:00:12Z\", \"dataVersion\": \"\"}]",
                 "[0].id", "required");
    expect_error("[{\"id\": \"1\", \"eventType\": \"Microsoft.Storage.BlobCreated\","
                 " \"subject\": \"/blobServices/default/containers/c1c/blobs/a\","
                 " \"eventTime\": \"yesterday\", \"dataVersion\": \"\","
                 " \"data\": {\"url\": \"https://a/b\"}}]",
                 "[0].eventTime", "RFC 3339");
    expect_error("[{\"id\": \"1\", \"eventType\": \"Microsoft.Storage.BlobCreated\","
                 " \"subject\": \"/blobServices/default/containers/c1c/blobs/a\","
                 " \"eventTime\": \"2024-05-01T06:00:12Z\", \"dataVersion\": \"\","
                 " \"data\": {\"contentLength\": -1}}]",
                 "[0].data.url", "required");
    expect_error("[{\"id\": \"1\", \"eventType\": \"Microsoft.Storage.BlobCreated\","
                 " \"subject\": \"/blobServices/default/containers/c1c/blobs/a\","
                 " \"eventTime\": \"2024-05-01T06:00:12Z\", \"dataVersion\": \"\","
                 " \"data\": {\"url\": \"https://a/b\", \"contentLength\": -1}}]",
                 "[0].data.contentLength", NULL);
    expect_error("[{\"id\": \"1\", \"eventType\": \"Microsoft.Storage.BlobCreated\","
                 " \"subject\": \"/not/a/blob\", \"eventTime\": \"2024-05-01T06:00:12Z\","
                 " \"dataVersion\": \"\", \"data\": {\"url\": \"ftp://a/b\"}}]",
                 "[0].subject", "blobServices");
    expect_error(
        "[{\"id\": \"1\", \"eventType\": \"Microsoft.EventGrid.SubscriptionValidationEvent\","
        " \"subject\": \"\", \"eventTime\": \"2024-05-01T06:00:12Z\","
        " \"dataVersion\": \"1\", \"data\": {}}]",
        "[0].data.validationCode", "required");
    expect_error("{\"specversion\": \"0.3\", \"id\": \"1\", \"source\": \"s\", \"type\": \"t\"}",
                 "specversion", "1.0");
    expect_error("[{\"specversion\": \"1.0\", \"id\": \"1\", \"type\": \"t\"}]", "[0].source",
                 "required");
    /* 40 levels of nesting */
    char deep[100];
    memset(deep, '[', 41);
    memset(deep + 41, ']', 41);
    deep[82] = '\0';
    expect_error(deep, "body", "nested");
    /* 100,000 levels: refused by the pre-scan, before jansson recurses into them */
    char *huge = xmalloc(200001);
    memset(huge, '[', 100000);
    memset(huge + 100000, ']', 100000);
    huge[200000] = '\0';
    expect_error(huge, "body", "nested at most 32 levels");
    free(huge);
}

static void test_unknown_types_parse_as_unknown(void **state)
{
    (void)state;
    const char *body =
        "[{\"id\": \"1\", \"eventType\": \"Microsoft.Resources.ResourceWriteSuccess\","
        " \"subject\": \"/x\", \"eventTime\": \"2024-05-01T06:00:12+02:00\","
        " \"dataVersion\": \"\", \"data\": {}}]";
    eventgrid_batch b;
    json_t *errors = NULL;
    assert_int_equal(eventgrid_parse(body, strlen(body), &b, &errors), RST_OK);
    assert_int_equal(b.events[0].kind, EVENTGRID_UNKNOWN);
    assert_string_equal(b.events[0].type, "Microsoft.Resources.ResourceWriteSuccess");
    eventgrid_batch_free(&b);
    assert_int_equal(eventgrid_kind_of("Microsoft.EventGrid.SubscriptionDeletedEvent"),
                     EVENTGRID_SUBSCRIPTION_DELETED);
    assert_int_equal(eventgrid_kind_of(NULL), EVENTGRID_UNKNOWN);
}

static void test_times(void **state)
{
    (void)state;
    assert_true(eventgrid_time_ok("2018-01-25T22:12:19.4556811Z"));
    assert_true(eventgrid_time_ok("2018-01-25T22:12:19Z"));
    assert_true(eventgrid_time_ok("2018-01-25t22:12:19-05:30"));
    assert_false(eventgrid_time_ok("2018-01-25 22:12:19Z"));
    assert_false(eventgrid_time_ok("2018-13-25T22:12:19Z"));
    assert_false(eventgrid_time_ok("2018-01-25T22:12:19"));
    assert_false(eventgrid_time_ok("2018-01-25T22:12:19.Z"));
    assert_false(eventgrid_time_ok("2018-01-25T22:12:19Zjunk"));
    assert_false(eventgrid_time_ok(NULL));
}

static void test_blob_subjects_and_paths(void **state)
{
    (void)state;
    char c[64];
    const char *name = NULL;
    assert_int_equal(eventgrid_blob_subject("/blobServices/default/containers/roastery/blobs/"
                                            "incoming/a.csv",
                                            c, sizeof c, &name),
                     RST_OK);
    assert_string_equal(c, "roastery");
    assert_string_equal(name, "incoming/a.csv");
    assert_int_equal(eventgrid_blob_subject("/blobServices/default/containers/roastery/blobs/", c,
                                            sizeof c, &name),
                     RST_EINVAL);
    assert_int_equal(
        eventgrid_blob_subject("/blobServices/default/containers//blobs/a", c, sizeof c, &name),
        RST_EINVAL);
    assert_int_equal(
        eventgrid_blob_subject("/fileServices/default/shares/x/files/a", c, sizeof c, &name),
        RST_EINVAL);

    const char *ok = "/blobServices/default/containers/roastery/blobs/incoming/globojava/";
    assert_null(eventgrid_path_check(ok));
    assert_non_null(eventgrid_path_check("/blobServices/default/containers/roastery/blobs/"));
    assert_non_null(eventgrid_path_check("/blobServices/default/containers/roastery/blobs/a"));
    assert_non_null(strstr(eventgrid_path_check("/blobServices/default/containers/roastery/"
                                                "blobs/projects/demand/"),
                           "projects/"));
    assert_non_null(eventgrid_path_check("/blobServices/default/containers/Bad_Name/blobs/a/"));
    assert_non_null(eventgrid_path_check("/blobServices/default/containers/ab/blobs/a/"));
    assert_non_null(eventgrid_path_check("/blobServices/default/containers/a--b/blobs/a/"));
    assert_non_null(eventgrid_path_check("/blobServices/default/containers/roastery/blobs/a//"));
    assert_non_null(eventgrid_path_check("/blobServices/default/containers/roastery/blobs/../"));
    assert_non_null(eventgrid_path_check("/blobServices/default/containers/roastery/blobs/a b/"));
    assert_non_null(eventgrid_path_check("incoming/"));
    assert_non_null(eventgrid_path_check(NULL));

    assert_true(eventgrid_path_match(ok, "/blobServices/default/containers/roastery/blobs/"
                                         "incoming/globojava/2024/05.csv"));
    assert_false(eventgrid_path_match(ok, ok));
    assert_false(eventgrid_path_match(ok, "/blobServices/default/containers/roastery/blobs/"
                                          "incoming/globojava2/a.csv"));
    assert_false(eventgrid_path_match(ok, "/blobServices/default/containers/other/blobs/"
                                          "incoming/globojava/a.csv"));
}

static void test_secret_comparison(void **state)
{
    (void)state;
    assert_true(eventgrid_secret_equal("s3cret-value", "s3cret-value"));
    assert_false(eventgrid_secret_equal("s3cret-valuE", "s3cret-value"));
    assert_false(eventgrid_secret_equal("s3cret", "s3cret-value"));
    assert_false(eventgrid_secret_equal("", ""));
    assert_false(eventgrid_secret_equal(NULL, "x"));
    assert_false(eventgrid_secret_equal("x", NULL));
}

static void test_webhook_signature_and_secret(void **state)
{
    (void)state;
    char sig[65];
    const char *body = "{\"id\":\"e1\",\"type\":\"run.finished\"}";
    webhooks_sign("whsec_test", "1700000000", body, strlen(body), sig);
    /* python3: hmac.new(b"whsec_test", b"1700000000." + body, sha256).hexdigest() */
    assert_string_equal(sig, "13a31118e42646b8136af174cca76a2c590c3bc696019a4a74abb80f0a4b1393");
    char s1[WEBHOOKS_SECRET_MAX], s2[WEBHOOKS_SECRET_MAX];
    webhooks_new_secret(s1);
    webhooks_new_secret(s2);
    assert_int_equal(strlen(s1), 6 + 48);
    assert_int_equal(strncmp(s1, "whsec_", 6), 0);
    assert_string_not_equal(s1, s2);
    assert_true(webhooks_event_known("run.finished"));
    assert_true(webhooks_event_known("drift.detected"));
    assert_false(webhooks_event_known("ping"));
    assert_false(webhooks_event_known("run.started"));
    assert_false(webhooks_event_known(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validation_event),
        cmocka_unit_test(test_blob_created_event_grid_schema),
        cmocka_unit_test(test_cloud_event_single_and_batch),
        cmocka_unit_test(test_malformed_deliveries_name_the_field),
        cmocka_unit_test(test_unknown_types_parse_as_unknown),
        cmocka_unit_test(test_times),
        cmocka_unit_test(test_blob_subjects_and_paths),
        cmocka_unit_test(test_secret_comparison),
        cmocka_unit_test(test_webhook_signature_and_secret),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
