//! Request and response shapes of the parts of Vapi's API switchboard uses. Field names
//! follow Vapi's OpenAPI spec (CreateCallDTO, CreateCustomerDTO, Call). Responses are read
//! leniently: unknown fields are ignored and unknown statuses kept as text, because Vapi adds
//! values (there are over 600 endedReasons) faster than any client can follow.

use serde::{Deserialize, Serialize};

/// Body of `POST /call` for one outbound phone call. There is deliberately no top-level
/// `metadata`: Vapi rejects unknown properties with 400; metadata lives in
/// `assistantOverrides.metadata`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateCallRequest {
    pub assistant_id: String,
    /// An arm's assistant version (`asst-a@VERSION`); none: the latest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assistant_version: Option<String>,
    pub phone_number_id: String,
    pub customer: Customer,
    /// The local call reference (≤ 40 chars), found again by `GET /call` after a timeout.
    pub name: String,
    pub assistant_overrides: AssistantOverrides,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Customer {
    pub number: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extension: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AssistantOverrides {
    pub metadata: CallMetadata,
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub variable_values: serde_json::Map<String, serde_json::Value>,
    /// The server messages this call sends to the assistant's server URL (none: the
    /// assistant's own set).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub server_messages: Vec<String>,
    /// What the assistant says to a voicemail box (≤ 1000 chars); unset, Vapi hangs up on
    /// one (when the assistant detects voicemail).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub voicemail_message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallMetadata {
    pub campaign_id: i64,
    pub contact_id: i64,
    pub call_id: i64,
}

/// A Call object as Vapi returns it (the fields switchboard reads). Only `id` is required;
/// a field of an unexpected type reads as absent rather than failing the whole call, because
/// a created call must never be mistaken for a failed request.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct VapiCall {
    pub id: String,
    #[serde(default, deserialize_with = "lenient::string")]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub ended_reason: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub created_at: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub started_at: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub ended_at: Option<String>,
    #[serde(default, deserialize_with = "lenient::number")]
    pub cost: Option<f64>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub assistant_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub phone_number_id: Option<String>,
    /// The call's listen and control URLs: capabilities, kept as secrets and never written
    /// back out (not serialized, redacted in Debug).
    #[serde(default, deserialize_with = "lenient::monitor", skip_serializing)]
    pub monitor: Option<crate::live::Monitor>,
    /// Vapi's analysis of the call (summary, success evaluation, structured data), once it
    /// is done: any JSON, read by the store (never written back out).
    #[serde(default, skip_serializing)]
    pub analysis: Option<serde_json::Value>,
    /// What was said so far (`messages`), when the call object carries it.
    #[serde(default, deserialize_with = "lenient::transcript", skip_serializing)]
    pub messages: Option<Vec<switchboard_model::live::TranscriptLine>>,
}

/// Deserializers that read a value of the wrong type as `None`.
mod lenient {
    use serde::{Deserialize, Deserializer};

    pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Ok(match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) => Some(s),
            _ => None,
        })
    }

    pub fn number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        Ok(serde_json::Value::deserialize(d)?
            .as_f64()
            .filter(|f| f.is_finite()))
    }

    pub fn monitor<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<crate::live::Monitor>, D::Error> {
        Ok(crate::live::Monitor::from_value(
            &serde_json::Value::deserialize(d)?,
        ))
    }

    pub fn transcript<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Vec<switchboard_model::live::TranscriptLine>>, D::Error> {
        Ok(crate::live::transcript_of(&serde_json::Value::deserialize(
            d,
        )?))
    }

    pub fn limits<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<super::SubscriptionLimits>, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        Ok(Some(super::SubscriptionLimits {
            concurrency_blocked: value
                .get("concurrencyBlocked")
                .and_then(|v| v.as_bool())
                .unwrap_or(false),
            concurrency_limit: value.get("concurrencyLimit").and_then(|v| v.as_f64()),
            remaining_concurrent_calls: value
                .get("remainingConcurrentCalls")
                .and_then(|v| v.as_f64()),
        })
        .filter(|_| value.is_object()))
    }
}

/// The create response: a Call plus the live view of the account's concurrency quota.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateCallResponse {
    #[serde(flatten)]
    pub call: VapiCall,
    #[serde(default, deserialize_with = "lenient::limits")]
    pub subscription_limits: Option<SubscriptionLimits>,
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionLimits {
    #[serde(default)]
    pub concurrency_blocked: bool,
    #[serde(default)]
    pub concurrency_limit: Option<f64>,
    #[serde(default)]
    pub remaining_concurrent_calls: Option<f64>,
}

/// Filters of `GET /call` that the look-up uses.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ListCallsFilter {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assistant_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_number_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at_ge: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at_le: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at_lt: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at_ge: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at_le: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// Vapi's error body: `message` is a string or an array of strings.
#[derive(Debug, Clone, Deserialize)]
pub struct ErrorBody {
    #[serde(default)]
    pub message: Option<serde_json::Value>,
    #[serde(default)]
    pub error: Option<String>,
}

impl ErrorBody {
    /// One readable line from whatever shape `message` has.
    pub fn text(&self) -> Option<String> {
        let text = match &self.message {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join("; "),
            Some(other) => other.to_string(),
            None => self.error.clone()?,
        };
        Some(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_request_uses_vapis_field_names_and_no_top_level_metadata() {
        let req = CreateCallRequest {
            assistant_id: "asst".into(),
            assistant_version: None,
            phone_number_id: "pn".into(),
            customer: Customer {
                number: "+14155550100".into(),
                name: Some("Ada".into()),
                extension: None,
            },
            name: "sb-x-1-1".into(),
            assistant_overrides: AssistantOverrides {
                metadata: CallMetadata {
                    campaign_id: 1,
                    contact_id: 2,
                    call_id: 3,
                },
                variable_values: serde_json::Map::new(),
                server_messages: Vec::new(),
                voicemail_message: None,
            },
        };
        let json = serde_json::to_value(&req).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "assistantId": "asst",
                "phoneNumberId": "pn",
                "customer": {"number": "+14155550100", "name": "Ada"},
                "name": "sb-x-1-1",
                "assistantOverrides": {"metadata": {"campaignId": 1, "contactId": 2, "callId": 3}}
            })
        );
    }

    #[test]
    fn error_messages_read_as_string_or_array() {
        let a: ErrorBody =
            serde_json::from_str(r#"{"message":["property metadata should not exist","x"],"error":"Bad Request","statusCode":400}"#)
                .unwrap();
        assert_eq!(a.text().unwrap(), "property metadata should not exist; x");
        let b: ErrorBody = serde_json::from_str(r#"{"message":"Invalid Key"}"#).unwrap();
        assert_eq!(b.text().unwrap(), "Invalid Key");
        let c: ErrorBody = serde_json::from_str(r#"{"error":"Unauthorized"}"#).unwrap();
        assert_eq!(c.text().unwrap(), "Unauthorized");
    }

    #[test]
    fn create_response_keeps_unknown_statuses_and_reads_limits() {
        let r: CreateCallResponse = serde_json::from_str(
            r#"{"id":"c1","orgId":"o","status":"warping","somethingNew":{"a":1},
                "subscriptionLimits":{"concurrencyBlocked":true,"concurrencyLimit":10,"remainingConcurrentCalls":0}}"#,
        )
        .unwrap();
        assert_eq!(r.call.status.as_deref(), Some("warping"));
        let limits = r.subscription_limits.unwrap();
        assert!(limits.concurrency_blocked);
        assert_eq!(limits.concurrency_limit, Some(10.0));
    }
}
