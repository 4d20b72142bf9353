use super::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: PathBuf::from("test.toml"),
        message: e.to_string(),
    })?;
    Config::from_raw(raw, Path::new("/data"))
}

fn key_of(result: Result<Config, ConfigError>) -> String {
    match result {
        Err(ConfigError::Invalid { key, .. }) => key,
        Err(ConfigError::Parse { message, .. }) => format!("parse: {message}"),
        other => format!("{other:?}"),
    }
}

#[test]
fn defaults_resolve_against_the_base_dir() {
    let config = parse("").map_err(|e| e.to_string());
    let Ok(config) = config else {
        panic!("{config:?}")
    };
    assert_eq!(config.sqlite_path, Path::new("/data/clawfirst.sqlite"));
    assert_eq!(config.listen.to_string(), "127.0.0.1:8402");
}

#[test]
fn bad_values_name_their_key() {
    assert_eq!(key_of(parse("network = \"mainnet-beta\"")), "network");
    assert_eq!(
        key_of(parse(
            "[approvals]\nwebhook_url = \"ftp://example.com/hook\""
        )),
        "approvals.webhook_url"
    );
    assert_eq!(
        key_of(parse("[approvals]\nwebhook_url = \"not a url\"")),
        "approvals.webhook_url"
    );
    assert!(key_of(parse("[limits.defaults.daily]\nUSDC = \"1 USDC\"")).contains("limits"));
    assert_eq!(
        key_of(parse("[payees]\n\"a@b.com\" = \"nope\"")),
        "payees.\"a@b.com\""
    );
    assert_eq!(
        key_of(parse("[server]\nlisten = \"nowhere\"")),
        "server.listen"
    );
    assert!(key_of(parse("[server]\nbogus = 1")).contains("bogus"));
}

#[test]
fn the_policy_and_webhook_files_resolve_against_the_base_dir() {
    let config = parse(
        "[policy]\nfile = \"rules/policy.toml\"\n\
         [approvals]\nwebhook_url = \"https://hooks.example.com/cf\"\n\
         webhook_secret_file = \"hook.secret\"",
    );
    let Ok(config) = config else {
        panic!("{config:?}")
    };
    assert_eq!(config.policy_file, Path::new("/data/rules/policy.toml"));
    assert_eq!(
        config.webhook_secret_file.as_deref(),
        Some(Path::new("/data/hook.secret"))
    );
    assert_eq!(
        config.webhook_url.as_ref().map(reqwest::Url::as_str),
        Some("https://hooks.example.com/cf")
    );
}

#[test]
fn rate_limits_have_defaults_and_per_agent_overrides() {
    let config = parse(
        "[rate_limits]\npayments_per_minute = 20\n\
         [rate_limits.agents.\"bot-7\"]\nopen_sessions = 3",
    );
    let Ok(config) = config else {
        panic!("{config:?}")
    };
    let bot = AgentId::new("bot-7").unwrap_or_else(|_| unreachable!());
    let other = AgentId::new("other").unwrap_or_else(|_| unreachable!());
    let limits = config.rate_limits.for_agent(&bot);
    assert_eq!(
        (
            limits.tool_calls_per_minute,
            limits.payments_per_minute,
            limits.open_sessions
        ),
        (6000, 20, 3)
    );
    assert_eq!(config.rate_limits.for_agent(&other).open_sessions, 1000);
    assert_eq!(
        key_of(parse(
            "[rate_limits.agents.\"bot-7\"]\npayments_per_minute = 0"
        )),
        "rate_limits.agents.bot-7.payments_per_minute"
    );
    assert_eq!(
        key_of(parse(
            "[rate_limits.agents.\"not valid\"]\nopen_sessions = 1"
        )),
        "rate_limits.agents.not valid"
    );
}
