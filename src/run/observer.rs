//! Notices of a run (notes and warnings) go to an [`Observer`], so the library prints nothing
//! itself and a caller decides where they go.

/// Receives a run's notices as they happen.
pub trait Observer {
    /// Something the user should know that does not change results.
    fn note(&mut self, message: &str);
    /// Something that may make results differ from what the user expects.
    fn warn(&mut self, message: &str);
}

/// Notices on stderr, as `note: ...` and `warning: ...`.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stderr;

impl Observer for Stderr {
    fn note(&mut self, message: &str) {
        eprintln!("note: {message}");
    }
    fn warn(&mut self, message: &str) {
        eprintln!("warning: {message}");
    }
}

/// Notices kept in memory (tests, and callers that report them later).
#[derive(Debug, Default, Clone)]
pub struct Collect {
    pub notes: Vec<String>,
    pub warnings: Vec<String>,
}

impl Observer for Collect {
    fn note(&mut self, message: &str) {
        self.notes.push(message.to_string());
    }
    fn warn(&mut self, message: &str) {
        self.warnings.push(message.to_string());
    }
}
