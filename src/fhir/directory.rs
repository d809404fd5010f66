//! Organization and Location ↔ the facility directory.
