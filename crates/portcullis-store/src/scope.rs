//! The handles behind [`crate::OrgScope`]'s and [`crate::Store::project`]'s areas, shared
//! by both backends. Each area module keeps its access-taking operations in a crate-private
//! `ByAccess` trait that the backends implement; the handles below bind an access once and
//! are the only public way to call those operations. So the tenant filter is added inside
//! the handle, and a caller without an authorization decision cannot name the call.

use portcullis_core::{OrgAccess, ProjectAccess};

/// One org's area, for a holder of an [`OrgAccess`] to it.
pub(crate) struct OrgHandle<'a, S: ?Sized> {
    pub(crate) store: &'a S,
    pub(crate) access: OrgAccess,
}

impl<'a, S: ?Sized> OrgHandle<'a, S> {
    pub(crate) fn new(store: &'a S, access: &OrgAccess) -> Self {
        Self {
            store,
            access: access.clone(),
        }
    }
}

/// One project's data, for a holder of a [`ProjectAccess`] to it.
pub(crate) struct ProjectHandle<'a, S: ?Sized> {
    pub(crate) store: &'a S,
    pub(crate) access: ProjectAccess,
}

impl<'a, S: ?Sized> ProjectHandle<'a, S> {
    pub(crate) fn new(store: &'a S, access: &ProjectAccess) -> Self {
        Self {
            store,
            access: access.clone(),
        }
    }
}
