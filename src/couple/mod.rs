//! Before pregnancy (RULES.md §3, §8): couples and their marriage facts, the marriage check
//! (婚前医学检查), the free pre-pregnancy screening (孕前优生健康检查, 19 items) with its risk
//! evaluation and follow-up timing. So far the pure part (`model.rs`, rules in `rules/couple/`);
//! the stored records, pages and exchange follow (issue 12).
pub mod model;
