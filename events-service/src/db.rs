//! MySQL access: one connection pool per instance, kept across requests.
//!
//! mysql_async runs on a tokio current-thread runtime that lives beside the
//! pool in a thread-local (WASI 0.2 has one thread); each query blocks the
//! wasi:http handler while it runs, which is fine for a p2 component that
//! serves one request at a time.

use events_service::{
    ApiError, CREATE_TABLE, EventRow, EventsError, INSERT, LIST, NewEvent, Page,
    SELECT_BY_EVENT_ID, SELECT_BY_ID,
};
use mysql_async::prelude::*;
use mysql_async::{Opts, OptsBuilder, Pool, PoolConstraints, PoolOpts};
use std::cell::RefCell;
use std::time::Duration;

struct Db {
    rt: tokio::runtime::Runtime,
    pool: Pool,
    table_ready: bool,
}

thread_local! {
    static DB: RefCell<Option<Db>> = const { RefCell::new(None) };
}

/// How long one database operation may take before we answer 503.
const OP_TIMEOUT: Duration = Duration::from_secs(5);

/// True once a pool exists (the URL has been read from the secret store).
pub fn is_configured() -> bool {
    DB.with(|d| d.borrow().is_some())
}

/// Creates the pool from the database URL. The URL is a secret: it never
/// appears in errors or logs.
pub fn configure(url: &str) -> Result<(), ApiError> {
    let opts = Opts::from_url(url).map_err(|_| {
        // Not the parser's error: it could quote the URL, a secret.
        ApiError::unavailable(
            "the database",
            "the URL from the secret store is not a valid mysql:// URL",
        )
    })?;
    let mut builder = OptsBuilder::from_opts(opts);
    // The guest makes no name lookups (service.toml): where the database is
    // reached by name (a Kubernetes Service), DB_HOST gives its IP.
    if let Some(host) = std::env::var("DB_HOST").ok().filter(|h| !h.is_empty()) {
        builder = builder.ip_or_hostname(host);
    }
    let opts = builder
        .pool_opts(
            PoolOpts::default().with_constraints(PoolConstraints::new(0, 2).unwrap_or_default()),
        )
        // A p2 instance serves one request at a time; idle connections of
        // idle instances are closed soon so many instances cannot exhaust
        // MariaDB's connection limit.
        .conn_ttl(Some(Duration::from_secs(30)));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ApiError::unavailable("the database", format!("runtime: {e}")))?;
    // Pool::new spawns nothing until first use, but needs the runtime entered.
    let pool = {
        let _guard = rt.enter();
        Pool::new(opts)
    };
    DB.with(|d| {
        *d.borrow_mut() = Some(Db {
            rt,
            pool,
            table_ready: false,
        })
    });
    Ok(())
}

fn map_err(e: mysql_async::Error) -> EventsError {
    match e {
        mysql_async::Error::Server(s) => EventsError::Database {
            cause: format!("{}: {}", s.code, s.message),
        },
        other => ApiError::unavailable("the database", other).into(),
    }
}

/// Runs `f` with a connection, creating the table on first success.
fn with_conn<T>(
    f: impl AsyncFnOnce(&mut mysql_async::Conn) -> Result<T, mysql_async::Error>,
) -> Result<T, EventsError> {
    DB.with(|cell| {
        let mut guard = cell.borrow_mut();
        let db = guard
            .as_mut()
            .ok_or_else(|| ApiError::unavailable("the database", "not configured"))?;
        let pool = db.pool.clone();
        let ensure_table = !db.table_ready;
        let result = db.rt.block_on(async move {
            let work = async move {
                let mut conn = pool.get_conn().await?;
                if ensure_table {
                    conn.query_drop(CREATE_TABLE).await?;
                }
                f(&mut conn).await
            };
            match tokio::time::timeout(OP_TIMEOUT, work).await {
                Ok(r) => r.map_err(map_err),
                Err(_) => Err(ApiError::unavailable(
                    "the database",
                    format!("no answer within {OP_TIMEOUT:?}"),
                )
                .into()),
            }
        });
        if result.is_ok() {
            db.table_ready = true;
        }
        result
    })
}

fn row(r: (u64, u64, String, u64)) -> EventRow {
    EventRow {
        id: r.0,
        event_ts: r.1,
        op_type: r.2,
        input_size: r.3,
    }
}

/// `GET /init`.
pub fn init() -> Result<(), EventsError> {
    with_conn(async |c| c.query_drop(CREATE_TABLE).await)
}

/// Stores an event and returns its row (the existing one for a repeated id).
pub fn insert(ev: NewEvent) -> Result<EventRow, EventsError> {
    // A span in the request's trace: the host cannot see MySQL's socket.
    let step = service_common::span::step("db.insert");
    step.tag("db.system", "mysql").tag("db.operation", "INSERT");
    let found = with_conn(async move |c| {
        let params = (
            ev.event_id.clone(),
            ev.event_ts,
            ev.op_type.clone(),
            ev.input_size,
        );
        c.exec_drop(INSERT, params).await?;
        let id = c.last_insert_id();
        match (&ev.event_id, id) {
            (Some(event_id), _) => c.exec_first(SELECT_BY_EVENT_ID, (event_id,)).await,
            (None, Some(id)) => c.exec_first(SELECT_BY_ID, (id,)).await,
            (None, None) => Ok(None),
        }
    })?;
    found.map(row).ok_or_else(|| EventsError::Database {
        cause: "the stored event could not be read back".into(),
    })
}

/// A page of events, newest first.
pub fn list(page: Page) -> Result<Vec<EventRow>, EventsError> {
    let rows: Vec<(u64, u64, String, u64)> =
        with_conn(async move |c| c.exec(LIST, (page.before, page.limit)).await)?;
    Ok(rows.into_iter().map(row).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use service_common::Problem;

    #[test]
    fn server_refusals_are_ours_and_outages_are_503() {
        let refused = map_err(mysql_async::Error::Server(mysql_async::ServerError {
            code: 1146,
            message: "Table 'events.events' doesn't exist".into(),
            state: "42S02".into(),
        }));
        assert_eq!((refused.status(), refused.code()), (500, "database_error"));
        assert!(refused.cause().is_some_and(|c| c.contains("1146")));
        assert!(!String::from_utf8_lossy(&refused.to_json()).contains("events.events"));
        let gone = map_err(mysql_async::Error::Driver(
            mysql_async::DriverError::PoolDisconnected,
        ));
        assert_eq!((gone.status(), gone.code()), (503, "unavailable"));
    }

    // One test, in order: the pool is per instance (thread-local) state.
    #[test]
    fn configuration_keeps_the_url_secret_and_failures_are_503() {
        assert!(!is_configured());
        let e = list(Page {
            limit: 1,
            before: u64::MAX,
        })
        .expect_err("not configured");
        assert_eq!(e.status(), 503);

        let e = configure("mysql://events:hunter2@[bad").expect_err("invalid URL");
        let all = format!("{e:?} {e} {}", String::from_utf8_lossy(&e.to_json()));
        assert!(!all.contains("hunter2"), "{all}");
        assert_eq!(e.status(), 503);
        assert!(!is_configured());

        // A valid URL makes a pool without connecting. Port 9: nothing
        // listens, and tests/host.toml grants no socket anyway.
        configure("mysql://events:hunter2@127.0.0.1:9/events").expect("pool");
        assert!(is_configured());
        let e = init().expect_err("no database");
        assert_eq!((e.status(), e.code()), (503, "unavailable"));
        assert!(!String::from_utf8_lossy(&e.to_json()).contains("hunter2"));
    }

    #[test]
    fn rows_keep_their_columns() {
        let r = row((7, 1_700_000_000_000, "grayscale".into(), 42));
        assert_eq!(
            (r.id, r.event_ts, r.op_type.as_str(), r.input_size),
            (7, 1_700_000_000_000, "grayscale", 42)
        );
    }
}
