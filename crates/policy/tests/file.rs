//! Loading: errors that name the field, syntax positions, the version hash, and warnings.

mod common;

use common::*;

const BASE: &str = "[groups]\nfinance = [\"alice\", \"bob\"]\n\n[defaults]\n\
                    per_transaction = { USDC = \"100\" }\napproval = { group = \"finance\" }\n";

#[test]
fn validation_errors_name_the_field() {
    let cases: &[(&str, &str)] = &[
        (
            "[defaults]\nper_transaction = { USDC = \"0\" }\n",
            "test.toml: defaults.per_transaction.USDC: amount must be greater than zero",
        ),
        (
            "[defaults]\nper_transaction = { DOGE = \"1\" }\n",
            "test.toml: defaults.per_transaction.DOGE: unknown asset \"DOGE\": \
             expected SOL, USDC or BONK",
        ),
        (
            "[defaults]\nper_transaction = { USDC = \"100\" }\ndaily = { USDC = \"50\" }\n",
            "test.toml: defaults.per_transaction.USDC: the per-transaction cap of 100 USDC \
             is above the daily cap of 50 USDC",
        ),
        (
            "[defaults]\nper_transaction = { USDC = \"1e3\" }\n",
            "test.toml: defaults.per_transaction.USDC: amount must not use an exponent",
        ),
        (
            "[prices]\nUSDC = \"1.01\"\n",
            "test.toml: prices.USDC: USDC is always worth 1 USD; remove this price (got 1.01)",
        ),
        (
            "[prices]\nSOL = \"-1\"\n",
            "test.toml: prices.SOL: a sign is not allowed",
        ),
        (
            "[groups]\nfinance = []\n",
            "test.toml: groups.finance: a group needs at least one approver",
        ),
        (
            "[defaults]\nper_transaction = { USDC = \"1\" }\n\
             recipients.block = [\"not-an-address\"]\n",
            "test.toml: defaults.recipients.block[0]: recipient is not a valid Solana address: \
             address must be 32 to 44 base58 characters, got 14",
        ),
        (
            "[defaults]\nper_transaction = { USDC = \"1\" }\n\
             time_windows = [{ days = [\"mon\"], from = \"09:00\", to = \"09:00\" }]\n",
            "test.toml: defaults.time_windows[0].to: from and to are equal: \
             the window would be empty (use 00:00 to 24:00 for a whole day)",
        ),
        (
            "[defaults]\nper_transaction = { USDC = \"1\" }\n\
             active_from = \"2027-01-01\"\nactive_until = \"2026-01-01\"\n",
            "test.toml: defaults.active_from: active_from is after active_until",
        ),
        (
            "[defaults]\nper_transaction = { USDC = \"1\" }\nassets = [\"USDC\", \"SOL\"]\n",
            "test.toml: defaults.assets[1]: SOL is allowed but has no per_transaction cap; add one",
        ),
        (
            "[defaults]\nper_transaction = { USDC = \"1\" }\nrecipients.first_time = \"approve\"\n",
            "test.toml: defaults.recipients.first_time: \
             \"approve\" needs an approval table naming the approver group",
        ),
        (
            "[defaults]\nper_transaction = { SOL = \"1\" }\nusd = { daily = \"10\" }\n",
            "test.toml: prices.SOL: defaults has USD rules and allows SOL, so SOL needs a price",
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(&load_error(text), expected, "for:\n{text}");
    }
}

#[test]
fn tier_and_agent_errors_name_the_agent_and_index() {
    let tiers = "[[agents.bot-1.tiers]]\nname = \"a\"\n\
                 up_to = { USDC = \"1\" }\naction = \"allow\"\n\
                 [[agents.bot-1.tiers]]\nname = \"b\"\naction = \"allow\"\n";
    let cases: &[(String, &str)] = &[
        (
            format!(
                "{tiers}[[agents.bot-1.tiers]]\nname = \"c\"\naction = \"approve\"\napprovals = 3\n"
            ),
            "test.toml: agents.bot-1.tiers[2].approvals: \
             must be between 1 and the 2 member(s) of group finance",
        ),
        (
            format!(
                "{tiers}[[agents.bot-1.tiers]]\nname = \"c\"\naction = \"approve\"\napprovals = 0\n"
            ),
            "test.toml: agents.bot-1.tiers[2].approvals: \
             must be between 1 and the 2 member(s) of group finance",
        ),
        (
            format!(
                "{tiers}[[agents.bot-1.tiers]]\nname = \"c\"\n\
                 action = \"approve\"\ngroup = \"legal\"\n"
            ),
            "test.toml: agents.bot-1.tiers[2].group: \
             unknown group \"legal\"; define it under [groups]",
        ),
        (
            format!("{tiers}[[agents.bot-1.tiers]]\nname = \"a\"\naction = \"deny\"\n"),
            "test.toml: agents.bot-1.tiers[2].name: duplicate tier name \"a\"",
        ),
        (
            "[agents.\"bad id!\"]\n".to_owned(),
            "test.toml: agents.bad id!: \
             agent id may contain only letters, digits, '.', '_' and '-'",
        ),
        (
            "[agents.bot-1]\npayments = { per_hour = 0 }\n".to_owned(),
            "test.toml: agents.bot-1.payments.per_hour: a count cap of zero would deny \
             every payment; remove the asset or agent instead",
        ),
    ];
    for (extra, expected) in cases {
        let text = format!("{BASE}{extra}");
        assert_eq!(&load_error(&text), expected, "for:\n{text}");
    }
}

#[test]
fn syntax_and_shape_errors_carry_line_and_column() {
    let message =
        load_error("[defaults]\nper_transaction = { USDC = \"1\" }\ndialy = { USDC = \"5\" }\n");
    assert!(
        message.starts_with("test.toml:3:1: unknown field `dialy`"),
        "{message}"
    );
    let message = load_error("networks = [\"devnet\"\n");
    assert_eq!(message, "test.toml:2:1: invalid array: expected `]`");
    let message = load_error("[defaults]\nrecipients.first_time = \"maybe\"\n");
    assert!(
        message.starts_with("test.toml:2:25: unknown variant `maybe`"),
        "{message}"
    );
}

#[test]
fn version_ignores_formatting_and_changes_with_content() {
    let a = policy(BASE).version();
    let reordered = "[defaults]\napproval = { approvals = 1, group = \"finance\" }\n\n\n\
                     per_transaction.USDC = \"100.000\"   # comment\n\
                     [groups]\nfinance = [\"alice\",\"bob\"]\n";
    assert_eq!(policy(reordered).version(), a);
    assert_eq!(a.to_string().len(), 16);
    assert!(a.to_hex().starts_with(&a.to_string()) && a.to_hex().len() == 64);

    let changes = [
        BASE.replace("\"100\"", "\"100.000001\""),
        BASE.replace("\"bob\"", "\"bobby\""),
        BASE.replace(
            "group = \"finance\"",
            "group = \"finance\", timeout = \"2h\"",
        ),
        format!("networks = [\"devnet\"]\n{BASE}"),
        format!("{BASE}[agents.x]\nassets = []\n"),
    ];
    for text in changes {
        assert_ne!(policy(&text).version(), a, "for:\n{text}");
    }
}

#[test]
fn warnings_name_shadowed_and_unreachable_rules() {
    let text = format!(
        "[groups]\nfinance = [\"alice\"]\nidle = [\"bob\"]\n\n[defaults]\n\
         per_transaction = {{ USDC = \"100\", SOL = \"1\" }}\nassets = [\"USDC\"]\n\
         purpose_required_above = {{ USDC = \"100\" }}\n\
         recipients.allow = [\"{a}\"]\nrecipients.block = [\"{a}\"]\n\
         approval = {{ group = \"finance\" }}\n\
         [[defaults.tiers]]\nname = \"small\"\nup_to = {{ USDC = \"10\" }}\naction = \"allow\"\n\
         [[defaults.tiers]]\nname = \"smaller\"\nup_to = {{ USDC = \"5\" }}\naction = \"deny\"\n\
         [[defaults.tiers]]\nname = \"huge\"\nup_to = {{ USDC = \"1000\" }}\naction = \"approve\"\n\
         [[defaults.tiers]]\nname = \"rest\"\naction = \"deny\"\n\
         [[defaults.tiers]]\nname = \"after\"\naction = \"allow\"\n\
         [agents.same]\nassets = [\"USDC\"]\n",
        a = address(4)
    );
    let warnings: Vec<String> = load(&text)
        .warnings
        .iter()
        .map(ToString::to_string)
        .collect();
    let expected = [
        "defaults.tiers[1]: never applies: tier small covers every amount it covers".to_owned(),
        "defaults.tiers[2].up_to: the bound is above the per-transaction cap of every asset \
         it names; the part above the cap can never be reached"
            .to_owned(),
        "defaults.tiers[4]: never applies: it comes after the catch-all tier rest".to_owned(),
        "defaults.purpose_required_above.USDC: never fires: \
         at or above the per-transaction cap of 100 USDC"
            .to_owned(),
        format!(
            "defaults.recipients.allow: {} is also blocked, and the blocklist wins",
            address(4)
        ),
        "defaults.per_transaction.SOL: never applies: SOL is not in the asset allowlist".to_owned(),
        "agents.same: this override changes nothing: the agent's rules equal the defaults"
            .to_owned(),
        "groups.idle: no approval table or tier refers to this group".to_owned(),
    ];
    assert_eq!(warnings, expected);
}

#[test]
fn load_reads_a_file_and_reports_a_missing_one() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("clawfirst-policy-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("policy.toml");
    std::fs::write(&path, BASE)?;
    let loaded = clawfirst_policy::Policy::load(&path)?;
    assert_eq!(loaded.policy.version(), policy(BASE).version());
    std::fs::remove_file(&path)?;
    let missing = clawfirst_policy::Policy::load(&path)
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        missing,
        Some(format!("cannot read policy file {}", path.display()))
    );
    Ok(())
}
