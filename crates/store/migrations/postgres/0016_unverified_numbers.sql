-- A contact whose number is possible but outside its country's known ranges (the numbering
-- plan's metadata lags new ranges; fictional numbers): imported, counted as unverified, and
-- named by `switchboard check`. 'unverified', or NULL (checked against the ranges, or by
-- length only on the E.164 fast path).
ALTER TABLE contacts ADD COLUMN number_check TEXT;
