-- Tollgate ledger, schema version 3 (PostgreSQL dialect): the replay key of the
-- signed call that made a hold. Same statements as sqlite_0003_hold_replay_key.sql.
--
-- replay_key  'aliyun:' or 'huawei:' + SHA-256 (hex) of the AccessKey id and
--             the call's nonce (Alibaba) or signature (Huawei), NULL for
--             holds made before this version. Unique: a money-moving call is
--             accepted once, ever, by every replica sharing this ledger and
--             after any restart, because its hold and its replay key are
--             written by the same statement (the in-memory nonce caches
--             forget on restart and are per process).

ALTER TABLE holds ADD COLUMN replay_key TEXT;
CREATE UNIQUE INDEX holds_replay_key ON holds (replay_key);
