//! Start-up: open the database (migrations included), bind HTTP, report the port.

use std::net::TcpListener;

use actix_web::dev::Server;

use crate::config::Settings;
use crate::storage::{Db, redact_url};
use crate::web;

pub struct Application {
    http_port: u16,
    mllp: Option<std::net::TcpListener>,
    mllp_port: Option<u16>,
    server: Server,
    db: Db,
    mllp_limits: crate::hl7::server::Limits,
    /// The HL7 outbound delivery worker: its period (None: off) and policy.
    outbox: (Option<std::time::Duration>, crate::hl7::outbox::Policy),
}

impl Application {
    pub fn build(settings: &Settings) -> anyhow::Result<Application> {
        let db = Db::open(&settings.database_url, settings.pool_size)?;
        Self::build_with_db(settings, db)
    }

    pub fn build_with_db(settings: &Settings, db: Db) -> anyhow::Result<Application> {
        crate::reactions::wire();
        let listener = TcpListener::bind(&settings.http_addr)
            .map_err(|e| anyhow::anyhow!("cannot bind HTTP address {}: {e}", settings.http_addr))?;
        let http_port = listener.local_addr()?.port();
        crate::risk::model::configure(&settings.risk_rule_set).map_err(|e| anyhow::anyhow!(e))?;
        crate::referral::service::configure(settings.referral_clocks.as_deref(), settings.referral_grant_days)
            .map_err(|e| anyhow::anyhow!(e))?;
        crate::couple::model::configure(settings.prepregnancy_rules.as_deref()).map_err(|e| anyhow::anyhow!(e))?;
        let server = web::server(
            listener,
            db.clone(),
            web::ServerOptions {
                workers: settings.workers,
                login_policy: settings.login_policy().map_err(|e| anyhow::anyhow!(e))?,
                trusted_proxies: settings.trusted_proxies().map_err(|e| anyhow::anyhow!(e))?,
            },
        )?;
        let mllp = match settings.mllp_addr.as_str() {
            "off" | "" => None,
            addr => {
                let l = std::net::TcpListener::bind(addr)
                    .map_err(|e| anyhow::anyhow!("cannot bind MLLP address {addr}: {e}"))?;
                l.set_nonblocking(true)?;
                Some(l)
            }
        };
        let mllp_port = mllp.as_ref().and_then(|l| l.local_addr().ok()).map(|a| a.port());
        tracing::info!(http_port, database = %redact_url(&settings.database_url), "mch-chain listening");
        Ok(Application {
            http_port,
            mllp,
            mllp_port,
            server,
            db,
            mllp_limits: crate::hl7::server::Limits {
                max_backlog: settings.mllp_max_backlog,
                idle_timeout: std::time::Duration::from_secs(settings.mllp_idle_secs.max(1)),
            },
            outbox: (
                (settings.hl7_outbox_tick_ms > 0)
                    .then(|| std::time::Duration::from_millis(settings.hl7_outbox_tick_ms)),
                settings.hl7_outbox_policy(),
            ),
        })
    }

    pub fn http_port(&self) -> u16 {
        self.http_port
    }

    /// The MLLP port, when the listener is on.
    pub fn mllp_port(&self) -> Option<u16> {
        self.mllp_port
    }

    pub fn db(&self) -> Db {
        self.db.clone()
    }

    /// Serve until stopped. Also runs the timers that escalate overdue high-risk and frail-child case
    /// follow-ups (every minute) and late referral steps (every 15 s), and delivers queued HL7 referral
    /// messages (every second); their state lives in the database, so several instances may run
    /// them and each escalation still fires once, each message is sent by one instance at a time.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let db = self.db.clone();
        let timer = tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
            loop {
                tick.tick().await;
                if let Err(e) = crate::risk::service::escalate_overdue(&db, crate::ids::today_china()).await {
                    tracing::warn!(error = %e, "escalation timer failed; retrying next minute");
                }
                if let Err(e) = crate::child::service::escalate_frail_overdue(&db, crate::ids::today_china()).await {
                    tracing::warn!(error = %e, "frail-child escalation timer failed; retrying next minute");
                }
            }
        });
        let db = self.db.clone();
        let referral_timer = tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(15));
            loop {
                tick.tick().await;
                if let Err(e) = crate::referral::service::escalate_late(&db, crate::ids::now_utc()).await {
                    tracing::warn!(error = %e, "referral escalation timer failed; retrying");
                }
            }
        });
        // HL7 outbound delivery: the queue lives in the database and claims are leases, so several
        // instances may run it; each message is still sent by one at a time.
        let outbox = self.outbox.0.map(|period| {
            let (db, policy) = (self.db.clone(), self.outbox.1.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(period);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    if let Err(e) = crate::hl7::outbox::deliver_due(&db, crate::ids::now_utc(), &policy).await {
                        tracing::warn!(error = %e, "HL7 outbound delivery failed; retrying");
                    }
                }
            })
        });
        let mllp = match self.mllp {
            Some(l) => {
                let listener = tokio::net::TcpListener::from_std(l)?;
                Some(tokio::spawn(crate::hl7::server::serve(
                    listener,
                    self.db.clone(),
                    self.mllp_limits,
                )))
            }
            None => None,
        };
        let result = self.server.await;
        timer.abort();
        referral_timer.abort();
        if let Some(o) = outbox {
            o.abort();
        }
        if let Some(m) = mllp {
            m.abort();
        }
        result
    }
}
