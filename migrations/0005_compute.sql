-- Compute requests: what a project asks for, what it would cost, who decided,
-- and what Terraform (or the local executor) made of it.

-- Hourly Linux pay-as-you-go prices per VM size and region. The seeded rows
-- are indicative list prices (USD) for estimates; admins keep them current
-- through PUT /api/v1/prices/{region}/{vm_size}.
CREATE TABLE vm_prices (
    region                  text NOT NULL CHECK (region ~ '^[a-z0-9]{2,40}$'),
    vm_size                 text NOT NULL CHECK (vm_size ~ '^[A-Za-z0-9_]{2,64}$'),
    family                  text NOT NULL CHECK (family ~ '^[A-Za-z0-9_]{2,64}$'),
    vcpus                   integer NOT NULL CHECK (vcpus > 0),
    memory_gib              numeric(8, 2) NOT NULL CHECK (memory_gib > 0),
    dedicated_hourly_usd    numeric(10, 4) NOT NULL CHECK (dedicated_hourly_usd >= 0),
    low_priority_hourly_usd numeric(10, 4) NOT NULL CHECK (low_priority_hourly_usd >= 0),
    updated_by              text,
    updated_at              timestamptz NOT NULL DEFAULT now(),
    version                 integer NOT NULL DEFAULT 1,
    PRIMARY KEY (region, vm_size)
);

INSERT INTO vm_prices (region, vm_size, family, vcpus, memory_gib, dedicated_hourly_usd,
                       low_priority_hourly_usd)
SELECT r.region, s.vm_size, s.family, s.vcpus, s.memory_gib,
       round(s.usd * r.factor, 4), round(s.usd * r.factor * s.spot, 4)
FROM (VALUES ('eastus', 1.00), ('eastus2', 1.00), ('westus2', 1.00), ('centralus', 1.05),
             ('canadacentral', 1.10), ('canadaeast', 1.10), ('mexicocentral', 1.15))
         AS r(region, factor)
CROSS JOIN (VALUES
    ('Standard_DS3_v2',      'standardDSv2Family',      4,  14.0, 0.2930, 0.20),
    ('Standard_DS4_v2',      'standardDSv2Family',      8,  28.0, 0.5850, 0.20),
    ('Standard_D4s_v3',      'standardDSv3Family',      4,  16.0, 0.1920, 0.20),
    ('Standard_D8s_v3',      'standardDSv3Family',      8,  32.0, 0.3840, 0.20),
    ('Standard_D16s_v3',     'standardDSv3Family',      16, 64.0, 0.7680, 0.20),
    ('Standard_E4s_v3',      'standardESv3Family',      4,  32.0, 0.2520, 0.20),
    ('Standard_E8s_v3',      'standardESv3Family',      8,  64.0, 0.5040, 0.20),
    ('Standard_F4s_v2',      'standardFSv2Family',      4,  8.0,  0.1690, 0.20),
    ('Standard_F8s_v2',      'standardFSv2Family',      8,  16.0, 0.3380, 0.20),
    ('Standard_NC4as_T4_v3', 'standardNCASv3_T4Family', 4,  28.0, 0.5260, 0.25),
    ('Standard_NC6s_v3',     'standardNCSv3Family',     6,  112.0, 3.0600, 0.25))
         AS s(vm_size, family, vcpus, memory_gib, usd, spot);

-- This machine, for the local kind: free, counted in slots.
INSERT INTO vm_prices (region, vm_size, family, vcpus, memory_gib, dedicated_hourly_usd,
                       low_priority_hourly_usd)
VALUES ('local', 'local', 'local', 1, 1, 0, 0);

-- Nodes a project may hold per VM family without an admin's approval.
CREATE TABLE project_quotas (
    project_id text NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    family     text NOT NULL CHECK (family ~ '^[A-Za-z0-9_]{2,64}$'),
    max_nodes  integer NOT NULL CHECK (max_nodes >= 0 AND max_nodes <= 100000),
    updated_by text,
    updated_at timestamptz NOT NULL DEFAULT now(),
    version    integer NOT NULL DEFAULT 1,
    PRIMARY KEY (project_id, family)
);

CREATE TABLE compute_targets (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id           text NOT NULL REFERENCES projects(id),
    name                 text NOT NULL CHECK (name ~ '^[a-z][a-z0-9-]{1,14}[a-z0-9]$'),
    kind                 text NOT NULL CHECK (kind IN ('cluster', 'inference', 'instance', 'local')),
    region               text NOT NULL,
    vm_size              text NOT NULL,
    family               text NOT NULL,
    priority             text NOT NULL CHECK (priority IN ('dedicated', 'low_priority')),
    min_nodes            integer NOT NULL CHECK (min_nodes >= 0),
    max_nodes            integer NOT NULL CHECK (max_nodes >= 1 AND max_nodes >= min_nodes),
    idle_minutes         integer NOT NULL CHECK (idle_minutes BETWEEN 0 AND 10080),
    expires_at           timestamptz,
    state                text NOT NULL CHECK (state IN ('requested', 'pending_approval',
                         'approved', 'provisioning', 'ready', 'planned', 'failed', 'rejected',
                         'deleting', 'deleted')),
    hourly_usd           numeric(12, 4) NOT NULL,
    monthly_estimate_usd numeric(14, 2) NOT NULL,
    decision             jsonb NOT NULL,       -- policy figures and verdicts
    decided_by           text,                 -- the approving/rejecting admin; NULL = automatic
    decided_at           timestamptz,
    decision_reason      text,
    applied              jsonb,                -- the spec last carried out (for scale and rollback)
    executor             text,
    plan                 jsonb,                -- the rendered main.tf.json
    plan_summary         jsonb,                -- resources to add/change/destroy
    outputs              jsonb,
    arm_id               text,
    failure              jsonb,                -- {step, message, exit_status}
    operation_id         uuid REFERENCES operations(id),
    requested_by         text NOT NULL,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    deleted_at           timestamptz,
    version              integer NOT NULL DEFAULT 1
);
-- A name is taken until its compute is deleted.
CREATE UNIQUE INDEX compute_targets_name ON compute_targets (project_id, name)
    WHERE state <> 'deleted';
CREATE INDEX compute_targets_state ON compute_targets (state, created_at);
CREATE INDEX compute_targets_expiry ON compute_targets (expires_at)
    WHERE expires_at IS NOT NULL AND state IN ('ready', 'planned', 'failed');
