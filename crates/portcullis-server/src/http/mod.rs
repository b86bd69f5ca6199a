//! The shared edge: the error envelope and OAuth errors, correlation ids, extractors,
//! cookies, DTOs shared by several features, HTML pages and the forms they post, OAuth-style
//! request parameters, and the request middleware (body limits, rate limits).

pub mod cookies;
pub mod correlation;
pub mod dto;
pub mod error;
pub mod extract;
pub mod forms;
pub mod html;
pub mod limits;
pub mod oauth_error;
pub mod origin;
pub mod params;
pub mod throttle;
