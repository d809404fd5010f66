-- A referral opened by a hospital over HL7 (REF^I12) keeps the hospital's own identifier
-- (sending application | sending facility | RF1-6), so its later messages find the same referral.
ALTER TABLE referrals ADD COLUMN external_ref TEXT;
CREATE UNIQUE INDEX referrals_external_ref ON referrals (external_ref) WHERE external_ref IS NOT NULL;
