//! The gateway's resources and the rules their fields follow.
//!
//! Types here are what the API accepts and returns and what the store keeps.
//! Validation is pure and names the offending field, so the API can answer 422
//! with something a tenant can act on.

pub mod endpoint;
pub mod event;
pub mod event_types;
pub mod log;
pub mod validation;

pub use validation::FieldError;
