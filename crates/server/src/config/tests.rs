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
        key_of(parse("[limits.defaults.per_transaction]\nUSDC = \"1 SOL\"")),
        "limits.defaults.per_transaction.USDC"
    );
    assert_eq!(
        key_of(parse("[limits.defaults.daily]\nUSDC = \"1e3 USDC\"")),
        "limits.defaults.daily.USDC"
    );
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
fn limits_become_a_policy() {
    let config = parse(
        "[limits.defaults.per_transaction]\nUSDC = \"100 USDC\"\n\
         [limits.defaults.daily]\nUSDC = \"500 USDC\"",
    );
    let Ok(config) = config else {
        panic!("{config:?}")
    };
    let agent = AgentId::new("x").unwrap_or_else(|_| unreachable!());
    assert_eq!(
        config
            .policy
            .limits_for(&agent)
            .per_transaction
            .get(&Asset::Usdc),
        Some(&100_000_000)
    );
}
