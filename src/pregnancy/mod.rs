//! Pregnancy episodes: booking (建册), dating (LMP / early ultrasound, EDD, gestational age).
pub mod events;
pub mod model;
pub mod repo;
pub mod service;
