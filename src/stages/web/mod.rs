//! The web stage: `/rrd` pages, PNG graphs, chart data and exports,
//! `/metrics` and `/healthz`, on actix-web with askama templates compiled
//! into the binary.
//!
//! It runs on its own thread under actix's runtime and talks to the other
//! stages only through their handles: the RRD thread draws, exports and
//! publishes the index; the cache flushes a file before it is drawn and
//! gives each series' latest sample. No request text reaches librrd or the
//! file system: a file is looked up in the index, and ranges, sizes and DS
//! names are parsed and checked in `query` first.

mod access;
mod assets;
pub mod auth;
mod chrome;
mod dashboards;
mod energy;
mod error;
mod events_api;
mod export;
mod form;
mod graph;
mod jobs;
mod pages;
mod prom;
mod push;
pub mod query;
mod serve;
pub mod tree;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_service::{IntoServiceFactory, ServiceFactoryExt};
use actix_web::middleware::{Condition, DefaultHeaders, ErrorHandlers};
use actix_web::{App, HttpResponse, web};
use actix_web_httpauth::middleware::HttpAuthentication;
use tracing::{info, warn};

use std::collections::HashMap;

use crate::cache::{CacheHandle, Unwritten};
use crate::clock::Clock;
use crate::config::WebConfig;
use crate::metrics::Metrics;
use crate::rrd::RrdHandle;

use crate::rrd::IndexView;
use crate::rrd::index::IndexEntry;
use access::Access;
pub use error::WebError;
pub use jobs::JobsSaved;

/// How long a graph waits for its file's cached rows to reach the disk
/// before it is drawn anyway (the RRD thread is far behind).
const FLUSH_WAIT: Duration = Duration::from_secs(5);
/// The RRD thread publishes new files within a second.
const INDEX_NEW_FILE_WAIT: Duration = Duration::from_millis(1500);

/// What every handler shares; one per server.
pub(crate) struct State {
    rrd: RrdHandle,
    cache: CacheHandle,
    metrics: Arc<Metrics>,
    users: auth::Users,
    clock: Clock,
    /// Graphs and exports waiting for, or in, the RRD thread.
    render_slots: tokio::sync::Semaphore,
    pngs: Mutex<graph::PngCache>,
    dygraphs: Option<assets::Dygraphs>,
    journal_enabled: bool,
    config: tokio::sync::watch::Receiver<Arc<crate::config::Config>>,
    /// `[[web.groups]]`, for sharing dashboards.
    groups: Vec<crate::config::WebGroup>,
    /// Dashboards made in the browser.
    saved: dashboards::Saved,
    /// The tokens of forms that change something.
    form_tokens: form::FormTokens,
    events: Arc<crate::events::Events>,
    jobs: crate::poll::JobsStatus,
    /// Poll jobs made in the browser.
    stored_jobs: jobs::StoredJobs,
    /// `/rrd/api/values`, when `[[web.bots]]` exist.
    push: Option<push::Push>,
    /// The zone pages show times in (`web.time_zone`).
    time_zone: String,
    /// Each user's view of the index, with the index it was filtered from:
    /// filtered again only when the index changes.
    visible: Mutex<std::collections::HashMap<String, (IndexView, IndexView)>>,
    /// The devices of the index views being served (`State::devices`).
    device_lists: Mutex<Vec<(IndexView, Arc<Vec<tree::Device>>)>>,
}

impl State {
    /// The files `access` may see, in the index's order.
    fn index(&self, access: &Access) -> IndexView {
        let all = self.rrd.index();
        if access.sees_all() {
            return all;
        }
        let user = access.user.clone().unwrap_or_default();
        let mut visible = self.visible.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((source, filtered)) = visible.get(&user)
            && Arc::ptr_eq(source, &all)
        {
            return filtered.clone();
        }
        let filtered: IndexView = Arc::new(
            all.iter()
                .filter(|e| access.sees_file(e))
                .cloned()
                .collect(),
        );
        visible.insert(user, (all, filtered.clone()));
        filtered
    }

    /// The devices of `index` (`tree::devices`), kept while that view is
    /// served: the first page and the editors' device list then cost no
    /// pass over 10,000 files, only a new index (or user) does.
    fn devices(&self, index: &IndexView) -> Arc<Vec<tree::Device>> {
        let mut lists = self.device_lists.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, devices)) = lists.iter().find(|(view, _)| Arc::ptr_eq(view, index)) {
            return devices.clone();
        }
        let devices = Arc::new(tree::devices(index.iter()));
        // Views no one else holds any more (an older index, a page's view
        // with files in their first minutes) are dropped.
        lists.retain(|(view, _)| Arc::strong_count(view) > 1);
        lists.push((index.clone(), devices.clone()));
        devices
    }

    /// The index entry for `path` (a request path with `suffix`, such as
    /// ".png", removed), if `access` may see it: a file of the index, or
    /// one whose rows are all in the cache yet (then the entry the index
    /// will have). Only those files are ever read: this is what keeps `..`
    /// and friends out of the file system. A hidden file is answered like a
    /// missing one.
    async fn entry(
        &self,
        access: &Access,
        path: &str,
        suffix: &str,
    ) -> Result<IndexEntry, WebError> {
        let not_found = || WebError::NotFound(format!("{path:?} is not a file of the index"));
        let rel_path = path.strip_suffix(suffix).ok_or_else(not_found)?;
        let index = self.rrd.index();
        let found = match tree::find(&index, rel_path) {
            Some(e) => Some(e.clone()),
            None => self
                .cache
                .unwritten()
                .await
                .unwrap_or_default()
                .into_iter()
                .find(|u| u.spec.rel_path == rel_path)
                .map(|u| unwritten_entry(&u)),
        };
        // Written a moment ago: no longer in the cache's first minutes, in
        // the index within a second (new files are published together).
        let found = match found {
            Some(e) => Some(e),
            None if self.cache.file_known(rel_path).await => {
                let index = self.rrd.next_index(INDEX_NEW_FILE_WAIT).await;
                tree::find(&index, rel_path).cloned()
            }
            None => None,
        };
        found.filter(|e| access.sees_file(e)).ok_or_else(not_found)
    }

    /// The files `access` may see with, among them, those whose rows are
    /// all still in the cache (a series' first minutes), and those by path.
    async fn live_index(&self, access: &Access) -> (IndexView, HashMap<String, Unwritten>) {
        let index = self.index(access);
        let unwritten: HashMap<String, Unwritten> = self
            .cache
            .unwritten()
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|u| tree::find(&index, &u.spec.rel_path).is_none())
            .filter(|u| access.sees_file(&unwritten_entry(u)))
            .map(|u| (u.spec.rel_path.clone(), u))
            .collect();
        if unwritten.is_empty() {
            return (index, unwritten);
        }
        let mut all: Vec<IndexEntry> = index.to_vec();
        all.extend(unwritten.values().map(unwritten_entry));
        all.sort_by(|a, b| a.path.cmp(&b.path));
        (Arc::new(all), unwritten)
    }

    /// A place in the RRD thread's queue, or 503: a flood of graph requests
    /// must not queue without bound behind the writes.
    fn render_slot(&self) -> Result<tokio::sync::SemaphorePermit<'_>, WebError> {
        self.render_slots.try_acquire().map_err(|_| WebError::Busy)
    }

    /// Writes the file's cached rows first, so that what is read is not
    /// behind the data (Munin#420); gives up waiting after `FLUSH_WAIT`.
    async fn flush(&self, rel_path: &str) {
        let flushed = tokio::time::timeout(FLUSH_WAIT, self.cache.flush_file(rel_path.to_owned()));
        if flushed.await.is_err() {
            warn!(
                file = rel_path,
                "Cached rows not written within 5 s; reading the file as it is."
            );
        }
    }

    /// The events between `start_s` and `end_s` about any of `paths` (an
    /// event about a device is about its files; one about none, about all).
    fn marks(&self, paths: &[&str], start_s: i64, end_s: i64) -> Vec<crate::rrd::read::Mark> {
        self.events
            .between(start_s, end_s, |e| {
                e.device
                    .as_deref()
                    .is_none_or(|d| paths.iter().any(|p| is_about(p, d)))
            })
            .into_iter()
            .map(|e| crate::rrd::read::Mark {
                time_s: e.time_s,
                text: e.text,
            })
            .collect()
    }

    fn now_s(&self) -> i64 {
        self.clock.now_ms().div_euclid(1000)
    }
}

/// A file whose rows are all in the cache, as the index will list it;
/// where its data starts, for graphs to zoom to.
fn unwritten_entry(u: &Unwritten) -> IndexEntry {
    let mut entry = IndexEntry::of(&u.spec, None);
    entry.since = Some(u.first_s);
    entry
}

/// Whether the file at `path` belongs to `device` (or is it).
fn is_about(path: &str, device: &str) -> bool {
    path.strip_prefix(device)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// What the web stage needs from the rest of the daemon.
pub struct WebDeps {
    pub rrd: RrdHandle,
    pub cache: CacheHandle,
    pub metrics: Arc<Metrics>,
    pub clock: Clock,
    pub journal_enabled: bool,
    /// The configuration as reloaded: dashboards follow it.
    pub config: tokio::sync::watch::Receiver<Arc<crate::config::Config>>,
    /// Drawn on graphs; editors add to them.
    pub events: Arc<crate::events::Events>,
    /// What each poll job did last (`/metrics`, the jobs page).
    pub jobs: crate::poll::JobsStatus,
    /// The poll jobs made in the browser, as the daemon read them at start.
    pub browser_jobs: Vec<crate::config::poll::RawPoll>,
    /// Where the jobs page hands a changed list for the daemon to run.
    pub jobs_saved: Option<tokio::sync::mpsc::UnboundedSender<JobsSaved>>,
    /// Where pushed values go, as every source's.
    pub intake: crate::cache::Intake,
    pub stamper: crate::clock::Stamper,
}

/// The running server: how to stop it.
pub struct WebServer {
    stop: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<std::io::Result<()>>,
}

impl WebServer {
    /// Stops taking requests, lets those in progress finish (at most 5 s),
    /// and waits for the thread. `false` if the thread had panicked (an
    /// error it ended with is in the log already).
    pub async fn stop(self) -> bool {
        let _ = self.stop.send(());
        let joined = tokio::task::spawn_blocking(move || self.thread.join()).await;
        matches!(joined, Ok(Ok(_)))
    }
}

pub(crate) fn state(config: &WebConfig, deps: WebDeps) -> State {
    let data_dir = deps.config.borrow().data_dir.clone();
    let dygraphs = assets::Dygraphs::load(&config.dygraphs_dir);
    if dygraphs.is_none() {
        warn!(dir = %config.dygraphs_dir.display(), "dygraph.min.js not found (Debian package libjs-dygraphs): pages show PNG graphs only.");
    }
    let push = push::Push::new(
        config.bots.clone(),
        deps.intake,
        deps.stamper,
        deps.metrics.clone(),
    );
    State {
        rrd: deps.rrd,
        cache: deps.cache,
        metrics: deps.metrics,
        push,
        users: auth::Users::new(config.users.clone(), &config.groups),
        clock: deps.clock,
        render_slots: tokio::sync::Semaphore::new(config.render_queue),
        pngs: Mutex::new(graph::PngCache::new()),
        dygraphs,
        journal_enabled: deps.journal_enabled,
        groups: config.groups.clone(),
        saved: dashboards::Saved::load(&data_dir, &config.groups),
        form_tokens: form::FormTokens::default(),
        config: deps.config,
        events: deps.events,
        jobs: deps.jobs,
        stored_jobs: jobs::StoredJobs::new(&data_dir, deps.browser_jobs, deps.jobs_saved),
        visible: Mutex::default(),
        device_lists: Mutex::default(),
        time_zone: config.time_zone.clone(),
    }
}

/// Declares the routes behind authentication once, for the server and for
/// the permissions test, which requests every one of them as every kind of
/// user: a route added here cannot be left out of it.
macro_rules! authenticated_routes {
    ($($method:ident $pattern:literal => $handler:expr,)*) => {
        /// The method and pattern of every route behind authentication.
        #[cfg(test)]
        pub(crate) const AUTHENTICATED_ROUTES: &[(&str, &str)] =
            &[$((stringify!($method), $pattern)),*];

        fn add_authenticated_routes(scope: actix_web::Scope) -> actix_web::Scope {
            scope $(.route($pattern, web::$method().to($handler)))*
        }
    };
}

authenticated_routes! {
    get "/" => redirect_to_index,
    get "/metrics" => prom::metrics,
    get "/rrd" => pages::index,
    get "/rrd/" => pages::index,
    get "/rrd/index.txt" => export::index_txt,
    get "/rrd/index.json" => export::index_json,
    get "/rrd/static/{name}" => assets::ours,
    get "/rrd/dygraphs/{name}" => assets::dygraphs,
    get "/rrd/dashboards" => dashboards::list,
    get "/rrd/dashboards/edit" => dashboards::editor::edit,
    post "/rrd/dashboards/save" => dashboards::editor::save,
    post "/rrd/dashboards/delete" => dashboards::editor::delete,
    get "/rrd/jobs" => jobs::list,
    get "/rrd/jobs/edit" => jobs::editor::edit,
    post "/rrd/jobs/save" => jobs::editor::save,
    post "/rrd/jobs/pause" => jobs::editor::pause,
    post "/rrd/jobs/delete" => jobs::editor::delete,
    get "/rrd/events.json" => events_api::list,
    post "/rrd/events/add" => events_api::add,
    post "/rrd/events/delete" => events_api::delete,
    get "/rrd/device-dashboard" => dashboards::device_page,
    get "/rrd/device-dashboard/view.png" => dashboards::device_view_png,
    get "/rrd/dashboard/{name}" => dashboards::page,
    get "/rrd/dashboard/{name}/{view}" => dashboards::view_png,
    get "/rrd/file/{path:.*}" => pages::file,
    get "/rrd/energy" => energy::overview,
    get "/rrd/energy/{path:.*}" => energy::meter,
    get "/rrd/graph/{path:.*}" => graph::png,
    get "/rrd/data/{path:.*}" => export::data,
}

async fn redirect_to_index() -> HttpResponse {
    HttpResponse::Found()
        .insert_header(("Location", "/rrd"))
        .finish()
}

/// Every route. `/healthz` stays open; the rest asks for a password when
/// users are configured, and shows each user what their groups allow.
pub(crate) fn routes(cfg: &mut web::ServiceConfig, state: web::Data<State>) {
    let auth = state.users.enabled();
    // One byte over the limit, so that the handler counts the refusal.
    let push_limit = state.config.borrow().limits.max_payload_bytes + 1;
    cfg.app_data(state)
        .app_data(actix_web_httpauth::extractors::basic::Config::default().realm("datalog-rrd"))
        .app_data(
            web::QueryConfig::default()
                .error_handler(|e, _| WebError::BadQuery(e.to_string()).into()),
        )
        .app_data(
            web::PathConfig::default()
                .error_handler(|e, _| WebError::BadQuery(e.to_string()).into()),
        )
        .app_data(
            web::FormConfig::default()
                .limit(64 << 10)
                .error_handler(|e, _| WebError::BadQuery(e.to_string()).into()),
        )
        .route("/healthz", web::get().to(prom::healthz))
        // Bots authenticate with their own tokens, not as web users.
        .service(
            web::resource("/rrd/api/values")
                .app_data(web::PayloadConfig::new(push_limit))
                .route(web::post().to(push::values)),
        )
        .service(
            add_authenticated_routes(web::scope(""))
                .wrap(ErrorHandlers::new().default_handler(error::html_errors))
                .wrap(Condition::new(
                    auth,
                    HttpAuthentication::basic(auth::validator),
                ))
                .wrap(
                    DefaultHeaders::new()
                        .add(("X-Content-Type-Options", "nosniff"))
                        .add(("X-Frame-Options", "DENY"))
                        .add(("Referrer-Policy", "same-origin")),
                ),
        );
}

/// How long a client may take to send a request's head.
const CLIENT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Binds `config.listen` and serves on a thread of its own (`serve.rs`:
/// the service exists only while someone browses).
pub fn start(config: &WebConfig, deps: WebDeps) -> std::io::Result<WebServer> {
    let state = web::Data::new(state(config, deps));
    let listener = std::net::TcpListener::bind(config.listen)?;
    let addr = listener.local_addr()?;
    let (stop, stop_rx) = tokio::sync::oneshot::channel();
    // actix's services are not `Send`: they are built on the thread that
    // runs them.
    let thread = std::thread::Builder::new()
        .name("web".into())
        .spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                actix_web::rt::spawn(report_client_errors());
                let new_service = move |stopping: serve::Stopping| {
                    let state = state.clone();
                    let app = App::new()
                        .configure(move |cfg| routes(cfg, state))
                        .into_factory()
                        .map_err(|e| e.error_response());
                    actix_http::HttpService::build()
                        .client_request_timeout(CLIENT_REQUEST_TIMEOUT)
                        .graceful_shutdown_signal(move || stopping.clone().wait())
                        .finish(actix_service::map_config(app, |()| {
                            actix_web::dev::AppConfig::default()
                        }))
                        .tcp()
                };
                let served = serve::run(listener, new_service, stop_rx).await;
                if let Err(e) = &served {
                    tracing::error!(error = %e, "The web UI stopped.");
                }
                served
            })
        })?;
    info!(%addr, users = config.users.len(), "Web UI listening on http://{addr}/rrd");
    Ok(WebServer { stop, thread })
}

/// How often broken client connections are said in the log, at most.
const CLIENT_ERRORS_EVERY: Duration = Duration::from_secs(60);

/// Says, once a minute at most and only when there were any, how many
/// HTTP connections actix gave up on (malformed requests, clients gone
/// mid-request) and what the last one was: they are the clients' doing,
/// counted in `http_bad_requests_total`, never a log line each.
async fn report_client_errors() {
    let counted = &crate::metrics::HTTP_CLIENT_ERRORS;
    let mut reported = counted.count();
    let mut every = actix_web::rt::time::interval(CLIENT_ERRORS_EVERY);
    loop {
        every.tick().await;
        let now = counted.count();
        if now > reported {
            info!(
                count = now - reported,
                last = counted.last(),
                "Malformed or broken HTTP requests from clients (counted in datalog_rrd_http_bad_requests_total)."
            );
            reported = now;
        }
    }
}

#[cfg(test)]
mod tests;
