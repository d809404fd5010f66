-- The worklist reads every visit date and kind of the area's open pregnancies (issue 16: the home
-- page < 100 ms with 10,000 women); with the kind in the index that is an index-only read.
CREATE INDEX visits_pregnancy_kind ON visits (pregnancy_id, visit_date, kind);
DROP INDEX visits_pregnancy;
