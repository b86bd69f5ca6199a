//! `portcullis`: the one binary. Parses the command line and hands over to the library.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use portcullis_core::password::Password;
use portcullis_core::{AuditContext, Email, OrgAccess, OrgId, Role, UserId};
use portcullis_server::{Config, LogFormat, Server};
use portcullis_store::{NewMember, SignupBootstrap, Store};
use serde::Serialize;

#[derive(Parser)]
#[command(
    name = "portcullis",
    version,
    about = "Multi-tenant authentication and session server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Flags every subcommand shares, so `admin` and `migrate` reach the same database as `serve`.
#[derive(Args, Serialize, Default)]
struct StorageArgs {
    /// Configuration file (default: ./portcullis.toml when present).
    #[arg(long, env = "PORTCULLIS_CONFIG", global = true)]
    #[serde(skip)]
    config: Option<PathBuf>,
    /// Directory of the embedded database and generated master key.
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    data_dir: Option<PathBuf>,
    /// sqlite://… or postgres://…
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    database_url: Option<String>,
}

#[derive(Args, Serialize, Default)]
struct ServeArgs {
    /// Address to listen on (default 127.0.0.1:8080).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    listen: Option<String>,
    /// The URL users reach this server at, e.g. https://auth.example.com.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    public_url: Option<String>,
    /// Development mode.
    #[arg(long)]
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    dev: bool,
    /// json or pretty.
    #[arg(long, value_parser = ["json", "pretty"])]
    #[serde(skip_serializing_if = "Option::is_none")]
    log_format: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (migrates the database first).
    Serve {
        #[command(flatten)]
        storage: StorageArgs,
        #[command(flatten)]
        serve: ServeArgs,
    },
    /// Apply database migrations and exit.
    Migrate {
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Operator commands against the database (safe while a server runs).
    Admin {
        #[command(flatten)]
        storage: StorageArgs,
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Check the configuration against the support runbooks (public URL, allowlist, sign-in
    /// methods, SSO discovery, database, migrations, keys, clock) and print a fix for each
    /// problem. Read-only. Exit status 1 when a check fails, 0 otherwise.
    Doctor {
        #[command(flatten)]
        storage: StorageArgs,
        #[command(flatten)]
        serve: ServeArgs,
        /// Print the findings as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print version and git commit.
    Version,
    /// Print the OpenAPI document.
    Openapi,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create a user. Without --org they get a personal org and default project, like self-signup.
    CreateUser {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: Option<String>,
        /// Read the password from standard input (otherwise the account has none).
        #[arg(long)]
        password_stdin: bool,
        /// Add the user to this org (with a default-project membership) instead.
        #[arg(long)]
        org: Option<String>,
        /// Role in --org.
        #[arg(long, default_value = "member")]
        role: String,
    },
    GrantPlatformAdmin {
        #[arg(long)]
        email: String,
    },
    RevokePlatformAdmin {
        #[arg(long)]
        email: String,
    },
    ListOrgs,
    /// Make a new active signing key; the previous one stays published in the JWKS until
    /// every token it signed has expired. Running servers pick the new key up within a minute.
    RotateSigningKey {
        /// EdDSA (default), ES256 or RS256.
        #[arg(long, default_value = "EdDSA", value_parser = ["EdDSA", "ES256", "RS256"])]
        alg: String,
    },
}

#[derive(Serialize)]
struct Overrides<'a> {
    #[serde(flatten)]
    storage: &'a StorageArgs,
    #[serde(flatten)]
    serve: &'a ServeArgs,
}

fn load(storage: &StorageArgs, serve: &ServeArgs) -> Result<Config, String> {
    let (config, warnings) = Config::load(storage.config.as_deref(), &Overrides { storage, serve })
        .map_err(|e| e.to_string())?;
    for w in warnings {
        eprintln!("warning: {w}");
    }
    Ok(config)
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init(),
        LogFormat::Pretty => builder.init(),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve { storage, serve } => run_serve(&storage, &serve).await,
        Command::Migrate { storage } => run_migrate(&storage).await,
        Command::Admin { storage, command } => run_admin(&storage, command).await,
        Command::Doctor {
            storage,
            serve,
            json,
        } => return run_doctor(&storage, &serve, json).await,
        Command::Version => {
            println!(
                "portcullis {} (commit {})",
                portcullis_server::VERSION,
                portcullis_server::COMMIT
            );
            Ok(())
        }
        Command::Openapi => {
            println!("{}", portcullis_server::openapi::json());
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run_serve(storage: &StorageArgs, serve: &ServeArgs) -> Result<(), String> {
    let config = load(storage, serve)?;
    init_logging(&config);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let server = Server::start(config.clone())
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(
        listen = %server.local_addr,
        public_url = %server.state.public_url,
        backend = server.state.store.backend().as_str(),
        version = portcullis_server::VERSION,
        "portcullis listening"
    );
    server
        .run(shutdown_signal())
        .await
        .map_err(|e| e.to_string())
}

async fn run_doctor(storage: &StorageArgs, serve: &ServeArgs, json: bool) -> ExitCode {
    let overrides = Overrides { storage, serve };
    let (config, warnings) = match Config::load(storage.config.as_deref(), &overrides) {
        Ok(loaded) => loaded,
        Err(e) => {
            println!("FAIL  configuration: {e}");
            println!("      fix: correct the setting named above");
            return ExitCode::FAILURE;
        }
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let report = portcullis_server::support::doctor::run(&config, &warnings).await;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        print!("{}", report.render_text());
    }
    if report.failed() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

async fn open_store(storage: &StorageArgs) -> Result<std::sync::Arc<dyn Store>, String> {
    let config = load(storage, &ServeArgs::default())?;
    config.prepare_data_dir().map_err(|e| e.to_string())?;
    let options = portcullis_store::ConnectOptions {
        max_connections: config.database_max_connections,
    };
    let store = portcullis_store::connect_with(&config.database_url(), options)
        .await
        .map_err(|e| e.to_string())?;
    Ok(store)
}

async fn run_migrate(storage: &StorageArgs) -> Result<(), String> {
    let store = open_store(storage).await?;
    store.migrate().await.map_err(|e| e.to_string())?;
    println!("migrations applied ({})", store.backend().as_str());
    Ok(())
}

async fn run_admin(storage: &StorageArgs, command: AdminCommand) -> Result<(), String> {
    let store = open_store(storage).await?;
    if !store
        .migrations_current()
        .await
        .map_err(|e| e.to_string())?
    {
        store.migrate().await.map_err(|e| e.to_string())?;
    }
    let ctx = AuditContext::cli();
    match command {
        AdminCommand::CreateUser {
            email,
            name,
            password_stdin,
            org,
            role,
        } => {
            let email = Email::parse(&email).map_err(|e| e.to_string())?;
            let name = name
                .as_deref()
                .map(portcullis_core::UserName::parse)
                .transpose()
                .map_err(|e| e.to_string())?;
            let password_hash = if password_stdin {
                let mut raw = String::new();
                std::io::stdin()
                    .read_to_string(&mut raw)
                    .map_err(|e| e.to_string())?;
                let raw = raw.trim_end_matches(['\n', '\r']).to_owned();
                let password = Password::new_for_signup(raw).map_err(|e| e.to_string())?;
                Some(portcullis_core::password::hash(&password).map_err(|e| e.to_string())?)
            } else {
                None
            };
            let user = match org {
                Some(org) => {
                    let org_id = OrgId::parse(&org).ok_or("--org must be an org id (UUID)")?;
                    let access = OrgAccess::system(org_id);
                    store
                        .org(&access)
                        .details()
                        .await
                        .map_err(|_| format!("no organization {org_id}"))?;
                    let role = Role::parse(&role).map_err(|e| e.to_string())?;
                    let member = NewMember {
                        new_user_id: UserId::new(),
                        email,
                        name,
                        password_hash,
                        role,
                        password_setup: None,
                    };
                    let added = store
                        .org(&access)
                        .members()
                        .add_member(&member, &ctx)
                        .await
                        .map_err(|e| e.to_string())?;
                    if !added.user_created {
                        eprintln!(
                            "note: an account with this email existed; it was added to the org"
                        );
                    }
                    added.member.user
                }
                None => {
                    let (org, project) =
                        portcullis_core::bootstrap::personal_org(&email, name.as_ref())
                            .map_err(|e| e.message)?;
                    let b = SignupBootstrap {
                        user_id: UserId::new(),
                        email,
                        name,
                        password_hash,
                        org,
                        project,
                        self_signup: false,
                    };
                    store
                        .accounts()
                        .bootstrap_signup(&b, &ctx)
                        .await
                        .map_err(|e| e.to_string())?
                }
            };
            println!(
                "{}",
                serde_json::json!({"id": user.id, "email": user.email.as_str(), "posix_uid": user.posix.uid, "posix_gid": user.posix.gid, "correlation_id": ctx.correlation_id})
            );
            Ok(())
        }
        AdminCommand::GrantPlatformAdmin { email } => set_admin(&*store, &email, true, &ctx).await,
        AdminCommand::RevokePlatformAdmin { email } => {
            set_admin(&*store, &email, false, &ctx).await
        }
        AdminCommand::ListOrgs => {
            for org in store
                .orgs()
                .list_all_orgs()
                .await
                .map_err(|e| e.to_string())?
            {
                println!(
                    "{}",
                    serde_json::json!({"id": org.id, "slug": org.slug.as_str(), "name": org.name.as_str(), "personal": org.personal})
                );
            }
            Ok(())
        }
        AdminCommand::RotateSigningKey { alg } => {
            rotate_signing_key(storage, store, &alg, &ctx).await
        }
    }
}

async fn rotate_signing_key(
    storage: &StorageArgs,
    store: std::sync::Arc<dyn Store>,
    alg: &str,
    ctx: &AuditContext,
) -> Result<(), String> {
    let alg = portcullis_core::oauth::SigningAlg::parse(alg).map_err(|e| e.to_string())?;
    // The same master key the server uses, or the server could not open the new key.
    let master_key = load(storage, &ServeArgs::default())?
        .master_key()
        .map_err(|e| e.to_string())?;
    let keys = portcullis_server::infra::keys::KeyRing::open(store, &master_key)
        .await
        .map_err(|e| e.to_string())?;
    let rotated = keys
        .rotate_detailed(alg, ctx)
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "{}",
        serde_json::json!({
            "kid": rotated.kid,
            "alg": rotated.alg.as_str(),
            "retired": rotated.retired,
            "publish_until": portcullis_server::http::dto::ts(rotated.publish_until),
            "correlation_id": ctx.correlation_id,
        })
    );
    Ok(())
}

async fn set_admin(
    store: &dyn Store,
    email: &str,
    on: bool,
    ctx: &AuditContext,
) -> Result<(), String> {
    let email = Email::parse(email).map_err(|e| e.to_string())?;
    let user = store
        .accounts()
        .user_by_email(&email)
        .await
        .map_err(|e| e.to_string())?
        .ok_or(format!("no user with email {email}"))?;
    store
        .accounts()
        .set_platform_admin(user.user.id, on, ctx)
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "{} is {} a platform admin",
        email,
        if on { "now" } else { "no longer" }
    );
    Ok(())
}
