//! Referral use cases: open, act, follow, escalate, measure, print. Every call checks role and
//! side (sending facility, receiving centre) or area, and writes its audit row in its transaction.
//!
//! One file per workflow: `access` (who may see and act, the start-up policy), `views` (a referral
//! as pages show it), `opening`, `steps` (the state machine's commands and the change event),
//! `board` (lists, the live board), `escalation` (the timer), `measures`, `printing` (转诊单 / 回执
//! with QR), `interface` (what HL7 and FHIR ask of referrals).

mod access;
mod board;
mod escalation;
mod interface;
mod measures;
mod opening;
mod printing;
mod steps;
mod views;

pub use access::*;
pub use board::*;
pub use escalation::*;
pub use interface::*;
pub use measures::*;
pub use opening::*;
pub use printing::*;
pub use steps::*;
pub use views::*;
