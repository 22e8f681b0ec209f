//! The one JSON line a run prints, and the exit code that goes with it.

use std::io::Write as _;
use std::process::ExitCode;

use serde_json::{Map, Value};

/// Exit code of a run whose mode the implementation cannot do.
const EXIT_UNSUPPORTED: u8 = 2;

/// The outcome of one benchmark run.
#[derive(Debug)]
pub(crate) enum Report {
    /// The run finished; these are its figures.
    Measured(Map<String, Value>),
    /// The implementation cannot run this mode; the map holds the run's parameters and `error`.
    Unsupported(Map<String, Value>),
}

impl Report {
    /// A report for a mode the implementation cannot do: `fields` plus `error = reason`.
    pub(crate) fn unsupported(mut fields: Map<String, Value>, reason: &str) -> Self {
        fields.insert("error".to_owned(), Value::from(reason));
        Self::Unsupported(fields)
    }

    /// Prints the report as one JSON line on stdout and returns the process exit code
    /// (0 when measured, 2 when unsupported).
    ///
    /// # Errors
    ///
    /// Fails if stdout cannot be written.
    pub(crate) fn emit(self) -> anyhow::Result<ExitCode> {
        let (fields, code) = match self {
            Self::Measured(fields) => (fields, ExitCode::SUCCESS),
            Self::Unsupported(fields) => (fields, ExitCode::from(EXIT_UNSUPPORTED)),
        };
        let line = serde_json::to_string(&Value::Object(fields))?;
        // One line per run on stdout is this binary's whole interface; the scripts collect it.
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}")?;
        out.flush()?;
        Ok(code)
    }
}
