-- Events in and out. In: Azure Event Grid deliveries to POST /api/v1/events/azure; a
-- Microsoft.Storage.BlobCreated event under a dataset's declared container path registers a
-- version. Out: per-project webhooks, each event signed and delivered by a webhook.deliver
-- operation with its own log.

-- Where a dataset's new files land, as Event Grid names them in an event's subject:
-- /blobServices/default/containers/<container>/blobs/<folder>/ (a folder: it ends with '/').
-- One dataset per path, so an event never has two owners.
ALTER TABLE datasets ADD COLUMN event_grid_path text
    CHECK (event_grid_path ~ '^/blobServices/default/containers/[a-z0-9][a-z0-9-]{1,61}[a-z0-9]/blobs/[^/].*/$');
CREATE UNIQUE INDEX datasets_event_grid_path ON datasets (event_grid_path)
    WHERE event_grid_path IS NOT NULL;

-- Every Event Grid event handled, whatever its outcome, so a redelivery (Event Grid delivers
-- at least once) is recognised even when it registered nothing. Failed handling (e.g. the
-- database went away) is not recorded: Event Grid retries and the retry is handled anew.
CREATE TABLE eventgrid_events (
    id               text PRIMARY KEY,
    event_type       text NOT NULL,
    topic            text NOT NULL DEFAULT '',
    subject          text NOT NULL DEFAULT '',
    event_time       timestamptz,
    schema           text NOT NULL CHECK (schema IN ('eventgrid', 'cloudevents')),
    -- version_created | same_content | no_dataset | empty_blob | validated | ignored
    result           text NOT NULL,
    project_id       text,
    dataset          text,
    version          integer,
    detail           text,
    received_at      timestamptz NOT NULL DEFAULT now(),
    deliveries       integer NOT NULL DEFAULT 1,
    last_delivery_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX eventgrid_events_received ON eventgrid_events (received_at);

-- Outbound webhooks. The secret signs every body (HMAC-SHA256), so it is kept as is; it is
-- shown once, when the webhook is created.
CREATE TABLE webhooks (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    seq             bigserial UNIQUE NOT NULL,
    project_id      text NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    url             text NOT NULL,
    events          text[] NOT NULL CHECK (cardinality(events) > 0),
    active          boolean NOT NULL DEFAULT true,
    description     text NOT NULL DEFAULT '',
    secret          text NOT NULL,
    disabled_reason text,
    created_by      text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    version         integer NOT NULL DEFAULT 1
);
CREATE INDEX webhooks_project ON webhooks (project_id, seq);

-- One row per (webhook, event): the exact bytes sent on every attempt and what came back.
CREATE TABLE webhook_deliveries (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    seq             bigserial UNIQUE NOT NULL,
    webhook_id      uuid NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    project_id      text NOT NULL,
    event_id        uuid NOT NULL,
    event           text NOT NULL,
    body            text NOT NULL,
    state           text NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'retrying', 'delivered', 'failed', 'skipped')),
    attempts        integer NOT NULL DEFAULT 0,
    last_status     integer,
    last_error      text,
    history         jsonb NOT NULL DEFAULT '[]'::jsonb, -- [{at, status, error, duration_ms}]
    operation_id    uuid REFERENCES operations(id) ON DELETE SET NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_attempt_at timestamptz,
    next_attempt_at timestamptz,
    delivered_at    timestamptz,
    UNIQUE (webhook_id, event_id)
);
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, seq);
CREATE INDEX webhook_deliveries_created ON webhook_deliveries (created_at);
