//! Running planned work: the resume store, progress and notices, cancellation, parallel maps.

pub mod cancel;
pub mod execute;
pub mod observer;
pub mod parallel;
pub mod plan;
pub mod progress;
pub mod store;
