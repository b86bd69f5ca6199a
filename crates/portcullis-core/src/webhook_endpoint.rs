//! A project's webhook endpoint as its admins manage it, and the rules of changing one.

use crate::webhook::{Subscription, WebhookId};
use crate::{OrgId, ProjectId, Timestamp};

/// An endpoint as its project's admins see it (never its secret).
#[derive(Clone, Debug, PartialEq)]
pub struct WebhookEndpoint {
    pub id: WebhookId,
    pub org_id: OrgId,
    pub project_id: ProjectId,
    pub url: String,
    pub description: String,
    pub events: Subscription,
    pub enabled: bool,
    /// Since when every attempt has failed; None after a success.
    pub failing_since: Option<Timestamp>,
    /// Why the server disabled it (after failing for too long), if it did.
    pub disabled_reason: Option<String>,
    /// Until when the secret before the last rotation also signs.
    pub previous_secret_expires_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A change to an endpoint; None leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct EndpointPatch {
    pub url: Option<String>,
    pub events: Option<Subscription>,
    pub enabled: Option<bool>,
    pub description: Option<String>,
}

impl EndpointPatch {
    /// The names of the fields it sets, for the audit trail.
    pub fn changed(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.url.is_some() {
            out.push("url");
        }
        if self.events.is_some() {
            out.push("events");
        }
        if self.enabled.is_some() {
            out.push("enabled");
        }
        if self.description.is_some() {
            out.push("description");
        }
        out
    }

    /// Applies the patch to `e` at `now`. Enabling a disabled endpoint clears why it was
    /// disabled and how long it had been failing: it starts over.
    pub fn apply(&self, e: &mut WebhookEndpoint, now: Timestamp) {
        if let Some(url) = &self.url {
            e.url = url.clone();
        }
        if let Some(events) = &self.events {
            e.events = events.clone();
        }
        if let Some(d) = &self.description {
            e.description = d.clone();
        }
        if let Some(on) = self.enabled {
            if on && !e.enabled {
                e.failing_since = None;
                e.disabled_reason = None;
            }
            e.enabled = on;
        }
        e.updated_at = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disabled() -> WebhookEndpoint {
        let at = crate::now();
        WebhookEndpoint {
            id: WebhookId::new(),
            org_id: OrgId::new(),
            project_id: ProjectId::new(),
            url: "https://hooks.example.com/a".into(),
            description: "old".into(),
            events: Subscription::parse(&["*".into()]).unwrap(),
            enabled: false,
            failing_since: Some(at),
            disabled_reason: Some("failing".into()),
            previous_secret_expires_at: None,
            created_at: at,
            updated_at: at,
        }
    }

    #[test]
    fn enabling_starts_over_and_other_fields_stay_unless_set() {
        let later = crate::now() + time::Duration::minutes(1);
        let mut e = disabled();
        let before = e.clone();
        let patch = EndpointPatch {
            description: Some("new".into()),
            ..EndpointPatch::default()
        };
        patch.apply(&mut e, later);
        assert_eq!(e.description, "new");
        assert_eq!((e.url.as_str(), e.enabled), (before.url.as_str(), false));
        assert_eq!(e.failing_since, before.failing_since, "still disabled");
        assert_eq!(e.updated_at, later);
        assert_eq!(patch.changed(), ["description"]);

        let enable = EndpointPatch {
            enabled: Some(true),
            ..EndpointPatch::default()
        };
        enable.apply(&mut e, later);
        assert!(e.enabled);
        assert_eq!(
            (e.failing_since, e.disabled_reason.as_deref()),
            (None, None)
        );
    }

    #[test]
    fn disabling_keeps_the_failure_record() {
        let mut e = disabled();
        e.enabled = true;
        let patch = EndpointPatch {
            enabled: Some(false),
            url: Some("https://hooks.example.com/b".into()),
            ..EndpointPatch::default()
        };
        patch.apply(&mut e, crate::now());
        assert!(!e.enabled);
        assert!(e.failing_since.is_some());
        assert_eq!(e.url, "https://hooks.example.com/b");
        assert_eq!(patch.changed(), ["url", "enabled"]);
    }
}
