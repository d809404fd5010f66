DROP TABLE child_services;
DROP TABLE child_visits;
DROP TABLE children;
