-- Tollgate ledger, schema version 1 (PostgreSQL dialect).
-- Same tables, columns, constraints and indexes as sqlite_0001_initial.sql;
-- only the dialect differs (BIGSERIAL vs INTEGER PRIMARY KEY AUTOINCREMENT).
-- Money columns are BIGINT micro-units (10^-6 of the currency); times are
-- BIGINT unix milliseconds.

CREATE TABLE budgets (
    customer      TEXT    NOT NULL PRIMARY KEY,
    currency      TEXT    NOT NULL,
    credit_limit  BIGINT  NOT NULL CHECK (credit_limit >= 0),
    consumed      BIGINT  NOT NULL DEFAULT 0,
    held          BIGINT  NOT NULL DEFAULT 0 CHECK (held >= 0),
    status        TEXT    NOT NULL DEFAULT 'normal'
                  CHECK (status IN ('normal', 'frozen', 'trusteeship')),
    thresholds    TEXT    NOT NULL DEFAULT '[]',
    alarm_fired   BIGINT  NOT NULL DEFAULT 0,
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL
);

CREATE TABLE holds (
    id                TEXT    NOT NULL PRIMARY KEY,
    customer          TEXT    NOT NULL REFERENCES budgets (customer),
    amount            BIGINT  NOT NULL CHECK (amount >= 0),
    currency          TEXT    NOT NULL,
    client_token      TEXT,
    fingerprint       TEXT    NOT NULL,
    request_id        TEXT    NOT NULL,
    action            TEXT    NOT NULL,
    product           TEXT    NOT NULL,
    official          BIGINT,
    state             TEXT    NOT NULL
                      CHECK (state IN ('held', 'unknown', 'committed', 'released', 'expired')),
    order_id          TEXT,
    answer            TEXT,
    reason            TEXT,
    created_at        BIGINT  NOT NULL,
    forward_deadline  BIGINT  NOT NULL,
    expires_at        BIGINT  NOT NULL,
    unknown_at        BIGINT,
    settled_at        BIGINT
);

-- A retried purchase (same customer, same ClientToken) finds its hold:
-- at most one open or committed hold per token.
CREATE UNIQUE INDEX holds_token ON holds (customer, client_token)
    WHERE client_token IS NOT NULL AND state IN ('held', 'unknown', 'committed');
-- A provider order is charged at most once.
CREATE UNIQUE INDEX holds_order ON holds (customer, order_id)
    WHERE order_id IS NOT NULL;
CREATE INDEX holds_open ON holds (state, expires_at)
    WHERE state IN ('held', 'unknown');
CREATE INDEX holds_customer ON holds (customer, created_at);

CREATE TABLE entries (
    id              BIGSERIAL PRIMARY KEY,
    customer        TEXT    NOT NULL,
    at              BIGINT  NOT NULL,
    kind            TEXT    NOT NULL,
    amount          BIGINT  NOT NULL DEFAULT 0,
    limit_delta     BIGINT  NOT NULL DEFAULT 0,
    consumed_delta  BIGINT  NOT NULL DEFAULT 0,
    held_delta      BIGINT  NOT NULL DEFAULT 0,
    limit_after     BIGINT  NOT NULL,
    consumed_after  BIGINT  NOT NULL,
    held_after      BIGINT  NOT NULL,
    hold_id         TEXT,
    order_id        TEXT,
    out_biz_id      TEXT,
    detail          TEXT    NOT NULL DEFAULT ''
);

-- Adjustments are idempotent on the operator's business id.
CREATE UNIQUE INDEX entries_out_biz ON entries (customer, out_biz_id)
    WHERE out_biz_id IS NOT NULL;
CREATE INDEX entries_customer ON entries (customer, id);

CREATE TABLE alarm_outbox (
    id               BIGSERIAL PRIMARY KEY,
    entry_id         BIGINT  NOT NULL,
    customer         TEXT    NOT NULL,
    payload          TEXT    NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT  NOT NULL,
    delivered_at     BIGINT,
    last_error       TEXT
);

CREATE INDEX alarm_outbox_due ON alarm_outbox (next_attempt_at)
    WHERE delivered_at IS NULL;
