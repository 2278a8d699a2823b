//! The triggers that ask the reporter thread for a report: the signal and the trigger file.
//! (HTTP lives in the web adapters; the API is [`crate::ReportHandle`].)
//!
//! A trigger only asks [`crate::ReportHandle::request`] for a report; it never builds one.
#![forbid(unsafe_code)]

pub(crate) mod file;
pub(crate) mod signal;
