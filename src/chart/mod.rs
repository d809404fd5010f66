//! The read side of a woman's record: pages that show what several features hold, assembled
//! above all of them (README "Layout"), so that no feature reaches up into another to build a
//! page. Today: the pregnancy page (dating, visits, schedules, results, risk, referrals, who
//! opened the record), also served as `GET /api/pregnancies/{id}`.
pub mod service;
