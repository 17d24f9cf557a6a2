//! The `{{variables}}` an assistant's prompt and first message use. Vapi fills them with
//! LiquidJS from the call's `assistantOverrides.variableValues`, beside its own (`now`,
//! `date`, `customer.number`, …); a variable the call lacks is rendered empty, so every
//! person would hear the gap. `switchboard check` reads which ones each contact must have.

/// Variables Vapi fills itself: the time (UTC) and the call's own objects.
const VAPI_FILLS: &[&str] = &["now", "date", "time", "month", "day", "year"];
/// Objects whose fields Vapi fills (`customer.number`, `phoneNumber.name`, `call.id`…).
/// `customer.name` is the one switchboard fills from the contact: see [`Needed::Name`].
const VAPI_OBJECTS: &[&str] = &["customer", "transport", "phoneNumber", "call", "assistant"];

/// What a call must carry for one placeholder.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Needed {
    /// A key of `variableValues` (a column of the contacts' CSV).
    Variable(String),
    /// `customer.name`: the contact's name.
    Name,
}

impl std::fmt::Display for Needed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Needed::Variable(name) => write!(f, "{{{{{name}}}}}"),
            Needed::Name => f.write_str("{{customer.name}}"),
        }
    }
}

/// The placeholders of `text` that need a value from the contact, each once, in order of
/// first use. A placeholder with a `default` filter (`{{ name | default: "there" }}`), a
/// literal (`{{ "now" | date: … }}`) and Vapi's own variables need nothing. Tags (`{% %}`)
/// are not read: a variable used only inside one is not reported.
pub fn needed(text: &str) -> Vec<Needed> {
    let mut found: Vec<Needed> = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            break;
        };
        let expression = after[..close].trim_matches(|c: char| c == '-' || c.is_whitespace());
        rest = &after[close + 2..];
        if let Some(need) = needed_by(expression)
            && !found.contains(&need)
        {
            found.push(need);
        }
    }
    found
}

fn needed_by(expression: &str) -> Option<Needed> {
    let mut parts = expression.split('|');
    let subject = parts.next()?.trim();
    let has_default = parts.any(|filter| {
        filter
            .trim()
            .split(':')
            .next()
            .is_some_and(|f| f.trim() == "default")
    });
    if has_default || subject.is_empty() {
        return None;
    }
    // The first segment of `a.b` or `a["b"]` is the variable; a literal is none.
    let root: String = subject
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    if root.is_empty() || root.chars().next().is_some_and(|c| c.is_ascii_digit()) {
        return None;
    }
    if root == "customer" && subject.strip_prefix("customer.") == Some("name") {
        return Some(Needed::Name);
    }
    if VAPI_FILLS.contains(&root.as_str()) || VAPI_OBJECTS.contains(&root.as_str()) {
        return None;
    }
    Some(Needed::Variable(root))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn var(name: &str) -> Needed {
        Needed::Variable(name.into())
    }

    #[test]
    fn the_placeholders_a_contact_must_fill() {
        let cases: &[(&str, Vec<Needed>)] = &[
            ("Hi {{firstName}}!", vec![var("firstName")]),
            (
                "{{ firstName }} from {{city}}, {{firstName}}",
                vec![var("firstName"), var("city")],
            ),
            ("{{- plan.tier -}}", vec![var("plan")]),
            ("{{order_id | upcase}}", vec![var("order_id")]),
            ("Hi {{ firstName | default: \"there\" }}", vec![]),
            (
                "It is {{now}} on {{date}}; {{ \"now\" | date: \"%H:%M\" }}",
                vec![],
            ),
            (
                "Calling {{customer.number}} from {{phoneNumber.number}}",
                vec![],
            ),
            ("Hello {{customer.name}}", vec![Needed::Name]),
            ("no placeholders, {single} braces, {{ unclosed", vec![]),
            ("{{ 42 }} {{}}", vec![]),
        ];
        for (text, expected) in cases {
            assert_eq!(&needed(text), expected, "{text}");
        }
        assert_eq!(var("firstName").to_string(), "{{firstName}}");
    }
}
