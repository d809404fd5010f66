//! Settings: every one a flag and an environment variable (ARCHITECTURE.md "External interfaces").

#[derive(Debug, Clone, clap::Args)]
pub struct Settings {
    /// Database URL: sqlite://PATH (embedded default) or postgres://USER@HOST/DB.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://mch-chain.db")]
    pub database_url: String,
    /// HTTP listen address (port 0 picks a free port; the chosen one is printed).
    #[arg(long, env = "MCH_HTTP_ADDR", default_value = "127.0.0.1:8080")]
    pub http_addr: String,
    /// HL7 v2 MLLP listen address (`off` disables it; port 0 picks a free port, printed as `mllp_port=N`).
    #[arg(long, env = "MCH_MLLP_ADDR", default_value = "127.0.0.1:2575")]
    pub mllp_addr: String,
    /// Read connections in the pool (writes go through the single group-commit writer).
    #[arg(long, env = "MCH_DB_POOL_SIZE", default_value_t = 8)]
    pub pool_size: u32,
    /// HTTP worker threads (default: number of cores).
    #[arg(long, env = "MCH_HTTP_WORKERS")]
    pub workers: Option<usize>,
    /// Risk grading rule set (rules/risk/<id>.toml): national-2017 or a regional variant.
    #[arg(long, env = "MCH_RISK_RULE_SET", default_value = crate::risk::model::DEFAULT_RULE_SET)]
    pub risk_rule_set: String,
    /// Pre-pregnancy screening rules (same shape as rules/couple/prepregnancy-2010.toml, whose
    /// [L] thresholds are a regional default); empty: the built-in default.
    #[arg(long, env = "MCH_PREPREGNANCY_RULES")]
    pub prepregnancy_rules: Option<String>,
    /// Referral clocks file (same shape as rules/referral/clocks.toml); empty: the built-in default.
    #[arg(long, env = "MCH_REFERRAL_CLOCKS")]
    pub referral_clocks: Option<String>,
    /// Days an accepted referral lets the receiving centre at the patient's record.
    #[arg(long, env = "MCH_REFERRAL_GRANT_DAYS", default_value_t = crate::referral::service::DEFAULT_GRANT_DAYS)]
    pub referral_grant_days: i64,
    /// HL7: refuse new messages (AR/CR "system busy") while this many writes are waiting to be
    /// stored (RELIABILITY.md 4), instead of queueing unbounded work.
    #[arg(long, env = "MCH_MLLP_MAX_BACKLOG", default_value_t = 1000)]
    pub mllp_max_backlog: u64,
    /// HL7: close an MLLP connection idle for this many seconds.
    #[arg(long, env = "MCH_MLLP_IDLE_SECS", default_value_t = 120)]
    pub mllp_idle_secs: u64,
    /// HL7 outbound: how often the delivery worker looks for due messages, in milliseconds (0: off).
    #[arg(long, env = "MCH_HL7_OUTBOX_TICK_MS", default_value_t = 1000)]
    pub hl7_outbox_tick_ms: u64,
    /// HL7 outbound: how long to wait for a destination's ACK, in milliseconds.
    #[arg(long, env = "MCH_HL7_OUTBOX_ACK_TIMEOUT_MS", default_value_t = 10_000)]
    pub hl7_outbox_ack_timeout_ms: u64,
    /// HL7 outbound: failed attempts after which a message is dead-lettered (replay from /hl7/outbox).
    #[arg(long, env = "MCH_HL7_OUTBOX_MAX_ATTEMPTS", default_value_t = 8)]
    pub hl7_outbox_max_attempts: i32,
    /// Login throttling: the base delay, in seconds, of the waits that grow after failed logins
    /// (doubling per failure; see README "Security").
    #[arg(long, env = "MCH_LOGIN_BASE_DELAY_SECS", default_value_t = crate::auth::model::DEFAULT_LOGIN_BASE_DELAY_SECS)]
    pub login_base_delay_secs: i64,
    /// Addresses of reverse proxies (comma-separated IPs) whose `X-Forwarded-For` names the client:
    /// without it, behind a proxy every client would look like the proxy (one shared login throttle,
    /// one address in the audit log). Empty: the TCP peer is the client.
    #[arg(long, env = "MCH_TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: String,
    /// Log format: text or json.
    #[arg(long, env = "MCH_LOG_FORMAT", default_value = "text")]
    pub log_format: String,
}

impl Settings {
    /// The HL7 outbound delivery policy these settings give.
    pub fn hl7_outbox_policy(&self) -> crate::hl7::outbox::Policy {
        crate::hl7::outbox::Policy {
            ack_timeout: std::time::Duration::from_millis(self.hl7_outbox_ack_timeout_ms.max(1)),
            max_attempts: self.hl7_outbox_max_attempts.max(1),
            ..crate::hl7::outbox::Policy::default()
        }
    }

    /// The login throttle these settings give.
    pub fn login_policy(&self) -> Result<crate::auth::model::LoginPolicy, String> {
        crate::auth::model::LoginPolicy::with_base_delay_secs(self.login_base_delay_secs)
    }

    /// The reverse proxies whose `X-Forwarded-For` is believed.
    pub fn trusted_proxies(&self) -> Result<Vec<std::net::IpAddr>, String> {
        self.trusted_proxies
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| {
                p.parse()
                    .map_err(|_| format!("MCH_TRUSTED_PROXIES: {p:?} is not an IP address"))
            })
            .collect()
    }

    /// Settings for tests and benchmarks: a database URL and a random port.
    pub fn for_url(database_url: &str) -> Settings {
        Settings {
            database_url: database_url.to_string(),
            http_addr: "127.0.0.1:0".into(),
            mllp_addr: "127.0.0.1:0".into(),
            pool_size: 4,
            workers: Some(2),
            risk_rule_set: crate::risk::model::DEFAULT_RULE_SET.into(),
            log_format: "text".into(),
            referral_clocks: None,
            prepregnancy_rules: None,
            referral_grant_days: crate::referral::service::DEFAULT_GRANT_DAYS,
            mllp_max_backlog: 1000,
            mllp_idle_secs: 120,
            hl7_outbox_tick_ms: 1000,
            hl7_outbox_ack_timeout_ms: 10_000,
            hl7_outbox_max_attempts: 8,
            login_base_delay_secs: crate::auth::model::DEFAULT_LOGIN_BASE_DELAY_SECS,
            trusted_proxies: String::new(),
        }
    }
}
