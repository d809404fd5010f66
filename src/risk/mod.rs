//! Five-colour risk screening and grading (五色管理): rule tables as data under `rules/risk/`.
pub mod model;
pub mod service;
