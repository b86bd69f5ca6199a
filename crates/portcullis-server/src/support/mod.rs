//! Operator tools shared by the command line and (later) the console.

pub mod doctor;
pub mod doctor_platform;
