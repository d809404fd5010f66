CREATE INDEX visits_pregnancy ON visits (pregnancy_id, visit_date);
DROP INDEX visits_pregnancy_kind;
