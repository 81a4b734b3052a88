//! The `switchboard` command line (DESIGN §2).

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use switchboard::config::{Config, SettingsArgs};
use switchboard::ivr::{self, Severity};
use switchboard::store::{NewAgent, Store, format_skills, parse_skills};
use switchboard::{Sockets, run};

/// Switchboard: a SIP/RTP IVR and contact-centre switch.
#[derive(Debug, Parser)]
#[command(name = "switchboard", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    settings: SettingsArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the switch.
    Serve,
    /// Validate flows, queues.yaml, hours.yaml and sounds; exit 1 on error.
    Check {
        /// The flow folder [default: the `flows` setting]
        dir: Option<PathBuf>,
    },
    /// Manage agents.
    #[command(subcommand)]
    Agent(AgentCommand),
    /// Manage the database.
    #[command(subcommand)]
    Db(DbCommand),
}

#[derive(Debug, Subcommand)]
enum AgentCommand {
    /// Add an agent; the password is kept only as digest HA1s.
    Add {
        login: String,
        #[arg(long)]
        password: String,
        /// Display name [default: the login]
        #[arg(long)]
        name: Option<String>,
        /// Skills with levels 1-5, e.g. support=5,sales=2
        #[arg(long)]
        skills: Option<String>,
        /// Extension number, e.g. 1001
        #[arg(long)]
        extension: Option<String>,
    },
    /// List agents.
    List,
    /// Remove an agent.
    Remove { login: String },
    /// Replace an agent's skills, e.g. support=5,sales=2 ("" clears them).
    SetSkills { login: String, skills: String },
}

#[derive(Debug, Subcommand)]
enum DbCommand {
    /// Apply migrations (serve also does this at start).
    Migrate,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = Config::load(&cli.settings).context("configuration")?;
    match cli.command {
        Command::Serve => serve(config).await,
        Command::Check { dir } => Ok(check(&config, dir)),
        Command::Agent(cmd) => agent(&config, cmd).await,
        Command::Db(DbCommand::Migrate) => {
            let store = open_store(&config).await?;
            store.migrate().await.context("applying migrations")?;
            store.close().await;
            println!("migrations applied");
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<ExitCode> {
    let shutdown = shutdown_signal()?;
    let sockets = Sockets::bind(&config).await.with_context(|| {
        format!(
            "binding sip={} http={}",
            config.sip_listen, config.http_listen
        )
    })?;
    run(config, sockets, shutdown).await.context("serve")?;
    Ok(ExitCode::SUCCESS)
}

/// Registers the SIGINT and SIGTERM handlers now (so a signal that
/// arrives while the switch is starting is not lost to the default action)
/// and returns a future that completes on either.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut int = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
        let mut term = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
        Ok(async move {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}

fn check(config: &Config, dir: Option<PathBuf>) -> ExitCode {
    let dir = dir.unwrap_or_else(|| config.flows.clone());
    let diagnostics = ivr::check(&dir, &config.sounds);
    for d in &diagnostics {
        println!("{d}");
    }
    let errors = diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    if errors > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

async fn open_store(config: &Config) -> anyhow::Result<Store> {
    Store::connect(&config.database_url)
        .await
        .with_context(|| format!("opening the database {}", redact(&config.database_url)))
}

/// A database URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

async fn agent(config: &Config, cmd: AgentCommand) -> anyhow::Result<ExitCode> {
    // Validate the command's own input before touching the database.
    let skills = match &cmd {
        AgentCommand::Add {
            skills: Some(s), ..
        } => parse_skills(s).context("--skills")?,
        AgentCommand::SetSkills { skills, .. } => parse_skills(skills).context("SKILLS")?,
        _ => Vec::new(),
    };
    let store = open_store(config).await?;
    store.migrate().await.context("applying migrations")?;
    let agents = store.agents();
    let code = match cmd {
        AgentCommand::Add {
            login,
            password,
            name,
            extension,
            ..
        } => {
            if password.is_empty() {
                bail!("--password must not be empty");
            }
            let agent = agents
                .add(NewAgent {
                    login,
                    password,
                    display_name: name,
                    extension,
                    realm: config.domain.clone(),
                    skills,
                })
                .await?;
            println!(
                "added agent {} (realm {}, id {})",
                agent.login, agent.realm, agent.id
            );
            ExitCode::SUCCESS
        }
        AgentCommand::List => {
            let list = agents.list().await?;
            println!("LOGIN\tNAME\tEXTENSION\tSTATE\tSKILLS");
            for a in list {
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    a.login,
                    a.display_name,
                    a.extension.as_deref().unwrap_or("-"),
                    a.state,
                    format_skills(&a.skills)
                );
            }
            ExitCode::SUCCESS
        }
        AgentCommand::Remove { login } => {
            if agents.remove(&login).await? {
                println!("removed agent {login}");
                ExitCode::SUCCESS
            } else {
                eprintln!("error: agent {login:?} not found");
                ExitCode::FAILURE
            }
        }
        AgentCommand::SetSkills { login, .. } => {
            agents.set_skills(&login, &skills).await?;
            println!("agent {login} skills: {}", format_skills(&skills));
            ExitCode::SUCCESS
        }
    };
    store.close().await;
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn settings_are_accepted_after_subcommands() {
        let cli = Cli::try_parse_from([
            "switchboard",
            "agent",
            "add",
            "alice",
            "--password",
            "pw",
            "--database-url",
            "sqlite://x.db",
        ])
        .unwrap();
        assert_eq!(cli.settings.database_url.as_deref(), Some("sqlite://x.db"));
        let cli = Cli::try_parse_from(["switchboard", "check", "flows", "--sounds", "s"]).unwrap();
        assert_eq!(cli.settings.sounds.as_deref(), Some("s"));
        assert!(matches!(cli.command, Command::Check { dir: Some(_) }));
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("sqlite://x.db"), "sqlite://x.db");
    }
}
