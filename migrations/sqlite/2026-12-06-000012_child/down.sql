DROP INDEX IF EXISTS immunizations_township;
DROP TABLE child_services;
DROP TABLE child_visits;
DROP TABLE children;
