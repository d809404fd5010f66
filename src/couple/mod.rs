//! Before pregnancy (RULES.md §3, §8): couples and their marriage facts, the marriage check
//! (婚前医学检查), the free pre-pregnancy screening (孕前优生健康检查, 19 items) with its risk
//! evaluation and follow-ups, and birth registration with the 母子健康手册 number (多证合一).
//! Rules in `rules/couple/` and `rules/policy/`.
pub mod model;
pub mod repo;
pub mod service;
