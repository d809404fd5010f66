DROP TABLE risk_case_reports;
DROP TABLE risk_case_events;
DROP TABLE risk_cases;
DROP TABLE risk_assessments;
DROP TABLE risk_screenings;
