//! The account's resources a campaign names, read before it dials (`switchboard check`):
//! `GET /assistant/{id}` (its prompt and first message, whose `{{variables}}` each call must
//! fill) and `GET /phone-number/{id}` (whether the number can place calls). Read leniently,
//! as the Call is: only `id` is required.

use serde::Deserialize;

/// An assistant as `GET /assistant/{id}` returns it (the fields the check reads).
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Assistant {
    pub id: String,
    #[serde(default, deserialize_with = "text")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub first_message: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub voicemail_message: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub end_call_message: Option<String>,
    #[serde(default)]
    pub model: Option<Model>,
}

/// `model`: the LLM's settings; its `messages` are the prompt.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
pub struct Model {
    #[serde(default, deserialize_with = "messages")]
    pub messages: Vec<Message>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
pub struct Message {
    #[serde(default, deserialize_with = "text")]
    pub role: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub content: Option<String>,
}

impl Assistant {
    /// Every text Vapi renders with the call's variables: the prompt's messages, the first
    /// message, the voicemail and end-call messages.
    pub fn templates(&self) -> Vec<&str> {
        let prompt = self
            .model
            .iter()
            .flat_map(|m| m.messages.iter())
            .filter_map(|m| m.content.as_deref());
        prompt
            .chain(self.first_message.as_deref())
            .chain(self.voicemail_message.as_deref())
            .chain(self.end_call_message.as_deref())
            .collect()
    }
}

/// A phone number as `GET /phone-number/{id}` returns it (any provider).
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct PhoneNumber {
    pub id: String,
    #[serde(default, deserialize_with = "text")]
    pub number: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub provider: Option<String>,
    /// `active`, `activating` or `blocked` (absent on older numbers: taken as active).
    #[serde(default, deserialize_with = "text")]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub name: Option<String>,
}

/// Whether a number can place calls, from its `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberState {
    Active,
    /// Still being set up at the carrier: calls fail until it is active.
    Activating,
    /// Blocked by Vapi or the carrier.
    Blocked,
    /// A status this client does not know (kept as text by the caller).
    Other,
}

impl PhoneNumber {
    pub fn state(&self) -> NumberState {
        match self.status.as_deref() {
            None | Some("active") => NumberState::Active,
            Some("activating") => NumberState::Activating,
            Some("blocked") => NumberState::Blocked,
            Some(_) => NumberState::Other,
        }
    }
}

fn text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Some(s),
        _ => None,
    })
}

fn messages<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Message>, D::Error> {
    let value = serde_json::Value::deserialize(d)?;
    Ok(value
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|m| Message::deserialize(m).ok())
                .collect()
        })
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_assistant_s_templates_are_its_prompt_and_messages() {
        let a: Assistant = serde_json::from_value(serde_json::json!({
            "id": "asst-1", "orgId": "o", "createdAt": "x", "updatedAt": "x",
            "firstMessage": "Hi {{firstName}}",
            "model": {"provider": "openai", "model": "gpt-4o", "messages": [
                {"role": "system", "content": "You call {{firstName}} about {{plan}}."},
                {"role": "system", "content": 7}
            ]},
            "voicemailMessage": null
        }))
        .unwrap();
        assert_eq!(
            a.templates(),
            vec!["You call {{firstName}} about {{plan}}.", "Hi {{firstName}}"]
        );
    }

    #[test]
    fn a_number_s_status_says_whether_it_can_call() {
        let read = |status: serde_json::Value| {
            serde_json::from_value::<PhoneNumber>(
                serde_json::json!({"id": "pn", "provider": "twilio", "status": status}),
            )
            .unwrap()
            .state()
        };
        assert_eq!(read("active".into()), NumberState::Active);
        assert_eq!(read(serde_json::Value::Null), NumberState::Active);
        assert_eq!(read("activating".into()), NumberState::Activating);
        assert_eq!(read("blocked".into()), NumberState::Blocked);
        assert_eq!(read("suspended".into()), NumberState::Other);
    }
}
