ALTER TABLE visits DROP COLUMN postpartum_recovered;
DROP TABLE deliveries;
