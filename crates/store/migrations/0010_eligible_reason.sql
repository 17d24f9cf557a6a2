-- Why a waiting contact is not dialled before `eligible_at`: the cap that deferred it, or the
-- redial it waits for (written with `eligible_at`; the console's Pending tab shows it).
ALTER TABLE contacts ADD COLUMN eligible_reason TEXT;
