//! Child health care from birth to six (0–6 岁儿童健康管理, RULES.md §2.3): the newborn's own record
//! made at delivery, one schedule per child (13 contacts, labs, hearing, newborn screening, the
//! immunisation programme, 预防母婴传播 clocks), child health visits with the WHO growth standards,
//! vaccinations, the 出生医学证明, the township worklist of children, and 体弱儿专案管理 (frail-child
//! cases on the 专案 machinery of `risk::cases`, rules in `frail.rs`).
pub mod frail;
pub mod model;
pub mod repo;
pub mod schedule;
pub mod service;
