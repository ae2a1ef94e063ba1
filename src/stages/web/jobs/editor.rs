//! Poll jobs made in the browser by admins: a form, read into the fields a
//! `[[poll]]` has, checked by the same validation (every problem named by
//! its field), stored by `store.rs` and run by the daemon before the
//! answer. Pausing and removing are one-button forms. Jobs of the
//! configuration file stay read-only here. Every form is checked against
//! cross-site requests by extracting an [`EditorForm`].

use std::time::Duration;

use actix_web::{HttpResponse, web};
use askama::Template;
use askama_web::WebTemplate;
use serde::Deserialize;
use tracing::info;

use super::require_admin;
use crate::config::KeyError;
use crate::config::poll::{PollKind, RawPoll};
use crate::web::access::Access;
use crate::web::chrome::Chrome;
use crate::web::form::{EditorForm, field, see_other};
use crate::web::{State, WebError};

/// The most jobs the store keeps: a bound on a file an admin fills.
const MAX_STORED: usize = 500;
/// The most lines a list field (include, exclude, labels, OIDs) is read for.
const MAX_LINES: usize = 100;

#[derive(Template, WebTemplate)]
#[template(path = "job_edit.html")]
pub(crate) struct JobEditPage {
    chrome: Chrome,
    form: JobForm,
    existing: bool,
    token: String,
    errors: Vec<String>,
}

/// The form's fields as text, as shown and as sent back.
#[derive(Default)]
pub(crate) struct JobForm {
    name: String,
    kind: String,
    target: String,
    interval: String,
    timeout: String,
    prefix: String,
    include: String,
    exclude: String,
    labels: String,
    ca_file: String,
    profile: String,
    username: String,
    /// Whether a password is stored (it is never sent back to the page).
    has_password: bool,
    packets: String,
    community: String,
    oids: String,
    paused: bool,
}

impl JobForm {
    fn of(job: &RawPoll) -> JobForm {
        let duration = |d: Option<Duration>| {
            d.map(|d| humantime::format_duration(d).to_string())
                .unwrap_or_default()
        };
        JobForm {
            name: job.name.clone(),
            kind: job.kind.as_str().to_owned(),
            target: job.target.clone(),
            interval: duration(job.interval),
            timeout: duration(job.timeout),
            prefix: job.prefix.clone().unwrap_or_default(),
            include: job.include.join("\n"),
            exclude: job.exclude.join("\n"),
            labels: job
                .labels
                .iter()
                .map(|(l, re)| format!("{l} = {re}"))
                .collect::<Vec<_>>()
                .join("\n"),
            ca_file: job
                .ca_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            profile: job.profile.clone().unwrap_or_default(),
            username: job.username.clone().unwrap_or_default(),
            has_password: job.password.is_some(),
            packets: job.packets.map(|p| p.to_string()).unwrap_or_default(),
            community: job.community.clone().unwrap_or_default(),
            oids: job.oids.join("\n"),
            paused: job.paused,
        }
    }

    /// The kinds the form offers, with whether each is chosen.
    fn kinds(&self) -> Vec<(&'static str, bool)> {
        [
            PollKind::Munin,
            PollKind::Prometheus,
            PollKind::Snmp,
            PollKind::Ping,
        ]
        .into_iter()
        .map(|k| (k.as_str(), k.as_str() == self.kind))
        .collect()
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct EditParams {
    name: Option<String>,
}

/// `GET /rrd/jobs/edit?name=…`: the form, empty or with a job made in the
/// browser.
pub(crate) async fn edit(
    state: web::Data<State>,
    access: Access,
    params: web::Query<EditParams>,
) -> Result<JobEditPage, WebError> {
    require_admin(&access)?;
    let name = params.name.clone().unwrap_or_default();
    if is_config_job(&state, &name) {
        return Err(WebError::Forbidden(format!(
            "job {name:?} comes from the configuration file: edit it there"
        )));
    }
    let (form, existing) = match state.stored_jobs.get(&name) {
        Some(job) => (JobForm::of(&job), true),
        None => (
            JobForm {
                name,
                kind: "munin".into(),
                ..JobForm::default()
            },
            false,
        ),
    };
    Ok(page(&state, &access, form, existing, Vec::new()))
}

fn page(
    state: &State,
    access: &Access,
    form: JobForm,
    existing: bool,
    errors: Vec<String>,
) -> JobEditPage {
    JobEditPage {
        chrome: Chrome::of(state, access),
        form,
        existing,
        token: state.form_tokens.token(access),
        errors,
    }
}

fn is_config_job(state: &State, name: &str) -> bool {
    state
        .config
        .borrow()
        .polls
        .iter()
        .any(|j| j.name == name && j.origin == crate::config::poll::Origin::Config)
}

/// `POST /rrd/jobs/save`: checks, stores, runs, and lists the jobs.
pub(crate) async fn save(
    state: web::Data<State>,
    form: EditorForm,
) -> Result<HttpResponse, WebError> {
    let access = &form.access;
    require_admin(access)?;
    let existing = form.field("existing") == Some("1");
    let stored = state
        .stored_jobs
        .get(form.field("name").unwrap_or_default().trim());
    let (job, mut errors) = parse_form(&form.fields, stored.as_ref());
    if is_config_job(&state, &job.name) {
        errors.push(format!(
            "name: {:?} is a job of the configuration file",
            job.name
        ));
    } else if stored.is_some() && !existing {
        errors.push(format!("name: {:?} is taken", job.name));
    }
    if errors.is_empty()
        && let Err(problems) = crate::config::check_poll(&job)
    {
        errors.extend(problems.iter().map(form_problem));
    }
    if !errors.is_empty() {
        let mut shown = JobForm::of(&job);
        shown.has_password = job.password.is_some();
        let page = page(&state, access, shown, existing, errors);
        let body = page.render().map_err(WebError::Template)?;
        return Ok(HttpResponse::BadRequest()
            .content_type("text/html; charset=utf-8")
            .body(body));
    }
    let name = job.name.clone();
    state
        .stored_jobs
        .change(move |all| {
            let count = all.len();
            match all.iter_mut().find(|j| j.name == job.name) {
                Some(slot) => *slot = job,
                None if count >= MAX_STORED => return Err(format!("at most {MAX_STORED} jobs")),
                None => all.push(job),
            }
            Ok(())
        })
        .await?;
    info!(
        job = name,
        user = access.user.as_deref().unwrap_or(""),
        "Poll job saved."
    );
    Ok(see_other(&format!("/rrd/jobs#job-{name}")))
}

/// `POST /rrd/jobs/pause`: pauses a job made in the browser, or resumes it
/// (`paused=0`); it keeps its settings and files.
pub(crate) async fn pause(
    state: web::Data<State>,
    form: EditorForm,
) -> Result<HttpResponse, WebError> {
    require_admin(&form.access)?;
    let name = stored_name(&state, &form)?;
    let paused = form.field("paused") != Some("0");
    let changed = name.clone();
    state
        .stored_jobs
        .change(move |all| {
            for j in all.iter_mut().filter(|j| j.name == changed) {
                j.paused = paused;
            }
            Ok(())
        })
        .await?;
    info!(
        job = name,
        paused,
        user = form.access.user.as_deref().unwrap_or(""),
        "Poll job {}.",
        if paused { "paused" } else { "resumed" }
    );
    Ok(see_other(&format!("/rrd/jobs#job-{name}")))
}

/// `POST /rrd/jobs/delete`: removes a job made in the browser; the files
/// it wrote stay, with their history.
pub(crate) async fn delete(
    state: web::Data<State>,
    form: EditorForm,
) -> Result<HttpResponse, WebError> {
    require_admin(&form.access)?;
    let name = stored_name(&state, &form)?;
    let gone = name.clone();
    state
        .stored_jobs
        .change(move |all| {
            all.retain(|j| j.name != gone);
            Ok(())
        })
        .await?;
    info!(
        job = name,
        user = form.access.user.as_deref().unwrap_or(""),
        "Poll job removed."
    );
    Ok(see_other("/rrd/jobs"))
}

/// The `name` field, if it is a job made in the browser.
fn stored_name(state: &State, form: &EditorForm) -> Result<String, WebError> {
    let name = form.field("name").unwrap_or_default();
    if state.stored_jobs.get(name).is_none() {
        return Err(WebError::NotFound(format!(
            "job {name:?} made in the browser"
        )));
    }
    Ok(name.to_owned())
}

/// Validation problems as the form names its fields (`poll.interval` →
/// `interval`).
pub(crate) fn describe(problems: &[KeyError]) -> String {
    problems
        .iter()
        .map(form_problem)
        .collect::<Vec<_>>()
        .join("; ")
}

fn form_problem(e: &KeyError) -> String {
    let key = e.key.split_once('.').map_or(e.key.as_str(), |(_, k)| k);
    format!("{key}: {}", e.message)
}

/// The form's fields as a job, and what could not be read (kinds,
/// durations, numbers, label lines). A blank password keeps `stored`'s.
pub(crate) fn parse_form(
    form: &[(String, String)],
    stored: Option<&RawPoll>,
) -> (RawPoll, Vec<String>) {
    let mut errors = Vec::new();
    let text = |key: &str| field(form, key).unwrap_or_default().trim().to_owned();
    let optional = |key: &str| Some(text(key)).filter(|t| !t.is_empty());
    let lines = |key: &str| -> Vec<String> {
        text(key)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .take(MAX_LINES)
            .map(str::to_owned)
            .collect()
    };
    let kind = match text("kind").as_str() {
        "munin" => PollKind::Munin,
        "prometheus" => PollKind::Prometheus,
        "snmp" => PollKind::Snmp,
        "ping" => PollKind::Ping,
        other => {
            errors.push(format!(
                "kind: {other:?} is not munin, prometheus, snmp or ping"
            ));
            PollKind::Munin
        }
    };
    let mut duration = |key: &str| {
        let t = optional(key)?;
        humantime::parse_duration(&t)
            .inspect_err(|_| {
                errors.push(format!("{key}: {t:?} is not a duration such as 30s or 5m"))
            })
            .ok()
    };
    let (interval, timeout) = (duration("interval"), duration("timeout"));
    let mut labels = std::collections::BTreeMap::new();
    for line in lines("labels") {
        match line.split_once('=') {
            Some((label, re)) if !label.trim().is_empty() => {
                labels.insert(label.trim().to_owned(), re.trim().to_owned());
            }
            _ => errors.push(format!("labels: {line:?} is not label = regex")),
        }
    }
    let packets = optional("packets").and_then(|p| {
        p.parse::<u32>()
            .inspect_err(|_| errors.push(format!("packets: {p:?} is not a count")))
            .ok()
    });
    let username = optional("username");
    // Never sent to the page: blank keeps the stored one.
    let password = username
        .as_ref()
        .and_then(|_| optional("password").or_else(|| stored.and_then(|s| s.password.clone())));
    let job = RawPoll {
        name: text("name"),
        kind,
        target: text("target"),
        interval,
        timeout,
        prefix: optional("prefix"),
        include: lines("include"),
        exclude: lines("exclude"),
        labels,
        profile: optional("profile"),
        username,
        password,
        password_file: None,
        ca_file: optional("ca_file").map(Into::into),
        paused: field(form, "paused").is_some(),
        packets,
        community: optional("community"),
        oids: lines("oids"),
    };
    (job, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_form_reads_as_the_job_a_poll_section_would_be() {
        let (job, errors) = parse_form(
            &fields(&[
                ("name", " node "),
                ("kind", "prometheus"),
                ("target", "http://127.0.0.1:9100/metrics"),
                ("interval", "1m"),
                ("timeout", ""),
                ("include", "node_load1\n\n node_memory_.*\n"),
                ("labels", "device = eth0|wlan0"),
                ("profile", "node"),
            ]),
            None,
        );
        assert!(errors.is_empty(), "{errors:?}");
        let toml: RawPoll = toml::from_str(
            "name = \"node\"\nkind = \"prometheus\"\ntarget = \"http://127.0.0.1:9100/metrics\"\n\
             interval = \"1m\"\ninclude = [\"node_load1\", \"node_memory_.*\"]\n\
             labels = { device = \"eth0|wlan0\" }\nprofile = \"node\"",
        )
        .unwrap();
        assert_eq!(job, toml);
        assert!(crate::config::check_poll(&job).is_ok());
    }

    #[test]
    fn what_cannot_be_read_is_named_by_field() {
        let (_, errors) = parse_form(
            &fields(&[
                ("name", "x"),
                ("kind", "telnet"),
                ("target", "pi"),
                ("interval", "often"),
                ("packets", "-1"),
                ("labels", "no equals sign"),
            ]),
            None,
        );
        let fields: Vec<&str> = errors
            .iter()
            .map(|e| e.split(':').next().unwrap())
            .collect();
        assert_eq!(fields, ["kind", "interval", "labels", "packets"]);
    }

    #[test]
    fn a_blank_password_keeps_the_stored_one_and_no_username_drops_it() {
        let mut stored: RawPoll =
            toml::from_str("name = \"r\"\nkind = \"snmp\"\ntarget = \"router\"\nprofile = \"if\"")
                .unwrap();
        stored.username = Some("admin".into());
        stored.password = Some("s3cret-pass".into());
        let form = |user: &str, password: &str| {
            fields(&[
                ("name", "r"),
                ("kind", "snmp"),
                ("target", "router"),
                ("profile", "if"),
                ("username", user),
                ("password", password),
            ])
        };
        let kept = parse_form(&form("admin", ""), Some(&stored)).0;
        assert_eq!(kept.password.as_deref(), Some("s3cret-pass"));
        let changed = parse_form(&form("admin", "n3w-pass"), Some(&stored)).0;
        assert_eq!(changed.password.as_deref(), Some("n3w-pass"));
        let dropped = parse_form(&form("", ""), Some(&stored)).0;
        assert_eq!((dropped.username, dropped.password), (None, None));
    }

    #[test]
    fn problems_are_named_as_the_form_names_its_fields() {
        let problems = [KeyError {
            key: "poll.interval".into(),
            message: "must divide 30m".into(),
        }];
        assert_eq!(describe(&problems), "interval: must divide 30m");
    }
}
