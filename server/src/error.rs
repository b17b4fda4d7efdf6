//! The library's error type.

use std::path::PathBuf;

/// What went wrong below the HTTP layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or folder could not be created, read or written.
    #[error("{action} {path}: {cause}")]
    Io {
        action: &'static str,
        path: PathBuf,
        cause: std::io::Error,
    },
    /// The embedded database could not be opened.
    #[error("cannot open database {path}: {cause}; check that the data directory is writable")]
    Open {
        path: PathBuf,
        cause: rusqlite::Error,
    },
    /// The embedded database refused an operation.
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The PostgreSQL server could not be reached or refused the login.
    #[error("cannot connect to PostgreSQL at {url}: {cause}")]
    Connect {
        /// The URL, its password replaced by `***`.
        url: String,
        cause: postgres::Error,
    },
    /// PostgreSQL refused an operation.
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] postgres::Error),
    /// Stored data is not what this server expects.
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    /// The configuration or a command-line value is wrong.
    #[error("{0}")]
    Config(String),
}

impl Error {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        cause: std::io::Error,
    ) -> Self {
        Error::Io {
            action,
            path: path.into(),
            cause,
        }
    }

    /// A write refused for want of disk space: by the file system, SQLite
    /// (`SQLITE_FULL`) or PostgreSQL (SQLSTATE 53100, `disk_full`).
    pub fn is_disk_full(&self) -> bool {
        match self {
            Error::Io { cause, .. } => cause.kind() == std::io::ErrorKind::StorageFull,
            Error::Sqlite(e) => e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull),
            Error::Postgres(e) => e.code() == Some(&postgres::error::SqlState::DISK_FULL),
            _ => false,
        }
    }
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
