//! The command line (clap). Every setting is also an `MCH_*` / `DATABASE_URL` variable.

use std::io::{Read, Write};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use serde_json::json;

use crate::config::Settings;
use crate::facility::model::NewFacility;
use crate::identity::model::IdNumber;
use crate::ids::today_china;
use crate::storage::{self, Db};
use crate::{Application, audit, auth, demo, facility};

#[derive(Debug, Parser)]
#[command(
    name = "mch-chain",
    version,
    about = "Maternal and child health pathway service (一条链)"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service (HTTP).
    Serve {
        #[command(flatten)]
        settings: Settings,
        /// Seed a demo region when the database is empty and print the demo logins.
        #[arg(long, env = "MCH_DEMO")]
        demo: bool,
    },
    /// Apply (or revert) database migrations.
    Migrate {
        #[command(flatten)]
        settings: Settings,
        /// Revert the last N migrations instead.
        #[arg(long)]
        revert: Option<usize>,
    },
    /// Seed the demo region into an empty database.
    DemoData {
        #[command(flatten)]
        settings: Settings,
    },
    /// Staff accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Bearer tokens for hospital systems.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// The facility directory.
    Facility {
        #[command(subcommand)]
        command: FacilityCommand,
    },
    /// Identity number tools.
    Id {
        #[command(subcommand)]
        command: IdCommand,
    },
    /// HL7 v2 interface.
    Hl7 {
        #[command(subcommand)]
        command: Hl7Command,
    },
    /// Five-colour risk grading.
    Risk {
        #[command(subcommand)]
        command: RiskCommand,
    },
    /// WHO 2006 child growth standards.
    Growth {
        #[command(subcommand)]
        command: GrowthCommand,
    },
    /// Child health care from birth to six.
    Child {
        #[command(subcommand)]
        command: ChildCommand,
    },
    /// The birth-registration (生育登记) policy engine.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// The audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a staff account; the password is read from standard input.
    Add {
        #[command(flatten)]
        settings: Settings,
        #[arg(long)]
        username: String,
        #[arg(long)]
        role: String,
        /// Facility code.
        #[arg(long)]
        facility: String,
        #[arg(long, default_value = "")]
        display_name: String,
        /// Read the password from standard input (required: passwords never go on the command line).
        #[arg(long)]
        password_stdin: bool,
    },
    /// List failed-login runs of the last hour and the waits still running (login throttling).
    Locks {
        #[command(flatten)]
        settings: Settings,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Clear the failed logins and waits of a username (its account and every address it was
    /// tried from) and/or of a client address; audited as `login_unlock`.
    Unlock {
        #[command(flatten)]
        settings: Settings,
        #[arg(long)]
        username: Option<String>,
        /// Client address (as the audit log and `user locks` show it).
        #[arg(long)]
        address: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Issue a bearer token bound to a facility; it is printed once.
    Issue {
        #[command(flatten)]
        settings: Settings,
        #[arg(long)]
        facility: String,
        #[arg(long)]
        name: String,
        /// `hospital_system` (default) or `auditor` (reads FHIR AuditEvent).
        #[arg(long, default_value = "hospital_system")]
        role: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum FacilityCommand {
    /// List facilities.
    List {
        #[command(flatten)]
        settings: Settings,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Add a facility.
    Add {
        #[command(flatten)]
        settings: Settings,
        #[arg(long)]
        code: String,
        #[arg(long)]
        name: String,
        /// village, township, county, city or province.
        #[arg(long)]
        level: String,
        /// clinic, health_centre, mch_centre or hospital.
        #[arg(long)]
        kind: String,
        /// GB/T 2260 6-digit county code.
        #[arg(long)]
        jurisdiction: String,
        /// 9-digit township code (village and township facilities).
        #[arg(long)]
        township_code: Option<String>,
        /// Comma-separated capabilities.
        #[arg(long, default_value = "")]
        capabilities: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum IdCommand {
    /// Check an 18-digit (or legacy 15-digit) citizen ID number; prints one JSON object.
    Check { id: String },
}

#[derive(Debug, Subcommand)]
pub enum Hl7Command {
    /// Senders (MSH-3/MSH-4 bound to one of our facilities).
    Sender {
        #[command(subcommand)]
        command: Hl7SenderCommand,
    },
    /// Destinations (the hospital system that receives one facility's referral messages).
    Destination {
        #[command(subcommand)]
        command: Hl7DestinationCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum Hl7DestinationCommand {
    /// Send this facility's referral messages (REF^I12 / RRI^I12) to a hospital system over MLLP.
    Add {
        #[command(flatten)]
        settings: Settings,
        /// Our facility code whose messages go there (one destination per facility).
        #[arg(long)]
        facility: String,
        #[arg(long)]
        host: String,
        #[arg(long)]
        port: u16,
        /// MSH-5 of the messages sent there.
        #[arg(long)]
        receiving_app: String,
        /// MSH-6 of the messages sent there.
        #[arg(long)]
        receiving_facility: String,
        /// utf8 or gb18030 (MSH-18 and the bytes sent).
        #[arg(long, default_value = "utf8")]
        charset: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum Hl7SenderCommand {
    /// Register a sender; messages from unregistered senders are rejected (AR).
    Add {
        #[command(flatten)]
        settings: Settings,
        #[arg(long)]
        sending_app: String,
        #[arg(long)]
        sending_facility: String,
        /// Our facility code the sender is bound to (its jurisdiction scopes what it may touch).
        #[arg(long)]
        facility: String,
        /// Character set when MSH-18 is empty: utf8 or gb18030.
        #[arg(long, default_value = "utf8")]
        charset: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum RiskCommand {
    /// Read a JSON object of facts on standard input and print the five-colour assessment.
    Evaluate {
        /// Rule set (rules/risk/<id>.toml).
        #[arg(long, env = "MCH_RISK_RULE_SET", default_value = crate::risk::model::DEFAULT_RULE_SET)]
        rule_set: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum GrowthCommand {
    /// Read one measurement as JSON on standard input (`sex`, `age_days`, `weight_kg`, `length_cm`,
    /// `position`, `oedema`) and print its WHO z-scores, flags and findings; nothing is stored.
    Evaluate,
}

#[derive(Debug, Subcommand)]
pub enum ChildCommand {
    /// Print the standard schedule of a child born that day (13 contacts, labs, hearing, newborn
    /// screening, the immunisation programme of her birth cohort): one JSON object per line.
    Schedule {
        #[arg(long)]
        birth_date: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Read a case as JSON on standard input (`date`, `provinces` [wife, husband], `remarriage`,
    /// `children`) and print `{"birth_order","procedure","rule","source"}`; nothing is stored.
    Evaluate,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify the audit hash chain; names the first broken row.
    Verify {
        #[command(flatten)]
        settings: Settings,
    },
}

fn open(settings: &Settings) -> anyhow::Result<CommandDb> {
    crate::reactions::wire();
    Db::open(&settings.database_url, settings.pool_size)
        .map(|db| CommandDb(Some(db)))
        .with_context(|| format!("opening {}", storage::redact_url(&settings.database_url)))
}

/// The database of one command: when the command ends its connections are closed and the writer
/// joined on this thread, before the process exits (a PostgreSQL connection torn down on another
/// thread while the process exits crashed in the TLS library).
struct CommandDb(Option<Db>);

impl std::ops::Deref for CommandDb {
    type Target = Db;
    fn deref(&self) -> &Db {
        self.0
            .as_ref()
            .unwrap_or_else(|| unreachable!("a command's database is only taken on drop"))
    }
}

impl Drop for CommandDb {
    fn drop(&mut self) {
        if let Some(db) = self.0.take() {
            db.close();
        }
    }
}

/// Run a command; returns the process exit code.
pub async fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Serve { settings, demo: seed } => {
            crate::telemetry::init(&settings.log_format);
            let db = open(&settings)?;
            if seed {
                match demo::seed_if_empty(&db).await? {
                    Some(seeded) => print_logins(&seeded),
                    None => println!("数据库非空，未重新生成演示数据。演示账号见 README。"),
                }
            }
            let app = Application::build_with_db(&settings, db.clone())?;
            // Written with errors ignored: a supervisor that stops reading stdout must not stop the service.
            let mut out = std::io::stdout();
            let _ = writeln!(
                out,
                "mch-chain listening on http://{}",
                settings.http_addr.replace(":0", &format!(":{}", app.http_port()))
            );
            let _ = writeln!(out, "http_port={}", app.http_port());
            if let Some(p) = app.mllp_port() {
                let _ = writeln!(out, "mllp_port={p}");
            }
            let _ = out.flush();
            app.run_until_stopped().await?;
            Ok(0)
        }
        Command::Migrate { settings, revert } => {
            let mut conn = storage::establish(&settings.database_url)?;
            match revert {
                Some(n) => {
                    storage::revert_migrations(&mut conn, n)?;
                    println!("reverted {n} migration(s)");
                }
                None => println!("applied {} migration(s)", storage::run_migrations(&mut conn)?),
            }
            Ok(0)
        }
        Command::DemoData { settings } => {
            let db = open(&settings)?;
            match demo::seed_if_empty(&db).await? {
                Some(seeded) => {
                    print_logins(&seeded);
                    Ok(0)
                }
                None => {
                    eprintln!("the database already has facilities; demo data not added");
                    Ok(1)
                }
            }
        }
        Command::User {
            command:
                UserCommand::Add {
                    settings,
                    username,
                    role,
                    facility,
                    display_name,
                    password_stdin,
                },
        } => {
            if !password_stdin {
                bail!("pass --password-stdin and write the password to standard input");
            }
            let mut pw = String::new();
            std::io::stdin().read_to_string(&mut pw)?;
            let pw = pw.trim_end_matches(['\r', '\n']).to_string();
            let db = open(&settings)?;
            let id = auth::service::add_user(&db, &username, &display_name, &role, &facility, pw).await?;
            println!(
                "{}",
                json!({"id": id, "username": username, "role": role, "facility": facility})
            );
            Ok(0)
        }
        Command::User {
            command: UserCommand::Locks {
                settings,
                json: as_json,
            },
        } => {
            let db = open(&settings)?;
            for l in auth::service::login_locks(&db, auth::service::Operator::CommandLine).await? {
                if as_json {
                    println!("{}", serde_json::to_string(&l)?);
                } else {
                    println!(
                        "{}\t{}\t{}\t{} failures\t{}",
                        l.kind.as_str(),
                        if l.username.is_empty() { "-" } else { &l.username },
                        if l.address.is_empty() { "-" } else { &l.address },
                        l.failures,
                        l.waiting_secs
                            .map(|s| format!("waits {s} s"))
                            .unwrap_or_else(|| "no wait".into())
                    );
                }
            }
            Ok(0)
        }
        Command::User {
            command:
                UserCommand::Unlock {
                    settings,
                    username,
                    address,
                },
        } => {
            let db = open(&settings)?;
            let cleared = auth::service::clear_login_locks(
                &db,
                auth::service::Operator::CommandLine,
                username.as_deref(),
                address.as_deref(),
            )
            .await?;
            println!(
                "{}",
                json!({"username": username, "address": address, "cleared": cleared.len(), "entries": cleared})
            );
            Ok(0)
        }
        Command::Token {
            command:
                TokenCommand::Issue {
                    settings,
                    facility,
                    name,
                    role,
                },
        } => {
            let Some(role) = crate::auth::model::Role::parse(&role) else {
                eprintln!("unknown role: {role}");
                return Ok(2);
            };
            let db = open(&settings)?;
            let token = auth::service::issue_token_for(&db, &facility, &name, role).await?;
            println!("{token}");
            Ok(0)
        }
        Command::Facility {
            command: FacilityCommand::List {
                settings,
                json: as_json,
            },
        } => {
            let db = open(&settings)?;
            for f in facility::service::list(&db).await? {
                if as_json {
                    println!(
                        "{}",
                        json!({"code": f.code, "name": f.name, "level": f.level, "kind": f.kind, "jurisdiction": f.jurisdiction,
                               "township_code": f.township_code, "capabilities": f.capabilities})
                    );
                } else {
                    println!(
                        "{}\t{}\t{}\t{}\t{}\t{}",
                        f.code,
                        f.level.as_str(),
                        f.kind.as_str(),
                        f.jurisdiction,
                        f.name,
                        f.capabilities.join(",")
                    );
                }
            }
            Ok(0)
        }
        Command::Facility {
            command:
                FacilityCommand::Add {
                    settings,
                    code,
                    name,
                    level,
                    kind,
                    jurisdiction,
                    township_code,
                    capabilities,
                },
        } => {
            let db = open(&settings)?;
            let f = facility::service::add(
                &db,
                NewFacility {
                    code,
                    name,
                    level,
                    kind,
                    jurisdiction,
                    township_code,
                    capabilities: capabilities.split(',').map(str::to_string).collect(),
                },
            )
            .await?;
            println!(
                "{}",
                json!({"code": f.code, "name": f.name, "level": f.level, "kind": f.kind, "jurisdiction": f.jurisdiction, "capabilities": f.capabilities})
            );
            Ok(0)
        }
        Command::Id {
            command: IdCommand::Check { id },
        } => {
            let (out, code) = id_check(&id);
            println!("{out}");
            Ok(code)
        }
        Command::Hl7 {
            command:
                Hl7Command::Sender {
                    command:
                        Hl7SenderCommand::Add {
                            settings,
                            sending_app,
                            sending_facility,
                            facility,
                            charset,
                        },
                },
        } => {
            let db = open(&settings)?;
            let id = crate::hl7::service::add_sender(&db, &sending_app, &sending_facility, &facility, &charset).await?;
            println!(
                "{}",
                json!({"id": id, "sending_app": sending_app, "sending_facility": sending_facility, "facility": facility})
            );
            Ok(0)
        }
        Command::Hl7 {
            command:
                Hl7Command::Destination {
                    command:
                        Hl7DestinationCommand::Add {
                            settings,
                            facility,
                            host,
                            port,
                            receiving_app,
                            receiving_facility,
                            charset,
                        },
                },
        } => {
            let db = open(&settings)?;
            let id = crate::hl7::outbox::add_destination(
                &db,
                &facility,
                &host,
                port,
                &receiving_app,
                &receiving_facility,
                &charset,
            )
            .await?;
            println!(
                "{}",
                json!({"id": id, "facility": facility, "host": host, "port": port,
                       "receiving_app": receiving_app, "receiving_facility": receiving_facility})
            );
            Ok(0)
        }
        Command::Risk {
            command: RiskCommand::Evaluate { rule_set },
        } => {
            let mut input = String::new();
            std::io::stdin().read_to_string(&mut input)?;
            let facts: crate::risk::model::Facts = match serde_json::from_str(&input) {
                Ok(f) => f,
                Err(e) => {
                    println!("{}", json!({"error": format!("invalid facts JSON: {e}")}));
                    return Ok(1);
                }
            };
            match crate::risk::service::evaluate(&rule_set, &facts) {
                Ok(a) => {
                    println!("{}", serde_json::to_string(&a)?);
                    Ok(0)
                }
                Err(e) => {
                    println!("{}", json!({"error": e.to_string()}));
                    Ok(1)
                }
            }
        }
        Command::Growth {
            command: GrowthCommand::Evaluate,
        } => {
            let mut input = String::new();
            std::io::stdin().read_to_string(&mut input)?;
            let (out, code) = growth_evaluate(&input);
            println!("{out}");
            Ok(code)
        }
        Command::Child {
            command: ChildCommand::Schedule { birth_date },
        } => {
            let (lines, code) = child_schedule(&birth_date);
            for l in lines {
                println!("{l}");
            }
            Ok(code)
        }
        Command::Policy {
            command: PolicyCommand::Evaluate,
        } => {
            let mut input = String::new();
            std::io::stdin().read_to_string(&mut input)?;
            let (out, code) = policy_evaluate(&input);
            println!("{out}");
            Ok(code)
        }
        Command::Audit {
            command: AuditCommand::Verify { settings },
        } => {
            let mut conn = storage::establish(&settings.database_url)?;
            let report = audit::service::verify_chain(&mut conn)?;
            println!("{}", serde_json::to_string(&report)?);
            Ok(if report.ok { 0 } else { 1 })
        }
    }
}

/// `id check`: the JSON object of the contract and the exit code (0 valid, 1 not).
pub fn id_check(input: &str) -> (serde_json::Value, i32) {
    match IdNumber::parse(input, today_china()) {
        Ok(id) => (
            json!({"valid": true, "normalized": id.as_str(), "birth_date": id.birth_date().to_string(), "sex": id.sex().as_str()}),
            0,
        ),
        Err(e) => (json!({"valid": false, "error": e.message_en()}), 1),
    }
}

/// `growth evaluate`: the JSON object of the contract (fields in the order of
/// `growth::model::Evaluation`, z-scores first) and the exit code: 0, or 1 with `{"error": "…"}`
/// for input that is not one usable measurement.
pub fn growth_evaluate(input: &str) -> (String, i32) {
    let refused = |message: String| (json!({ "error": message }).to_string(), 1);
    let measurement: crate::growth::model::Measurement = match serde_json::from_str(input) {
        Ok(m) => m,
        Err(e) => return refused(format!("invalid measurement JSON: {e}")),
    };
    match crate::growth::model::evaluate(&measurement).map(|e| serde_json::to_string(&e)) {
        Ok(Ok(out)) => (out, 0),
        Ok(Err(e)) => refused(e.to_string()),
        Err(e) => refused(e),
    }
}

/// `policy evaluate`: the contract's four keys (`birth_order`, `procedure`, `rule`, `source`) on
/// one line and exit 0, or `{"error": "…"}` and exit 1 for input that is not one usable case.
pub fn policy_evaluate(input: &str) -> (String, i32) {
    let refused = |message: String| (json!({ "error": message }).to_string(), 1);
    let case: crate::policy::model::Case = match serde_json::from_str(input) {
        Ok(c) => c,
        Err(e) => return refused(format!("invalid case JSON: {e}")),
    };
    match crate::policy::model::evaluate(&case) {
        Ok(d) => (
            json!({"birth_order": d.birth_order, "procedure": d.procedure.as_str(), "rule": d.rule, "source": d.source})
                .to_string(),
            0,
        ),
        Err(e) => refused(e.to_string()),
    }
}

/// `child schedule --birth-date`: one JSON object per item (`kind`, `code`, `name`, `due_from`,
/// `due_to`), in due order; exit 1 with `{"error"}` for a date that is not `YYYY-MM-DD` or lies
/// in the future.
pub fn child_schedule(birth_date: &str) -> (Vec<String>, i32) {
    let Ok(birth) = chrono::NaiveDate::parse_from_str(birth_date.trim(), "%Y-%m-%d") else {
        return (
            vec![json!({"error": format!("birth date must be YYYY-MM-DD, got {birth_date:?}")}).to_string()],
            1,
        );
    };
    if birth > today_china() {
        return (vec![json!({"error": "birth date is in the future"}).to_string()], 1);
    }
    let lines = crate::child::service::standard_schedule(birth)
        .into_iter()
        .map(|i| {
            json!({"kind": i.kind.as_str(), "code": i.code, "name": i.name, "due_from": i.due_from.to_string(),
                   "due_to": i.due_to.to_string()})
            .to_string()
        })
        .collect();
    (lines, 0)
}

fn print_logins(seeded: &demo::DemoSeed) {
    println!("演示数据已生成。演示账号（密码均为 {}）：", demo::DEMO_PASSWORD);
    for l in &seeded.logins {
        println!("  {:<22} {:<22} {}", l.username, l.role, l.facility);
    }
    println!(
        "FHIR 接口令牌（仅显示一次；Authorization: Bearer <令牌>，例如 curl -G --data-urlencode name=王 -H \"Authorization: Bearer …\" http://127.0.0.1:8080/fhir/Patient）："
    );
    for (role, facility, token) in &seeded.tokens {
        println!("  {role:<22} {facility:<22} {token}");
    }
}
