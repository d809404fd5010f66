//! Five-colour risk screening and grading (五色管理) and high-risk case management (专案管理).
//! Rule tables are data under `rules/risk/`.
pub mod cases;
pub mod events;
pub mod model;
pub mod repo;
pub mod service;
