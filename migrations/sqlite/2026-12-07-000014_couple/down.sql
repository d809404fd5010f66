DROP TABLE birth_registrations;
DROP TABLE prepregnancy_followups;
DROP TABLE prepregnancy_exams;
DROP TABLE premarital_exams;
DROP TABLE couples;
