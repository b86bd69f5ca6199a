/// What can go wrong below the domain. The server maps these to HTTP once, at the edge.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule or an invariant would break (duplicate email, last owner, …).
    /// The message is safe to show to the caller.
    #[error("{0}")]
    Conflict(String),
    #[error("not found")]
    NotFound,
    /// The change would leave a record whose fields do not fit together (a client patch
    /// that makes a public client use a secret, …); the field names what to fix.
    #[error("{0}")]
    Invalid(portcullis_core::ValidationError),
    /// A stored value no longer parses into its domain type.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// A unit of work was asked to write a row outside the tenant scope it was opened in:
    /// a bug in the store, never the caller's mistake. Nothing was written.
    #[error("out of scope: {0}")]
    OutOfScope(String),
    /// The org's subscription or plan does not allow the change; nothing was written.
    #[error("{0}")]
    Refused(portcullis_core::plan::PlanRefusal),
    /// A rotation would leave more secret keys working than a project may have.
    #[error(transparent)]
    TooManyWorkingKeys(#[from] portcullis_core::plan::TooManyWorkingKeys),
    #[error("configuration: {0}")]
    Config(String),
    #[error("database: {0}")]
    Database(#[source] sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

pub type StoreResult<T> = Result<T, StoreError>;

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &e
            && db.is_unique_violation()
        {
            return StoreError::Conflict(conflict_message(db.constraint(), db.message()));
        }
        StoreError::Database(e)
    }
}

/// Names the duplicated thing without echoing the offending value.
fn conflict_message(constraint: Option<&str>, message: &str) -> String {
    let what = constraint.unwrap_or(message);
    if what.contains("email") {
        "an account with this email already exists".into()
    } else if what.contains("slug") {
        "this slug is already taken".into()
    } else {
        "this resource already exists".into()
    }
}

impl From<portcullis_core::MembershipConflict> for StoreError {
    fn from(e: portcullis_core::MembershipConflict) -> Self {
        StoreError::Conflict(e.to_string())
    }
}

impl From<portcullis_core::ValidationError> for StoreError {
    fn from(e: portcullis_core::ValidationError) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}
