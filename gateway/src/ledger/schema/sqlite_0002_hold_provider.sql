-- Tollgate ledger, schema version 2 (SQLite dialect): which provider a hold
-- is at, and what the reconciler needs to ask that provider about it.
-- Same statements as postgres_0002_hold_provider.sql.
--
-- provider      'alibaba' or 'huawei'. Holds made before this version are
--               Alibaba's, except the Huawei guards' (product 'huawei-bss').
-- provider_ref  JSON, provider-specific, NULL when the provider is asked by
--               the hold's own fields (Alibaba: QueryOrders by product,
--               type, time and amount). Huawei: {"domain_id", "order_id"}
--               for PayOrders, {"domain_id", "resource_ids"} for renewals.

ALTER TABLE holds ADD COLUMN provider TEXT NOT NULL DEFAULT 'alibaba'
    CHECK (provider IN ('alibaba', 'huawei'));
ALTER TABLE holds ADD COLUMN provider_ref TEXT;
UPDATE holds SET provider = 'huawei' WHERE product = 'huawei-bss';
