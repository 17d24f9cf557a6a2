//! Validation of POST /call bodies, mimicking Vapi's NestJS whitelist + class-validator.
//!
//! Two error shapes on purpose, as Vapi has both: whitelist/field errors come back as an
//! ARRAY of strings, business-rule errors (missing ids, bad E.164) as a single STRING.

use serde_json::{Map, Value};

/// Top-level keys of Vapi's `CreateCallDTO`; anything else is rejected.
const CALL_KEYS: &[&str] = &[
    "assistant",
    "assistantId",
    "assistantOverrides",
    "assistantVersion",
    "customer",
    "customerId",
    "customers",
    "name",
    "phoneNumber",
    "phoneNumberId",
    "schedulePlan",
    "squad",
    "squadId",
    "squadOverrides",
    "transport",
    "workflow",
    "workflowId",
    "workflowOverrides",
];

/// Keys of Vapi's `CreateCustomerDTO`.
const CUSTOMER_KEYS: &[&str] = &[
    "assistantOverrides",
    "email",
    "extension",
    "externalId",
    "name",
    "number",
    "numberE164CheckEnabled",
    "sipUri",
    "squadOverrides",
];

/// Why a request was refused with 400.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Invalid {
    /// Field-level errors: `"message": [..]`.
    Fields(Vec<String>),
    /// One business-rule error: `"message": ".."`.
    Message(String),
}

/// A POST /call body that passed validation.
#[derive(Clone, Debug)]
pub struct CallRequest {
    pub assistant_id: String,
    pub phone_number_id: String,
    pub name: Option<String>,
    /// The accepted body, echoed back on the Call object.
    pub body: Map<String, Value>,
}

/// Parse and validate a raw POST /call body.
pub fn parse_create(raw: &[u8]) -> Result<CallRequest, Invalid> {
    let value: Value = serde_json::from_slice(raw)
        .map_err(|e| Invalid::Message(format!("Unexpected token in JSON at {e}")))?;
    let Value::Object(body) = value else {
        return Err(Invalid::Message(
            "Request body must be a JSON object".into(),
        ));
    };

    let mut errors = Vec::new();
    unknown_keys(&body, CALL_KEYS, "", &mut errors);
    check_string(&body, "assistantId", None, "", &mut errors);
    check_string(&body, "phoneNumberId", None, "", &mut errors);
    check_string(&body, "name", Some(40), "", &mut errors);
    check_object(&body, "assistantOverrides", "", &mut errors);
    check_object(&body, "schedulePlan", "", &mut errors);
    match present(&body, "customer") {
        None => {}
        Some(Value::Object(customer)) => check_customer(customer, &mut errors),
        Some(_) => errors.push("nested property customer must be either object or array".into()),
    }
    if !errors.is_empty() {
        return Err(Invalid::Fields(errors));
    }

    // Business rules. The simulator only places single calls by id, which is all
    // switchboard uses; inline assistants/numbers and batches are refused loudly.
    if present(&body, "customers").is_some() {
        return Err(Invalid::Message(
            "Batch calls (`customers`) are not supported by the simulator".into(),
        ));
    }
    let assistant_id = non_empty(&body, "assistantId").ok_or_else(|| {
        Invalid::Message("Couldn't Get Assistant. Need `assistantId` (the simulator does not support inline assistants, squads or workflows).".into())
    })?;
    let phone_number_id = non_empty(&body, "phoneNumberId").ok_or_else(|| {
        Invalid::Message(
            "Need Either `phoneNumberId` Or `phoneNumber` (the simulator needs `phoneNumberId`)."
                .into(),
        )
    })?;
    let Some(Value::Object(customer)) = present(&body, "customer") else {
        return Err(Invalid::Message(
            "Need Either `customer` Or `customerId` (the simulator needs `customer`).".into(),
        ));
    };
    let number = non_empty(customer, "number")
        .ok_or_else(|| Invalid::Message("Customer number is required".into()))?;
    let e164_check = !matches!(
        customer.get("numberE164CheckEnabled"),
        Some(Value::Bool(false))
    );
    if e164_check && !is_e164(&number) {
        return Err(Invalid::Message(
            "Customer number is not a valid E.164 number".into(),
        ));
    }
    let name = non_empty(&body, "name");
    Ok(CallRequest {
        assistant_id,
        phone_number_id,
        name,
        body,
    })
}

/// `+`, then 7..=15 digits, the first not 0.
pub fn is_e164(number: &str) -> bool {
    let Some(digits) = number.strip_prefix('+') else {
        return false;
    };
    (7..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

fn check_customer(customer: &Map<String, Value>, errors: &mut Vec<String>) {
    unknown_keys(customer, CUSTOMER_KEYS, "customer.", errors);
    check_string(customer, "number", Some(40), "customer.", errors);
    if let Some(Value::String(n)) = present(customer, "number")
        && n.chars().count() < 3
    {
        errors.push("customer.number must be longer than or equal to 3 characters".into());
    }
    check_string(customer, "name", Some(40), "customer.", errors);
    check_string(customer, "externalId", Some(40), "customer.", errors);
    check_string(customer, "extension", Some(10), "customer.", errors);
    if let Some(v) = present(customer, "numberE164CheckEnabled")
        && !v.is_boolean()
    {
        errors.push("customer.numberE164CheckEnabled must be a boolean value".into());
    }
    check_object(customer, "assistantOverrides", "customer.", errors);
}

/// A key whose value is not null (class-validator's `@IsOptional` treats null as absent).
fn present<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    map.get(key).filter(|v| !v.is_null())
}

fn non_empty(map: &Map<String, Value>, key: &str) -> Option<String> {
    present(map, key)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .map(str::to_owned)
}

fn unknown_keys(
    map: &Map<String, Value>,
    allowed: &[&str],
    prefix: &str,
    errors: &mut Vec<String>,
) {
    for key in map.keys().filter(|k| !allowed.contains(&k.as_str())) {
        errors.push(format!("{prefix}property {key} should not exist"));
    }
}

fn check_string(
    map: &Map<String, Value>,
    key: &str,
    max_chars: Option<usize>,
    prefix: &str,
    errors: &mut Vec<String>,
) {
    match present(map, key) {
        None => {}
        Some(Value::String(s)) => {
            if let Some(max) = max_chars
                && s.chars().count() > max
            {
                errors.push(format!(
                    "{prefix}{key} must be shorter than or equal to {max} characters"
                ));
            }
        }
        Some(_) => errors.push(format!("{prefix}{key} must be a string")),
    }
}

fn check_object(map: &Map<String, Value>, key: &str, prefix: &str, errors: &mut Vec<String>) {
    if let Some(v) = present(map, key)
        && !v.is_object()
    {
        errors.push(format!(
            "nested property {prefix}{key} must be either object or array"
        ));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(v: Value) -> Result<CallRequest, Invalid> {
        parse_create(v.to_string().as_bytes())
    }

    fn valid() -> Value {
        json!({
            "assistantId": "a1",
            "phoneNumberId": "p1",
            "name": "ref-1",
            "customer": {"number": "+14155550123", "name": "Ann"},
            "assistantOverrides": {"metadata": {"k": "v"}, "variableValues": {"x": 1}}
        })
    }

    #[test]
    fn accepts_a_normal_request() {
        let req = parse(valid()).unwrap();
        assert_eq!(req.assistant_id, "a1");
        assert_eq!(req.phone_number_id, "p1");
        assert_eq!(req.name.as_deref(), Some("ref-1"));
    }

    #[test]
    fn whitelist_errors_are_an_array() {
        let mut body = valid();
        body["metadata"] = json!({});
        body["customer"]["phone"] = json!("x");
        assert_eq!(
            parse(body).unwrap_err(),
            Invalid::Fields(vec![
                "property metadata should not exist".into(),
                "customer.property phone should not exist".into(),
            ])
        );
    }

    #[test]
    fn long_name_is_a_field_error() {
        let mut body = valid();
        body["name"] = json!("x".repeat(41));
        assert!(matches!(parse(body), Err(Invalid::Fields(_))));
    }

    #[test]
    fn business_errors_are_a_string() {
        for (path, value) in [
            ("/assistantId", Value::Null),
            ("/phoneNumberId", json!("")),
            ("/customer/number", Value::Null),
            ("/customer/number", json!("14155550123")),
        ] {
            let mut body = valid();
            *body.pointer_mut(path).unwrap() = value;
            assert!(matches!(parse(body), Err(Invalid::Message(_))), "{path}");
        }
        assert!(matches!(
            parse_create(b"not json"),
            Err(Invalid::Message(_))
        ));
        assert!(matches!(parse(json!([1])), Err(Invalid::Message(_))));
    }

    #[test]
    fn e164_check_can_be_disabled() {
        let mut body = valid();
        body["customer"]["number"] = json!("0415555");
        body["customer"]["numberE164CheckEnabled"] = json!(false);
        assert!(parse(body).is_ok());
    }

    #[test]
    fn e164_rules() {
        assert!(is_e164("+14155550123"));
        assert!(is_e164("+4930123"));
        assert!(!is_e164("+0415555012"));
        assert!(!is_e164("+123456"));
        assert!(!is_e164("+1234567890123456"));
        assert!(!is_e164("+1415 555 0123"));
        assert!(!is_e164("14155550123"));
    }
}
