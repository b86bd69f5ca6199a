//! Background tasks that run beside the server. Today's two live with what they refresh and
//! stop when it is dropped (the signing-key reloader in `infra::keys`, the upstream
//! discovery loader in `infra::upstream`); the webhook delivery worker, which needs its own
//! start/stop and leases, is here, beside the key-usage flusher and the limiter sweep.

pub mod key_usage;
pub mod limiter_sweep;
pub mod webhooks;
