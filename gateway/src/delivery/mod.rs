//! Getting a request to a receiver: signing, retry policy, the SSRF-safe client,
//! one attempt end to end, and the worker loop that drives the queue.
//!
//! The pure parts ([`signing`], [`retry`], [`address_policy`], [`request`],
//! [`redact`]) are tested beside their code; [`client`], [`attempt`] and
//! [`worker`] only orchestrate.

pub mod address_policy;
pub mod attempt;
pub mod client;
pub mod redact;
pub mod request;
pub mod retry;
pub mod signing;
pub mod worker;
