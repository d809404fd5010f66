DROP TABLE frail_case_events;
DROP TABLE frail_cases;
