//! `doctor`'s developer-platform checks: the Redis that shares rate limits, projects whose
//! backend still uses a superseded secret key, and orgs at or over a plan limit.

use std::time::Duration;

use portcullis_store::Store;

use crate::config::Config;

/// One check's verdict; `doctor` turns it into its report line (this module does not know
/// the report, so the two stay free of a cycle).
pub enum Finding {
    Ok(&'static str, String),
    /// Check, detail, fix.
    Warn(&'static str, String, String),
    Fail(&'static str, String, String),
}

impl Finding {
    fn ok(check: &'static str, detail: impl Into<String>) -> Self {
        Finding::Ok(check, detail.into())
    }

    fn warn(check: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Finding::Warn(check, detail.into(), fix.into())
    }

    fn fail(check: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Finding::Fail(check, detail.into(), fix.into())
    }
}

pub async fn redis(config: &Config) -> Finding {
    if !config.platform.rate_limit_enabled {
        return Finding::ok("redis", "rate limiting is off (rate_limit_enabled = false)");
    }
    let Some(url) = &config.platform.redis_url else {
        return Finding::ok(
            "redis",
            "not configured: rate limits are per node (set redis_url to share them between nodes)",
        );
    };
    let ping = async {
        let client = redis::Client::open(url.expose().as_str()).map_err(|e| e.to_string())?;
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| e.to_string())?;
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map_err(|e| e.to_string())
    };
    match tokio::time::timeout(Duration::from_secs(2), ping).await {
        Ok(Ok(_)) => Finding::ok("redis", "configured and reachable: rate limits are shared"),
        Ok(Err(e)) => Finding::warn(
            "redis",
            format!("configured but unreachable ({e}): each node limits on its own"),
            "check redis_url and that Redis runs and is reachable from every node",
        ),
        Err(_) => Finding::warn(
            "redis",
            "configured but did not answer within 2 s: each node limits on its own",
            "check redis_url and the network path to Redis",
        ),
    }
}

pub async fn keys_and_plans(config: &Config, store: &dyn Store, r: &mut Vec<Finding>) {
    let platform = store.platform();
    match platform.stale_key_uses().await {
        Ok(stale) if stale.is_empty() => r.push(Finding::ok(
            "superseded_keys",
            "no backend used a superseded secret key after its rotation",
        )),
        Ok(stale) => {
            for s in stale {
                r.push(Finding::warn(
                    "superseded_keys",
                    format!(
                        "project {} still uses its superseded key {} (working until {})",
                        s.key.project_id,
                        s.key.prefix,
                        s.key
                            .expires_at
                            .map(crate::http::dto::ts)
                            .unwrap_or_default()
                    ),
                    "deploy the backend with the project's newest secret key and check GET /v1/backend/health from it",
                ));
            }
        }
        Err(e) => r.push(Finding::fail(
            "superseded_keys",
            format!("cannot read secret keys: {e}"),
            "run `portcullis migrate`",
        )),
    }
    match config.platform.plans() {
        Ok(plans) => platform.set_plans(plans),
        Err(e) => {
            r.push(Finding::fail(
                "plans",
                e.to_string(),
                "fix the [plans.*] settings",
            ));
            return;
        }
    }
    match platform.orgs_at_limit().await {
        Ok(full) if full.is_empty() => r.push(Finding::ok(
            "plan_limits",
            "no org is at a limit of its plan",
        )),
        Ok(full) => {
            for o in full {
                r.push(Finding::warn(
                    "plan_limits",
                    format!(
                        "org {} uses {} of {} {} on plan {}: further additions answer 402",
                        o.org_id,
                        o.used,
                        o.limit,
                        o.resource.as_str(),
                        o.plan.as_str()
                    ),
                    "move the org to a bigger plan (PUT /v1/orgs/{org_id}/subscription) or free seats/projects",
                ));
            }
        }
        Err(e) => r.push(Finding::fail(
            "plan_limits",
            format!("cannot read subscriptions: {e}"),
            "run `portcullis migrate`",
        )),
    }
}
