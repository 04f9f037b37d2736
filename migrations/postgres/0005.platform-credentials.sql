-- Platform credentials, outside the event log: one row per (platform, credential name), holding
-- only ciphertext (Fernet, under LEDGER_SECRET_KEY), overwritten when the credential changes
-- and deleted when it is deleted, so that rotating a credential erases the old value.
CREATE TABLE platform_credentials (
    platform TEXT NOT NULL,
    name TEXT NOT NULL,
    ciphertext TEXT NOT NULL,
    revision BIGINT NOT NULL,         -- the platform's credentials revision it was written for
    PRIMARY KEY (platform, name)
);
