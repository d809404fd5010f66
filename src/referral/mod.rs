//! The referral green channel (转诊绿色通道): critically ill mothers and newborns moved to the
//! responsible critical-care centre, every step timed, late steps escalated, feedback returned.

pub mod events;
pub mod model;
pub mod repo;
pub mod service;
