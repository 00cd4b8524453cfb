-- The audit log as records written in the transaction of the change they record, sealed later
-- into an RFC 9162 Merkle tree whose signed heads are kept here and, as copies, by every other
-- service (SECURITY.md). Writers only insert: no lock, no reading of the previous record.
CREATE TABLE audit_records (
    id             bigserial   PRIMARY KEY,
    at             timestamptz NOT NULL DEFAULT now(),
    client         text        NOT NULL,
    official       text,
    aggregate_type text        NOT NULL,
    aggregate_id   text        NOT NULL,
    action         text        NOT NULL,
    reason         text,
    correlation_id text        NOT NULL,
    causation_id   text,
    -- Set by the sealer: the record's position in the tree and the hash of its canonical form.
    leaf_index     bigint      UNIQUE,
    leaf_hash      bytea
);
CREATE INDEX audit_records_unsealed ON audit_records (id) WHERE leaf_index IS NULL;
CREATE INDEX audit_records_client ON audit_records (client, id);

-- The records of the old hash chain become the first records of the new log.
INSERT INTO audit_records (at, client, aggregate_type, aggregate_id, action, reason, correlation_id)
SELECT at, client, 'route', route, method || ' ' || path, 'status ' || status, correlation_id
FROM audit_log ORDER BY id;
DROP TABLE audit_log;

-- Signed tree heads of this service's log; `frontier` (the perfect subtrees' roots) lets the
-- sealer extend the tree without reading every leaf again. Only `verify` trusts nothing here.
CREATE TABLE audit_heads (
    tree_size          bigint      PRIMARY KEY,
    root_hash          bytea       NOT NULL,
    sealed_at          text        NOT NULL,
    previous_tree_size bigint      NOT NULL,
    previous_root_hash bytea,
    key_id             text        NOT NULL,
    signature          bytea       NOT NULL,
    frontier           bytea[]     NOT NULL
);

-- Heads other services published: copies that a rewrite of their database cannot reach.
CREATE TABLE audit_head_copies (
    service            text        NOT NULL,
    tree_size          bigint      NOT NULL,
    root_hash          bytea       NOT NULL,
    sealed_at          text        NOT NULL,
    previous_tree_size bigint      NOT NULL,
    previous_root_hash bytea,
    key_id             text        NOT NULL,
    signature          bytea       NOT NULL,
    received_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (service, tree_size)
);
