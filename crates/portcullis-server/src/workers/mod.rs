//! Background tasks that run beside the server.
