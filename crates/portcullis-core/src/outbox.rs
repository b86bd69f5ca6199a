//! Events for delivery outside the database (webhooks). The store queues one in the
//! transaction of the change it describes; a worker delivers it afterwards, so a crash
//! never loses one and never invents one.

use crate::{OrgId, ProjectId};

/// One event to deliver, as subscribers will see it.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboxEvent {
    /// Whose event it is: only that org's subscribers hear it.
    pub org_id: OrgId,
    /// The project it concerns, when it concerns one.
    pub project_id: Option<ProjectId>,
    /// What happened, in the subscribers' vocabulary (`member.added`).
    pub event_type: String,
    /// The JSON body subscribers receive.
    pub payload: serde_json::Value,
}
