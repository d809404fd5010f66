DROP INDEX referrals_external_ref;
ALTER TABLE referrals DROP COLUMN external_ref;
