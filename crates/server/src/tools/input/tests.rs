use serde_json::json;

use super::*;
use crate::error::ErrorCode;

fn obj(v: Value) -> JsonObject {
    match v {
        Value::Object(m) => m,
        _ => JsonObject::new(),
    }
}

const ADDR: &str = "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin";

fn field_of(result: Result<InitializePayment, ToolError>) -> String {
    match result {
        Ok(_) => "ok".into(),
        Err(e) => {
            assert_eq!(e.code, ErrorCode::InvalidInput);
            e.details["field"].as_str().unwrap_or_default().to_owned()
        }
    }
}

#[test]
fn each_malformed_field_is_named() {
    let cases = [
        (json!({"amount": "1e3 USDC", "recipient": ADDR}), "amount"),
        (json!({"amount": "-1 SOL", "recipient": ADDR}), "amount"),
        (
            json!({"amount": "0.0000001 USDC", "recipient": ADDR}),
            "amount",
        ),
        (json!({"amount": "1 DOGE", "recipient": ADDR}), "amount"),
        (json!({"amount": 5, "recipient": ADDR}), "amount"),
        (json!({"recipient": ADDR}), "amount"),
        (
            json!({"amount": "1 SOL", "recipient": "not-an-address"}),
            "recipient",
        ),
        (
            json!({"amount": "1 SOL", "recipient": ADDR, "purpose": "x".repeat(501)}),
            "purpose",
        ),
        (
            json!({"amount": "1 SOL", "recipient": ADDR, "settlement_constraint": "later"}),
            "settlement_constraint",
        ),
        (
            json!({"amount": "1 SOL", "recipient": ADDR, "settlement_constraint": "scheduled"}),
            "execute_after",
        ),
        (
            json!({"amount": "1 SOL", "recipient": ADDR, "idempotency_key": "k".repeat(257)}),
            "idempotency_key",
        ),
        (
            json!({"amount": "1 SOL", "recipient": ADDR, "metadata": "x"}),
            "metadata",
        ),
        (
            json!({"amount": "1 SOL", "recipient": ADDR, "metadata": {"a": "x".repeat(5000)}}),
            "metadata",
        ),
        (
            json!({"amount": "1 SOL", "recipient": ADDR, "extra": 1}),
            "extra",
        ),
    ];
    for (args, field) in cases {
        assert_eq!(
            field_of(initialize_payment(Some(&obj(args.clone())))),
            field,
            "{args}"
        );
    }
}

#[test]
fn a_full_request_parses() {
    let args = obj(json!({
        "amount": "2.5 USDC",
        "recipient": ADDR,
        "purpose": "api credits",
        "settlement_constraint": "scheduled",
        "execute_after": "2030-01-01T00:00:00Z",
        "idempotency_key": "order-1",
        "metadata": {"order": 1}
    }));
    let parsed = initialize_payment(Some(&args));
    let Ok(parsed) = parsed else {
        panic!("{parsed:?}")
    };
    assert_eq!(parsed.amount.base_units(), 2_500_000);
    assert_eq!(
        parsed.constraint,
        SettlementConstraint::Scheduled {
            execute_after_ms: 1_893_456_000_000
        }
    );
}

#[test]
fn estimate_takes_one_form_or_the_other() {
    let both = obj(json!({"session_id": "ps_1", "amount": "1 SOL"}));
    assert!(estimate_fees(Some(&both)).is_err());
    let session = obj(json!({"session_id": "ps_1"}));
    assert!(matches!(
        estimate_fees(Some(&session)),
        Ok(EstimateRequest::Session(_))
    ));
    assert!(estimate_fees(None).is_err());
}

fn any_json() -> impl proptest::strategy::Strategy<Value = Value> {
    use proptest::prelude::*;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        "\\PC{0,40}".prop_map(Value::String),
        "(1e3|-1|0\\.0000001|2\\.5|[0-9]{1,25}(\\.[0-9]{1,12})?) (SOL|USDC|BONK|DOGE)"
            .prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(
                concat!(
                    "(amount|recipient|purpose|settlement_constraint|execute_after|",
                    "idempotency_key|metadata|session_id|asset|commitment|x)"
                ),
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest::proptest! {
    #[test]
    fn no_tool_argument_object_panics_the_parsers(value in any_json()) {
        let map = obj(value);
        let _ = initialize_payment(Some(&map));
        let _ = estimate_fees(Some(&map));
        let _ = query_balance(Some(&map));
        let _ = session_only(Some(&map));
        let _ = session_with_commitment(Some(&map));
    }
}
