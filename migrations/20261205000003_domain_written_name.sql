-- The domain name as the client wrote it (ASCII letter case kept), answered by the API; domain_name
-- stays the canonical form that uniqueness, lookups and DNS use. NULL on rows from before: those
-- answer with domain_name, as they always did.
ALTER TABLE email_domains ADD COLUMN written_name TEXT;
