//! The client: sends [`DaprRequest`]s to the sidecar over wasi:http.

use crate::config::Config;
use crate::invoke::{InvokeResponse, invoke_request};
use crate::request::DaprRequest;
use crate::secrets::Secret;
use crate::state::{self, Consistency, ETag, SaveItem, StateEntry, StateOptions};
use crate::transport::{Endpoint, exchange};
use crate::{Error, Result};
use http::{HeaderMap, HeaderValue, Method};
use std::time::Duration;
use wstd::http::Body;

/// Largest sidecar answer we read into memory.
const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// A Dapr sidecar client. Cheap to create; hold one per request or keep one
/// in a `thread_local!` for the life of the instance.
pub struct Client {
    config: Config,
    endpoint: Endpoint,
    timeout: Duration,
    transport_retries: u32,
}

/// A raw sidecar answer.
#[derive(Debug)]
pub struct RawResponse {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Vec<u8>,
}

/// Builds a [`Client`] with explicit settings.
#[derive(Debug, Default)]
pub struct ClientBuilder {
    endpoint: Option<String>,
    api_token: Option<String>,
    timeout: Option<Duration>,
    transport_retries: Option<u32>,
}

impl ClientBuilder {
    /// Sidecar base URL, e.g. `http://127.0.0.1:3500`.
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// API token sent as `dapr-api-token`.
    pub fn api_token(mut self, token: impl Into<String>) -> Self {
        self.api_token = Some(token.into());
        self
    }

    /// Connect and first-byte timeout (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// How often a failed connection is retried for requests that are safe
    /// to repeat (default 3).
    pub fn transport_retries(mut self, retries: u32) -> Self {
        self.transport_retries = Some(retries);
        self
    }

    /// Resolves the rest from the environment and builds the client.
    pub fn build(self) -> Result<Client> {
        let mut config = Config::from_env()?;
        if let Some(e) = self.endpoint {
            config.endpoint = e.trim_end_matches('/').to_string();
        }
        if let Some(t) = self.api_token {
            config.api_token = Some(t);
        }
        let endpoint = Endpoint::parse(&config.endpoint)?;
        Ok(Client {
            config,
            endpoint,
            timeout: self.timeout.unwrap_or(Duration::from_secs(30)),
            transport_retries: self.transport_retries.unwrap_or(3),
        })
    }
}

impl Client {
    /// A client configured from `DAPR_HTTP_ENDPOINT` / `DAPR_HTTP_PORT` and
    /// `DAPR_API_TOKEN` (see [`Config`]).
    pub fn from_env() -> Result<Self> {
        ClientBuilder::default().build()
    }

    /// A builder for explicit settings.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// The resolved settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Sends a request as is and returns the sidecar's answer, whatever its
    /// status. Transport failures (connection reset, refused) are retried
    /// up to the client's `transport_retries` when the request is safe to
    /// repeat: every Dapr API call except invoking a non-idempotent method.
    pub async fn send(&self, req: DaprRequest) -> Result<RawResponse> {
        let retries = if req.is_retryable() {
            self.transport_retries
        } else {
            0
        };
        let mut attempt = 0;
        loop {
            match self.send_once(req.clone()).await {
                Err(Error::Transport(_)) if attempt < retries => {
                    attempt += 1;
                    // 10, 20, 40 ms: rides out a sidecar restart or a
                    // refused connection.
                    let backoff = Duration::from_millis(10 << (attempt - 1).min(6));
                    wstd::task::sleep(backoff.into()).await;
                }
                other => return other,
            }
        }
    }

    async fn send_once(&self, req: DaprRequest) -> Result<RawResponse> {
        let mut headers = req.headers;
        if !req.body.is_empty() {
            // wasi:http sends chunked bodies unless told the length.
            headers.insert(
                http::header::CONTENT_LENGTH,
                HeaderValue::from(req.body.len()),
            );
        }
        if let Some(token) = &self.config.api_token {
            let v = HeaderValue::try_from(token.as_str())
                .map_err(|_| Error::Config("DAPR_API_TOKEN is not a valid header value".into()))?;
            headers.insert("dapr-api-token", v);
        }
        let (status, headers, body) = exchange(
            &self.endpoint,
            &req.method,
            &req.path_and_query,
            &headers,
            &req.body,
            self.timeout,
            MAX_RESPONSE_BYTES,
        )
        .await?;
        Ok(RawResponse {
            status,
            headers,
            body,
        })
    }

    pub(crate) async fn send_ok(&self, req: DaprRequest) -> Result<RawResponse> {
        let r = self.send(req).await?;
        if (200..300).contains(&r.status) {
            Ok(r)
        } else {
            Err(Error::from_response(r.status, &r.body))
        }
    }

    // ---- Service invocation ----

    /// Invokes `method_path` on `app_id` with any method, body and headers.
    /// The app's status is passed through in the response.
    pub async fn invoke(
        &self,
        app_id: &str,
        method: Method,
        method_path: &str,
        headers: HeaderMap,
        body: Vec<u8>,
    ) -> Result<InvokeResponse> {
        let mut req = invoke_request(app_id, method, method_path, body)?;
        req.headers.extend(headers);
        let r = self.send(req).await?;
        Ok(InvokeResponse {
            status: r.status,
            headers: r.headers,
            body: r.body,
        })
    }

    /// Invokes with a JSON body and decodes a JSON answer; non-2xx is an error.
    pub async fn invoke_json<Req, Resp>(
        &self,
        app_id: &str,
        method: Method,
        method_path: &str,
        body: &Req,
    ) -> Result<Resp>
    where
        Req: serde::Serialize + ?Sized,
        Resp: serde::de::DeserializeOwned,
    {
        let req = invoke_request(app_id, method, method_path, Vec::new())?.json(body)?;
        let r = self.send(req).await?;
        let r = InvokeResponse {
            status: r.status,
            headers: r.headers,
            body: r.body,
        };
        if r.is_success() {
            r.json()
        } else {
            Err(r.into_error())
        }
    }

    // ---- State ----

    /// Reads a value; a missing key is `Ok(None)`.
    pub async fn get_state<T: serde::de::DeserializeOwned>(
        &self,
        store: &str,
        key: &str,
    ) -> Result<Option<T>> {
        Ok(self
            .get_state_entry(store, key, None)
            .await?
            .map(|e| e.value))
    }

    /// Reads a value with its ETag; a missing key is `Ok(None)`.
    pub async fn get_state_entry<T: serde::de::DeserializeOwned>(
        &self,
        store: &str,
        key: &str,
        consistency: Option<Consistency>,
    ) -> Result<Option<StateEntry<T>>> {
        let r = self
            .send(state::get_request(store, key, consistency)?)
            .await?;
        let etag = r.headers.get("etag").and_then(|v| v.to_str().ok());
        state::decode_get(r.status, etag, &r.body)
    }

    /// Reads several keys in one call; `None` for missing keys, in the
    /// order of `keys`.
    pub async fn get_bulk_state<T: serde::de::DeserializeOwned>(
        &self,
        store: &str,
        keys: &[&str],
    ) -> Result<Vec<(String, Option<StateEntry<T>>)>> {
        let r = self.send(state::bulk_get_request(store, keys)?).await?;
        state::decode_bulk_get(r.status, keys, &r.body)
    }

    /// Saves items; with first-write concurrency a lost race is an error for
    /// which [`Error::is_etag_mismatch`] is true.
    pub async fn save_state<T: serde::Serialize>(
        &self,
        store: &str,
        items: &[SaveItem<T>],
    ) -> Result<()> {
        self.send_ok(state::save_request(store, items)?)
            .await
            .map(|_| ())
    }

    /// Saves one value, last write wins.
    pub async fn save<T: serde::Serialize>(&self, store: &str, key: &str, value: T) -> Result<()> {
        self.save_state(store, &[SaveItem::new(key, value)]).await
    }

    /// Deletes a key, optionally only if its ETag matches.
    pub async fn delete_state(
        &self,
        store: &str,
        key: &str,
        etag: Option<&ETag>,
        options: StateOptions,
    ) -> Result<()> {
        self.send_ok(state::delete_request(store, key, etag, options)?)
            .await
            .map(|_| ())
    }

    // ---- Secrets ----

    /// Reads a secret.
    pub async fn get_secret(&self, store: &str, key: &str) -> Result<Secret> {
        let r = self.send(crate::secrets::get_request(store, key)?).await?;
        crate::secrets::decode_get(r.status, &r.body)
    }

    /// Runs state operations as one transaction (all or none).
    pub async fn transact_state<T: serde::Serialize>(
        &self,
        store: &str,
        ops: &[state::TransactionOp<T>],
    ) -> Result<()> {
        self.send_ok(state::transaction_request(store, ops)?)
            .await
            .map(|_| ())
    }

    /// Queries a store that supports the (alpha) state query API.
    pub async fn query_state<T: serde::de::DeserializeOwned>(
        &self,
        store: &str,
        query: &serde_json::Value,
    ) -> Result<state::QueryResponse<T>> {
        let r = self.send_ok(state::query_request(store, query)?).await?;
        serde_json::from_slice(&r.body).map_err(Error::Decode)
    }

    /// Reads every secret of a store the app may read.
    pub async fn get_bulk_secrets(
        &self,
        store: &str,
    ) -> Result<std::collections::BTreeMap<String, Secret>> {
        let r = self.send(crate::secrets::bulk_request(store)?).await?;
        crate::secrets::decode_bulk(r.status, &r.body)
    }

    // ---- Pub/sub ----

    /// Publishes `data` (with its content type) to a topic, wrapped in a
    /// CloudEvent or raw.
    pub async fn publish(
        &self,
        pubsub: &str,
        topic: &str,
        data: Vec<u8>,
        content_type: &str,
        payload: crate::pubsub::Payload,
    ) -> Result<()> {
        let req = crate::pubsub::publish_request(pubsub, topic, data, content_type, payload)?;
        self.send_ok(req).await.map(|_| ())
    }

    /// Publishes a value as JSON in a CloudEvent.
    pub async fn publish_json<T: serde::Serialize + ?Sized>(
        &self,
        pubsub: &str,
        topic: &str,
        value: &T,
    ) -> Result<()> {
        let data = serde_json::to_vec(value).map_err(Error::Encode)?;
        self.publish(
            pubsub,
            topic,
            data,
            "application/json",
            crate::pubsub::Payload::CloudEvent,
        )
        .await
    }

    /// Publishes several events at once; the answer lists the ones that failed.
    pub async fn bulk_publish<T: serde::Serialize>(
        &self,
        pubsub: &str,
        topic: &str,
        entries: &[crate::pubsub::BulkEntry<T>],
    ) -> Result<crate::pubsub::BulkPublishResponse> {
        let r = self
            .send(crate::pubsub::bulk_publish_request(pubsub, topic, entries)?)
            .await?;
        crate::pubsub::decode_bulk_publish(r.status, &r.body)
    }

    // ---- Bindings ----

    /// Invokes an output binding.
    pub async fn invoke_binding<T: serde::Serialize>(
        &self,
        name: &str,
        operation: &str,
        data: &T,
        metadata: &std::collections::BTreeMap<String, String>,
    ) -> Result<crate::bindings::BindingResponse> {
        let r = self
            .send(crate::bindings::invoke_binding_request(
                name, operation, data, metadata,
            )?)
            .await?;
        crate::bindings::decode_binding(r.status, &r.headers, r.body)
    }

    // ---- Cryptography (alpha) ----

    /// Encrypts `plaintext` with a key the crypto `component` holds.
    pub async fn encrypt(
        &self,
        component: &str,
        plaintext: &[u8],
        options: &crate::crypto::EncryptOptions,
    ) -> Result<Vec<u8>> {
        let r = self
            .send(crate::crypto::encrypt_request(
                component, plaintext, options,
            )?)
            .await?;
        crate::crypto::decode_data(r.status, r.body)
    }

    /// Decrypts what [`Client::encrypt`] made; `key_name` only if it was
    /// encrypted with `omit_decryption_key_name`.
    pub async fn decrypt(
        &self,
        component: &str,
        ciphertext: &[u8],
        key_name: Option<&str>,
    ) -> Result<Vec<u8>> {
        let r = self
            .send(crate::crypto::decrypt_request(
                component, ciphertext, key_name,
            )?)
            .await?;
        crate::crypto::decode_data(r.status, r.body)
    }

    // ---- Configuration ----

    /// Reads configuration items (all when `keys` is empty).
    pub async fn get_configuration(
        &self,
        store: &str,
        keys: &[&str],
    ) -> Result<std::collections::BTreeMap<String, crate::configuration::ConfigurationItem>> {
        let r = self
            .send(crate::configuration::get_request(store, keys)?)
            .await?;
        crate::configuration::decode_get(r.status, &r.body)
    }

    /// Subscribes to changes; Dapr POSTs them to the app's
    /// `/configuration/{store}/{key}`. Returns the subscription id.
    pub async fn subscribe_configuration(&self, store: &str, keys: &[&str]) -> Result<String> {
        let r = self
            .send(crate::configuration::subscribe_request(store, keys)?)
            .await?;
        crate::configuration::decode_subscribe(r.status, &r.body)
    }

    /// Ends a configuration subscription.
    pub async fn unsubscribe_configuration(&self, store: &str, id: &str) -> Result<()> {
        self.send_ok(crate::configuration::unsubscribe_request(store, id)?)
            .await
            .map(|_| ())
    }

    // ---- Distributed lock ----

    /// Tries to take a lock for `expiry_seconds`; `true` when `owner` holds it.
    pub async fn try_lock(
        &self,
        store: &str,
        resource_id: &str,
        owner: &str,
        expiry_seconds: u32,
    ) -> Result<bool> {
        let r = self
            .send(crate::lock::lock_request(
                store,
                resource_id,
                owner,
                expiry_seconds,
            )?)
            .await?;
        crate::lock::decode_lock(r.status, &r.body)
    }

    /// Releases a lock.
    pub async fn unlock(
        &self,
        store: &str,
        resource_id: &str,
        owner: &str,
    ) -> Result<crate::lock::UnlockStatus> {
        let r = self
            .send(crate::lock::unlock_request(store, resource_id, owner)?)
            .await?;
        crate::lock::decode_unlock(r.status, &r.body)
    }

    // ---- Metadata ----

    /// The sidecar's metadata.
    pub async fn metadata(&self) -> Result<crate::metadata::Metadata> {
        let r = self.send(crate::metadata::get_request()).await?;
        crate::metadata::decode_get(r.status, &r.body)
    }

    /// Sets a custom metadata attribute.
    pub async fn set_metadata(&self, key: &str, value: &str) -> Result<()> {
        self.send_ok(crate::metadata::put_request(key, value)?)
            .await
            .map(|_| ())
    }

    // ---- Health ----

    /// `GET /v1.0/healthz/outbound`: components are ready for the app to use.
    pub async fn healthz_outbound(&self) -> Result<()> {
        self.send_ok(crate::metadata::outbound_health_request())
            .await
            .map(|_| ())
    }

    /// Asks the sidecar to shut down.
    pub async fn shutdown(&self) -> Result<()> {
        self.send_ok(crate::metadata::shutdown_request())
            .await
            .map(|_| ())
    }

    /// `GET /v1.0/healthz`: Ok when the sidecar is ready.
    pub async fn healthz(&self) -> Result<()> {
        self.send_ok(DaprRequest::new(Method::GET, "/v1.0/healthz".into()))
            .await
            .map(|_| ())
    }

    /// Polls `healthz` until it answers Ok or `timeout` passes.
    pub async fn wait_until_ready(&self, timeout: Duration) -> Result<()> {
        let start = wstd::time::Instant::now();
        let mut delay = Duration::from_millis(50);
        loop {
            match self.healthz().await {
                Ok(()) => return Ok(()),
                Err(e) if start.elapsed() >= timeout.into() => return Err(e),
                Err(_) => {
                    wstd::task::sleep(delay.into()).await;
                    delay = (delay * 2).min(Duration::from_secs(1));
                }
            }
        }
    }
}

/// Reads a body, failing past `limit` bytes instead of buffering without bound.
pub async fn read_limited(body: Body, limit: usize) -> Result<Vec<u8>> {
    use http_body_util::BodyExt;
    let mut out = Vec::new();
    let mut body = body.into_boxed_body();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Error::Transport(e.to_string()))?;
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > limit {
                return Err(Error::TooLarge { limit });
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out)
}
