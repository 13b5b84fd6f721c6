//! Conversation (alpha2): send messages to a language model through a
//! conversation component (OpenAI, Anthropic, Ollama, … or
//! `conversation.echo`, which answers with the prompt), with Dapr's PII
//! scrubbing and prompt caching in between.
//! `POST /v1.0-alpha2/conversation/{name}/converse`; Dapr's JSON is the
//! protobuf's (`ofUser`, `finishReason`). Tool calls are not covered.

use crate::request::{DaprRequest, non_empty, path};
use crate::{Error, Result};
use http::Method;
use serde::{Deserialize, Serialize};

/// Who says a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Instructions from the application.
    System,
    /// Instructions from the developer (models that tell the two apart).
    Developer,
    /// The user's words.
    User,
    /// An earlier answer of the model.
    Assistant,
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Who says it.
    pub role: Role,
    /// What is said.
    pub text: String,
}

impl Message {
    /// A user's message.
    pub fn user(text: impl Into<String>) -> Self {
        Self {
            role: Role::User,
            text: text.into(),
        }
    }

    /// A system message.
    pub fn system(text: impl Into<String>) -> Self {
        Self {
            role: Role::System,
            text: text.into(),
        }
    }

    fn wire(&self) -> serde_json::Value {
        let kind = match self.role {
            Role::System => "ofSystem",
            Role::Developer => "ofDeveloper",
            Role::User => "ofUser",
            Role::Assistant => "ofAssistant",
        };
        serde_json::json!({ kind: { "content": [{ "text": self.text }] } })
    }
}

/// Settings of one exchange; all optional.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConverseOptions {
    /// Continue the conversation with this id (from an earlier answer).
    pub context_id: Option<String>,
    /// Sampling temperature.
    pub temperature: Option<f64>,
    /// Let Dapr scrub personal data from the messages and the answer.
    pub scrub_pii: bool,
}

/// `POST /v1.0-alpha2/conversation/{component}/converse` with the messages.
pub fn converse_request(
    component: &str,
    messages: &[Message],
    o: &ConverseOptions,
) -> Result<DaprRequest> {
    non_empty("conversation component", component)?;
    if messages.is_empty() {
        return Err(Error::InvalidArgument(
            "a conversation needs a message".into(),
        ));
    }
    let mut body = serde_json::json!({
        "inputs": [{
            "messages": messages.iter().map(Message::wire).collect::<Vec<_>>(),
            "scrubPii": o.scrub_pii,
        }],
        "scrubPii": o.scrub_pii,
    });
    if let Some(id) = &o.context_id {
        body["contextId"] = id.as_str().into();
    }
    if let Some(t) = o.temperature {
        body["temperature"] = t.into();
    }
    DaprRequest::new(
        Method::POST,
        path("/v1.0-alpha2/conversation", &[component, "converse"], &[]),
    )
    .json(&body)
}

/// The model's answer.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ConverseResponse {
    /// The conversation's id, to continue it.
    pub context_id: Option<String>,
    /// One output per input.
    pub outputs: Vec<Output>,
}

/// The answer to one input.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Output {
    /// The model's choices (usually one).
    pub choices: Vec<Choice>,
    /// The model that answered, if the component says.
    pub model: Option<String>,
}

/// One choice of an output.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Choice {
    /// Why the model stopped (`stop`, `length`, `tool_calls`, …).
    pub finish_reason: String,
    /// Its index.
    pub index: i64,
    /// What it said.
    pub message: ChoiceMessage,
}

/// The text of a choice.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct ChoiceMessage {
    /// The text.
    pub content: String,
}

impl ConverseResponse {
    /// The first choice's text, if there is one.
    pub fn text(&self) -> Option<&str> {
        let choice = self.outputs.first()?.choices.first()?;
        Some(choice.message.content.as_str())
    }
}

/// Decodes a converse answer; non-2xx is an error.
pub fn decode_converse(status: u16, body: &[u8]) -> Result<ConverseResponse> {
    if !(200..300).contains(&status) {
        return Err(Error::from_response(status, body));
    }
    serde_json::from_slice(body).map_err(Error::Decode)
}

#[cfg(target_os = "wasi")]
impl crate::Client {
    /// Sends `messages` to the conversation `component`'s model.
    pub async fn converse(
        &self,
        component: &str,
        messages: &[Message],
        options: &ConverseOptions,
    ) -> Result<ConverseResponse> {
        let r = self
            .send(converse_request(component, messages, options)?)
            .await?;
        decode_converse(r.status, &r.body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn request_and_answer() {
        let o = ConverseOptions {
            temperature: Some(0.5),
            ..ConverseOptions::default()
        };
        let r = converse_request(
            "echo",
            &[Message::system("be brief"), Message::user("hello")],
            &o,
        )
        .expect("req");
        assert_eq!(r.path_and_query, "/v1.0-alpha2/conversation/echo/converse");
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&r.body).expect("json"),
            json!({
                "inputs": [{"messages": [
                    {"ofSystem": {"content": [{"text": "be brief"}]}},
                    {"ofUser": {"content": [{"text": "hello"}]}}
                ], "scrubPii": false}],
                "scrubPii": false,
                "temperature": 0.5
            })
        );
        assert!(converse_request("echo", &[], &o).is_err());
        assert!(converse_request("", &[Message::user("x")], &o).is_err());
        let a = decode_converse(
            200,
            br#"{"contextId":"c1","outputs":[{"choices":[{"finishReason":"stop","message":{"content":"hello"}}]}]}"#,
        )
        .expect("answer");
        assert_eq!(
            (a.text(), a.context_id.as_deref()),
            (Some("hello"), Some("c1"))
        );
        assert_eq!(decode_converse(200, b"{}").expect("empty").text(), None);
        let e = decode_converse(400, br#"{"errorCode":"ERR_CONVERSATION_NOT_FOUND"}"#)
            .expect_err("error");
        assert_eq!(e.error_code(), Some("ERR_CONVERSATION_NOT_FOUND"));
    }
}
