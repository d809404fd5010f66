//! The birth-registration (生育登记) policy engine, pure (RULES.md §8): which child of the couple
//! a coming birth is (孩次界定), and whether it needs registration, approval (再生育审批) or lies
//! outside the policy in force on a date, in each spouse's 户籍 province, with the rule more
//! favourable to the couple when their provinces differ. Rules are data, one file per
//! jurisdiction and period in `rules/policy/`. Registration is a service, never a gate for care;
//! 社会抚养费 is never computed.
pub mod model;
