//! The error of loading a policy file.

/// A policy file that cannot be used. Every variant names the file; validation errors name the
/// dotted field (`agents.bot-1.tiers[2].approvals`), syntax errors the line and column.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyFileError {
    /// The file could not be read.
    #[error("cannot read policy file {origin}")]
    Read {
        /// The path as given.
        origin: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The text is not valid TOML, or does not have the policy file's shape (an unknown key, a
    /// number where text was expected).
    #[error("{origin}:{line}:{column}: {message}")]
    Syntax {
        /// The path or other origin of the text.
        origin: String,
        /// 1-based line.
        line: usize,
        /// 1-based column, in characters.
        column: usize,
        /// What the parser expected.
        message: String,
    },
    /// A value is well-formed TOML but not a valid policy.
    #[error("{origin}: {field}: {problem}")]
    Invalid {
        /// The path or other origin of the text.
        origin: String,
        /// The dotted path of the offending field.
        field: String,
        /// What is wrong with it.
        problem: String,
    },
}

impl PolicyFileError {
    /// The dotted field path of a validation error.
    pub fn field(&self) -> Option<&str> {
        match self {
            PolicyFileError::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }
}

/// A validation error before the origin is attached.
#[derive(Debug)]
pub(crate) struct Bad {
    pub(crate) field: String,
    pub(crate) problem: String,
}

impl Bad {
    pub(crate) fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            problem: problem.into(),
        }
    }

    pub(crate) fn into_error(self, origin: &str) -> PolicyFileError {
        PolicyFileError::Invalid {
            origin: origin.to_owned(),
            field: self.field,
            problem: self.problem,
        }
    }
}

/// Converts a TOML error into [`PolicyFileError::Syntax`] with a line and column.
pub(crate) fn syntax(error: &toml::de::Error, text: &str, origin: &str) -> PolicyFileError {
    let start = error.span().map_or(0, |span| span.start).min(text.len());
    let before = text.get(..start).unwrap_or_default();
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map_or(0, |tail| tail.chars().count())
        + 1;
    PolicyFileError::Syntax {
        origin: origin.to_owned(),
        line,
        column,
        message: error
            .message()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(": "),
    }
}
