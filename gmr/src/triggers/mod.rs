//! The triggers that ask the reporter thread for a report: the signal and the trigger file.
//! (HTTP lives in the web adapters; the API is [`crate::ReportHandle`].)

pub(crate) mod file;
pub(crate) mod signal;
