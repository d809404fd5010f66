DROP TABLE app_secrets;
DROP TABLE access_grants;
DROP TABLE referral_events;
DROP TABLE referrals;
ALTER TABLE facilities DROP COLUMN duty_phone;
ALTER TABLE facilities DROP COLUMN neonatal_centre_id;
ALTER TABLE facilities DROP COLUMN maternal_centre_id;
